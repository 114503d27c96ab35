"""A run's checkpoints in the reference's format: the best model, the
latest training checkpoint or any step, while the run goes on or after it
ended (`experiments/export.py`)."""

import json
import os
import shutil
from typing import Any, Dict, List, Optional

import jax
import ml_collections

from ttm_jax import errors
from ttm_jax import schema
from ttm_jax.data import categoricals
from ttm_jax.data.corpus import provenance
from ttm_jax.models import checkpoint
from ttm_jax.models import factory
from ttm_jax.train import checkpoints as checkpoints_lib
from ttm_jax.runs import workdir as workdir_lib

CHECKPOINT_FILES = (checkpoint.CONFIG_NAME, checkpoint.SAFETENSORS_NAME)
# The datasets a pretraining run read (in its workdir, for exports).
PRETRAINING_FILE = 'pretraining_data.json'
MODEL_CARD = 'README.md'


def save_pretraining(workdir: str, entries: List[Dict[str, Any]]) -> None:
  with open(os.path.join(workdir, PRETRAINING_FILE), 'w') as f:
    json.dump(entries, f, indent=2)


def load_pretraining(workdir: str) -> Optional[List[Dict[str, Any]]]:
  """The datasets a run pretrained on (`save_pretraining`), or None."""
  path = os.path.join(workdir, PRETRAINING_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      entries = json.load(f)
    provenance.names(entries)
  except (ValueError, KeyError, TypeError) as e:
    raise errors.ConfigError(f'{path} is not a list of datasets '
                             f'({type(e).__name__}: {e}).') from None
  return entries


def add_pretraining(folder: str, entries: List[Dict[str, Any]]) -> None:
  """Writes what a checkpoint was pretrained on into its config.json
  (`pretraining_data`: the dataset names, which the benchmark runner
  compares with its tasks' datasets; `pretraining_datasets`: the entries)
  and its model card (README.md)."""
  path = os.path.join(folder, checkpoint.CONFIG_NAME)
  with open(path) as f:
    values = json.load(f)
  values['pretraining_data'] = provenance.names(entries)
  values['pretraining_datasets'] = list(entries)
  with open(path, 'w') as f:
    json.dump(values, f, indent=2)
  with open(os.path.join(folder, MODEL_CARD), 'w') as f:
    f.write(provenance.model_card(entries, title=os.path.basename(
        folder.rstrip('/').split('.tmp-')[0])))


def run_config(workdir: str):
  """The resolved config the run recorded in `workdir/config.json`."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise errors.ConfigError(f'{workdir}: no config.json; is it a run\'s '
                             'workdir?')
  with open(path) as f:
    return schema.resolve(ml_collections.ConfigDict(json.load(f)))


def _variables(state) -> dict:
  """The model variables of a restored train state (a plain pytree)."""
  variables = {'params': state['params']}
  for name in ('batch_stats', 'buffers'):
    if state.get(name):
      variables[name] = state[name]
  return variables


def _step(ckpts, which: str) -> int:
  """The step `which` names: 'latest', 'best' (the selection record's, in
  the newest checkpoint) or a number."""
  steps = ckpts.all_steps()
  if which == 'best':
    meta = ckpts.restore_meta() or {}
    step = meta.get('best_step')
    if step is None:
      raise errors.ConfigError(f'{ckpts.root}: no best checkpoint yet (it '
                               'is written at the first validation).')
    return step
  step = ckpts.latest_step() if which == 'latest' else int(which)
  if step not in steps:
    raise errors.ConfigError(f'which={which}: no such checkpoint in '
                             f'{ckpts.root}/checkpoints (steps: '
                             f'{sorted(steps)}).')
  return step


def save_pretrained(out: str, config, variables, vocabulary=None,
                    pretraining=None) -> None:
  """`checkpoint.save_pretrained` (with the static categoricals'
  `vocabulary`, and the `pretraining` datasets, if any) into a temporary
  folder beside `out`, renamed into place when complete: `out` is either
  the previous folder or the new one, never half written."""
  out = os.path.abspath(out)
  tmp = f'{out}.tmp-{os.getpid()}'
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    checkpoint.save_pretrained(tmp, config, variables)
    if vocabulary is not None:
      vocabulary.save(tmp)
    if pretraining is not None:
      add_pretraining(tmp, pretraining)
    if os.path.isdir(out):
      old = f'{out}.old-{os.getpid()}'
      os.rename(out, old)
      os.rename(tmp, out)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.rename(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def check_out(out: str, overwrite: bool) -> None:
  """ConfigError/WorkdirError before any work when `out` cannot take an
  export: not writable, or holding another checkpoint (unless
  `overwrite`)."""
  workdir_lib.check_writable(out, '--out')
  held = [n for n in CHECKPOINT_FILES if os.path.exists(os.path.join(out, n))]
  if held and not overwrite:
    raise errors.ConfigError(
        f'--out {os.path.abspath(out)} already holds a checkpoint '
        f'({", ".join(held)}): choose another folder, or pass --overwrite '
        'to replace it.')


def export_run(workdir: str, which: str, out: str,
               overwrite: bool = False) -> int:
  """Writes the checkpoint `which` of the run in `workdir` to `out` (a new
  folder, or one holding a checkpoint with `overwrite`); returns its
  step."""
  if which not in ('best', 'latest') and not which.isdigit():
    raise errors.ConfigError(f"which={which!r}: expected 'best', 'latest' "
                             'or a step number.')
  check_out(out, overwrite)
  config = run_config(workdir)
  model = factory.create_model(config)
  ckpts = checkpoints_lib.Checkpoints(config.checkpoint_dir or workdir,
                                      keep=1, read_only=True)
  try:
    step = _step(ckpts, which)
    variables = _variables(ckpts.restore_state(step))
  finally:
    ckpts.close()
  save_pretrained(out, model.config, jax.device_get(variables),
                  categoricals.Vocabulary.load(workdir),
                  load_pretraining(workdir))
  return step
