"""The training loop's hooks (ttm_jax/train/hooks.py) on fake state,
metrics, writers and checkpoints, no model: the steps each hook is due at
(every N, the first and last step, a new best, preemption, a profile
window), what it does there and in what order, what `end` and `close` do,
and the order `loop._hooks` gives the loop. The profiler is faked except
in one test that traces a tiny computation for real."""

import glob
import math
import os
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.train import hooks as hooks_lib
from ttm_jax.train import loop


class Events:
  """One list of what the fakes were asked to do, in order."""

  def __init__(self):
    self.log = []

  def add(self, *event):
    self.log.append(event)

  def of(self, kind):
    return [e[1:] for e in self.log if e[0] == kind]


class FakeWriter:

  def __init__(self, events):
    self.events = events

  def write(self, step, metrics):
    self.events.add('write', step, {k: float(v) for k, v in metrics.items()})

  def flush(self):
    self.events.add('writer.flush')


class FakeProgress:

  def __init__(self, events):
    self.events = events

  def update(self, step, metrics=None):
    self.events.add('progress', step)

  def write(self, line):
    self.events.add('say', line)


class FakeCheckpoints:

  def __init__(self, events):
    self.events = events

  def save(self, state, iterator, record, best=None):
    self.events.add('save', state, dict(record), best)

  def wait(self):
    self.events.add('wait')


def _due(hook, steps):
  return [s for s in steps if hook.due(s)]


def _selection(patience=0):
  return hooks_lib.Selection.fresh(1e-3, 'val', 'mse', patience)


# -------------------------------------------------------------- selection
def test_selection_keeps_the_best_and_counts_bad_evaluations():
  selection = _selection(patience=2)
  seen = []
  for step, value in [(2, 0.5), (4, 0.4), (6, 0.45), (8, 0.3), (10, 0.3),
                      (12, 0.31)]:
    selection.update(step, value)
    r = selection.record
    seen.append((r['best_step'], r['best_val'], r['bad_evals'],
                 selection.stopped, selection.improved_at))
  # By hand: a tie is no improvement; the second bad evaluation in a row
  # stops (patience 2); improved_at stays at the latest new best.
  assert seen == [(2, 0.5, 0, False, 2), (4, 0.4, 0, False, 4),
                  (4, 0.4, 1, False, 4), (8, 0.3, 0, False, 8),
                  (8, 0.3, 1, False, 8), (8, 0.3, 2, True, 8)]
  assert selection.summary() == {'best_step': 8, 'best_val_mse': 0.3,
                                 'early_stopped': True}


def test_selection_with_patience_0_never_stops():
  selection = _selection(patience=0)
  for step in range(1, 20):
    selection.update(step, float(step))  # Worse every time.
  assert selection.record['bad_evals'] == 18
  assert not selection.stopped


# -------------------------------------------------------------------- log
def test_log_hook_writes_one_step_late_every_n_and_the_first_step():
  events = Events()
  hook = hooks_lib.LogHook(FakeWriter(events), every=3, first=1,
                           progress=FakeProgress(events))
  assert _due(hook, range(1, 8)) == list(range(1, 8))  # Carries each step.
  for step in range(1, 8):
    hook(step, None, {'train/loss': np.float32(step / 10)})
    if step == 4:  # Step 3's line is written once step 4 has run.
      assert [s for s, _ in events.of('write')] == [1, 3]
  assert [s for s, _ in events.of('write')] == [1, 3, 6]
  assert events.of('progress') == [(s,) for s in range(1, 7)]
  hook.end(7, None)  # The last step is written whatever the cadence.
  written = events.of('write')
  assert [s for s, _ in written] == [1, 3, 6, 7]
  assert [m['train/loss'] for _, m in written] == pytest.approx(
      [0.1, 0.3, 0.6, 0.7])
  hook.end(7, None)
  assert len(events.of('write')) == 4  # Nothing pending: nothing more.


def test_log_hook_first_step_of_a_resumed_run():
  events = Events()
  hook = hooks_lib.LogHook(FakeWriter(events), every=10, first=8,
                           progress=FakeProgress(events))
  for step in range(8, 13):
    hook(step, None, {'train/loss': 1.0})
  assert [s for s, _ in events.of('write')] == [8, 10]


def test_log_hook_flush_writes_the_pending_step_only_when_due():
  events = Events()
  hook = hooks_lib.LogHook(FakeWriter(events), every=5, first=1,
                           progress=FakeProgress(events))
  for step in range(1, 5):
    hook(step, None, {'train/loss': 1.0})
  hook.flush()  # Step 4 is pending and not due: it stays pending.
  assert [s for s, _ in events.of('write')] == [1]
  hook(5, None, {'train/loss': 1.0})
  hook.flush()  # Step 5 is due: written before a checkpoint would be.
  assert [s for s, _ in events.of('write')] == [1, 5]


# ------------------------------------------------------------------- eval
class FakeEvaluator:

  def __init__(self, name, values, every_steps=0):
    self.name, self.values, self.every_steps = name, list(values), every_steps
    self.ran = []

  def run(self, variables):
    self.ran.append(variables)
    return self.values.pop(0)


def _eval_hook(events, evaluator, selection, every=4, last=10):
  return hooks_lib.EvalHook(evaluator, every, last, FakeWriter(events),
                            selection, FakeProgress(events))


def test_eval_hook_is_due_every_n_and_at_the_last_step():
  hook = _eval_hook(Events(), FakeEvaluator('val', []), _selection())
  assert _due(hook, range(1, 11)) == [4, 8, 10]
  every_step = _eval_hook(Events(), FakeEvaluator('val', []), _selection(),
                          every=1, last=3)
  assert _due(every_step, range(1, 4)) == [1, 2, 3]


def test_eval_hook_logs_floats_under_its_name_and_updates_selection():
  events = Events()
  selection = _selection(patience=1)
  evaluator = FakeEvaluator('val', [
      {'mse': 0.5, 'mae': 0.6, 'num_windows': 12},
      {'mse': 0.7, 'mae': 0.4, 'num_windows': 12}])
  hook = _eval_hook(events, evaluator, selection)
  state = types.SimpleNamespace(variables={'params': 'p'})
  hook(4, state, {'train/loss': 1.0})
  hook(8, state, {'train/loss': 1.0})
  assert evaluator.ran == [{'params': 'p'}] * 2
  # Only float metrics, each as <evaluation>/<metric>.
  assert events.of('write') == [(4, {'val/mse': 0.5, 'val/mae': 0.6}),
                                (8, {'val/mse': 0.7, 'val/mae': 0.4})]
  assert selection.record['best_step'] == 4
  assert selection.stopped  # Patience 1: the first worse value stops.
  lines = [line for (line,) in events.of('say')]
  assert lines[0] == 'step 4/10: val mse 0.50000 (best 0.50000 at 4)'
  assert lines[1].endswith('(best 0.50000 at 4) early stop')


def test_eval_hook_of_another_evaluation_leaves_selection_alone():
  events = Events()
  selection = _selection(patience=1)
  hook = _eval_hook(events, FakeEvaluator('test', [{'mse': 0.1}]), selection)
  hook(4, types.SimpleNamespace(variables={}), {})
  assert events.of('write') == [(4, {'test/mse': 0.1})]
  assert selection.record['best_step'] is None
  assert selection.improved_at is None


# ------------------------------------------------------------- checkpoint
def _checkpoint_hook(events, selection, every=5):
  writer = FakeWriter(events)
  log = hooks_lib.LogHook(writer, every=1, first=1,
                          progress=FakeProgress(events))
  return hooks_lib.CheckpointHook(FakeCheckpoints(events), every, 'iterator',
                                  selection, log, writer), log


def test_checkpoint_hook_is_due_every_n_and_at_a_new_best():
  selection = _selection()
  hook, _ = _checkpoint_hook(Events(), selection)
  assert _due(hook, range(1, 13)) == [5, 10]
  selection.update(7, 0.3)
  assert _due(hook, range(1, 13)) == [5, 7, 10]


def test_checkpoint_hook_writes_metrics_first_and_saves_best_as_best():
  events = Events()
  selection = _selection()
  hook, log = _checkpoint_hook(events, selection)
  log(5, None, {'train/loss': 0.25})
  hook(5, 'state5', {'train/loss': 0.25})
  selection.update(7, 0.3)
  hook(7, 'state7', {'train/loss': 0.2})
  kinds = [e[0] for e in events.log if e[0] != 'progress']
  # The step's metrics reach the writer, the writer reaches disk, then
  # the checkpoint.
  assert kinds == ['write', 'writer.flush', 'save', 'writer.flush', 'save']
  saves = events.of('save')
  assert [(s[0], s[2]) for s in saves] == [('state5', None), ('state7', 0.3)]
  assert saves[1][1]['best_step'] == 7


@pytest.mark.parametrize('loss', [math.nan, math.inf])
def test_checkpoint_hook_never_saves_a_diverged_state(loss):
  events = Events()
  hook, _ = _checkpoint_hook(events, _selection())
  with pytest.raises(errors.TrainingDiverged, match='at step 5'):
    hook(5, 'state', {'train/loss': np.float32(loss)})
  assert not events.of('save')


def test_checkpoint_hook_end_writes_the_last_step_then_saves():
  events = Events()
  selection = _selection()
  hook, log = _checkpoint_hook(events, selection)
  log(3, None, {'train/loss': 0.5})  # Pending: logged one step late.
  hook.end(3, 'final')
  kinds = [e[0] for e in events.log if e[0] != 'progress']
  assert kinds == ['write', 'writer.flush', 'save']
  assert events.of('write') == [(3, {'train/loss': 0.5})]
  assert events.of('save')[0][0] == 'final'
  assert events.of('save')[0][2] is None  # Not marked as the best.


# ------------------------------------------------------------- preemption
def test_preemption_hook_saves_waits_and_exits():
  events = Events()
  asked = []
  preemption = types.SimpleNamespace(
      reached=lambda step: asked.append(step) or step >= 6)
  save, _ = _checkpoint_hook(events, _selection())
  hook = hooks_lib.PreemptionHook(preemption, save)
  assert _due(hook, range(1, 9)) == [6, 7, 8]
  assert asked == list(range(1, 9))
  with pytest.raises(hooks_lib.Preempted, match='saved at step 6') as raised:
    hook(6, 'state6', {'train/loss': 0.1})
  assert isinstance(raised.value, SystemExit)
  assert [e[0] for e in events.log][-2:] == ['save', 'wait']


# ---------------------------------------------------------- run_due, end
class Recorder(hooks_lib.Hook):

  def __init__(self, name, every, events):
    self.name, self.every, self.events = name, every, events

  def due(self, step):
    return step % self.every == 0

  def __call__(self, step, state, metrics):
    self.events.add('call', self.name, step)

  def begin(self, step, state):
    self.events.add('begin', self.name, step)

  def end(self, step, state):
    self.events.add('end', self.name, step)

  def close(self):
    self.events.add('close', self.name)


def test_run_due_runs_the_due_hooks_in_list_order():
  events = Events()
  hooks = [Recorder('a', 2, events), Recorder('b', 3, events),
           Recorder('c', 1, events)]
  for step in range(1, 7):
    hooks_lib.run_due(hooks, step, None, {})
  assert events.of('call') == [
      ('c', 1), ('a', 2), ('c', 2), ('b', 3), ('c', 3), ('a', 4), ('c', 4),
      ('c', 5), ('a', 6), ('b', 6), ('c', 6)]
  hooks_lib.begin_all(hooks, 0, None)
  hooks_lib.end_all(hooks, 6, None)
  hooks_lib.close_all(hooks)
  assert events.of('begin') == [('a', 0), ('b', 0), ('c', 0)]
  assert events.of('end') == [('a', 6), ('b', 6), ('c', 6)]
  assert events.of('close') == [('a',), ('b',), ('c',)]


def test_base_hook_begin_end_close_do_nothing():
  hook = hooks_lib.Hook()
  assert hook.begin(0, None) is None
  assert hook.end(1, None) is None
  assert hook.close() is None
  with pytest.raises(NotImplementedError):
    hook.due(1)


def _loop_inputs(tmp_path, profile_steps=(), evals=None):
  """What loop._hooks reads of a run, faked."""
  config = ml_collections.ConfigDict(dict(profile=dict(
      steps=profile_steps, perfetto=False)))
  evals = evals or {}
  run = types.SimpleNamespace(config=config, evals=evals,
                              writer=FakeWriter(Events()),
                              workdir=str(tmp_path))
  plan = loop.Plan(steps_per_epoch=10, total_steps=30, eval_every=10,
                   log_every=5, checkpoint_every=15)
  return run, plan


def test_loop_orders_log_evaluations_checkpoint_preemption_profile(tmp_path):
  evals = {'val': FakeEvaluator('val', [], every_steps=0),
           'test': FakeEvaluator('test', [], every_steps=-1),
           'often': FakeEvaluator('often', [], every_steps=3)}
  run, plan = _loop_inputs(tmp_path, (4, 6), evals)
  hooks = loop._hooks(run, plan, FakeCheckpoints(Events()), _selection(),
                      'iterator', types.SimpleNamespace(reached=bool),
                      FakeProgress(Events()), start=0)
  assert [type(h).__name__ for h in hooks] == [
      'LogHook', 'EvalHook', 'EvalHook', 'CheckpointHook', 'PreemptionHook',
      'ProfileHook']
  # 'test' never runs during training; every_steps 0 is the plan's cadence.
  assert [(h.evaluator.name, h.every, h.last) for h in hooks[1:3]] == [
      ('val', 10, 30), ('often', 3, 30)]
  assert hooks[3].every == 15
  assert hooks[1].selection is hooks[3].selection
  assert hooks[4].save is hooks[3]  # Preemption saves through it.
  profile = hooks[5]
  assert (profile.folder, profile.start, profile.stop) == (
      os.path.join(str(tmp_path), 'profile'), 4, 6)
  assert hooks[0].logger.first == 1  # The run's first step.


def test_loop_adds_no_profile_hook_without_the_option(tmp_path):
  run, plan = _loop_inputs(tmp_path)
  hooks = loop._hooks(run, plan, FakeCheckpoints(Events()), _selection(),
                      'iterator', types.SimpleNamespace(reached=bool),
                      FakeProgress(Events()), start=20)
  assert [type(h).__name__ for h in hooks] == [
      'LogHook', 'CheckpointHook', 'PreemptionHook']
  assert hooks[0].logger.first == 21  # A resumed run's first step.


# ---------------------------------------------------------------- profile
@pytest.fixture
def profiler(monkeypatch):
  """jax.profiler and block_until_ready, recorded instead of run."""
  events = Events()
  monkeypatch.setattr(jax.profiler, 'start_trace',
                      lambda folder, create_perfetto_trace=False: events.add(
                          'start', folder, create_perfetto_trace))
  monkeypatch.setattr(jax.profiler, 'stop_trace',
                      lambda: events.add('stop'))
  monkeypatch.setattr(jax, 'block_until_ready',
                      lambda outputs: events.add('block', outputs))
  return events


def _drive(hook, events, first, last, fail_at=None):
  """The loop of `loop.fit` over steps first..last (the restored step is
  first - 1): the train step is an event, its outputs ('state<k>',
  {'loss': k})."""
  step = first - 1
  state = f'state{step}'
  try:
    hooks_lib.begin_all([hook], step, state)
    while step < last:
      step += 1
      if step == fail_at:
        raise RuntimeError('the step failed')
      events.add('step', step)
      state, metrics = f'state{step}', {'loss': step}
      hooks_lib.run_due([hook], step, state, metrics)
    hooks_lib.end_all([hook], step, state)
  finally:
    hooks_lib.close_all([hook])


def _profile_hook(tmp_path, start, stop, events, perfetto=False,
                  enabled=True):
  return hooks_lib.ProfileHook(str(tmp_path / 'profile'), start, stop,
                               perfetto=perfetto, enabled=enabled,
                               progress=FakeProgress(events))


def _story(events):
  """The profiler's calls among the steps, without the messages."""
  return [e for e in events.log if e[0] != 'say']


def test_profile_hook_is_due_before_start_and_at_the_last_step(tmp_path):
  hook = _profile_hook(tmp_path, 3, 6, Events())
  assert _due(hook, range(0, 12)) == [2, 5]
  off = _profile_hook(tmp_path, 3, 6, Events(), enabled=False)
  assert _due(off, range(0, 12)) == []


def test_profile_hook_traces_exactly_the_window(tmp_path, profiler):
  hook = _profile_hook(tmp_path, 3, 6, profiler, perfetto=True)
  _drive(hook, profiler, 1, 8)
  folder = str(tmp_path / 'profile')
  assert _story(profiler) == [
      ('step', 1), ('step', 2),
      ('block', ('state2', {'loss': 2})),  # Step 2's work stays out.
      ('start', folder, True),
      ('step', 3), ('step', 4), ('step', 5),
      ('block', ('state5', {'loss': 5})),  # Step 5's work is in.
      ('stop',),
      ('step', 6), ('step', 7), ('step', 8)]
  assert hook.traced == (3, 5) and not hook.tracing
  assert os.path.isdir(folder)
  lines = [line for (line,) in profiler.of('say')]
  assert lines == [f'Profiling steps 3 to 5 into {folder}.',
                   f'Trace of steps 3 to 5 written to {folder}.']


def test_profile_hook_from_the_first_step_starts_at_begin(tmp_path,
                                                          profiler):
  hook = _profile_hook(tmp_path, 1, 3, profiler)
  _drive(hook, profiler, 1, 4)
  assert _story(profiler) == [
      ('block', 'state0'), ('start', str(tmp_path / 'profile'), False),
      ('step', 1), ('step', 2), ('block', ('state2', {'loss': 2})),
      ('stop',), ('step', 3), ('step', 4)]
  assert hook.traced == (1, 2)


def test_profile_hook_resumed_inside_the_window_traces_the_rest(tmp_path,
                                                                 profiler):
  hook = _profile_hook(tmp_path, 3, 7, profiler)
  _drive(hook, profiler, 5, 8)  # Restored at step 4.
  assert _story(profiler)[:3] == [
      ('block', 'state4'), ('start', str(tmp_path / 'profile'), False),
      ('step', 5)]
  assert hook.traced == (5, 6)


def test_profile_hook_resumed_past_the_window_traces_nothing(tmp_path,
                                                             profiler):
  hook = _profile_hook(tmp_path, 3, 6, profiler)
  _drive(hook, profiler, 6, 9)  # Restored at step 5, the last traced one.
  assert not profiler.of('start') and not profiler.of('stop')
  assert hook.traced is None
  assert not profiler.of('say')  # Not a run that ended too early.


def test_profile_hook_run_ending_inside_the_window_stops_at_end(tmp_path,
                                                                profiler):
  hook = _profile_hook(tmp_path, 3, 10, profiler)
  _drive(hook, profiler, 1, 4)  # The run ends (or stops early) at step 4.
  assert _story(profiler)[-3:] == [('step', 4), ('block', 'state4'),
                                   ('stop',)]
  assert hook.traced == (3, 4) and not hook.tracing


def test_profile_hook_run_ending_before_the_window_says_so(tmp_path,
                                                           profiler):
  hook = _profile_hook(tmp_path, 5, 8, profiler)
  _drive(hook, profiler, 1, 2)
  assert not profiler.of('start') and not profiler.of('stop')
  assert profiler.of('say') == [(
      'The run ended at step 2, before the profiled steps 5 to 7: nothing '
      'traced.',)]
  assert not os.path.exists(tmp_path / 'profile')


def test_profile_hook_run_ending_just_before_the_window(tmp_path, profiler):
  # Started after step 2's hooks, but step 3 never runs (early stop).
  hook = _profile_hook(tmp_path, 3, 6, profiler)
  _drive(hook, profiler, 1, 2)
  assert [e[0] for e in _story(profiler)] == [
      'step', 'step', 'block', 'start', 'block', 'stop']
  assert profiler.of('say')[-1][0].startswith(
      'Trace of no step (the run ended at step 2)')


def test_profile_hook_error_inside_the_window_still_stops(tmp_path,
                                                          profiler):
  hook = _profile_hook(tmp_path, 2, 6, profiler)
  with pytest.raises(RuntimeError, match='the step failed'):
    _drive(hook, profiler, 1, 8, fail_at=4)
  # No wait on a failed step's outputs; the trace so far is written.
  assert _story(profiler)[-3:] == [('step', 2), ('step', 3), ('stop',)]
  assert hook.traced == (2, None) and not hook.tracing


def test_profile_hook_on_another_process_does_nothing(tmp_path, profiler):
  hook = _profile_hook(tmp_path, 1, 3, profiler, enabled=False)
  _drive(hook, profiler, 1, 4)
  assert _story(profiler) == [('step', k) for k in range(1, 5)]
  assert not profiler.of('say')


def test_profile_hook_writes_a_real_trace_and_frees_the_profiler(tmp_path):
  """The real jax.profiler: a trace cut by an error is written by `close`,
  and the next trace in the same process can start."""
  double = jax.jit(lambda x: x * 2)
  for name, fail_at in (('cut', 2), ('whole', None)):
    hook = hooks_lib.ProfileHook(str(tmp_path / name), 1, 3, enabled=True)
    step, x = 0, jnp.ones(4)
    try:
      hook.begin(step, x)
      while step < 3:
        step += 1
        if step == fail_at:
          raise RuntimeError('failed')
        x = double(x)
        if hook.due(step):
          hook(step, x, {})
      hook.end(step, x)
    except RuntimeError:
      pass
    finally:
      hook.close()
    traces = glob.glob(str(tmp_path / name / 'plugins' / 'profile' / '*' /
                           '*.xplane.pb'))
    assert len(traces) == 1, (name, traces)
  np.testing.assert_array_equal(x, np.full(4, 8.0))
