"""Validation of `TTMConfig`: each field's type and allowed values, then the
combinations the reference TTM cannot build.

Every rule raises `errors.ConfigError` naming the field, the value and what
is accepted; `TTMConfig.from_json_file` prefixes the file it came from.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple

from ttm_jax import errors

LOSSES = ('mse', 'mae', 'pinball', 'huber', None)
MODES = ('common_channel', 'mix_channel')
INIT_SCHEMES = ('pytorch', 'normal', 'uniform', 'xavier_uniform')
SCALINGS = ('std', 'mean', True, False, None)


def _fail(name: str, value, accepted: str):
  raise errors.ConfigError(f'{name}={value!r} is invalid: {accepted}.')


def _integer(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def at_least(low: int) -> Callable:
  def check(name, value):
    if not _integer(value) or value < low:
      _fail(name, value, f'must be an integer >= {low}')
  return check


def integer(name, value):
  if not _integer(value):
    _fail(name, value, 'must be an integer')


def number(low: float, high: float, closed_high: bool = False) -> Callable:
  def check(name, value):
    ok = _number(value) and low <= value and (
        value <= high if closed_high else value < high)
    if not ok:
      _fail(name, value, f'must be a number in [{low}, {high}'
            f'{"]" if closed_high else ")"}')
  return check


def positive(name, value):
  if not _number(value) or value <= 0:
    _fail(name, value, 'must be a positive number')


def boolean(name, value):
  if not isinstance(value, bool):
    _fail(name, value, 'must be true or false')


def one_of(*allowed) -> Callable:
  def check(name, value):
    if not any(value is a or (type(value) is type(a) and value == a)
               for a in allowed):
      _fail(name, value, f'must be one of {list(allowed)}')
  return check


def norm(name, value):
  if not isinstance(value, str) or not (
      'batch' in value.lower() or value.lower() == 'layernorm'):
    _fail(name, value, "must be 'LayerNorm' or 'BatchNorm'")


def optional(check: Callable) -> Callable:
  def run(name, value):
    if value is not None:
      check(name, value)
  return run


def loss(name, value):
  if value == 'nll':
    raise errors.ConfigError(
        'loss="nll" (distribution heads) is disabled in the reference TTM '
        '("NLL loss and Distribution heads are currently not allowed"); use '
        'mse, mae, pinball or huber.')
  one_of(*LOSSES)(name, value)


def indices(name, value):
  if value is None:
    return
  if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
    _fail(name, value, 'must be a list of integers or null')
  for item in value:
    if not _integer(item) or item < 0:
      _fail(name, value, 'must be a list of non-negative integers or null')


def levels(name, value):
  """Quantile levels: numbers in (0, 1), an odd count, symmetric about and
  including 0.5."""
  if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
    _fail(name, value, 'must be a list of numbers in (0, 1)')
  found = list(value)
  if not found or not all(_number(q) and 0.0 < q < 1.0 for q in found):
    _fail(name, value, 'must be numbers strictly between 0 and 1')
  ordered = sorted(found)
  if len(set(ordered)) != len(ordered):
    _fail(name, value, 'must not repeat a level')
  if len(ordered) % 2 != 1:
    _fail(name, value, f'must be an odd count ({len(ordered)} given), '
          'symmetric about 0.5')
  if not any(abs(q - 0.5) < 1e-9 for q in ordered):
    _fail(name, value, 'must include 0.5 (the median is the point '
          'forecast)')
  if any(abs(a + b - 1.0) > 1e-9 for a, b in zip(ordered, ordered[::-1])):
    _fail(name, value, 'must be symmetric about 0.5 (q and 1 - q)')


def odd(name, value):
  if not _integer(value) or value < 1 or value % 2 == 0:
    _fail(name, value, 'must be an odd integer >= 1')


FIELD_RULES: Dict[str, Callable] = {
    'context_length': at_least(1), 'patch_length': at_least(1),
    'num_input_channels': at_least(1), 'prediction_length': at_least(1),
    'patch_stride': at_least(1),
    'prediction_channel_indices': indices,
    'exogenous_channel_indices': indices,
    'd_model': at_least(1), 'expansion_factor': at_least(1),
    'num_layers': at_least(1), 'dropout': number(0.0, 1.0),
    'mode': one_of(*MODES), 'gated_attn': boolean, 'norm_mlp': norm,
    'self_attn': boolean, 'self_attn_heads': at_least(1),
    'use_positional_encoding': boolean,
    'positional_encoding_type': one_of('sincos', 'random'),
    'scaling': one_of(*SCALINGS), 'loss': loss,
    'init_std': positive, 'post_init': boolean, 'norm_eps': positive,
    'adaptive_patching_levels': integer,
    'resolution_prefix_tuning': boolean,
    'frequency_token_vocab_size': at_least(1),
    'head_dropout': number(0.0, 1.0),
    'distribution_output': one_of('student_t', 'normal',
                                  'negative_binomial'),
    'num_parallel_samples': at_least(1),
    'decoder_num_layers': at_least(1), 'decoder_d_model': at_least(1),
    'decoder_adaptive_patching_levels': integer,
    'decoder_raw_residual': boolean, 'decoder_mode': one_of(*MODES),
    'use_decoder': boolean, 'enable_forecast_channel_mixing': boolean,
    'fcm_gated_attn': boolean, 'fcm_context_length': at_least(0),
    'fcm_use_mixer': boolean, 'fcm_mix_layers': at_least(1),
    'fcm_prepend_past': boolean,
    'fcm_prepend_past_offset': optional(at_least(0)),
    'categorical_vocab_size_list': indices,
    'prediction_filter_length': optional(integer),
    'init_linear': one_of(*INIT_SCHEMES), 'init_embed': one_of(*INIT_SCHEMES),
    'quantile': number(0.0, 1.0), 'huber_delta': positive,
    'mask_value': number(-math.inf, math.inf),
    'num_patches': optional(at_least(1)),
    'masked_context_length': optional(at_least(1)),
    'multi_quantile_head': boolean, 'quantile_levels': levels,
    'point_extra_weight': number(0.0, math.inf), 'mq_hidden': at_least(1),
    'mq_kernel_size': odd, 'mq_eps': positive,
    'mq_use_decoder_pool': boolean, 'mq_q50_type': one_of('median', 'mean'),
    'mq_cond_path': one_of('pool', 'flatten'),
    'mq_cond_mode': one_of('add', 'concat'), 'mq_decoder_d_model': at_least(1),
    'penalize_large_width_ratio': number(0.0, math.inf),
    'width_penalty_mode': one_of('boundary', 'wis'),
}


def check_fields(values: Dict[str, Any]) -> None:
  """Each field's type and allowed values."""
  for name, value in values.items():
    FIELD_RULES[name](name, value)


# ------------------------------------------------------------ combinations
def _check_patching(c, expected_num_patches: int) -> None:
  if c.patch_length != c.patch_stride:
    raise errors.ConfigError(
        f'patch_stride ({c.patch_stride}) must equal patch_length '
        f'({c.patch_length}): the reference TTM (granite-tsfm 0.3.11) raises '
        '"patch_length should be same as patch_stride".')
  if c.sequence_length <= c.patch_length:
    raise errors.ConfigError(
        f'context_length ({c.sequence_length}) must be greater than '
        f'patch_length ({c.patch_length}).')
  if c.num_patches != expected_num_patches:
    raise errors.ConfigError(
        f'num_patches={c.num_patches} (from the checkpoint) contradicts '
        f'context_length={c.sequence_length}, patch_length={c.patch_length},'
        f' resolution_prefix_tuning={c.resolution_prefix_tuning}, which give '
        f'{expected_num_patches} patches. A checkpoint\'s weights fix its '
        'context length; load a checkpoint made for this context (or zero-'
        'pad shorter inputs) instead of overriding context_length.')
  if c.prediction_filter_length is not None and not (
      0 < c.prediction_filter_length <= c.prediction_length):
    raise errors.ConfigError(
        f'prediction_filter_length ({c.prediction_filter_length}) must be in '
        f'(0, prediction_length={c.prediction_length}].')
  if c.masked_context_length is not None and (
      c.masked_context_length <= c.context_length):
    raise errors.ConfigError('masked_context_length must exceed '
                             'context_length.')


def _check_channels(c) -> None:
  for name in ('prediction_channel_indices', 'exogenous_channel_indices'):
    found = getattr(c, name)
    if found is None:
      continue
    if not found:
      raise errors.ConfigError(f'{name} must not be empty (use None for all '
                               'channels).')
    if len(set(found)) != len(found):
      raise errors.ConfigError(f'{name} has repeated channels: '
                               f'{list(found)}.')
    bad = [i for i in found if not 0 <= i < c.num_input_channels]
    if bad and c.needs_fixed_channels:
      raise errors.ConfigError(
          f'{name} {list(found)} has channels {bad} outside [0, '
          f'num_input_channels={c.num_input_channels}).')
  if c.categorical_vocab_size_list is not None:
    if not c.use_decoder or c.decoder_mode != 'mix_channel':
      raise errors.ConfigError(
          'categorical_vocab_size_list needs use_decoder=True and '
          'decoder_mode="mix_channel" (the reference raises "set '
          'decoder_mode to mix_channel when using static categorical '
          'variables").')
    if any(v <= 0 for v in c.categorical_vocab_size_list):
      raise errors.ConfigError('categorical_vocab_size_list entries must be '
                               'positive.')


def _check_fcm(c) -> None:
  if not c.enable_forecast_channel_mixing:
    return
  if c.fcm_context_length == 0 and not c.fcm_gated_attn:
    raise errors.ConfigError(
        'enable_forecast_channel_mixing with fcm_context_length=0 needs '
        'fcm_gated_attn=True (the reference crashes on this combination '
        'with an undefined variable).')
  if c.fcm_context_length == 0 and c.fcm_use_mixer:
    raise errors.ConfigError(
        'enable_forecast_channel_mixing with fcm_context_length=0 and '
        'fcm_use_mixer=True is broken in the reference (it builds the gate '
        'and mlp for 2T features and feeds T: "mat1 and mat2 shapes cannot '
        'be multiplied"); use fcm_context_length >= 1 or '
        'fcm_use_mixer=False.')
  offset = c.fcm_prepend_past_offset
  if c.fcm_context_length > 0 and offset == 0:
    raise errors.ConfigError(
        'fcm_prepend_past_offset=0 selects an empty slice in the reference; '
        'use None to prepend the last steps.')
  if (offset or 0) + c.fcm_context_length > c.sequence_length:
    raise errors.ConfigError('fcm_prepend_past_offset + fcm_context_length '
                             'exceeds the context length.')


def _check_widths(c) -> None:
  for levels, width, label in (
      (c.adaptive_patching_levels, c.d_model, 'd_model'),
      (c.decoder_adaptive_patching_levels, c.decoder_d_model,
       'decoder_d_model')):
    for i in range(max(levels, 0)):
      factor = 2**i if width // 2**i > 4 else 1
      if width % factor:
        raise errors.ConfigError(f'{label} ({width}) must be divisible by '
                                 f'2^{i} for adaptive patching.')
      if c.self_attn and (width // factor) % c.self_attn_heads:
        raise errors.ConfigError(f'{label}/{factor} must be divisible by '
                                 'self_attn_heads.')
  if c.self_attn and c.d_model % c.self_attn_heads:
    raise errors.ConfigError(
        f'd_model ({c.d_model}) must be divisible by self_attn_heads '
        f'({c.self_attn_heads}).')


def _check_quantile_head(c) -> None:
  if not c.multi_quantile_head:
    return
  if c.mq_use_decoder_pool:
    raise errors.ConfigError(
        'multi_quantile_head with mq_use_decoder_pool=True (r3\'s decoder '
        'conditioning) is not implemented in ttm-jax; use '
        'mq_use_decoder_pool=False.')
  if c.penalize_large_width_ratio:
    raise errors.ConfigError(
        'multi_quantile_head with penalize_large_width_ratio='
        f'{c.penalize_large_width_ratio} (r3\'s width penalty) is not '
        'implemented in ttm-jax; use 0.')


def check_combinations(config, expected_num_patches: int) -> None:
  """The combinations the reference cannot build (or builds wrongly)."""
  _check_quantile_head(config)
  _check_patching(config, expected_num_patches)
  _check_channels(config)
  _check_fcm(config)
  _check_widths(config)


def weights_say(state_dict) -> Tuple[Dict[str, Any], Optional[int]]:
  """Fields a reference state dict's shapes fix: ({field: value},
  head input width), read off the patch embedding, adapter, head and
  resolution-prefix embedding."""
  said, head_in = {}, None
  shape = lambda key: tuple(getattr(state_dict[key], 'shape', ()))
  if 'backbone.encoder.patcher.weight' in state_dict:
    said['d_model'], said['patch_length'] = shape(
        'backbone.encoder.patcher.weight')
  if 'decoder.adapter.weight' in state_dict:
    said['decoder_d_model'] = shape('decoder.adapter.weight')[0]
  if 'head.base_forecast_block.weight' in state_dict:
    said['prediction_length'], head_in = shape(
        'head.base_forecast_block.weight')
  if 'backbone.encoder.freq_mod.0.weight' in state_dict:
    said['frequency_token_vocab_size'] = shape(
        'backbone.encoder.freq_mod.0.weight')[0]
  return said, head_in
