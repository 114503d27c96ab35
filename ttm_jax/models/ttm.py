"""TinyTimeMixer for forecasting, as pure-functional Flax Linen modules.

Computes what `tsfm_public.models.tinytimemixer.TinyTimeMixerForPrediction`
computes (granite-tsfm 0.3.11), given the same weights:

  out = model.apply(variables, past_values, past_observed_mask=None,
                    future_values=None, future_observed_mask=None,
                    freq_token=None, static_categorical_values=None,
                    deterministic=True)

Shapes: `b` batch, `l` context, `c` channels, `h` horizon, `n` patches,
`p` patch length, `d` width.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import losses
from ttm_jax.models import config as config_lib
from ttm_jax.models import layers

Array = jax.Array
TTMConfig = config_lib.TTMConfig


@flax.struct.dataclass
class TTMOutput:
  """Outputs of `TinyTimeMixerForPrediction` (reference field names).

  Attributes:
    prediction_outputs: [b, h', c'] forecasts in the data's units.
    backbone_hidden_state: [b, c, n, d] encoder output.
    decoder_hidden_state: [b, c, n, dd] decoder output (the backbone output
      when there is no decoder).
    loc: [b, 1, c'] scaler location of the output channels.
    scale: [b, 1, c'] scaler scale of the output channels.
    loss: scalar, or None without `future_values` or with `loss=None`.
  """
  prediction_outputs: Array
  backbone_hidden_state: Array
  decoder_hidden_state: Array
  loc: Array
  scale: Array
  loss: Optional[Array] = None


# ---------------------------------------------------------------- scalers
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
  spec = layers.MixerSpec(
      num_patches=config.num_patches,
      d_model=config.d_model,
      num_channels=config.num_input_channels,
      expansion_factor=config.expansion_factor,
      dropout=config.dropout,
      mode=config.mode,
      gated_attn=config.gated_attn,
      norm_mlp=config.norm_mlp,
      norm_eps=config.norm_eps,
      self_attn=config.self_attn,
      self_attn_heads=config.self_attn_heads,
      num_layers=config.num_layers,
      adaptive_patching_levels=config.adaptive_patching_levels,
      init=layers.InitSpec.from_config(config))
  return spec.replace(**changes)


# ----------------------------------------------------------------- encoder
class TinyTimeMixerEncoder(nn.Module):
  """Patch embedding, resolution prefix, positional encoding, mixers."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, patches: Array, freq_token: Optional[Array],
               deterministic: bool) -> Array:
    config = self.config
    init = layers.InitSpec.from_config(config)
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
    if config.use_positional_encoding:
      h = h + PositionalEncoding(config, name='positional_encoder')()
    return layers.MixerBlock(mixer_spec(config), self.dtype,
                             name='mlp_mixer_encoder')(h, deterministic)


class PositionalEncoding(nn.Module):
  """`position_enc` [n, d]: fixed sincos (collection 'buffers') or random."""
  config: TTMConfig

  @nn.compact
  def __call__(self) -> Array:
    n, d = self.config.num_patches, self.config.d_model
    if self.config.positional_encoding_type == 'random':
      std = 0.1 if self.config.post_init else 1.0
      return self.param('position_enc', layers.initializer(('normal', std)),
                        (n, d))
    return self.variable(
        'buffers', 'position_enc', lambda: layers.Initialised(
            jnp.asarray(sincos_position_encoding(n, d)), ('sincos',))).value


class TinyTimeMixerModel(nn.Module):
  """The backbone: scaler, patching, encoder (`backbone` in state dicts)."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, past_values: Array, past_observed_mask: Array,
               freq_token: Optional[Array], deterministic: bool):
    config = self.config
    scaled, loc, scale = apply_scaler(config.scaler_type, past_values,
                                      past_observed_mask)
    patches = patchify(scaled, config.patch_length, config.patch_stride)
    hidden = TinyTimeMixerEncoder(config, self.dtype, name='encoder')(
        patches, freq_token, deterministic)
    return hidden, patches, loc, scale


# ----------------------------------------------------------------- decoder
class CategoricalEmbedding(nn.Module):
  """Static categoricals [b, k] -> [b, k, n, dd] (extra decoder channels)."""
  config: TTMConfig

  @nn.compact
  def __call__(self, values: Array) -> Array:
    config = self.config
    init = layers.InitSpec.from_config(config)
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
    init = layers.InitSpec.from_config(config)
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
    spec = mixer_spec(
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
    init = layers.InitSpec.from_config(config)
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
      x = patchify(extended, window, 1)  # [b, t, h', w]
      x = jnp.swapaxes(x, 1, 2)  # [b, h', t, w]
      if config.fcm_use_mixer:
        features = 2 * window
        x = layers.Linear(features, init, self.dtype, name='fcm_embedding')(x)
        spec = mixer_spec(
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
                                self.dtype, name='fcm_gating_block')(x)
    x = layers.Linear(num_targets, init, self.dtype, name='mlp')(x)
    return x + residual


class TinyTimeMixerForPredictionHead(nn.Module):
  """Flatten -> dropout -> Linear(n*d -> h) -> channels, filter, FCM."""
  config: TTMConfig
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, hidden: Array, past_values: Array,
               future_values: Optional[Array], deterministic: bool) -> Array:
    config = self.config
    init = layers.InitSpec.from_config(config)
    b, c, n, d = hidden.shape
    x = nn.Dropout(config.head_dropout)(hidden.reshape(b, c, n * d),
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


# ------------------------------------------------------------ full models
def _check_past(config: TTMConfig, past_values, short_context: str):
  if past_values.ndim != 3:
    raise ValueError(
        'past_values must have 3 dimensions [batch, time, channels], got '
        f'shape {tuple(past_values.shape)}.')
  length = config.sequence_length
  if past_values.shape[1] < length and short_context != 'pad':
    raise ValueError(
        f'past_values has {past_values.shape[1]} time steps but this model '
        f'needs a context of {length} (its checkpoint fixes context_length). '
        'Give a longer history, zero-pad it at the front with a '
        'past_observed_mask of 0 there (ttm_jax.models.ttm.pad_context), or '
        'build the model with short_context="pad" to pad as the reference '
        'does.')
  if config.needs_fixed_channels and (
      past_values.shape[2] != config.num_input_channels):
    raise ValueError(
        f'past_values has {past_values.shape[2]} channels but the model was '
        f'built for num_input_channels={config.num_input_channels} '
        '(channel mixing and the exogenous mixer have weights per channel).')
  pci = config.prediction_channel_indices
  if pci is not None and max(pci) >= past_values.shape[2]:
    raise ValueError(
        f'prediction_channel_indices {list(pci)} out of range for '
        f'{past_values.shape[2]} input channels.')


def pad_context(values: Array, mask: Optional[Array], length: int):
  """Front-pads (or front-crops) [b, l, c] to `length` steps.

  As the reference's forward: zeros in front; the mask is zero-padded when
  given (when it is None the reference treats the padding as observed).
  """
  values = jnp.asarray(values)
  steps = values.shape[1]
  if steps >= length:
    values = values[:, steps - length:]
    return values, None if mask is None else jnp.asarray(mask)[:, steps -
                                                                 length:]
  pad = [(0, 0), (length - steps, 0), (0, 0)]
  values = jnp.pad(values, pad)
  if mask is not None:
    mask = jnp.pad(jnp.asarray(mask), pad)
  return values, mask


class TinyTimeMixerForPrediction(nn.Module):
  """TinyTimeMixer with its forecast head (the reference's forward).

  Attributes:
    config: the model configuration.
    dtype: compute dtype of the matmuls (None: that of the inputs);
      parameters stay float32.
    short_context: 'error' (default) raises a clear error for inputs shorter
      than the context; 'pad' zero-pads them in front, as the reference's
      forward does.
  """
  config: TTMConfig
  dtype: Optional[Any] = None
  short_context: str = 'error'

  def _forward(self, past_values, past_observed_mask, future_values,
               future_observed_mask, freq_token, static_categorical_values,
               deterministic):
    config = self.config
    past_values = jnp.asarray(past_values)
    if not jnp.issubdtype(past_values.dtype, jnp.floating):
      past_values = past_values.astype(jnp.float32)
    _check_past(config, past_values, self.short_context)
    past_values, past_observed_mask = pad_context(
        past_values, past_observed_mask, config.sequence_length)
    if past_observed_mask is None:
      mask = jnp.ones_like(past_values)
    else:
      if tuple(past_observed_mask.shape) != tuple(past_values.shape):
        raise ValueError(
            f'past_observed_mask shape {tuple(past_observed_mask.shape)} '
            f'does not match past_values {tuple(past_values.shape)}.')
      mask = past_observed_mask.astype(past_values.dtype)
    hidden, patches, loc, scale = TinyTimeMixerModel(
        config, self.dtype, name='backbone')(past_values, mask, freq_token,
                                             deterministic)
    if config.use_decoder:
      decoded = TinyTimeMixerDecoder(config, self.dtype, name='decoder')(
          hidden, patches, static_categorical_values, deterministic)
    else:
      decoded = hidden
    if future_values is not None:
      future_values = jnp.asarray(future_values)
      if future_values.ndim != 3:
        raise ValueError('future_values must have 3 dimensions [batch, '
                         f'time, channels], got {tuple(future_values.shape)}.')
    y_hat = TinyTimeMixerForPredictionHead(config, self.dtype, name='head')(
        decoded, past_values, future_values, deterministic)
    pci = config.prediction_channel_indices
    if pci is not None:
      loc, scale = loc[..., list(pci)], scale[..., list(pci)]
    y_hat = y_hat.astype(jnp.float32) * scale + loc
    loss = None
    if future_values is not None and config.loss is not None:
      loss = self._loss(y_hat, future_values, future_observed_mask)
    return TTMOutput(prediction_outputs=y_hat, backbone_hidden_state=hidden,
                     decoder_hidden_state=decoded, loc=loc, scale=scale,
                     loss=loss)

  def _loss(self, y_hat, target, mask):
    config = self.config
    target, mask = align_targets(config, target, mask)
    if target.shape != y_hat.shape:
      raise ValueError(
          f'future_values (after the reference\'s filtering to {target.shape}'
          f') does not match the forecast {y_hat.shape}: pass [b, '
          f'{config.output_length} (or {config.prediction_length}), '
          f'{config.num_input_channels} or {y_hat.shape[2]}].')
    if mask is not None and mask.shape != target.shape:
      raise ValueError(f'future_observed_mask shape {mask.shape} does not '
                       f'match future_values {target.shape}.')
    return losses.forecast_loss(config.loss, y_hat, target, mask,
                                quantile=config.quantile,
                                huber_delta=config.huber_delta)

  @nn.compact
  def __call__(self, past_values: Array,
               past_observed_mask: Optional[Array] = None,
               future_values: Optional[Array] = None,
               future_observed_mask: Optional[Array] = None,
               freq_token: Optional[Array] = None,
               static_categorical_values: Optional[Array] = None,
               deterministic: bool = True) -> TTMOutput:
    """Forecasts from `past_values` [b, l, c].

    Args:
      past_values: [b, l_in, c] history; the last `context_length` steps are
        used.
      past_observed_mask: [b, l_in, c], 1/True where observed (scaler stats).
      future_values: [b, h or h', c or c'] targets (loss) and the known
        future of exogenous channels (FCM).
      future_observed_mask: mask of `future_values` for the loss.
      freq_token: [b] resolution-prefix tokens (required with RPT).
      static_categorical_values: [b, k] categorical ids.
      deterministic: False enables dropout (needs a 'dropout' rng).

    Returns:
      `TTMOutput`.
    """
    return self._forward(past_values, past_observed_mask, future_values,
                         future_observed_mask, freq_token,
                         static_categorical_values, deterministic)


def masked_prediction_config(config: TTMConfig) -> TTMConfig:
  """The config `TinyTimeMixerForMaskedPrediction.__init__` derives."""
  append = config.output_length
  if config.masked_context_length == config.context_length + append:
    return config
  return config.replace(masked_context_length=config.context_length + append,
                        fcm_prepend_past_offset=append,
                        num_patches=None)


class TinyTimeMixerForMaskedPrediction(TinyTimeMixerForPrediction):
  """Forecasts h' masked steps appended to the context (reference variant).

  Build it with `masked_prediction_config(config)`. Exogenous channels keep
  their known future in the appended steps.
  """

  @nn.compact
  def __call__(self, past_values, past_observed_mask=None,
               future_values=None, future_observed_mask=None,
               freq_token=None, static_categorical_values=None,
               deterministic=True) -> TTMOutput:
    config = self.config
    if config.masked_context_length is None:
      raise ValueError('Build TinyTimeMixerForMaskedPrediction with '
                       'masked_prediction_config(config).')
    append = config.output_length
    past_values = jnp.asarray(past_values, jnp.float32)
    b, _, c = past_values.shape
    # As the reference: the masked channels are those of
    # range(num_input_channels) that are not exogenous; without exogenous
    # channels every appended value is the mask value.
    eci = config.exogenous_channel_indices
    non_exog = [i for i in range(config.num_input_channels)
                if i not in (eci or ())]
    if future_values is None:
      appended = jnp.zeros((b, append, c), past_values.dtype)
    else:
      if jnp.shape(future_values)[-1] != c:
        raise ValueError(
            'The masked-prediction variant appends future_values to the '
            f'context, so it needs all {c} channels; got '
            f'{jnp.shape(future_values)[-1]}.')
      appended = jnp.asarray(future_values, past_values.dtype)[:, :append]
    if eci is None:
      appended = jnp.full_like(appended, config.mask_value)
    else:
      appended = appended.at[:, :, non_exog].set(config.mask_value)
    values = jnp.concatenate([past_values, appended], axis=1)
    mask = jnp.ones_like(values)
    if past_observed_mask is not None:
      mask = mask.at[:, :past_observed_mask.shape[1]].set(
          jnp.asarray(past_observed_mask, values.dtype))
    # The reference unmasks the last F (not F') steps, clamped at the start.
    start = max(values.shape[1] - config.prediction_length, 0)
    mask = mask.at[:, start:, non_exog].set(0.0)
    return self._forward(values, mask, future_values, future_observed_mask,
                         freq_token, static_categorical_values, deterministic)


# ---------------------------------------------------------------- helpers
MODEL_INPUTS = ('past_values', 'past_observed_mask', 'future_values',
                'future_observed_mask', 'freq_token',
                'static_categorical_values')


def model_inputs(batch, config: TTMConfig):
  """The arguments of `model.apply` that `config` reads, taken from a batch
  (a dict that may hold more, e.g. a data pipeline's `weight`)."""
  skip = set()
  if not config.resolution_prefix_tuning:
    skip.add('freq_token')
  if config.categorical_vocab_size_list is None:
    skip.add('static_categorical_values')
  return {k: batch[k] for k in MODEL_INPUTS if k in batch and k not in skip}


def align_targets(config: TTMConfig, target: Array,
                  mask: Optional[Array] = None):
  """Targets (and their mask) aligned with the forecast as the reference
  aligns them: cut to `prediction_filter_length` steps, and reduced to
  `prediction_channel_indices` unless already reduced."""
  pfl, pci = config.prediction_filter_length, config.prediction_channel_indices
  if pfl is not None and target.shape[1] != pfl:
    target = target[:, :pfl]
    mask = None if mask is None else mask[:, :pfl]
  if (pci is not None and target.shape[2] != len(pci)
      and target.shape[2] > max(pci)):
    target = target[..., list(pci)]
    mask = None if mask is None else mask[..., list(pci)]
  return target, mask


def example_batch(config: TTMConfig, batch_size: int = 1):
  """Zero inputs with everything `config` reads (for init, eval_shape and
  compilation), with channels enough for every configured index."""
  channels = config.num_input_channels
  for indices in (config.prediction_channel_indices,
                  config.exogenous_channel_indices):
    if indices is not None:
      channels = max(channels, max(indices) + 1)
  past = (batch_size, config.context_length, channels)
  future = (batch_size, config.prediction_length, channels)
  batch = {
      'past_values': jnp.zeros(past, jnp.float32),
      'future_values': jnp.zeros(future, jnp.float32),
      'freq_token': jnp.zeros((batch_size,), jnp.int32),
      'static_categorical_values': jnp.zeros(
          (batch_size, len(config.categorical_vocab_size_list or ())),
          jnp.int32),
  }
  return model_inputs(batch, config)


def build_module(config: TTMConfig, **module_kwargs) -> nn.Module:
  """The Linen module for `config` (the masked variant if configured so)."""
  if config.masked_context_length is not None:
    return TinyTimeMixerForMaskedPrediction(config, **module_kwargs)
  return TinyTimeMixerForPrediction(config, **module_kwargs)
