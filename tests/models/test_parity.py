"""Numerical parity with IBM's reference TTM (granite-tsfm 0.3.11).

For random weights in each configuration family of TTM_SPEC.md 7.3, the
reference's state dict is converted (strictly: every key maps to exactly one
Flax variable of the right shape), both models get the same inputs, and every
output field and the loss must agree to 1e-5 (fp32). Gradients of the loss
with respect to every parameter must agree to 1e-4 relative.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import reference
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import presets
from ttm_jax.models import modules

torch = reference.torch

R2_512 = presets.R2_512_96
R1_1024 = dict(R2_512, context_length=1024)
R2_1024 = presets.arch('r2_1024', context_length=1024, prediction_length=96)
R2_1536 = dict(R2_1024, context_length=1536)
SMALL = dict(context_length=64, patch_length=8, patch_stride=8,
             prediction_length=24, d_model=32, decoder_d_model=16,
             num_layers=2, decoder_num_layers=2, adaptive_patching_levels=2)

# name -> (config fields, input options)
FAMILIES = {
    'r2_512': (R2_512, dict(channels=3)),
    'r1_1024': (R1_1024, dict(channels=2)),
    'r2_p128_1024': (R2_1024, dict(channels=2)),
    'r2_p128_1536': (R2_1536, dict(channels=2, batch_size=2)),
    'rpt_vocab10': (dict(R2_512, resolution_prefix_tuning=True,
                         frequency_token_vocab_size=10), dict(channels=2)),
    'rpt_small_raw_residual': (dict(SMALL, resolution_prefix_tuning=True,
                                    frequency_token_vocab_size=10,
                                    decoder_raw_residual=True), {}),
    'mix_channel_decoder_pci_pfl': (dict(
        R2_512, num_input_channels=4, decoder_mode='mix_channel',
        prediction_channel_indices=[2, 0], prediction_filter_length=40), {}),
    'mix_channel_backbone': (dict(SMALL, num_input_channels=3,
                                  mode='mix_channel',
                                  decoder_mode='mix_channel'), {}),
    'categoricals': (dict(SMALL, num_input_channels=3,
                          decoder_mode='mix_channel',
                          categorical_vocab_size_list=[5, 3, 8],
                          resolution_prefix_tuning=True,
                          decoder_adaptive_patching_levels=2), {}),
    'self_attn_sincos': (dict(SMALL, self_attn=True, self_attn_heads=2,
                              use_positional_encoding=True), dict(channels=2)),
    'self_attn_random_pe': (dict(SMALL, self_attn=True,
                                 use_positional_encoding=True,
                                 positional_encoding_type='random',
                                 resolution_prefix_tuning=True),
                            dict(channels=2)),
    'batchnorm_eval': (dict(SMALL, norm_mlp='BatchNorm'), dict(channels=3)),
    'mean_scaler': (dict(SMALL, scaling='mean'), dict(channels=2)),
    'no_scaler': (dict(SMALL, scaling=None), dict(channels=2)),
    'scaling_true': (dict(SMALL, scaling=True), dict(channels=2)),
    'masks_bool': (dict(R2_512), dict(channels=3, past_mask='bool',
                                      future_mask='bool')),
    'masks_int_mean': (dict(SMALL, scaling='mean'),
                       dict(channels=2, past_mask='int', future_mask='int')),
    'longer_input': (dict(R2_512), dict(channels=2, length=700)),
    'no_decoder': (dict(SMALL, use_decoder=False), dict(channels=2)),
    'no_gating_no_apl': (dict(SMALL, gated_attn=False,
                              adaptive_patching_levels=0), dict(channels=2)),
    'decoder_apl': (dict(SMALL, decoder_adaptive_patching_levels=3,
                         decoder_d_model=32), dict(channels=2)),
    'loss_mae': (dict(SMALL, loss='mae'), dict(channels=2)),
    'loss_huber': (dict(SMALL, loss='huber', huber_delta=0.5),
                   dict(channels=2, future_mask='bool')),
    'loss_pinball': (dict(SMALL, loss='pinball', quantile=0.8),
                     dict(channels=2)),
    'loss_none': (dict(SMALL, loss=None), dict(channels=2)),
    'post_init_normal': (dict(SMALL, post_init=True, init_linear='normal'),
                         dict(channels=2)),
    # The multi-quantile head (quantile_outputs, pinball loss).
    'multi_quantile': (dict(SMALL, multi_quantile_head=True,
                            point_extra_weight=0.2), dict(channels=2)),
    'multi_quantile_levels_mean': (dict(
        R2_512, multi_quantile_head=True, quantile_levels=[0.05, 0.25, 0.5,
                                                           0.75, 0.95],
        mq_q50_type='mean', mq_kernel_size=5, mq_hidden=4),
                                   dict(channels=2)),
}

FCM_BASE = dict(SMALL, num_input_channels=4, decoder_mode='mix_channel',
                enable_forecast_channel_mixing=True,
                exogenous_channel_indices=[1, 3])
for use_mixer in (True, False):
  for context in ((1, 2) if use_mixer else (0, 1, 2)):
    FAMILIES[f'fcm_mixer{int(use_mixer)}_l{context}'] = (dict(
        FCM_BASE, fcm_use_mixer=use_mixer, fcm_context_length=context), {})
FAMILIES['fcm_no_prepend_pfl_pci'] = (dict(
    FCM_BASE, fcm_prepend_past=False, fcm_use_mixer=True,
    prediction_filter_length=10, prediction_channel_indices=[0, 2]), {})
FAMILIES['fcm_no_exog_ungated_mixer'] = (dict(
    SMALL, num_input_channels=3, enable_forecast_channel_mixing=True,
    fcm_use_mixer=True, fcm_gated_attn=False, fcm_context_length=2,
    self_attn=True), {})
FAMILIES['fcm_offset'] = (dict(FCM_BASE, fcm_prepend_past_offset=5,
                               fcm_use_mixer=True), {})


def _case(name):
  fields, options = FAMILIES[name]
  config = config_lib.TTMConfig(**fields)
  options = dict(options)
  return config, options


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_forward_parity(name):
  config, options = _case(name)
  ref, model, variables = reference.build_pair(config)
  inputs = reference.make_inputs(config, **options)
  reference.assert_outputs_match(
      reference.run_ours(model, variables, inputs),
      reference.run_reference(ref, inputs))


@pytest.mark.parametrize('name, jit', [('r2_512', True),
                                       ('fcm_mixer1_l1', False),
                                       ('categoricals', True)])
def test_filtered_targets_and_unjitted(name, jit):
  """Targets already reduced to the output channels / horizon, eager."""
  config, options = _case(name)
  ref, model, variables = reference.build_pair(config, seed=3)
  inputs = reference.make_inputs(config, **options)
  if config.prediction_channel_indices is not None and 'fcm' not in name:
    inputs['future_values'] = inputs['future_values'][
        ..., list(config.prediction_channel_indices)]
  reference.assert_outputs_match(
      reference.run_ours(model, variables, inputs, jit=jit),
      reference.run_reference(ref, inputs))


@pytest.mark.parametrize('name', ['fcm_mixer1_l1', 'r2_512', 'categoricals'])
def test_masked_prediction_parity(name):
  config, options = _case(name)
  ref, model, variables = reference.build_pair(config, masked=True)
  inputs = reference.make_inputs(config, **options)
  reference.assert_outputs_match(
      reference.run_ours(model, variables, inputs),
      reference.run_reference(ref, inputs))


def test_short_context_padding_matches_reference():
  config, options = _case('r2_512')
  ref, _, variables = reference.build_pair(config)
  inputs = reference.make_inputs(config, length=300, past_mask='bool',
                                 **options)
  model = modules.build_module(config, short_context='pad')
  reference.assert_outputs_match(
      reference.run_ours(model, variables, inputs),
      reference.run_reference(ref, inputs))
  strict = modules.build_module(config)
  with pytest.raises(ValueError, match='needs a context of 512'):
    reference.run_ours(strict, variables, inputs)


# Together these reach every kind of parameter (backbone, adaptive levels,
# channel mixers, attention, positional table, RPT, raw residual,
# categoricals, BatchNorm in train mode, FCM and its mixer); the rest run
# with -m slow.
GRADIENT_FAMILIES = ['r2_512', 'mix_channel_backbone', 'categoricals',
                     'self_attn_random_pe', 'fcm_mixer1_l2',
                     'batchnorm_train', 'rpt_small_raw_residual',
                     'multi_quantile'] + [
                         pytest.param(name, marks=pytest.mark.slow)
                         for name in ('fcm_mixer0_l0', 'loss_huber',
                                      'masks_int_mean')]


@pytest.mark.parametrize('name', GRADIENT_FAMILIES)
def test_gradient_parity(name):
  """d loss / d theta for every parameter, dropout off, train mode."""
  if name == 'batchnorm_train':
    config, options = _case('batchnorm_eval')
  else:
    config, options = _case(name)
  config = config.replace(dropout=0.0, head_dropout=0.0)
  ref, model, variables = reference.build_pair(config, seed=7)
  ref.train()
  inputs = reference.make_inputs(config, seed=5, **options)
  kwargs = {k: torch.tensor(np.asarray(v)) for k, v in inputs.items()}
  loss = ref(**kwargs).loss
  loss.backward()
  ref_grads = {k: p.grad.numpy() for k, p in ref.named_parameters()
               if p.requires_grad}

  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}
  jinputs = {k: jnp.asarray(v) for k, v in inputs.items()}

  def loss_fn(p):
    out, _ = model.apply({'params': p, **rest}, **jinputs,
                         deterministic=False, mutable=['batch_stats'])
    return out.loss

  ours_loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
  np.testing.assert_allclose(float(ours_loss), loss.item(), rtol=1e-5)
  ours = checkpoint.to_state_dict({'params': grads})
  assert set(ours) == set(ref_grads)
  # Relative to each tensor's largest gradient. Some gradients are zero
  # analytically (the attention key bias: softmax ignores a shift shared by
  # all keys) and hold only rounding noise in both frameworks, so the scale
  # has a floor of 1e-4 of the model's largest gradient (noise there is ~1e-9
  # of it).
  floor = 1e-4 * max(np.max(np.abs(g)) for g in ref_grads.values())
  for key, ref_grad in ref_grads.items():
    scale = max(np.max(np.abs(ref_grad)), floor)
    error = np.max(np.abs(ours[key] - ref_grad)) / scale
    assert error <= 1e-4, f'{key}: relative gradient error {error}'


def test_batchnorm_train_updates_running_stats_as_torch():
  config, options = _case('batchnorm_eval')
  config = config.replace(dropout=0.0, head_dropout=0.0)
  ref, model, variables = reference.build_pair(config, seed=2)
  ref.train()
  inputs = reference.make_inputs(config, **options)
  with torch.no_grad():
    ref(**{k: torch.tensor(v) for k, v in inputs.items()})
  _, updated = jax.jit(lambda v, i: model.apply(
      v, **i, deterministic=False, mutable=['batch_stats']))(
          variables, {k: jnp.asarray(v) for k, v in inputs.items()})
  ours = checkpoint.to_state_dict(updated)
  for key, value in ref.state_dict().items():
    if 'running' in key:
      np.testing.assert_allclose(ours[key], value.numpy(), atol=1e-5,
                                 err_msg=key)


def test_dropout_only_when_not_deterministic():
  config, options = _case('self_attn_sincos')
  _, model, variables = reference.build_pair(config)
  inputs = {k: jnp.asarray(v) for k, v in
            reference.make_inputs(config, **options).items()}
  apply = jax.jit(lambda v, i, d, r: model.apply(
      v, **i, deterministic=d, rngs={'dropout': r}).prediction_outputs,
                  static_argnums=(2,))
  eval_a = apply(variables, inputs, True, jax.random.key(0))
  eval_b = apply(variables, inputs, True, jax.random.key(1))
  np.testing.assert_array_equal(eval_a, eval_b)
  train = [apply(variables, inputs, False, jax.random.key(s))
           for s in (1, 2)]
  assert not np.allclose(train[0], eval_a)
  assert not np.allclose(train[0], train[1])
