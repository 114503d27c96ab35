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
                        mask: Optional[Array] = None) -> Array:
  """The reference's `MultiPinballLoss`: the pinball loss of each [..., q] forecast at
  its level, averaged over levels and (observed) elements.

  Args:
    quantiles: [b, h, c, q] forecasts at `levels` (ascending).
    target: [b, h, c].
    levels: the q quantile levels.
    mask: optional [b, h, c] observed mask (the reference has none:
      every element).
  """
  taus = jnp.asarray(levels, quantiles.dtype)
  error = target[..., None] - quantiles
  per_level = jnp.maximum(taus * error, (taus - 1.0) * error)
  if mask is not None:
    mask = jnp.broadcast_to(mask.astype(bool)[..., None], per_level.shape)
  return masked_mean(per_level, mask)
