"""Which IBM TTM checkpoint to use: the reference's `get_model` selection.

A pure function from (context length, horizon, frequency, preferences) to
(hub id, revision, prediction_filter_length), ported from
`tsfm_public/toolkit/get_model.py` and its release table
(`resources/model_paths_config/ttm.yaml`: r1, r2, r2.1, research-r2), and
for r3 (`ibm-research/ttm-r3`) from the same files on granite-tsfm's branch
`ttm-r3-release-mq2-merge`: its r3 rule first picks the r2/r2.1 model the
request would get and maps it to an r3 revision ("known mappings"), else
scores every r3 revision (`_select_r3_direct`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

from ttm_jax import errors
from ttm_jax.models import config as config_lib
from ttm_jax.models import frequency

_LOG = logging.getLogger(__name__)

# (key, release, hub id, revision, context length, prediction length).
RELEASES = (
    ('512-96-r1', 'r1', 'ibm-granite/granite-timeseries-ttm-r1', 'main', 512, 96),
    ('1024-96-r1', 'r1', 'ibm-granite/granite-timeseries-ttm-r1', '1024_96_v1', 1024, 96),
    ('512-96-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', 'main', 512, 96),
    ('512-192-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '512-192-r2', 512, 192),
    ('512-336-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '512-336-r2', 512, 336),
    ('512-720-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '512-720-r2', 512, 720),
    ('1024-96-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1024-96-r2', 1024, 96),
    ('1024-192-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1024-192-r2', 1024, 192),
    ('1024-336-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1024-336-r2', 1024, 336),
    ('1024-720-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1024-720-r2', 1024, 720),
    ('1536-96-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1536-96-r2', 1536, 96),
    ('1536-192-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1536-192-r2', 1536, 192),
    ('1536-336-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1536-336-r2', 1536, 336),
    ('1536-720-r2', 'r2', 'ibm-granite/granite-timeseries-ttm-r2', '1536-720-r2', 1536, 720),
    ('52-16-ft-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '52-16-ft-r2.1', 52, 16),
    ('52-16-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '52-16-ft-l1-r2.1', 52, 16),
    ('90-30-ft-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '90-30-ft-r2.1', 90, 30),
    ('90-30-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '90-30-ft-l1-r2.1', 90, 30),
    ('180-60-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '180-60-ft-l1-r2.1', 180, 60),
    ('360-60-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '360-60-ft-l1-r2.1', 360, 60),
    ('512-48-ft-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '512-48-ft-r2.1', 512, 48),
    ('512-48-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '512-48-ft-l1-r2.1', 512, 48),
    ('512-96-ft-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '512-96-ft-r2.1', 512, 96),
    ('512-96-ft-l1-r2.1', 'r2.1', 'ibm-granite/granite-timeseries-ttm-r2', '512-96-ft-l1-r2.1', 512, 96),
    ('512-96-ft-r2', 'r2', 'ibm-research/ttm-research-r2', 'main', 512, 96),
    ('512-192-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '512-192-ft-r2', 512, 192),
    ('512-336-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '512-336-ft-r2', 512, 336),
    ('512-720-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '512-720-ft-r2', 512, 720),
    ('1024-96-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1024-96-ft-r2', 1024, 96),
    ('1024-192-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1024-192-ft-r2', 1024, 192),
    ('1024-336-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1024-336-ft-r2', 1024, 336),
    ('1024-720-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1024-720-ft-r2', 1024, 720),
    ('1536-96-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1536-96-ft-r2', 1536, 96),
    ('1536-192-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1536-192-ft-r2', 1536, 192),
    ('1536-336-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1536-336-ft-r2', 1536, 336),
    ('1536-720-ft-r2', 'r2', 'ibm-research/ttm-research-r2', '1536-720-ft-r2', 1536, 720),
)
RESEARCH_HUB_ID = 'ibm-research/ttm-research-r2'
R2_HUB_ID = 'ibm-granite/granite-timeseries-ttm-r2'
R3_HUB_ID = 'ibm-research/ttm-r3'
# r3's public card: the same releases under the same revisions.
R3_PUBLIC_HUB_ID = 'ibm-granite/granite-timeseries-ttm-r3'
# r3 (the branch's ttm.yaml, in its order): (context, horizon, the residual
# branch's context for a decomposed model, else None). Each is released
# twice: as "<cl>-<fl>[-dec-<res>]-r3" and as the "-lite-r3" model.
R3_SHAPES = (
    (156, 16, 52), (512, 30, 90), (768, 48, 512), (1024, 48, 512),
    (2048, 96, None), (2048, 720, None), (2560, 96, None), (2560, 720, None),
    (3072, 96, None), (3072, 720, None), (52, 16, 52), (90, 30, 90),
    (180, 60, 180), (360, 60, 360), (512, 48, 512), (512, 96, 512),
    (512, 336, 512), (1024, 96, None), (1024, 720, None), (1536, 96, None),
    (1536, 720, None))


def r3_key(context: int, horizon: int, residual: Optional[int],
           lite: bool = False) -> str:
  """The r3 release key (and hub revision) of a shape."""
  dec = f'-dec-{residual}' if residual else ''
  return f'{context}-{horizon}{dec}{"-lite" if lite else ""}-r3'


RELEASES += tuple(
    (r3_key(cl, fl, res, lite), 'r3', R3_HUB_ID, r3_key(cl, fl, res, lite),
     cl, fl) for lite in (False, True) for cl, fl, res in R3_SHAPES)
# The residual branch's context of each decomposed r3 release.
R3_RESIDUAL_CONTEXT = {r3_key(cl, fl, res, lite): res
                       for lite in (False, True)
                       for cl, fl, res in R3_SHAPES if res}
# Hub ids `select_checkpoint` knows (besides local folders).
HUB_IDS = ('ibm-granite/granite-timeseries-ttm-r1', R2_HUB_ID,
           RESEARCH_HUB_ID, R3_HUB_ID, R3_PUBLIC_HUB_ID)
LOW_RESOLUTION_MAX_CONTEXT = 512
RANDOM_INIT = ('random_init_small', 'random_init_medium', 'random_init_large')
FORCE_RETURN = ('zeropad', 'rolling') + RANDOM_INIT

class NoCheckpointError(errors.TTMError, ValueError):
  """No released TTM fits the request (and no fallback was asked for)."""


@dataclasses.dataclass(frozen=True)
class Selection:
  """A chosen checkpoint, or a random-init model to train.

  Attributes:
    model_key: the release table's key (e.g. "512-96-r2"), or "TTM(small)".
    hub_id: Hugging Face repo, or None for a random init.
    revision: the branch holding the checkpoint.
    prediction_filter_length: requested horizon when shorter than the
      checkpoint's, else None.
    context_length: the checkpoint's context (zero-pad shorter inputs).
    prediction_length: the checkpoint's horizon (roll for longer ones).
    random_config: for random-init fallbacks, the `TTMConfig` to train.
    residual_context_length: for a decomposed r3 release, its residual
      branch's context (its config.json makes it decomposed), else None.
  """
  model_key: str
  hub_id: Optional[str]
  revision: Optional[str]
  prediction_filter_length: Optional[int]
  context_length: int
  prediction_length: int
  random_config: Optional[config_lib.TTMConfig] = None
  residual_context_length: Optional[int] = None


def path_type(model_path: str) -> int:
  """1: r1, 2: granite r2 (incl. r2.1), 3: research r2, 4: r3, 0: anything
  else."""
  if model_path.startswith((
      'ibm/TTM', 'ibm-granite/granite-timeseries-ttm-r1',
      'ibm-granite/granite-timeseries-ttm-v1',
      'ibm-granite/granite-timeseries-ttm-1m')):
    return 1
  if model_path.startswith('ibm-granite/granite-timeseries-ttm-r2'):
    return 2
  if model_path.startswith(RESEARCH_HUB_ID):
    return 3
  if model_path.startswith((R3_HUB_ID, R3_PUBLIC_HUB_ID)):
    return 4
  return 0


def random_ttm_config(context_length: int, prediction_length: int,
                      size: str = 'small', **overrides) -> config_lib.TTMConfig:
  """The reference's `get_random_ttm` configuration (small/medium/large)."""
  size = size.lower()
  if 'small' in size:
    lower_bound, levels, num_layers = 4, 0, 3
  elif 'medium' in size:
    lower_bound, levels, num_layers = 16, 3, 3
  elif 'large' in size:
    lower_bound, levels, num_layers = 32, 5, 5
  else:
    raise ValueError('Wrong size. Should be either of these [small/medium/'
                     'large].')
  if context_length < lower_bound:
    raise ValueError(f'Context length should be at least {lower_bound} if '
                     f'`size={size}`.')
  context = context_length if context_length % 2 == 0 else context_length - 1
  patch = 2
  while context % patch == 0 and context / patch >= 8:
    patch *= 2
  d_model = 2 * patch if 'small' in size else 16 * 2**levels
  values = dict(context_length=context, prediction_length=prediction_length,
                patch_length=patch, patch_stride=patch, d_model=d_model,
                num_layers=num_layers, decoder_num_layers=2,
                decoder_d_model=d_model, adaptive_patching_levels=levels,
                dropout=0.2)
  values.update(overrides)
  return config_lib.TTMConfig(**values)


def select_checkpoint(model_path: str, context_length: Optional[int] = None,
                      prediction_length: Optional[int] = None,
                      freq_prefix_tuning: bool = False,
                      freq: Optional[str] = None,
                      prefer_l1_loss: bool = False,
                      prefer_longer_context: bool = True,
                      force_return: Optional[str] = None,
                      use_lite: bool = False,
                      prefer_known_mappings: bool = True) -> Selection:
  """The reference's checkpoint choice for a request (no download).

  Args:
    model_path: a release hub id (`HUB_IDS`: r1, granite r2, research r2,
      r3) or a folder.
    context_length: history available per forecast.
    prediction_length: horizon wanted.
    freq_prefix_tuning: prefer "-ft-" (resolution-prefix) models.
    freq: data frequency ('h', '10min', 'd', ...); daily and weekly data only
      get r2.1 models.
    prefer_l1_loss: prefer "-l1-" (MAE-trained) models.
    prefer_longer_context: prefer the longest context that fits.
    force_return: 'zeropad', 'rolling' or 'random_init_{small,medium,large}'
      fallbacks when nothing fits (for r3: only of the r2/r2.1 choice its
      known mappings start from; r3 itself always returns a model).
    use_lite: r3 only: choose among the "-lite-r3" releases.
    prefer_known_mappings: r3 only: map the r2/r2.1 choice to an r3
      release first (the branch's default), else score the r3 releases.

  Returns:
    A `Selection`.

  Raises:
    NoCheckpointError: when nothing fits and no fallback applies.
  """
  if force_return is not None and force_return not in FORCE_RETURN:
    raise ValueError(f'force_return must be one of {FORCE_RETURN} or None.')
  kind = path_type(model_path)
  if kind == 0:
    return _local_selection(model_path, context_length, prediction_length)
  if context_length is None or prediction_length is None:
    raise ValueError('Provide `context_length` and `prediction_length` when '
                     '`model_path` is a hub model path.')
  if kind == 4:
    preferences = dict(freq_prefix_tuning=freq_prefix_tuning, freq=freq,
                       prefer_l1_loss=prefer_l1_loss,
                       prefer_longer_context=prefer_longer_context,
                       force_return=force_return)
    selection = _select_r3(context_length, prediction_length, use_lite,
                           prefer_known_mappings, preferences)
    if model_path.startswith(R3_PUBLIC_HUB_ID):  # The same revisions.
      selection = dataclasses.replace(selection, hub_id=R3_PUBLIC_HUB_ID)
    return selection
  table = _release_table(kind)
  models = list(table)
  if kind in (1, 2) and frequency.FREQUENCY_TOKENS.get(freq, 0) >= 8:
    models = [k for k in table if 'r2.1' in table[k][1]]  # Daily, weekly.
  models = _by_context(table, models, context_length, force_return)
  if models:
    models = _preferred(table, models, context_length, prefer_l1_loss,
                        freq_prefix_tuning, prefer_longer_context)
    models = _by_horizon(table, models, prediction_length, force_return)
  if (freq_prefix_tuning and freq is not None
      and freq not in frequency.FREQUENCY_TOKENS):
    _LOG.warning('The specified frequency (%s) is not in the set of allowed '
                 'resolutions: %s.', freq, list(frequency.FREQUENCY_TOKENS))
    models = []
  if not models:
    return _random_fallback(context_length, prediction_length, force_return)
  key = models[0]
  _, _, hub_id, revision, context, horizon = table[key]
  return Selection(model_key=key, hub_id=hub_id, revision=revision,
                   prediction_filter_length=(prediction_length
                                             if horizon > prediction_length
                                             else None),
                   context_length=context, prediction_length=horizon)


def _local_selection(model_path: str, context_length: Optional[int],
                     prediction_length: Optional[int]) -> Selection:
  if not os.path.isdir(model_path):
    raise NoCheckpointError(
        f'Model path {model_path} is not a valid local path, loading of '
        'arbitrary remote models is not permitted (the releases: '
        f'{", ".join(HUB_IDS)}).')
  return Selection(model_key=model_path, hub_id=None, revision=None,
                   prediction_filter_length=prediction_length,
                   context_length=context_length or 0,
                   prediction_length=prediction_length or 0)


def _select_r3(context_length: int, prediction_length: int, use_lite: bool,
               prefer_known_mappings: bool, preferences) -> Selection:
  """The branch's r3 choice: the known mapping of the r2/r2.1 choice
  (`preferences` are `select_checkpoint`'s), else `_select_r3_direct`."""
  key = None
  if prefer_known_mappings:
    try:
      base = select_checkpoint(R2_HUB_ID, context_length, prediction_length,
                               **preferences).model_key
    except ValueError as e:  # NoCheckpointError, random-init refusals.
      _LOG.warning('Known-mapping path for r3 failed; falling back to '
                   'direct r3 selection. Reason: %s', e)
    else:
      key = _r3_known_mapping(base, context_length, prediction_length,
                              preferences['freq'], use_lite)
  if key is None:
    key = _select_r3_direct(context_length, prediction_length,
                            preferences['prefer_longer_context'], use_lite)
  _, _, hub_id, revision, context, horizon = {r[0]: r for r in RELEASES}[key]
  # The branch always loads with prediction_filter_length = the request; it
  # only cuts when shorter (a longer request is rolled by the caller).
  return Selection(model_key=key, hub_id=hub_id, revision=revision,
                   prediction_filter_length=(prediction_length
                                             if horizon > prediction_length
                                             else None),
                   context_length=context, prediction_length=horizon,
                   residual_context_length=R3_RESIDUAL_CONTEXT.get(key))


def _r3_known_mapping(base: str, context_length: int, prediction_length: int,
                      freq: Optional[str], use_lite: bool) -> Optional[str]:
  """`_select_ttm_r3_revision_known_mapping`: the r3 release standing in
  for the r2/r2.1 choice `base`, or None."""
  lite = lambda key: key.replace('-r3', '-lite-r3') if use_lite else key
  if context_length > 2500:
    return lite('2048-96-r3' if prediction_length <= 96 else '2048-720-r3')
  longer = '768-48-dec-512-r3' if context_length < 756 else (
      '1024-48-dec-512-r3')
  if (base in ('52-16-ft-r2.1', '52-16-ft-l1-r2.1') or base.startswith('TTM(')
      or (freq is not None and freq.startswith('A'))):
    return lite('156-16-dec-52-r3' if context_length <= 512 else longer)
  if base in ('90-30-ft-r2.1', '90-30-ft-l1-r2.1'):
    return lite('512-30-dec-90-r3' if context_length <= 512 else longer)
  if base in ('512-48-ft-r2.1', '512-48-ft-l1-r2.1'):
    return lite(longer)
  return {'1536-96-r2': lite('2048-96-r3'),
          '1536-720-r2': lite('2048-720-r3')}.get(base)


def _select_r3_direct(context_length: int, prediction_length: int,
                      prefer_longer_context: bool, use_lite: bool) -> str:
  """`_select_ttm_r3_revision_direct`: among the (lite or full) r3
  releases that fit the context and cover the horizon (each filter only if
  something passes), the best by horizon shortfall, exact horizon, horizon
  excess, context excess, context fit, decomposed (for horizons <= 336),
  then context."""
  rows = [r for r in RELEASES if r[1] == 'r3' and (
      '-lite-r3' in r[0]) == use_lite]
  rows = [r for r in rows if r[4] <= context_length] or rows
  rows = [r for r in rows if r[5] >= prediction_length] or rows

  def score(row):
    key, context, horizon = row[0], row[4], row[5]
    if prefer_longer_context:
      fit, tiebreak = max(0, context_length - context), -context
    else:
      fit, tiebreak = abs(context_length - context), context
    decomposed = prediction_length <= 336 and '-dec-' in key
    return (max(0, prediction_length - horizon),
            int(horizon != prediction_length),
            max(0, horizon - prediction_length),
            max(0, context - context_length), fit, int(not decomposed),
            tiebreak, horizon)

  return min(rows, key=score)[0]


def _release_table(kind: int):
  """{key: release row} of a release family (1: r1, 2: r2/r2.1, 3: research
  r2)."""
  if kind == 3:
    return {r[0]: r for r in RELEASES if r[2] == RESEARCH_HUB_ID}
  prefix = 'r1' if kind == 1 else 'r2'
  return {r[0]: r for r in RELEASES
          if r[2] != RESEARCH_HUB_ID and r[1].startswith(prefix)}


def _by_context(table, models, context_length, force_return):
  """Models whose context fits the request (or the zero-pad fallback)."""
  shortest = min(table[k][4] for k in table)
  if context_length < shortest:
    if force_return is None:
      raise NoCheckpointError(
          'Requested context length is less than the shortest context length '
          f'for TTMs: {shortest}. Set `force_return=zeropad` to get a TTM '
          'with longer context.')
    return models if force_return == 'zeropad' else []
  selected, shortest_models, lowest = [], [], float('inf')
  for key in models:
    if table[key][4] <= context_length:
      selected.append(key)
    if table[key][4] <= lowest:
      lowest = table[key][4]
      shortest_models.append(key)
  if selected:
    return selected
  if force_return is None:
    raise NoCheckpointError(
        'Could not find a TTM with `context_length` shorter than the '
        f'requested context length = {context_length}. Set '
        '`force_return=zeropad` to get a TTM with longer context.')
  return shortest_models if force_return == 'zeropad' else []


def _preferred(table, models, context_length, prefer_l1_loss,
               freq_prefix_tuning, prefer_longer_context):
  """The low-context preferences (l1, resolution prefix), then the order:
  context (longest first unless asked otherwise), then horizon."""
  cl = lambda key: table[key][4]
  if prefer_longer_context:
    reference = min(context_length, max(cl(k) for k in models))
  else:
    reference = min(cl(k) for k in models)
  if reference <= LOW_RESOLUTION_MAX_CONTEXT:
    if prefer_l1_loss:
      models = [k for k in models if '-l1-' in k] or models
    if freq_prefix_tuning:
      models = [k for k in models if '-ft-' in k] or models
  sign = -1 if prefer_longer_context else 1
  return sorted(models, key=lambda k: (sign * cl(k), table[k][5]))


def _by_horizon(table, models, prediction_length, force_return):
  """Models forecasting at least the horizon (or the longest, to roll)."""
  selected = [k for k in models if table[k][5] >= prediction_length]
  if selected:
    return selected
  if force_return is None:
    raise NoCheckpointError(
        'Could not find a TTM with `prediction_length` higher than the '
        f'requested prediction length = {prediction_length}. Set '
        '`force_return=rolling` to get a TTM with shorter prediction '
        'length. Rolling must be done outside.')
  if force_return != 'rolling':
    return []
  highest, highest_model = float('-inf'), None
  for key in models:
    if table[key][5] > highest:
      highest, highest_model = table[key][5], key
  return [highest_model]


def _random_fallback(context_length, prediction_length, force_return):
  if force_return not in RANDOM_INIT:
    raise NoCheckpointError(
        f'Could not find a suitable TTM for context_length = {context_length}'
        f' and prediction_length = {prediction_length}; set force_return to '
        'random_init_small/medium/large for a randomly initialised TTM.')
  config = random_ttm_config(context_length, prediction_length, force_return)
  return Selection(model_key=f'TTM({force_return.split("_")[-1]})',
                   hub_id=None, revision=None, prediction_filter_length=None,
                   context_length=config.context_length,
                   prediction_length=prediction_length, random_config=config)


def get_model(model_path: str, context_length: Optional[int] = None,
              prediction_length: Optional[int] = None, *,
              freq_prefix_tuning: bool = False, freq: Optional[str] = None,
              prefer_l1_loss: bool = False, prefer_longer_context: bool = True,
              force_return: Optional[str] = None, seed: int = 0,
              **config_overrides):
  """Selects and loads a checkpoint: (config, model, variables).

  As the reference's `get_model`: the chosen checkpoint is loaded with
  `prediction_filter_length` set to the requested horizon when it is shorter,
  plus `config_overrides`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import modules  # pylint: disable=g-import-not-at-top
  selection = select_checkpoint(
      model_path, context_length, prediction_length,
      freq_prefix_tuning=freq_prefix_tuning, freq=freq,
      prefer_l1_loss=prefer_l1_loss,
      prefer_longer_context=prefer_longer_context, force_return=force_return)
  if selection.random_config is not None:
    config = selection.random_config.replace(**config_overrides)
    model = modules.build_module(config)
    return config, model, checkpoint.init_variables(config,
                                                    jax.random.key(seed))
  source = model_path if selection.hub_id is None else selection.hub_id
  overrides = dict(config_overrides)
  if selection.prediction_filter_length is not None:
    overrides.setdefault('prediction_filter_length',
                         selection.prediction_filter_length)
  return checkpoint.load_pretrained(source, revision=selection.revision,
                                    rng=jax.random.key(seed), **overrides)


def releases_of(hub_id: str):
  """The release rows (`RELEASES`) a hub id serves: r3's public card
  serves r3's."""
  if hub_id == R3_PUBLIC_HUB_ID:
    hub_id = R3_HUB_ID
  return [row for row in RELEASES if row[2] == hub_id]
