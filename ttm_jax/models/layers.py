"""Mixer building blocks of TinyTimeMixer as Flax Linen modules.

Submodule names follow the reference's state-dict names (`mixers_0`,
`patch_mixer`, `gating_block`, `attn_layer`, `fc1`, ...), so converting a
PyTorch state dict is a renaming table (see `checkpoint.py`).

Shapes: `b` batch, `c` channels, `n` patches, `d` width; blocks act on
[b, c, n, d].
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax.models import config as config_lib
from ttm_jax.models import initializers
from ttm_jax.models.initializers import InitSpec

Array = jax.Array
Dtype = Any

# The precision policy (`compute_dtype` in an experiment's config): every
# product of float32 operands is an exact float32 product on every backend.
# Without this, JAX's default precision lets NVIDIA GPUs use TF32 (10-bit
# mantissas) and TPUs bfloat16 passes for float32 matmuls, which breaks the
# 1e-5 parity with the reference; XLA:CPU is exact either way. bfloat16 runs
# (`Linear.dtype`) take their products in bfloat16 deliberately, through
# `mixed_matmul`, with float32 accumulation.
FLOAT32_PRECISION = jax.lax.Precision.HIGHEST


def matmul(a: Array, b: Array) -> Array:
  """`a @ b`, exact in float32 on every backend (see FLOAT32_PRECISION)."""
  return jnp.matmul(a, b, precision=FLOAT32_PRECISION)


def einsum(spec: str, *operands: Array) -> Array:
  """`jnp.einsum`, exact in float32 on every backend."""
  return jnp.einsum(spec, *operands, precision=FLOAT32_PRECISION)


def _fmix32(h: Array) -> Array:
  """MurmurHash3's 32-bit finaliser: a bijection with full avalanche."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def dropout_keep(key: Array, shape, rate: float) -> Array:
  """A Bernoulli(1 - rate) keep mask of `shape` from a PRNG key: each
  element's bits are a counter-based hash of its flat index and the key
  (two MurmurHash3 finalisers, ~12 integer ops an element, against ~100
  for threefry). The index is global, so the mask does not depend on how
  the batch is sharded."""
  words = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
  size = int(np.prod(shape))
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  bits = _fmix32(_fmix32(index ^ words[0]) + words[-1])
  threshold = np.uint32(min(int(rate * 2.0**32), 2**32 - 1))
  return bits >= threshold


class Dropout(nn.Module):
  """Inverted dropout (as torch.nn.Dropout and flax.linen.Dropout): zeroes
  each element with probability `rate` and scales the rest by 1/(1-rate),
  only when not deterministic, with keys from the 'dropout' rng stream.
  The mask comes from `dropout_keep`, a cheap counter-based hash: on
  XLA:CPU threefry bits cost about 40% of a TTM training step."""
  rate: float

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    if deterministic or self.rate == 0.0:
      return x
    if self.rate >= 1.0:
      return jnp.zeros_like(x)
    keep = dropout_keep(self.make_rng('dropout'), x.shape, self.rate)
    scale = jnp.asarray(1.0 / (1.0 - self.rate), x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros((), x.dtype))


@jax.custom_vjp
def mixed_matmul(x: Array, kernel: Array) -> Array:
  """x @ kernel in their (low) precision, accumulated to float32; the
  backward products are in that precision too (the float32 cotangent is
  cast down), as mixed-precision training does them."""
  return jnp.matmul(x, kernel, preferred_element_type=jnp.float32)


def _mixed_matmul_fwd(x, kernel):
  return mixed_matmul(x, kernel), (x, kernel)


def _mixed_matmul_bwd(residuals, grad):
  x, kernel = residuals
  grad = grad.astype(x.dtype)
  dx = jnp.matmul(grad, kernel.T, preferred_element_type=jnp.float32)
  dkernel = jnp.matmul(x.reshape(-1, x.shape[-1]).T,
                       grad.reshape(-1, grad.shape[-1]),
                       preferred_element_type=jnp.float32)
  return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


mixed_matmul.defvjp(_mixed_matmul_fwd, _mixed_matmul_bwd)


class Linear(nn.Module):
  """torch.nn.Linear on the last axis (kernel [in, out], bias [out])."""
  features: int
  init: InitSpec = InitSpec()
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    fan_in = x.shape[-1]
    kernel_spec, bias_spec = initializers.linear_init_spec(
        fan_in, self.features, self.init)
    kernel = self.param('kernel', initializers.initializer(kernel_spec),
                        (fan_in, self.features), jnp.float32)
    bias = self.param('bias', initializers.initializer(bias_spec),
                      (self.features,), jnp.float32)
    if self.dtype is None:
      return matmul(x, kernel.astype(x.dtype)) + bias.astype(x.dtype)
    # Mixed precision: the product in `dtype` (e.g. bfloat16 on GPU/TPU
    # matrix units), accumulated and returned in float32, so everything
    # around the matmuls (norms, GELU, softmax, loss, optimiser) stays fp32.
    return mixed_matmul(x.astype(self.dtype), kernel.astype(self.dtype)) + bias


def gelu(x: Array) -> Array:
  """Exact GELU in torch's own form, x * (0.5 + 0.5 erf(x / sqrt 2)).

  `jax.nn.gelu(approximate=False)` goes through erfc, which XLA evaluates
  with two rational branches, an exp and two divisions per element; erf is
  one rational polynomial. torch's kernel uses erf too, so this is also the
  closer form to the reference.
  """
  cdf = 0.5 + 0.5 * jax.lax.erf(x * np.float32(0.7071067811865476))
  return x * cdf.astype(x.dtype)


# -------------------------------------------------------------- mixer spec
@dataclasses.dataclass(frozen=True)
class MixerSpec:
  """What one mixer layer needs to know (a slice of the reference config)."""
  num_patches: int
  d_model: int
  num_channels: int
  expansion_factor: int = 2
  dropout: float = 0.0
  mode: str = 'common_channel'
  gated_attn: bool = True
  norm_mlp: str = 'LayerNorm'
  norm_eps: float = 1e-5
  self_attn: bool = False
  self_attn_heads: int = 1
  num_layers: int = 1
  adaptive_patching_levels: int = 0
  gate_mode: str = 'softmax'
  gate_groups: int = 8
  init: InitSpec = InitSpec()

  @property
  def use_batch_norm(self) -> bool:
    return 'batch' in self.norm_mlp.lower()

  def replace(self, **changes) -> 'MixerSpec':
    return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------ blocks
class TorchBatchNorm(nn.Module):
  """torch.nn.BatchNorm1d over the last axis of [m, n, d] (stats over m, n).

  Training normalises with the biased batch variance and updates the running
  variance with the unbiased one, momentum 0.1, as torch does.
  """
  features: int
  eps: float = 1e-5
  momentum: float = 0.1

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    scale = self.param('scale', initializers.initializer(('constant', 1.0)),
                       (self.features,))
    bias = self.param('bias', initializers.initializer(('constant', 0.0)),
                      (self.features,))
    mean_var = self.variable('batch_stats', 'mean', initializers.constant(0.0),
                             (self.features,))
    var_var = self.variable('batch_stats', 'var', initializers.constant(1.0),
                            (self.features,))
    if deterministic:
      mean, var = mean_var.value, var_var.value
    else:
      mean = jnp.mean(x, axis=(0, 1))
      var = jnp.mean(jnp.square(x - mean), axis=(0, 1))
      count = x.shape[0] * x.shape[1]
      if not self.is_initializing() and self.is_mutable_collection(
          'batch_stats'):
        unbiased = var * count / max(count - 1, 1)
        mean_var.value = ((1 - self.momentum) * mean_var.value
                          + self.momentum * mean)
        var_var.value = ((1 - self.momentum) * var_var.value
                         + self.momentum * unbiased)
    y = (x - mean) * jax.lax.rsqrt(var + self.eps)
    return y * scale + bias


class NormLayer(nn.Module):
  """`TinyTimeMixerNormLayer`: LayerNorm over d, or BatchNorm over (b*c, n)."""
  spec: MixerSpec

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    if self.spec.use_batch_norm:
      b, c, n, d = x.shape
      y = BatchNormWrapper(self.spec, name='norm')(
          x.reshape(b * c, n, d), deterministic)
      return y.reshape(x.shape)
    return LayerNorm(x.shape[-1], self.spec.norm_eps, name='norm')(x)


class LayerNorm(nn.Module):
  """torch.nn.LayerNorm over the last axis (two-pass variance, as torch;
  parameters `scale` and `bias` as flax.linen.LayerNorm's).

  The two sums are matrix-vector products with a ones vector: XLA:CPU runs
  those as vectorised dots, where its row reductions over a short last axis
  (48-192 here) made LayerNorm a quarter of a training step.
  """
  features: int
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param('scale', initializers.initializer(('constant', 1.0)),
                       (self.features,))
    bias = self.param('bias', initializers.initializer(('constant', 0.0)),
                      (self.features,))
    ones = jnp.ones((self.features,), x.dtype)  # Exact products: sums.
    centred = x - (matmul(x, ones) / self.features)[..., None]
    variance = matmul(centred * centred, ones) / self.features
    inverse = jax.lax.rsqrt(variance + self.eps)[..., None]
    return centred * inverse * scale.astype(x.dtype) + bias.astype(x.dtype)


class BatchNormWrapper(nn.Module):
  """`TinyTimeMixerBatchNorm` (state-dict prefix `norm.batchnorm`)."""
  spec: MixerSpec

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    return TorchBatchNorm(self.spec.d_model, eps=self.spec.norm_eps,
                          name='batchnorm')(x, deterministic)


class MLP(nn.Module):
  """fc1 -> exact GELU -> dropout -> fc2 -> dropout."""
  in_features: int
  out_features: int
  spec: MixerSpec
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    hidden = self.in_features * self.spec.expansion_factor
    x = Linear(hidden, self.spec.init, self.dtype, name='fc1')(x)
    x = Dropout(self.spec.dropout)(gelu(x), deterministic=deterministic)
    x = Linear(self.out_features, self.spec.init, self.dtype, name='fc2')(x)
    return Dropout(self.spec.dropout)(x, deterministic=deterministic)


def pick_gate_groups(size: int, requested: int) -> int:
  """The r3 branch's `pick_gate_groups`: `requested` if it divides `size`,
  else the largest divisor of `size` below min(requested, size); 1 for
  requested <= 1."""
  if requested <= 1:
    return 1
  if size % requested == 0:
    return requested
  for groups in range(min(requested, size), 0, -1):
    if size % groups == 0:
      return groups
  return 1


class GatedAttention(nn.Module):
  """r3's `TinyTimeMixerGatedAttention` (`gating_block`) over the last axis
  of width C, by `mode`:
    'softmax': x * softmax(Linear(C -> C)(x)) (r2's gate);
    'sigmoid': x * sigmoid(Linear(C -> C)(x));
    'glu': a * sigmoid(b), [a, b] = Linear(C -> 2C)(x) split in halves;
    'group_sigmoid': x * sigmoid(g), g the mean of the logits
      Linear(C -> C)(x) over each of G groups of C / G consecutive features
      (G = `pick_gate_groups(C, groups)`), repeated over its group.
  The gate is computed in float32 (mixed precision)."""
  size: int
  init: InitSpec = InitSpec()
  dtype: Optional[Dtype] = None
  mode: str = 'softmax'
  groups: int = 8

  @nn.compact
  def __call__(self, x: Array) -> Array:
    width = 2 * self.size if self.mode == 'glu' else self.size
    logits = Linear(width, self.init, self.dtype, name='attn_layer')(x)
    logits = logits.astype(jnp.float32)
    if self.mode == 'glu':
      content, gate = jnp.split(logits, 2, axis=-1)
      return (content * jax.nn.sigmoid(gate)).astype(x.dtype)
    if self.mode == 'softmax':
      gate = jax.nn.softmax(logits, axis=-1)
    elif self.mode == 'sigmoid':
      gate = jax.nn.sigmoid(logits)
    elif self.mode == 'group_sigmoid':
      groups = pick_gate_groups(self.size, self.groups)
      grouped = logits.reshape(logits.shape[:-1]
                               + (groups, self.size // groups))
      gate = jax.nn.sigmoid(jnp.mean(grouped, axis=-1, keepdims=True))
      gate = jnp.broadcast_to(gate, grouped.shape).reshape(logits.shape)
    else:
      raise ValueError(f'Unknown gate_mode: {self.mode!r}')
    return x * gate.astype(x.dtype)


class SelfAttention(nn.Module):
  """`TinyTimeMixerAttention`: multi-head self-attention, no mask."""
  embed_dim: int
  num_heads: int
  dropout: float
  init: InitSpec = InitSpec()
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    m, t, d = x.shape
    head_dim = d // self.num_heads
    proj = lambda name: Linear(d, self.init, self.dtype, name=name)
    split = lambda y: y.reshape(m, t, self.num_heads, head_dim).transpose(
        0, 2, 1, 3)
    q = split(proj('q_proj')(x) * head_dim**-0.5)
    k = split(proj('k_proj')(x))
    v = split(proj('v_proj')(x))
    weights = jax.nn.softmax(einsum('mhqe,mhke->mhqk', q, k), axis=-1)
    weights = Dropout(self.dropout)(weights, deterministic=deterministic)
    out = einsum('mhqk,mhke->mhqe', weights, v)
    out = out.transpose(0, 2, 1, 3).reshape(m, t, d)
    return proj('out_proj')(out)


def _mlp_then_gate(z: Array, spec: MixerSpec, dtype, deterministic: bool
                   ) -> Array:
  """MLP then gating over the last axis: the patch and feature mixers'
  body (submodules 'mlp' and 'gating_block' of the calling module)."""
  size = z.shape[-1]
  z = MLP(size, size, spec, dtype, name='mlp')(z, deterministic)
  if spec.gated_attn:
    z = GatedAttention(size, spec.init, dtype, spec.gate_mode,
                       spec.gate_groups, name='gating_block')(z)
  return z


class _NormMixResidual(nn.Module):
  """A mixer block: h + mix(norm(h)), `mix` given by the subclass."""
  spec: MixerSpec
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, h: Array, deterministic: bool) -> Array:
    self.check(h)
    z = NormLayer(self.spec, name='norm')(h, deterministic)
    return self.mix(z, deterministic) + h

  def check(self, h: Array) -> None:
    del h

  def mix(self, z: Array, deterministic: bool) -> Array:
    raise NotImplementedError


class PatchMixerBlock(_NormMixResidual):
  """Mixing across patches: norm -> MLP(n) -> gate(n) (+ self-attn) + res."""

  def mix(self, z: Array, deterministic: bool) -> Array:
    spec = self.spec
    if spec.self_attn:
      b, c, n, d = z.shape
      x_attn = SelfAttention(d, spec.self_attn_heads, spec.dropout, spec.init,
                             self.dtype, name='self_attn_layer')(
                                 z.reshape(b * c, n, d), deterministic)
      x_attn = x_attn.reshape(b, c, n, d)
    z = _mlp_then_gate(jnp.swapaxes(z, 2, 3), spec, self.dtype,
                       deterministic)
    z = jnp.swapaxes(z, 2, 3)
    if spec.self_attn:
      z = NormLayer(spec, name='norm_attn')(z + x_attn, deterministic)
    return z


class FeatureMixerBlock(_NormMixResidual):
  """Mixing across the hidden axis: norm -> MLP(d) -> gate(d) + residual."""

  def mix(self, z: Array, deterministic: bool) -> Array:
    return _mlp_then_gate(z, self.spec, self.dtype, deterministic)


class ChannelFeatureMixerBlock(_NormMixResidual):
  """Mixing across channels: norm -> gate(c) -> MLP(c) + residual."""

  def check(self, h: Array) -> None:
    spec = self.spec
    if h.shape[1] != spec.num_channels:
      raise ValueError(
          f'The channel mixer was built for {spec.num_channels} channels '
          f'(num_input_channels plus categoricals) but the input has '
          f'{h.shape[1]}: set num_input_channels to the data\'s channel '
          'count.')

  def mix(self, z: Array, deterministic: bool) -> Array:
    spec = self.spec
    z = jnp.transpose(z, (0, 3, 2, 1))
    if spec.gated_attn:
      z = GatedAttention(spec.num_channels, spec.init, self.dtype,
                         spec.gate_mode, spec.gate_groups,
                         name='gating_block')(z)
    z = MLP(spec.num_channels, spec.num_channels, spec, self.dtype,
            name='mlp')(z, deterministic)
    return jnp.transpose(z, (0, 3, 2, 1))


class MixerLayer(nn.Module):
  """`TinyTimeMixerLayer`: channel (mix_channel), patch (n > 1), feature."""
  spec: MixerSpec
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, h: Array, deterministic: bool) -> Array:
    if self.spec.mode == 'mix_channel':
      h = ChannelFeatureMixerBlock(self.spec, self.dtype,
                                   name='channel_feature_mixer')(
                                       h, deterministic)
    if self.spec.num_patches > 1:
      h = PatchMixerBlock(self.spec, self.dtype, name='patch_mixer')(
          h, deterministic)
    return FeatureMixerBlock(self.spec, self.dtype, name='feature_mixer')(
        h, deterministic)


class AdaptivePatchingBlock(nn.Module):
  """One adaptive level: [n, d] -> [n*f, d/f], layers, and back."""
  spec: MixerSpec  # At the block's (n, d); this level scales them.
  level_index: int
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, h: Array, deterministic: bool) -> Array:
    factor = config_lib.adaptive_patch_factor(self.spec.d_model,
                                              self.level_index)
    level = self.spec.replace(num_patches=self.spec.num_patches * factor,
                              d_model=self.spec.d_model // factor)
    b, c, n, d = h.shape
    h = h.reshape(b, c, n * factor, d // factor)
    for i in range(self.spec.num_layers):
      h = MixerLayer(level, self.dtype, name=f'mixer_layers_{i}')(
          h, deterministic)
    return h.reshape(b, c, n, d)


class MixerBlock(nn.Module):
  """`TinyTimeMixerBlock`: layers, or adaptive levels finest first."""
  spec: MixerSpec
  dtype: Optional[Dtype] = None

  @nn.compact
  def __call__(self, h: Array, deterministic: bool) -> Array:
    levels = self.spec.adaptive_patching_levels
    if levels > 0:
      for j, level_index in enumerate(reversed(range(levels))):
        h = AdaptivePatchingBlock(self.spec, level_index, self.dtype,
                                  name=f'mixers_{j}')(h, deterministic)
    else:
      for i in range(self.spec.num_layers):
        h = MixerLayer(self.spec, self.dtype, name=f'mixers_{i}')(
            h, deterministic)
    return h
