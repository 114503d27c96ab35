"""Which checkpoint forecasts a request when the user says 'auto': the
reference's `get_model` rule (the longest context that fits the history,
then the shortest horizon that covers; rolling when none does) over local
checkpoint folders, or over a release on the hub (`zoo.select_checkpoint`,
r3's rule for 'auto:ibm-research/ttm-r3'). The forecasting API and the
benchmark runner both ask here."""

from __future__ import annotations

import json
import logging
import os
from typing import List, Optional, Sequence, Tuple

from ttm_jax import errors
from ttm_jax.models import zoo

_LOG = logging.getLogger(__name__)
CHECKPOINTS_ENV = 'TTM_CHECKPOINTS'
HUB_R2 = 'ibm-granite/granite-timeseries-ttm-r2'


def _local_candidates(folders: Sequence[str]) -> List[Tuple[str, int, int]]:
  """(folder, context, horizon) of every checkpoint folder found (a folder
  with config.json, or the folders directly inside one)."""
  out = []
  for root in folders:
    if not root or not os.path.isdir(root):
      continue
    inner = [os.path.join(root, n) for n in sorted(os.listdir(root))]
    for folder in [root] + [p for p in inner if os.path.isdir(p)]:
      path = os.path.join(folder, 'config.json')
      if os.path.exists(path):
        try:
          with open(path) as f:
            values = json.load(f)
          out.append((folder, int(values['context_length']),
                      int(values['prediction_length'])))
        except (ValueError, KeyError, TypeError):
          _LOG.warning('Skipping %s: unreadable config.json.', folder)
  return out


def release_of(checkpoint: str) -> Optional[str]:
  """The hub id an 'auto' checkpoint chooses among: None for 'auto' (local
  folders first, then IBM's r2), the id after 'auto:' (e.g.
  'auto:ibm-research/ttm-r3'), or None when it is not 'auto' at all."""
  if checkpoint == 'auto' or not checkpoint.startswith('auto:'):
    return None
  return checkpoint[len('auto:'):]


def choose_checkpoint(history: int, horizon: int, freq: str,
                      checkpoints_dir: Optional[str] = None,
                      allow_download: bool = False,
                      hub_id: Optional[str] = None) -> Tuple[str, str]:
  """(path or hub id, revision) for 'auto', by the reference's `get_model`
  rule (the longest context that fits, then the shortest horizon that
  covers; rolling when none does): local folders first, the hub only when
  allowed. With `hub_id` (a release of `zoo.HUB_IDS`, 'auto:<hub id>'),
  that release's rule alone (r3's for 'ibm-research/ttm-r3')."""
  if hub_id is not None:
    return _choose_release(hub_id, history, horizon, freq, allow_download)
  roots = [checkpoints_dir, os.environ.get(CHECKPOINTS_ENV, '')]
  found = _local_candidates(roots)
  if found:
    fits = [c for c in found if c[1] <= history] or [
        min(found, key=lambda c: c[1])]  # Zero-pad to the shortest.
    longest = max(c[1] for c in fits)
    fits = [c for c in fits if c[1] == longest]
    covers = sorted([c for c in fits if c[2] >= horizon], key=lambda c: c[2])
    choice = covers[0] if covers else max(fits, key=lambda c: c[2])
    return choice[0], ''
  if not allow_download:
    raise errors.CheckpointError(
        "checkpoint='auto' found no checkpoint folder in "
        f'{[r for r in roots if r] or "(none given)"}: pass checkpoints_dir '
        f'or set ${CHECKPOINTS_ENV} to a folder of checkpoints, or allow '
        'downloads from the Hugging Face hub (allow_download=True).')
  return _choose_release(HUB_R2, history, horizon, freq, allow_download)


def _choose_release(hub_id: str, history: int, horizon: int, freq: str,
                    allow_download: bool) -> Tuple[str, str]:
  """The release's `get_model` choice for a history (at least the
  release's shortest context: shorter ones are padded) and a horizon
  (longer than the release's: rolled)."""
  if not allow_download:
    raise errors.CheckpointError(
        f"checkpoint='auto:{hub_id}' downloads from the Hugging Face hub: "
        'pass allow_download=True (with HF_HUB_OFFLINE=1 it reads the local '
        'hub cache).')
  shortest = min(r[4] for r in zoo.releases_of(hub_id))
  selection = zoo.select_checkpoint(
      hub_id, max(history, shortest), horizon, freq=freq,
      force_return='rolling' if horizon > 720 else 'zeropad')
  return selection.hub_id, selection.revision
