"""Bad input, as a user meets it: the real entry points in subprocesses.

Every case asserts the exit status, that no traceback is shown, the words
of the one-line message, and that nothing already in the workdir was lost
or overwritten. The cases that fail before any compilation run two at a
time, each its own process forked from one that has the libraries imported
(tests/entry_points.py).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from tests import conftest
from tests import entry_points
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib

ROOT = conftest.ROOT
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)
DEMO = ['experiments.train', '--config', 'configs/demo.py:quick=true',
        '--config.plot=false', '--config.tensorboard=false']


def _command(args):
  return [sys.executable, '-m'] + list(args)


def _run(args, timeout=600, wait=True):
  """(status, stdout, stderr) of `python -m args...`, forked from the
  session's entry-point server (tests/entry_points.py); with wait=False,
  the Popen of a process of its own (to be signalled)."""
  if wait:
    return entry_points.run(args)
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)
  process = subprocess.Popen(_command(args), cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  if not wait:
    return process
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err


def _snapshot(folder):
  """{relative path: sha256} of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return out


def _assert_one_line_error(rc, out, err, status, words):
  text = out + err
  assert rc == status, text[-3000:]
  assert 'Traceback' not in text, text[-3000:]
  errors = [line for line in err.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1, err[-3000:]
  assert re.search(words, errors[0]), errors[0]


def _assert_kept(before, after, allowed=()):
  """Every file of `before` is in `after`, unchanged (but `allowed`)."""
  for path, digest in before.items():
    if any(re.fullmatch(a, path) for a in allowed):
      continue
    assert after.get(path) == digest, f'{path} lost or changed'


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """A small checkpoint, its variants with bad config.json, and data files."""
  root = tmp_path_factory.mktemp('bad_inputs')
  config = config_lib.TTMConfig(**SMALL)
  good = root / 'ckpt'
  checkpoint.save_pretrained(str(good), config,
                             checkpoint.init_variables(config,
                                                       jax.random.key(0)))
  with open(good / 'config.json') as f:
    values = json.load(f)
  for name, change in (('scaling', {'scaling': 'bogus'}),
                       ('layers', {'num_layers': -1}),
                       ('width', {'d_model': 'big'}),
                       ('no_width', {'d_model': None})):
    folder = root / f'ckpt_{name}'
    shutil.copytree(good, folder)
    bad = dict(values, **change)
    if change.get('d_model', 0) is None:
      del bad['d_model']
    with open(folder / 'config.json', 'w') as f:
      json.dump(bad, f)
  rng = np.random.default_rng(0)
  rows = 400
  frame = pd.DataFrame({
      'date': pd.date_range('2022-01-01', periods=rows, freq='h'),
      **{f'x{k}': np.sin(np.arange(rows) / 5 + k) + 0.1 * rng.normal(
          size=rows) for k in range(3)}})
  frame.to_csv(root / 'good.csv', index=False)
  with_inf = frame.copy()
  with_inf.loc[37, 'x1'] = np.inf
  with_inf.to_csv(root / 'inf.csv', index=False)
  text = frame.copy().astype({'x2': object})
  text.loc[12, 'x2'] = 'n/a?'
  text.to_csv(root / 'text.csv', index=False)
  (root / 'empty.csv').write_text('')
  duplicated = pd.concat([frame.iloc[:100], frame.iloc[99:]])
  duplicated.to_csv(root / 'duplicated.csv', index=False)
  return root


def _few_shot(files, workdir, data='good.csv', ckpt='ckpt', extra=()):
  return ['experiments.train', '--config',
          'configs/few_shot.py:quick=true,context=64,horizon=16,data=mine,'
          'fraction=1.0', f'--config.checkpoint={files / ckpt}',
          '--config.data.kind=csv', f'--config.data.path={files / data}',
          '--config.tensorboard=false', '--workdir', str(workdir)] + list(
              extra)


# Cases that fail at start-up: (name, args(files, workdir), status, words).
FAST = [
    ('inf_in_data', lambda f, w: _few_shot(f, w, 'inf.csv'), 2,
     r"inf.csv: column 'x1' has inf at row 38; values must be finite"),
    ('empty_csv', lambda f, w: _few_shot(f, w, 'empty.csv'), 2,
     r'empty.csv is empty: expected a header line'),
    ('non_numeric', lambda f, w: _few_shot(f, w, 'text.csv'), 2,
     r"column 'x2' has a non-numeric value 'n/a\?' at row 13"),
    ('duplicated_timestamps', lambda f, w: _few_shot(f, w, 'duplicated.csv'),
     2, r'duplicated timestamps \(first at rows \[101\].*duplicates='),
    ('config_json_scaling', lambda f, w: _few_shot(f, w, ckpt='ckpt_scaling'),
     2, r"config.json: scaling='bogus' is invalid: must be one of"),
    ('config_json_num_layers',
     lambda f, w: _few_shot(f, w, ckpt='ckpt_layers'), 2,
     r'config.json: num_layers=-1 is invalid: must be an integer >= 1'),
    ('config_json_d_model_type',
     lambda f, w: _few_shot(f, w, ckpt='ckpt_width'), 2,
     r"config.json: d_model='big' is invalid: must be an integer"),
    ('config_json_no_d_model',
     lambda f, w: _few_shot(f, w, ckpt='ckpt_no_width'), 2,
     r'config.json has no d_model, so it is the default 16, the weights say '
     r'd_model=32'),
    ('negative_steps', lambda f, w: DEMO + ['--workdir', str(w),
                                            '--config.num_steps=-5'], 2,
     r'config.num_steps=-5 must be >= 0'),
    ('negative_lr', lambda f, w: DEMO + ['--workdir', str(w),
                                         '--config.optim.lr=-1'], 2,
     r'config.optim.lr=-1.0 must be > 0'),
    ('unknown_field', lambda f, w: DEMO + ['--workdir', str(w),
                                           '--config.nmu_steps=3'], 2,
     r"config.nmu_steps is not a field.*Did you mean \['num_steps'"),
    ('unknown_arch_field', lambda f, w: DEMO + [
        '--workdir', str(w), '--config.model.arch.d_modle=8'], 2,
     r"config.model.arch.d_modle is not a TTMConfig field.*'d_model'"),
    ('longer_horizon', lambda f, w: [
        'experiments.evaluate', '--config', 'configs/zero_shot.py:context=64',
        f'--config.checkpoint={f / "ckpt"}', '--config.prediction_length=32',
        '--config.data.kind=csv', f'--config.data.path={f / "good.csv"}',
        '--workdir', str(w)], 2,
     r'prediction_length=32 is longer than the 16 steps checkpoint.*'
     r'rolling'),
]


@pytest.fixture(scope='module')
def fast_results(files, tmp_path_factory):
  root = tmp_path_factory.mktemp('fast')
  outcomes = entry_points.run_batch([make(files, root / name)
                                     for name, make, _, _ in FAST])
  return {name: (outcome, root / name)
          for (name, _, _, _), outcome in zip(FAST, outcomes)}


@pytest.mark.parametrize('name, status, words',
                         [(n, s, w) for n, _, s, w in FAST])
def test_fails_at_start_with_one_line(fast_results, name, status, words):
  (rc, out, err), workdir = fast_results[name]
  _assert_one_line_error(rc, out, err, status, words)
  if name in ('negative_steps', 'negative_lr', 'unknown_field',
              'unknown_arch_field'):  # Refused before anything is written.
    assert not workdir.exists()
  else:  # Nothing but the run's record.
    assert not (workdir / 'checkpoints').exists()
    assert not (workdir / 'results.json').exists()


# ---------------------------------------------------------- trained runs
@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A finished quick demo run: 12 steps, a checkpoint every 3."""
  workdir = tmp_path_factory.mktemp('trained') / 'run'
  rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                              '--config.num_steps=12',
                              '--config.checkpoint_every_steps=3'])
  assert rc == 0, (out + err)[-3000:]
  return workdir


def _copy(workdir, tmp_path, name='copy'):
  target = tmp_path / name
  shutil.copytree(workdir, target)
  return target


def test_changed_architecture_on_resume_is_refused_first(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  before = _snapshot(workdir)
  rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                              '--config.num_steps=12',
                              '--config.checkpoint_every_steps=3',
                              '--config.model.arch.d_model=32'])
  _assert_one_line_error(rc, out, err, 2, r'model.arch.d_model: None -> 32')
  assert _snapshot(workdir) == before  # Not even config.json rewritten.


def test_second_run_in_a_workdir_names_the_holder(trained, tmp_path):
  workdir = _copy(trained, tmp_path)
  holder = subprocess.Popen(['sleep', '60'])
  try:
    (workdir / 'lock').write_text(json.dumps(dict(
        host=os.uname().nodename, pid=holder.pid, started='then',
        argv=['first'])))
    before = _snapshot(workdir)
    rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                                '--config.num_steps=12'])
    _assert_one_line_error(rc, out, err, 2,
                           f'in use by another run: pid {holder.pid} on host')
    assert _snapshot(workdir) == before
  finally:
    holder.kill()
    holder.wait()
  # Its process is gone now: the lock is stale and taken over.
  rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                              '--config.num_steps=12',
                              '--config.checkpoint_every_steps=3'])
  assert rc == 0 and 'Taking over the lock of a dead run' in out, err
  assert not (workdir / 'lock').exists()
  assert len((workdir / 'runs.jsonl').read_text().splitlines()) == 2


@pytest.mark.parametrize('damage', ['truncated_array', 'missing_state'])
def test_damaged_checkpoint_falls_back_to_the_previous(trained, tmp_path,
                                                       damage):
  workdir = _copy(trained, tmp_path)
  step = workdir / 'checkpoints' / '12'
  if damage == 'missing_state':
    shutil.rmtree(step / 'state')
  else:
    arrays = sorted((step / 'state').rglob('d/*'),
                    key=lambda p: p.stat().st_size)
    with open(arrays[-1], 'r+b') as f:
      f.truncate(100)
  before = _snapshot(workdir)
  rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                              '--config.num_steps=15',
                              '--config.checkpoint_every_steps=3'])
  assert rc == 0, (out + err)[-3000:]
  assert 'Traceback' not in out + err
  assert re.search(r'Checkpoint step 12 is damaged .* moved it to .*damaged/'
                   r'12-', out), out
  assert 'Resumed from step 9.' in out
  moved = list((workdir / 'damaged').iterdir())
  assert len(moved) == 1
  # The damaged step is kept whole (moved, not deleted).
  _assert_kept({k.split('checkpoints/12/', 1)[1]: v
                for k, v in before.items() if k.startswith('checkpoints/12/')},
               _snapshot(moved[0]))
  steps = [json.loads(line)['step']
           for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert steps == sorted(set(steps)) and steps[-1] == 15


def test_divergence_stops_without_a_non_finite_record(tmp_path):
  workdir = tmp_path / 'diverged'
  rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                              '--config.optim.lr=1e6',
                              '--config.log_every_steps=1'])
  _assert_one_line_error(rc, out, err, 2, r'at step \d+: the run diverged')
  text = (workdir / 'metrics.jsonl').read_text()
  assert 'NaN' not in text and 'Infinity' not in text
  assert not (workdir / 'results.json').exists()


def test_disk_full_is_one_line_and_keeps_the_checkpoints(tmp_path):
  mount = tmp_path / 'small'
  mount.mkdir()
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs',
                     str(mount)], capture_output=True).returncode:
    pytest.skip('needs permission to mount a small tmpfs')
  try:
    workdir = mount / 'run'
    rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                                '--config.num_steps=40',
                                '--config.checkpoint_every_steps=5'])
    _assert_one_line_error(rc, out, err, 1, r'no space left on device.*'
                           'rerun the same command to resume')
    # Besides the progress bar and the validation lines, a few lines at
    # most (no logged background-thread errors).
    other = [l for l in (out + err).splitlines() if l.strip() and not (
        '%|' in l or re.match(r'step \d+/\d+ epoch', l))]
    assert len(other) < 8, other
    steps = [n for n in os.listdir(workdir / 'checkpoints') if n.isdigit()]
    assert steps  # The complete checkpoints are kept.
  finally:
    subprocess.run(['umount', str(mount)], check=False)


# ------------------------------------------------------------------ data
def test_zero_shot_on_a_short_file_says_what_it_did(files, tmp_path):
  rows = pd.read_csv(files / 'good.csv').iloc[:100]
  rows.to_csv(tmp_path / 'short.csv', index=False)
  workdir = tmp_path / 'zs'
  rc, out, err = _run([
      'experiments.evaluate', '--config', 'configs/zero_shot.py:context=64',
      f'--config.checkpoint={files / "ckpt"}', '--config.prediction_length=16',
      '--config.data.kind=csv', f'--config.data.path={tmp_path / "short.csv"}',
      '--config.data.train_fraction=0.01', '--config.data.test_fraction=0.9',
      '--workdir', str(workdir)])
  assert rc == 0, (out + err)[-3000:]
  assert 'too few to fit the standard scaler' in err
  (record,) = json.loads((workdir / 'results.json').read_text())
  assert record['num_windows'] > 0 and np.isfinite(record['mse'])
  assert 'left unscaled' in record['notes'][0]


def test_registered_benchmark_keeps_published_rows(tmp_path):
  """A weather.csv like the published one: a duplicated timestamp and a
  gap. The benchmark protocol windows rows by index, so it runs (with a
  warning naming both); the same file as the user's own is refused unless
  duplicates are allowed."""
  conftest.require_checkpoint('fraware__ChronoAPI__root')
  rows = 1400
  stamps = list(pd.date_range('2020-01-01', periods=rows, freq='10min'))
  stamps[700] = stamps[699]  # Duplicated.
  stamps[900:] = [t + pd.Timedelta(minutes=100) for t in stamps[900:]]
  rng = np.random.default_rng(1)
  frame = pd.DataFrame({'date': stamps, 'OT': rng.normal(size=rows).cumsum(),
                        'p': rng.normal(size=rows)})
  frame.to_csv(tmp_path / 'weather.csv', index=False)
  base = ['experiments.evaluate', '--config', 'configs/zero_shot.py:data='
          'weather', '--config.checkpoint=' + os.path.join(
              conftest.CHECKPOINTS, 'fraware__ChronoAPI__root')]
  rc, out, err = _run(base + [f'--config.data_dir={tmp_path}', '--workdir',
                              str(tmp_path / 'bench')])
  assert rc == 0, (out + err)[-3000:]
  assert re.search(r'1 duplicated timestamp.*2020-01-05 20:30:00.*gap.*kept '
                   r'as published',
                   err), err
  own = base[:2] + ['configs/zero_shot.py'] + base[3:] + [
      '--config.data.kind=csv', f'--config.data.path={tmp_path}/weather.csv',
      '--config.data.name=mine']
  rc, out, err = _run(own + ['--workdir', str(tmp_path / 'own')])
  _assert_one_line_error(rc, out, err, 2, r'duplicated timestamps \(first at '
                         r'rows \[701\]')
  rc, out, err = _run(own + ['--config.data.duplicates=first', '--workdir',
                             str(tmp_path / 'own_first')])
  assert rc == 0, (out + err)[-3000:]


# ------------------------------------------------------------------- API
def test_nan_in_past_values_is_missing_and_said_once(caplog):
  from ttm_jax.models import modules
  from ttm_jax.models import ttm  # pylint: disable=g-import-not-at-top
  config = config_lib.TTMConfig(**SMALL)
  model = modules.build_module(config)
  variables = checkpoint.init_variables(config, jax.random.key(0))
  rng = np.random.default_rng(0)
  past = rng.normal(size=(2, 64, 3)).astype(np.float32)
  past[0, 10:14, 1] = np.nan
  mask = np.where(np.isnan(past), 0.0, 1.0).astype(np.float32)
  expected = model.apply(variables, np.nan_to_num(past),
                         past_observed_mask=mask).prediction_outputs
  ttm._NAN_WARNED.clear()  # pylint: disable=protected-access
  with caplog.at_level('WARNING'):
    eager = model.apply(variables, past).prediction_outputs
    eager_again = model.apply(variables, past).prediction_outputs
    jitted = jax.jit(model.apply)(variables, past).prediction_outputs
  assert np.isfinite(eager).all()
  np.testing.assert_array_equal(eager, eager_again)
  np.testing.assert_allclose(eager, expected, atol=1e-6)
  np.testing.assert_allclose(jitted, expected, atol=1e-5)
  warnings = [r for r in caplog.records if 'treated as missing' in
              r.getMessage()]
  assert len(warnings) == 1
