r"""Forecasts your own data (CSV or Parquet) with a TTM.

  .venv/bin/python -m experiments.forecast --data FILE.csv \
      --timestamp_column date --horizon 96 --checkpoint PATH|auto \
      [--id_columns id] [--target_columns OT] [--control_columns a,b] \
      [--known_covariates temp] [--past_covariates a] \
      [--future FUTURE.csv] [--quantiles 0.1,0.9] [--finetune 0.2] \
      [--backtest 5] --out W

Writes W/forecasts.csv, W/forecast.png (history, forecast and bands with
real timestamps, a panel per series up to --max_panels), W/backtest.json
with --backtest (strict JSON: an undefined metric is null, with its
reason in `<metric>_undefined`), and prints one summary line. `--data
synthetic` forecasts the embedded synthetic demo series (nothing to
download). Every flag is checked before any work (the API's checks, named
as flags); bad input ends with one line and status 2.
"""

import json
import os
import time

from absl import flags

from experiments import common

_DATA = flags.DEFINE_string('data', None, 'CSV/Parquet file, or "synthetic".',
                            required=True)
_TIMESTAMP = flags.DEFINE_string('timestamp_column', 'date', 'Time column.')
_HORIZON = flags.DEFINE_integer('horizon', 96, 'Steps to forecast.')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'auto', "Folder, hub id, bundled name, 'auto', or "
    "'auto:<hub id>' (that release's rule, e.g. auto:ibm-research/ttm-r3).")
_REVISION = flags.DEFINE_string('revision', '', 'Hub revision.')
_IDS = flags.DEFINE_list('id_columns', [], 'Series id columns (long data).')
_TARGETS = flags.DEFINE_list('target_columns', [], 'Targets (default: every '
                             'other column).')
_CONTROLS = flags.DEFINE_list('control_columns', [], 'Exogenous columns.')
_STATIC = flags.DEFINE_list('static_categorical_columns', [],
                            'Per-series categorical columns.')
_FUTURE = flags.DEFINE_string('future', '', 'File with the future values of '
                              'the controls and known covariates.')
_KNOWN = flags.DEFINE_list('known_covariates', [], 'Covariates known in the '
                           'future too (their values in --future).')
_PAST = flags.DEFINE_list('past_covariates', [], 'Covariates known only up '
                          'to the forecast origin.')
_STATIC_COVARIATES = flags.DEFINE_list('static_covariates', [], 'Covariates '
                                       'with one value per series.')
_CATEGORICAL = flags.DEFINE_list('categorical_covariates', [], 'Numeric '
                                 'covariates to one-hot encode.')
_ORDER = flags.DEFINE_enum('regression_order', None, ['xreg+ttm', 'ttm+xreg'],
                           'Zero-shot covariates: regress first, or TTM '
                           'first (default: the validated one).')
_RIDGE = flags.DEFINE_float('regression_ridge', None, 'Zero-shot covariates: '
                            'the ridge penalty (default: the validated one).')
_QUANTILES = flags.DEFINE_list('quantiles', [], 'Interval levels, e.g. '
                               '0.1,0.9.')
_INTERVALS = flags.DEFINE_enum(
    'intervals', 'auto', ['auto', 'model', 'conformal'], "Quantiles from "
    "the model's quantile head ('model'), conformal calibration "
    "('conformal'), or the head when the model has one ('auto').")
_FINETUNE = flags.DEFINE_float('finetune', 0.0, 'Head-probe on this '
                               'fraction of each history first.')
_BACKTEST = flags.DEFINE_integer('backtest', 0, 'Backtest windows.')
_CONTEXT = flags.DEFINE_integer('context', 0, 'Use at most this many rows.')
_REGULARIZE = flags.DEFINE_bool('regularize', False, 'Put irregular '
                                'timestamps on their grid (gaps missing).')
_DOWNLOAD = flags.DEFINE_bool('allow_download', False, "checkpoint='auto' "
                              "or 'auto:<hub id>' may fetch from the Hugging "
                              'Face hub.')
_CHECKPOINTS_DIR = flags.DEFINE_string('checkpoints_dir', '', "Folder of "
                                       "checkpoints for 'auto'.")
_OUT = flags.DEFINE_string('out', None, 'Output folder.', required=True)
_PANELS = flags.DEFINE_integer('max_panels', 6, 'Series plotted.')
_FREQ = flags.DEFINE_string('freq', '', 'Frequency (default: inferred); '
                            'must agree with the data.')
_SHORT = flags.DEFINE_enum('short_history', 'pad', ['pad', 'error'],
                           "Histories shorter than the model's context: "
                           "pad them in front (masked), or refuse them.")
_CALIBRATION = flags.DEFINE_integer(
    'calibration_windows', 64, 'Conformal calibration windows per series.')


def _quantile_levels():
  """--quantiles as floats; a word that is not a number is refused."""
  from ttm_jax import errors  # pylint: disable=g-import-not-at-top
  out = []
  for text in _QUANTILES.value:
    try:
      out.append(float(text))
    except ValueError:
      raise errors.ConfigError(
          f'--quantiles: {text!r} is not a number; give levels in (0, 1) '
          'separated by commas, e.g. --quantiles 0.1,0.9.') from None
  return out


def check_flags():
  """Every flag against its check (the API's, named as flags; 0 means
  'none' for --context, --finetune and --backtest), before any work.

  Returns:
    The quantile levels.
  """
  from ttm_jax import checks  # pylint: disable=g-import-not-at-top
  from ttm_jax import errors  # pylint: disable=g-import-not-at-top
  from ttm_jax.predict import arguments  # pylint: disable=g-import-not-at-top
  quantiles = _quantile_levels()
  for name, value, check in (
      ('backtest', _BACKTEST.value, checks.count(0)),
      ('context', _CONTEXT.value, checks.count(0)),
      ('max_panels', _PANELS.value, checks.count(1)),
      ('finetune', _FINETUNE.value, lambda v: None if 0.0 <= v < 1.0 else
       'must be in [0, 1) (0: no fine-tuning)')):
    complaint = check(value)
    if complaint:
      raise errors.ConfigError(f'--{name}={value}: {complaint}.')
  arguments.check_arguments(
      prefix='--', horizon=_HORIZON.value, checkpoint=_CHECKPOINT.value,
      timestamp_column=_TIMESTAMP.value, id_columns=_IDS.value,
      target_columns=_TARGETS.value, control_columns=_CONTROLS.value,
      static_categorical_columns=_STATIC.value, quantiles=quantiles,
      freq=_FREQ.value or None, calibration_windows=_CALIBRATION.value,
      **_covariates())
  return quantiles


def _covariates():
  """The covariate flags as the API's arguments; --regression_order and
  --regression_ridge as its regression option (None: the defaults)."""
  given = dict(order=_ORDER.value, ridge=_RIDGE.value)
  given = {k: v for k, v in given.items() if v is not None}
  return dict(known_covariates=_KNOWN.value, past_covariates=_PAST.value,
              static_covariates=_STATIC_COVARIATES.value,
              categorical_covariates=_CATEGORICAL.value,
              regression=given or None)


def _read(path):
  import pandas as pd  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import sources  # pylint: disable=g-import-not-at-top
  if path == 'synthetic':
    from ttm_jax.data import synthetic  # pylint: disable=g-import-not-at-top
    series = [s for s in synthetic.make_corpus(15, 1200, 1600, seed=1)
              if s.freq == 'h']  # Three hourly series.
    parts = [pd.DataFrame({'id': s.name, 'value': s.values,
                           'date': pd.date_range('2024-01-01',
                                                 periods=len(s.values),
                                                 freq=s.freq)})
             for s in series]
    return pd.concat(parts, ignore_index=True)
  return sources.read_frame(path)


def plot(path, history, forecasts, frame, quantiles, panels):
  """History (the last 3 horizons), forecast and bands per series."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  keys = [s.key or None for s in frame.series][:panels]
  target = frame.target_columns[0]
  fig, axes = plt.subplots(len(keys), 1, figsize=(10, 2.6 * len(keys)),
                           squeeze=False)
  horizon = len(forecasts) // max(len(frame.series), 1)
  for ax, key in zip(axes[:, 0], keys):
    past, ahead = history, forecasts
    if key is not None:
      for column, value in zip(frame.id_columns, key):
        past = past[past[column] == value]
        ahead = ahead[ahead[column] == value]
    past = past.tail(3 * horizon)
    times = pd.to_datetime(past[frame.timestamp_column])
    ax.plot(times, past[target], color='0.3', lw=1, label='history')
    future = pd.to_datetime(ahead[frame.timestamp_column])
    ax.plot(future, ahead[target], color='C3', lw=1.3, label='forecast')
    levels = sorted(quantiles)
    if len(levels) >= 2:
      ax.fill_between(future, ahead[f'{target}_q{levels[0]:g}'],
                      ahead[f'{target}_q{levels[-1]:g}'], color='C3',
                      alpha=0.2, label=f'{levels[0]:g}-{levels[-1]:g}')
    ax.set_title(f'{target}' + (f' — {dict(zip(frame.id_columns, key))}'
                                if key else ''), fontsize=9)
  axes[0, 0].legend(fontsize=8, loc='upper left')
  fig.autofmt_xdate()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _mase(scores) -> str:
  if scores['mase'] is None:
    return f"undefined: {scores['mase_undefined']}"
  return f"{scores['mase']:.3f}"


@common.main_wrapper
def main(argv):
  del argv
  common.setup()
  import ttm_jax  # pylint: disable=g-import-not-at-top
  from ttm_jax.predict import frames  # pylint: disable=g-import-not-at-top
  start = time.time()
  quantiles = check_flags()
  df = _read(_DATA.value)
  synthetic = _DATA.value == 'synthetic'
  roles = dict(timestamp_column='date' if synthetic else _TIMESTAMP.value,
               id_columns=['id'] if synthetic else _IDS.value,
               target_columns=['value'] if synthetic else (
                   _TARGETS.value or None),
               control_columns=_CONTROLS.value,
               static_categorical_columns=_STATIC.value,
               **_covariates(),
               checkpoint=_CHECKPOINT.value, revision=_REVISION.value,
               regularize=_REGULARIZE.value,
               checkpoints_dir=_CHECKPOINTS_DIR.value or None,
               allow_download=_DOWNLOAD.value, intervals=_INTERVALS.value,
               freq=_FREQ.value or None, short_history=_SHORT.value,
               calibration_windows=_CALIBRATION.value)
  future = _read(_FUTURE.value) if _FUTURE.value else None
  forecasts = ttm_jax.forecast(
      df, horizon=_HORIZON.value, future_df=future, quantiles=quantiles,
      context=_CONTEXT.value or None, finetune=_FINETUNE.value or None,
      **roles)
  os.makedirs(_OUT.value, exist_ok=True)
  forecasts.to_csv(os.path.join(_OUT.value, 'forecasts.csv'), index=False)
  frame = frames.to_series(df, roles['timestamp_column'], roles['id_columns'],
                           roles['target_columns'], roles['control_columns'],
                           roles['static_categorical_columns'],
                           freq=roles['freq'], regularize=roles['regularize'],
                           past_covariates=roles['past_covariates'],
                           known_covariates=roles['known_covariates'],
                           static_covariates=roles['static_covariates'],
                           categorical_covariates=roles[
                               'categorical_covariates'])
  plot(os.path.join(_OUT.value, 'forecast.png'), df, forecasts, frame,
       quantiles, _PANELS.value)
  summary = (f'{len(frame.series)} series x {len(frame.target_columns)} '
             f'target(s), {_HORIZON.value} steps at {frame.freq}')
  if _BACKTEST.value:
    report = ttm_jax.backtest(
        df, horizon=_HORIZON.value, windows=_BACKTEST.value,
        quantiles=quantiles or (0.1, 0.9),
        **{k: v for k, v in roles.items()})
    with open(os.path.join(_OUT.value, 'backtest.json'), 'w') as f:
      json.dump(report, f, indent=2, allow_nan=False)
    summary += (f"; backtest MASE {_mase(report['model'])} (seasonal "
                f"naive {_mase(report['seasonal_naive'])})")
  print(f'Forecast {summary} in {time.time() - start:.1f} s -> '
        f'{os.path.abspath(_OUT.value)} (forecasts.csv, forecast.png'
        + (', backtest.json)' if _BACKTEST.value else ')'), flush=True)


if __name__ == '__main__':
  common.run(main)  # One-line flag errors (experiments/common.py).
