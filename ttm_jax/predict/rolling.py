"""Forecast requests of the forecasting API: (series, origin) pairs, each
forecast from the history before its origin (the model's channels, the
static categoricals' codes, the known future controls), rolled past the
model's horizon; the conformal calibration residuals; the checks every
request's history passes first."""

from __future__ import annotations

import logging
from typing import List, Optional

import numpy as np

from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.predict import engine
from ttm_jax.predict import frames

_LOG = logging.getLogger(__name__)


def model_channels(forecaster: engine.Forecaster, frame: frames.Frame
            ) -> List[np.ndarray]:
  """Per series, the channels the model reads: the targets, plus the
  controls when it mixes channels."""
  keep = frame.num_targets + (len(frame.control_columns)
                              if forecaster.uses_controls else 0)
  return [s.values[:, :keep] for s in frame.series]


def roll(forecaster, frame, histories, futures, horizon, categoricals,
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


def categorical_codes(forecaster: engine.Forecaster,
                       frame: frames.Frame) -> Optional[np.ndarray]:
  """[series, k] codes of the static categoricals, by the vocabulary the
  model was trained with (whatever series the call has)."""
  if not frame.static_categorical_columns:
    return None
  return categoricals.codes(forecaster.vocabulary,
                            frame.static_categorical_columns,
                            [s.categoricals for s in frame.series])


def forecast_at(forecaster, frame, requests, horizon, with_quantiles=False):
  """Forecasts for (series, origin) requests: the history before `origin`,
  the known controls after it (inside the data)."""
  inputs = model_channels(forecaster, frame)
  codes = categorical_codes(forecaster, frame)
  targets = frame.num_targets
  histories = [inputs[i][:origin] for i, origin in requests]
  futures = None
  if forecaster.uses_controls and frame.control_columns:
    futures = np.stack([inputs[i][origin:origin + horizon, targets:]
                        for i, origin in requests])
  cats = None if codes is None else codes[[i for i, _ in requests]]
  return roll(forecaster, frame, histories, futures, horizon, cats,
              with_quantiles)


def describe(frame: frames.Frame, index: int) -> str:
  return frames.series_label(frame.id_columns, frame.series[index].key)


def calibration(forecaster, frame, index, origin, horizon, windows,
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
  label = describe(frame, index)
  if len(origins) < needed:
    raise errors.DataError(
        f'{label[0].upper() + label[1:]} has room for {len(origins)} '
        f'calibration window(s) of {horizon} steps before its forecast '
        f'origin (row {origin}); the quantiles need {needed}: give at least '
        f'{needed + horizon + patch - 1} rows of history, or less extreme '
        'quantiles.')
  predicted = forecast_at(forecaster, frame,
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


def future_controls(frame: frames.Frame, future_df, horizon: int
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


def check_histories(forecaster, frame, requests, short_history: str,
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
      label = describe(frame, index)
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
    label = describe(frame, index)
    raise errors.DataError(
        f'{label[0].upper() + label[1:]} has {short[index]} row(s) of '
        f'history before its {what} origin, fewer than the model\'s context '
        f'({context}), and short_history=\'error\': give more history, or '
        "short_history='pad' to pad it in front (masked).")
  _LOG.warning('%d series have fewer rows than the model\'s context (%d) '
               'before a %s origin: padded in front, the padding masked '
               '(shortest: %d rows).', len(short), context, what,
               min(short.values()))

