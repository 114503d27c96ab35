"""TTMConfig: fields and defaults of the reference, config.json in and out,
and clear errors for r3 keys and contradictions."""

import dataclasses
import inspect
import json
import os

import pytest

from tests import conftest
from ttm_jax.models import config as config_lib

TTMConfig = config_lib.TTMConfig
tsfm = conftest.require_module('tsfm_public.models.tinytimemixer')


def test_every_reference_field_with_its_default():
  signature = inspect.signature(tsfm.TinyTimeMixerConfig.__init__)
  ours = {f.name: f.default for f in dataclasses.fields(TTMConfig)}
  for name, parameter in signature.parameters.items():
    if name in ('self', 'kwargs'):
      continue
    assert name in ours, name
    default = parameter.default
    if isinstance(default, list):  # Sequences are tuples in ours.
      default = tuple(default)
    assert ours[name] == default, (name, ours[name], default)
  # Derived fields the reference saves.
  assert 'num_patches' in ours and 'masked_context_length' in ours


def test_derived_fields_match_reference():
  for kwargs in (dict(context_length=512, patch_length=64, patch_stride=64),
                 dict(context_length=90, patch_length=8, patch_stride=8,
                      resolution_prefix_tuning=True),
                 dict(num_input_channels=5, exogenous_channel_indices=[4, 1])):
    ours = TTMConfig(**kwargs)
    ref = tsfm.TinyTimeMixerConfig(**kwargs)
    ref.check_and_init_preprocessing()
    assert ours.num_patches == ref.num_patches
    assert list(ours.prediction_channel_indices or []) == list(
        ref.prediction_channel_indices or [])


@pytest.mark.parametrize('folder', [
    'fraware__ChronoAPI__root', 'ErickParra__797_TTM_1__root',
    'Blood-Glucose-Control__nocturnal-hypo-gly-prob-forecast__models-ttm_'
    'tutorial_finetuned_models-output-checkpoint-140'])
def test_reads_real_config_json(folder):
  path = os.path.join(conftest.require_checkpoint(folder), 'config.json')
  raw = json.load(open(path))
  config = TTMConfig.from_json_file(path)
  for key, value in raw.items():
    if key in TTMConfig.field_names():
      got = getattr(config, key)
      got = list(got) if isinstance(got, tuple) else got
      assert got == value, key
  again = TTMConfig.from_dict(config.to_dict())
  assert again == config


def test_num_patches_is_read_not_recomputed():
  values = TTMConfig(context_length=512, patch_length=64,
                     patch_stride=64).to_dict()
  assert values['num_patches'] == 8
  with pytest.raises(config_lib.ConfigError, match='num_patches=8'):
    TTMConfig.from_dict(values, context_length=1024)
  values['num_patches'] = 9  # A file that contradicts itself.
  with pytest.raises(config_lib.ConfigError, match='contradicts'):
    TTMConfig.from_dict(values)


def test_writes_what_the_reference_reads(tmp_path):
  config = TTMConfig(context_length=96, patch_length=12, patch_stride=12,
                     num_input_channels=3, decoder_mode='mix_channel',
                     prediction_channel_indices=[2, 0],
                     categorical_vocab_size_list=[3, 4])
  config.to_json_file(tmp_path / 'config.json')
  ref = tsfm.TinyTimeMixerConfig.from_pretrained(str(tmp_path))
  for name in TTMConfig.field_names():
    want = getattr(config, name)
    if name in config_lib.R3_HIDDEN_DEFAULTS:  # Written only when set.
      assert name not in json.load(open(tmp_path / 'config.json'))
      assert want == config_lib.R3_HIDDEN_DEFAULTS[name]
      continue
    got = getattr(ref, name)
    assert (list(want) if isinstance(want, tuple) else want) == got, name


R3_GETATTR_OPTIONS = dict(gate_mode='group_sigmoid', gate_groups=3,
                          get_one_freq_emb=True, fft_ignore_dc=True,
                          fft_d_freq_min=2, fft_d_freq_max=6)


def test_r3_getattr_options_load_and_are_written_back():
  """The r3 branch's getattr-only options are fields: read from a
  config.json, written back when set, absent when at the default (as in a
  config.json of the branch's)."""
  values = dict(TTMConfig(fft_length=3).to_dict(), **R3_GETATTR_OPTIONS)
  del values['num_patches']  # One FFT token: 9 patches, not 11.
  config = TTMConfig.from_dict(values)
  for key, value in R3_GETATTR_OPTIONS.items():
    assert getattr(config, key) == value, key
  written = config.to_dict()
  assert {k: written[k] for k in R3_GETATTR_OPTIONS} == R3_GETATTR_OPTIONS
  assert TTMConfig.from_dict(written) == config
  assert not set(config_lib.R3_HIDDEN_DEFAULTS) & set(TTMConfig().to_dict())
  for key, default in config_lib.R3_HIDDEN_DEFAULTS.items():
    if key in TTMConfig.field_names():
      assert getattr(TTMConfig(), key) == default, key


@pytest.mark.parametrize('key, value, message', [
    ('gate_mode', 'tanh', "gate_mode='tanh' is invalid: must be one of "
     r"\['softmax', 'sigmoid', 'glu', 'group_sigmoid'\]"),
    ('gate_groups', 2.5, 'gate_groups=2.5 is invalid: must be an integer'),
    ('get_one_freq_emb', 'yes', "get_one_freq_emb='yes' is invalid"),
    ('fft_ignore_dc', 1, 'fft_ignore_dc=1 is invalid'),
    ('fft_d_freq_min', 0, 'fft_d_freq_min=0 is invalid: must be an '
     'integer >= 1'),
    ('fft_d_freq_max', None, 'fft_d_freq_max=None is invalid')])
def test_r3_getattr_options_invalid_values_name_the_field(key, value,
                                                          message):
  with pytest.raises(config_lib.ConfigError, match=message):
    TTMConfig(**{key: value})
  with pytest.raises(config_lib.ConfigError, match=message):
    TTMConfig.from_dict(dict(TTMConfig().to_dict(), **{key: value}))


def test_one_fft_token_counts_one_patch_and_caps_fft_length():
  """With get_one_freq_emb the branch's num_patches counts one FFT token,
  and fft_length beyond the rFFT bins is capped instead of refused."""
  assert TTMConfig(fft_length=3).num_patches == 8 + 3
  assert TTMConfig(fft_length=3, get_one_freq_emb=True).num_patches == 8 + 1
  config = TTMConfig(context_length=64, fft_length=40, get_one_freq_emb=True)
  assert (config.num_patches, config.fft_count) == (8 + 1, 33)
  assert config.fft_d_freq == 4  # max(1, 16 // 33) raised to the minimum.
  with pytest.raises(config_lib.ConfigError, match='fft_length'):
    TTMConfig(context_length=64, fft_length=40)


@pytest.mark.parametrize('gates', [
    dict(), dict(gated_attn=False, num_input_channels=2,
                 exogenous_channel_indices=[1],
                 enable_forecast_channel_mixing=True)])
def test_register_context_gating_is_refused_as_the_branch_cannot_run_it(
    gates):
  values = dict(TTMConfig(**gates).to_dict(),
                use_register_context_gating=True)
  with pytest.raises(config_lib.ConfigError, match='cannot run'):
    TTMConfig.from_dict(values)


def test_register_context_gating_without_a_gate_has_no_effect():
  """The branch runs it when no gate is built: nothing to refuse."""
  plain = TTMConfig(gated_attn=False)
  values = dict(plain.to_dict(), use_register_context_gating=True)
  assert TTMConfig.from_dict(values) == plain


def test_r3_defaults_load_as_r2():
  """A config.json written by the r3 branch with every r3 option at its
  default is the r2 model (field for field)."""
  r3_json = {
      'multi_scale': False, 'register_tokens': 0, 'fft_length': 0,
      'use_fft_embedding': True, 'multi_quantile_head': False,
      'point_extra_weight': 0, 'residual_context_length': None,
      'trend_patch_length': None, 'trend_patch_stride': None,
      'trend_d_model': None, 'trend_decoder_d_model': None,
      'trend_num_layers': None, 'trend_decoder_num_layers': None,
      'trend_register_tokens': None, 'trend_fft_length': None,
      'trend_multi_scale': None, 'trend_adaptive_patching_levels': None,
      'trend_head_d_model': None, 'trend_loss_weight': 1,
      'residual_loss_weight': 1, 'joint_loss_weight': 1,
      'forecast_loss_type': 'joint', 'decompose': False,
      'light_mode': False, 'mq_hidden': 8, 'mq_kernel_size': 3,
      'mq_eps': 1e-06, 'mq_use_decoder_pool': False, 'mq_q50_type': 'median',
      'mq_cond_path': 'pool', 'mq_cond_mode': 'add',
      'mq_decoder_d_model': 8, 'mq_use_positional': False,
      'combine_quantiles_via_variance': False,
      'quantile_levels': [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
      'penalize_large_width_ratio': 0.0, 'width_penalty_mode': 'boundary',
      'enable_base_norm_always': False}
  values = TTMConfig(context_length=512, patch_length=64,
                     patch_stride=64).to_dict()
  r2 = TTMConfig.from_dict(values)
  assert TTMConfig.from_dict(dict(values, **r3_json)) == r2
  # gate_groups is kept but only acts with gate_mode='group_sigmoid'.
  assert TTMConfig.from_dict(dict(values, gate_mode='softmax',
                                  gate_groups=4)) == r2.replace(gate_groups=4)


def test_class_follows_architectures_and_decompose():
  values = TTMConfig(decompose=True, residual_context_length=32).to_dict()
  assert values['architectures'] == [
      config_lib.DECOMPOSED_ARCHITECTURE]
  assert 'num_patches' not in values  # As the reference saves it.
  assert TTMConfig.from_dict(values).decompose
  values['decompose'] = False  # architectures names the class that saved.
  assert TTMConfig.from_dict(values).decompose
  plain = TTMConfig().to_dict()
  assert not TTMConfig.from_dict(dict(plain, decompose=True)).decompose
  del plain['architectures']
  assert TTMConfig.from_dict(dict(plain, decompose=True)).decompose
  assert not TTMConfig.from_dict(values, decompose=False).decompose


@pytest.mark.parametrize('kwargs, message', [
    (dict(prediction_filter_length=17), 'prediction_filter_length'),
    (dict(prediction_filter_length=0), 'prediction_filter_length'),
    (dict(categorical_vocab_size_list=[3]), 'decoder_mode="mix_channel"'),
    (dict(enable_forecast_channel_mixing=True, fcm_context_length=0,
          fcm_gated_attn=False), 'fcm_gated_attn=True'),
    (dict(enable_forecast_channel_mixing=True, fcm_context_length=0,
          fcm_use_mixer=True), 'fcm_use_mixer'),
    (dict(patch_stride=4), 'patch_stride'),
    (dict(context_length=8), 'greater than patch_length'),
    (dict(loss='nll'), 'nll'),
    (dict(loss='rmse'), "loss='rmse' is invalid: must be one of"),
    (dict(mode='mixed'), "mode='mixed' is invalid"),
    (dict(scaling='bogus'), "scaling='bogus' is invalid"),
    (dict(num_layers=-1), 'num_layers=-1 is invalid'),
    (dict(d_model='big'), "d_model='big' is invalid: must be an integer"),
    (dict(num_input_channels=2, decoder_mode='mix_channel',
          prediction_channel_indices=[3]), 'outside'),
    (dict(d_model=30, adaptive_patching_levels=3), 'divisible'),
    (dict(self_attn=True, self_attn_heads=3), 'self_attn_heads'),
])
def test_contradictions_are_clear_errors(kwargs, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    TTMConfig(**kwargs)


def test_unknown_override_and_model_type():
  with pytest.raises(config_lib.ConfigError, match='Unknown TTMConfig'):
    TTMConfig.from_dict({}, contxt_length=3)
  with pytest.raises(config_lib.ConfigError, match='model_type'):
    TTMConfig.from_dict({'model_type': 'patchtst'})


def test_eci_alone_makes_pci_complement():
  config = TTMConfig(num_input_channels=4, exogenous_channel_indices=[3, 1])
  assert config.exogenous_channel_indices == (1, 3)
  assert config.prediction_channel_indices == (0, 2)
