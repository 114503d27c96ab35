"""Bad input at `experiments.prepare_corpus`, round 4: sources that
overlap, timed CSVs that would write nothing or the wrong thing, files that
are not CSV text, staging folders left by a killed run, generators asked
for more than memory holds.

Through the real entry point (processes forked from one that has the
libraries imported: tests/entry_points.py): the exit status, exactly one
`error:` line naming the culprit, no traceback, and nothing written (no
corpus, no staging folder).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

from tests import entry_points
from tests.experiments.test_bad_inputs import _assert_one_line_error


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp('corpus_inputs')
  rng = np.random.default_rng(0)
  for name in ('a', 'b'):
    pd.DataFrame({f's{k}': rng.normal(size=300) for k in range(2)}).to_csv(
        root / f'{name}.csv', index=False)
  (root / 'copy_of_a.csv').write_bytes((root / 'a.csv').read_bytes())
  os.symlink(root / 'a.csv', root / 'link_a.csv')
  return root


def _corpus(out, *args):
  return ['experiments.prepare_corpus', '--out', str(out), '--drs', '',
          *args]


def _refused(cases, tmp_path):
  """Each case (args, words) exits 2 with one line matching `words`, and
  leaves neither the corpus nor a staging folder."""
  outcomes = entry_points.run_batch(
      [_corpus(tmp_path / f'c{k}', *args) for k, (args, _) in
       enumerate(cases)])
  for k, ((_, words), (rc, out, err)) in enumerate(zip(cases, outcomes)):
    _assert_one_line_error(rc, out, err, 2, words)
    assert not (tmp_path / f'c{k}').exists()
  assert not [p for p in os.listdir(tmp_path) if '.partial' in p]


# --------------------------------------------------------------- overlaps
def test_overlapping_sources_are_refused_naming_both(files, tmp_path):
  a = f'csv:{files}/a.csv'
  _refused([
      ([f'--source={a}', f'--source={a}'],
       rf"Sources '{a}' and '{a}' both read {files}/a.csv, columns s0, s1: "
       'its series would be counted twice.*--overlaps=once'),
      ([f'--source={a}', f'--source=csv:{files}/*.csv'],
       rf"Sources '{a}' and 'csv:{files}/\*.csv' both read {files}/a.csv"),
      ([f'--source={a}', f'--source=csv:{files}/link_a.csv'],
       rf'both read {files}/link_a.csv, the same file as {files}/a.csv'),
      ([f'--source={a}', f'--source=csv:{files}/copy_of_a.csv'],
       rf'both read {files}/copy_of_a.csv, the same content as '
       rf'{files}/a.csv \(sha256 [0-9a-f]{{12}}'),
      (['--source=csv:{}/[al]*.csv'.format(files)],
       rf"Source 'csv:{files}/\[al\]\*.csv' reads {files}/link_a.csv, the "
       rf'same file as {files}/a.csv'),
      (['--source=synthetic-kernels:num_series=3,length=100',
        '--source=synthetic-kernels:num_series=2,length=100,name=again'],
       r'both read the same generator with the same seed: its first 2 '
       'series would be counted twice'),
      ([f'--source={a},value=s0', f'--source={a}', '--overlaps=once'],
       r'columns s0 \(and other columns too\): name the columns that are '
       'new with value='),
      ([f'--source={a}', '--overlaps=twice'],
       r"--overlaps=twice: value should be one of <error\|once>"),
  ], tmp_path)


def test_overlapping_sources_are_counted_once_when_asked(files, tmp_path):
  a = f'csv:{files}/a.csv'
  runs = {
      'once': [f'--source={a}', f'--source=csv:{files}/*.csv',
               '--overlaps=once'],
      'alone': [f'--source={a}', f'--source=csv:{files}/b.csv'],
      'columns': [f'--source={a},value=s0', f'--source={a},value=s1'],
  }
  outcomes = entry_points.run_batch(
      [_corpus(tmp_path / name, *args) for name, args in runs.items()])
  for (name, _), (rc, out, err) in zip(runs.items(), outcomes):
    assert rc == 0, (name, err[-2000:])
  manifest = {name: json.loads((tmp_path / name / 'corpus.json').read_text())
              for name in runs}
  # a.csv, its copy and its link once, b.csv once: as a.csv and b.csv.
  assert manifest['once']['num_series'] == manifest['alone'][
      'num_series'] == 4
  assert manifest['once']['num_values'] == manifest['alone']['num_values']
  assert sorted(d['name'].split('/')[1] for d in manifest['once'][
      'datasets']) == ['a', 'b']
  report = json.loads((tmp_path / 'once' / 'report.json').read_text())
  skipped = {os.path.basename(r['file']): r['notes'][-1] for r in report
             if r.get('skipped')}
  assert sorted(skipped) == ['a.csv', 'copy_of_a.csv', 'link_a.csv']
  assert 'the same content as' in skipped['copy_of_a.csv']
  assert 'skipped' in (tmp_path / 'once' / 'report.md').read_text()
  # Two columns of one file, one source each: not an overlap.
  assert manifest['columns']['num_series'] == 2
