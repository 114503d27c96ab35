"""Forecast requests of the forecasting API: (series, origin) pairs, each
forecast from the history before its origin by the one forecasting path
(`inference.forecast`: the model's channels, the static categoricals'
codes, the known future controls, rolled past the model's horizon; the
covariates of a model without an exogenous mixer by in-context regression,
`inference.covariates`); the conformal calibration residuals; the checks
every request's history passes first."""

from __future__ import annotations

import logging
from typing import List, Optional

import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecast as forecast_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.predict import frames

_LOG = logging.getLogger(__name__)


def model_channels(model: model_lib.Model, frame: frames.Frame
                   ) -> List[np.ndarray]:
  """Per series, the channels the model reads: the targets, plus the
  controls when it mixes channels."""
  keep = frame.num_targets + (len(frame.control_columns)
                              if model.uses_controls else 0)
  return [s.values[:, :keep] for s in frame.series]


def categorical_codes(model: model_lib.Model,
                      frame: frames.Frame) -> Optional[np.ndarray]:
  """[series, k] codes of the static categoricals, by the vocabulary the
  model was trained with (whatever series the call has)."""
  if not frame.static_categorical_columns:
    return None
  return categoricals.codes(model.vocabulary,
                            frame.static_categorical_columns,
                            [s.categoricals for s in frame.series])


def covariate_layout(frame: frames.Frame,
                     regression: covariates_lib.Regression
                     ) -> covariates_lib.Layout:
  """The regression's columns: the frame's dynamic covariates and the
  time features (known categoricals named 'time:<field>')."""
  times = tuple(f'time:{name}' for name in regression.time_features)
  return covariates_lib.Layout(
      past=tuple(frame.past_covariates),
      known=tuple(frame.known_covariates) + times,
      categorical=frozenset(frame.categorical_covariates) | frozenset(times))


def covariates_at(frame: frames.Frame, requests, horizon: int,
                  regression: covariates_lib.Regression
                  ) -> List[covariates_lib.Covariates]:
  """Each request's covariates: the past-only ones before its origin, the
  known ones (and time features) up to `horizon` steps after it (inside
  the data, or from `future_df` appended after its end)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  count = len(frame.known_covariates)
  out = []
  for i, origin in requests:
    series = frame.series[i]
    found = (series.covariates if series.covariates is not None
             else np.zeros((len(series.values), 0)))
    if count and len(found) < origin + horizon:
      raise ValueError(f'Request {(i, origin)}: known covariates for '
                       f'{len(found) - origin} of {horizon} steps.')
    known = np.full((origin + horizon, count), np.nan)
    known[:] = found[:origin + horizon, :count] if count else 0.0
    if regression.time_features:
      stamps = pd.date_range(pd.Timestamp(series.timestamps[0]),
                             periods=origin + horizon, freq=frame.freq)
      known = np.concatenate([known, covariates_lib.time_features(
          stamps, regression.time_features)], axis=1)
    out.append(covariates_lib.Covariates(past=found[:origin, count:],
                                         known=known))
  return out


def forecast_at(model: model_lib.Model, frame: frames.Frame, requests,
                horizon: int, inputs: inputs_lib.Inputs = inputs_lib.DEFAULT,
                with_quantiles: bool = False,
                regression: Optional[covariates_lib.Regression] = None):
  """Forecasts [n, horizon, targets] for (series, origin) requests: the
  history before `origin`, the known controls after it (inside the data);
  with `with_quantiles` (a horizon the quantile head covers), also the
  head's [n, horizon, targets, q]. A model without an exogenous mixer
  reads the frame's covariates (and `regression`'s time features) by
  in-context regression (`inference.covariates`, as `regression` says)."""
  channels = model_channels(model, frame)
  codes = categorical_codes(model, frame)
  targets = frame.num_targets
  histories = [channels[i][:origin] for i, origin in requests]
  regression = regression or covariates_lib.Regression()
  layout = covariate_layout(frame, regression)
  if layout and not model.uses_controls:
    point, quantiles = covariates_lib.forecast(
        model, histories, covariates_at(frame, requests, horizon,
                                        regression), layout, horizon,
        frame.freq, inputs, regression,
        season=baselines.season_length(frame.freq),
        with_quantiles=with_quantiles)
    return (point, quantiles) if with_quantiles else point
  futures = None
  if model.uses_controls and frame.control_columns:
    futures = np.stack([channels[i][origin:origin + horizon, targets:]
                        for i, origin in requests])
    # Only exogenous channels have known futures (the model's
    # exogenous_channel_indices); the others, e.g. a fine-tune's past-only
    # covariates, are missing after the origin, never read from the data.
    exogenous = set(model.config.exogenous_channel_indices or ())
    hidden = [k for k in range(futures.shape[2])
              if targets + k not in exogenous]
    futures[..., hidden] = np.nan
  cats = None if codes is None else codes[[i for i, _ in requests]]
  point, quantiles = forecast_lib.forecast(
      model, histories, horizon, frame.freq, inputs,
      season=baselines.season_length(frame.freq), num_targets=targets,
      futures=futures, static_categoricals=cats,
      with_quantiles=with_quantiles)
  return (point, quantiles) if with_quantiles else point


def describe(frame: frames.Frame, index: int) -> str:
  return frames.series_label(frame.id_columns, frame.series[index].key)


def calibration(forecaster, frame, index, origin, horizon, windows,
                needed=2, inputs: inputs_lib.Inputs = inputs_lib.DEFAULT,
                regression: Optional[covariates_lib.Regression] = None):
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
                          [(index, o) for o in origins], horizon, inputs,
                          regression=regression)
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

