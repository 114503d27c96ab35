"""Forecast losses of the reference TTM, with optional observed masks.

Each is the mean over all elements, or, with a mask, over the observed
elements only (the reference indexes `pred[mask]`, `target[mask]`).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

Array = jax.Array


def elementwise(kind: str, pred: Array, target: Array, *,
                quantile: float = 0.5, huber_delta: float = 1.0) -> Array:
  """Per-element loss of the given kind ('mse', 'mae', 'huber', 'pinball')."""
  error = target - pred
  if kind == 'mse':
    return jnp.square(error)
  if kind == 'mae':
    return jnp.abs(error)
  if kind == 'huber':  # torch.nn.HuberLoss.
    abs_error = jnp.abs(error)
    return jnp.where(abs_error < huber_delta, 0.5 * jnp.square(error),
                     huber_delta * (abs_error - 0.5 * huber_delta))
  if kind == 'pinball':
    return jnp.maximum(quantile * error, (quantile - 1) * error)
  raise ValueError(f'Unknown loss {kind!r}; expected mse, mae, huber or '
                   'pinball.')


def masked_mean(values: Array, mask: Optional[Array] = None) -> Array:
  """Mean of `values`, over entries where `mask` is true when given."""
  if mask is None:
    return jnp.mean(values)
  mask = mask.astype(bool)
  return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)


def forecast_loss(kind: str, pred: Array, target: Array,
                  mask: Optional[Array] = None, *, quantile: float = 0.5,
                  huber_delta: float = 1.0) -> Array:
  """The reference's scalar loss of `pred` against `target`."""
  return masked_mean(
      elementwise(kind, pred, target, quantile=quantile,
                  huber_delta=huber_delta), mask)


def multi_quantile_loss(quantiles: Array, target: Array, levels,
                        mask: Optional[Array] = None, *,
                        width_penalty: float = 0.0,
                        width_penalty_mode: str = 'boundary') -> Array:
  """The reference's `MultiPinballLoss`: the pinball loss of each [..., q] forecast at
  its level, averaged over levels and (observed) elements.

  Args:
    quantiles: [b, h, c, q] forecasts at `levels` (ascending).
    target: [b, h, c].
    levels: the q quantile levels.
    mask: optional [b, h, c] observed mask (the reference has none:
      every element).
    width_penalty: r3's `penalize_large_width_ratio`: this times the mean
      interval width is added ('boundary': the outermost interval; 'wis':
      the mean over the k symmetric intervals of their mean width).
    width_penalty_mode: 'boundary' or 'wis'.
  """
  taus = jnp.asarray(levels, quantiles.dtype)
  error = target[..., None] - quantiles
  per_level = jnp.maximum(taus * error, (taus - 1.0) * error)
  level_mask = None
  if mask is not None:
    level_mask = jnp.broadcast_to(mask.astype(bool)[..., None],
                                  per_level.shape)
  loss = masked_mean(per_level, level_mask)
  if width_penalty:
    count = quantiles.shape[-1]
    pairs = 1 if width_penalty_mode == 'boundary' else count // 2
    widths = [masked_mean(quantiles[..., count - 1 - i] - quantiles[..., i],
                          mask) for i in range(pairs)]
    loss = loss + width_penalty * (widths[0] if pairs == 1 else
                                   jnp.mean(jnp.stack(widths)))
  return loss
