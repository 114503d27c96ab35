"""The engine's fast paths compute what the plain forms compute: GELU,
LayerNorm, dropout statistics, the inference function (single device and
split over the mesh), and bfloat16 matmuls with everything else float32."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import conftest
from ttm_jax import optim
from ttm_jax import sharding
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.models import layers
from ttm_jax.models import presets
from ttm_jax.models import modules
from ttm_jax.models import ttm
from ttm_jax.train import state as state_lib
from ttm_jax.inference import model as inference_model
from ttm_jax.train import steps

# Primitives that only convert or move data.
LAYOUT = ('convert_element_type', 'transpose', 'reshape', 'custom_vjp_call',
          'custom_vjp_call_jaxpr', 'pjit', 'broadcast_in_dim')
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)


def test_gelu_is_torchs_erf_form():
  """x * (0.5 + 0.5 erf(x / sqrt 2)), torch's form: within 1e-6 of the exact
  value everywhere (the erf form cancels for x < -5, where GELU < 1e-6),
  and as close to torch's own kernel (next test)."""
  x = np.linspace(-12.0, 12.0, 20001, dtype=np.float32)
  ours = np.asarray(layers.gelu(jnp.asarray(x)), np.float64)
  from math import erf  # pylint: disable=g-import-not-at-top
  exact = np.array([v * 0.5 * (1 + erf(v / np.sqrt(2)))
                    for v in x.astype(np.float64)])
  np.testing.assert_allclose(ours, exact, atol=1e-6, rtol=1e-6)


def test_gelu_matches_torchs_kernel():
  torch = conftest.require_module('torch')
  x = np.linspace(-12.0, 12.0, 20001, dtype=np.float32)
  ours = np.asarray(layers.gelu(jnp.asarray(x)), np.float64)
  theirs = torch.nn.functional.gelu(torch.tensor(x)).numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-6)


def test_layer_norm_matches_flax_two_pass():
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(4, 3, 8, 48)) * 5 + 3).astype(np.float32)
  ours = layers.LayerNorm(48, 1e-5)
  flax_ln = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)
  variables = {'params': {'scale': rng.normal(size=48).astype(np.float32),
                          'bias': rng.normal(size=48).astype(np.float32)}}
  np.testing.assert_allclose(ours.apply(variables, x),
                             flax_ln.apply(variables, x), atol=2e-6)


def test_dropout_rate_scale_and_key_dependence():
  x = jnp.ones((256, 1000))
  module = layers.Dropout(0.3)
  y = module.apply({}, x, deterministic=False,
                   rngs={'dropout': jax.random.key(0)})
  kept = np.asarray(y) != 0
  # 256,000 Bernoulli(0.7) draws: the kept fraction within 5 standard errors.
  assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.7 * 0.3 / kept.size)
  np.testing.assert_allclose(np.asarray(y)[kept], 1 / 0.7, rtol=1e-6)
  # Rows and columns are not correlated (a hash of the flat index).
  assert abs(np.corrcoef(kept[:, :-1].ravel(), kept[:, 1:].ravel())[0, 1]
             ) < 0.01
  other = module.apply({}, x, deterministic=False,
                       rngs={'dropout': jax.random.key(1)})
  assert (np.asarray(other) != 0).mean() != kept.mean() or not np.array_equal(
      np.asarray(other) != 0, kept)
  np.testing.assert_array_equal(module.apply({}, x, deterministic=True), x)


def test_predict_fn_equals_apply_on_one_device_and_the_mesh():
  config = config_lib.TTMConfig(**SMALL)
  model = factory.new_model(config, jax.random.key(0))
  mesh = sharding.make_mesh(jax.devices()[:4])
  predict = inference_model.make_predict_fn(model, mesh)
  rng = np.random.default_rng(1)
  for size in (1, 3, 8):  # One device; padded to the mesh; split evenly.
    past = rng.normal(size=(size, 64, 2)).astype(np.float32)
    expected = model.module.apply(model.variables, past).prediction_outputs
    got = predict({'past_values': past}).prediction_outputs
    assert got.shape == (size, 16, 2)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bfloat16_matmuls_with_float32_around_them():
  config = config_lib.TTMConfig(**dict(presets.arch('tiny'),
                                       context_length=64, prediction_length=16))
  module = modules.build_module(config, dtype=jnp.bfloat16)
  model = factory.Model(config, module,
                        factory.new_model(config, jax.random.key(0)).variables)
  optimizer = optim.make_optimizer(10, 1e-3)
  mesh = sharding.make_mesh(jax.devices()[:1])
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  batch = {'past_values': np.ones((2, 64, 1), np.float32),
           'future_values': np.ones((2, 16, 1), np.float32),
           'future_observed_mask': np.ones((2, 16, 1), np.float32)}
  step = steps.make_train_step(model, optimizer, mesh)
  jaxpr = step.trace(state, sharding.shard_batch(batch, mesh)).jaxpr
  dots, others = [], []

  def visit(jx):
    for eqn in jx.eqns:
      for sub in jax.core.jaxprs_in_params(eqn.params):
        visit(sub)
      out_dtypes = [v.aval.dtype for v in eqn.outvars if hasattr(v.aval,
                                                                 'dtype')]
      if eqn.primitive.name == 'dot_general':
        dots.append(([v.aval.dtype for v in eqn.invars], out_dtypes,
                     [v.aval.shape for v in eqn.invars]))
      elif eqn.primitive.name not in LAYOUT:
        others.extend((eqn.primitive.name, d) for d in out_dtypes)

  visit(jaxpr.jaxpr)
  # Every product of a Linear, forward and backward, is bfloat16 in and
  # float32 out; the float32 ones are LayerNorm's sums (a 1-D ones vector).
  mixed = [d for d in dots if d[0] == [jnp.bfloat16] * 2]
  assert len(mixed) >= 3 * 20 and all(d[1] == [jnp.float32] for d in mixed)
  assert all(d[0] == [jnp.float32] * 2 and min(map(len, d[2])) == 1
             for d in dots if d not in mixed), [d for d in dots
                                                if d not in mixed][:3]
  # Norms, GELU, softmax, loss and AdamW compute in float32.
  assert not [o for o in others if o[1] == jnp.bfloat16], others
  new_state, metrics = step(state, sharding.shard_batch(batch, mesh))
  assert all(leaf.dtype == jnp.float32
             for leaf in jax.tree_util.tree_leaves(new_state.params))
  assert np.isfinite(float(metrics['train/loss']))


def _dots(jaxpr):
  """[(operand dtypes, precision)] of every dot_general, nested ones too."""
  found = []

  def visit(jx):
    for eqn in jx.eqns:
      for sub in jax.core.jaxprs_in_params(eqn.params):
        visit(sub)
      if eqn.primitive.name == 'dot_general':
        found.append(([v.aval.dtype for v in eqn.invars],
                      eqn.params.get('precision')))

  visit(jaxpr)
  return found


def test_float32_products_are_exact_on_every_backend():
  """The precision policy: under a default that would let a GPU use TF32
  (or a TPU bfloat16 passes), every float32 product of the model, forward
  and backward, still asks for HIGHEST, and a bfloat16 run's Linear
  products are bfloat16 on purpose. (This CPU is exact either way, so the
  program is what is checked.)"""
  config = config_lib.TTMConfig(**dict(presets.arch('tiny'),
                                       context_length=64, prediction_length=16,
                                       resolution_prefix_tuning=True,
                                       frequency_token_vocab_size=4))
  variables = factory.new_model(config, jax.random.key(0)).variables
  batch = {'past_values': np.ones((2, 64, 3), np.float32),
           'future_values': np.ones((2, 16, 3), np.float32),
           'freq_token': np.ones((2,), np.int32)}
  highest = (jax.lax.Precision.HIGHEST,) * 2
  for dtype in (None, jnp.bfloat16):
    module = modules.build_module(config, dtype=dtype)

    def loss(params, module=module):
      return module.apply({**variables, 'params': params},
                          **ttm.model_inputs(batch, config)).loss

    with jax.default_matmul_precision('tensorfloat32'):
      jaxpr = jax.make_jaxpr(jax.grad(loss))(variables['params']).jaxpr
    dots = _dots(jaxpr)
    float32 = [d for d in dots if d[0] == [jnp.float32] * 2]
    low = [d for d in dots if d[0] == [jnp.bfloat16] * 2]
    assert len(float32) + len(low) == len(dots)
    assert float32 and all(d[1] == highest for d in float32), float32[:3]
    if dtype is None:
      assert not low
    else:  # Every Linear: its forward and two backward products.
      assert len(low) >= 3 * 20


def test_compute_dtype_names_the_module_dtype():
  assert factory.compute_dtype('float32') is None
  assert factory.compute_dtype('bfloat16') == jnp.bfloat16
  with pytest.raises(ValueError, match="'float16'"):
    factory.compute_dtype('float16')
