"""Initialisation: `init_variables` draws every leaf from the distribution
its module declares (checked against Flax's own `init`) and the reference's
torch defaults (bounds checked by hand)."""

import flax
import jax
import numpy as np
import pytest

from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import modules
from ttm_jax.models import ttm

FULL = dict(context_length=64, patch_length=8, patch_stride=8,
            prediction_length=16, d_model=32, decoder_d_model=16,
            num_layers=1, decoder_num_layers=1, adaptive_patching_levels=1,
            fcm_mix_layers=1,
            num_input_channels=3, decoder_mode='mix_channel',
            enable_forecast_channel_mixing=True, fcm_use_mixer=True,
            exogenous_channel_indices=[2], norm_mlp='BatchNorm',
            use_positional_encoding=True, categorical_vocab_size_list=[3, 4],
            resolution_prefix_tuning=True, frequency_token_vocab_size=10,
            self_attn=True)


@pytest.mark.parametrize('extra', [
    dict(positional_encoding_type='random'),
    dict(post_init=True, init_linear='normal', init_embed='uniform'),
    pytest.param(dict(post_init=True, init_linear='xavier_uniform',
                      init_embed='xavier_uniform'), marks=pytest.mark.slow),
    pytest.param({}, marks=pytest.mark.slow)])
def test_same_tree_and_distributions_as_flax_init(extra):
  config = config_lib.TTMConfig(**FULL, **extra)
  ours = flax.traverse_util.flatten_dict(
      checkpoint.init_variables(config, jax.random.key(0)))
  model = modules.build_module(config)
  flax_init = flax.traverse_util.flatten_dict(flax.core.unfreeze(
      flax.core.meta.unbox(model.init(jax.random.key(1),
                                      **ttm.example_batch(config)))))
  assert set(ours) == set(flax_init)
  for path, expected in flax_init.items():
    got, expected = np.asarray(ours[path]), np.asarray(expected)
    assert got.shape == expected.shape, path
    if np.all(expected == expected.flat[0]):  # Constants: exactly equal.
      np.testing.assert_array_equal(got, expected, err_msg=str(path))
    elif expected.size >= 64:  # Same distribution: moments agree within
      # 6 standard errors of two independent samples of this size.
      sigma, n = expected.std(), expected.size
      assert abs(got.std() - sigma) < 6 * sigma * np.sqrt(1 / n), path
      assert abs(got.mean() - expected.mean()) < 6 * sigma * np.sqrt(
          2 / n), path


def test_torch_default_bounds():
  config = config_lib.TTMConfig(**FULL)
  state = checkpoint.to_state_dict(
      checkpoint.init_variables(config, jax.random.key(0)))
  for key, value in state.items():
    if key.endswith('.weight') and value.ndim == 2 and 'embedding' not in key \
        and 'freq_mod.0' not in key:
      bound = 1 / np.sqrt(value.shape[1])  # torch weight is [out, in].
      assert np.abs(value).max() <= bound, key
  # Same rng, same variables; different rng, different ones.
  a = checkpoint.init_variables(config, jax.random.key(3))
  b = checkpoint.init_variables(config, jax.random.key(3))
  c = checkpoint.init_variables(config, jax.random.key(4))
  leaves = lambda t: jax.tree_util.tree_leaves(t)
  assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))
  assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(c)))
