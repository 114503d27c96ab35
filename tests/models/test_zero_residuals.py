"""`model.zero_new_residuals`: a fine-tune that gives a pretrained TTM
channels (`recipes.exogenous_fields`: a mix_channel decoder and the
exogenous mixer) starts those new residual branches with zero output
layers, so the derived model forecasts its target exactly as the
pretrained model forecasts the target alone, whatever the covariates;
without it (the reference's random start) it does not. Only the branches'
output layers are zeroed; everything else new stays as initialised."""

import jax
import numpy as np
import pytest

from ttm_jax import recipes
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory

SMALL = dict(context_length=32, prediction_length=8, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=1,
             decoder_num_layers=2, adaptive_patching_levels=1)
FIELDS = recipes.exogenous_fields(1, 2, 1)  # target | 2 known | past-only.


@pytest.fixture(scope='module')
def pretrained():
  return factory.new_model(config_lib.TTMConfig(**SMALL),
                           jax.random.key(3))


def _derived(pretrained, zero):
  config = recipes.series_finetune('small', context=32, horizon=8,
                                   num_windows=100, quick=True)
  config.model.overrides.update(FIELDS)
  config.model.zero_new_residuals = zero
  return factory.derive(pretrained, config)


def _inputs():
  rng = np.random.default_rng(0)
  past = rng.normal(size=(3, 32, 4)).astype(np.float32) * [5, 1, 30, 2]
  future = rng.normal(size=(3, 8, 4)).astype(np.float32) * 30
  return past, future


def _forecast(model, past, future=None):
  return np.asarray(model.module.apply(
      model.variables, past, future_values=future,
      return_loss=False).prediction_outputs)


def test_zero_residuals_forecast_as_the_pretrained_model(pretrained):
  past, future = _inputs()
  alone = _forecast(pretrained, past[..., :1])
  derived = _derived(pretrained, zero=True)
  assert derived.config.decoder_mode == 'mix_channel'
  assert derived.config.enable_forecast_channel_mixing
  with_covariates = _forecast(derived, past, future)
  assert with_covariates.shape == alone.shape == (3, 8, 1)
  np.testing.assert_allclose(with_covariates, alone, rtol=0, atol=1e-5)
  # Other covariates, the same forecast: they enter only through the
  # zeroed branches.
  other = _forecast(derived, np.concatenate(
      [past[..., :1], 10 * past[..., 1:] + 3], -1), -future)
  np.testing.assert_allclose(other, alone, rtol=0, atol=1e-5)


def test_the_references_random_start_moves_the_forecast(pretrained):
  past, future = _inputs()
  alone = _forecast(pretrained, past[..., :1])
  derived = _derived(pretrained, zero=False)
  assert np.abs(_forecast(derived, past, future) - alone).max() > 1e-2


def test_only_the_new_branches_output_layers_are_zeroed(pretrained):
  random = _derived(pretrained, zero=False)
  zero = _derived(pretrained, zero=True)
  state_random = checkpoint.to_state_dict(random.variables)
  state_zero = checkpoint.to_state_dict(zero.variables)
  expected = sorted(
      [f'decoder.decoder_block.mixers.{i}.channel_feature_mixer.mlp.fc2.{p}'
       for i in range(2) for p in ('weight', 'bias')]
      + [f'head.fcm_block.mlp.{p}' for p in ('weight', 'bias')])
  changed = sorted(k for k in state_random
                   if not np.array_equal(state_random[k], state_zero[k]))
  assert changed == expected
  assert all(not state_zero[k].any() for k in expected)
  assert set(expected) <= set(zero.new_weights)
  # A checkpoint's own weights are never zeroed, even under those names.
  variables, zeroed = checkpoint.zero_new_residuals(zero.variables, [])
  assert zeroed == []
  assert all(np.array_equal(v, state_zero[k]) for k, v in
             checkpoint.to_state_dict(variables).items())
