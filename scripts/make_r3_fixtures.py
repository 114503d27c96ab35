"""Writes the r3 parity fixtures from a checkout of IBM's r3 branch.

TTM r3 lives on a branch of granite-tsfm (`ttm-r3-release-mq2-merge`, PR
#500), not on PyPI, so the parity tests read the branch's outputs from small
committed fixtures. To regenerate them all:

  git clone -b ttm-r3-release-mq2-merge \\
      https://github.com/ibm-granite/granite-tsfm /tmp/granite-tsfm-r3
  .venv/bin/python scripts/make_r3_fixtures.py /tmp/granite-tsfm-r3

Run it as its own process: it imports the branch's model package (without
`tsfm_public/__init__`, whose toolkit needs an older transformers) under the
name `tsfm_public`, which would shadow the installed granite-tsfm.

It writes
  * tests/fixtures/r3_multi_quantile.npz: the quantile head alone and a
    whole model with it (`quantile_fixture`, unchanged from the earlier
    make_r3_fixtures.py);
  * tests/fixtures/r3_options.npz: for each case of CASES and LATER_CASES
    (seeded so that adding a case leaves the others unchanged), a small r3
    model with random weights (torch's initialisation, then every
    parameter jittered so norms and biases are not at their identity
    values): its config.json, state dict, inputs, every output field, the
    loss and the gradient of the loss for every parameter (dropout 0, so
    train and eval agree).
and checks, for each case, that ttm-jax's export of the converted weights
loads strictly in the branch's code (no missing or unexpected keys) and
forecasts as the original does.
"""

import ast
import contextlib
import importlib
import io
import json
import os
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'tests', 'fixtures')

# ------------------------------------------------------ the quantile head
NAMES = ('MultiQuantileHead', 'MultiPinballLoss', 'weighted_l1_over_horizon',
         '_is_default_9_quantiles')
HEAD_CASES = {
    # The default levels (r3's hard-coded path), median = point + bias.
    'default': dict(quantile_levels=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                     0.9], mq_kernel_size=3, mq_hidden=8,
                    mq_q50_type='median', point_extra_weight=0.0),
    # Other levels (the generic path), a wider kernel, median = point.
    'custom': dict(quantile_levels=[0.05, 0.25, 0.5, 0.75, 0.95],
                   mq_kernel_size=5, mq_hidden=4, mq_q50_type='mean',
                   point_extra_weight=0.5),
}
HEAD_MODEL = dict(context_length=64, prediction_length=16, patch_length=8,
                  patch_stride=8, d_model=16, decoder_d_model=8, num_layers=2,
                  decoder_num_layers=1, adaptive_patching_levels=2,
                  num_input_channels=2, multi_quantile_head=True,
                  point_extra_weight=0.3, mq_hidden=6, scaling='std')

# ------------------------------------------------------- the r3 options
SMALL = dict(context_length=32, patch_length=4, patch_stride=4,
             prediction_length=8, d_model=8, decoder_d_model=8, num_layers=1,
             decoder_num_layers=1, num_input_channels=2, dropout=0.0,
             head_dropout=0.0)
MQ = dict(multi_quantile_head=True, mq_hidden=4,
          quantile_levels=[0.1, 0.3, 0.5, 0.7, 0.9])
DECOMPOSED = dict(SMALL, decompose=True, residual_context_length=16,
                  trend_patch_length=8, trend_patch_stride=8,
                  trend_decoder_d_model=4, trend_loss_weight=0.7,
                  residual_loss_weight=1.3, joint_loss_weight=0.5)
# name -> config fields (the model class follows `decompose`).
CASES = {
    'register_tokens': dict(SMALL, register_tokens=3),
    'base_norm': dict(SMALL, enable_base_norm_always=True,
                      adaptive_patching_levels=1),
    # Prefix order: FFT tokens, register tokens, frequency token, patches.
    'multi_scale_rpt_tokens': dict(SMALL, multi_scale=True, patch_length=8,
                                   patch_stride=8,
                                   resolution_prefix_tuning=True,
                                   register_tokens=2, fft_length=2,
                                   use_positional_encoding=True),
    'fft_embedding': dict(SMALL, fft_length=3),
    'fft_mlp': dict(SMALL, fft_length=4, use_fft_embedding=False,
                    loss='mae'),
    'mq_decoder_pool_add': dict(SMALL, **MQ, mq_use_decoder_pool=True,
                                point_extra_weight=0.2),
    'mq_decoder_flatten_concat_boundary': dict(
        SMALL, **MQ, mq_use_decoder_pool=True, mq_cond_path='flatten',
        mq_cond_mode='concat', mq_decoder_d_model=3,
        penalize_large_width_ratio=0.3, register_tokens=1),
    'mq_width_wis_light': dict(SMALL, multi_quantile_head=True, mq_hidden=4,
                               penalize_large_width_ratio=0.25,
                               width_penalty_mode='wis', light_mode=True),
    'decomposed_huber_mean': dict(
        DECOMPOSED, loss='huber', huber_delta=0.5, scaling='mean',
        trend_multi_scale=True, trend_fft_length=2),
    'decomposed_mq_sum_pfl_light': dict(
        DECOMPOSED, **MQ, point_extra_weight=0.2,
        prediction_filter_length=6, light_mode=True),
    # The combination: decomposed + register tokens + quantile head.
    'decomposed_registers_mq_variance': dict(
        DECOMPOSED, **MQ, register_tokens=2, trend_register_tokens=1,
        combine_quantiles_via_variance=True, point_extra_weight=0.3,
        mq_use_decoder_pool=True),
}
# The options the branch reads with getattr (gates, FFT token variants),
# added later: seeded after the cases above (see `seeds`).
LATER_CASES = {
    # Backbone channel gate and FCM's gate over its windows (l = 1).
    'gate_sigmoid_mix_channel_fcm': dict(
        SMALL, gate_mode='sigmoid', mode='mix_channel',
        enable_forecast_channel_mixing=True, exogenous_channel_indices=[1]),
    # Gates Linear(C -> 2C); FCM's gate over the channels (l = 0).
    'gate_glu_decoder_mix_fcm': dict(
        SMALL, gate_mode='glu', decoder_mode='mix_channel',
        enable_forecast_channel_mixing=True, exogenous_channel_indices=[1],
        fcm_context_length=0),
    # gate_groups=3: 9 patches -> 3 groups; d_model 8 -> 2 and the 2
    # channels -> 2 (pick_gate_groups' adjustment); decoder 6 -> 3.
    'gate_group_sigmoid': dict(
        SMALL, gate_mode='group_sigmoid', gate_groups=3, register_tokens=1,
        decoder_d_model=6, mode='mix_channel'),
    # One FFT token; d_freq = 8 // 3 = 2 raised to fft_d_freq_min = 3.
    'fft_one_freq_emb': dict(SMALL, fft_length=3, get_one_freq_emb=True,
                             fft_d_freq_min=3, fft_d_freq_max=5),
    # Through the index MLP; d_freq = 8 // 2 = 4 cut to fft_d_freq_max = 3.
    'fft_one_freq_mlp': dict(SMALL, fft_length=2, get_one_freq_emb=True,
                             use_fft_embedding=False, fft_d_freq_min=1,
                             fft_d_freq_max=3),
    # The mean scaler keeps the level, so the DC bin would be picked.
    'fft_ignore_dc': dict(SMALL, fft_length=3, fft_ignore_dc=True,
                          scaling='mean'),
    # The combination: grouped gates (residual branch: 5 patches -> 1
    # group) and one FFT token from fft_length=12 capped at the residual
    # context's 9 bins (DC last), 3 in the trend branch; quantile head.
    'decomposed_group_sigmoid_one_freq': dict(
        DECOMPOSED, **MQ, gate_mode='group_sigmoid', gate_groups=4,
        fft_length=12, get_one_freq_emb=True, fft_ignore_dc=True,
        trend_fft_length=3),
}


def seeds():
  """{case: torch seed}: the first cases in alphabetical order (as they
  were first seeded), then LATER_CASES in order, so adding a case leaves
  the earlier cases' arrays unchanged."""
  order = sorted(CASES) + list(LATER_CASES)
  return {name: seed for seed, name in enumerate(order)}


PREDICTION_FIELDS = ('prediction_outputs', 'backbone_hidden_state',
                     'decoder_hidden_state', 'loc', 'scale',
                     'quantile_outputs', 'loss')
DECOMPOSED_FIELDS = ('prediction_outputs', 'quantile_outputs',
                     'trend_prediction_outputs',
                     'residual_prediction_outputs', 'trend_input',
                     'residual_input', 'trend_quantile_outputs',
                     'residual_quantile_outputs', 'loss')


def load_r3_functions(path):
  tree = ast.parse(open(path).read())
  keep = [node for node in tree.body
          if getattr(node, 'name', None) in NAMES or (
              isinstance(node, ast.Assign) and any(
                  getattr(t, 'id', None) == 'DEFAULT_Q'
                  for t in node.targets))]
  namespace = {'torch': torch, 'nn': nn, 'F': F}
  exec(compile(ast.Module(body=keep, type_ignores=[]), path, 'exec'),
       namespace)
  return namespace


def r3_models(checkout):
  """r3's modeling and configuration modules from a checkout."""
  for name, folder in (('tsfm_public', 'tsfm_public'),
                       ('tsfm_public.models', 'tsfm_public/models')):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(checkout, folder)]
    sys.modules[name] = package
  prefix = 'tsfm_public.models.tinytimemixer.'
  return (importlib.import_module(prefix + 'modeling_tinytimemixer'),
          importlib.import_module(prefix + 'configuration_tinytimemixer'))


def quantile_fixture(checkout, path):
  """tests/fixtures/r3_multi_quantile.npz (see the module docstring)."""
  r3 = load_r3_functions(os.path.join(
      checkout, 'tsfm_public', 'models', 'tinytimemixer',
      'modeling_tinytimemixer.py'))
  arrays = {}
  for name, case in HEAD_CASES.items():
    torch.manual_seed(0)
    config = types.SimpleNamespace(decoder_d_model=8, num_patches=8,
                                   mq_eps=1e-6, **case)
    head = r3['MultiQuantileHead'](config)
    with torch.no_grad():  # non-trivial instance-norm affine weights
      head.inorm.weight.uniform_(0.5, 1.5)
      head.inorm.bias.uniform_(-0.5, 0.5)
    mean_hat = torch.randn(3, 12, 2)  # scaled forecast [b, h, c]
    quantiles = head(mean_hat)  # [b, q, h, c]
    scale = torch.rand(3, 1, 2) + 0.5
    loc = torch.randn(3, 1, 2)
    target = torch.randn(3, 12, 2) * scale + loc
    q = len(case['quantile_levels'])
    unscaled = quantiles * scale.unsqueeze(1) + loc.unsqueeze(1)
    point = unscaled[:, q // 2]
    with contextlib.redirect_stdout(io.StringIO()):  # r3's loss prints.
      loss = r3['MultiPinballLoss'](config)(unscaled, target) + case[
          'point_extra_weight'] * r3['weighted_l1_over_horizon'](point,
                                                                 target)
    for key, value in head.state_dict().items():
      arrays[f'{name}/weights/{key}'] = value.numpy()
    for key, value in dict(mean_hat=mean_hat, quantiles=quantiles,
                           scale=scale, loc=loc, target=target,
                           loss=loss).items():
      arrays[f'{name}/{key}'] = value.detach().numpy()
  modeling, configuration = r3_models(checkout)
  torch.manual_seed(1)
  config = configuration.TinyTimeMixerConfig(**HEAD_MODEL)
  model = modeling.TinyTimeMixerForPrediction(config).eval()
  past = torch.randn(3, 64, 2) * 2 + 5
  future = torch.randn(3, 16, 2) * 2 + 5
  with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
    out = model(past_values=past, future_values=future, return_loss=True)
  arrays['model/config_json'] = np.array(config.to_json_string())
  for key, value in model.state_dict().items():
    arrays[f'model/weights/{key}'] = value.numpy()
  for key, value in dict(past=past, future=future,
                         prediction=out.prediction_outputs,
                         quantiles=out.quantile_outputs,
                         loss=out.loss).items():
    arrays[f'model/{key}'] = value.detach().numpy()
  np.savez(path, **arrays)
  print(f'wrote {path}: {len(arrays)} arrays')


def _model_class(modeling, fields):
  return (modeling.TinyTimeMixerForDecomposedPrediction
          if fields.get('decompose') else
          modeling.TinyTimeMixerForPrediction)


def _run(model, inputs):
  with contextlib.redirect_stdout(io.StringIO()):  # r3's loss prints.
    return model(**inputs, return_loss=True)


def option_case(modeling, configuration, name, fields, seed):
  """One case's arrays (keys relative to the case)."""
  torch.manual_seed(seed)
  config = configuration.TinyTimeMixerConfig(**fields)
  model = _model_class(modeling, fields)(config).eval()
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.add_(0.1 * torch.randn_like(parameter))
  batch, channels = 3, fields['num_input_channels']
  inputs = {
      'past_values': torch.randn(batch, fields['context_length'],
                                 channels) * 2 + 0.5,
      'future_values': torch.randn(batch, fields['prediction_length'],
                                   channels) * 2 + 0.5,
  }
  if fields.get('resolution_prefix_tuning'):
    inputs['freq_token'] = torch.tensor([0, 3, 1])
  model.zero_grad()
  out = _run(model, inputs)
  out.loss.backward()
  arrays = {'config_json': np.array(json.dumps(json.loads(
      config.to_json_string())))}
  # One flat vector each for the weights and the gradients (an npz entry
  # costs ~250 bytes of headers, more than most of these tensors).
  index, weights, grads = [], [], []
  parameters = dict(model.named_parameters())
  for key, value in model.state_dict().items():
    parameter = parameters.get(key)
    has_grad = parameter is not None and parameter.requires_grad
    index.append([key, list(value.shape), has_grad])
    weights.append(value.numpy().ravel())
    if has_grad:  # Not the fixed sincos table.
      assert parameter.grad is not None, key
      grads.append(parameter.grad.numpy().ravel())
  arrays['index'] = np.array(json.dumps(index))
  arrays['weights'] = np.concatenate(weights).astype(np.float32)
  arrays['grads'] = np.concatenate(grads).astype(np.float32)
  for key, value in inputs.items():
    arrays[f'inputs/{key}'] = value.numpy()
  field_names = (DECOMPOSED_FIELDS if fields.get('decompose')
                 else PREDICTION_FIELDS)
  for field in field_names:
    value = getattr(out, field)
    if value is not None:
      arrays[f'out/{field}'] = value.detach().numpy()
  print(f'{name}: {sum(p.numel() for p in model.parameters())} parameters, '
        f'loss {out.loss.item():.6f}')
  return model, inputs, arrays


def unpack(arrays):
  """({state-dict key: weight}, {key: gradient}) of a case's arrays."""
  state, grads = {}, {}
  weight_at = grad_at = 0
  for key, shape, has_grad in json.loads(str(arrays['index'])):
    size = int(np.prod(shape))
    state[key] = arrays['weights'][weight_at:weight_at + size].reshape(shape)
    weight_at += size
    if has_grad:
      grads[key] = arrays['grads'][grad_at:grad_at + size].reshape(shape)
      grad_at += size
  return state, grads


def check_export(modeling, model, inputs, arrays, fields):
  """ttm-jax's export of the converted weights loads strictly in the
  branch's code and forecasts as the original model."""
  sys.path.insert(0, os.path.join(HERE, '..'))
  from ttm_jax.models import checkpoint  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.TTMConfig.from_dict(
      json.loads(str(arrays['config_json'])))
  state, _ = unpack(arrays)
  variables, _ = checkpoint.convert_state_dict(state, config, strict=True)
  from safetensors.torch import load_file  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as folder:
    checkpoint.save_pretrained(folder, config, variables)
    # The branch's from_pretrained fails under transformers 5 (its models
    # skip post_init); its config class and a strict load_state_dict do
    # what from_pretrained would.
    loaded_config = type(model.config).from_pretrained(folder)
    loaded = _model_class(modeling, fields)(loaded_config)
    loaded.load_state_dict(load_file(os.path.join(folder,
                                                  'model.safetensors')),
                           strict=True)
  with torch.no_grad():
    expected = _run(model, inputs).prediction_outputs
    got = _run(loaded.eval(), inputs).prediction_outputs
  assert torch.equal(expected, got), (expected - got).abs().max()


def check_ignore_dc_matters(modeling, configuration, model, inputs, fields):
  """With fft_ignore_dc, the same weights without it forecast otherwise
  (the zero-frequency bin would be among the top k: the case tests it)."""
  config = configuration.TinyTimeMixerConfig(**dict(fields,
                                                    fft_ignore_dc=False))
  plain = _model_class(modeling, fields)(config).eval()
  plain.load_state_dict(model.state_dict(), strict=True)
  with torch.no_grad():
    assert not torch.allclose(_run(model, inputs).prediction_outputs,
                              _run(plain, inputs).prediction_outputs)


def main(checkout):
  sys.path.insert(0, checkout)
  quantile_fixture(checkout, os.path.join(FIXTURES,
                                          'r3_multi_quantile.npz'))
  modeling, configuration = r3_models(checkout)
  arrays = {}
  for name, seed in seeds().items():
    fields = {**CASES, **LATER_CASES}[name]
    model, inputs, case = option_case(modeling, configuration, name, fields,
                                      seed)
    check_export(modeling, model, inputs, case, fields)
    if fields.get('fft_ignore_dc'):
      check_ignore_dc_matters(modeling, configuration, model, inputs, fields)
    arrays.update({f'{name}/{k}': v for k, v in case.items()})
  path = os.path.join(FIXTURES, 'r3_options.npz')
  np.savez_compressed(path, **arrays)
  print(f'wrote {path}: {len(arrays)} arrays, '
        f'{os.path.getsize(path) // 1024} KiB')


if __name__ == '__main__':
  main(sys.argv[1])
