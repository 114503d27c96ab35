"""Sweeps: every sweep's quick plan validates; bad sweeps fail before any
point runs; a sweep killed midway resumes without redoing finished points;
the tables' summaries."""

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import conftest
from ttm_jax import errors
from ttm_jax.data.corpus import writing
from ttm_jax.workbench import sweep_tables
from ttm_jax.workbench import sweeps

ROOT = conftest.ROOT
LTSF = os.path.join(conftest.SHARED, 'data', 'ltsf')
R2 = os.path.join(conftest.CHECKPOINTS, 'fraware__ChronoAPI__root')
SWEEPS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'sweeps', '*.py')))
SWEEPS = [p for p in SWEEPS if not os.path.basename(p).startswith(
    ('_', 'common'))]


@pytest.fixture(scope='module')
def small_corpus(tmp_path_factory):
  folder = tmp_path_factory.mktemp('sweep') / 'corpus'
  preparer = writing.Preparer(str(folder), drs={'h': [24], '10min': [6]})
  preparer.add_spec('synthetic:num_series=20,length=1500,seed=0')
  preparer.close()
  return str(folder)


def _arg(path, corpus_dir='/nonexistent'):
  if os.path.basename(path) in ('ap.py', 'rpt.py', 'drs.py', 'size.py',
                                'r3.py', 'factors.py'):
    return f'corpus={corpus_dir},data_dir={LTSF},quick=true'
  return f'checkpoint={R2},data_dir={LTSF},quick=true'


def _sweep(*args, wait=True):
  command = [sys.executable, '-m', 'experiments.sweep', *args]
  process = subprocess.Popen(command, cwd=ROOT, env=dict(
      os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
  if not wait:
    return process
  out, _ = process.communicate(timeout=900)
  return process.returncode, out


@pytest.mark.parametrize('path', SWEEPS, ids=os.path.basename)
def test_every_sweep_plans_its_quick_and_full_versions(path):
  module = sweeps.load(path)
  for arg in (_arg(path), _arg(path).replace(',quick=true', '')):
    points = sweeps.plan(module, arg)
    assert len({p.name for p in points}) == len(points)
    assert all(p.stages for p in points)
  full = sweeps.plan(module, _arg(path).replace(',quick=true', ''))
  seeds = {p.stages[0]['config']['seed'] for p in full
           if p.stages[0]['config']['task'] != 'zero_shot'}
  assert seeds == {0, 1, 2}  # Three seeds of every trained point.
  assert sum(p.baseline for p in full) >= 1
  for point in full:  # Every group has a baseline to compare with.
    assert any(q.baseline and q.block == point.block for q in full), point


def test_bad_sweeps_fail_before_any_point_runs(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text(
      'from configs import demo\n'
      'def get_config(arg=None):\n'
      '  return demo.get_config("quick=true")\n'
      'def get_sweep(arg=None):\n'
      '  return [{"num_steps": 2}, {"optim.lrr": 1.0, "_name": "typo"}]\n')
  rc, out = _sweep('--config', str(bad), '--workdir', str(tmp_path / 'w'))
  assert rc == 2 and "point 'typo', stage 'run': config.optim.lrr is not a " \
      'field' in out and 'Traceback' not in out
  assert not (tmp_path / 'w').exists()
  bad.write_text(bad.read_text().replace(
      '{"optim.lrr": 1.0, "_name": "typo"}', '{"num_steps": "many"}'))
  rc, out = _sweep('--config', str(bad), '--workdir', str(tmp_path / 'w'))
  assert rc == 2 and "config.num_steps='many' must be an integer" in out
  bad.write_text(bad.read_text().replace(
      '{"num_steps": "many"}', '{"num_steps": 3, "_name": "num_steps2"}'))
  rc, out = _sweep('--config', str(bad), '--workdir', str(tmp_path / 'w'))
  assert rc == 2 and "would both write to 'num_steps2'" in out


def test_slurm_dry_run_prints_the_job_array_script(tmp_path):
  rc, out = _sweep('--config', f'{SWEEPS[0]}:{_arg(SWEEPS[0])}',
                   '--workdir', str(tmp_path), '--executor', 'slurm',
                   '--dry_run', '--parallel', '3', '--slurm',
                   'partition=gpu')
  assert rc == 0, out
  assert '#SBATCH --array=0-1%2' in out or '#SBATCH --array=0-1%3' in out
  assert '#SBATCH --partition=gpu' in out and 'srun' in out
  assert 'submitit.core._submit' in out and not os.listdir(tmp_path)


# End to end by default: one few-shot sweep here (exogenous: the only
# default run that trains with control columns), and one pretraining sweep
# (ap) in the killed-and-resumed test below; the other quick sweeps (0.5-1.5
# min each on 2 busy cores) run with -m slow.
DEFAULT_SWEEPS = ('exogenous.py',)


@pytest.mark.parametrize(
    'path', [p if os.path.basename(p) in DEFAULT_SWEEPS else
             pytest.param(p, marks=pytest.mark.slow)
             for p in SWEEPS if not p.endswith('ap.py')],  # ap: below.
    ids=os.path.basename)
def test_quick_sweep_runs_every_point(path, tmp_path, small_corpus):
  conftest.require_data('ltsf', 'ETTh1.csv')
  conftest.require_checkpoint(os.path.basename(R2))
  arg = _arg(path, small_corpus)
  rc, out = _sweep('--config', f'{path}:{arg}', '--workdir', str(tmp_path))
  assert rc == 0, out[-3000:]
  planned = sorted(p.name for p in sweeps.plan(sweeps.load(path), arg))
  with open(tmp_path / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert sorted(r['point'] for r in rows) == planned
  metrics = [k for k in rows[0] if k.endswith('/mse')]
  assert metrics and all(np.isfinite(float(r[k])) for r in rows
                         for k in metrics)
  assert all(int(r['parameters']) > 0 for r in rows)


def test_killed_sweep_resumes_without_redoing_finished_points(
    tmp_path, small_corpus):
  conftest.require_data('ltsf', 'ETTh1.csv')
  conftest.require_data('ltsf', 'ETTm1.csv')
  path = os.path.join(ROOT, 'configs', 'sweeps', 'ap.py')
  args = ['--config', f'{path}:{_arg(path, small_corpus)}', '--workdir',
          str(tmp_path)]
  process = _sweep(*args, wait=False)
  done = tmp_path / 'AP0_seed0' / sweeps.DONE
  deadline = time.time() + 600
  while not done.exists() and time.time() < deadline:
    time.sleep(0.2)
  assert done.exists(), process.communicate()[0][-3000:]
  os.killpg(process.pid, signal.SIGKILL)  # The sweep and its jobs.
  process.communicate()
  finished = {p: os.path.getmtime(p) for p in glob.glob(
      str(tmp_path / 'AP0_seed0' / '**' / '*'), recursive=True)}
  rc, out = _sweep(*args)
  assert rc == 0, out[-3000:]
  assert 'skipped (finished): 1: AP0_seed0' in out
  assert ('resumed: 1: AP3_seed0' in out) or ('new: 1: AP3_seed0' in out)
  for path_, mtime in finished.items():  # Not redone.
    assert os.path.getmtime(path_) == mtime, path_
  rows = list(open(tmp_path / 'results.csv'))
  assert len(rows) == 3 and (tmp_path / 'plot.png').exists()
  assert 'etth1/mse' in rows[0] and 'parameters' in rows[0]


def test_summary_means_stds_and_changes():
  rows = [dict(point=f'p{i}', group=g, baseline=g == 'a', seed=i,
               **{'s/mse': v}) for i, (g, v) in enumerate(
                   [('a', 1.0), ('a', 3.0), ('b', 1.5), ('b', 2.5)])]
  summary = {e['group']: e for e in sweep_tables.summarize(rows)}
  assert summary['a']['s/mse'] == (2.0, pytest.approx(np.sqrt(2.0)))
  assert summary['b']['n'] == 2 and summary['b']['change_%']['s/mse'] == 0.0
  rows[2]['s/mse'] = 0.5
  summary = {e['group']: e for e in sweep_tables.summarize(rows)}
  assert summary['b']['change_%']['s/mse'] == pytest.approx(-25.0)


def test_summary_compares_within_blocks():
  # Two datasets, each with its own zero-shot baseline: 'y b' is 10% better
  # than 'y zs', though 20% worse than 'x zs' (the first baseline).
  rows = [dict(point=g, group=g, block=g[0], baseline=g.endswith('zs'),
               seed=0, **{'run/mse': v}) for g, v in
          [('x zs', 1.0), ('x b', 0.5), ('y zs', 2.0), ('y b', 1.8)]]
  summary = {e['group']: e for e in sweep_tables.summarize(rows)}
  assert summary['x zs']['baseline'] and summary['y zs']['baseline']
  assert summary['x b']['change_%']['run/mse'] == pytest.approx(-50.0)
  assert summary['y b']['change_%']['run/mse'] == pytest.approx(-10.0)
  assert summary['y zs']['change_%']['run/mse'] == pytest.approx(0.0)


def test_two_baselines_in_one_block_are_refused(tmp_path):
  bad = tmp_path / 'two_baselines.py'
  bad.write_text(
      'from configs import demo\n'
      'def get_config(arg=None):\n'
      '  return demo.get_config("quick=true")\n'
      'def get_sweep(arg=None):\n'
      '  return [{"seed": s, "_group": f"g{s}", "_baseline": True}\n'
      '          for s in (0, 1)]\n')
  with pytest.raises(errors.ConfigError, match='2 baseline groups'):
    sweeps.plan(sweeps.load(str(bad)))
  # Without _group, the seeds of one baseline are one group (as summarized).
  bad.write_text(bad.read_text().replace('"_group": f"g{s}"',
                                         '"num_steps": 2'))
  points = sweeps.plan(sweeps.load(str(bad)))
  assert {p.group for p in points} == {'num_steps=2'}


def test_grid_helpers():
  assert sweeps.product(a=[1, 2], b=['x']) == [{'a': 1, 'b': 'x'},
                                               {'a': 2, 'b': 'x'}]
  assert sweeps.zip_points(a=[1, 2], b=[3, 4]) == [{'a': 1, 'b': 3},
                                                   {'a': 2, 'b': 4}]
  with pytest.raises(errors.ConfigError, match='equal lengths'):
    sweeps.zip_points(a=[1], b=[1, 2])
  assert sweeps.cross([{'a': 1}], [{'b': 2}, {'b': 3}]) == [
      {'a': 1, 'b': 2}, {'a': 1, 'b': 3}]
  assert json.loads(json.dumps(sweeps.point_name({'x.y': 0.5, 'seed': 2}))
                    ) == 'y0.5_seed2'
