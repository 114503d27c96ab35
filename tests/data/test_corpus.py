"""The pretraining corpus on disk: conversion from every source kind,
windows read back exactly, arithmetic indexing, host shards, exact resume
of the streamed mixture, and clear errors for damaged corpora."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from experiments import prepare_corpus
from ttm_jax import errors
from ttm_jax.data import builders
from ttm_jax.data import kernel_synth
from ttm_jax.data import pipeline
from ttm_jax.data import synthetic
from ttm_jax.data.corpus import format
from ttm_jax.data.corpus import reading
from ttm_jax.data.corpus import writing
from tests import conftest

ROOT = conftest.ROOT
CL, FL = 48, 16


def _tsf(path, series):
  lines = ['@relation test', '@attribute series_name string',
           '@attribute start_timestamp date', '@frequency hourly',
           '@missing true', '@equallength false', '@data']
  for i, values in enumerate(series):
    text = ','.join('?' if np.isnan(v) else repr(float(v)) for v in values)
    lines.append(f'T{i}:2020-01-01 00-00-00:{text}')
  path.write_text('\n'.join(lines) + '\n')


@pytest.fixture(scope='module')
def made(tmp_path_factory):
  """A corpus of a .tsf file, a wide and a long CSV, and synthetic series
  (both generators), with small chunks so that long series span several
  records."""
  root = tmp_path_factory.mktemp('corpus')
  rng = np.random.default_rng(0)
  series = [rng.normal(size=n).cumsum() + 50 for n in (300, 700, 40, 1500)]
  series[1][100:103] = np.nan
  _tsf(root / 'a.tsf', series)
  wide = pd.DataFrame({f's{k}': rng.normal(size=400) for k in range(3)})
  wide.to_csv(root / 'wide.csv', index=False)
  long = pd.DataFrame({'id': np.repeat(['x', 'y'], 250),
                       'v': rng.normal(size=500)})
  long.to_csv(root / 'long.csv', index=False)
  preparer = writing.Preparer(str(root / 'c'), drs={'h': [2]},
                              chunk_length=256, max_window=100,
                              shard_bytes=4096)
  for spec in (f'monash:{root}/a.tsf', f'csv:{root}/wide.csv,freq=h',
               f'csv:{root}/long.csv,id=id,value=v,freq=D',
               'synthetic:num_series=4,length=500,seed=1',
               'synthetic-kernels:num_series=2,length=300,freq=h,seed=3'):
    preparer.add_spec(spec)
  manifest = preparer.close()
  return dict(root=root, series=series, wide=wide, long=long,
              manifest=manifest, corpus=reading.Corpus(str(root / 'c')))


def _expected(values, start, mean, std):
  window = (np.asarray(values[start:start + CL + FL], np.float64) - mean) / std
  return np.where(np.isnan(window), 0.0, window).astype(np.float32)


def test_manifest_counts_and_drs_copies(made):
  by_name = {s['name']: s for s in made['manifest']['sources']}
  assert by_name['a']['num_series'] == 4 and by_name['a']['freq'] == 'h'
  assert by_name['a']['num_values'] == sum(map(len, made['series']))
  assert by_name['a@2h']['drs_of'] == 'a'
  assert by_name['a@2h']['num_values'] == sum(len(s) // 2
                                               for s in made['series'])
  assert by_name['wide']['num_series'] == 3
  assert by_name['long']['num_series'] == 2
  assert sum(len(s['shards']) for s in made['manifest']['sources']) > 8
  # The long series are chunked: more records than series.
  assert by_name['a']['num_records'] > by_name['a']['num_series']


def test_manifest_and_report_list_every_dataset(made):
  root, manifest = made['root'], made['manifest']
  entries = {d['name']: d for d in manifest['datasets']}
  folder = root.name
  assert sorted(entries) == sorted([
      f'{folder}/a', f'{folder}/wide', f'{folder}/long',
      'synthetic/embedded_seed1', 'synthetic/kernelsynth'])
  tsf = entries[f'{folder}/a']
  assert tsf['file'] == f'{root}/a.tsf' and tsf['source'] == 'a'
  assert tsf['sha256'] == hashlib.sha256(
      (root / 'a.tsf').read_bytes()).hexdigest()
  assert (tsf['num_series'], tsf['num_values'], tsf['freq']) == (
      4, sum(map(len, made['series'])), 'h')
  kernels = entries['synthetic/kernelsynth']
  assert (kernels['num_series'], kernels['num_values'], kernels['spec']) == (
      2, 600, 'synthetic-kernels:num_series=2,length=300,freq=h,seed=3')
  report = json.loads((root / 'c' / 'report.json').read_text())
  assert [r['name'] for r in report] == [d['name']
                                         for d in manifest['datasets']]
  assert report[0]['series_read'] == 4
  table = (root / 'c' / 'report.md').read_text()
  assert all(name in table for name in entries) and '**total**' in table


def test_every_train_window_is_the_series_slice_scaled(made):
  found = made['corpus']
  windows = found.windows('train', CL, FL, ['a'])
  rule = found.rule
  expected = []
  for values in made['series']:
    train_end, _ = rule.borders(len(values))
    train = values[:train_end]
    mean, std = np.nanmean(train), np.nanstd(train)
    for start in range(0, train_end - CL - FL + 1):
      expected.append(_expected(values, start, mean, std))
  assert len(windows) == len(expected)
  for i in range(len(windows)):  # Every window once, in series order.
    item = windows[i]
    got = np.concatenate([item['past_values'], item['future_values']])[:, 0]
    np.testing.assert_allclose(got, expected[i], atol=1e-5, err_msg=str(i))
  # NaN is missing: value 0, mask 0.
  masks = [np.concatenate([w['past_observed_mask'], w['future_observed_mask']])
           for w in (windows[i] for i in range(len(windows)))]
  assert sum((~m).sum() for m in masks) > 0


def test_short_history_windows_pad_as_the_forecasting_api(made):
  """A short-history window is the plain window with its context's first
  steps a raw 0 (in the record's scaling: -mean / std), masked; the kept
  steps and the future untouched; the draw fixed by (seed, i)."""
  found = made['corpus']
  plain = found.windows('train', CL, FL, ['a'])
  cut = found.windows('train', CL, FL, ['a'], short_history=0.5,
                      short_history_min=3, seed=7)
  again = found.windows('train', CL, FL, ['a'], short_history=0.5,
                        short_history_min=3, seed=7)
  index = found.index
  raw_zero = -index['mean'] / index['std']  # Per record.
  lengths, n = [], 0
  for i in range(len(plain)):
    a, b = plain[i], cut[i]
    if not a['past_observed_mask'].all():  # NaNs of its own (series 1).
      continue
    n += 1
    np.testing.assert_array_equal(b['future_values'], a['future_values'])
    np.testing.assert_array_equal(b['past_values'], again[i]['past_values'])
    kept = b['past_observed_mask'][:, 0]
    pad = int(np.argmax(kept))
    if pad == 0:
      np.testing.assert_array_equal(b['past_values'], a['past_values'])
      continue
    lengths.append(CL - pad)
    assert not kept[:pad].any()
    np.testing.assert_array_equal(b['past_values'][pad:],
                                  a['past_values'][pad:])
    k = int(np.searchsorted(plain.cumulative, i, side='right'))
    np.testing.assert_allclose(b['past_values'][:pad, 0],
                               raw_zero[int(plain.rows[k])], rtol=1e-6)
  # About half the windows cut, to lengths in [3, CL] (a window of length
  # CL is cut to nothing: it counts as plain).
  assert 0.35 * n < len(lengths) < 0.65 * n, (len(lengths), n)
  assert min(lengths) >= 3 and max(lengths) < CL
  # Undone in raw units, the padding is exactly 0, as a NaN-padded series.
  row = int(plain.rows[0])
  i = next(i for i in range(len(plain))
           if not cut[i]['past_observed_mask'][0, 0]
           and i < plain.cumulative[0])
  raw = cut[i]['past_values'][0, 0] * index['std'][row] + index['mean'][row]
  assert abs(raw) < 1e-3 * index['std'][row]


def test_short_history_options_are_checked(made):
  found = made['corpus']
  with pytest.raises(errors.ConfigError, match='short_history=1.5'):
    found.windows('train', CL, FL, short_history=1.5)
  with pytest.raises(errors.ConfigError, match='short_history_min=0'):
    found.windows('train', CL, FL, short_history=0.5, short_history_min=0)
  with pytest.raises(errors.ConfigError, match=f'short_history_min={CL + 1}'):
    found.windows('train', CL, FL, short_history=0.5,
                  short_history_min=CL + 1)


def test_valid_and_test_windows_start_a_context_early(made):
  found = made['corpus']
  values = made['series'][3]  # 1500 rows, several chunks.
  train_end, valid_end = found.rule.borders(len(values))
  for split, first, last in (('valid', train_end - CL, valid_end),
                             ('test', valid_end - CL, len(values))):
    windows = found.windows(split, CL, FL, ['a'])
    count = last - first - CL - FL + 1
    tail = [windows[len(windows) - count + k] for k in (0, count - 1)]
    mean = np.nanmean(values[:train_end])
    std = np.nanstd(values[:train_end])
    for item, start in zip(tail, (first, last - CL - FL)):
      got = np.concatenate([item['past_values'], item['future_values']])[:, 0]
      np.testing.assert_allclose(got, _expected(values, start, mean, std),
                                 atol=1e-5)


def _block_means(values, factor):
  """DRS by hand: the mean of the observed values of each block of
  `factor` (NaN for a block with none), a trailing partial block
  dropped."""
  out = []
  for first in range(0, len(values) // factor * factor, factor):
    block = values[first:first + factor]
    observed = block[~np.isnan(block)]
    out.append(observed.mean() if len(observed) else np.nan)
  return np.array(out)


def _source_series(made):
  """Per corpus source, its series as the inputs hold them."""
  wide = [made['wide'][c].to_numpy() for c in made['wide'].columns]
  long = made['long']
  out = {'wide': wide,
         'long': [long[long.id == k]['v'].to_numpy() for k in ('x', 'y')],
         'wide@2h': [_block_means(v, 2) for v in wide],
         'a@2h': [_block_means(v, 2) for v in made['series']]}
  out['kernelsynth_h'] = [kernel_synth.make_series(3, i, 300, 'h')[0]
                          for i in range(2)]
  rng = np.random.default_rng(1)  # synthetic:num_series=4,length=500,seed=1
  for i, freq in enumerate(list(synthetic.RESOLUTIONS)[:4]):
    values = synthetic.make_series(rng, 500, freq,
                                   f'synthetic_{i:06d}_{freq}').values
    out[f'synthetic_{freq}'] = [values]
    if freq == 'h':
      out['synthetic_h@2h'] = [_block_means(values, 2)]
  return out


@pytest.mark.parametrize('name', ['wide', 'long', 'synthetic_15min',
                                  'kernelsynth_h',
                                  'synthetic_h', 'synthetic_h@2h', 'a@2h',
                                  'wide@2h'])
def test_csv_synthetic_and_drs_windows_are_the_inputs_scaled(made, name):
  """Every window of every split of the CSV (wide and long), synthetic
  and DRS (block means) sources is the slice of its input series,
  standard-scaled by that series' train part (valid and test a context
  early), NaN as 0."""
  found = made['corpus']
  series = _source_series(made)[name]
  for split in ('train', 'valid', 'test'):
    windows = found.windows(split, CL, FL, [name])
    expected = []
    for values in series:
      train_end, valid_end = found.rule.borders(len(values))
      first, last = {'train': (0, train_end),
                     'valid': (max(train_end - CL, 0), valid_end),
                     'test': (max(valid_end - CL, 0), len(values))}[split]
      mean = np.nanmean(values[:train_end])
      std = np.nanstd(values[:train_end])
      expected += [_expected(values, start, mean, std)
                   for start in range(first, last - CL - FL + 1)]
    assert len(windows) == len(expected) > 0, split
    for i in range(len(windows)):
      item = windows[i]
      got = np.concatenate([item['past_values'],
                            item['future_values']])[:, 0]
      np.testing.assert_allclose(got, expected[i], atol=1e-5,
                                 err_msg=f'{split} {i}')


def test_index_is_per_record_not_per_window(made):
  windows = made['corpus'].windows('train', CL, FL)
  records = len(made['corpus'].index['source'])
  assert len(windows) > 5 * records
  assert all(len(a) <= records for a in (windows.rows, windows.cumulative,
                                         windows.first_start))


def test_a_record_header_is_decoded_once_not_per_read(made, monkeypatch):
  found = reading.Corpus(str(made['root'] / 'c'))  # Nothing read yet.
  windows = found.windows('train', CL, FL, ['a'])
  decoded = []
  decode = format.decode

  def counted(record, where=''):
    decoded.append(where)
    return decode(record, where)

  monkeypatch.setattr(format, 'decode', counted)
  first = [windows[i]['past_values'] for i in range(len(windows))]
  again = [windows[i]['past_values'] for i in range(len(windows))]
  assert len(windows) > 5 * len(windows.rows)
  assert len(decoded) == len(set(decoded)) == len(windows.rows)
  np.testing.assert_array_equal(np.stack(first), np.stack(again))

def test_hosts_read_disjoint_shares_and_resume_exactly(made):
  found = made['corpus']
  sources = [found.windows('train', CL, FL, [n]) for n in ('a', 'wide')]
  def stream(process_index=0, process_count=1):
    return pipeline.mixture_dataset(sources, [2.0, 1.0], 8, seed=3,
                                    process_index=process_index,
                                    process_count=process_count)
  first = iter(stream())
  head = [next(first) for _ in range(3)]
  state = first.get_state()
  rest = [next(first) for _ in range(4)]
  resumed = iter(stream())
  resumed.set_state(state)
  for a, b in zip(rest, (next(resumed) for _ in range(4))):
    np.testing.assert_array_equal(a['past_values'], b['past_values'])
  halves = [next(iter(stream(i, 2))) for i in range(2)]
  np.testing.assert_array_equal(
      np.concatenate([h['past_values'] for h in halves]),
      head[0]['past_values'])


def test_evaluation_sample_is_fixed_and_capped(made):
  windows = made['corpus'].windows('valid', CL, FL)
  a = builders.sample(windows, 10, seed=5)
  b = builders.sample(windows, 10, seed=5)
  assert len(a) == 10 and list(a.indices) == list(b.indices)
  assert list(a.indices) == sorted(set(a.indices))
  assert builders.sample(windows, 0, seed=5) is windows


def test_engine_pretrains_on_a_corpus(made, tmp_path):
  from configs import pretrain  # pylint: disable=g-import-not-at-top
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  config = pretrain.get_config(
      f'corpus={made["root"] / "c"},arch=tiny,steps=4,eval_every=2,batch=8,'
      f'context={CL},horizon={FL},eval_windows=16,quick=true')
  with config.unlocked():
    config.model.arch = dict(config.model.arch, patch_length=8,
                             patch_stride=8)
    config.tensorboard = False
  (record,) = train.train_and_evaluate(config, str(tmp_path))
  assert record['num_windows'] == 16 and np.isfinite(record['mse'])
  _exports_carry_the_datasets(made, tmp_path)


def _exports_carry_the_datasets(made, workdir):
  """The run's export and a later `experiments.export` snapshot carry the
  corpus's datasets: config.json (which the benchmark runner reads) and
  the model card."""
  import ttm_jax  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import forecaster as forecaster_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.train import snapshots  # pylint: disable=g-import-not-at-top
  entries = made['manifest']['datasets']
  names = sorted(d['name'] for d in entries)
  snapshots.export_run(str(workdir), 'latest', str(workdir / 'snapshot'))
  for folder in (workdir / 'export', workdir / 'snapshot'):
    config = json.loads((folder / 'config.json').read_text())
    assert config['pretraining_data'] == names
    assert config['pretraining_datasets'] == entries
    assert forecaster_lib.pretraining_data(str(folder)) == names
    card = (folder / 'README.md').read_text()
    assert all(d['name'] in card and d['sha256'] in card for d in entries)
  ttm_jax.load_pretrained(str(workdir / 'export'))  # The extra keys load.


# ------------------------------------------------------------------ errors
def _run(*args):
  process = subprocess.run(
      [sys.executable, '-m', 'experiments.prepare_corpus', *args], cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
      timeout=300)
  return process.returncode, process.stdout + process.stderr


def test_prepare_cli_errors_are_one_line(made, tmp_path):
  rc, out = _run('--out', str(tmp_path / 'x'), '--source',
                 f'monash:{tmp_path}/none*.tsf')
  assert rc == 2 and 'matches no file' in out and 'Traceback' not in out
  ett = tmp_path / 'ETTh1.csv'
  made['wide'].to_csv(ett, index=False)
  rc, out = _run('--out', str(tmp_path / 'y'), '--source', f'csv:{ett}')
  assert rc == 2 and "registered benchmark 'etth1'" in out
  assert 'Traceback' not in out
  rc, out = _run('--out', str(tmp_path / 'z'), '--source', 'bogus:1')
  assert rc == 2 and 'expected monash:GLOB' in out


def test_damaged_corpora_are_named(made, tmp_path):
  good = made['root'] / 'c'
  manifest = json.loads((good / format.MANIFEST).read_text())
  shard = manifest['sources'][0]['shards'][0]['file']
  cases = {}
  for case in ('missing', 'truncated', 'count'):
    folder = tmp_path / case
    shutil.copytree(good, folder)
    cases[case] = folder
  os.remove(cases['missing'] / shard)
  with open(cases['truncated'] / shard, 'r+b') as f:
    f.truncate(1000)
  changed = json.loads((cases['count'] / format.MANIFEST).read_text())
  changed['sources'][0]['shards'][0]['num_records'] += 1
  (cases['count'] / format.MANIFEST).write_text(json.dumps(changed))
  for case, words in (('missing', 'is missing'), ('truncated', 'corrupt'),
                      ('count', 'does not match its shards')):
    with pytest.raises(errors.DataError, match=words) as raised:
      reading.Corpus(str(cases[case]))
    assert shard.split('/')[-1] in str(raised.value)
  with pytest.raises(errors.DataError, match='not a prepared corpus'):
    reading.Corpus(str(tmp_path))


def test_drs_flag_parsing():
  assert prepare_corpus.parse_drs('h=2,24;10min=3') == {'h': [2, 24],
                                                       '10min': [3]}
  with pytest.raises(errors.ConfigError, match='freq=f1,f2'):
    prepare_corpus.parse_drs('h:2')


def test_used_datasets_follow_the_sources_a_run_reads():
  from ttm_jax.data.corpus import provenance  # pylint: disable=g-import-not-at-top
  source = dict(spec='s', freq='h', num_series=1, num_values=5, drs_of=None)
  manifest = dict(
      sources=[dict(source, name='a'), dict(source, name='a@D', drs_of='a'),
               dict(source, name='b'), dict(source, name='k_h')],
      datasets=[dict(name='x/a', source='a'), dict(name='x/b', source='b'),
                dict(name='synthetic/k', source='k_h+k_D')])
  assert [d['name'] for d in provenance.used(manifest, ['a@D', 'k_h'])] == [
      'x/a', 'synthetic/k']
  del manifest['datasets']  # A corpus from before datasets were listed.
  assert provenance.names(provenance.used(manifest, ['a@D', 'b'])) == [
      'a', 'b']


def test_the_short_context_corpus_leaves_out_every_evaluated_monash_file(
    tmp_path):
  """configs/corpora/short_context.txt (the corpus of the short-context
  model scored on Chronos Benchmark II) reads none of the Monash files the
  benchmark runner scores: its globs, expanded over a folder holding all
  twelve Monash files of ../shared, match none of task_data.MONASH_FILES."""
  import glob as glob_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import task_data  # pylint: disable=g-import-not-at-top
  names = ['bitcoin_dataset_without_missing_values.tsf',
           'kaggle_web_traffic_dataset_1000_without_missing_values.tsf',
           'kdd_cup_2018_dataset_without_missing_values.tsf',
           'm4_hourly_dataset.tsf', 'saugeenday_dataset.tsf',
           'sunspot_dataset_without_missing_values.tsf',
           'us_births_dataset.tsf', *task_data.MONASH_FILES.values()]
  (tmp_path / 'monash').mkdir()
  for name in names:
    (tmp_path / 'monash' / name).write_text('')
  specs = prepare_corpus.read_sources_file(
      os.path.join(conftest.ROOT, 'configs', 'corpora',
                   'short_context.txt'), str(tmp_path))
  read = set()
  for spec in specs:
    kind, _, rest = spec.partition(':')
    if kind == 'monash':
      read.update(os.path.basename(p) for p in glob_lib.glob(rest))
  assert len(read) == 7
  assert not read & set(task_data.MONASH_FILES.values())
  # The v2 corpus, by contrast, reads them all (its glob).
  specs = prepare_corpus.read_sources_file(
      os.path.join(conftest.ROOT, 'configs', 'corpora',
                   'public_v2.txt'), str(tmp_path))
  v2 = {os.path.basename(p) for s in specs if s.startswith('monash:')
        for p in glob_lib.glob(s.partition(':')[2])}
  assert set(task_data.MONASH_FILES.values()) <= v2
