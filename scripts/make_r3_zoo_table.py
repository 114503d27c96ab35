"""Writes tests/fixtures/r3_zoo.json from a checkout of IBM's r3 branch.

The r3 releases and the rule that picks one live on a branch of granite-tsfm
(`ttm-r3-release-mq2-merge`, PR #500), not in the installed granite-tsfm, so
`tests/models/test_r3_zoo.py` checks `ttm_jax.models.zoo` against this committed
table of the branch's own answers:

  git clone -b ttm-r3-release-mq2-merge \\
      https://github.com/ibm-granite/granite-tsfm /tmp/granite-tsfm-r3
  .venv/bin/python scripts/make_r3_zoo_table.py /tmp/granite-tsfm-r3

It writes
  * `releases`: every entry of the branch's
    `tsfm_public/resources/model_paths_config/ttm.yaml` (r1 to r3);
  * `gift_revision_map`: the extra revisions its GIFT-Eval leaderboard code
    ensembles with each chosen one (`revision_map` of
    `notebooks/hfdemo/tinytimemixer/full_benchmarking/
    gift_leaderboard_ttm_r3_nc/src/ttm_gluonts_predictor.py`);
  * `cases`: `get_model("ibm-research/ttm-r3", ..., return_model_key=True)`
    of the branch's `tsfm_public/toolkit/get_model.py` on a grid of
    requests (every context x horizon at the defaults, then a random sample
    over every argument), each with the key it returns or "error".

The branch's get_model.py is run as it is, except for its imports of the
branch's model classes (which `return_model_key=True` never loads; the
random-init fallback gets a stand-in that records its config) and of its
frequency table (read from the branch's time_series_preprocessor.py).
"""

import ast
import itertools
import json
import logging
import os
import random
import subprocess
import sys
import types

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'tests', 'fixtures', 'r3_zoo.json')
YAML = 'tsfm_public/resources/model_paths_config/ttm.yaml'
GET_MODEL = 'tsfm_public/toolkit/get_model.py'
PREPROCESSOR = 'tsfm_public/toolkit/time_series_preprocessor.py'
GIFT = ('notebooks/hfdemo/tinytimemixer/full_benchmarking/'
        'gift_leaderboard_ttm_r3_nc/src/ttm_gluonts_predictor.py')
R3 = 'ibm-research/ttm-r3'
# Argument order of a case: the request, then the branch's answer.
ARGUMENTS = ('context_length', 'prediction_length', 'freq',
             'freq_prefix_tuning', 'prefer_l1_loss', 'prefer_longer_context',
             'force_return', 'use_lite', 'prefer_known_mappings')
CONTEXTS = (None, 3, 10, 36, 52, 60, 90, 100, 155, 156, 180, 200, 300, 360,
            400, 511, 512, 600, 755, 756, 768, 800, 1000, 1023, 1024, 1200,
            1536, 2000, 2048, 2500, 2501, 2560, 3000, 3072, 4000)
HORIZONS = (None, 1, 10, 16, 20, 30, 45, 48, 50, 60, 96, 100, 192, 336, 337,
            400, 720, 721, 1000)
FREQS = (None, 'min', '10min', 'h', 'H', 'd', 'D', 'W', 'oov', 'A', 'AS',
         'M', 'random')
FORCE = (None, 'zeropad', 'rolling', 'random_init_small',
         'random_init_medium', 'random_init_large')


def _literal(path, name):
  """The value of the module-level assignment `name = <literal>`."""
  for node in ast.parse(open(path).read()).body:
    if isinstance(node, ast.Assign) and any(
        getattr(t, 'id', None) == name for t in node.targets):
      return ast.literal_eval(node.value)
  raise KeyError(f'{name} not found in {path}')


def branch_get_model(checkout):
  """The branch's `get_model`, with stand-ins for the model imports."""
  path = os.path.join(checkout, GET_MODEL)
  tree = ast.parse(open(path).read())
  tree.body = [n for n in tree.body if not (
      isinstance(n, ast.ImportFrom) and n.module.startswith('tsfm_public'))]
  stand_in = lambda **values: types.SimpleNamespace(**values)
  namespace = {
      '__name__': 'branch_get_model', '__file__': path,
      'TinyTimeMixerConfig': stand_in,
      'TinyTimeMixerForPrediction': lambda config: stand_in(config=config),
      'TinyTimeMixerForDecomposedPrediction': None,
      'DEFAULT_FREQUENCY_MAPPING': _literal(
          os.path.join(checkout, PREPROCESSOR), 'DEFAULT_FREQUENCY_MAPPING'),
  }
  exec(compile(tree, path, 'exec'), namespace)  # pylint: disable=exec-used
  folder = os.path.dirname(os.path.join(checkout, YAML))
  namespace['resources'] = types.SimpleNamespace(files=lambda _: folder)
  return namespace['get_model']


def answer(get_model, values):
  kwargs = dict(zip(ARGUMENTS, values))
  try:
    return get_model(R3, return_model_key=True, **kwargs)
  except Exception:  # pylint: disable=broad-except
    return 'error'


def requests(seed=0, count=700):
  """Every context x horizon at the defaults, with and without the lite
  models, then `count` random requests over every argument."""
  grid = [(cl, fl, None, False, False, True, None, lite, True)
          for cl, fl, lite in itertools.product(CONTEXTS, HORIZONS,
                                                (False, True))]
  rng = random.Random(seed)
  for _ in range(count):
    grid.append((rng.choice(CONTEXTS[1:]), rng.choice(HORIZONS[1:]),
                 rng.choice(FREQS), rng.random() < 0.5, rng.random() < 0.5,
                 rng.random() < 0.5, rng.choice(FORCE), rng.random() < 0.3,
                 rng.random() < 0.8))
  return grid


def main(checkout):
  logging.disable(logging.CRITICAL)
  get_model = branch_get_model(checkout)
  with open(os.path.join(checkout, YAML)) as f:
    table = yaml.safe_load(f)
  releases = [dict(key=key, section=section, **entry)
              for section, entries in table.items()
              for key, entry in entries.items()]
  commit = subprocess.run(['git', '-C', checkout, 'rev-parse', 'HEAD'],
                          capture_output=True, text=True).stdout.strip()
  # Booleans as 0/1: the table stays small.
  cases = [[int(v) if isinstance(v, bool) else v for v in values]
           + [answer(get_model, values)] for values in requests()]
  out = dict(
      source=dict(repository='https://github.com/ibm-granite/granite-tsfm',
                  branch='ttm-r3-release-mq2-merge', commit=commit,
                  files=[YAML, GET_MODEL, PREPROCESSOR, GIFT],
                  script='scripts/make_r3_zoo_table.py'),
      releases=releases,
      gift_revision_map=_literal(os.path.join(checkout, GIFT),
                                 'revision_map'),
      arguments=list(ARGUMENTS), cases=cases)
  with open(OUT, 'w') as f:
    f.write('{\n')
    for key, value in out.items():
      rows = value if key in ('releases', 'cases') else None
      if rows is None:
        f.write(f' {json.dumps(key)}: {json.dumps(value)},\n')
      else:  # One row a line.
        f.write(f' {json.dumps(key)}: [\n  ' + ',\n  '.join(
            json.dumps(r, separators=(',', ':')) for r in rows) + '\n ]')
        f.write(',\n' if key != 'cases' else '\n}\n')
  errors = sum(c[-1] == 'error' for c in cases)
  print(f'wrote {OUT}: {len(releases)} releases, {len(cases)} cases '
        f'({errors} errors) from {checkout} at {commit[:12]}')


if __name__ == '__main__':
  if len(sys.argv) != 2:
    sys.exit(__doc__)
  main(sys.argv[1])
