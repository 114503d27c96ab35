"""Instance scalers and patching of TinyTimeMixer (TTM_SPEC.md 1.2, 1.3).

Shapes: `b` batch, `l` context, `c` channels, `n` patches, `p` patch length.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax.models import config as config_lib

Array = jax.Array


def std_scale(x: Array, mask: Array, minimum_scale: float = 1e-5):
  """`TinyTimeMixerStdScaler`: (x - loc) / sqrt(var + min_scale), masked."""
  denominator = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
  loc = jnp.sum(x * mask, axis=1, keepdims=True) / denominator
  variance = jnp.sum(jnp.square((x - loc) * mask), axis=1,
                     keepdims=True) / denominator
  scale = jnp.sqrt(variance + minimum_scale)
  return (x - loc) / scale, loc, scale


def mean_scale(x: Array, mask: Array, minimum_scale: float = 1e-10,
               default_scale: Optional[float] = None):
  """`TinyTimeMixerMeanScaler`: x / mean|x| over observed steps, loc 0."""
  ts_sum = jnp.sum(jnp.abs(x * mask), axis=1, keepdims=True)
  num_observed = jnp.sum(mask, axis=1, keepdims=True)
  scale = ts_sum / jnp.maximum(num_observed, 1.0)
  if default_scale is None:
    batch_sum = jnp.sum(ts_sum, axis=0)
    batch_observations = jnp.maximum(jnp.sum(num_observed, axis=0), 1.0)
    default = jnp.squeeze(batch_sum / batch_observations)
  else:
    default = default_scale * jnp.ones_like(scale)
  scale = jnp.where(num_observed > 0, scale, default)
  scale = jnp.maximum(scale, minimum_scale)
  return x / scale, jnp.zeros_like(scale), scale


def no_scale(x: Array, mask: Array):
  del mask
  shape = (x.shape[0], 1, x.shape[2])
  return x, jnp.zeros(shape, x.dtype), jnp.ones(shape, x.dtype)


def apply_scaler(scaler_type: str, x: Array, mask: Array):
  """Returns (scaled x, loc, scale), loc and scale of shape [b, 1, c]."""
  if scaler_type == 'std':
    return std_scale(x, mask)
  if scaler_type == 'mean':
    return mean_scale(x, mask)
  return no_scale(x, mask)


def patchify(x: Array, patch_length: int, patch_stride: int) -> Array:
  """`TinyTimeMixerPatchify`: [b, l, c] -> [b, c, n, p], front cropped."""
  sequence_length = x.shape[1]
  num_patches = config_lib.compute_num_patches(sequence_length, patch_length,
                                               patch_stride)
  start = sequence_length - (patch_length + patch_stride * (num_patches - 1))
  x = jnp.swapaxes(x[:, start:, :], 1, 2)  # [b, c, l']
  if patch_stride == patch_length:
    return x.reshape(x.shape[0], x.shape[1], num_patches, patch_length)
  index = (np.arange(num_patches)[:, None] * patch_stride
           + np.arange(patch_length)[None, :])
  return x[:, :, index]
