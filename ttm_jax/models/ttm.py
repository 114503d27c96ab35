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

import logging
from typing import Any, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import losses
from ttm_jax.models import backbone
from ttm_jax.models import config as config_lib
from ttm_jax.models import heads

Array = jax.Array
TTMConfig = config_lib.TTMConfig
_LOG = logging.getLogger(__name__)


@flax.struct.dataclass
class TTMOutput:
  """Outputs of `TinyTimeMixerForPrediction` (reference field names).

  Attributes:
    prediction_outputs: [b, h', c'] forecasts in the data's units.
    backbone_hidden_state: [b, c, n, d] encoder output (None with
      `light_mode`, as the next three).
    decoder_hidden_state: [b, c, n, dd] decoder output (the backbone output
      when there is no decoder).
    loc: [b, 1, c'] scaler location of the output channels.
    scale: [b, 1, c'] scaler scale of the output channels.
    loss: scalar, or None without `future_values` or with `loss=None`.
    quantile_outputs: [b, h', c', q] forecasts at `config.quantile_levels`
      (in the data's units), with `multi_quantile_head`; else None. The
      reference's field of this name is [b, q, h', c'].
  """
  prediction_outputs: Array
  backbone_hidden_state: Optional[Array]
  decoder_hidden_state: Optional[Array]
  loc: Optional[Array]
  scale: Optional[Array]
  loss: Optional[Array] = None
  quantile_outputs: Optional[Array] = None


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


_NAN_WARNED = []


def _warn_nan_once(has_nan) -> None:
  if bool(has_nan) and not _NAN_WARNED:
    _NAN_WARNED.append(True)
    _LOG.warning(
        'past_values has NaN entries: they are treated as missing (value 0, '
        'past_observed_mask 0), as the data pipeline treats them. Pass a '
        'past_observed_mask to say which values are observed.')


def warn_if_nan(values) -> None:
  """Says once per process that NaN past values count as missing (host
  arrays: a cheap check before a jitted call)."""
  if values is not None and not _NAN_WARNED:
    _warn_nan_once(np.isnan(np.asarray(values)).any())


def nan_as_missing(values: Array, mask: Optional[Array], warn: bool = True):
  """NaN entries are missing: (values with NaN -> 0, float mask with 0
  there and where `mask` is 0). With concrete values (eager calls, and the
  project's own inference functions, which check on the host) a NaN is
  said once per process; under a user's jit it is treated the same,
  silently (a host callback in every call costs half of a small batch's
  time)."""
  nan = jnp.isnan(values)
  observed = ~nan if mask is None else jnp.logical_and(
      jnp.asarray(mask).astype(bool), ~nan)
  if warn and not isinstance(nan, jax.core.Tracer):
    _warn_nan_once(jnp.any(nan))
  return jnp.where(nan, 0.0, values), observed.astype(values.dtype)




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
               deterministic, return_loss=True):
    config = self.config
    past_values = jnp.asarray(past_values)
    if not jnp.issubdtype(past_values.dtype, jnp.floating):
      past_values = past_values.astype(jnp.float32)
    _check_past(config, past_values, self.short_context)
    past_values, past_observed_mask = pad_context(
        past_values, past_observed_mask, config.sequence_length)
    if past_observed_mask is not None and tuple(
        past_observed_mask.shape) != tuple(past_values.shape):
      raise ValueError(
          f'past_observed_mask shape {tuple(past_observed_mask.shape)} '
          f'does not match past_values {tuple(past_values.shape)}.')
    past_values, mask = nan_as_missing(past_values, past_observed_mask)
    hidden, patches, loc, scale = backbone.TinyTimeMixerModel(
        config, self.dtype, name='backbone')(past_values, mask, freq_token,
                                             deterministic)
    if config.use_decoder:
      decoded = heads.TinyTimeMixerDecoder(config, self.dtype, name='decoder')(
          hidden, patches, static_categorical_values, deterministic)
    else:
      decoded = hidden
    if future_values is not None:
      future_values = jnp.asarray(future_values)
      if future_values.ndim != 3:
        raise ValueError('future_values must have 3 dimensions [batch, '
                         f'time, channels], got {tuple(future_values.shape)}.')
    y_hat = heads.TinyTimeMixerForPredictionHead(
        config, self.dtype, name='head')(decoded, past_values, future_values,
                                         deterministic)
    pci = config.prediction_channel_indices
    if pci is not None:
      loc, scale = loc[..., list(pci)], scale[..., list(pci)]
    quantiles = None
    if config.multi_quantile_head:
      # As the reference: the head reads the scaled forecast; its median is
      # the point forecast; every quantile is unscaled with the same
      # loc/scale.
      quantiles = heads.MultiQuantileHead(
          config, name='multi_quantile_head_block')(
              y_hat.astype(jnp.float32), decoded.astype(jnp.float32))
      y_hat = quantiles[..., len(config.quantile_levels) // 2]
      quantiles = quantiles * scale[..., None] + loc[..., None]
    y_hat = y_hat.astype(jnp.float32) * scale + loc
    loss = None
    if return_loss and future_values is not None and (
        config.loss is not None or config.multi_quantile_head):
      future_values, future_observed_mask = nan_as_missing(
          future_values, future_observed_mask, warn=False)
      loss = self._loss(y_hat, future_values, future_observed_mask, quantiles)
    if config.light_mode:  # As the reference: only forecasts and loss.
      hidden = decoded = loc = scale = None
    return TTMOutput(prediction_outputs=y_hat, backbone_hidden_state=hidden,
                     decoder_hidden_state=decoded, loc=loc, scale=scale,
                     loss=loss, quantile_outputs=quantiles)

  def _loss(self, y_hat, target, mask, quantiles=None):
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
    if quantiles is not None:
      # The reference's loss with the head (whatever `loss` says): pinball
      # averaged over the levels, plus point_extra_weight x L1 of the
      # median, in the data's units; observed targets only.
      return losses.multi_quantile_loss(
          quantiles, target, config.quantile_levels, mask,
          width_penalty=config.penalize_large_width_ratio,
          width_penalty_mode=config.width_penalty_mode) + (
              config.point_extra_weight
              * losses.forecast_loss('mae', y_hat, target, mask))
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
               deterministic: bool = True,
               return_loss: bool = True) -> TTMOutput:
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
      return_loss: False skips the loss (future_values then only serve the
        exogenous mixer).

    Returns:
      `TTMOutput`.
    """
    return self._forward(past_values, past_observed_mask, future_values,
                         future_observed_mask, freq_token,
                         static_categorical_values, deterministic,
                         return_loss)


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
