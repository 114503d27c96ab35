"""Writes tests/fixtures/r3_multi_quantile.npz from IBM's r3 source.

The multi-quantile head lives only on a branch of granite-tsfm
(`ttm-r3-release-mq2-merge`), which is not on PyPI, so the parity tests read
the r3 code's outputs from this fixture. To regenerate it:

  git clone -b ttm-r3-release-mq2-merge \
      https://github.com/ibm-granite/granite-tsfm /tmp/granite-tsfm-r3
  .venv/bin/python scripts/make_r3_quantile_fixture.py /tmp/granite-tsfm-r3

Two kinds of case:
  * the head alone ('default', 'custom'): `MultiQuantileHead`,
    `MultiPinballLoss`, `weighted_l1_over_horizon` and
    `_is_default_9_quantiles` (with its `DEFAULT_Q`) taken from the modeling
    file by name (with `ast`);
  * the whole r3 `TinyTimeMixerForPrediction` with the head ('model'): its
    config.json, weights, inputs and outputs (prediction, quantiles, loss),
    from r3's model package imported without `tsfm_public/__init__` (whose
    toolkit needs an older transformers).
"""

import ast
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NAMES = ('MultiQuantileHead', 'MultiPinballLoss', 'weighted_l1_over_horizon',
         '_is_default_9_quantiles')
CASES = {
    # The default levels (r3's hard-coded path), median = point + bias.
    'default': dict(quantile_levels=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                     0.9], mq_kernel_size=3, mq_hidden=8,
                    mq_q50_type='median', point_extra_weight=0.0),
    # Other levels (the generic path), a wider kernel, median = point.
    'custom': dict(quantile_levels=[0.05, 0.25, 0.5, 0.75, 0.95],
                   mq_kernel_size=5, mq_hidden=4, mq_q50_type='mean',
                   point_extra_weight=0.5),
}


def load_r3(path):
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


MODEL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=2,
             decoder_num_layers=1, adaptive_patching_levels=2,
             num_input_channels=2, multi_quantile_head=True,
             point_extra_weight=0.3, mq_hidden=6, scaling='std')


def r3_models(checkout):
  """r3's modeling and configuration modules from a checkout."""
  import importlib  # pylint: disable=g-import-not-at-top
  for name, folder in (('tsfm_public', 'tsfm_public'),
                       ('tsfm_public.models', 'tsfm_public/models')):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(checkout, folder)]
    sys.modules[name] = package
  prefix = 'tsfm_public.models.tinytimemixer.'
  return (importlib.import_module(prefix + 'modeling_tinytimemixer'),
          importlib.import_module(prefix + 'configuration_tinytimemixer'))


def model_case(checkout, arrays):
  modeling, configuration = r3_models(checkout)
  torch.manual_seed(1)
  config = configuration.TinyTimeMixerConfig(**MODEL)
  model = modeling.TinyTimeMixerForPrediction(config).eval()
  past = torch.randn(3, 64, 2) * 2 + 5
  future = torch.randn(3, 16, 2) * 2 + 5
  with torch.no_grad():
    out = model(past_values=past, future_values=future, return_loss=True)
  arrays['model/config_json'] = np.array(config.to_json_string())
  for key, value in model.state_dict().items():
    arrays[f'model/weights/{key}'] = value.numpy()
  for key, value in dict(past=past, future=future,
                         prediction=out.prediction_outputs,
                         quantiles=out.quantile_outputs,
                         loss=out.loss).items():
    arrays[f'model/{key}'] = value.detach().numpy()


def main(checkout, out):
  r3 = load_r3(os.path.join(checkout, 'tsfm_public', 'models',
                            'tinytimemixer', 'modeling_tinytimemixer.py'))
  arrays = {}
  for name, case in CASES.items():
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
    loss = r3['MultiPinballLoss'](config)(unscaled, target) + case[
        'point_extra_weight'] * r3['weighted_l1_over_horizon'](point, target)
    for key, value in head.state_dict().items():
      arrays[f'{name}/weights/{key}'] = value.numpy()
    for key, value in dict(mean_hat=mean_hat, quantiles=quantiles,
                           scale=scale, loc=loc, target=target,
                           loss=loss).items():
      arrays[f'{name}/{key}'] = value.detach().numpy()
  model_case(checkout, arrays)
  np.savez(out, **arrays)
  print(f'wrote {out}: {len(arrays)} arrays')


if __name__ == '__main__':
  here = os.path.dirname(os.path.abspath(__file__))
  main(sys.argv[1], os.path.join(here, '..', 'tests', 'fixtures',
                                 'r3_multi_quantile.npz'))
