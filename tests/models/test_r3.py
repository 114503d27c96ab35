"""Parity with IBM's TTM r3 branch (granite-tsfm ttm-r3-release-mq2-merge)
for each r3 option ttm-jax implements, from the committed fixture
tests/fixtures/r3_options.npz (scripts/make_r3_fixtures.py): the branch's
config.json and random weights are converted strictly (every key to exactly
one Flax variable), and every output field, the loss (1e-5) and the gradient
of the loss for every parameter (1e-4 relative) must match."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import modules
from tests import conftest

FIXTURE = os.path.join(conftest.FIXTURES,
                       'r3_options.npz')
TTMConfig = config_lib.TTMConfig


# Gradients that are zero analytically: the instance norm after the
# quantile head's temporal convolution removes any shift its bias makes.
ZERO_GRADIENTS = ('multi_quantile_head_block.dw.bias',)


def _cases():
  with np.load(FIXTURE) as arrays:
    return sorted({k.split('/')[0] for k in arrays.files})


def _load(name):
  """(config, arrays of the case, reference state dict, reference grads)."""
  with np.load(FIXTURE) as arrays:
    case = {k[len(name) + 1:]: arrays[k] for k in arrays.files
            if k.startswith(name + '/')}
  state, grads = {}, {}
  weight_at = grad_at = 0
  for key, shape, has_grad in json.loads(str(case['index'])):
    size = int(np.prod(shape))
    state[key] = case['weights'][weight_at:weight_at + size].reshape(shape)
    weight_at += size
    if has_grad:
      grads[key] = case['grads'][grad_at:grad_at + size].reshape(shape)
      grad_at += size
  config = TTMConfig.from_dict(json.loads(str(case['config_json'])))
  return config, case, state, grads


def _inputs(case):
  return {k[len('inputs/'):]: jnp.asarray(v) for k, v in case.items()
          if k.startswith('inputs/')}


def _ours(value, field):
  """Our field in the reference's layout (quantiles [b, q, h, c])."""
  value = np.asarray(value)
  return np.moveaxis(value, -1, 1) if 'quantile' in field else value


@pytest.mark.parametrize('name', _cases())
def test_outputs_loss_and_gradients_match_r3(name):
  """One jitted value-and-grad call (dropout is 0 in every case, so its
  outputs are the eval outputs)."""
  config, case, state, ref_grads = _load(name)
  variables, _ = checkpoint.convert_state_dict(state, config, strict=True)
  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}
  module = modules.build_module(config)
  inputs = _inputs(case)

  def loss_fn(p):
    out = module.apply({'params': p, **rest}, **inputs, deterministic=False)
    return out.loss, out

  (loss, out), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      params)
  expected = {k[len('out/'):]: v for k, v in case.items()
              if k.startswith('out/')}
  for field in out.__dataclass_fields__:
    ours = getattr(out, field)
    if field not in expected:
      assert ours is None, f'{field}: the reference returns None'
      continue
    assert ours is not None, field
    ours = _ours(ours, field)
    assert ours.shape == expected[field].shape, field
    diff = np.max(np.abs(ours - expected[field]))
    assert diff <= 1e-5, f'{field}: max abs diff {diff}'
  np.testing.assert_allclose(float(loss), float(case['out/loss']),
                             rtol=1e-5, atol=1e-6)
  ours = checkpoint.to_state_dict({'params': grads})
  assert set(ours) == set(ref_grads)
  largest = max(np.max(np.abs(g)) for g in ref_grads.values())
  floor = 1e-4 * largest
  for key, ref_grad in ref_grads.items():
    if key.endswith(ZERO_GRADIENTS):  # Rounding noise in both.
      assert np.max(np.abs(ours[key])) <= 1e-6 * largest, key
      assert np.max(np.abs(ref_grad)) <= 1e-6 * largest, key
      continue
    scale = max(np.max(np.abs(ref_grad)), floor)
    error = np.max(np.abs(ours[key] - ref_grad)) / scale
    assert error <= 1e-4, f'{key}: relative gradient error {error}'
  # Our export is what the branch loads (the fixture script loads it
  # strictly there): the same keys and shapes.
  exported = checkpoint.to_state_dict(variables)
  assert {k: v.shape for k, v in exported.items()} == {
      k: v.shape for k, v in state.items()}


def test_new_r3_models_initialise_save_and_load(tmp_path):
  """A new decomposed model with every token kind initialises, exports and
  loads back as the decomposed class, forecasting the same."""
  import ttm_jax  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import decomposed  # pylint: disable=g-import-not-at-top
  config = TTMConfig(context_length=32, patch_length=4, patch_stride=4,
                     prediction_length=8, d_model=8, decoder_d_model=8,
                     num_layers=1, decoder_num_layers=1, decompose=True,
                     residual_context_length=16, register_tokens=2,
                     fft_length=2, trend_multi_scale=True,
                     multi_quantile_head=True, mq_use_decoder_pool=True)
  variables = checkpoint.init_variables(config, jax.random.key(0))
  module = modules.build_module(config)
  assert isinstance(module, decomposed.TinyTimeMixerForDecomposedPrediction)
  checkpoint.save_pretrained(str(tmp_path), config, variables)
  loaded_config, loaded, loaded_vars = ttm_jax.load_pretrained(str(tmp_path))
  assert loaded_config == config
  past = np.random.default_rng(0).normal(size=(2, 32, 1)).astype(np.float32)
  np.testing.assert_array_equal(
      module.apply(variables, past).quantile_outputs,
      loaded.apply(loaded_vars, past).quantile_outputs)


@pytest.mark.parametrize('size, requested, groups', [
    (9, 3, 3), (8, 3, 2), (2, 3, 2), (6, 4, 3), (5, 4, 1), (3, 8, 3),
    (12, 8, 6), (8, 8, 8), (7, 1, 1), (7, 0, 1), (7, -2, 1)])
def test_pick_gate_groups_as_the_branch(size, requested, groups):
  """The branch's `pick_gate_groups`: the requested groups if they divide
  the width, else the largest divisor below min(requested, width)."""
  from ttm_jax.models import layers  # pylint: disable=g-import-not-at-top
  assert layers.pick_gate_groups(size, requested) == groups


@pytest.mark.parametrize('gate_mode', ['sigmoid', 'glu', 'group_sigmoid'])
def test_gate_modes_and_one_fft_token_save_load_and_mixed_precision(
    tmp_path, gate_mode):
  """A new model with each gate mode and one FFT token exports and loads
  back (the options in its config.json), and runs in bfloat16 matmuls
  close to float32."""
  import ttm_jax  # pylint: disable=g-import-not-at-top
  config = TTMConfig(context_length=32, patch_length=4, patch_stride=4,
                     prediction_length=8, d_model=8, decoder_d_model=6,
                     num_layers=1, decoder_num_layers=1, num_input_channels=2,
                     mode='mix_channel', gate_mode=gate_mode, gate_groups=3,
                     fft_length=3, get_one_freq_emb=True, fft_ignore_dc=True)
  variables = checkpoint.init_variables(config, jax.random.key(0))
  checkpoint.save_pretrained(str(tmp_path), config, variables)
  saved = json.load(open(tmp_path / 'config.json'))
  assert saved['gate_mode'] == gate_mode and saved['get_one_freq_emb']
  loaded_config, loaded, loaded_vars = ttm_jax.load_pretrained(str(tmp_path))
  assert loaded_config == config
  past = np.random.default_rng(0).normal(size=(2, 32, 2)).astype(np.float32)
  want = modules.build_module(config).apply(variables, past).prediction_outputs
  np.testing.assert_array_equal(
      want, loaded.apply(loaded_vars, past).prediction_outputs)
  low = modules.build_module(config, dtype=jnp.bfloat16).apply(variables, past)
  assert low.prediction_outputs.dtype == jnp.float32
  np.testing.assert_allclose(low.prediction_outputs, want, atol=0.1)
