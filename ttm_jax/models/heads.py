"""The TTM decoder and forecast head (TTM_SPEC.md 1.9-1.11): adapter, raw
residual, static categoricals, decoder mixers; the head's flatten-linear,
channel selection and filter, and the exogenous mixer (FCM).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ttm_jax.models import backbone
from ttm_jax.models import config as config_lib
from ttm_jax.models import initializers
from ttm_jax.models import layers
from ttm_jax.models import scalers

Array = jax.Array
TTMConfig = config_lib.TTMConfig


# ----------------------------------------------------------------- decoder
class CategoricalEmbedding(nn.Module):
  """Static categoricals [b, k] -> [b, k, n, dd] (extra decoder channels)."""
  config: TTMConfig

  @nn.compact
  def __call__(self, values: Array) -> Array:
    config = self.config
    init = initializers.InitSpec.from_config(config)
    values = jnp.asarray(values).astype(jnp.int32)
    embedded = [
        init.embed(vocab, config.decoder_d_model,
                   name=f'embedding_layers_{k}')(values[:, k])
        for k, vocab in enumerate(config.categorical_vocab_size_list)
    ]
    out = jnp.stack(embedded, axis=1)[:, :, None, :]
    return jnp.broadcast_to(
        out, (out.shape[0], out.shape[1], config.num_patches, out.shape[3]))


class TinyTimeMixerDecoder(nn.Module):
  """Adapter, raw residual, categoricals and the decoder mixer block."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, hidden: Array, patches: Array,
               static_categorical_values: Optional[Array],
               deterministic: bool) -> Array:
    config = self.config
    init = initializers.InitSpec.from_config(config)
    x = hidden
    if config.d_model != config.decoder_d_model:
      x = layers.Linear(config.decoder_d_model, init, self.dtype,
                        name='adapter')(x)
    if config.decoder_raw_residual:
      if (config.resolution_prefix_tuning
          and patches.shape[-2] == x.shape[-2] - 1):
        patches = jnp.concatenate(
            [jnp.zeros_like(patches[:, :, :1, :]), patches], axis=2)
      x = x + layers.Linear(config.decoder_d_model, init, self.dtype,
                            name='decoder_raw_embedding')(patches)
    num_channels = config.num_input_channels
    categoricals = config.categorical_vocab_size_list
    if categoricals is not None:
      if static_categorical_values is None:
        raise ValueError(
            'This model has static categoricals (categorical_vocab_size_list='
            f'{list(categoricals)}): pass static_categorical_values of shape '
            f'[b, {len(categoricals)}].')
      values = jnp.asarray(static_categorical_values)
      if values.ndim != 2 or values.shape[1] != len(categoricals):
        raise ValueError(
            f'static_categorical_values must have shape [b, '
            f'{len(categoricals)}], got {tuple(values.shape)}.')
      embedded = CategoricalEmbedding(config,
                                      name='decoder_cat_embedding_layer')(
                                          values)
      x = jnp.concatenate([x, embedded.astype(x.dtype)], axis=1)
      num_channels += len(categoricals)
    spec = backbone.mixer_spec(
        config,
        d_model=config.decoder_d_model,
        num_layers=config.decoder_num_layers,
        dropout=config.head_dropout,
        adaptive_patching_levels=config.decoder_adaptive_patching_levels,
        mode=config.decoder_mode,
        num_channels=num_channels)
    x = layers.MixerBlock(spec, self.dtype, name='decoder_block')(
        x, deterministic)
    if categoricals is not None:
      x = x[:, :hidden.shape[1]]
    return x


# -------------------------------------------------------------------- head
class ForecastChannelHeadMixer(nn.Module):
  """The exogenous mixer (forecast channel mixing, `fcm_block`)."""
  config: TTMConfig  # With prediction_length = F' (as the reference's head).
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, forecast: Array, past_values: Array,
               future_values: Optional[Array], deterministic: bool) -> Array:
    config = self.config
    init = initializers.InitSpec.from_config(config)
    l = config.fcm_context_length
    window = 2 * l + 1
    pci = config.prediction_channel_indices
    eci = config.exogenous_channel_indices
    num_targets = len(pci) if pci is not None else config.num_input_channels
    num_total = num_targets + (len(eci) if eci else 0)
    offset = config.fcm_prepend_past_offset
    stop = past_values.shape[1] - (offset or 0)
    prepend = past_values[:, stop - l:stop, :]
    past_prepend = prepend if pci is None else prepend[..., list(pci)]
    residual = forecast
    if eci:
      if future_values is None:
        raise ValueError(
            'This model mixes exogenous channels '
            f'{list(eci)}: pass future_values with their known future '
            '(any value in the target channels).')
      past_prepend = jnp.concatenate(
          [past_prepend, prepend[..., list(eci)]], axis=-1)
      forecast = jnp.concatenate(
          [forecast, future_values[..., list(eci)].astype(forecast.dtype)],
          axis=-1)
    if forecast.shape[-1] != num_total:
      raise ValueError(
          f'The exogenous mixer was built for {num_total} channels '
          f'({num_targets} forecast + exogenous) but got '
          f'{forecast.shape[-1]}; check num_input_channels.')
    features = window
    if l > 0:
      zeros = jnp.zeros((forecast.shape[0], l, forecast.shape[2]),
                        forecast.dtype)
      left = past_prepend.astype(forecast.dtype) if (
          config.fcm_prepend_past) else zeros
      extended = jnp.concatenate([left, forecast, zeros], axis=1)
      x = scalers.patchify(extended, window, 1)  # [b, t, h', w]
      x = jnp.swapaxes(x, 1, 2)  # [b, h', t, w]
      if config.fcm_use_mixer:
        features = 2 * window
        x = layers.Linear(features, init, self.dtype, name='fcm_embedding')(x)
        spec = backbone.mixer_spec(
            config, num_patches=num_total, d_model=features,
            num_channels=config.prediction_length,
            num_layers=config.fcm_mix_layers, dropout=config.head_dropout,
            mode='common_channel', gated_attn=config.fcm_gated_attn,
            adaptive_patching_levels=0)
        x = layers.MixerBlock(spec, self.dtype, name='exog_mixer')(
            x, deterministic)
      x = x.reshape(x.shape[0], x.shape[1], -1)
    else:
      x = forecast
    if config.fcm_gated_attn:
      x = layers.GatedAttention(num_total * (features if l > 0 else 1), init,
                                self.dtype, config.gate_mode,
                                config.gate_groups,
                                name='fcm_gating_block')(x)
    x = layers.Linear(num_targets, init, self.dtype, name='mlp')(x)
    return x + residual


class TinyTimeMixerForPredictionHead(nn.Module):
  """Flatten -> dropout -> Linear(n*d -> h) -> channels, filter, FCM."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, hidden: Array, past_values: Array,
               future_values: Optional[Array], deterministic: bool) -> Array:
    b, c, n, d = hidden.shape
    config = self.config
    init = initializers.InitSpec.from_config(config)
    x = layers.Dropout(config.head_dropout)(hidden.reshape(b, c, n * d),
                                        deterministic=deterministic)
    forecast = layers.Linear(config.prediction_length, init, self.dtype,
                             name='base_forecast_block')(x)
    forecast = jnp.swapaxes(forecast, 1, 2)  # [b, h, c]
    if config.prediction_channel_indices is not None:
      forecast = forecast[..., list(config.prediction_channel_indices)]
    if config.prediction_filter_length is not None:
      forecast = forecast[:, :config.prediction_filter_length, :]
      if future_values is not None:
        future_values = future_values[:, :config.prediction_filter_length]
    if config.enable_forecast_channel_mixing:
      fcm_config = config
      if config.prediction_filter_length is not None:
        fcm_config = config.replace(
            prediction_length=config.prediction_filter_length,
            prediction_filter_length=None)
      forecast = ForecastChannelHeadMixer(fcm_config, self.dtype,
                                          name='fcm_block')(
                                              forecast, past_values,
                                              future_values, deterministic)
    return forecast


class Conv1d(nn.Module):
  """torch.nn.Conv1d on [m, t, in] (channels last), zero 'same' padding for
  odd kernels; kernel [k, in, out] (the reverse of torch's [out, in, k]),
  torch's default initialisation (fan_in = in * k), or a given start:
  `bias_value` (constant) with a zero kernel."""
  features: int
  kernel_size: int = 1
  bias_value: Optional[Tuple[float, ...]] = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    fan_in = x.shape[-1] * self.kernel_size
    kernel_spec, bias_spec = initializers.linear_init_spec(
        fan_in, self.features, initializers.InitSpec())
    if self.bias_value is not None:
      kernel_spec = ('constant', 0.0)
      bias_spec = ('constant', tuple(self.bias_value))
    kernel = self.param('kernel', initializers.initializer(kernel_spec),
                        (self.kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', initializers.initializer(bias_spec),
                      (self.features,))
    pad = self.kernel_size // 2
    y = jax.lax.conv_general_dilated(
        x, kernel.astype(x.dtype), window_strides=(1,), padding=[(pad, pad)],
        dimension_numbers=('NWC', 'WIO', 'NWC'))
    return y + bias.astype(x.dtype)


def offset_biases(config: TTMConfig) -> Tuple[float, ...]:
  """pw2's initial bias: 0 for the median, then for each side the raw
  offsets whose softplus(raw) + mq_eps are the gaps between consecutive
  standard normal quantiles at the levels (from the median outwards)."""
  levels = sorted(config.quantile_levels)
  normal = statistics.NormalDist()
  z = [normal.inv_cdf(q) for q in levels[len(levels) // 2:]]  # 0, then up.
  gaps = [max(b - a - config.mq_eps, 1e-3) for a, b in zip(z, z[1:])]
  raw = tuple(math.log(math.expm1(g)) for g in gaps)
  return (0.0,) + raw + raw


class MultiQuantileHead(nn.Module):
  """IBM's multi-quantile head (`MultiQuantileHead` of granite-tsfm 0.3.11,
  the same class as on the r3 branch ttm-r3-release-mq2-merge; state-dict
  prefix `multi_quantile_head_block`, the same keys and shapes).

  From the scaled point forecast [b, h, c]: per series, a zero-padded
  temporal convolution (`dw`, 1 -> 1), instance normalisation over the
  horizon (`inorm`, affine), a 1x1 convolution to `mq_hidden` channels
  (`pw1`), exact GELU, and a 1x1 convolution to Q outputs (`pw2`): a median
  bias and k = (Q - 1) / 2 raw offsets on each side. Each offset is
  softplus(raw) + mq_eps, and the quantiles are the median minus or plus
  their cumulative sums: ordered by construction, so they never cross (no
  sorting, whose gradient would swap levels' roles); strictly increasing by
  at least mq_eps (scaled units) wherever float32 resolves the gap. The median is the point forecast plus the bias
  ('median') or the point forecast itself ('mean').

  Differences from the reference: the output is [b, h, c, q] (reference:
  [b, q, h, c]); a new head starts as the point forecast with the standard
  normal's quantiles around it, in the scaled units the head works in
  (`pw2`'s kernel zero, as final layers are often zero-initialised, and its
  bias at the quantile gaps), where torch's default initialisation moves
  the median by a random O(0.5) and starts every offset near softplus(0) =
  0.69 (a 10-90% band of +-2.8): few-shot head probing at the finder's LR
  barely repairs either in 250 steps (ETTh1 5%: 98% coverage of the 80%
  band, WQL above seasonal naive's); the
  loss honours `future_observed_mask` (the reference's ignores it: equal
  without a mask). See `TinyTimeMixerForPrediction` for the loss.
  """
  config: TTMConfig

  @nn.compact
  def __call__(self, forecast: Array,
               decoder_hidden_state: Optional[Array] = None) -> Array:
    config = self.config
    b, h, c = forecast.shape
    levels = len(config.quantile_levels)
    side = levels // 2
    x = jnp.swapaxes(forecast, 1, 2).reshape(b * c, h, 1)
    x = Conv1d(1, config.mq_kernel_size, name='dw')(x)
    x = InstanceNorm(name='inorm')(x)
    x = layers.gelu(Conv1d(config.mq_hidden, 1, name='pw1')(x))
    if config.mq_use_decoder_pool:
      x = self._condition(x, decoder_hidden_state, b, c)
    raw = Conv1d(levels, 1, bias_value=offset_biases(config),
                 name='pw2')(x).reshape(b, c, h, levels)
    raw = jnp.swapaxes(raw, 1, 2)  # [b, h, c, q]
    bias, down, up = (raw[..., :1], raw[..., 1:1 + side],
                      raw[..., 1 + side:1 + 2 * side])
    median = forecast[..., None]
    if config.mq_q50_type == 'median':
      median = median + bias
    below = median - jnp.cumsum(jax.nn.softplus(down) + config.mq_eps, -1)
    above = median + jnp.cumsum(jax.nn.softplus(up) + config.mq_eps, -1)
    return jnp.concatenate([below[..., ::-1], median, above], axis=-1)


  def _condition(self, x: Array, decoded: Array, b: int, c: int) -> Array:
    """r3's decoder conditioning: a per-series projection of the decoder
    output [b, c, n, dd] added to (or concatenated with) the hidden
    features [b * c, h, mq_hidden]."""
    config = self.config
    init = initializers.InitSpec.from_config(config)
    if decoded is None or decoded.shape[:2] != (b, c):
      raise ValueError(
          'mq_use_decoder_pool conditions each forecast series on its '
          'decoder output, so it needs the decoder state of the same '
          f'{c} series (got {None if decoded is None else decoded.shape}): '
          'prediction_channel_indices that drop channels cannot be used '
          'with it (the reference fails too).')
    if config.mq_cond_path == 'pool':
      cond = layers.Linear(config.mq_hidden, init, name='dec_proj')(
          jnp.mean(decoded, axis=2))
    else:
      tokens = layers.Linear(config.mq_decoder_d_model, init,
                             name='dec_tok_proj')(decoded)
      cond = layers.Linear(config.mq_hidden, init,
                           name='dec_flat_to_hidden')(
                               tokens.reshape(b, c, -1))
    cond = jnp.broadcast_to(cond.reshape(b * c, 1, -1).astype(x.dtype),
                            x.shape[:2] + (cond.shape[-1],))
    if config.mq_cond_mode == 'add':
      return x + cond
    return jnp.concatenate([x, cond], axis=-1)


class InstanceNorm(nn.Module):
  """torch.nn.InstanceNorm1d(1, affine=True) on [m, t, 1]: each series
  normalised over t (biased variance, eps 1e-5), then scale and bias."""
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param('scale', initializers.initializer(('constant', 1.0)),
                       (x.shape[-1],))
    bias = self.param('bias', initializers.initializer(('constant', 0.0)),
                      (x.shape[-1],))
    mean = jnp.mean(x, axis=1, keepdims=True)
    variance = jnp.mean(jnp.square(x - mean), axis=1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + self.eps) * scale + bias
