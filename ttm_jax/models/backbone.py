"""The TTM backbone (`backbone` in state dicts): scaler, patching, patch
embedding, resolution prefix, positional encoding and the mixer encoder
(TTM_SPEC.md 1.2-1.8). Shapes: `b` batch, `c` channels, `n` patches, `d`
width.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax.models import config as config_lib
from ttm_jax.models import initializers
from ttm_jax.models import layers
from ttm_jax.models import scalers

Array = jax.Array
TTMConfig = config_lib.TTMConfig


def sincos_position_encoding(num_patches: int, d_model: int) -> np.ndarray:
  """The reference's centred, scaled sin/cos table [n, d] (float32)."""
  position_enc = np.zeros((num_patches, d_model), np.float32)
  position = np.arange(num_patches, dtype=np.float32)[:, None]
  div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float32)
                    * np.float32(-(math.log(10000.0) / d_model)))
  position_enc[:, 0::2] = np.sin(position * div_term)
  position_enc[:, 1::2] = np.cos(position * div_term)[:, :d_model // 2]
  position_enc = position_enc - position_enc.mean()
  return position_enc / (position_enc.std(ddof=1) * 10)


def mixer_spec(config: TTMConfig, **changes) -> layers.MixerSpec:
  """The backbone's `MixerSpec`; `changes` give the decoder's or FCM's."""
  shared = ('num_patches', 'd_model', 'expansion_factor', 'dropout', 'mode',
            'gated_attn', 'norm_mlp', 'norm_eps', 'self_attn',
            'self_attn_heads', 'num_layers', 'adaptive_patching_levels',
            'gate_mode', 'gate_groups')
  spec = layers.MixerSpec(num_channels=config.num_input_channels,
                          init=initializers.InitSpec.from_config(config),
                          **{name: getattr(config, name) for name in shared})
  return spec.replace(**changes)


# ----------------------------------------------------------------- encoder
class TinyTimeMixerEncoder(nn.Module):
  """Patch embedding, resolution prefix, positional encoding, mixers."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, patches: Array, freq_token: Optional[Array],
               deterministic: bool, scaled: Optional[Array] = None) -> Array:
    """Embeds `patches` [b, c, n, p] (and, with FFT tokens, reads the
    scaled context `scaled` [b, l, c]) -> [b, c, N, d]."""
    config = self.config
    init = initializers.InitSpec.from_config(config)
    if config.multi_scale:
      h = MultiScalePatcher(config, self.dtype, name='patcher')(patches)
    else:
      h = layers.Linear(config.d_model, init, self.dtype, name='patcher')(
          patches)  # [b, c, n, d]
    if config.resolution_prefix_tuning:
      if freq_token is None:
        raise ValueError(
            'This model uses resolution prefix tuning: pass freq_token '
            '(shape [b], the frequency token of the data, e.g. 7 for hourly; '
            'ttm_jax.frequency_token(freq) gives it).')
      tokens = jnp.asarray(freq_token).reshape(-1).astype(jnp.int32)
      if tokens.shape[0] != h.shape[0]:
        raise ValueError(f'freq_token has {tokens.shape[0]} entries for a '
                         f'batch of {h.shape[0]}.')
      mid = (config.patch_length + config.d_model) // 2
      e = init.embed(config.frequency_token_vocab_size, config.patch_length,
                     name='freq_mod_0')(tokens)
      e = layers.Linear(mid, init, self.dtype, name='freq_mod_1')(e)
      e = layers.Linear(config.d_model, init, self.dtype,
                        name='freq_mod_3')(layers.gelu(e))
      e = jnp.broadcast_to(e[:, None, None, :].astype(h.dtype),
                           (h.shape[0], h.shape[1], 1, config.d_model))
      h = jnp.concatenate([e, h], axis=2)
    if config.register_tokens > 0:
      h = RegisterTokens(config, name='add_tokens')(h)
    if config.fft_length > 0:
      h = FFTTokens(config, self.dtype, name='add_fft_tokens')(h, scaled)
    if config.use_positional_encoding:
      h = h + PositionalEncoding(config, name='positional_encoder')()
    if config.multi_scale or config.enable_base_norm_always:
      b, c, n, d = h.shape
      h = layers.LayerNorm(n * d, config.norm_eps, name='base_norm')(
          h.reshape(b, c, n * d)).reshape(b, c, n, d)
    return layers.MixerBlock(mixer_spec(config), self.dtype,
                             name='mlp_mixer_encoder')(h, deterministic)


class MultiScalePatcher(nn.Module):
  """r3's `MultiScaleFromPatchedSequence`: the patched context [b, c, n, p]
  average-pooled by 2**i (the tail that does not fill a window dropped, as
  avg_pool1d does), its last whole patches embedded by `projectors_i`
  (Linear(p -> d)), for every scale with at least p steps; the scales
  concatenated coarsest first."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, patches: Array) -> Array:
    b, c, n, p = patches.shape
    init = initializers.InitSpec.from_config(self.config)
    steps = n * p
    x = patches.reshape(b, c, steps)
    outputs, factor = [], 1
    while steps >= factor and steps // factor >= p:
      pooled_steps = steps // factor
      pooled = x[..., :pooled_steps * factor].reshape(
          b, c, pooled_steps, factor).mean(axis=-1)
      count = pooled_steps // p
      pooled = pooled[..., pooled_steps - count * p:]
      outputs.append(layers.Linear(
          self.config.d_model, init, self.dtype,
          name=f'projectors_{len(outputs)}')(pooled.reshape(b, c, count, p)))
      factor *= 2
    return jnp.concatenate(outputs[::-1], axis=2)


class RegisterTokens(nn.Module):
  """r3's learned register tokens [R, d] (`patch_tokens`, N(0, 1) as
  torch.randn), prepended to every series' patches."""
  config: TTMConfig

  @nn.compact
  def __call__(self, h: Array) -> Array:
    tokens = self.param('patch_tokens',
                        initializers.initializer(('normal', 1.0)),
                        (self.config.register_tokens, self.config.d_model))
    b, c = h.shape[:2]
    tokens = jnp.broadcast_to(tokens.astype(h.dtype), (b, c) + tokens.shape)
    return jnp.concatenate([tokens, h], axis=2)


class FFTTokens(nn.Module):
  """r3's `TinyTimeMixerAddFFTPatches`: the indices of the k largest rFFT
  magnitudes of each scaled series (its first `context_length` steps; k is
  `fft_length` capped at the l // 2 + 1 bins), largest first, embedded
  (Embedding(l // 2 + 1, w), or Linear(1 -> w), ReLU, Linear(w -> w) of
  index / (l // 2 + 1)) and prepended: k tokens of width w = d, or with
  `get_one_freq_emb` one token, Linear(k * w -> d) (`freq_concat_proj`) of
  the k embeddings of width w = `fft_d_freq` concatenated. With
  `fft_ignore_dc` the zero-frequency magnitude is set to 0 first. The
  indices carry no gradient (as torch.topk's)."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, h: Array, scaled: Array) -> Array:
    config = self.config
    init = initializers.InitSpec.from_config(config)
    raw = scaled[:, :config.context_length].astype(jnp.float32)
    bins = config.context_length // 2 + 1
    count = config.fft_count
    width = config.fft_d_freq if config.get_one_freq_emb else config.d_model
    magnitude = jnp.abs(jnp.fft.rfft(jax.lax.stop_gradient(raw), axis=1))
    if config.fft_ignore_dc:
      magnitude = magnitude.at[:, 0].set(0.0)
    _, index = jax.lax.top_k(jnp.swapaxes(magnitude, 1, 2), count)
    if config.use_fft_embedding:
      tokens = init.embed(bins, width, name='freq_embedding')(index)
    else:
      z = (index.astype(jnp.float32) / np.float32(bins))[..., None]
      z = layers.Linear(width, init, self.dtype, name='freq_index_mlp_0')(z)
      tokens = layers.Linear(width, init, self.dtype,
                             name='freq_index_mlp_2')(jax.nn.relu(z))
    if config.get_one_freq_emb:  # [b, c, k, w] -> [b, c, 1, d]
      b, c = tokens.shape[:2]
      tokens = layers.Linear(config.d_model, init, self.dtype,
                             name='freq_concat_proj')(
                                 tokens.reshape(b, c, count * width))
      tokens = tokens[:, :, None]
    return jnp.concatenate([tokens.astype(h.dtype), h], axis=2)


class PositionalEncoding(nn.Module):
  """`position_enc` [n, d]: fixed sincos (collection 'buffers') or random."""
  config: TTMConfig

  @nn.compact
  def __call__(self) -> Array:
    n, d = self.config.num_patches, self.config.d_model
    if self.config.positional_encoding_type == 'random':
      std = 0.1 if self.config.post_init else 1.0
      return self.param('position_enc',
                        initializers.initializer(('normal', std)), (n, d))
    return self.variable(
        'buffers', 'position_enc', lambda: initializers.Initialised(
            jnp.asarray(sincos_position_encoding(n, d)), ('sincos',))).value


class TinyTimeMixerModel(nn.Module):
  """The backbone: scaler, patching, encoder (`backbone` in state dicts)."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, past_values: Array, past_observed_mask: Array,
               freq_token: Optional[Array], deterministic: bool):
    config = self.config
    scaled, loc, scale = scalers.apply_scaler(config.scaler_type, past_values,
                                      past_observed_mask)
    patches = scalers.patchify(scaled, config.patch_length, config.patch_stride)
    hidden = TinyTimeMixerEncoder(config, self.dtype, name='encoder')(
        patches, freq_token, deterministic, scaled)
    return hidden, patches, loc, scale
