"""r3's decomposed TinyTimeMixer (`TinyTimeMixerForDecomposedPrediction` of
granite-tsfm's branch ttm-r3-release-mq2-merge), as a Flax Linen module.

The context is scaled once (the model's scaler) and split by a robust,
LOWESS-like smoother into a trend and a residual. Two TTMs forecast, without
scalers of their own:

  * `trend_forecaster` (the config with its `trend_*` values) reads the
    whole scaled context (the branch's code passes it, not the trend);
  * `residual_forecaster` (context `residual_context_length`) reads the last
    steps of the scaled context minus the trend there.

The forecast is their sum, unscaled; quantiles (with the multi-quantile head)
are summed too, or combined by `combine_quantiles` with
`combine_quantiles_via_variance`. The loss, in scaled units, is

  joint_loss_weight * joint + trend_loss_weight * trend
  + residual_loss_weight * residual,

where the trend and residual targets come from the same smoother run over
context and future together. Shapes: `b` batch, `l` context, `c` channels,
`h` horizon, `q` quantile levels.
"""

from __future__ import annotations

from typing import Any, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import losses
from ttm_jax.models import config as config_lib
from ttm_jax.models import scalers
from ttm_jax.models import ttm

Array = jax.Array
TTMConfig = config_lib.TTMConfig


@flax.struct.dataclass
class DecomposedOutput:
  """Outputs of `TinyTimeMixerForDecomposedPrediction` (the reference's
  field names; all in the data's units).

  Attributes:
    prediction_outputs: [b, h', c'] trend + residual forecasts.
    quantile_outputs: [b, h', c', q] combined quantiles (with the
      multi-quantile head), else None. The reference's is [b, q, h', c'].
    trend_prediction_outputs: [b, h', c'] the trend branch's forecast
      (None with `light_mode`, as all below).
    residual_prediction_outputs: [b, h', c'] the residual branch's.
    trend_input: [b, l, c'] the smoothed context.
    residual_input: [b, l_res, c'] the residual branch's input, unscaled
      with the model's loc and scale as the reference does.
    trend_quantile_outputs, residual_quantile_outputs: [b, h', c', q].
    loss: scalar, or None without `future_values` or a loss.
  """
  prediction_outputs: Array
  quantile_outputs: Optional[Array] = None
  trend_prediction_outputs: Optional[Array] = None
  residual_prediction_outputs: Optional[Array] = None
  trend_input: Optional[Array] = None
  residual_input: Optional[Array] = None
  trend_quantile_outputs: Optional[Array] = None
  residual_quantile_outputs: Optional[Array] = None
  loss: Optional[Array] = None


def gaussian_kernel(width: int) -> np.ndarray:
  """`_gaussian_kernel`: exp(-x**2 / 2 sigma**2) over x in [-r, r], sigma
  width / 4, normalised to sum 1 (float32, as the reference computes it)."""
  radius = (width - 1) // 2
  x = np.arange(-radius, radius + 1, dtype=np.float32)
  kernel = np.exp(np.float32(-0.5) * np.square(x / np.float32(0.25 * width)))
  return (kernel / (kernel.sum() + np.float32(1e-12))).astype(np.float32)


def _lower_median(x: Array) -> Array:
  """torch.median over axis 1 (keepdims): the lower of the two middle
  values for an even count."""
  return jnp.sort(x, axis=1)[:, (x.shape[1] - 1) // 2][:, None]


def robust_lowess(x: Array, frac: float = 0.15, iters: int = 2,
                  eps: float = 1e-8):
  """The reference's `robust_lowess_like` on [b, t, c]: (trend, residual).

  A Gaussian local average (window round(frac * t), odd, >= 5; reflect
  padding), then `iters` rounds of Tukey-bisquare reweighting by the
  residuals' median absolute deviation (6 MADs); each trend is shifted to
  the series' mean. No gradient flows through it (the reference runs it
  under no_grad).
  """
  x = jax.lax.stop_gradient(x)
  b, t, c = x.shape
  width = max(5, int(round(frac * t)))
  if width % 2 == 0:
    width += 1
  width = min(width, t if t % 2 == 1 else t - 1)
  kernel = jnp.asarray(gaussian_kernel(width)).reshape(width, 1, 1)
  radius = width // 2

  def convolve(y):
    padded = jnp.pad(y, ((0, 0), (radius, radius), (0, 0)), mode='reflect')
    z = jnp.swapaxes(padded, 1, 2).reshape(b * c, t + 2 * radius, 1)
    out = jax.lax.conv_general_dilated(
        z, kernel, window_strides=(1,), padding='VALID',
        dimension_numbers=('NWC', 'WIO', 'NWC'))
    return jnp.swapaxes(out.reshape(b, c, t), 1, 2)

  mean = jnp.mean(x, axis=1, keepdims=True)

  def smooth(weights):
    if weights is None:
      numerator, denominator = convolve(x), convolve(jnp.ones_like(x))
    else:
      numerator, denominator = convolve(x * weights), convolve(weights)
    trend = numerator / (denominator + eps)
    return trend - jnp.mean(trend, axis=1, keepdims=True) + mean

  trend = smooth(None)
  for _ in range(iters):
    residual = x - trend
    centred = residual - _lower_median(residual)
    mad = _lower_median(jnp.abs(centred)) + eps
    u = centred / (6.0 * mad)
    trend = smooth(jnp.square(1.0 - jnp.clip(jnp.square(u), 0.0, 1.0)))
  return trend, x - trend


def combine_quantiles(trend: Array, residual: Array,
                      eps: float = 1e-8) -> Array:
  """`combine_quantiles_fast` on [..., q]: summed medians, each level's
  offset from it sqrt(trend offset**2 + residual offset**2 + eps) with the
  sign of their sum, the median's exactly 0."""
  median = trend.shape[-1] // 2
  trend_width = trend - trend[..., median:median + 1]
  residual_width = residual - residual[..., median:median + 1]
  magnitude = jnp.sqrt(jnp.square(trend_width) + jnp.square(residual_width)
                       + eps)
  width = jnp.sign(trend_width + residual_width) * magnitude
  width = jnp.where(jnp.arange(trend.shape[-1]) == median, 0.0, width)
  return trend[..., median:median + 1] + residual[..., median:median + 1] + (
      width)


def _l1(pred: Array, target: Array) -> Array:
  return jnp.mean(jnp.abs(pred - target))


class TinyTimeMixerForDecomposedPrediction(nn.Module):
  """r3's decomposed TTM (module docstring); called as
  `TinyTimeMixerForPrediction` is, returning `DecomposedOutput`.

  The loss ignores `future_observed_mask`, as the reference's does (its
  targets come from smoothing the future itself); NaN targets count as 0.

  Attributes:
    config: the model configuration (`decompose=True`).
    dtype: compute dtype of the matmuls (None: that of the inputs).
    short_context: 'error' or 'pad', as in `TinyTimeMixerForPrediction`.
  """
  config: TTMConfig
  dtype: Optional[Any] = None
  short_context: str = 'error'

  @nn.compact
  def __call__(self, past_values: Array,
               past_observed_mask: Optional[Array] = None,
               future_values: Optional[Array] = None,
               future_observed_mask: Optional[Array] = None,
               freq_token: Optional[Array] = None,
               static_categorical_values: Optional[Array] = None,
               deterministic: bool = True) -> DecomposedOutput:
    config = self.config
    past_values = jnp.asarray(past_values)
    if not jnp.issubdtype(past_values.dtype, jnp.floating):
      past_values = past_values.astype(jnp.float32)
    ttm._check_past(config, past_values, self.short_context)  # pylint: disable=protected-access
    past_values, past_observed_mask = ttm.pad_context(
        past_values, past_observed_mask, config.context_length)
    if past_observed_mask is not None and tuple(
        past_observed_mask.shape) != tuple(past_values.shape):
      raise ValueError(
          f'past_observed_mask shape {tuple(past_observed_mask.shape)} '
          f'does not match past_values {tuple(past_values.shape)}.')
    values, mask = ttm.nan_as_missing(past_values, past_observed_mask)
    scaled, loc, scale = scalers.apply_scaler(config.scaler_type, values,
                                              mask)
    trend_signal, _ = robust_lowess(scaled)
    length = config.context_length
    residual_length = min(config.residual_context_length or length, length)
    residual_signal = (scaled[:, length - residual_length:]
                       - trend_signal[:, length - residual_length:])
    future_mask = None
    if future_values is not None:
      future_values = jnp.asarray(future_values)
      if future_values.ndim != 3:
        raise ValueError('future_values must have 3 dimensions [batch, '
                         f'time, channels], got {tuple(future_values.shape)}.')
      future_values, future_mask = ttm.nan_as_missing(
          future_values, future_observed_mask, warn=False)
    branch_inputs = dict(future_values=future_values,
                         future_observed_mask=future_mask,
                         freq_token=freq_token,
                         static_categorical_values=static_categorical_values,
                         deterministic=deterministic, return_loss=False)
    trend = ttm.TinyTimeMixerForPrediction(
        config.trend_config(), self.dtype, name='trend_forecaster')(
            scaled, mask, **branch_inputs)
    residual = ttm.TinyTimeMixerForPrediction(
        config.residual_config(), self.dtype, name='residual_forecaster')(
            residual_signal, mask[:, length - residual_length:],
            **branch_inputs)
    trend_point = trend.prediction_outputs
    residual_point = residual.prediction_outputs
    point = trend_point + residual_point
    trend_q, residual_q = trend.quantile_outputs, residual.quantile_outputs
    quantiles = None
    if trend_q is not None and residual_q is not None:
      quantiles = (combine_quantiles(trend_q, residual_q)
                   if config.combine_quantiles_via_variance
                   else trend_q + residual_q)
    pci = config.prediction_channel_indices
    if pci is not None:
      pick = lambda x: x[..., list(pci)]
      loc, scale, trend_signal, residual_signal, scaled = map(
          pick, (loc, scale, trend_signal, residual_signal, scaled))
    loss = None
    if future_values is not None and (config.loss is not None
                                      or config.multi_quantile_head):
      target, _ = ttm.align_targets(config, future_values)
      if target.shape != point.shape:
        raise ValueError(
            f'future_values (after filtering to {target.shape}) does not '
            f'match the forecast {point.shape}.')
      loss = self._loss(scaled, (target - loc) / scale, point, quantiles,
                        trend_point, trend_q, residual_point, residual_q)
    unscale = lambda x: x * scale + loc
    unscale_q = lambda q: q * scale[..., None] + loc[..., None]
    out = DecomposedOutput(
        prediction_outputs=unscale(point),
        quantile_outputs=None if quantiles is None else unscale_q(quantiles),
        loss=loss)
    if config.light_mode:
      return out
    return out.replace(
        trend_prediction_outputs=unscale(trend_point),
        residual_prediction_outputs=unscale(residual_point),
        trend_input=unscale(trend_signal),
        residual_input=unscale(residual_signal),
        trend_quantile_outputs=None if trend_q is None else unscale_q(trend_q),
        residual_quantile_outputs=(None if residual_q is None
                                   else unscale_q(residual_q)))

  def _loss(self, scaled_past, scaled_future, point, quantiles, trend_point,
            trend_q, residual_point, residual_q):
    """The reference's weighted joint, trend and residual losses (scaled
    units)."""
    config = self.config
    horizon = scaled_future.shape[1]
    full_trend, _ = robust_lowess(
        jnp.concatenate([scaled_past, scaled_future], axis=1))
    trend_target = full_trend[:, -horizon:]
    residual_target = scaled_future - trend_target
    step = lambda x: x[:, 1:] - x[:, :-1]
    if config.multi_quantile_head:
      pinball = lambda q, y: losses.multi_quantile_loss(
          q, y, config.quantile_levels,
          width_penalty=config.penalize_large_width_ratio,
          width_penalty_mode=config.width_penalty_mode)
      weight = config.point_extra_weight
      joint = pinball(quantiles, scaled_future) + weight * _l1(
          point, scaled_future)
      trend = (pinball(trend_q, trend_target)
               + 0.1 * _l1(step(trend_point), step(trend_target))
               + weight * _l1(trend_point, trend_target))
      residual = pinball(residual_q, residual_target) + weight * _l1(
          residual_point, residual_target)
    else:
      base = lambda p, y: losses.forecast_loss(
          config.loss, p, y, quantile=config.quantile,
          huber_delta=config.huber_delta)
      joint = base(point, scaled_future)
      trend = base(trend_point, trend_target) + 0.1 * base(
          step(trend_point), step(trend_target))
      residual = base(residual_point, residual_target)
    return (config.joint_loss_weight * joint
            + config.trend_loss_weight * trend
            + config.residual_loss_weight * residual)
