"""The one forecasting path: histories in, forecasts out, for every caller
(the API's `forecast` and `backtest`, the benchmark runner, the recipes'
backtests and blends).

  point, quantiles = forecast.forecast(model, histories, horizon, freq)

Histories may be ragged, hold NaN, or be shorter than the model's context.
The path (1) adapts short, low-frequency pasts when `inputs.adaptation`
says so (`adapt`: deseasonalised, upsampled), (2) builds each context as
`inputs` says (`inputs.prepare`: padding, missing values,
standardisation), (3) runs the model (`model.Model.run`), rolling its
forecasts back in past its horizon (with the known future values of the
controls of a model that mixes them), and (4) maps point forecasts and the
quantile head's back to the data's units (and back through the
adaptation).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax.inference import adapt
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib


def _as_2d(history) -> np.ndarray:
  history = np.asarray(history, np.float64)
  return history[:, None] if history.ndim == 1 else history


def _rolled(model: model_lib.Model, histories: List[np.ndarray],
            horizon: int, freq: str, inputs: inputs_lib.Inputs,
            num_targets: int, futures: Optional[np.ndarray],
            static_categoricals: Optional[np.ndarray],
            with_quantiles: bool):
  """(point [n, horizon, targets], the head's quantiles of the first
  block [n, <= horizon, targets, q] or None) of histories [t_i, c]."""
  channels = model.prediction_channels(num_targets)
  histories = [h.copy() for h in histories]
  outputs, head, done = [], None, 0
  while done < horizon:
    step = min(model.horizon, horizon - done)
    batch = inputs_lib.prepare(histories, model.context_length, inputs,
                               model.config.scaler_type)
    future = None
    if futures is not None:
      future = np.zeros((len(histories), model.horizon,
                         batch.values.shape[2]))
      block = futures[:, done:done + model.horizon]
      future[:, :block.shape[1], num_targets:] = block
      # A channel without a known future (NaN: not exogenous) is 0; the
      # model reads only its exogenous channels' futures.
      future = np.nan_to_num((future - batch.loc) / batch.scale).astype(
          np.float32)
    quantiles_now = with_quantiles and not done
    predicted = model.run(batch.values, batch.mask, freq, future,
                          static_categoricals, with_quantiles=quantiles_now)
    loc = batch.loc[:, :, channels]
    scale = batch.scale[:, :, channels]
    if quantiles_now:
      predicted, quantiles = predicted
      head = (quantiles * scale[..., None] + loc[..., None])[:, :step]
    predicted = (predicted * scale + loc)[:, :step]
    outputs.append(predicted)
    for k, history in enumerate(histories):
      new = predicted[k]
      if futures is not None:
        new = np.concatenate([new, futures[k, done:done + step]], axis=1)
      elif new.shape[1] < history.shape[1]:  # Channels it does not forecast.
        new = np.concatenate([new, np.full(
            (step, history.shape[1] - new.shape[1]), np.nan)], axis=1)
      histories[k] = np.concatenate([history, new])
    done += step
  return np.concatenate(outputs, axis=1), head


def _adapted(model, histories, horizon, freq, inputs, season,
             with_quantiles):
  """`_rolled` of univariate histories through the adaptation: each
  deseasonalised (when seasonal), upsampled by k (its last context's
  worth), forecast k * horizon steps, downsampled and reseasonalised."""
  adaptation = inputs.adaptation
  pasts = [h[:, 0] for h in histories]
  lengths = [len(p) for p in pasts]
  indices = [None] * len(pasts)
  if adaptation.deseasonalize:
    pasts, indices = adapt.deseasonalize(pasts, season,
                                         adaptation.seasonality)
  k = adaptation.factor(season)
  # Only the last context's worth is upsampled: the model reads no more
  # ((keep - 1) * k + 1 >= context), and a long past would cost k times.
  keep = model.context_length // k + 2
  point, head = _rolled(
      model, [adapt.upsample(p[-keep:], k)[:, None] for p in pasts],
      k * horizon, freq, inputs, 1, None, None, with_quantiles)
  point = adapt.reseasonalize(adapt.downsample(point, k, horizon), indices,
                              lengths, season, adaptation.seasonality)
  if head is not None:
    head = adapt.reseasonalize(adapt.downsample(head, k, horizon), indices,
                               lengths, season, adaptation.seasonality)
  return point, head


def _independent(model: model_lib.Model) -> bool:
  """Whether the model forecasts each channel from that channel alone."""
  config = model.config
  return (config.mode == 'common_channel'
          and config.decoder_mode == 'common_channel'
          and not config.enable_forecast_channel_mixing
          and not config.prediction_channel_indices
          and not model.uses_controls)


def forecast(model: model_lib.Model, histories: Sequence[np.ndarray],
             horizon: int, freq: str,
             inputs: inputs_lib.Inputs = inputs_lib.DEFAULT,
             season: int = 1, num_targets: Optional[int] = None,
             futures: Optional[np.ndarray] = None,
             static_categoricals: Optional[np.ndarray] = None,
             with_quantiles: bool = False
             ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Forecasts of `horizon` steps after each history.

  Args:
    model: the TTM (`model.Model`).
    histories: n arrays [t_i, c] (or [t_i] for one channel), NaN missing,
      any length: the targets first, then the controls of a model that
      reads them.
    horizon: steps to forecast (past the model's horizon: rolled).
    freq: the data's pandas frequency (the resolution token).
    inputs: how histories become inputs (`inputs.Inputs`).
    season: the data's season (the adaptation's seasonality test).
    num_targets: how many of the c channels are targets (default all).
    futures: [n, horizon, controls] the controls' known future values.
    static_categoricals: [n, k] codes.
    with_quantiles: also the quantile head's forecasts.

  Returns:
    (point [n, horizon, targets], quantiles [n, h', targets, q] of the
    head over its first h' <= horizon steps, or None).
  """
  histories = [_as_2d(h) for h in histories]
  targets = histories[0].shape[1] if num_targets is None else num_targets
  adaptation = inputs.adaptation
  channels = histories[0].shape[1]
  if (adaptation is not None and channels > 1 and targets == channels
      and futures is None and static_categoricals is None
      and _independent(model)):
    # A channel-independent model forecasts each channel alone: the
    # univariate path, adaptation included, for each.
    point, head = forecast(model, [h[:, c] for h in histories
                                   for c in range(channels)], horizon, freq,
                           inputs, season, with_quantiles=with_quantiles)
    point = point[..., 0].reshape(len(histories), channels, -1)
    if head is not None:
      head = head[:, :, 0].reshape((len(histories), channels)
                                   + head.shape[1:2] + head.shape[3:])
      head = np.moveaxis(head, 1, 2)
    return np.moveaxis(point, 1, 2), head
  # Adapted: univariate pasts without controls or categoricals, and only
  # where the quantile head, when asked for, still covers the horizon on
  # the finer grid.
  if adaptation is None or futures is not None or targets != 1 or (
      histories[0].shape[1] != 1) or static_categoricals is not None or (
          with_quantiles
          and adaptation.factor(season) * horizon > model.horizon):
    return _rolled(model, histories, horizon, freq, inputs, targets, futures,
                   static_categoricals, with_quantiles)
  chosen = [i for i, h in enumerate(histories)
            if adaptation.scope == 'all' or len(h) < model.context_length]
  rest = [i for i in range(len(histories)) if i not in set(chosen)]
  parts = []
  if chosen:
    parts.append((chosen, _adapted(model, [histories[i] for i in chosen],
                                   horizon, freq, inputs, season,
                                   with_quantiles)))
  if rest:
    parts.append((rest, _rolled(model, [histories[i] for i in rest],
                                horizon, freq, inputs, 1, None, None,
                                with_quantiles)))
  return _merge(parts, len(histories))


def _merge(parts, count: int):
  """(point, head) of all series from those of groups of them; the head
  only as far as every group's reaches."""
  point = np.zeros((count,) + parts[0][1][0].shape[1:])
  heads = [head for _, (_, head) in parts]
  head = None
  if all(h is not None for h in heads):
    steps = min(h.shape[1] for h in heads)
    head = np.zeros((count, steps) + heads[0].shape[2:])
  for rows, (p, h) in parts:
    point[rows] = p
    if head is not None:
      head[rows] = h[:, :head.shape[1]]
  return point, head
