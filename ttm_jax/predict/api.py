"""`ttm_jax.forecast` and `ttm_jax.backtest`: a DataFrame in, forecasts (and
a backtest report) out, with IBM's pretrained TTMs or any checkpoint.

  forecasts = ttm_jax.forecast(df, timestamp_column='date', horizon=96,
                               checkpoint='auto', quantiles=[0.1, 0.9])

Context: the last `context_length` rows of each series (shorter histories
are padded with a mask, said once); NaN is missing. Horizon: shorter than
the model's, its first steps; longer, rolling (forecasts fed back; models
that mix exogenous channels take the controls' future values from
`future_df`). Intervals: the model's quantile heads when it has them, else
split-conformal from the series' own history. `finetune=F` head-probes the
model on the first F of each history (the engine's recipe, validation on
the rest) before forecasting from the end.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.evaluators import backtest as backtest_lib
from ttm_jax.predict import conformal
from ttm_jax.predict import engine
from ttm_jax.predict import frames

_LOG = logging.getLogger(__name__)
CALIBRATION_WINDOWS = 64


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
  head's quantiles [n, horizon, targets, q]."""
  targets = frame.num_targets
  histories = [h.copy() for h in histories]
  outputs, done = [], 0
  while done < horizon:
    step = min(forecaster.horizon, horizon - done)
    windows = [forecaster.window(h) for h in histories]
    pasts = np.stack([w[0] for w in windows])
    masks = np.stack([w[1] for w in windows])
    future = None
    if futures is not None:
      future = np.zeros((len(pasts), forecaster.horizon, pasts.shape[2]),
                        np.float32)
      block = futures[:, done:done + forecaster.horizon]
      future[:, :block.shape[1], targets:] = block
    predicted = forecaster.forecast_windows(pasts, masks, frame.freq, future,
                                            categoricals,
                                            with_quantiles=with_quantiles)
    if with_quantiles:  # One block: check_quantiles bounds the horizon.
      return predicted[0][:, :step], predicted[1][:, :step]
    predicted = predicted[:, :step]
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


def _calibration(forecaster, frame, index, origin, horizon, windows):
  """Residuals [n, horizon, targets] of the last `windows` forecasts whose
  truth ends at `origin`."""
  first = max(forecaster.config.patch_length, origin - horizon - windows + 1)
  origins = list(range(first, origin - horizon + 1))
  if len(origins) < 2:
    raise errors.DataError(
        f'Series {frame.series[index].key or ""} has too little history '
        f'before its forecast origin to calibrate intervals (needs at least '
        f'{horizon + forecaster.config.patch_length + 2} rows).')
  predicted = _forecast_at(forecaster, frame,
                           [(index, o) for o in origins], horizon)
  truth = np.stack([frame.series[index].values[o:o + horizon,
                                               :frame.num_targets]
                    for o in origins])
  return truth - predicted


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
  for name in [frame.timestamp_column] + frame.id_columns + list(
      frame.control_columns):
    if name not in future_df.columns:
      raise errors.DataError(f'future_df has no column {name!r}.')
  times = pd.to_datetime(future_df[frame.timestamp_column])
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
          f'future_df lacks control values for series {series.key or ""} '
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
  out = []
  for index, series in enumerate(frame.series):
    residuals = _calibration(forecaster, frame, index, len(series.values),
                             horizon, windows)
    out.append(conformal.bands(point[index], residuals, levels))
  return out


INTERVALS = ('auto', 'model', 'conformal')


def _use_head(forecaster, intervals: str, levels, horizon: int) -> bool:
  """Whether the intervals come from the model's quantile head ('model',
  or 'auto' with a head) rather than conformal calibration."""
  if intervals not in INTERVALS:
    raise errors.ConfigError(f'intervals={intervals!r}: expected one of '
                             f'{INTERVALS}.')
  if not levels or intervals == 'conformal' or (
      intervals == 'auto' and not forecaster.quantile_levels):
    return False
  forecaster.check_quantiles(levels, horizon)
  return True


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
             intervals: str = 'auto'):
  """Forecasts `horizon` steps after the end of every series of `df`.

  Args:
    df: long (with `id_columns`) or wide frame.
    timestamp_column: its time column.
    horizon: steps to forecast.
    checkpoint: a folder, a hub id, a bundled name, or 'auto' (the
      reference's get_model rule among `checkpoints_dir` /
      $TTM_CHECKPOINTS, then the hub if `allow_download`).
    id_columns, target_columns, control_columns, static_categorical_columns:
      column roles (targets default to every other column).
    future_df: future values of the controls, for models that mix them.
    quantiles: levels for `<target>_q<level>` columns.
    context: use at most this many last rows of history.
    finetune: head-probe on the first `finetune` of each history first.
    revision, freq, regularize, checkpoints_dir, allow_download,
    calibration_windows: see the module docstring.
    intervals: where the quantiles come from: 'model' (the model's
      multi-quantile head; an error for a point model), 'conformal'
      (split-conformal from each history), or 'auto' (the head when the
      model has one, else conformal).

  Returns:
    A DataFrame: id columns, `timestamp_column`, one column per target, and
    the quantile columns.
  """
  if horizon < 1:
    raise errors.ConfigError(f'horizon={horizon} must be at least 1.')
  levels = conformal.check_levels(quantiles or ())
  frame = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, context)
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download)
  if finetune:
    forecaster = _finetuned(forecaster, df, frame, finetune, timestamp_column)
  futures = (_future_controls(frame, future_df, horizon)
             if forecaster.uses_controls else None)
  inputs = _inputs(forecaster, frame)
  if _use_head(forecaster, intervals, levels, horizon):
    point, quantiles = _roll(forecaster, frame, inputs, futures, horizon,
                             _categorical_codes(forecaster, frame),
                             with_quantiles=True)
    return frames.to_frame(frame, point, levels,
                           _head_bands(forecaster, quantiles, levels))
  point = _roll(forecaster, frame, inputs, futures, horizon,
                _categorical_codes(forecaster, frame))
  bands = (_quantile_bands(forecaster, frame, point, horizon, levels,
                           calibration_windows) if levels else None)
  return frames.to_frame(frame, point, levels, bands)


def _finetuned(forecaster, df, frame, fraction, timestamp_column):
  """The model head-probed on the first `fraction` of each history with the
  engine's recipe (LR finder, one-cycle, early stopping on the rest)."""
  if not 0.0 < fraction < 1.0:
    raise errors.ConfigError(f'finetune={fraction} must be in (0, 1): the '
                             'fraction of each history to train on.')
  from ttm_jax import recipes  # pylint: disable=g-import-not-at-top
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  workdir = tempfile.mkdtemp(prefix='ttm_finetune_')
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
  # Validation (the rest of each history) selects and stops early; there
  # is no test split.
  config.evals = dict(val=dict(type='windows', split='valid', every_steps=0,
                               final=True))
  config.tensorboard = False
  train.train_and_evaluate(config, os.path.join(workdir, 'run'),
                           argv=['ttm_jax.forecast(finetune=...)'])
  return engine.Forecaster(os.path.join(workdir, 'run', 'export'))


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
             intervals: str = 'auto') -> Dict[str, Any]:
  """Rolling-origin evaluation over the last `windows` forecast windows of
  every series (origins `horizon` apart, ending at the series' end), by
  the backtest evaluator (`ttm_jax.evaluators.backtest`): MSE, MAE and
  MASE of the model, of seasonal naive and of repeat-last on the same
  windows, and the coverage of each central interval (from the model's
  quantile head, or conformal from the history before each origin:
  `intervals` as in `forecast`)."""
  levels = conformal.check_levels(quantiles)
  frame = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, None)
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download)
  season = baselines.season_length(frame.freq)
  requests = backtest_lib.origins(
      [len(s.values) for s in frame.series], horizon, windows,
      forecaster.config.patch_length + horizon + 2,
      [s.key or '' for s in frame.series])
  head = _use_head(forecaster, intervals, levels, horizon)
  predicted = _forecast_at(forecaster, frame, requests, horizon, head)
  if head:
    predicted, quantiles = predicted
    bands = _head_bands(forecaster, quantiles, levels)
  else:
    bands = [conformal.bands(predicted[k], _calibration(
        forecaster, frame, i, origin, horizon, calibration_windows), levels)
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
