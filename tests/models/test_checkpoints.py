"""Checkpoint interop: IBM's real checkpoints, the reference's own saves,
save_pretrained round trips, overrides, pytorch_model.bin, the hub path."""

import json
import os
import pickle
import shutil
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import conftest
from tests import reference
from ttm_jax import load_pretrained
from ttm_jax import save_pretrained
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import torch_pickle

torch = reference.torch
tsfm = reference.tsfm

R2 = os.path.join(conftest.CHECKPOINTS, 'fraware__ChronoAPI__root')
MIX = os.path.join(conftest.CHECKPOINTS, 'ErickParra__797_TTM_1__root')
EXOG = os.path.join(
    conftest.CHECKPOINTS,
    'Blood-Glucose-Control__nocturnal-hypo-gly-prob-forecast__models-ttm_'
    'tutorial_finetuned_models-output-checkpoint-140')
REAL = {'ibm_r2_512_96': (R2, 3), 'mix_channel_finetune': (MIX, 31),
        'exogenous_finetune': (EXOG, 6)}


def _need(path):
  conftest.require_checkpoint(os.path.basename(path))


def _compare(folder, ours_model, variables, channels, length=None, **kw):
  ref = tsfm.TinyTimeMixerForPrediction.from_pretrained(folder, **kw).eval()
  config = ours_model.config
  inputs = reference.make_inputs(config, batch_size=4, channels=channels,
                                 length=length, seed=11)
  ours = reference.run_ours(ours_model, variables, inputs)
  reference.assert_outputs_match(
      ours, reference.run_reference(ref, inputs),
      ref64=reference.run_reference_float64(ref, inputs))
  return ours


@pytest.mark.parametrize('name', sorted(REAL))
def test_real_checkpoint_matches_reference(name):
  folder, channels = REAL[name]
  _need(folder)
  config, model, variables, report = load_pretrained(folder,
                                                     return_report=True)
  assert not report.new and not report.dropped
  tensors = open(os.path.join(folder, 'TENSORS.txt')).read()
  assert len(report.loaded) == len(
      [l for l in tensors.splitlines() if l.strip() and '.' in l.split()[0]])
  _compare(folder, model, variables, channels, length=600)


BUNDLED = {  # name: (context, horizon, AP levels, RPT), from the model cards.
    'ttm-public-512-96': (512, 96, 3, False),
    'ttm-public-v2-512-96': (512, 96, 3, True),
}


@pytest.mark.parametrize('name', sorted(BUNDLED))
def test_bundled_model_loads_by_name_offline_and_in_the_reference(name):
  """ttm_jax/pretrained/<name> (pretrained here; its model card is beside
  it): by name, with no network, and by the reference; its config.json
  lists the datasets it was pretrained on, and so does its card."""
  config, model, variables = load_pretrained(name)
  assert (config.context_length, config.prediction_length,
          config.adaptive_patching_levels,
          config.resolution_prefix_tuning) == BUNDLED[name]
  folder = os.path.join(checkpoint.PRETRAINED_DIR, name)
  card = open(os.path.join(folder, 'README.md')).read()
  with open(os.path.join(folder, 'config.json')) as f:
    used = json.load(f)['pretraining_data']
  assert used and all(dataset in card for dataset in used)
  _compare(folder, model, variables, channels=3)


def test_r2_config_is_read_from_file():
  _need(R2)
  config, _, variables = load_pretrained(R2)
  assert (config.context_length, config.patch_length, config.num_patches,
          config.d_model, config.decoder_d_model) == (512, 64, 8, 192, 128)
  count = sum(np.size(v) for v in
              jax_leaves(variables['params']))
  assert count == 805_280  # TTM_SPEC.md 3.2.


def jax_leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree_util.tree_leaves(tree)


def test_save_pretrained_round_trip_loads_in_reference(tmp_path):
  _need(EXOG)
  config, model, variables = load_pretrained(EXOG)
  save_pretrained(str(tmp_path), config, variables)
  ref = tsfm.TinyTimeMixerForPrediction.from_pretrained(
      str(tmp_path), output_loading_info=False).eval()
  original = tsfm.TinyTimeMixerForPrediction.from_pretrained(EXOG).eval()
  for key, value in original.state_dict().items():
    np.testing.assert_array_equal(ref.state_dict()[key].numpy(),
                                  value.numpy(), err_msg=key)
  _compare(str(tmp_path), model, variables, 6)
  _, _, again = load_pretrained(str(tmp_path))
  for a, b in zip(jax_leaves(again), jax_leaves(variables)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


ROUND_TRIP = {
    'rpt_vocab10_pe_selfattn': dict(
        context_length=90, patch_length=10, patch_stride=10,
        prediction_length=30, d_model=40, decoder_d_model=20, num_layers=1,
        decoder_num_layers=1, adaptive_patching_levels=2,
        resolution_prefix_tuning=True, frequency_token_vocab_size=10,
        use_positional_encoding=True, self_attn=True),
    'batchnorm_mix_categorical': dict(
        context_length=52, patch_length=4, patch_stride=4,
        prediction_length=16, d_model=24, decoder_d_model=24,
        num_input_channels=3, decoder_mode='mix_channel', mode='mix_channel',
        norm_mlp='BatchNorm', categorical_vocab_size_list=[4, 2]),
    'fcm_pfl': dict(
        context_length=128, patch_length=16, patch_stride=16,
        prediction_length=48, d_model=48, decoder_d_model=32,
        num_input_channels=5, decoder_mode='mix_channel',
        enable_forecast_channel_mixing=True, fcm_use_mixer=True,
        fcm_context_length=2, exogenous_channel_indices=[3, 4],
        prediction_filter_length=20, adaptive_patching_levels=3),
}


@pytest.mark.parametrize('name', sorted(ROUND_TRIP))
def test_reference_saves_load_and_match(name, tmp_path):
  """Any config.json + model.safetensors the reference writes loads here,
  with the configuration taken from the file; and our save loads there."""
  config = config_lib.TTMConfig(**ROUND_TRIP[name])
  ref, _, _ = reference.build_pair(config, seed=4)
  ref.save_pretrained(str(tmp_path / 'ref'))
  loaded, model, variables, report = load_pretrained(
      str(tmp_path / 'ref'), return_report=True)
  assert loaded == config
  assert not report.new and not report.dropped
  _compare(str(tmp_path / 'ref'), model, variables, config.num_input_channels)
  save_pretrained(str(tmp_path / 'ours'), loaded, variables)
  _compare(str(tmp_path / 'ours'), model, variables, config.num_input_channels)


def test_mix_channel_override_reports_new_weights_like_reference():
  _need(R2)
  overrides = dict(num_input_channels=7, decoder_mode='mix_channel',
                   prediction_channel_indices=[0])
  config, model, variables, report = load_pretrained(
      R2, return_report=True, **overrides)
  _, info = tsfm.TinyTimeMixerForPrediction.from_pretrained(
      R2, output_loading_info=True, **overrides)
  assert sorted(report.new) == sorted(info['missing_keys'])
  assert report.new and all('channel_feature_mixer' in k for k in report.new)
  assert report.dropped == sorted(info['unexpected_keys']) == []
  out = jax.jit(model.apply)(variables, jnp.ones((2, 512, 7)))
  assert out.prediction_outputs.shape == (2, 96, 1)
  # New weights follow torch's default init: U(+-1/sqrt(fan_in)).
  flat = checkpoint.to_state_dict(variables)
  fc1 = flat['decoder.decoder_block.mixers.0.channel_feature_mixer.mlp.fc1.'
             'weight']
  assert fc1.shape == (14, 7)
  assert np.abs(fc1).max() <= 1 / np.sqrt(7) and fc1.std() > 0.1


def test_quantile_head_override_and_export_load_in_reference(tmp_path):
  """r2 plus a new multi-quantile head: the same new weights as the
  reference names; our export loads in the reference (granite-tsfm 0.3.11
  carries r3's MultiQuantileHead) with every key, and matches it."""
  _need(R2)
  config, model, variables, report = load_pretrained(
      R2, return_report=True, multi_quantile_head=True)
  _, info = tsfm.TinyTimeMixerForPrediction.from_pretrained(
      R2, output_loading_info=True, multi_quantile_head=True)
  assert sorted(report.new) == sorted(info['missing_keys'])
  assert report.new and all(k.startswith('multi_quantile_head_block.')
                            for k in report.new)
  save_pretrained(str(tmp_path / 'mq'), config, variables)
  _, info = tsfm.TinyTimeMixerForPrediction.from_pretrained(
      str(tmp_path / 'mq'), output_loading_info=True)
  assert not info['missing_keys'] and not info['unexpected_keys']
  ours = _compare(str(tmp_path / 'mq'), model, variables, 2)
  assert ours['quantile_outputs'].shape == (4, 96, 2, 9)


def test_exogenous_override_creates_fcm_weights():
  _need(R2)
  config, _, _, report = load_pretrained(
      R2, return_report=True, num_input_channels=4, decoder_mode='mix_channel',
      enable_forecast_channel_mixing=True, fcm_use_mixer=True,
      exogenous_channel_indices=[2, 3])
  assert config.prediction_channel_indices == (0, 1)
  assert any(k.startswith('head.fcm_block.exog_mixer') for k in report.new)
  assert 'head.fcm_block.mlp.weight' in report.new


def test_dropped_weights_are_reported():
  _need(EXOG)
  _, _, _, report = load_pretrained(
      EXOG, return_report=True, enable_forecast_channel_mixing=False,
      decoder_mode='common_channel')
  assert 'head.fcm_block.mlp.weight' in report.dropped
  assert any('channel_feature_mixer' in k for k in report.dropped)


def test_contradicting_shapes_are_clear_errors():
  _need(R2)
  with pytest.raises(checkpoint.CheckpointError,
                     match=r'head.base_forecast_block.(weight|bias) is '
                     r'\[96.*but the configuration needs \[192.*your override '
                     r'prediction_length=192, the weights say '
                     r'prediction_length=96'):
    load_pretrained(R2, prediction_length=192)
  with pytest.raises(config_lib.ConfigError, match='num_patches=8'):
    load_pretrained(R2, context_length=1024)
  with pytest.raises(config_lib.ConfigError, match='prediction_filter_length'):
    load_pretrained(R2, prediction_filter_length=200)
  config, model, variables = load_pretrained(R2, prediction_filter_length=24)
  out = jax.jit(model.apply)(variables, jnp.ones((1, 512, 1)))
  assert out.prediction_outputs.shape == (1, 24, 1)


def test_pytorch_bin_read_without_unpickling_objects(tmp_path):
  _need(R2)
  ref = tsfm.TinyTimeMixerForPrediction.from_pretrained(R2)
  folder = tmp_path / 'bin'
  folder.mkdir()
  shutil.copy(os.path.join(R2, 'config.json'), folder)
  torch.save(ref.state_dict(), folder / 'pytorch_model.bin')
  _, model, variables = load_pretrained(str(folder))
  _compare(R2, model, variables, 2)

  class Evil:

    def __reduce__(self):
      return (os.system, ('echo pwned',))

  torch.save({'x': Evil()}, tmp_path / 'evil.bin', _use_new_zipfile_serialization=True)
  with pytest.raises(torch_pickle.UnsafeCheckpointError,
                     match='refusing to unpickle'):
    torch_pickle.load_state_dict(str(tmp_path / 'evil.bin'))
  legacy = tmp_path / 'legacy.bin'
  legacy.write_bytes(pickle.dumps({'a': 1}))
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match='legacy'):
    torch_pickle.load_state_dict(str(legacy))
  assert zipfile.is_zipfile(folder / 'pytorch_model.bin')


def test_hub_id_resolves_through_huggingface_hub_cache(tmp_path, monkeypatch):
  """The hub code path, offline, against a local hub cache."""
  _need(R2)
  cache = tmp_path / 'hub'
  repo = cache / 'models--ibm-granite--granite-timeseries-ttm-r2'
  commit = 'a' * 40
  snapshot = repo / 'snapshots' / commit
  snapshot.mkdir(parents=True)
  for name in ('config.json', 'model.safetensors'):
    shutil.copy(os.path.join(R2, name), snapshot / name)
  (repo / 'refs').mkdir()
  (repo / 'refs' / '512-192-r2').write_text(commit)
  monkeypatch.setenv('HF_HUB_OFFLINE', '1')
  import huggingface_hub.constants  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
  config, _, _ = load_pretrained('ibm-granite/granite-timeseries-ttm-r2',
                                 revision='512-192-r2', cache_dir=str(cache))
  assert config.context_length == 512
  with pytest.raises(checkpoint.CheckpointError, match='Could not fetch'):
    load_pretrained('ibm-granite/granite-timeseries-ttm-r2',
                    revision='1024-96-r2', cache_dir=str(cache))
  with pytest.raises(checkpoint.CheckpointError, match='neither'):
    load_pretrained('./no/such/folder')


def test_missing_files_are_named(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match='No config.json'):
    load_pretrained(str(tmp_path))
  (tmp_path / 'config.json').write_text(json.dumps({'context_length': 32}))
  with pytest.raises(checkpoint.CheckpointError, match='No model.safetensors'):
    load_pretrained(str(tmp_path))


# ------------------------------------------------- broken checkpoints
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)


def _small(folder, change=None, config_change=None, **arch):
  """A small random checkpoint in `folder`; `change(state_dict)` edits its
  weights, `config_change(values)` its config.json."""
  from safetensors.numpy import load_file, save_file  # pylint: disable=g-import-not-at-top
  config = config_lib.TTMConfig(**dict(SMALL, **arch))
  save_pretrained(str(folder), config,
                  checkpoint.init_variables(config, jax.random.key(0)))
  if change:
    state = dict(load_file(folder / 'model.safetensors'))
    change(state)
    save_file(state, folder / 'model.safetensors', metadata={'format': 'pt'})
  if config_change:
    values = json.loads((folder / 'config.json').read_text())
    config_change(values)
    (folder / 'config.json').write_text(json.dumps(values))
  return folder


def _frame():
  import pandas as pd  # pylint: disable=g-import-not-at-top
  return pd.DataFrame({'date': pd.date_range('2024-01-01', periods=100,
                                             freq='h'),
                       'y': np.sin(np.arange(100) / 5)})


def test_non_finite_weights_are_refused_naming_them(tmp_path):
  import ttm_jax  # pylint: disable=g-import-not-at-top
  head, patcher = 'head.base_forecast_block.weight', (
      'backbone.encoder.patcher.bias')

  def poison(state):
    state[head] = np.full_like(state[head], np.nan)
    state[patcher][3] = np.inf

  folder = _small(tmp_path / 'nan', poison)
  words = (rf'{folder}: Checkpoint weights hold non-finite values: '
           rf'{patcher} \(1 inf of 32\), {head} \(2,048 NaN of 2,048\)')
  with pytest.raises(checkpoint.CheckpointError, match=words):
    load_pretrained(str(folder))
  with pytest.raises(checkpoint.CheckpointError, match=words):
    ttm_jax.forecast(_frame(), timestamp_column='date', horizon=16,
                     checkpoint=str(folder))


def test_a_missing_weight_is_an_error_unless_asked_for_fresh(tmp_path):
  import ttm_jax  # pylint: disable=g-import-not-at-top
  key = 'backbone.encoder.patcher.weight'
  folder = _small(tmp_path / 'partial', lambda state: state.pop(key))
  words = (rf'{folder}: the checkpoint lacks 1 weight\(s\) that its '
           rf'config.json needs: {key}\. They would start random.*'
           r'new_weights=')
  with pytest.raises(checkpoint.CheckpointError, match=words):
    load_pretrained(str(folder))
  with pytest.raises(checkpoint.CheckpointError, match=words):
    ttm_jax.forecast(_frame(), timestamp_column='date', horizon=16,
                     checkpoint=str(folder))
  # An override that makes new weights explains those, not this one.
  with pytest.raises(checkpoint.CheckpointError, match=f'needs: {key}.'):
    load_pretrained(str(folder), multi_quantile_head=True)
  # Asked for: started fresh and reported.
  _, _, variables, report = load_pretrained(
      str(folder), return_report=True, new_weights=[r'backbone\..*'])
  assert report.new == [key]
  assert variables['params']['backbone']['encoder']['patcher'][
      'kernel'].shape == (8, 32)
  # A new head that an override asks for stays allowed and reported.
  complete = _small(tmp_path / 'complete')
  _, _, _, report = load_pretrained(str(complete), return_report=True,
                                    multi_quantile_head=True)
  assert report.new and all(k.startswith('multi_quantile_head_block.')
                            for k in report.new)
  with pytest.raises(config_lib.ConfigError, match=r"new_weights: '\(\[' "
                     'is not a regular expression'):
    load_pretrained(str(complete), new_weights=['(['])


def _drop_trend_fields(values):
  for name in config_lib.TREND_FIELDS:
    values.pop(name, None)


@pytest.mark.parametrize('arch, words', [
    (dict(trend_d_model=16, trend_patch_length=16, trend_patch_stride=16),
     r'config.json has no trend_d_model, so the trend branch takes '
     r'd_model=32, but its weights say trend_d_model=16; config.json has no '
     r'trend_patch_length, .* set trend_d_model=16, trend_patch_length=16, '
     r'trend_patch_stride=16 in config.json or as overrides'),
    (dict(num_layers=1, trend_num_layers=2),
     r'config.json has no trend_patch_length, .*trend_num_layers.* and its '
     r'trend branch does not fit the checkpoint: it holds 16 trend-branch '
     r'weight\(s\) that this config does not use'),
    (dict(num_layers=2, trend_num_layers=1),
     r'config.json has no .*trend_num_layers.*: the checkpoint lacks 16 '
     r'weight\(s\)'),
])
def test_a_decomposed_config_without_its_trend_fields_names_them(
    tmp_path, arch, words):
  folder = _small(tmp_path / 'decomposed', None, _drop_trend_fields,
                  decompose=True, **arch)
  with pytest.raises(checkpoint.CheckpointError, match=words):
    load_pretrained(str(folder))
  # With the fields the message names, it loads, every weight used.
  _, _, _, report = load_pretrained(str(folder), return_report=True,
                                    **arch)
  assert not report.new and not report.dropped
