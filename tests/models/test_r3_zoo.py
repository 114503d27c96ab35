"""r3 releases and their selection: `ttm_jax.models.zoo` against the r3
branch of granite-tsfm (`ttm-r3-release-mq2-merge`), read from the
committed table tests/fixtures/r3_zoo.json that
scripts/make_r3_zoo_table.py writes by running the branch's own
`get_model` and reading its ttm.yaml and GIFT-Eval revision list."""

import json
import os

import pytest

from configs import pretrain
from ttm_jax import errors
from ttm_jax.models import config as config_lib
from ttm_jax.models import presets
from ttm_jax.models import zoo
from tests import conftest

FIXTURE = os.path.join(conftest.FIXTURES, 'r3_zoo.json')
R3 = zoo.R3_HUB_ID


@pytest.fixture(scope='module')
def table():
  with open(FIXTURE) as f:
    return json.load(f)


def _row(entry):
  return (entry['key'], entry['release'], entry['model_card'],
          entry['revision'], entry['context_length'],
          entry['prediction_length'])


def test_releases_are_the_branch_yaml_in_its_order(table):
  ours = [r for r in zoo.RELEASES if r[1] == 'r3']
  theirs = [e for e in table['releases'] if e['release'] == 'r3']
  # The order breaks ties in the branch's scoring, so it is the yaml's.
  assert ours == [_row(e) for e in theirs]
  assert len(ours) == 42 and {r[4] for r in ours} >= {52, 3072}
  assert zoo.R3_RESIDUAL_CONTEXT == {
      e['key']: e['residual_context_length'] for e in theirs
      if 'residual_context_length' in e}
  # r1, r2, r2.1 and research r2 are unchanged on the branch.
  assert {r for r in zoo.RELEASES if r[1] != 'r3'} == {
      _row(e) for e in table['releases'] if e['release'] != 'r3'}


def test_gift_leaderboard_revisions_are_releases(table):
  keys = {r[0] for r in zoo.RELEASES}
  for chosen, extra in table['gift_revision_map'].items():
    assert chosen in keys and set(extra) <= keys, chosen


def _ours(values):
  kwargs = dict(values)
  try:
    return zoo.select_checkpoint(R3, **kwargs).model_key
  except ValueError:  # NoCheckpointError, missing lengths.
    return 'error'


def test_selection_matches_the_branch_get_model(table):
  names = table['arguments']
  mismatches = []
  for case in table['cases']:
    values = [(n, bool(v) if isinstance(v, int) and n not in (
        'context_length', 'prediction_length') else v)
              for n, v in zip(names, case[:-1])]
    ours = _ours(values)
    if ours != case[-1]:
      mismatches.append((dict(values), ours, case[-1]))
  assert len(table['cases']) > 2000 and not mismatches, mismatches[:5]


# The branch's own tests (tests/toolkit/test_get_model.py there):
# (context, horizon, prefer_known_mappings, use_lite, expected).
@pytest.mark.parametrize('cl, fl, known, lite, key', [
    (52, 16, True, False, '156-16-dec-52-r3'),
    (90, 30, True, False, '512-30-dec-90-r3'),
    (512, 48, True, False, '768-48-dec-512-r3'),
    (1536, 720, True, True, '2048-720-lite-r3'),
    (180, 60, False, False, '180-60-dec-180-r3'),
    (512, 336, False, True, '512-336-dec-512-lite-r3'),
    (2560, 96, False, False, '2560-96-r3'),
    (3072, 720, False, False, '3072-720-r3'),
    (1024, 96, True, False, '1024-96-r3'),  # No mapping: scored.
])
def test_branch_test_cases(cl, fl, known, lite, key):
  selection = zoo.select_checkpoint(R3, cl, fl, prefer_known_mappings=known,
                                    use_lite=lite)
  assert selection.model_key == key == selection.revision
  assert selection.hub_id == R3


def test_selection_fields():
  # By hand: 60 steps get r2.1's 52-16 model, which the known mappings
  # turn into the 156-step decomposed r3 model (the caller pads the
  # context); a 10-step horizon is its first 10 steps; its residual branch
  # reads the last 52 steps.
  selection = zoo.select_checkpoint(R3, 60, 10)
  assert (selection.model_key, selection.context_length,
          selection.prediction_length, selection.prediction_filter_length,
          selection.residual_context_length) == (
              '156-16-dec-52-r3', 156, 16, 10, 52)
  # Beyond 720 steps (rolled by the caller): r2 has no model, so the r3
  # releases are scored: 720 steps, then the context closest below 4000.
  selection = zoo.select_checkpoint(R3, 4000, 1000)
  assert (selection.model_key, selection.prediction_filter_length,
          selection.residual_context_length) == ('3072-720-r3', None, None)
  # With force_return='rolling' r2 has one, and contexts above 2500 map
  # to the 2048-step release.
  assert zoo.select_checkpoint(R3, 4000, 1000, force_return='rolling'
                               ).model_key == '2048-720-r3'


def test_r3_errors_name_the_problem():
  with pytest.raises(ValueError, match='Provide `context_length`'):
    zoo.select_checkpoint(R3, None, 96)
  # A card that is not a release names the releases, r3's among them.
  with pytest.raises(zoo.NoCheckpointError, match=R3):
    zoo.select_checkpoint('ibm-granite/granite-timeseries-ttm-r5', 512, 96)


# ------------------------------------------------------------- presets
def test_every_r3_release_shape_is_a_preset():
  for key, _, _, _, context, horizon in zoo.RELEASES:
    if key.endswith('-r3'):
      shape = presets.r3_shape(key)
      assert (shape['context_length'], shape['prediction_length']) == (
          context, horizon)
      assert shape['decompose'] == ('-dec-' in key)
      assert shape.get('residual_context_length') == (
          zoo.R3_RESIDUAL_CONTEXT.get(key))
  with pytest.raises(errors.ConfigError, match='512-96-dec-512-r3'):
    presets.r3_shape('512-96-r3')


def test_r3_shape_and_additions_reach_the_pretraining_config():
  config = pretrain.get_config('synthetic=true,arch=tiny,'
                               'shape=156-16-dec-52-r3,r3=register+fft')
  assert (config.context_length, config.prediction_length) == (156, 16)
  arch = dict(config.model.arch)
  assert arch['decompose'] and arch['residual_context_length'] == 52
  assert arch['register_tokens'] == presets.R3_ADDITIONS['register'][
      'register_tokens'] and arch['fft_length'] > 0
  ttm_config = config_lib.TTMConfig(**presets.arch(
      'tiny', context_length=156, prediction_length=16, **arch))
  assert ttm_config.residual_config().context_length == 52
  with pytest.raises(errors.ConfigError, match="r3 addition 'fourier'"):
    pretrain.get_config('synthetic=true,r3=decompose+fourier')
  with pytest.raises(errors.ConfigError, match='context=512.*156'):
    pretrain.get_config('synthetic=true,shape=156-16-dec-52-r3,context=512')


def test_r3s_public_card_serves_the_same_releases():
  """ibm-granite/granite-timeseries-ttm-r3 chooses what ibm-research/ttm-r3
  chooses, under its own id, with the same revisions; 'auto:' takes it."""
  from ttm_jax.inference import choice  # pylint: disable=g-import-not-at-top
  for context, horizon, freq in ((52, 16, 'h'), (600, 48, '15min'),
                                 (5000, 96, 'h'), (3000, 720, 'D')):
    research = zoo.select_checkpoint(zoo.R3_HUB_ID, context, horizon,
                                     freq=freq)
    public = zoo.select_checkpoint(zoo.R3_PUBLIC_HUB_ID, context, horizon,
                                   freq=freq)
    assert public.hub_id == zoo.R3_PUBLIC_HUB_ID
    assert (public.model_key, public.revision) == (research.model_key,
                                                   research.revision)
    assert choice.choose_checkpoint(
        context, horizon, freq, allow_download=True,
        hub_id=zoo.R3_PUBLIC_HUB_ID) == (zoo.R3_PUBLIC_HUB_ID,
                                         research.revision)
  assert zoo.releases_of(zoo.R3_PUBLIC_HUB_ID) == zoo.releases_of(
      zoo.R3_HUB_ID)
