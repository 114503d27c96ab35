"""The engine: data-parallel agreement, multi-process training, exact
resume after SIGKILL or SIGTERM, early stopping and the tested best
model, head probing with conformal intervals, the export and paper-table
entry points (zero-shot ETTh1 through the engine)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import pandas as pd
import pytest
from safetensors.numpy import load_file

from configs import few_shot
from tests import conftest
from tests import entry_points
from ttm_jax import errors
from ttm_jax import optim
from ttm_jax import schema
from ttm_jax import sharding
from ttm_jax import train
from ttm_jax.data import builders
from ttm_jax.data import pretrain
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.models import ttm
from ttm_jax.train import checkpoints as checkpoints_lib
from ttm_jax.train import snapshots
from ttm_jax.train import state as state_lib
from ttm_jax.train import steps as steps_lib

ROOT = conftest.ROOT
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1, dropout=0.2,
             head_dropout=0.2)


def _losses(devices, steps=20, batch_size=16):
  mesh = sharding.make_mesh(devices)
  model = factory.new_model(config_lib.TTMConfig(**SMALL), jax.random.key(0))
  corpus = pretrain.synthetic_corpora(8, seed=3)[0]
  source = pretrain.corpus_windows(corpus, 64, 16)
  optimizer = optim.make_optimizer(steps, 1e-2)
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  step = steps_lib.make_train_step(model, optimizer, mesh)
  losses = []
  for k in range(steps):
    items = [source[(k * batch_size + i) % len(source)]
             for i in range(batch_size)]
    batch = {key: np.stack([it[key] for it in items]) for key in items[0]}
    state, metrics = step(state, sharding.shard_batch(batch, mesh))
    losses.append(float(metrics['train/loss']))
  return np.array(losses)


def test_one_and_four_devices_agree_for_20_steps():
  assert jax.device_count() >= 4
  one = _losses(jax.devices()[:1])
  four = _losses(jax.devices()[:4])
  np.testing.assert_allclose(four, one, atol=1e-5, rtol=0)
  assert one[-1] < one[0]  # It learns.


def _one_step(batch, frozen=(), clip_norm=1.0):
  mesh = sharding.make_mesh(jax.devices()[:1])
  model = factory.new_model(
      config_lib.TTMConfig(**dict(SMALL, dropout=0.0, head_dropout=0.0)),
      jax.random.key(1))
  optimizer = optim.make_optimizer(10, 1e-2, clip_norm=clip_norm,
                                   frozen=frozen,
                                   params=model.variables['params'])
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  step = steps_lib.make_train_step(model, optimizer, mesh)
  state, metrics = step(state, sharding.shard_batch(batch, mesh))
  return (jax.device_get(state.params), jax.device_get(metrics),
          model.variables, model.module)


def _stack(items):
  return {key: np.stack([it[key] for it in items]) for key in items[0]}


def test_padded_partial_batch_steps_like_the_short_batch():
  # The padded last batch (drop_remainder=False) must update the model as
  # HF's Trainer updates it with the short batch itself.
  corpus = pretrain.synthetic_corpora(8, seed=3)[0]
  source = pretrain.corpus_windows(corpus, 64, 16)
  items = [source[i] for i in (3, 40, 77, 91, 120)]
  short = _stack(items)
  padding = dict(items[0], future_observed_mask=np.zeros_like(
      items[0]['future_observed_mask']))
  padded = _stack(items + [padding] * 3)
  params_short, metrics_short, _, _ = _one_step(short)
  params_padded, metrics_padded, _, _ = _one_step(padded)
  np.testing.assert_allclose(metrics_padded['train/loss'],
                             metrics_short['train/loss'], rtol=1e-6)
  np.testing.assert_allclose(metrics_padded['grad_norm'],
                             metrics_short['grad_norm'], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
               params_padded, params_short)


def test_padding_partial_batches_is_refused_with_batchnorm():
  cfg = schema.resolve(few_shot.get_config('quick=true'))
  assert not cfg.data.drop_remainder and cfg.optim.clip_norm == 1.0
  layer_norm = config_lib.TTMConfig(**SMALL)
  assert builders.drop_remainder(cfg, layer_norm) is False
  batch_norm = config_lib.TTMConfig(**dict(SMALL, norm_mlp='BatchNorm'))
  with pytest.raises(errors.ConfigError, match='drop_remainder=True'):
    builders.drop_remainder(cfg, batch_norm)


def test_frozen_step_reports_trained_gradient_norm():
  corpus = pretrain.synthetic_corpora(8, seed=3)[0]
  source = pretrain.corpus_windows(corpus, 64, 16)
  batch = _stack([source[i] for i in range(8)])
  frozen = ('backbone/.*',)
  params, metrics, variables, module = _one_step(batch, frozen, clip_norm=0)
  config = module.config

  def loss(p):
    return module.apply({'params': p}, **ttm.model_inputs(batch, config)).loss

  grads = jax.grad(loss)(variables['params'])
  trained = {k: v for k, v in grads.items() if k != 'backbone'}
  assert set(grads) - set(trained) == {'backbone'}
  np.testing.assert_allclose(metrics['grad_norm'],
                             float(optax.global_norm(trained)), rtol=1e-5)
  assert float(optax.global_norm(grads['backbone'])) > 0
  jax.tree.map(np.testing.assert_array_equal, params['backbone'],
               jax.device_get(variables['params']['backbone']))


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _run(args, env_extra=None, wait=True):
  """The output of a successful `experiments.train args` (forked from the
  session's entry-point server, tests/entry_points.py, unless it needs
  `env_extra`); with wait=False, the Popen of a process of its own."""
  if wait and not env_extra:
    code, out, err = entry_points.run(['experiments.train'] + list(args))
    assert code == 0, (out + err)[-3000:]
    return out + err
  env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
  env.pop('XLA_FLAGS', None)
  command = [sys.executable, '-m', 'experiments.train'] + args
  process = subprocess.Popen(command, cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
  if not wait:
    return process
  out, _ = process.communicate(timeout=600)
  assert process.returncode == 0, out[-3000:]
  return out


# One short pretraining run shape for the subprocess tests: 40 steps, a
# checkpoint every 5, validation every 6, every loss logged, final (not best)
# parameters exported.
RUN_ARGS = ['--config', 'configs/demo.py:quick=true',
            '--config.num_steps=40', '--config.checkpoint_every_steps=5',
            '--config.eval_every_steps=6', '--config.log_every_steps=1',
            '--config.plot=false', '--config.test_best=false',
            '--config.tensorboard=false']


def _train_losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}


def _params(workdir):
  return load_file(os.path.join(workdir, 'export', 'model.safetensors'))


def _results(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


def _assert_close_records(ours, theirs, atol, path='record'):
  """Nested results records equal: numbers within `atol`, the rest
  exactly (run times aside)."""
  if isinstance(theirs, dict):
    keys = set(theirs) - {'seconds'}
    assert set(ours) - {'seconds'} == keys, path
    for key in keys:
      _assert_close_records(ours[key], theirs[key], atol, f'{path}.{key}')
  elif isinstance(theirs, float):
    assert ours == pytest.approx(theirs, abs=atol, rel=0), path
  else:
    assert ours == theirs, path


def _checkpoint_weights(workdir, step):
  """The reference-format weights of the checkpoint at `step`, restored
  by orbax directly."""
  ckpts = checkpoints_lib.Checkpoints(str(workdir), keep=1, read_only=True)
  try:
    state = ckpts.restore_state(step)
  finally:
    ckpts.close()
  variables = {'params': state['params']}
  for name in ('batch_stats', 'buffers'):
    if state.get(name):
      variables[name] = state[name]
  return checkpoint.to_state_dict(variables)


def _assert_same_weights(ours, expected):
  assert set(ours) == set(expected)
  for key in expected:
    np.testing.assert_array_equal(ours[key], expected[key], err_msg=key)


def _differ(ours, other) -> bool:
  return any(not np.array_equal(ours[k], other[k]) for k in other)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """One process, 4 CPU devices, never stopped: the reference run."""
  workdir = tmp_path_factory.mktemp('uninterrupted')
  _run(RUN_ARGS + ['--workdir', str(workdir), '--cpu_devices=4'])
  return workdir


def _wait_all(procs):
  outs = []
  for p in procs:
    out, _ = p.communicate(timeout=600)
    outs.append((p.returncode, out))
  return outs


def _two_processes(workdir, stop_at=None):
  """Two local processes given only SLURM's environment (no --coordinator
  flags), 2 CPU devices each. With `stop_at`, process 1 alone gets SIGTERM
  once checkpoint `stop_at` exists, and both are started again. Returns
  the (exit code, output) pairs of each start and the checkpoint steps on
  disk after the first."""

  def start():
    slurm = dict(SLURM_JOB_ID='4242', SLURM_STEP_NODELIST='localhost',
                 SLURM_NTASKS='2', JAX_COORDINATOR_PORT=str(_free_port()))
    return [_run(RUN_ARGS + ['--workdir', str(workdir), '--cpu_devices=2'],
                 env_extra=dict(slurm, SLURM_PROCID=str(i),
                                SLURM_LOCALID=str(i)), wait=False)
            for i in range(2)]

  procs, starts, saved = start(), [], None
  if stop_at is not None:
    _wait_for_checkpoint(workdir / 'checkpoints', stop_at)
    os.kill(procs[1].pid, signal.SIGTERM)
    starts.append(_wait_all(procs))
    saved = sorted(int(n) for n in os.listdir(workdir / 'checkpoints')
                   if n.isdigit())
    procs = start()
  starts.append(_wait_all(procs))
  for code, out in starts[-1]:
    assert code == 0, out[-3000:]
  return starts, saved


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory):
  """The two-process run, preempted: SIGTERM to process 1 only after
  checkpoint 10, then both started again to the end."""
  multi = tmp_path_factory.mktemp('multi')
  starts, saved = _two_processes(multi, stop_at=10)
  return multi, starts, saved


def test_two_processes_found_from_slurm_variables_match_one(two_processes,
                                                           uninterrupted):
  """The two processes find each other through JAX's cluster detection;
  2 processes x 2 devices (preempted and resumed) give the losses,
  results and export of 1 x 4 never stopped (gloo CPU collectives)."""
  multi, starts, _ = two_processes
  assert all(any('Cluster detected: process 0 of 2' in out
                 for _, out in outs) for outs in starts)
  a, b = _train_losses(uninterrupted), _train_losses(multi)
  assert sorted(a) == sorted(b) == list(range(1, 41))
  np.testing.assert_allclose([b[k] for k in a], [a[k] for k in a],
                             atol=1e-5, rtol=0)
  # What a user reads: results.json (every number, at the losses'
  # tolerance; the rest equal) and the exported weights.
  ours, theirs = _results(multi), _results(uninterrupted)
  assert len(ours) == len(theirs) == 1
  _assert_close_records(ours[0], theirs[0], atol=1e-5)
  weights, expected = _params(multi), _params(uninterrupted)
  assert set(weights) == set(expected)
  for key in expected:
    np.testing.assert_allclose(weights[key], expected[key], atol=1e-5,
                               rtol=0, err_msg=key)


def test_sigterm_on_one_process_stops_both_at_one_step(two_processes):
  """SIGTERM to process 1 only: both processes agree on a step (orbax's
  reached_preemption), save it and exit 1; rerunning both resumes there
  (the run then matches one process: the test above)."""
  _, (stopped, resumed), saved = two_processes
  said = [re.search(r'checkpoint saved at step (\d+)', out)
          for _, out in stopped]
  assert all(said), [out[-2000:] for _, out in stopped]
  step = int(said[0].group(1))
  assert int(said[1].group(1)) == step and 10 <= step < 40
  assert [code for code, _ in stopped] == [1, 1]
  assert max(saved) == step
  for _, out in resumed:
    assert f'Resumed from step {step}.' in out, out[-3000:]


@pytest.mark.slow
def test_two_processes_resume_bit_identical(two_processes, tmp_path):
  """The preempted two-process run ends bit-identical to a two-process
  run never stopped (a third two-process run: slow)."""
  _two_processes(tmp_path)
  multi, _, _ = two_processes
  assert _train_losses(multi) == _train_losses(tmp_path)
  _assert_same_weights(_params(multi), _params(tmp_path))


def test_explicit_flags_override_the_detected_cluster(monkeypatch):
  """Without flags, JAX's public initialize() detects the cluster itself
  (and where it finds none, its ValueError leaves one process); explicit
  flags are passed through."""
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from experiments import common  # pylint: disable=g-import-not-at-top
  calls = []

  def initialize(**kwargs):
    calls.append(kwargs)
    if not kwargs and 'SLURM_JOB_ID' not in os.environ:
      raise ValueError('coordinator_address should be defined.')

  monkeypatch.setattr(jax.distributed, 'initialize', initialize)
  monkeypatch.setattr(common.compilation, 'use_cpu_cores', lambda *a: 1)
  monkeypatch.setattr(common.compilation, 'enable_persistent_cache',
                      lambda *a: None)
  values = absl_flags.FLAGS
  if not values.is_parsed():
    # Other tests may import entry points whose flags are required (and
    # unset here); this test only needs the flag defaults.
    values.mark_as_parsed()
  monkeypatch.delenv('SLURM_JOB_ID', raising=False)
  common.setup()  # No cluster: one process, no error.
  assert calls == [{}]
  calls.clear()
  monkeypatch.setenv('SLURM_JOB_ID', '7')
  common.setup()
  assert calls == [{}]  # Detected: JAX reads the cluster itself.
  calls.clear()
  monkeypatch.setattr(values, 'coordinator', 'host0:1234')
  monkeypatch.setattr(values, 'num_processes', 2)
  monkeypatch.setattr(values, 'process_id', 1)
  common.setup()
  assert calls == [dict(coordinator_address='host0:1234', num_processes=2,
                        process_id=1)]


def test_export_writes_any_checkpoint_of_the_run(uninterrupted, tmp_path):
  # test_best=false: the run exported its final model, the latest checkpoint.
  assert snapshots.export_run(str(uninterrupted), 'latest',
                              str(tmp_path / 'l')) == 40
  ours = load_file(str(tmp_path / 'l' / 'model.safetensors'))
  run = load_file(str(uninterrupted / 'export' / 'model.safetensors'))
  assert ours.keys() == run.keys()
  for key in run:
    np.testing.assert_array_equal(ours[key], run[key])
  best_step = _results(uninterrupted)[0]['training']['best_step']
  assert snapshots.export_run(str(uninterrupted), 'best',
                              str(tmp_path / 'b')) == best_step
  best = load_file(str(tmp_path / 'b' / 'model.safetensors'))
  _assert_same_weights(best, _checkpoint_weights(uninterrupted, best_step))
  checkpoint.load_pretrained(str(tmp_path / 'b'))
  with pytest.raises(errors.ConfigError, match=r'which=7: no such .*steps'):
    snapshots.export_run(str(uninterrupted), '7', str(tmp_path / 'x'))


def test_export_cli_end_to_end(uninterrupted, tmp_path):
  """`python -m experiments.export` on a finished run: a step's weights
  are that checkpoint's, and a missing step is one clear line, exit 2."""
  command = ['experiments.export', '--workdir', str(uninterrupted)]
  (code, out, err), (bad_code, _, bad_err) = entry_points.run_batch(
      [command + ['--which', '35', '--out', str(tmp_path / 's')],
       command + ['--which', '7', '--out', str(tmp_path / 'x')]])
  assert code == 0, err[-2000:]
  assert f'Exported step 35 of {uninterrupted}' in out
  exported = load_file(str(tmp_path / 's' / 'model.safetensors'))
  _assert_same_weights(exported, _checkpoint_weights(uninterrupted, 35))
  assert _differ(exported, _params(uninterrupted))  # Not step 40's.
  assert (tmp_path / 's' / 'config.json').exists()
  assert bad_code == 2, bad_err[-2000:]
  assert 'which=7: no such checkpoint' in bad_err
  assert 'Traceback' not in bad_err
  assert not (tmp_path / 'x').exists()


def _wait_for_checkpoint(folder, step: int) -> None:
  deadline = time.time() + 300
  while time.time() < deadline:
    steps = [int(n) for n in os.listdir(folder)
             if n.isdigit()] if folder.exists() else []
    if steps and max(steps) >= step:
      return
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint {step} in {folder} after 300 s')


def test_sigterm_then_sigkill_resume_bit_identical(tmp_path, uninterrupted):
  """SLURM's requeue, then a crash, in one run. SIGTERM asks for a
  checkpoint at the current step and exit 1 ('Preempted'); the same
  command resumes there. SIGKILL later loses what was not checkpointed;
  the same command resumes from the last checkpoint. The run ends as the
  one never stopped, bit for bit, each step once in its metrics."""
  work = tmp_path / 'stopped'
  args = RUN_ARGS + ['--workdir', str(work), '--cpu_devices=4']
  process = _run(args, wait=False)
  _wait_for_checkpoint(work / 'checkpoints', 10)
  process.send_signal(signal.SIGTERM)
  out, _ = process.communicate(timeout=600)
  assert process.returncode == 1, out[-3000:]
  said = re.search(r'Preempted \(SIGTERM\): checkpoint saved at step (\d+)',
                   out)
  assert said, out[-3000:]
  step = int(said.group(1))
  assert 10 <= step < 30  # The next step or so: room left for a crash.
  # Forced: saved at once, whatever the checkpoint cadence (every 5).
  saved = [int(n) for n in os.listdir(work / 'checkpoints') if n.isdigit()]
  assert max(saved) == step
  assert not (work / 'export').exists()
  assert max(_train_losses(work)) == step  # Its metrics are on disk with it.
  process = _run(args, wait=False)  # Resumed, then killed 5+ steps later.
  _wait_for_checkpoint(work / 'checkpoints', step + 5)
  os.kill(process.pid, signal.SIGKILL)
  out, _ = process.communicate()
  assert f'Resumed from step {step}.' in out
  assert not (work / 'export').exists()  # It really died mid-run.
  out = _run(args)
  assert 'Resumed from step' in out
  steps = [json.loads(line)['step'] for line in
           (work / 'metrics.jsonl').read_text().splitlines()]
  assert steps == sorted(set(steps)) and steps[-1] == 40
  assert len((work / 'runs.jsonl').read_text().splitlines()) == 3
  assert _train_losses(work) == _train_losses(uninterrupted)
  _assert_same_weights(_params(work), _params(uninterrupted))


def _probe_config(tmp_path, **changes):
  """Head probing of a small new model on a 3-channel CSV: the few-shot
  recipe, quick."""
  config = config_lib.TTMConfig(**SMALL)
  if not (tmp_path / 'init').exists():
    variables = checkpoint.init_variables(config, jax.random.key(5))
    checkpoint.save_pretrained(str(tmp_path / 'init'), config, variables)
    _write_csv(tmp_path / 'data.csv')
  cfg = few_shot.get_config(
      'quick=true,context=64,horizon=16,data=mine,fraction=1.0')
  with cfg.unlocked():
    cfg.checkpoint = str(tmp_path / 'init')
    cfg.data.kind = 'csv'
    cfg.data.path = str(tmp_path / 'data.csv')
    cfg.data.timestamp_column = 'date'
    cfg.data.target_columns = ()
    cfg.data.batch_size = 8
    cfg.tensorboard = False
    cfg.plot = False
    for key, value in changes.items():
      cfg[key] = value
  return cfg


def test_early_stopping_with_patience_1_tests_the_best_step(tmp_path):
  """Validation after every step at a high learning rate: its curve
  rises again early. With patience 1 the run stops at the first
  evaluation that is no better than the best before it, and the tested
  (exported) parameters are the best step's, not the final step's."""
  cfg = _probe_config(tmp_path, num_steps=20, eval_every_steps=1,
                      checkpoint_every_steps=100, early_stopping_patience=1,
                      test_best=True, frozen=())
  cfg.optim.lr = 1e-2
  run = tmp_path / 'run'
  train.train_and_evaluate(cfg, str(run))
  curve = [(r['step'], r['val/mse']) for r in map(
      json.loads, (run / 'metrics.jsonl').read_text().splitlines())
           if 'val/mse' in r]
  # By hand: the first evaluation not below the best before it.
  best_step, best, stop = None, np.inf, None
  for step, value in curve:
    if value < best:
      best_step, best = step, value
    else:
      stop = step
      break
  assert stop is not None and stop < 20, curve  # The curve did rise.
  assert [s for s, _ in curve] == list(range(1, stop + 1))  # Then none.
  training = _results(run)[0]['training']
  assert training['steps'] == stop
  assert training['early_stopped'] is True
  assert training['best_step'] == best_step
  assert training['best_val_mse'] == best
  assert training['tested'] == 'best'
  exported = _params(run)
  _assert_same_weights(exported, _checkpoint_weights(run, best_step))
  assert _differ(exported, _checkpoint_weights(run, stop))


def _write_csv(path, rows=400, channels=3):
  rng = np.random.default_rng(0)
  t = np.arange(rows)
  data = {'date': pd.date_range('2022-01-01', periods=rows, freq='h')}
  for k in range(channels):
    data[f'x{k}'] = np.sin(2 * np.pi * t / 24 + k) + 0.1 * rng.normal(
        size=rows) + 0.01 * t
  pd.DataFrame(data).to_csv(path, index=False)


def test_head_probing_leaves_backbone_bit_identical(tmp_path):
  cfg = _probe_config(tmp_path, num_steps=6, test_best=False)
  with cfg.unlocked():
    cfg.optim.lr_finder.enabled = True  # A short sweep, then training.
    cfg.optim.lr_finder.num_iter = 5
    cfg.evals.test_conformal = dict(type='conformal', calibrate='valid',
                                    score='test', final=True,
                                    compare=('seasonal_naive',))
  train.train_and_evaluate(cfg, str(tmp_path / 'run'))
  before = load_file(str(tmp_path / 'init' / 'model.safetensors'))
  after = _params(tmp_path / 'run')
  backbone = [k for k in before if k.startswith('backbone.')]
  assert backbone
  for key in backbone:
    np.testing.assert_array_equal(after[key], before[key], err_msg=key)
  changed = [k for k in before if not k.startswith('backbone.')
             and not np.array_equal(after[k], before[k])]
  assert changed  # The decoder and head did train.
  results = json.load(open(tmp_path / 'run' / 'results.json'))
  assert [r['evaluation'] for r in results] == ['test', 'test_conformal']
  record = results[1]
  assert record['split'] == 'test' and record['num_windows'] > 0
  assert record['num_windows'] == results[0]['num_windows']
  assert record['mse'] == results[0]['mse']  # The same point forecasts.
  # Conformal intervals around the point model, seasonal naive beside.
  assert record['intervals'] == 'conformal'
  assert record['conformal_windows'] > 0
  for key in ('wql', 'msis', 'coverage_80', 'mase'):
    assert np.isfinite(record[key]) and key in record['seasonal_naive']
  # The 80% and 40% coverages by hand: thresholds of the validation
  # windows' absolute errors (conformal rank ceil((n + 1)(1 - alpha))),
  # per horizon step and channel, around the exported model's forecasts.
  data = builders.build_data(schema.resolve(cfg))
  _, module, variables = checkpoint.load_pretrained(
      str(tmp_path / 'run' / 'export'))

  def errors_of(source):
    items = _stack([source[i] for i in range(len(source))])
    out = module.apply(variables, **ttm.model_inputs(items, module.config))
    return items['future_values'] - np.asarray(out.prediction_outputs)

  calibration, scored = errors_of(data.valid), errors_of(data.test)
  assert record['conformal_windows'] == len(calibration)
  for label, alpha in (('80', 0.2), ('40', 0.6)):
    rank = int(np.ceil((len(calibration) + 1) * (1 - alpha)))
    threshold = np.sort(np.abs(calibration), axis=0)[rank - 1]
    inside = np.abs(scored) <= threshold + 1e-6
    assert record[f'coverage_{label}'] == pytest.approx(
        inside.mean(), abs=0.5 / scored.size), label


def test_paper_table_zero_shot_etth1_end_to_end(tmp_path):
  """`python -m experiments.paper_table` on the real r2 512-96 checkpoint:
  the zero-shot ETTh1 cell runs through the engine (IBM's 0.363 over
  2785 test windows), its row is that cell's results.json record beside
  IBM's figure, and a dataset whose file is absent is listed as skipped."""
  ckpt = conftest.require_checkpoint('fraware__ChronoAPI__root')
  conftest.require_data('ltsf', 'ETTh1.csv')
  data = os.path.join(conftest.SHARED, 'data', 'ltsf')
  assert not os.path.exists(os.path.join(data, 'weather.csv'))
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.paper_table', '--workdir',
       str(tmp_path), '--data_dir', data, '--checkpoint', ckpt, '--modes',
       'zs', '--datasets', 'etth1,weather'], cwd=ROOT, env=env,
      capture_output=True, text=True, timeout=900)
  assert done.returncode == 0, done.stderr[-3000:]
  table = json.loads((tmp_path / 'table.json').read_text())
  assert table['skipped'] == ['weather']
  (row,) = table['rows']
  (record,) = _results(tmp_path / 'etth1_zs')
  assert record['num_windows'] == row['num_windows'] == 2785
  assert abs(record['mse'] - 0.363) <= 0.002, record
  assert (row['dataset'], row['setting'], row['ibm']) == ('etth1', 'zs',
                                                          0.363)
  assert row['mse'] == record['mse'] and row['mae'] == record['mae']
  assert row['diff'] == pytest.approx(record['mse'] - 0.363)
  markdown = (tmp_path / 'table.md').read_text()
  assert (f"| etth1 | zero-shot | {record['mse']:.4f} | 0.363 | "
          f"{record['mse'] - 0.363:+.4f} | 2785 |") in markdown
  assert 'Skipped (data file absent): weather.' in markdown
  with open(tmp_path / 'table.csv') as f:
    assert next(iter(pd.read_csv(f).itertuples())).dataset == 'etth1'
