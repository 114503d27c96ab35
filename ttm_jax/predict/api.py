"""`ttm_jax.forecast` and `ttm_jax.backtest`: a DataFrame in, forecasts (and
a backtest report) out, with IBM's pretrained TTMs or any checkpoint.

  forecasts = ttm_jax.forecast(df, timestamp_column='date', horizon=96,
                               checkpoint='auto', quantiles=[0.1, 0.9])

Arguments: every argument is checked before any work (type, range, column
roles), each refusal one `ConfigError`/`DataError` line naming it.

Context: the last `context_length` rows of each series; NaN is missing. A
shorter history, however short (one row), is padded in front and masked,
said in one warning per call (`short_history='error'` refuses it instead,
naming the series); a target with no observed value in its context is
refused, naming the series and column. Each context is standardised per
channel in float64 before the model and the forecast mapped back, so an
offset of 1e9 or a scale of 1e-9 gives the same forecast, shifted or
scaled back. Horizon: shorter than
the model's, its first steps; longer, rolling (forecasts fed back; models
that mix exogenous channels take the controls' future values from
`future_df`). Intervals: the model's quantile heads when it has them, else
split-conformal from the series' own history; a level needs enough
calibration windows (about 1/alpha - 1 for miscoverage alpha = 2q: 4 for
0.1/0.9, 49 for 0.01/0.99), else it is refused saying how many. `finetune=F`
head-probes the model on the first F of each history (the engine's recipe,
validation on the rest) before forecasting from the end, in a temporary
folder removed afterwards (or `finetune_dir`, kept).

Timestamps must be dates or times; numbers (epoch seconds, ...) are
refused: convert them with `pd.to_datetime(..., unit=...)` first. A given
`freq` must agree with the timestamps. Backtest metrics that are undefined
(MASE of a constant history) are None with a `<metric>_undefined` reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import baselines
from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.evaluators import backtest as backtest_lib
from ttm_jax.predict import conformal
from ttm_jax.predict import engine
from ttm_jax.predict import frames

_LOG = logging.getLogger(__name__)
CALIBRATION_WINDOWS = 64
INTERVALS = ('auto', 'model', 'conformal')
SHORT_HISTORY = ('pad', 'error')

_NAMES = checks.names()
# Every public argument of forecast() and backtest() but the frames: its
# check (see ttm_jax/checks.py).
ARGUMENTS = {
    'timestamp_column': checks.instance((str, int), 'a column name'),
    'horizon': checks.count(1),
    'windows': checks.count(1),
    'checkpoint': lambda v: None if isinstance(v, str) and v else (
        "must be a folder, a hub id, a bundled name or 'auto'"),
    'id_columns': _NAMES,
    'target_columns': checks.optional(_NAMES),
    'control_columns': _NAMES,
    'static_categorical_columns': _NAMES,
    'quantiles': checks.optional(checks.levels()),
    'context': checks.optional(checks.count(1)),
    'finetune': checks.optional(checks.open_fraction()),
    'finetune_dir': checks.optional(checks.string()),
    'revision': checks.string(),
    'freq': checks.optional(checks.string()),
    'regularize': checks.boolean(),
    'checkpoints_dir': checks.optional(checks.string()),
    'allow_download': checks.boolean(),
    'calibration_windows': checks.count(1),
    'intervals': checks.one_of(*INTERVALS),
    'short_history': checks.one_of(*SHORT_HISTORY),
}


def check_arguments(prefix: str = '', **values) -> None:
  """Refuses the first argument that fails its check (`ARGUMENTS`), in one
  line naming it (`prefix` + name: '--' for command-line flags).

  Raises:
    errors.ConfigError: naming the argument, its value and what is valid.
  """
  for name, value in values.items():
    complaint = ARGUMENTS[name](value)
    if complaint:
      raise errors.ConfigError(
          f'{prefix}{name}={checks.show(value)}: {complaint}.')
  if values.get('freq') is not None:
    frames.check_freq(values['freq'])
  finetune_dir = values.get('finetune_dir')
  if finetune_dir and os.path.exists(finetune_dir) and (
      not os.path.isdir(finetune_dir) or os.listdir(finetune_dir)):
    raise errors.ConfigError(
        f'{prefix}finetune_dir={finetune_dir!r} exists and is not an empty '
        'folder: give a new folder for the fine-tuning run.')


# --------------------------------------------------------------- requests
def _inputs(forecaster: engine.Forecaster, frame: frames.Frame
            ) -> List[np.ndarray]:
  """Per series, the channels the model reads: the targets, plus the
  controls when it mixes channels."""
  keep = frame.num_targets + (len(frame.control_columns)
                              if forecaster.uses_controls else 0)
  return [s.values[:, :keep] for s in frame.series]


def _roll(forecaster, frame, histories, futures, horizon, categoricals,
          with_quantiles=False):
  """[n, horizon, targets] from n histories, rolling past the model's
  horizon; `futures` [n, horizon, controls] (known controls) or None.
  With `with_quantiles` (a horizon the quantile head covers), also the
  head's quantiles [n, horizon, targets, q]. Each block's contexts are
  standardised in float64 (`engine.Forecaster.standardize`) and its
  forecasts mapped back."""
  targets = frame.num_targets
  histories = [h.copy() for h in histories]
  outputs, done = [], 0
  while done < horizon:
    step = min(forecaster.horizon, horizon - done)
    pasts, masks, loc, scale = forecaster.standardize(
        np.stack([forecaster.window(h) for h in histories]))
    future = None
    if futures is not None:
      future = np.zeros((len(pasts), forecaster.horizon, pasts.shape[2]))
      block = futures[:, done:done + forecaster.horizon]
      future[:, :block.shape[1], targets:] = block
      future = ((future - loc) / scale).astype(np.float32)
    predicted = forecaster.forecast_windows(pasts, masks, frame.freq, future,
                                            categoricals,
                                            with_quantiles=with_quantiles)
    channels = list(forecaster.config.prediction_channel_indices
                    or range(targets))
    loc, scale = loc[:, :, channels], scale[:, :, channels]
    if with_quantiles:  # One block: check_quantiles bounds the horizon.
      point, quantiles = predicted
      point = point * scale + loc
      quantiles = quantiles * scale[..., None] + loc[..., None]
      return point[:, :step], quantiles[:, :step]
    predicted = (predicted * scale + loc)[:, :step]
    outputs.append(predicted)
    for k, history in enumerate(histories):
      new = predicted[k]
      if futures is not None:
        new = np.concatenate([new, futures[k, done:done + step]], axis=1)
      histories[k] = np.concatenate([history, new])
    done += step
  return np.concatenate(outputs, axis=1)


def _categorical_codes(forecaster: engine.Forecaster,
                       frame: frames.Frame) -> Optional[np.ndarray]:
  """[series, k] codes of the static categoricals, by the vocabulary the
  model was trained with (whatever series the call has)."""
  if not frame.static_categorical_columns:
    return None
  return categoricals.codes(forecaster.vocabulary,
                            frame.static_categorical_columns,
                            [s.categoricals for s in frame.series])


def _forecast_at(forecaster, frame, requests, horizon, with_quantiles=False):
  """Forecasts for (series, origin) requests: the history before `origin`,
  the known controls after it (inside the data)."""
  inputs = _inputs(forecaster, frame)
  codes = _categorical_codes(forecaster, frame)
  targets = frame.num_targets
  histories = [inputs[i][:origin] for i, origin in requests]
  futures = None
  if forecaster.uses_controls and frame.control_columns:
    futures = np.stack([inputs[i][origin:origin + horizon, targets:]
                        for i, origin in requests])
  cats = None if codes is None else codes[[i for i, _ in requests]]
  return _roll(forecaster, frame, histories, futures, horizon, cats,
               with_quantiles)


def _label(frame: frames.Frame, index: int) -> str:
  return frames.series_label(frame.id_columns, frame.series[index].key)


def _calibration(forecaster, frame, index, origin, horizon, windows,
                 needed=2):
  """Residuals [n, horizon, targets] of the last `windows` forecasts whose
  truth ends at `origin` (each from at least one patch of history); a
  window whose target context has no observed value gives NaN residuals
  (left out). Fewer than `needed` windows (or observed residuals) is an
  error naming the series."""
  patch = forecaster.config.patch_length
  first = max(patch, origin - horizon - windows + 1)
  origins = list(range(first, origin - horizon + 1))
  needed = max(needed, 2)
  label = _label(frame, index)
  if len(origins) < needed:
    raise errors.DataError(
        f'{label[0].upper() + label[1:]} has room for {len(origins)} '
        f'calibration window(s) of {horizon} steps before its forecast '
        f'origin (row {origin}); the quantiles need {needed}: give at least '
        f'{needed + horizon + patch - 1} rows of history, or less extreme '
        'quantiles.')
  predicted = _forecast_at(forecaster, frame,
                           [(index, o) for o in origins], horizon)
  values = frame.series[index].values[:, :frame.num_targets]
  truth = np.stack([values[o:o + horizon] for o in origins])
  context = forecaster.context_length
  blind = np.array([np.isnan(values[max(0, o - context):o]).all(axis=0)
                    for o in origins])  # [n, targets]
  residuals = np.where(blind[:, None, :], np.nan, truth - predicted)
  observed = int((~np.isnan(residuals)).sum(axis=0).min())
  if observed < needed:
    raise errors.DataError(
        f'{label[0].upper() + label[1:]} has {observed} observed calibration '
        f'residual(s) for some target and step (of {len(origins)} windows: '
        f'the rest missing); the quantiles need {needed}: give more '
        'observed history, or less extreme quantiles.')
  return residuals


def _future_controls(frame: frames.Frame, future_df, horizon: int
                     ) -> Optional[np.ndarray]:
  """[series, horizon, controls] from `future_df` (id columns, timestamp,
  control columns) at the timestamps after each series' end."""
  if not frame.control_columns:
    return None
  if future_df is None:
    raise errors.DataError(
        'This model mixes exogenous channels: give the future values of the '
        f'controls {frame.control_columns} for the {horizon} forecast steps '
        'in future_df (timestamp, id and control columns).')
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not isinstance(future_df, pd.DataFrame):
    raise errors.DataError(f'future_df must be a pandas DataFrame, got '
                           f'{type(future_df).__name__}.')
  for name in [frame.timestamp_column] + frame.id_columns + list(
      frame.control_columns):
    if name not in future_df.columns:
      raise errors.DataError(f'future_df has no column {name!r}.')
  times = pd.Series(frames.parse_times(future_df[frame.timestamp_column],
                                       frame.timestamp_column,
                                       'future_df: '), index=future_df.index)
  out = []
  for series in frame.series:
    rows = np.ones(len(future_df), bool)
    for column, value in zip(frame.id_columns, series.key):
      rows &= (future_df[column] == value).to_numpy()
    block = future_df.loc[rows, frame.control_columns].set_index(
        times[rows].to_numpy())
    wanted = frames.future_timestamps(series.timestamps[-1], frame.freq,
                                      horizon)
    block = block.reindex(wanted)
    missing = block.isna().any(axis=1).to_numpy()
    if missing.any():
      raise errors.DataError(
          f'future_df lacks control values for '
          f'{frames.series_label(frame.id_columns, series.key)} '
          f'at {pd.Timestamp(wanted[np.argmax(missing)])} (and '
          f'{int(missing.sum()) - 1} more of the {horizon} forecast steps).')
    out.append(block.to_numpy(np.float64))
  return np.stack(out)


def _load(checkpoint, revision, frame, horizon, checkpoints_dir,
          allow_download) -> engine.Forecaster:
  if checkpoint == 'auto':
    history = min(len(s.values) for s in frame.series)
    checkpoint, revision = engine.choose_checkpoint(
        history, horizon, frame.freq, checkpoints_dir, allow_download)
  forecaster = engine.Forecaster(checkpoint, revision)
  forecaster.check_channels(
      frame.num_targets, len(frame.control_columns)
      if forecaster.uses_controls else 0)
  return forecaster


def _quantile_bands(forecaster, frame, point, horizon, levels, windows):
  """Per series {level: [h, targets]}: conformal from each history."""
  needed = conformal.windows_needed(levels)
  out = []
  for index, series in enumerate(frame.series):
    residuals = _calibration(forecaster, frame, index, len(series.values),
                             horizon, windows, needed)
    out.append(conformal.bands(point[index], residuals, levels))
  return out


def _use_head(forecaster, intervals: str, levels, horizon: int,
              calibration_windows: int) -> bool:
  """Whether the intervals come from the model's quantile head ('model',
  or 'auto' with a head) rather than conformal calibration; refuses levels
  the head lacks, or that need more calibration windows than
  `calibration_windows`."""
  if not levels:
    return False
  if intervals == 'model' or (intervals == 'auto'
                              and forecaster.quantile_levels):
    forecaster.check_quantiles(levels, horizon)
    return True
  needed = conformal.windows_needed(levels)
  if needed > calibration_windows:
    extreme = min(levels, key=lambda q: min(q, 1 - q))
    raise errors.ConfigError(
        f'quantiles: the level {extreme:g} needs at least {needed} '
        f'calibration windows for a finite conformal bound, but '
        f'calibration_windows={calibration_windows}: raise '
        'calibration_windows (and give that much history), or ask for less '
        'extreme levels.')
  return False


def _head_bands(forecaster, quantiles, levels):
  """Per window {level: [h, targets]} from the head's [n, h, targets, q]."""
  index = {q: min(range(len(forecaster.quantile_levels)), key=lambda k: abs(
      forecaster.quantile_levels[k] - q)) for q in levels}
  return [{q: window[..., index[q]] for q in levels} for window in quantiles]


def _prepare(df, timestamp_column, id_columns, target_columns,
             control_columns, static_categorical_columns, freq, regularize,
             context):
  frame = frames.to_series(df, timestamp_column, id_columns, target_columns,
                           control_columns, static_categorical_columns, freq,
                           regularize)
  if context:  # Use at most the last `context` rows of each series.
    for series in frame.series:
      series.values = series.values[-context:]
      series.timestamps = series.timestamps[-context:]
  return frame


def _check_histories(forecaster, frame, requests, short_history: str,
                     what: str = 'forecast') -> None:
  """Before any forecast: each request's target context has an observed
  value (else refused, naming the series and column); a history shorter
  than the model's context is refused with short_history='error', else
  padded, said in one warning."""
  context = forecaster.context_length
  short = {}
  for index, origin in requests:
    values = frame.series[index].values
    seen = ~np.isnan(values[max(0, origin - context):origin,
                            :frame.num_targets]).all(axis=0)
    if not seen.all():
      label = _label(frame, index)
      column = frame.target_columns[int(np.argmin(seen))]
      where = ('its history' if origin <= context else
               f'the last {context} rows (the model\'s context)')
      at = '' if origin == len(values) else f' before row {origin + 1}'
      raise errors.DataError(
          f'{label[0].upper() + label[1:]}: target {column!r} has no '
          f'observed value in {where}{at}: there is nothing to '
          f'{what} from. Give it observed values or leave it out.')
    if origin < context:
      short[index] = min(origin, short.get(index, origin))
  if not short:
    return
  if short_history == 'error':
    index = min(short, key=short.get)
    label = _label(frame, index)
    raise errors.DataError(
        f'{label[0].upper() + label[1:]} has {short[index]} row(s) of '
        f'history before its {what} origin, fewer than the model\'s context '
        f'({context}), and short_history=\'error\': give more history, or '
        "short_history='pad' to pad it in front (masked).")
  _LOG.warning('%d series have fewer rows than the model\'s context (%d) '
               'before a %s origin: padded in front, the padding masked '
               '(shortest: %d rows).', len(short), context, what,
               min(short.values()))


def forecast(df, *, timestamp_column: str, horizon: int, checkpoint: str,
             id_columns: Sequence[str] = (),
             target_columns: Optional[Sequence[str]] = None,
             control_columns: Sequence[str] = (),
             static_categorical_columns: Sequence[str] = (),
             future_df=None, quantiles: Optional[Sequence[float]] = None,
             context: Optional[int] = None, finetune: Optional[float] = None,
             revision: str = '', freq: Optional[str] = None,
             regularize: bool = False, checkpoints_dir: Optional[str] = None,
             allow_download: bool = False,
             calibration_windows: int = CALIBRATION_WINDOWS,
             intervals: str = 'auto', short_history: str = 'pad',
             finetune_dir: Optional[str] = None):
  """Forecasts `horizon` steps after the end of every series of `df`.

  Args:
    df: long (with `id_columns`) or wide frame.
    timestamp_column: its time column (dates or times, not numbers).
    horizon: steps to forecast (an integer >= 1).
    checkpoint: a folder, a hub id, a bundled name, or 'auto' (the
      reference's get_model rule among `checkpoints_dir` /
      $TTM_CHECKPOINTS, then the hub if `allow_download`).
    id_columns, target_columns, control_columns, static_categorical_columns:
      column roles, lists of names, each column in one role (targets
      default to every other column).
    future_df: future values of the controls, for models that mix them.
    quantiles: unique levels in (0, 1) for `<target>_q<level>` columns.
    context: use at most this many last rows of history (>= 1).
    finetune: head-probe on the first `finetune` (in (0, 1)) of each
      history first.
    revision, freq, regularize, checkpoints_dir, allow_download,
    calibration_windows: see the module docstring (`freq` must agree with
      the data).
    intervals: where the quantiles come from: 'model' (the model's
      multi-quantile head; an error for a point model), 'conformal'
      (split-conformal from each history), or 'auto' (the head when the
      model has one, else conformal).
    short_history: 'pad' (a history shorter than the model's context is
      padded in front and masked, however short; one warning per call) or
      'error' (refused, naming the series).
    finetune_dir: a new or empty folder to keep the fine-tuning run in
      (default: a temporary folder, removed).

  Returns:
    A DataFrame: id columns, `timestamp_column`, one column per target, and
    the quantile columns.

  Raises:
    errors.ConfigError, errors.DataError: one line naming the argument,
      column or series (every argument is checked before any work).
  """
  check_arguments(
      timestamp_column=timestamp_column, horizon=horizon,
      checkpoint=checkpoint, id_columns=id_columns,
      target_columns=target_columns, control_columns=control_columns,
      static_categorical_columns=static_categorical_columns,
      quantiles=quantiles, context=context, finetune=finetune,
      finetune_dir=finetune_dir, revision=revision, freq=freq,
      regularize=regularize, checkpoints_dir=checkpoints_dir,
      allow_download=allow_download,
      calibration_windows=calibration_windows, intervals=intervals,
      short_history=short_history)
  horizon = int(horizon)
  levels = conformal.check_levels(quantiles or ())
  frame = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, context and int(context))
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download)
  head = _use_head(forecaster, intervals, levels, horizon,
                   int(calibration_windows))
  _check_histories(forecaster, frame,
                   [(i, len(s.values)) for i, s in enumerate(frame.series)],
                   short_history)
  if finetune:
    forecaster = _finetuned(forecaster, df, frame, float(finetune),
                            timestamp_column, finetune_dir)
  futures = (_future_controls(frame, future_df, horizon)
             if forecaster.uses_controls else None)
  inputs = _inputs(forecaster, frame)
  if head:
    point, quantiles = _roll(forecaster, frame, inputs, futures, horizon,
                             _categorical_codes(forecaster, frame),
                             with_quantiles=True)
    return frames.to_frame(frame, point, levels,
                           _head_bands(forecaster, quantiles, levels))
  point = _roll(forecaster, frame, inputs, futures, horizon,
                _categorical_codes(forecaster, frame))
  bands = (_quantile_bands(forecaster, frame, point, horizon, levels,
                           int(calibration_windows)) if levels else None)
  return frames.to_frame(frame, point, levels, bands)


def _training_windows(df, frame, fraction, context, horizon) -> int:
  """The fine-tuning run's training windows: those of the first
  `fraction` of each series of `df` (as the engine splits it)."""
  from ttm_jax.data import windows  # pylint: disable=g-import-not-at-top
  lengths = (list(df.groupby(frame.id_columns).size()) if frame.id_columns
             else [len(df)])
  rule = windows.SplitRule(train_fraction=fraction, test_fraction=0.0)
  return sum(windows.num_windows(
      windows.split_ranges(n, rule, context)['train'][1], context, horizon)
             for n in lengths)


def _finetuned(forecaster, df, frame, fraction, timestamp_column,
               finetune_dir=None):
  """The model head-probed on the first `fraction` of each history with the
  engine's recipe (LR finder, one-cycle, early stopping on the rest), its
  batch at most the number of training windows. The run goes to
  `finetune_dir` (kept) or a temporary folder (removed)."""
  from ttm_jax import recipes  # pylint: disable=g-import-not-at-top
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  count = _training_windows(df, frame, fraction, forecaster.context_length,
                            forecaster.horizon)
  if count < 1:
    raise errors.DataError(
        f'finetune={fraction:g}: the first {fraction:g} of each history has '
        f'no training window of {forecaster.context_length} + '
        f'{forecaster.horizon} rows: give more history or a larger '
        'fraction.')
  if finetune_dir:
    os.makedirs(finetune_dir, exist_ok=True)
    workdir = finetune_dir
  else:
    workdir = tempfile.mkdtemp(prefix='ttm_finetune_')
  try:
    path = os.path.join(workdir, 'data.csv')
    df.to_csv(path, index=False)
    source = os.path.join(workdir, 'start')
    checkpoint_lib.save_pretrained(source, forecaster.config,
                                   forecaster.model.variables)
    if forecaster.vocabulary is not None:  # Trained with the same codes.
      forecaster.vocabulary.save(source)
    config = recipes.few_shot(source, context=forecaster.context_length,
                              horizon=forecaster.horizon)
    config.data.update(
        kind='csv', name='finetune', path=path, fewshot_fraction=0.0,
        timestamp_column=timestamp_column, id_columns=frame.id_columns,
        target_columns=frame.target_columns,
        control_columns=frame.control_columns,
        static_categorical_columns=frame.static_categorical_columns,
        train_fraction=fraction, test_fraction=0.0, freq=frame.freq)
    if config.data.batch_size > count:  # Not padded up to a full batch.
      _LOG.warning('finetune: %d training windows, fewer than the batch of '
                   '%d: the batch is %d.', count, config.data.batch_size,
                   count)
      config.data.batch_size = count
    # Validation (the rest of each history) selects and stops early; there
    # is no test split.
    config.evals = dict(val=dict(type='windows', split='valid',
                                 every_steps=0, final=True))
    config.tensorboard = False
    train.train_and_evaluate(config, os.path.join(workdir, 'run'),
                             argv=['ttm_jax.forecast(finetune=...)'])
    return engine.Forecaster(os.path.join(workdir, 'run', 'export'))
  finally:
    if not finetune_dir:
      shutil.rmtree(workdir, ignore_errors=True)


def backtest(df, *, timestamp_column: str, horizon: int, checkpoint: str,
             windows: int = 5, quantiles: Sequence[float] = (0.1, 0.9),
             id_columns: Sequence[str] = (),
             target_columns: Optional[Sequence[str]] = None,
             control_columns: Sequence[str] = (),
             static_categorical_columns: Sequence[str] = (),
             revision: str = '', freq: Optional[str] = None,
             regularize: bool = False, checkpoints_dir: Optional[str] = None,
             allow_download: bool = False,
             calibration_windows: int = CALIBRATION_WINDOWS,
             intervals: str = 'auto',
             short_history: str = 'pad') -> Dict[str, Any]:
  """Rolling-origin evaluation over the last `windows` forecast windows of
  every series (origins `horizon` apart, ending at the series' end), by
  the backtest evaluator (`ttm_jax.evaluators.backtest`): MSE, MAE and
  MASE of the model, of seasonal naive and of repeat-last on the same
  windows, and the coverage of each central interval (from the model's
  quantile head, or conformal from the history before each origin:
  `intervals` as in `forecast`).

  Arguments are checked as in `forecast`. An origin needs one row of
  history before it (shorter than the context: padded, or refused with
  short_history='error'), and with conformal intervals enough history for
  the calibration windows its levels need. A metric that is undefined
  (MASE when a window's history is constant) is None, with the reason in
  `<metric>_undefined`; the report is strict JSON."""
  check_arguments(
      timestamp_column=timestamp_column, horizon=horizon,
      checkpoint=checkpoint, windows=windows, quantiles=quantiles,
      id_columns=id_columns, target_columns=target_columns,
      control_columns=control_columns,
      static_categorical_columns=static_categorical_columns,
      revision=revision, freq=freq, regularize=regularize,
      checkpoints_dir=checkpoints_dir, allow_download=allow_download,
      calibration_windows=calibration_windows, intervals=intervals,
      short_history=short_history)
  horizon, windows = int(horizon), int(windows)
  levels = conformal.check_levels(quantiles or ())
  frame = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, None)
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download)
  head = _use_head(forecaster, intervals, levels, horizon,
                   int(calibration_windows))
  season = baselines.season_length(frame.freq)
  needed = (max(2, conformal.windows_needed(levels))
            if levels and not head else 0)
  min_history = (forecaster.config.patch_length + horizon + needed - 1
                 if needed else 1)
  requests = backtest_lib.origins(
      [len(s.values) for s in frame.series], horizon, windows, min_history,
      [_label(frame, i) for i in range(len(frame.series))])
  _check_histories(forecaster, frame, requests, short_history, 'backtest')
  predicted = _forecast_at(forecaster, frame, requests, horizon, head)
  if head:
    predicted, quantiles = predicted
    bands = _head_bands(forecaster, quantiles, levels)
  else:
    bands = [conformal.bands(predicted[k], _calibration(
        forecaster, frame, i, origin, horizon, int(calibration_windows),
        needed), levels)
             for k, (i, origin) in enumerate(requests)] if levels else None
  t = frame.num_targets
  windows_ = backtest_lib.Windows.of([s.values[:, :t] for s in frame.series],
                                     requests, horizon, season)
  report = dict(windows=windows, horizon=horizon, season=season,
                series=len(frame.series), checkpoint=forecaster.source)
  report.update(backtest_lib.run(
      windows_, predicted, horizon,
      backtest_lib.collect_bands(bands) if bands else None))
  report['intervals'] = 'model' if head else 'conformal'
  return report
