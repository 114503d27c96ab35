"""Bad input at the benchmark runner, round 4 (issue 35): a record reused
only by the run that made it, data checked where it enters, known files by
size and sha256, one line for every foreign exception, one suite a
workdir.

Through the real entry point (`experiments.benchmark`, forked from the
session's server: tests/entry_points.py): the exit status, exactly one
`error:` line naming the culprit, no traceback, and nothing written (or,
in a workdir already holding a run, nothing changed). Small models and
data are made here; nothing downloads.
"""

import json
import os
import shutil

import jax
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import conftest
from tests import entry_points
from tests.experiments.test_bad_inputs import _assert_one_line_error
from tests.experiments.test_bad_inputs import _snapshot
from ttm_jax import errors
from ttm_jax import save_pretrained
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.suites import benchmark
from ttm_jax.suites import known_files
from ttm_jax.suites import tasks as tasks_lib

CHRONOS = 'configs/benchmarks/chronos_ii.py'
GIFT = 'configs/benchmarks/gift_eval.py'
M1 = 'monash_m1_yearly'


def _model(folder, context, seed):
  config = config_lib.TTMConfig(
      context_length=context, prediction_length=8, patch_length=8,
      patch_stride=8, d_model=16, decoder_d_model=16, num_layers=1,
      decoder_num_layers=1, adaptive_patching_levels=1)
  save_pretrained(str(folder), config,
                  checkpoint.init_variables(config, jax.random.key(seed)))
  return str(folder)


def _chronos_table(folder, name, values, target=None):
  """fev's layout of a Chronos Benchmark II task: one parquet, one row a
  series (yearly stamps)."""
  path = folder / 'autogluon/chronos_datasets' / name
  path.mkdir(parents=True, exist_ok=True)
  rows = [{'id': f'S{i}', 'timestamp': list(pd.date_range(
      '1950', periods=len(v), freq='YS')), 'target': list(v)}
          for i, v in enumerate(values)]
  frame = pd.DataFrame(rows)
  if target is not None:
    frame['target'] = target
  pq.write_table(pa.Table.from_pandas(frame),
                 path / 'train-00000-of-00001.parquet')
  return path / 'train-00000-of-00001.parquet'


def _gift_arrow(folder, values):
  folder.mkdir(parents=True, exist_ok=True)
  table = pa.table({'item_id': [f'T{i}' for i in range(len(values))],
                    'start': pd.to_datetime(['1990-01-01'] * len(values)),
                    'freq': ['A-DEC'] * len(values),
                    'target': [list(v) for v in values]})
  path = folder / 'data-00000-of-00001.arrow'
  with pa.OSFile(str(path), 'wb') as sink:
    with pa.ipc.new_stream(sink, table.schema) as writer:
      writer.write_table(table)
  return path


@pytest.fixture(scope='module')
def world(tmp_path_factory):
  """Models (two of one shape, a short and a long context for 'auto') and
  data folders, good and bad."""
  root = tmp_path_factory.mktemp('bench')
  rng = np.random.default_rng(0)
  short = [rng.normal(10, 3, n).cumsum() + 100 for n in (20, 25, 30)]
  long = [rng.normal(10, 3, n).cumsum() + 100 for n in (60, 70, 80)]
  out = dict(root=root, short=short)
  out['a'] = _model(root / 'models/a/model_a', 32, 0)
  out['b'] = _model(root / 'models/b/model_b', 32, 1)
  out['auto'] = root / 'auto'
  _model(root / 'auto/short', 16, 2)
  _model(root / 'auto/long', 32, 3)
  good = root / 'good'
  _chronos_table(good, M1, short)
  _chronos_table(good, 'monash_tourism_yearly', long)
  _gift_arrow(good / 'm4_yearly', short)
  other = root / 'other'  # The same layout, other values.
  _chronos_table(other, M1, [v + 1.0 for v in short])
  bad = [v.copy() for v in short]
  bad[1][5] = np.inf
  _chronos_table(root / 'inf', M1, bad)
  _chronos_table(root / 'text', M1, short,
                 target=[[str(x) for x in v] for v in short])
  corrupt = _chronos_table(root / 'corrupt', M1, short)
  corrupt.write_bytes(b'PAR1' + b'\0' * 64)
  arrow = _gift_arrow(root / 'cut_arrow/m4_yearly', short)
  arrow.write_bytes(arrow.read_bytes()[:300])
  (root / 'no_target/m4_yearly').mkdir(parents=True)
  pq.write_table(pa.table({'item_id': ['T0'], 'values': [[1.0, 2.0]]}),
                 root / 'no_target/m4_yearly/data.parquet')
  (root / 'tsf').mkdir()
  (root / 'tsf/m1_yearly_dataset.tsf').write_text(
      '@frequency yearly\n@horizon 6\n@data\nT1:1950-01-01 00-00-00:'
      + ','.join(str(float(x)) for x in range(20)) + '\n')
  (root / 'a_file').write_text('not a folder')
  return out


def _command(spec, workdir, *overrides):
  return (['experiments.benchmark', '--config', spec, '--workdir',
           str(workdir)] + [f'--config.{o}' for o in overrides])


def _ok(outcome):
  rc, out, err = outcome
  assert rc == 0 and 'Traceback' not in out + err, (out + err)[-3000:]
  return out


def _record(workdir, name=M1):
  path = os.path.join(workdir, 'tasks', name.replace('/', '__') + '.json')
  with open(path) as f:
    return json.load(f)


# ------------------------------------------------- refused before any work
def test_bad_data_and_settings_are_one_line_before_any_write(world,
                                                             tmp_path):
  root = world['root']
  chronos = f'{CHRONOS}:baseline=seasonal_naive,tasks={M1},data_dir='
  cases = [
      # Infinite values: their forecasts would drop out of the metrics.
      (chronos + str(root / 'inf'), (),
       r"monash_m1_yearly: .*train-00000-of-00001.parquet: series 'S1' "
       r'holds 1 infinite value\(s\), the first at step 5 \(1955-01-01'),
      # Text in a target: file, column, series and step.
      (chronos + str(root / 'text'), (),
       r"train-00000-of-00001.parquet: column 'target', series 'S0', step "
       r"0: '.*' is str, not a number"),
      # Damaged files: named, not 'unexpected error'.
      (chronos + str(root / 'corrupt'), (),
       r'train-00000-of-00001.parquet: not a readable parquet file '
       r'\(ArrowInvalid: '),
      (f'{GIFT}:baseline=seasonal_naive,tasks=m4_yearly/A/short,data_dir='
       + str(root / 'cut_arrow'), (),
       r'm4_yearly/data-00000-of-00001.arrow: not a readable arrow file'),
      (f'{GIFT}:baseline=seasonal_naive,tasks=m4_yearly/A/short,data_dir='
       + str(root / 'no_target'), (),
       r"m4_yearly/A/short: .*data.parquet has no column \['target'\] "
       r"\(GIFT-Eval's layout"),
      # A known file (Chronos II's Monash .tsf) whose bytes differ.
      (chronos + str(root / 'tsf'), (),
       r'm1_yearly_dataset.tsf: \d+ bytes, sha256 [0-9a-f]{16}; the known '
       r'copy of monash/m1_yearly_dataset.tsf is 30,362 bytes, sha256 '
       r'12866731b810af59 .*config.verify_files=false'),
      # A task named twice would be scored and averaged twice.
      (f'{CHRONOS}:baseline=seasonal_naive,tasks={M1}+{M1},data_dir='
       + str(root / 'good'), (),
       r"config.tasks=\['monash_m1_yearly', 'monash_m1_yearly'\] names "
       r"\['monash_m1_yearly'\] twice"),
      (f'{CHRONOS}:checkpoint={world["a"]},finetune=true,data_dir='
       + str(root / 'good'), ('finetune.lr=nan',),
       r'config.finetune.lr=nan must be finite'),
      # GIFT-Eval's config.json cannot say Unknown.
      (f'{GIFT}:checkpoint={world["a"]},tasks=m4_yearly/A/short,data_dir='
       + str(root / 'good'), (),
       r"config.submission.testdata_leakage='' cannot be decided: the "
       r'checkpoint does not say what it was pretrained on'),
      (f'{CHRONOS}:baseline=seasonal_naive,data_dir={root / "nowhere"}', (),
       r"config.data_dir='.*nowhere' is not a folder"),
  ]
  outcomes = entry_points.run_batch(
      [_command(spec, tmp_path / f'w{k}', *overrides)
       for k, (spec, overrides, _) in enumerate(cases)])
  for k, ((_, _, words), outcome) in enumerate(zip(cases, outcomes)):
    _assert_one_line_error(*outcome, 2, words)
    assert not (tmp_path / f'w{k}').exists(), k


def test_workdir_file_damaged_record_and_another_suite(world, tmp_path):
  root, work = world['root'], tmp_path / 'work'
  good = str(root / 'good')
  naive = f'{CHRONOS}:baseline=seasonal_naive,tasks={M1},data_dir={good}'
  _assert_one_line_error(*entry_points.run(_command(naive, root / 'a_file')),
                         2, r'a_file is a file, not a folder')
  assert (root / 'a_file').read_text() == 'not a folder'
  _ok(entry_points.run(_command(naive, work)))
  before = _snapshot(work)
  # A second suite would replace summary.csv beside the first's files.
  gift = (f'{GIFT}:baseline=seasonal_naive,tasks=m4_yearly/A/short,'
          f'data_dir={good}')
  _assert_one_line_error(
      *entry_points.run(_command(gift, work)), 2,
      r'work holds a chronos_ii run \(benchmark.json\); this run scores '
      r'gift_eval')
  assert _snapshot(work) == before
  # A damaged record: named, kept; rerun=true scores the task again.
  path = work / 'tasks' / f'{M1}.json'
  path.write_text('{"task_name": "monash_m1')
  damaged = _snapshot(work)
  _assert_one_line_error(
      *entry_points.run(_command(naive, work)), 2,
      r'monash_m1_yearly.json: a damaged task record \(JSONDecodeError: .*'
      r'config.rerun=true')
  assert _snapshot(work) == damaged
  _ok(entry_points.run(_command(naive + ',rerun=true', work)))
  assert _record(work)['identity'] is not None
  # A record written before records had an identity.
  record = _record(work)
  del record['identity']
  path.write_text(json.dumps(record))
  _assert_one_line_error(*entry_points.run(_command(naive, work)), 2,
                         r'carries no identity')


def test_a_record_is_reused_only_by_the_run_that_made_it(world, tmp_path):
  root, work = world['root'], tmp_path / 'work'
  good = str(root / 'good')

  def spec(model=world['a'], data=good, extra=''):
    return (f'{CHRONOS}:checkpoint={model},quantiles=point,tasks={M1},'
            f'data_dir={data}{extra}')
  _ok(entry_points.run(_command(spec(), work)))
  made = _snapshot(work / 'tasks')
  first = _record(work)
  # The same run again: the record is read back, not scored again.
  out = _ok(entry_points.run(_command(spec(), work)))
  assert '1 task(s) scored' in out and 'MASE' not in out
  assert _snapshot(work / 'tasks') == made
  # The same weights under another path: content, not path, decides.
  copy = root / 'copy' / 'model_a'
  shutil.copytree(world['a'], copy)
  _ok(entry_points.run(_command(spec(model=copy), work)))
  assert _snapshot(work / 'tasks') == made
  before = _snapshot(work)
  refusals = [
      # Another checkpoint (the summary would show its metrics under the
      # other's name and config).
      (spec(model=world['b']),
       r'was made by another run: forecaster.name "model_a" \(now '
       r'"model_b"\), checkpoint.model.safetensors "[0-9a-f]{12}\.\.\." \(now '
       r'"[0-9a-f]{12}\.\.\."\)'),
      # Other options.
      (spec(extra=',inputs=reference'),
       r'forecaster.options.inputs "default" \(now "reference"\)'),
      (spec(extra=',quantiles=insample').replace(',quantiles=point', ''),
       r'forecaster.quantile_source "point" \(now "insample"\)'),
      # A baseline.
      (f'{CHRONOS}:baseline=seasonal_naive,tasks={M1},data_dir={good}',
       r'forecaster.name "model_a" \(now "seasonal_naive"\)'),
      # Other data (the same files' names, other bytes).
      (spec(data=root / 'other'), r'data.0.sha256 "[0-9a-f]+'),
  ]
  outcomes = entry_points.run_batch([_command(s, work)
                                     for s, _ in refusals])
  for (_, words), outcome in zip(refusals, outcomes):
    _assert_one_line_error(*outcome, 2, words)
    assert _snapshot(work) == before
  # Asked for: the task scored again, by the new run's model.
  _ok(entry_points.run(_command(spec(model=world['b'], extra=',rerun=true'),
                                work)))
  second = _record(work)
  assert second['model_name'] == 'model_b'
  assert second['identity']['checkpoint'] != first['identity']['checkpoint']
  assert second['metrics']['MASE'] != first['metrics']['MASE']
  summary = pd.read_csv(work / 'summary.csv')
  assert summary['model_name'].tolist() == ['model_b']
  assert json.loads(summary['model_config'][0])['checkpoint'] == world['b']
  assert summary['MASE'][0] == pytest.approx(second['metrics']['MASE'])


def test_a_fine_tune_is_reused_only_with_its_settings(world, tmp_path):
  work = tmp_path / 'work'
  spec = (f'{CHRONOS}:checkpoint={world["a"]},finetune=true,tasks={M1},'
          f'data_dir={world["root"] / "good"}')
  _ok(entry_points.run(_command(spec, work, 'finetune.quick=true')))
  before = _snapshot(work)
  _assert_one_line_error(
      *entry_points.run(_command(spec, work, 'finetune.quick=true',
                                 'finetune.lr=0.001')), 2,
      r'forecaster.options.finetune.learning_rate 0.0001 \(now 0.001\)')
  assert _snapshot(work) == before


def test_a_recipes_settings_are_part_of_its_records(world, tmp_path):
  """Every config field away from its default names the record (here a
  recipe's setting, which the forecaster's name does not show)."""
  work = tmp_path / 'work'
  spec = (f'{CHRONOS}:recipe=backtest_select,tasks={M1},'
          f'data_dir={world["root"] / "good"}')
  baselines = "select.candidates=('seasonal_naive','naive','drift')"
  _ok(entry_points.run(_command(spec, work, baselines)))
  before = _snapshot(work)
  _assert_one_line_error(
      *entry_points.run(_command(spec, work, baselines,
                                 'select.windows=2')), 2,
      r'forecaster.options.recipe.windows 3 \(now 2\), settings.'
      r'select.windows "\(default\)" \(now 2\)')
  assert _snapshot(work) == before


def test_checkpoint_auto_applies_the_zoos_rule_per_task(world, tmp_path):
  """The rule by hand: M1's shortest past (20 - 6 = 14 steps) fits no
  context, so the shortest (16); tourism yearly's (60 - 4 = 56) fits
  both, so the longest (32)."""
  work = tmp_path / 'work'
  spec = (f'{CHRONOS}:checkpoint=auto,quantiles=point,tasks={M1}+'
          f'monash_tourism_yearly,data_dir={world["root"] / "good"}')
  out = _ok(entry_points.run(_command(
      spec, work, f'checkpoints_dir={world["auto"]}')))
  chosen = {}
  for name in (M1, 'monash_tourism_yearly'):
    record = _record(work, name)
    assert record['model_name'] == 'ttm-auto'
    chosen[name] = os.path.basename(record['model_config']['checkpoint'])
    assert f'{name}: checkpoint=auto chose' in out
  assert chosen == {M1: 'short', 'monash_tourism_yearly': 'long'}
  assert (_record(work, M1)['identity']['checkpoint']
          != _record(work, 'monash_tourism_yearly')['identity']['checkpoint'])
  # Without a folder to choose from, nor the hub: one line, nothing run.
  _assert_one_line_error(
      *entry_points.run(_command(spec, tmp_path / 'none',
                                 f'checkpoints_dir={tmp_path / "empty"}')),
      2, r"checkpoint='auto' found no checkpoint folder")


# ------------------------------------------------------------- in-process
def test_a_non_finite_forecast_skips_its_task_saying_why(world, tmp_path):
  def nan(histories, horizon, freq, levels, season):
    del freq, season
    point = np.ones((len(histories), horizon))
    point[1, 2] = np.nan
    return point, np.repeat(point[..., None], len(levels), axis=-1)
  lines = []
  records = benchmark.run(
      'chronos_ii', str(world['root'] / 'good'), str(tmp_path / 'work'),
      forecaster_lib.Forecaster('nan', nan, 'point', ()), [M1],
      progress=lines.append)
  assert records == []
  [skipped] = json.loads((tmp_path / 'work/missing.json').read_text())
  assert 'nan forecast non-finite values for 1 series' in (
      skipped['unsupported'])
  assert any('skipped' in line for line in lines)


def test_known_monash_files_pass_and_a_truncated_copy_is_refused(tmp_path):
  monash = conftest.require_data('monash')
  for name in ('m4_yearly', 'tourism_monthly', 'tourism_quarterly',
               'tourism_yearly', 'm1_yearly'):
    path = os.path.join(monash, f'{name}_dataset.tsf')
    known_files.check(path, f'monash/{name}_dataset.tsf')
  cut = tmp_path / 'm1_yearly_dataset.tsf'
  data = open(os.path.join(monash, 'm1_yearly_dataset.tsf'), 'rb').read()
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(Exception, match=r'15,181 bytes, .*the known copy of '
                     r'monash/m1_yearly_dataset.tsf is 30,362 bytes'):
    known_files.check(str(cut), 'monash/m1_yearly_dataset.tsf')


def test_a_task_named_twice_is_refused_by_the_library_too():
  with pytest.raises(errors.ConfigError,
                     match=r"tasks \['m4_yearly'\] are named twice"):
    tasks_lib.select(tasks_lib.load_suite('chronos_ii'),
                     ['m4_yearly', 'm4_yearly'])
