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
import signal
import socket
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from tests import entry_points
from tests.experiments.test_bad_inputs import _assert_one_line_error
from tests.experiments.test_bad_inputs import _run
from ttm_jax.data.corpus import writing


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


# -------------------------------------------------------------- timed CSVs
@pytest.fixture(scope='module')
def timed_files(tmp_path_factory):
  root = tmp_path_factory.mktemp('timed_inputs')
  hours = pd.date_range('2020-01-01', periods=500, freq='h')
  frame = pd.DataFrame({'date': hours.astype(str), 'v': np.arange(500.0)})
  frame.to_csv(root / 'hourly.csv', index=False)
  frame.assign(date='2020-01-01 00:00').to_csv(root / 'one_time.csv',
                                               index=False)
  frame.iloc[:40].to_csv(root / 'short.csv', index=False)
  (root / 'header_only.csv').write_text('date,v\n')
  (root / 'empty.csv').write_text('')
  stamps = list(frame['date'])
  few_aware = [t + '+00:00' if k < 10 else t for k, t in enumerate(stamps)]
  frame.assign(date=few_aware).to_csv(root / 'few_aware.csv', index=False)
  few_naive = [t + '+00:00' if k < 450 else t for k, t in enumerate(stamps)]
  frame.assign(date=few_naive).to_csv(root / 'few_naive.csv', index=False)
  frame.assign(date=hours).to_parquet(root / 'data.parquet')
  whole = (root / 'data.parquet').read_bytes()
  (root / 'cut.parquet').write_bytes(whole[:len(whole) // 2])
  (root / 'stream.arrow').write_bytes(b'\xff\xff\xff\xff' + whole[4:200])
  text = (root / 'hourly.csv').read_bytes()
  (root / 'bytes.csv').write_bytes(text[:3000] + b'\xff\xfe' + text[3000:])
  return root


def test_timed_csvs_that_would_write_nothing_or_averages(timed_files,
                                                         tmp_path):
  r = timed_files
  _refused([
      ([f'--source=csv:{r}/hourly.csv,timestamp=date,freq=D'],
       rf'hourly.csv: freq=D is coarser than the data: 478 of its 500 '
       r"distinct times share a step.*commonest step is h: give freq=h"),
      ([f'--source=csv:{r}/one_time.csv,timestamp=date'],
       r'one_time.csv: all 500 rows share one time \(first '
       r'2020-01-01T00:00:00\): the times do not advance'),
      ([f'--source=csv:{r}/one_time.csv,timestamp=date,freq=h'],
       r'one_time.csv: all 500 rows share one time'),
      ([f'--source=csv:{r}/header_only.csv,timestamp=date'],
       r"header_only.csv has a header \(\['date', 'v'\]\) but no rows"),
      ([f'--source=csv:{r}/header_only.csv'],
       r'header_only.csv has a header .* but no rows'),
      ([f'--source=csv:{r}/empty.csv,timestamp=date'],
       r'empty.csv is empty: expected a header line'),
      ([f'--source=csv:{r}/few_aware.csv,timestamp=date'],
       r"few_aware.csv: column 'date' mixes times with a UTC offset \(10 "
       r'rows\) and times without one \(490 rows\); the first with a UTC '
       r"offset is row 1 \('2020-01-01 00:00:00\+00:00'\)"),
      ([f'--source=csv:{r}/few_naive.csv,timestamp=date'],
       r'the first without an offset is row 451 '
       r"\('2020-01-19 18:00:00'\)"),
      ([f'--source=csv:{r}/short.csv,timestamp=date'],
       r'No series to write: every series of the sources was dropped \(.*'
       r'short.csv: 1 pieces under 64 steps dropped'),
      ([f'--source=csv:{r}/cut.parquet,timestamp=date'],
       r'cut.parquet is a Parquet file, not a CSV file'),
      ([f'--source=csv:{r}/data.parquet'],
       r'data.parquet is a Parquet file, not a CSV file: .*'
       r'pandas.read_parquet\(path\).to_csv'),
      ([f'--source=csv:{r}/stream.arrow'],
       r'stream.arrow is an Arrow stream, not a CSV file'),
      ([f'--source=csv:{r}/bytes.csv,timestamp=date'],
       r"bytes.csv is not UTF-8 text \(invalid start byte b'\\xff'\)"),
  ], tmp_path)


# ---------------------------------------------------------- staging folders
def _owned(folder, **owner):
  folder.mkdir()
  (folder / writing.OWNER).write_text(json.dumps(owner))
  (folder / 'part-00000.array_record').write_bytes(b'x' * 10)
  return folder


def test_a_killed_runs_staging_folder_is_removed_by_the_next(tmp_path):
  """A SIGKILLed prepare_corpus leaves `.<out>.partial-<pid>`; the next
  run in that folder removes it, but not a live run's, another host's, or
  a folder that is not a staging folder of prepare_corpus."""
  killed = _run(_corpus(tmp_path / 'big', '--source',
                        'synthetic-kernels:num_series=100000,length=4000'),
                wait=False)
  staged = tmp_path / f'.big.partial-{killed.pid}'
  deadline = time.time() + 120
  while not (staged / writing.OWNER).exists() and time.time() < deadline:
    time.sleep(0.2)
  killed.send_signal(signal.SIGKILL)
  killed.communicate()
  assert (staged / writing.OWNER).exists()
  live = subprocess.Popen(['sleep', '120'])
  try:
    host = socket.gethostname()
    kept = [
        _owned(tmp_path / f'.live.partial-{live.pid}', host=host,
               pid=live.pid, started=''),
        _owned(tmp_path / '.remote.partial-1', host=host + '-other',
               pid=killed.pid, started=''),
        tmp_path / '.mine.partial-7',  # No owner file: not ours.
    ]
    kept[-1].mkdir()
    reused = _owned(tmp_path / '.reused.partial-1', host=host,
                    pid=live.pid, started='1')  # The pid, another process.
    rc, out, err = entry_points.run(_corpus(
        tmp_path / 'next', '--source', 'synthetic:num_series=2,length=300'))
    assert rc == 0, err[-2000:]
    assert f'Removed {staged}, the staging folder of a prepare_corpus run ' \
           f'that was killed (pid {killed.pid} no longer runs)' in out
    assert not staged.exists() and not reused.exists()
    assert all(folder.exists() for folder in kept)
    assert (tmp_path / 'next' / 'corpus.json').exists()
    assert not (tmp_path / 'next' / writing.OWNER).exists()
  finally:
    live.kill()
    live.wait()


# ------------------------------------------------------------- generators
def test_generators_asked_for_more_than_memory_holds_are_refused_first(
    tmp_path):
  _refused([
      (['--source=synthetic-kernels:num_series=1,length=100000000000'],
       r"Source 'synthetic-kernels:num_series=1,length=100000000000': "
       r'length=100,000,000,000 is over the limit of 10,000,000 steps a '
       r'series .*5,960 GiB here'),
      (['--source=synthetic:num_series=2,length=20000000'],
       r'length=20,000,000 is over the limit of 10,000,000'),
      (['--source=synthetic-kernels:num_series=1,length=100,'
        'max_kernels=1000000000'],
       r'max_kernels=1,000,000,000 is over the limit of 64'),
      # Refused with the other sources' checks, before any is read.
      (['--source=synthetic:num_series=2,length=300',
        '--source=synthetic-kernels:num_series=1,length=99999999999'],
       r'length=99,999,999,999 is over the limit'),
  ], tmp_path)
