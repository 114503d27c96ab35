"""Helpers to run IBM's reference TTM (granite-tsfm, test-only dependency)
beside ours on the same weights and inputs."""

from __future__ import annotations

import copy

import numpy as np

from tests import conftest

torch = conftest.require_module('torch')
tsfm = conftest.require_module('tsfm_public.models.tinytimemixer')

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp

from ttm_jax import compilation
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import modules
from ttm_jax.models import ttm

FIELDS = ('prediction_outputs', 'backbone_hidden_state',
          'decoder_hidden_state', 'loc', 'scale', 'loss', 'quantile_outputs')


def _field(out, name):
  """A reference output field as numpy, in our layout (quantiles: the
  reference's [b, q, h, c] -> our [b, h, c, q])."""
  value = getattr(out, name, None)
  if value is None:
    return None
  value = value.detach().numpy()
  return np.moveaxis(value, 1, -1) if name == 'quantile_outputs' else value


def reference_config(config: config_lib.TTMConfig, masked: bool = False):
  values = config.to_dict()
  for key in ('model_type', 'architectures', 'init_processing', 'patch_last'):
    values.pop(key)
  if masked:  # The reference's masked class derives these itself.
    values.pop('num_patches')
    values['masked_context_length'] = None
  return tsfm.TinyTimeMixerConfig(**values)


def build_pair(config: config_lib.TTMConfig, seed: int = 0,
               masked: bool = False, randomize_batch_stats: bool = True):
  """Reference model with random weights, and ours with the same weights."""
  torch.manual_seed(seed)
  cls = (tsfm.TinyTimeMixerForMaskedPrediction if masked
         else tsfm.TinyTimeMixerForPrediction)
  ref = cls(reference_config(config, masked))
  if randomize_batch_stats:
    gen = torch.Generator().manual_seed(seed + 1)
    for module in ref.modules():
      if isinstance(module, torch.nn.BatchNorm1d):
        module.running_mean.copy_(torch.randn(module.running_mean.shape,
                                              generator=gen) * 0.3)
        module.running_var.copy_(torch.rand(module.running_var.shape,
                                            generator=gen) + 0.5)
  ref.eval()
  ours_config = config
  if masked:
    ours_config = ttm.masked_prediction_config(config)
    assert ours_config.num_patches == ref.config.num_patches
  state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  variables, _ = checkpoint.convert_state_dict(state, ours_config, strict=True)
  return ref, modules.build_module(ours_config), variables


def run_reference(ref, inputs):
  kwargs = {k: (None if v is None else torch.tensor(np.asarray(v)))
            for k, v in inputs.items()}
  with torch.no_grad():
    out = ref(**kwargs)
  return {f: _field(out, f) for f in FIELDS}


def run_ours(model, variables, inputs, jit=True):
  """Our outputs, jitted as the engine's inference is (compilation.jit
  'infer'): XLA:CPU's YNNPACK fusions, on by default, reassociate sums (on
  an AMD EPYC host the exogenous fine-tune's decoder_hidden_state moved
  from 1.0e-5 to 4.0e-5 off the float64 value)."""
  fn = lambda v, i: model.apply(v, **i)
  if jit:
    fn = compilation.jit(fn, 'infer')
  inputs = {k: v for k, v in inputs.items() if v is not None}
  out = fn(variables, {k: jnp.asarray(v) for k, v in inputs.items()})
  return {f: (None if getattr(out, f) is None else
              np.asarray(getattr(out, f))) for f in FIELDS}


def run_reference_float64(ref, inputs):
  """The reference in float64: the exact value fp32 results approximate."""
  ref64 = copy.deepcopy(ref).double()
  kwargs = {}
  for k, v in inputs.items():
    v = np.asarray(v)
    kwargs[k] = torch.tensor(v.astype(np.float64) if v.dtype == np.float32
                             else v)
  with torch.no_grad():
    out = ref64(**kwargs)
  return {f: _field(out, f) for f in FIELDS}


def assert_outputs_match(ours, ref, atol=1e-5, ref64=None, rtol=1e-6):
  """Every field within `atol` of the reference's fp32 output.

  With `ref64` (the reference in float64), a field may instead be within
  `atol` of the reference's own fp32 error against the exact value: on the
  exogenous fine-tune the reference's fp32 rounding error in
  `decoder_hidden_state` (|values| ~4) is itself 1.5e-5 to 2e-5.
  """
  for field in FIELDS:
    if ref[field] is None:
      assert ours[field] is None, field
      continue
    assert ours[field] is not None, field
    assert ours[field].shape == ref[field].shape, (field, ours[field].shape,
                                                   ref[field].shape)
    # 1e-5 absolute, or 1e-6 of the tensor's largest magnitude when that is
    # above 10 (about 16 float32 ulps there): hidden states of a series whose
    # every step is masked reach 1e3 (the std scaler divides by sqrt(1e-5)).
    diff = np.max(np.abs(ours[field] - ref[field]))
    if diff <= max(atol, rtol * np.max(np.abs(ref[field]))):
      continue
    assert ref64 is not None, f'{field}: max abs diff {diff}'
    ours_error = np.max(np.abs(ours[field] - ref64[field]))
    ref_error = np.max(np.abs(ref[field] - ref64[field]))
    assert ours_error <= ref_error + atol, (
        f'{field}: max abs diff {diff} from the reference; error vs float64: '
        f'ours {ours_error}, reference fp32 {ref_error}')


def make_inputs(config, batch_size=3, length=None, channels=None, seed=0,
                future=True, past_mask=None, future_mask=None,
                future_length=None):
  """Random inputs; masks: None, 'bool' or 'int'."""
  rng = np.random.RandomState(seed)
  length = length or config.context_length
  channels = channels or config.num_input_channels
  inputs = {'past_values': rng.randn(batch_size, length,
                                     channels).astype(np.float32) * 2 + 0.5}
  if future:
    inputs['future_values'] = rng.randn(
        batch_size, future_length or config.prediction_length,
        channels).astype(np.float32)
  for name, kind, shape in (
      ('past_observed_mask', past_mask, inputs['past_values'].shape),
      ('future_observed_mask', future_mask,
       inputs.get('future_values', np.zeros(0)).shape)):
    if kind is None:
      continue
    mask = rng.rand(*shape) > 0.2
    inputs[name] = mask if kind == 'bool' else mask.astype(np.float32)
  if config.resolution_prefix_tuning:
    inputs['freq_token'] = rng.randint(
        0, config.frequency_token_vocab_size, size=(batch_size,))
  if config.categorical_vocab_size_list:
    inputs['static_categorical_values'] = np.stack(
        [rng.randint(0, v, size=(batch_size,))
         for v in config.categorical_vocab_size_list], axis=1)
  return inputs
