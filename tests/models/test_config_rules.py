"""Every rule of TTMConfig that ties two or more fields together
(ttm_jax/models/config_rules.py `check_combinations`), one case each: a
config that breaks it raises ConfigError naming the fields, and the nearest
config that keeps it (one field changed back) builds."""

import pytest

from ttm_jax import errors
from ttm_jax.models import config as config_lib

TTMConfig = config_lib.TTMConfig
FCM = dict(num_input_channels=3, exogenous_channel_indices=(2,),
           enable_forecast_channel_mixing=True)

# rule: (broken fields, the nearest valid fields, words the error names).
RULES = {
    # Quantile head.
    'decoder_pool_without_decoder_needs_equal_widths': (
        dict(multi_quantile_head=True, mq_use_decoder_pool=True,
             use_decoder=False, d_model=16, decoder_d_model=8),
        dict(multi_quantile_head=True, mq_use_decoder_pool=True,
             use_decoder=False, d_model=16, decoder_d_model=16),
        ['mq_use_decoder_pool', 'use_decoder', 'decoder_d_model']),
    'decoder_pool_is_inert_without_quantile_head': (
        None, dict(multi_quantile_head=False, mq_use_decoder_pool=True,
                   use_decoder=False, d_model=16, decoder_d_model=8), []),
    'width_penalty_needs_three_levels': (
        dict(multi_quantile_head=True, penalize_large_width_ratio=0.5,
             quantile_levels=(0.5,)),
        dict(multi_quantile_head=True, penalize_large_width_ratio=0.5,
             quantile_levels=(0.25, 0.5, 0.75)),
        ['penalize_large_width_ratio', 'quantile_levels']),
    # r3 tokens and multi-scale patching.
    'multi_scale_refuses_masked_prediction': (
        dict(multi_scale=True, masked_context_length=80),
        dict(multi_scale=False, masked_context_length=80),
        ['multi_scale', 'masked_context_length']),
    'fft_length_within_rfft_bins': (
        dict(context_length=64, fft_length=34),
        dict(context_length=64, fft_length=33),
        ['fft_length', 'context_length']),
    'fft_length_capped_with_one_freq_emb': (
        None, dict(context_length=64, fft_length=34, get_one_freq_emb=True),
        []),
    'raw_residual_refuses_extra_tokens': (
        dict(decoder_raw_residual=True, register_tokens=2),
        dict(decoder_raw_residual=True, register_tokens=0),
        ['decoder_raw_residual', 'register_tokens']),
    'raw_residual_is_inert_without_decoder': (
        None, dict(decoder_raw_residual=True, register_tokens=2,
                   use_decoder=False), []),
    'num_patches_counts_r3_tokens': (
        dict(register_tokens=2, fft_length=3, multi_scale=True,
             num_patches=8),
        dict(register_tokens=2, fft_length=3, multi_scale=True,
             num_patches=20),
        ['num_patches', 'register_tokens', 'fft_length', 'multi_scale']),
    'num_patches_counts_one_fft_token': (
        dict(fft_length=3, get_one_freq_emb=True, num_patches=11),
        dict(fft_length=3, get_one_freq_emb=True, num_patches=9),
        ['num_patches', 'fft_length', 'get_one_freq_emb']),
    # The decomposed model.
    'decompose_refuses_masked_prediction': (
        dict(decompose=True, masked_context_length=80),
        dict(decompose=False, masked_context_length=80),
        ['decompose', 'masked_context_length']),
    'residual_context_within_context': (
        dict(decompose=True, context_length=64, residual_context_length=65),
        dict(decompose=True, context_length=64, residual_context_length=64),
        ['residual_context_length', 'context_length']),
    'trend_branch_is_a_valid_ttm': (
        dict(decompose=True, trend_patch_length=16),
        dict(decompose=True, trend_patch_length=None),
        ['trend', 'patch_stride']),
    # Patching.
    'patch_stride_equals_patch_length': (
        dict(patch_length=8, patch_stride=4),
        dict(patch_length=8, patch_stride=8),
        ['patch_stride', 'patch_length']),
    'context_longer_than_patch': (
        dict(context_length=8, patch_length=8, patch_stride=8),
        dict(context_length=9, patch_length=8, patch_stride=8),
        ['context_length', 'patch_length']),
    'num_patches_agrees_with_context_and_patch': (
        dict(context_length=64, patch_length=8, patch_stride=8,
             num_patches=9),
        dict(context_length=64, patch_length=8, patch_stride=8,
             num_patches=8),
        ['num_patches', 'context_length', 'patch_length']),
    'num_patches_counts_the_resolution_prefix': (
        dict(resolution_prefix_tuning=True, num_patches=8),
        dict(resolution_prefix_tuning=True, num_patches=9),
        ['num_patches', 'resolution_prefix_tuning']),
    'prediction_filter_length_within_prediction_length': (
        dict(prediction_length=16, prediction_filter_length=17),
        dict(prediction_length=16, prediction_filter_length=16),
        ['prediction_filter_length', 'prediction_length']),
    'masked_context_length_exceeds_context_length': (
        dict(context_length=64, masked_context_length=64),
        dict(context_length=64, masked_context_length=80),
        ['masked_context_length', 'context_length']),
    # Channels: indices inside num_input_channels when weights fix channels.
    'prediction_channels_inside_num_input_channels_mix_channel': (
        dict(mode='mix_channel', num_input_channels=2,
             prediction_channel_indices=(0, 2)),
        dict(mode='mix_channel', num_input_channels=3,
             prediction_channel_indices=(0, 2)),
        ['prediction_channel_indices', 'num_input_channels']),
    'prediction_channels_unchecked_for_common_channel': (
        None, dict(mode='common_channel', decoder_mode='common_channel',
                   num_input_channels=2, prediction_channel_indices=(0, 2)),
        []),
    'exogenous_channels_inside_num_input_channels_mix_decoder': (
        dict(decoder_mode='mix_channel', num_input_channels=2,
             exogenous_channel_indices=(2,),
             prediction_channel_indices=(0,)),
        dict(decoder_mode='mix_channel', num_input_channels=3,
             exogenous_channel_indices=(2,),
             prediction_channel_indices=(0,)),
        ['exogenous_channel_indices', 'num_input_channels']),
    'mix_decoder_unused_without_decoder_fixes_no_channels': (
        None, dict(decoder_mode='mix_channel', use_decoder=False,
                   num_input_channels=2, exogenous_channel_indices=(2,),
                   prediction_channel_indices=(0,)), []),
    'channels_inside_num_input_channels_with_fcm': (
        dict(FCM, num_input_channels=2),
        dict(FCM, num_input_channels=3),
        ['exogenous_channel_indices', 'num_input_channels']),
    'categoricals_need_mix_channel_decoder': (
        dict(categorical_vocab_size_list=(3,), decoder_mode='common_channel'),
        dict(categorical_vocab_size_list=(3,), decoder_mode='mix_channel'),
        ['categorical_vocab_size_list', 'decoder_mode']),
    'categoricals_need_the_decoder': (
        dict(categorical_vocab_size_list=(3,), decoder_mode='mix_channel',
             use_decoder=False),
        dict(categorical_vocab_size_list=(3,), decoder_mode='mix_channel',
             use_decoder=True),
        ['categorical_vocab_size_list', 'use_decoder']),
    # Forecast channel mixing.
    'fcm_without_context_needs_gated_attn': (
        dict(FCM, fcm_context_length=0, fcm_gated_attn=False),
        dict(FCM, fcm_context_length=0, fcm_gated_attn=True),
        ['enable_forecast_channel_mixing', 'fcm_context_length',
         'fcm_gated_attn']),
    'fcm_without_context_refuses_the_mixer': (
        dict(FCM, fcm_context_length=0, fcm_use_mixer=True),
        dict(FCM, fcm_context_length=0, fcm_use_mixer=False),
        ['enable_forecast_channel_mixing', 'fcm_context_length',
         'fcm_use_mixer']),
    'fcm_rules_are_inert_without_fcm': (
        None, dict(num_input_channels=3, exogenous_channel_indices=(2,),
                   enable_forecast_channel_mixing=False, fcm_context_length=0,
                   fcm_gated_attn=False, fcm_use_mixer=True), []),
    'fcm_prepend_past_offset_zero_with_context': (
        dict(FCM, fcm_context_length=1, fcm_prepend_past_offset=0),
        dict(FCM, fcm_context_length=1, fcm_prepend_past_offset=None),
        ['fcm_prepend_past_offset']),
    'fcm_offset_and_window_inside_context': (
        dict(FCM, context_length=64, fcm_context_length=3,
             fcm_prepend_past_offset=62),
        dict(FCM, context_length=64, fcm_context_length=3,
             fcm_prepend_past_offset=61),
        ['fcm_prepend_past_offset', 'fcm_context_length', 'context length']),
    # Widths of the adaptive-patching levels and attention heads.
    'd_model_divisible_at_each_adaptive_level': (
        dict(d_model=22, adaptive_patching_levels=3),
        dict(d_model=22, adaptive_patching_levels=2),
        ['d_model', 'adaptive patching']),
    'decoder_d_model_divisible_at_each_adaptive_level': (
        dict(decoder_d_model=22, decoder_adaptive_patching_levels=3),
        dict(decoder_d_model=22, decoder_adaptive_patching_levels=2),
        ['decoder_d_model', 'adaptive patching']),
    'adaptive_level_width_divisible_by_heads': (
        dict(d_model=16, adaptive_patching_levels=2, self_attn=True,
             self_attn_heads=16, decoder_d_model=16),
        dict(d_model=16, adaptive_patching_levels=1, self_attn=True,
             self_attn_heads=16, decoder_d_model=16),
        ['d_model/2', 'self_attn_heads']),
    'decoder_level_width_divisible_by_heads': (
        dict(d_model=16, self_attn=True, self_attn_heads=16,
             decoder_d_model=8, decoder_adaptive_patching_levels=1),
        dict(d_model=16, self_attn=True, self_attn_heads=16,
             decoder_d_model=16, decoder_adaptive_patching_levels=1),
        ['decoder_d_model', 'self_attn_heads']),
    # Known gap: without decoder adaptive patching, decoder_d_model is not
    # checked against self_attn_heads; the config builds, the model then
    # fails inside Flax (ZeroDivisionError, or a reshape error for 12 vs 8
    # heads) where the reference raises "embed_dim must be divisible by
    # num_heads".
    'decoder_width_divisible_by_heads': (
        dict(d_model=16, self_attn=True, self_attn_heads=16,
             decoder_d_model=8),
        dict(d_model=16, self_attn=True, self_attn_heads=16,
             decoder_d_model=16),
        ['decoder_d_model', 'self_attn_heads']),
    'd_model_divisible_by_heads': (
        dict(d_model=16, self_attn=True, self_attn_heads=3, decoder_d_model=6,
             decoder_num_layers=1),
        dict(d_model=18, self_attn=True, self_attn_heads=3, decoder_d_model=6,
             decoder_num_layers=1),
        ['d_model', 'self_attn_heads']),
    'heads_are_inert_without_self_attn': (
        None, dict(d_model=16, self_attn=False, self_attn_heads=3), []),
}


KNOWN_GAPS = {'decoder_width_divisible_by_heads'}


@pytest.mark.parametrize('rule', [
    pytest.param(r, marks=pytest.mark.xfail(
        strict=True, raises=pytest.fail.Exception,
        reason='config_rules does not check decoder_d_model against '
        'self_attn_heads when decoder_adaptive_patching_levels <= 0'))
    if r in KNOWN_GAPS else r for r in sorted(RULES)])
def test_rule(rule):
  broken, valid, words = RULES[rule]
  TTMConfig(**valid)  # The nearest config that keeps the rule builds.
  if broken is None:  # A case where the rule must not apply.
    return
  changed = {k for k in set(broken) | set(valid)
             if broken.get(k) != valid.get(k)}
  assert len(changed) == 1, f'{rule}: the valid case changes {changed}'
  with pytest.raises(errors.ConfigError) as info:
    TTMConfig(**broken)
  for word in words:
    assert word in str(info.value), (rule, word, str(info.value))


def test_replace_keeps_the_checkpoints_num_patches():
  """A checkpoint's weights fix num_patches: another context is refused,
  with the checkpoint's patches named, unless num_patches is given too."""
  config = TTMConfig(context_length=64)
  with pytest.raises(errors.ConfigError,
                     match=r'num_patches=8 .* context_length=128'):
    config.replace(context_length=128)
  assert config.replace(context_length=128, num_patches=16).num_patches == 16


def test_every_combination_check_has_a_case():
  """A new cross-field check in config_rules.check_combinations needs a
  case here: the checks it runs are the ones this table was written for."""
  from ttm_jax.models import config_rules  # pylint: disable=g-import-not-at-top
  import inspect  # pylint: disable=g-import-not-at-top
  source = inspect.getsource(config_rules.check_combinations)
  checks = sorted(name for name in dir(config_rules)
                  if name.startswith('_check_') and name in source)
  assert checks == ['_check_channels', '_check_decomposed', '_check_fcm',
                    '_check_patching', '_check_quantile_head',
                    '_check_r3_tokens', '_check_widths']
  raises = sum(inspect.getsource(getattr(config_rules, name)).count(
      'raise errors.ConfigError') for name in checks)
  # 25 raises: 'must not be empty', 'repeated channels' and 'entries must
  # be positive' are one-field rules; the other 22 have cases above (some
  # several). A new one: add its case to RULES, then count it here.
  assert raises == 25, raises
