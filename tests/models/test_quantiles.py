"""The multi-quantile head (IBM's r3 MultiQuantileHead): parity with the r3
code, its loss, quantiles that never cross, training through the engine,
save/load, a quantile head on a point checkpoint, and bad input."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests import conftest
from ttm_jax import errors
from ttm_jax import losses
from ttm_jax import train
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import heads
from ttm_jax.models import modules

FIXTURE = os.path.join(conftest.FIXTURES,
                       'r3_multi_quantile.npz')
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1,
             num_input_channels=2)
# The fixture's cases (scripts/make_r3_fixtures.py).
CASES = {
    'default': dict(quantile_levels=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                     0.9), mq_kernel_size=3, mq_hidden=8,
                    mq_q50_type='median', point_extra_weight=0.0),
    'custom': dict(quantile_levels=(0.05, 0.25, 0.5, 0.75, 0.95),
                   mq_kernel_size=5, mq_hidden=4, mq_q50_type='mean',
                   point_extra_weight=0.5),
}


def _head_params(arrays, case):
  """Flax params of the head from the fixture's torch state dict."""
  def get(name):
    return jnp.asarray(arrays[f'{case}/weights/{name}'])
  conv = lambda n: {'kernel': get(f'{n}.weight').T, 'bias': get(f'{n}.bias')}
  return {'dw': conv('dw'), 'pw1': conv('pw1'), 'pw2': conv('pw2'),
          'inorm': {'scale': get('inorm.weight'), 'bias': get('inorm.bias')}}


@pytest.mark.parametrize('case', sorted(CASES))
def test_head_and_loss_match_r3(case):
  arrays = np.load(FIXTURE)
  config = config_lib.TTMConfig(**SMALL, multi_quantile_head=True,
                                **CASES[case])
  head = heads.MultiQuantileHead(config)
  got = head.apply({'params': _head_params(arrays, case)},
                   jnp.asarray(arrays[f'{case}/mean_hat']))
  expected = np.transpose(arrays[f'{case}/quantiles'], (0, 2, 3, 1))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  # r3's loss: pinball over the levels of the unscaled quantiles, plus
  # point_extra_weight x L1 of the median.
  scale, loc = arrays[f'{case}/scale'], arrays[f'{case}/loc']
  quantiles = got * scale[..., None] + loc[..., None]
  median = quantiles[..., len(config.quantile_levels) // 2]
  target = jnp.asarray(arrays[f'{case}/target'])
  loss = losses.multi_quantile_loss(
      quantiles, target, config.quantile_levels) + (
          config.point_extra_weight
          * losses.forecast_loss('mae', median, target))
  np.testing.assert_allclose(loss, arrays[f'{case}/loss'], rtol=1e-5)


def test_whole_model_matches_r3():
  """r3's TinyTimeMixerForPrediction with the head (its config.json and
  weights, loaded strictly): forecasts, quantiles and loss."""
  arrays = np.load(FIXTURE)
  config = config_lib.TTMConfig.from_dict(
      json.loads(str(arrays['model/config_json'])))
  assert config.multi_quantile_head and config.point_extra_weight == 0.3
  state_dict = {k[len('model/weights/'):]: arrays[k] for k in arrays.files
                if k.startswith('model/weights/')}
  variables, _ = checkpoint.convert_state_dict(state_dict, config,
                                               strict=True)
  out = modules.build_module(config).apply(
      variables, arrays['model/past'], future_values=arrays['model/future'])
  np.testing.assert_allclose(out.prediction_outputs,
                             arrays['model/prediction'], atol=1e-5)
  np.testing.assert_allclose(
      out.quantile_outputs,
      np.transpose(arrays['model/quantiles'], (0, 2, 3, 1)), atol=1e-5)
  np.testing.assert_allclose(out.loss, arrays['model/loss'], rtol=1e-5)
  # And our export is what r3 loads: the same keys and shapes.
  exported = checkpoint.to_state_dict(variables)
  assert {k: v.shape for k, v in exported.items()} == {
      k: v.shape for k, v in state_dict.items()}


def _model(seed=0, **fields):
  config = config_lib.TTMConfig(**SMALL, multi_quantile_head=True, **fields)
  return config, modules.build_module(config), checkpoint.init_variables(
      config, jax.random.key(seed))


def test_model_quantiles_are_the_head_on_the_point_forecast():
  """The model's quantiles: the head on its scaled point forecast, unscaled
  with the same loc/scale; the median is prediction_outputs."""
  config, module, variables = _model()
  point_config = config.replace(multi_quantile_head=False)
  point_vars = {'params': {k: v for k, v in variables['params'].items()
                           if k != 'multi_quantile_head_block'}}
  rng = np.random.default_rng(0)
  past = (50 + 10 * rng.normal(size=(4, 64, 2))).astype(np.float32)
  out = module.apply(variables, past)
  base = modules.build_module(point_config).apply(point_vars, past)
  scaled = (base.prediction_outputs - base.loc) / base.scale
  head = heads.MultiQuantileHead(config).apply(
      {'params': variables['params']['multi_quantile_head_block']}, scaled)
  expected = head * base.scale[..., None] + base.loc[..., None]
  np.testing.assert_allclose(out.quantile_outputs, expected, rtol=1e-5,
                             atol=1e-4)
  assert out.quantile_outputs.shape == (4, 16, 2, 9)
  np.testing.assert_array_equal(out.prediction_outputs,
                                out.quantile_outputs[..., 4])


def test_quantiles_never_cross_even_with_wild_weights():
  """Offsets are softplus + eps, summed outwards from the median: ordered
  whatever the weights (strictly at ordinary scales; huge ones can round
  a gap below float32 resolution, never below zero)."""
  config, module, variables = _model()
  past = np.random.default_rng(1).normal(size=(8, 64, 2)).astype(np.float32)
  quantiles = np.asarray(module.apply(variables, past).quantile_outputs)
  assert np.all(np.diff(quantiles, axis=-1) > 0)
  rng = np.random.default_rng(4)
  wild = jax.tree_util.tree_map(  # Random, then huge.
      lambda x: (x + rng.normal(size=x.shape)).astype(np.float32) * 50.0,
      variables['params']['multi_quantile_head_block'])
  variables = {'params': dict(variables['params'],
                              multi_quantile_head_block=wild)}
  quantiles = np.asarray(module.apply(variables, past).quantile_outputs)
  assert np.abs(quantiles).max() > 1e4
  assert np.all(np.diff(quantiles, axis=-1) >= 0)


def test_loss_is_masked_pinball_plus_point_weight():
  config, module, variables = _model(point_extra_weight=0.25)
  rng = np.random.default_rng(2)
  past = rng.normal(size=(3, 64, 2)).astype(np.float32)
  future = rng.normal(size=(3, 16, 2)).astype(np.float32)
  future[0, :4] = np.nan  # Missing targets leave the loss.
  out = module.apply(variables, past, future_values=future)
  q, y = np.asarray(out.quantile_outputs, np.float64), future[..., None]
  taus = np.asarray(config.quantile_levels)
  pinball = np.maximum(taus * (y - q), (taus - 1) * (y - q))
  keep = ~np.isnan(future)
  expected = np.mean(pinball[keep]) + 0.25 * np.mean(
      np.abs(future - np.asarray(out.prediction_outputs))[keep])
  np.testing.assert_allclose(out.loss, expected, rtol=1e-5)


def test_save_load_round_trip(tmp_path):
  config, module, variables = _model(quantile_levels=(0.05, 0.5, 0.95))
  checkpoint.save_pretrained(str(tmp_path), config, variables)
  with open(tmp_path / 'config.json') as f:
    saved = json.load(f)
  assert saved['multi_quantile_head'] is True
  assert saved['quantile_levels'] == [0.05, 0.5, 0.95]
  loaded_config, loaded, loaded_vars = ttm_jax.load_pretrained(str(tmp_path))
  assert loaded_config.quantile_levels == (0.05, 0.5, 0.95)
  past = np.random.default_rng(3).normal(size=(2, 64, 2)).astype(np.float32)
  np.testing.assert_array_equal(
      module.apply(variables, past).quantile_outputs,
      loaded.apply(loaded_vars, past).quantile_outputs)


R2 = os.path.join(conftest.CHECKPOINTS, 'fraware__ChronoAPI__root')


def test_point_checkpoint_gets_a_new_quantile_head(caplog):
  """IBM's r2 weights for the backbone and point head; the quantile head new
  and named as new, as overrides are."""
  conftest.require_checkpoint(os.path.basename(R2))
  config, module, variables = ttm_jax.load_pretrained(
      R2, multi_quantile_head=True)
  assert 'multi_quantile_head_block.pw2.weight' in caplog.text
  _, point_module, point_vars = ttm_jax.load_pretrained(R2)
  past = np.random.default_rng(4).normal(size=(1, 512, 1)).astype(
      np.float32)
  out = module.apply(variables, past)
  assert out.quantile_outputs.shape == (1, 96, 1, 9)
  # The backbone is IBM's: the head reads r2's own point forecast.
  base = point_module.apply(point_vars, past)
  scaled = (base.prediction_outputs - base.loc) / base.scale
  head = heads.MultiQuantileHead(config).apply(
      {'params': variables['params']['multi_quantile_head_block']}, scaled)
  np.testing.assert_allclose(
      out.quantile_outputs, head * base.scale[..., None] + base.loc[..., None],
      rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('levels, rule', [
    ((0.1, 0.5), 'odd count'),
    ((0.1, 0.5, 0.8), 'symmetric'),
    ((0.1, 0.4, 0.6, 0.9, 0.95), 'include 0.5'),
    ((0.0, 0.5, 1.0), 'strictly between 0 and 1'),
])
def test_bad_levels_are_refused(levels, rule):
  with pytest.raises(errors.ConfigError, match=rule):
    config_lib.TTMConfig(**SMALL, multi_quantile_head=True,
                         quantile_levels=levels)


@pytest.mark.parametrize('fields, rule', [
    (dict(mq_use_decoder_pool=True, use_decoder=False, d_model=16,
          decoder_d_model=8), 'mq_use_decoder_pool'),
    (dict(penalize_large_width_ratio=0.1, quantile_levels=(0.5,)),
     'penalize_large_width_ratio'),
    (dict(mq_kernel_size=4), 'odd integer'),
])
def test_options_the_head_cannot_serve_are_refused(fields, rule):
  with pytest.raises(errors.ConfigError, match=rule):
    config_lib.TTMConfig(**dict(SMALL, **fields), multi_quantile_head=True)


def test_few_shot_quantiles_argument():
  from configs import few_shot  # pylint: disable=g-import-not-at-top
  config = few_shot.get_config('data=etth1,quantiles=0.1:0.9')
  assert config.model.overrides.multi_quantile_head
  assert tuple(config.model.overrides.quantile_levels) == (
      0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
  assert config.model.overrides.head_dropout == 0.7
  with pytest.raises(ValueError, match='whole number of steps'):
    few_shot.get_config('quantiles=0.1:0.85')
  from configs import pretrain  # pylint: disable=g-import-not-at-top
  config = pretrain.get_config('synthetic=true,quantiles=0.05:0.95:0.15')
  assert config.model.arch.multi_quantile_head
  np.testing.assert_allclose(config.model.arch.quantile_levels,
                             (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95))


# ------------------------------------------------------------- the engine
def test_quantile_head_trains_through_the_engine(tmp_path):
  """The demo pretraining with a quantile head: the loss falls, validation
  selects on WQL, results carry the quantile metrics beside seasonal
  naive's, and the exported model's quantiles never cross."""
  from configs import demo  # pylint: disable=g-import-not-at-top
  config = demo.get_config('quick=true')
  config.model.arch.update(multi_quantile_head=True)
  config.num_steps = 12
  config.eval_every_steps = config.checkpoint_every_steps = 6
  config.plot = False
  workdir = str(tmp_path / 'run')
  record, = train.train_and_evaluate(config, workdir, argv=['test'])
  for key in ('mse', 'mae', 'mase', 'wql', 'msis', 'coverage_80',
              'coverage_20'):
    assert np.isfinite(record[key]), key
    assert np.isfinite(record['seasonal_naive'][key]), key
  assert 'best_val_wql' in record['training']
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    train_loss = [json.loads(line)['train/loss'] for line in f
                  if 'train/loss' in line]
  assert train_loss[-1] < train_loss[0]
  config_out, module, variables = ttm_jax.load_pretrained(
      os.path.join(workdir, 'export'))
  assert config_out.multi_quantile_head
  past = np.random.default_rng(5).normal(size=(16, 256, 1)).astype(
      np.float32) * 5
  quantiles = np.asarray(module.apply(
      variables, past, freq_token=np.zeros(16, np.int32)).quantile_outputs)
  assert np.all(np.diff(quantiles, axis=-1) > 0)


def test_point_model_asked_for_quantiles_points_to_conformal(tmp_path):
  config = config_lib.TTMConfig(**dict(SMALL, num_input_channels=1))
  folder = str(tmp_path / 'point')
  checkpoint.save_pretrained(folder, config, checkpoint.init_variables(
      config, jax.random.key(0)))
  t = np.arange(300)
  df = pd.DataFrame({'time': pd.date_range('2024-01-01', periods=300,
                                           freq='h'),
                     'y': np.sin(t / 4.0)})
  with pytest.raises(errors.ConfigError, match="intervals='conformal'"):
    ttm_jax.forecast(df, timestamp_column='time', horizon=8,
                     checkpoint=folder, quantiles=[0.1, 0.9],
                     intervals='model')
  from ttm_jax import metrics  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ConfigError, match='conformal'):
    metrics.check_quantile_metrics(['mse', 'wql'], has_quantiles=False)


def test_forecast_uses_the_quantile_head(tmp_path):
  config, _, variables = _model()
  config = config.replace(num_input_channels=1)
  variables = checkpoint.init_variables(config, jax.random.key(0))
  folder = str(tmp_path / 'mq')
  checkpoint.save_pretrained(folder, config, variables)
  t = np.arange(200)
  df = pd.DataFrame({'time': pd.date_range('2024-01-01', periods=200,
                                           freq='h'),
                     'y': 10 + np.sin(t / 4.0)})
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=folder, quantiles=[0.1, 0.5, 0.9])
  _, module, loaded = ttm_jax.load_pretrained(folder)
  expected = np.asarray(module.apply(
      loaded, df[['y']].to_numpy(np.float32)[None, -64:]).quantile_outputs)
  np.testing.assert_allclose(out['y_q0.1'], expected[0, :, 0, 0], rtol=1e-5)
  np.testing.assert_allclose(out['y_q0.9'], expected[0, :, 0, 8], rtol=1e-5)
  np.testing.assert_allclose(out['y'], expected[0, :, 0, 4], rtol=1e-5)
  with pytest.raises(errors.ConfigError, match='not levels'):
    ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                     checkpoint=folder, quantiles=[0.25])
  with pytest.raises(errors.ConfigError, match='rolling'):
    ttm_jax.forecast(df, timestamp_column='time', horizon=40,
                     checkpoint=folder, quantiles=[0.1])


def test_conformal_offsets_are_split_conformal_thresholds():
  """Per step and channel: the ceil((n + 1)(1 - alpha))-th smallest |error|
  (so at least 1 - alpha of the calibration errors lie inside), negative
  below the median, zero at it."""
  from ttm_jax.inference import conformal  # pylint: disable=g-import-not-at-top
  errors_ = np.random.default_rng(6).standard_t(3, size=(199, 4, 2)).astype(
      np.float32)
  errors_[0, 0, 0] = np.nan  # A missing target leaves its cell's count.
  offsets = conformal.offsets(errors_, (0.1, 0.5, 0.9))
  assert offsets.shape == (4, 2, 3)
  np.testing.assert_array_equal(offsets[..., 1], 0.0)
  np.testing.assert_allclose(offsets[..., 0], -offsets[..., 2])
  scores = np.sort(np.abs(errors_[:, 1, 1]))
  rank = int(np.ceil(200 * 0.8))  # n = 199, alpha = 0.2
  assert offsets[1, 1, 2] == pytest.approx(scores[rank - 1], rel=1e-6)
  first = np.sort(np.abs(errors_[1:, 0, 0]))  # n = 198
  assert offsets[0, 0, 2] == pytest.approx(
      first[int(np.ceil(199 * 0.8)) - 1], rel=1e-6)
  inside = np.abs(errors_) <= offsets[..., 2]
  assert np.all(inside.mean(axis=0) >= 0.8)


def test_new_head_starts_at_the_normal_quantile_gaps():
  from statistics import NormalDist  # pylint: disable=g-import-not-at-top
  for levels in ((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                 (0.05, 0.5, 0.95)):
    config = config_lib.TTMConfig(**dict(SMALL, multi_quantile_head=True,
                                         quantile_levels=levels))
    raw = np.asarray(heads.offset_biases(config))
    side = len(levels) // 2
    assert raw[0] == 0.0
    for offsets in (raw[1:1 + side], raw[1 + side:]):
      reach = np.cumsum(np.log1p(np.exp(offsets)) + config.mq_eps)
      np.testing.assert_allclose(
          reach, [NormalDist().inv_cdf(q) for q in levels[side + 1:]],
          atol=1e-6)
    # A new head: the point forecast with the normal's quantiles around it
    # (in scaled units: times the scaler's scale).
    module = modules.build_module(config)
    variables = checkpoint.init_variables(config, jax.random.key(0))
    past = np.random.default_rng(1).normal(size=(2, 64, 3)).astype(
        np.float32) * 4 + 2
    out = module.apply(variables, past)
    z = np.array([NormalDist().inv_cdf(q) for q in levels], np.float32)
    expected = (np.asarray(out.prediction_outputs)[..., None]
                + np.asarray(out.scale)[..., None] * z)
    np.testing.assert_allclose(out.quantile_outputs, expected, atol=2e-5)
