"""Reading and writing the reference's checkpoints (`config.json` +
`model.safetensors`), and converting PyTorch state dicts.

The Flax tree mirrors the reference's module tree, so a state-dict key is the
Flax path with `name_N` written `name.N` and the leaf renamed
(`kernel` -> `weight` transposed, `scale`/`embedding` -> `weight`,
`batch_stats/mean|var` -> `running_mean|running_var`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import errors
from ttm_jax.models import config as config_lib
from ttm_jax.models import config_rules
from ttm_jax.models import backbone
from ttm_jax.models import initializers
from ttm_jax.models import torch_pickle
from ttm_jax.models import modules
from ttm_jax.models import ttm

_LOG = logging.getLogger(__name__)

TTMConfig = config_lib.TTMConfig
CONFIG_NAME = 'config.json'
# TTMs pretrained by this project from public data (`load_pretrained(name)`).
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'pretrained')
SAFETENSORS_NAME = 'model.safetensors'
PYTORCH_NAME = 'pytorch_model.bin'
_INDEXED = re.compile(r'^(.*)_(\d+)$')
_LEAF_NAMES = {
    ('params', 'kernel'): 'weight',
    ('params', 'scale'): 'weight',
    ('params', 'embedding'): 'weight',
    ('params', 'bias'): 'bias',
    ('params', 'position_enc'): 'position_enc',
    ('params', 'patch_tokens'): 'patch_tokens',
    ('buffers', 'position_enc'): 'position_enc',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}
# Torch keys without a Flax counterpart that carry no information.
_IGNORED_SUFFIXES = ('num_batches_tracked',)


CheckpointError = errors.CheckpointError


@dataclasses.dataclass
class LoadReport:
  """What `convert_state_dict` did, by reference (state-dict) name."""
  loaded: list
  new: list  # Initialised here: absent from the checkpoint.
  dropped: list  # In the checkpoint, unused by this configuration.


def torch_key(collection: str, path: Tuple[str, ...]) -> str:
  """The reference state-dict key of a Flax variable."""
  parts = []
  for name in path[:-1]:
    match = _INDEXED.match(name)
    parts.append(f'{match.group(1)}.{match.group(2)}' if match else name)
  parts.append(_LEAF_NAMES[(collection, path[-1])])
  return '.'.join(parts)


def variable_shapes(config: TTMConfig, module: Optional[Any] = None):
  """Abstract variables of `config`, each boxed with the spec of its initial
  distribution (`initializers.Initialised`); tracing only, nothing compiled."""
  module = module or modules.build_module(config)
  inputs = ttm.example_batch(config)
  return jax.eval_shape(lambda r: module.init(r, **inputs),
                        jax.random.key(0))


def _is_box(path, x) -> bool:
  del path
  return isinstance(x, initializers.Initialised)


def init_variables(config: TTMConfig, rng: jax.Array,
                   module: Optional[Any] = None) -> Dict[str, Any]:
  """Random variables, initialised as the reference initialises them.

  The tree comes from tracing the model (`eval_shape`); each leaf is drawn
  with NumPy from the distribution its module declares (torch defaults, or
  the `post_init` schemes), seeded by `rng`. Flax's `init` would compile the
  whole forward pass and hundreds of threefry draws, which takes XLA:CPU
  10-25 s for a full TTM; this takes milliseconds.
  """
  boxes = flax.traverse_util.flatten_dict(
      flax.core.unfreeze(variable_shapes(config, module)), is_leaf=_is_box)
  seed = np.asarray(jax.random.key_data(rng)).ravel().tolist()
  generator = np.random.default_rng(seed)
  out = {}
  for path, box in sorted(boxes.items()):
    shape = box.value.shape
    if box.spec[0] == 'sincos':  # The fixed positional table.
      array = backbone.sincos_position_encoding(*shape)
    else:
      array = initializers.sample_spec(box.spec, shape, generator)
    out[path] = jnp.asarray(array)
  return flax.traverse_util.unflatten_dict(out)


def _flatten(variables: Mapping[str, Any]) -> Dict[Tuple[str, ...], Any]:
  return flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))


def to_state_dict(variables: Mapping[str, Any]) -> Dict[str, np.ndarray]:
  """Flax variables -> the reference's state dict (NumPy, torch layout)."""
  state = {}
  for path, value in _flatten(variables).items():
    collection, rest = path[0], path[1:]
    value = np.asarray(jax.device_get(value), dtype=np.float32)
    if rest[-1] == 'kernel':
      value = value.T
    state[torch_key(collection, rest)] = np.ascontiguousarray(value)
    if collection == 'batch_stats' and rest[-1] == 'mean':
      prefix = torch_key(collection, rest).rsplit('.', 1)[0]
      state[f'{prefix}.num_batches_tracked'] = np.zeros((), np.int64)
  return state


def _origin(name: str, value, provenance, missing: str) -> str:
  """Where a config field's value came from: the user's override, the
  default (`missing`: config.json does not have it) or config.json."""
  file_values, overrides = provenance or ({}, {})
  if name in overrides:
    return f'your override {name}={value!r}'
  if provenance is not None and name not in file_values:
    return missing
  return f'config.json says {name}={value!r}'


def _branch_conflict(key: str, got, expected, config: TTMConfig,
                     state_dict, provenance) -> Optional[str]:
  """For a weight of a decomposed model's trend branch: 'config.json has
  no trend_X, so the trend branch takes X=..., but its weights say
  trend_X=...', naming the field first; None if the weights name no
  field."""
  prefix = 'trend_forecaster.'
  if not config.decompose or not key.startswith(prefix):
    return None
  said, _ = config_rules.weights_say(
      {k[len(prefix):]: v for k, v in state_dict.items()
       if k.startswith(prefix)})
  branch = config.trend_config()
  conflicts, settings = [], {}
  for field, weights_value in said.items():
    ours = getattr(branch, field)
    name = (f'trend_{field}' if f'trend_{field}' in config_lib.TREND_FIELDS
            else field)
    if ours == weights_value:
      continue
    origin = _origin(name, getattr(config, name), provenance,
                     f'config.json has no {name}, so the trend branch '
                     f'takes {field}={ours!r}')
    conflicts.append(f'{origin}, but its weights say {name}='
                     f'{weights_value!r}')
    settings[name] = weights_value
    if name == 'trend_patch_length':  # The stride must equal it.
      settings['trend_patch_stride'] = weights_value
  if not conflicts:
    return None
  return ('; '.join(conflicts) + f' (checkpoint weight {key} is '
          f'{list(got)}, not {list(expected)}): set '
          + ', '.join(f'{k}={v!r}' for k, v in settings.items())
          + ' in config.json or as overrides.')


def _shape_conflict(key: str, got, expected, config: TTMConfig, state_dict,
                    provenance: Optional[Tuple[Mapping, Mapping]]) -> str:
  """'config.json says X, the weights say Y' for a weight of the wrong
  shape (with overrides named as such)."""
  branch = _branch_conflict(key, got, expected, config, state_dict,
                            provenance)
  if branch:
    return branch
  _, overrides = provenance or ({}, {})
  said, _ = config_rules.weights_say(state_dict)
  conflicts = []
  for field, weights_value in said.items():
    ours = getattr(config, field)
    if ours == weights_value:
      continue
    origin = _origin(field, ours, provenance, f'config.json has no '
                     f'{field}, so it is the default {ours!r}')
    conflicts.append(f'{origin}, the weights say {field}={weights_value!r}')
  if not conflicts:
    conflicts = ['the weights were made for another configuration of '
                 + ', '.join(f'{f}={getattr(config, f)!r}'
                             for f in config_lib.SHAPE_FIELDS)]
  hint = (' (to forecast fewer steps use prediction_filter_length)'
          if 'prediction_length' in overrides else '')
  return (f'Checkpoint weight {key} is {list(got)} but the configuration '
          f'needs {list(expected)}: ' + '; '.join(conflicts) + hint + '.')


def _non_finite(found) -> str:
  """'Checkpoint weights hold non-finite values: KEY (n NaN, m inf of
  size), ...' for [(key, array)]."""
  parts = []
  for key, value in found[:3]:
    nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
    counts = ', '.join(f'{n:,} {what}' for n, what in ((nan, 'NaN'),
                                                        (inf, 'inf')) if n)
    parts.append(f'{key} ({counts} of {value.size:,})')
  more = f' and {len(found) - 3} more' if len(found) > 3 else ''
  return (f'Checkpoint weights hold non-finite values: {", ".join(parts)}'
          f'{more}. The model would forecast NaN: use a checkpoint saved '
          'before training diverged, or another one.')


def convert_state_dict(
    state_dict: Mapping[str, np.ndarray], config: TTMConfig,
    rng: Optional[jax.Array] = None, strict: bool = False,
    provenance: Optional[Tuple[Mapping, Mapping]] = None
) -> Tuple[Dict[str, Any], LoadReport]:
  """A reference state dict -> Flax variables for `config`.

  Weights absent from the checkpoint are initialised as the reference does
  (reported as new); checkpoint weights this configuration does not use are
  reported as dropped. A shape that contradicts the configuration raises.

  Args:
    state_dict: torch-layout arrays by reference key.
    config: the configuration to build.
    rng: key for new weights (default `jax.random.key(0)`).
    strict: raise unless every weight is loaded and none dropped.
    provenance: (config.json values, overrides) that made `config`, to
      word shape conflicts by where each setting came from.

  Returns:
    (variables, report).
  """
  rng = jax.random.key(0) if rng is None else rng
  # Shapes by tracing only; weights are initialised only when some are new.
  shapes = _flatten(flax.core.meta.unbox(variable_shapes(config)))
  fresh = None
  out, loaded, new, non_finite = {}, [], [], []
  used = set()
  for path, init_value in shapes.items():
    collection, rest = path[0], path[1:]
    key = torch_key(collection, rest)
    if key not in state_dict:
      if fresh is None:
        fresh = _flatten(init_variables(config, rng))
      out[path] = fresh[path]
      new.append(key)
      continue
    value = np.asarray(state_dict[key])
    if rest[-1] == 'kernel':
      value = value.T
    if value.shape != init_value.shape:
      expected = (init_value.shape[::-1] if rest[-1] == 'kernel'
                  else init_value.shape)
      raise CheckpointError(_shape_conflict(
          key, np.shape(state_dict[key]), expected, config, state_dict,
          provenance))
    if value.dtype.kind in 'fc' and not np.isfinite(value).all():
      non_finite.append((key, value))
    # A copy: the array may be a view of a torch buffer updated in place.
    out[path] = jnp.array(value, init_value.dtype, copy=True)
    loaded.append(key)
    used.add(key)
  if non_finite:
    raise CheckpointError(_non_finite(non_finite))
  dropped = sorted(
      k for k in state_dict
      if k not in used and not k.endswith(_IGNORED_SUFFIXES))
  report = LoadReport(loaded=sorted(loaded), new=sorted(new), dropped=dropped)
  if strict and (report.new or report.dropped):
    raise CheckpointError(f'Checkpoint does not match the configuration: new '
                          f'{report.new}, dropped {report.dropped}.')
  return flax.traverse_util.unflatten_dict(out), report


# The output layers of the residual branches a fine-tune can add to a
# pretrained TTM: a mix_channel decoder's channel mixers (h + mix(norm(h)))
# and the exogenous mixer (forecast + mlp(...)). Zero, each branch adds
# nothing: the model forecasts its prediction channels as the checkpoint.
RESIDUAL_OUTPUTS = ('channel_feature_mixer.mlp.fc2.weight',
                    'channel_feature_mixer.mlp.fc2.bias',
                    'fcm_block.mlp.weight', 'fcm_block.mlp.bias')


def zero_new_residuals(variables: Mapping[str, Any], new: Sequence[str]
                       ) -> Tuple[Dict[str, Any], List[str]]:
  """`variables` with the output layer of every new residual branch
  (`RESIDUAL_OUTPUTS` among the reference keys `new`) set to zero, so the
  model starts from the checkpoint's forecast (a zero-initialised
  residual branch, as ReZero and ControlNet start theirs); its other new
  weights stay as initialised. Returns (variables, the keys zeroed)."""
  new = set(new)
  flat = _flatten(variables)
  zeroed = []
  for path, value in flat.items():
    key = torch_key(path[0], path[1:])
    if key in new and key.endswith(RESIDUAL_OUTPUTS):
      flat[path] = jnp.zeros_like(value)
      zeroed.append(key)
  return flax.traverse_util.unflatten_dict(flat), sorted(zeroed)


# ------------------------------------------------------------------- files
def read_state_dict(folder: str) -> Dict[str, np.ndarray]:
  """Reads model.safetensors (or a safely readable pytorch_model.bin)."""
  path = os.path.join(folder, SAFETENSORS_NAME)
  if os.path.exists(path):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    try:
      return dict(load_file(path))
    except Exception as e:  # safetensors raises its own error types.
      raise CheckpointError(f'Cannot read {path}: {e}') from e
  path = os.path.join(folder, PYTORCH_NAME)
  if os.path.exists(path):
    return torch_pickle.load_state_dict(path)
  raise CheckpointError(
      f'No {SAFETENSORS_NAME} or {PYTORCH_NAME} in {folder} (files there: '
      f'{sorted(os.listdir(folder))}).')


def resolve(path_or_hub_id: str, revision: Optional[str] = None,
            cache_dir: Optional[str] = None) -> str:
  """A local folder, or the snapshot folder of a Hugging Face hub repo.

  Hub downloads fetch only `config.json` and the weights; offline
  (HF_HUB_OFFLINE=1) they resolve from the local cache.
  """
  if os.path.isdir(path_or_hub_id):
    return path_or_hub_id
  bundled = os.path.join(PRETRAINED_DIR, path_or_hub_id)
  if '/' not in path_or_hub_id and os.path.isdir(bundled):
    return bundled  # A TTM pretrained by this project (offline).
  if os.path.exists(path_or_hub_id) or path_or_hub_id.startswith(
      ('.', '/', '~')) or path_or_hub_id.count('/') != 1:
    raise CheckpointError(
        f'{path_or_hub_id!r} is neither a checkpoint folder nor a Hugging '
        'Face hub id of the form "org/name".')
  import huggingface_hub  # pylint: disable=g-import-not-at-top
  try:
    folder = huggingface_hub.snapshot_download(
        repo_id=path_or_hub_id, revision=revision, cache_dir=cache_dir,
        allow_patterns=[CONFIG_NAME, SAFETENSORS_NAME])
  except Exception as e:  # Network, auth, missing revision...
    raise CheckpointError(
        f'Could not fetch {path_or_hub_id} (revision {revision or "main"}) '
        f'from the Hugging Face hub: {type(e).__name__}: {e}') from e
  return folder


def _patterns(new_weights) -> list:
  """`new_weights` as compiled regexes; ConfigError naming a bad one."""
  if isinstance(new_weights, str):
    new_weights = [new_weights]
  out = []
  for pattern in new_weights:
    try:
      out.append(re.compile(pattern))
    except (re.error, TypeError) as e:
      raise errors.ConfigError(
          f'new_weights: {pattern!r} is not a regular expression over '
          f'weight names ({e}); e.g. "head\\..*" for a new head.') from None
  return out


def _unexplained(new, config_path: str, overrides: Mapping) -> list:
  """The weights of `new` (absent from the checkpoint) that the
  checkpoint's own config.json needs: those no override explains."""
  if not overrides:
    return list(new)
  try:
    own = TTMConfig.from_json_file(config_path)
  except errors.TTMError:
    return list(new)  # Its own config does not build: nothing explains.
  needed = {torch_key(path[0], path[1:]) for path in _flatten(
      flax.core.meta.unbox(variable_shapes(own)))}
  return [key for key in new if key in needed]


def _trend_fields_note(config: TTMConfig, file_values: Mapping,
                       overrides: Mapping, keys) -> str:
  """'config.json has no trend_X, ...: ' when weights of a decomposed
  model's trend branch do not fit a config.json without trend fields."""
  if not config.decompose or not any(k.startswith('trend_forecaster.')
                                     for k in keys):
    return ''
  absent = [f for f in config_lib.TREND_FIELDS
            if f not in file_values and f not in overrides]
  if not absent:
    return ''
  return (f'config.json has no {", ".join(absent)} (without them the '
          'decomposed model\'s trend branch copies the base model\'s '
          'values), and its trend branch does not fit the checkpoint: ')


def _check_complete(config: TTMConfig, report: LoadReport, config_path: str,
                    file_values: Mapping, overrides: Mapping,
                    new_weights) -> None:
  """CheckpointError naming the weights the checkpoint lacks though its
  own config needs them (unless `new_weights` asks for them fresh), and a
  decomposed model's trend-branch weights that its config leaves out."""
  patterns = _patterns(new_weights)
  missing = [k for k in _unexplained(report.new, config_path, overrides)
             if not any(p.fullmatch(k) for p in patterns)]
  if missing:
    shown = ', '.join(missing[:5]) + (
        f' and {len(missing) - 5} more' if len(missing) > 5 else '')
    raise CheckpointError(
        _trend_fields_note(config, file_values, overrides, missing)
        + f'the checkpoint lacks {len(missing)} weight(s) that its '
        f'config.json needs: {shown}. They would start random: use a '
        'complete checkpoint, or pass new_weights=[regex, ...] to start '
        'them fresh on purpose (e.g. new_weights=["head\\..*"] for a new '
        'head).')
  trend = [k for k in report.dropped if k.startswith('trend_forecaster.')]
  note = _trend_fields_note(config, file_values, overrides, trend)
  if note:
    raise CheckpointError(
        note + f'it holds {len(trend)} trend-branch weight(s) that this '
        f'config does not use: {", ".join(trend[:5])}. Set the trend_* '
        'fields the checkpoint was made with.')


def load_pretrained(path_or_hub_id: str, revision: Optional[str] = None,
                    *, rng: Optional[jax.Array] = None,
                    cache_dir: Optional[str] = None,
                    return_report: bool = False, new_weights=(),
                    **config_overrides):
  """Loads a reference checkpoint: (config, model, variables).

  A weight absent from the checkpoint is initialised as the reference does
  (and reported) only when an override explains it (a new head, new
  channels) or `new_weights` asks for it; one that the checkpoint's own
  config.json needs is an error naming it (a partial save). Weights that
  hold NaN or inf are an error naming them.

  Args:
    path_or_hub_id: a folder with config.json and model.safetensors, or a hub
      id such as "ibm-granite/granite-timeseries-ttm-r2".
    revision: hub branch/tag/commit (e.g. "1024-96-r2").
    rng: key for weights the overrides create (default key 0).
    cache_dir: hub cache folder.
    return_report: also return the `LoadReport`.
    new_weights: regular expressions over reference weight names
      (`head\\..*`) that may be absent and start fresh.
    **config_overrides: `TTMConfig` fields, as the reference's
      `from_pretrained(..., **kwargs)`.

  Raises:
    CheckpointError: naming the folder and the weight or field.
  """
  folder = resolve(path_or_hub_id, revision, cache_dir)
  config_path = os.path.join(folder, CONFIG_NAME)
  if not os.path.exists(config_path):
    raise CheckpointError(f'No {CONFIG_NAME} in {folder}.')
  _patterns(new_weights)  # Checked before any work.
  config = TTMConfig.from_json_file(config_path, **config_overrides)
  with open(config_path, encoding='utf-8') as f:
    file_values = json.load(f)
  try:
    variables, report = convert_state_dict(
        read_state_dict(folder), config, rng,
        provenance=(file_values, config_overrides))
    _check_complete(config, report, config_path, file_values,
                    config_overrides, new_weights)
  except CheckpointError as e:
    raise CheckpointError(f'{folder}: {e}') from e
  if report.new:
    _LOG.warning('Newly initialised weights (not in %s): %s', folder,
                 report.new)
  if report.dropped:
    _LOG.warning('Checkpoint weights unused by this configuration: %s',
                 report.dropped)
  model = modules.build_module(config)
  if return_report:
    return config, model, variables, report
  return config, model, variables


def save_pretrained(path: str, config: TTMConfig,
                    variables: Mapping[str, Any]) -> None:
  """Writes config.json + model.safetensors the reference can load."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  os.makedirs(path, exist_ok=True)
  config.to_json_file(os.path.join(path, CONFIG_NAME))
  save_file(to_state_dict(variables), os.path.join(path, SAFETENSORS_NAME),
            metadata={'format': 'pt'})
