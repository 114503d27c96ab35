"""Validation of `TTMConfig`: each field's type and allowed values, then the
combinations the reference TTM cannot build.

A field's rule is a check (`ttm_jax/checks.py`, the language of the
engine's config schema too) returning what is wrong; `check_field` and the
combination checks raise `errors.ConfigError` naming the field, the value
and what is accepted; `TTMConfig.from_json_file` prefixes the file it came
from.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from ttm_jax import checks
from ttm_jax import errors

LOSSES = ('mse', 'mae', 'pinball', 'huber', None)
MODES = ('common_channel', 'mix_channel')
INIT_SCHEMES = ('pytorch', 'normal', 'uniform', 'xavier_uniform')
SCALINGS = ('std', 'mean', True, False, None)
GATE_MODES = ('softmax', 'sigmoid', 'glu', 'group_sigmoid')

_NLL = ('loss="nll" (distribution heads) is disabled in the reference TTM '
        '("NLL loss and Distribution heads are currently not allowed"); use '
        'mse, mae, pinball or huber.')


def _norm(value) -> Optional[str]:
  if isinstance(value, str) and ('batch' in value.lower()
                                 or value.lower() == 'layernorm'):
    return None
  return "must be 'LayerNorm' or 'BatchNorm'"


def _indices(value) -> Optional[str]:
  if value is None:
    return None
  if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
    return 'must be a list of integers or null'
  if all(checks.integer(0)(item) is None for item in value):
    return None
  return 'must be a list of non-negative integers or null'


def _levels(value) -> Optional[str]:
  """Quantile levels: numbers in (0, 1), an odd count, symmetric about and
  including 0.5."""
  if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
    return 'must be a list of numbers in (0, 1)'
  found = list(value)
  if not found or not all(
      checks.number(0.0, 1.0)(q) is None and q > 0.0 for q in found):
    return 'must be numbers strictly between 0 and 1'
  ordered = sorted(found)
  if len(set(ordered)) != len(ordered):
    return 'must not repeat a level'
  if len(ordered) % 2 != 1:
    return (f'must be an odd count ({len(ordered)} given), symmetric about '
            '0.5')
  if not any(abs(q - 0.5) < 1e-9 for q in ordered):
    return 'must include 0.5 (the median is the point forecast)'
  if any(abs(a + b - 1.0) > 1e-9 for a, b in zip(ordered, ordered[::-1])):
    return 'must be symmetric about 0.5 (q and 1 - q)'
  return None


def _odd(value) -> Optional[str]:
  if checks.integer(1)(value) is None and value % 2 == 1:
    return None
  return 'must be an odd integer >= 1'


_count = checks.integer(1)
_boolean = checks.boolean()
_fraction = checks.number(0.0, 1.0)
_positive = checks.positive_number()
_at_least_0 = checks.integer(0)

FIELD_RULES: Dict[str, checks.Check] = {
    'context_length': _count, 'patch_length': _count,
    'num_input_channels': _count, 'prediction_length': _count,
    'patch_stride': _count,
    'prediction_channel_indices': _indices,
    'exogenous_channel_indices': _indices,
    'd_model': _count, 'expansion_factor': _count,
    'num_layers': _count, 'dropout': _fraction,
    'mode': checks.one_of(*MODES), 'gated_attn': _boolean, 'norm_mlp': _norm,
    'self_attn': _boolean, 'self_attn_heads': _count,
    'use_positional_encoding': _boolean,
    'positional_encoding_type': checks.one_of('sincos', 'random'),
    'scaling': checks.one_of(*SCALINGS), 'loss': checks.one_of(*LOSSES),
    'init_std': _positive, 'post_init': _boolean, 'norm_eps': _positive,
    'adaptive_patching_levels': checks.integer(),
    'resolution_prefix_tuning': _boolean,
    'frequency_token_vocab_size': _count,
    'head_dropout': _fraction,
    'distribution_output': checks.one_of('student_t', 'normal',
                                         'negative_binomial'),
    'num_parallel_samples': _count,
    'decoder_num_layers': _count, 'decoder_d_model': _count,
    'decoder_adaptive_patching_levels': checks.integer(),
    'decoder_raw_residual': _boolean, 'decoder_mode': checks.one_of(*MODES),
    'use_decoder': _boolean, 'enable_forecast_channel_mixing': _boolean,
    'fcm_gated_attn': _boolean, 'fcm_context_length': _at_least_0,
    'fcm_use_mixer': _boolean, 'fcm_mix_layers': _count,
    'fcm_prepend_past': _boolean,
    'fcm_prepend_past_offset': checks.optional(_at_least_0),
    'categorical_vocab_size_list': _indices,
    'prediction_filter_length': checks.optional(checks.integer()),
    'init_linear': checks.one_of(*INIT_SCHEMES),
    'init_embed': checks.one_of(*INIT_SCHEMES),
    'quantile': _fraction, 'huber_delta': _positive,
    'mask_value': checks.number(-math.inf, math.inf),
    'num_patches': checks.optional(_count),
    'masked_context_length': checks.optional(_count),
    'multi_quantile_head': _boolean, 'quantile_levels': _levels,
    'point_extra_weight': checks.number(0.0, math.inf), 'mq_hidden': _count,
    'mq_kernel_size': _odd, 'mq_eps': _positive,
    'mq_use_decoder_pool': _boolean,
    'mq_q50_type': checks.one_of('median', 'mean'),
    'mq_cond_path': checks.one_of('pool', 'flatten'),
    'mq_cond_mode': checks.one_of('add', 'concat'),
    'mq_decoder_d_model': _count,
    'penalize_large_width_ratio': checks.number(0.0, math.inf),
    'width_penalty_mode': checks.one_of('boundary', 'wis'),
    # r3.
    'multi_scale': _boolean, 'register_tokens': _at_least_0,
    'fft_length': _at_least_0, 'use_fft_embedding': _boolean,
    'enable_base_norm_always': _boolean, 'light_mode': _boolean,
    'decompose': _boolean,
    'residual_context_length': checks.optional(_count),
    'trend_patch_length': checks.optional(_count),
    'trend_patch_stride': checks.optional(_count),
    'trend_d_model': checks.optional(_count),
    'trend_decoder_d_model': checks.optional(_count),
    'trend_num_layers': checks.optional(_count),
    'trend_decoder_num_layers': checks.optional(_count),
    'trend_register_tokens': checks.optional(_at_least_0),
    'trend_fft_length': checks.optional(_at_least_0),
    'trend_multi_scale': checks.optional(_boolean),
    'trend_adaptive_patching_levels': checks.optional(checks.integer()),
    'trend_head_d_model': checks.optional(_count),
    'trend_loss_weight': checks.number(0.0, math.inf),
    'residual_loss_weight': checks.number(0.0, math.inf),
    'joint_loss_weight': checks.number(0.0, math.inf),
    'forecast_loss_type': checks.string(),
    'combine_quantiles_via_variance': _boolean,
    'mq_use_positional': _boolean,
    # r3 options the branch reads with getattr.
    'gate_mode': checks.one_of(*GATE_MODES), 'gate_groups': checks.integer(),
    'get_one_freq_emb': _boolean, 'fft_ignore_dc': _boolean,
    'fft_d_freq_min': _count, 'fft_d_freq_max': _count,
}


def check_field(name: str, value) -> None:
  """`errors.ConfigError` naming the field, the value and what is
  accepted, when FIELD_RULES[name] complains."""
  if name == 'loss' and value == 'nll':  # The reference's own refusal.
    raise errors.ConfigError(_NLL)
  complaint = FIELD_RULES[name](value)
  if complaint:
    raise errors.ConfigError(f'{name}={value!r} is invalid: {complaint}.')


def _builds_a_gate(values: Dict[str, Any]) -> bool:
  """Whether the model of config.json `values` has a gating block (the
  mixers' with `gated_attn`, FCM's with `fcm_gated_attn`)."""
  return bool(values.get('gated_attn', True) or (
      values.get('enable_forecast_channel_mixing', False)
      and values.get('fcm_gated_attn', True)))


def check_hidden_options(values: Dict[str, Any]) -> None:
  """Refuses `use_register_context_gating=True` where the model has a
  gate: the r3 branch's gates then require a context tensor that none of
  its callers passes (verified in the branch: every forward raises). With
  no gate the option has no effect there, and is ignored here too."""
  if values.get('use_register_context_gating') and _builds_a_gate(values):
    raise errors.ConfigError(
        'use_register_context_gating=True cannot run in the TTM r3 branch '
        'itself (its gates then require a context tensor that no caller '
        'passes: "use_reg_context=True but no context tensor was provided")'
        '; ttm-jax refuses it too (it has no effect only with gated_attn='
        'False and no FCM gate).')


def check_fields(values: Dict[str, Any]) -> None:
  """Each field's type and allowed values."""
  for name, value in values.items():
    check_field(name, value)


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
    r3 = ''.join(f', {name}={getattr(c, name)!r}' for name in (
        'multi_scale', 'register_tokens', 'fft_length', 'get_one_freq_emb',
        'decompose', 'residual_context_length') if getattr(c, name))
    raise errors.ConfigError(
        f'num_patches={c.num_patches} (from the checkpoint) contradicts '
        f'context_length={c.sequence_length}, patch_length={c.patch_length},'
        f' resolution_prefix_tuning={c.resolution_prefix_tuning}{r3}, which '
        'give '
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
  if c.mq_use_decoder_pool and not c.use_decoder and (
      c.d_model != c.decoder_d_model):
    raise errors.ConfigError(
        'multi_quantile_head with mq_use_decoder_pool=True and '
        f'use_decoder=False needs d_model ({c.d_model}) == decoder_d_model '
        f'({c.decoder_d_model}): the head projects the backbone output '
        'with a Linear(decoder_d_model -> mq_hidden) (the reference fails '
        'with a shape error).')
  if c.penalize_large_width_ratio and len(c.quantile_levels) < 3:
    raise errors.ConfigError(
        'penalize_large_width_ratio needs at least 3 quantile_levels (the '
        'reference raises "Width penalty requires at least 3 quantiles").')


def _check_r3_tokens(c) -> None:
  """Register tokens, FFT tokens and multi-scale patching."""
  if c.multi_scale and c.masked_context_length is not None:
    raise errors.ConfigError(
        'multi_scale with masked prediction (masked_context_length) is '
        'refused by the reference ("masked_context_length should be '
        'disabled when multi_scale is on").')
  bins = c.context_length // 2 + 1
  if c.fft_length > bins and not c.get_one_freq_emb:
    raise errors.ConfigError(
        f'fft_length ({c.fft_length}) exceeds the {bins} rFFT bins of '
        f'context_length={c.context_length}: the reference keeps {bins} '
        'tokens but counts fft_length in num_patches (a shape error; with '
        'get_one_freq_emb=True k is capped at the bins and it works).')
  extra = [name for name, on in (
      ('register_tokens', c.register_tokens > 0),
      ('fft_length', c.fft_length > 0), ('multi_scale', c.multi_scale)) if on]
  if c.decoder_raw_residual and c.use_decoder and extra:
    raise errors.ConfigError(
        f'decoder_raw_residual with {", ".join(extra)}: the raw-residual '
        'embedding has one row per base patch but the decoder sees the '
        'extra tokens too (the reference fails with a shape error).')


def _check_decomposed(c) -> None:
  if not c.decompose:
    return
  if c.masked_context_length is not None:
    raise errors.ConfigError(
        'decompose with masked prediction (masked_context_length) does not '
        'exist in the reference (no decomposed masked model).')
  if (c.residual_context_length is not None
      and c.residual_context_length > c.context_length):
    raise errors.ConfigError(
        f'residual_context_length ({c.residual_context_length}) must not '
        f'exceed context_length ({c.context_length}): the residual branch '
        'reads the last steps of the context (the reference raises '
        '"Context length in `past_values` is shorter than TTM '
        'context_length").')
  for branch, make in (('trend', c.trend_config),
                       ('residual', c.residual_config)):
    try:
      make()
    except errors.ConfigError as e:
      raise errors.ConfigError(
          f'decompose: the {branch} branch (its fields: '
          f'{"trend_*" if branch == "trend" else "residual_context_length"}'
          f') is invalid: {e}') from e


def check_combinations(config, expected_num_patches: int) -> None:
  """The combinations the reference cannot build (or builds wrongly)."""
  _check_quantile_head(config)
  _check_r3_tokens(config)
  _check_decomposed(config)
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
