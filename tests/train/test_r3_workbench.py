"""r3 in the workbench: the pretraining and fine-tuning configs train r3
models (decomposed, register tokens), `ttm_jax.forecast` serves a
decomposed r3 model with its quantile head exactly as `model.apply` does,
and 'auto:ibm-research/ttm-r3' picks by the branch's rule."""

import json
import os

import jax
import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

import ttm_jax
from configs import few_shot
from configs import pretrain
from ttm_jax import errors
from ttm_jax import optim
from ttm_jax import schema
from ttm_jax import train
from ttm_jax.data.corpus import writing
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import decomposed
from ttm_jax.inference import choice

# A small decomposed r3 model: residual branch on the last 32 steps, a
# coarser trend branch, register tokens, the multi-quantile head.
DECOMPOSED = dict(context_length=64, prediction_length=16, patch_length=8,
                  patch_stride=8, d_model=16, decoder_d_model=8,
                  num_layers=1, decoder_num_layers=1, decompose=True,
                  residual_context_length=32, trend_patch_length=16,
                  trend_patch_stride=16, register_tokens=2,
                  multi_quantile_head=True, mq_hidden=4,
                  quantile_levels=(0.1, 0.3, 0.5, 0.7, 0.9))


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  folder = tmp_path_factory.mktemp('r3') / 'corpus'
  preparer = writing.Preparer(str(folder), drs={'h': [24]})
  preparer.add_spec('synthetic:num_series=8,length=600,seed=0')
  preparer.close()
  return str(folder)


@pytest.fixture(scope='module')
def decomposed_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('r3') / 'decomposed'
  config = config_lib.TTMConfig(**DECOMPOSED)
  checkpoint.save_pretrained(str(folder), config, checkpoint.init_variables(
      config, jax.random.key(0)))
  return str(folder)


def _loss_curve(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line)['train/loss'] for line in f
            if 'train/loss' in line]


def test_pretraining_config_trains_r3_models(corpus, tmp_path):
  """configs/pretrain.py:r3=decompose with a model.arch override
  (register tokens): both reach the trained and exported model."""
  config = pretrain.get_config(
      f'corpus={corpus},arch=tiny,steps=4,eval_every=4,batch=8,context=64,'
      'horizon=16,eval_windows=16,rpt=false,quick=true,r3=decompose')
  config.model.arch.update(register_tokens=4)
  config.tensorboard = False
  (record,) = train.train_and_evaluate(config, str(tmp_path))
  assert record['architecture']['decompose'] is True
  assert record['architecture']['register_tokens'] == 4
  assert np.isfinite(record['mse']) and record['num_windows'] == 16
  assert all(np.isfinite(_loss_curve(str(tmp_path))))
  ttm_config, module, _ = ttm_jax.load_pretrained(str(tmp_path / 'export'))
  assert ttm_config.decompose and ttm_config.register_tokens == 4
  assert isinstance(module, decomposed.TinyTimeMixerForDecomposedPrediction)


@pytest.mark.parametrize('field, value, complaint', [
    ('register_tokens', -1, 'register_tokens'),
    ('decompose', 'yes', 'decompose'),
    ('trend_patch_lenght', 8, 'trend_patch_length'),  # A typo: named.
])
def test_bad_r3_fields_are_refused_naming_them(field, value, complaint):
  config = pretrain.get_config('synthetic=true,arch=tiny,quick=true')
  config.model.arch[field] = value
  with pytest.raises(errors.ConfigError, match=complaint):
    schema.resolve(config)


def _csv(path, rows=900):
  t = np.arange(rows)
  rng = np.random.default_rng(0)
  pd.DataFrame({
      'date': pd.date_range('2024-01-01', periods=rows, freq='h'),
      'y': 10 + np.sin(2 * np.pi * t / 24) + 0.2 * rng.normal(size=rows),
  }).to_csv(path, index=False)


def test_head_probing_a_decomposed_model_freezes_both_backbones(
    decomposed_dir, tmp_path):
  """configs/few_shot.py on a decomposed r3 checkpoint, with r3 loss
  options as overrides: the backbones of both branches stay bit
  identical, the rest trains."""
  _csv(tmp_path / 'data.csv')
  config = few_shot.get_config(f'checkpoint={decomposed_dir},quick=true,'
                               'context=64,horizon=16,data=mine,fraction=1.0')
  config.model.overrides.update(trend_loss_weight=0.5,
                                combine_quantiles_via_variance=True)
  config.data.update(kind='csv', path=str(tmp_path / 'data.csv'),
                     timestamp_column='date', target_columns=(),
                     batch_size=8)
  config.tensorboard = config.plot = False
  (record,) = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(record['wql'])
  before = load_file(os.path.join(decomposed_dir, 'model.safetensors'))
  after = load_file(str(tmp_path / 'run' / 'export' / 'model.safetensors'))
  backbones = [k for k in before if '.backbone.' in k]
  assert {k.split('.')[0] for k in backbones} == {'trend_forecaster',
                                                   'residual_forecaster'}
  for key in backbones:
    np.testing.assert_array_equal(after[key], before[key], err_msg=key)
  assert any(not np.array_equal(after[k], before[k]) for k in before
             if k not in backbones)
  exported, _, _ = ttm_jax.load_pretrained(str(tmp_path / 'run' / 'export'))
  assert exported.trend_loss_weight == 0.5
  assert exported.combine_quantiles_via_variance


def test_a_frozen_regex_that_matches_nothing_is_refused():
  config = config_lib.TTMConfig(**DECOMPOSED)
  params = checkpoint.init_variables(config, jax.random.key(0))['params']
  with pytest.raises(errors.ConfigError, match="'backbone/.*' matches no"):
    optim.path_labels(params, ('backbone/.*',))
  labels = optim.path_labels(params, ('(.*/)?backbone/.*',))
  assert labels['trend_forecaster']['backbone'] and all(
      v == 'train' for v in jax.tree.leaves(labels['trend_forecaster'][
          'head']))


def test_forecast_with_a_decomposed_quantile_model_equals_model_apply(
    decomposed_dir):
  rows = 200
  t = np.arange(rows)
  df = pd.DataFrame({
      'time': pd.date_range('2024-01-01', periods=rows, freq='h'),
      'y': 50 + 5 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(
          1).normal(size=rows)})
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=decomposed_dir, quantiles=[0.1, 0.9])
  # The expectation by hand: the last 64 rows standardised (float64, the
  # population std), the model applied, mapped back.
  past = df['y'].to_numpy()[-64:, None]
  loc, scale = past.mean(), past.std()
  _, module, variables = ttm_jax.load_pretrained(decomposed_dir)
  result = module.apply(variables,
                        ((past - loc) / scale).astype(np.float32)[None])
  point = np.asarray(result.prediction_outputs)[0, :, 0] * scale + loc
  bands = np.asarray(result.quantile_outputs)[0, :, 0] * scale + loc
  np.testing.assert_allclose(out['y'], point, rtol=1e-5)
  np.testing.assert_allclose(out['y_q0.1'], bands[:, 0], rtol=1e-5)
  np.testing.assert_allclose(out['y_q0.9'], bands[:, 4], rtol=1e-5)
  assert list(out.columns) == ['time', 'y', 'y_q0.1', 'y_q0.9']


def test_auto_r3_chooses_by_the_branch_rule_and_refuses_clearly():
  # No download: the choice only. A history shorter than r2.1's shortest
  # context (52) asks for 52 steps: r2.1's 52-16 model, mapped to r3's
  # 156-step decomposed one (the context is padded).
  assert choice.choose_checkpoint(30, 10, 'h', allow_download=True,
                                  hub_id='ibm-research/ttm-r3') == (
                                      'ibm-research/ttm-r3', '156-16-dec-52-r3')
  assert choice.choose_checkpoint(5000, 96, 'h', allow_download=True,
                                  hub_id='ibm-research/ttm-r3') == (
                                      'ibm-research/ttm-r3', '2048-96-r3')
  df = pd.DataFrame({'time': pd.date_range('2024-01-01', periods=100,
                                           freq='h'), 'y': np.arange(100.)})
  with pytest.raises(errors.ConfigError, match="'auto:' must name"):
    ttm_jax.forecast(df, timestamp_column='time', horizon=8,
                     checkpoint='auto:ibm-granite/granite-timeseries-ttm-r5')
  with pytest.raises(errors.CheckpointError, match='allow_download=True'):
    ttm_jax.forecast(df, timestamp_column='time', horizon=8,
                     checkpoint='auto:ibm-research/ttm-r3')
