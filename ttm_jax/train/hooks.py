"""The periodic actions of the training loop (the Flax examples' and
levanter's hooks): after each step, every hook that is due runs, in order:
log, evaluate and select, checkpoint, preemption, profile.

A hook has `due(step)` and `__call__(step, state, metrics)`; `begin(step,
state)` before the first step, `end(step, state)` when the loop ends, and
`close()` always after it (also when a step or a hook raised). Decisions
that stop the run are the same on every process: evaluation results are
replicated (so early stopping agrees) and preemption is agreed through
orbax.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, Mapping, Optional

import jax

from ttm_jax.train import checkpoints as checkpoints_lib
from ttm_jax.runs import divergence
from ttm_jax.runs import metric_writer

_LOG = logging.getLogger(__name__)


class Hook:
  """A periodic action: runs after the steps where `due` holds."""

  def due(self, step: int) -> bool:
    raise NotImplementedError

  def __call__(self, step: int, state, metrics: Mapping[str, Any]) -> None:
    raise NotImplementedError

  def begin(self, step: int, state) -> None:
    """Before the loop's first step; `step` is the last step done (the
    restored one, or 0)."""

  def end(self, step: int, state) -> None:
    """When the loop ends (last step or early stop)."""

  def close(self) -> None:
    """After `end`, or after an error (a failed step, a diverged loss,
    preemption): releases what the hook holds."""


class Selection:
  """The best model and early stopping, by one evaluation's metric (lower
  is better). Its `record` (learning rate, best, patience count) is saved
  with every checkpoint; `improved_at` is the step of the latest new best
  (the checkpoint hook saves that step as the best)."""

  def __init__(self, record: Dict[str, Any], evaluation: str, metric: str,
               patience: int):
    self.record, self.patience = record, patience
    self.evaluation, self.metric = evaluation, metric
    self.improved_at: Optional[int] = None

  @classmethod
  def fresh(cls, learning_rate: float, evaluation: str, metric: str,
            patience: int) -> 'Selection':
    return cls(dict(learning_rate=learning_rate, best_val=None,
                    best_step=None, bad_evals=0, stopped=False), evaluation,
               metric, patience)

  @property
  def stopped(self) -> bool:
    return self.record['stopped']

  def update(self, step: int, value: float) -> None:
    r = self.record
    if r['best_val'] is None or value < r['best_val']:
      r.update(best_val=value, best_step=step, bad_evals=0)
      self.improved_at = step
      return
    r['bad_evals'] += 1
    r['stopped'] = bool(self.patience and r['bad_evals'] >= self.patience)

  def summary(self) -> Dict[str, Any]:
    r = self.record
    return {'best_step': r['best_step'],
            f'best_{self.evaluation}_{self.metric}': r['best_val'],
            'early_stopped': bool(r['stopped'])}


class LogHook(Hook):
  """Training metrics one step late (the loop never waits on the device),
  written every `every` steps and at the first step; the progress bar."""

  def __init__(self, writer, every: int, first: int, progress):
    self.logger = metric_writer.DelayedLogger(writer, every, first)
    self.progress = progress

  def due(self, step):
    return True  # Carries every step's metrics to the next.

  def __call__(self, step, state, metrics):
    self.logger.log(step, metrics, self.progress)

  def flush(self) -> None:
    """Writes what is pending (before a checkpoint: its metrics first)."""
    self.logger.flush(self.progress, force=False)

  def end(self, step, state):
    self.logger.flush(self.progress)


@dataclasses.dataclass
class EvalHook(Hook):
  """One evaluation during training, logged as `<name>/<metric>`; the
  selection's evaluation also updates the best model and early stopping."""
  evaluator: Any
  every: int
  last: int
  writer: Any
  selection: Selection
  progress: Any

  def due(self, step):
    return step % self.every == 0 or step == self.last

  def __call__(self, step, state, metrics):
    del metrics
    name = self.evaluator.name
    values = self.evaluator.run(state.variables)
    self.writer.write(step, {f'{name}/{k}': v for k, v in values.items()
                             if isinstance(v, float)})
    selection = self.selection
    line = f'{name} ' + ' '.join(f'{k} {v:.5f}' for k, v in values.items()
                                 if isinstance(v, float))
    if name == selection.evaluation:
      selection.update(step, values[selection.metric])
      r = selection.record
      line = (f'{name} {selection.metric} {values[selection.metric]:.5f} '
              f'(best {r["best_val"]:.5f} at {r["best_step"]})'
              + (' early stop' if selection.stopped else ''))
    self.progress.write(f'step {step}/{self.last}: {line}')


@dataclasses.dataclass
class CheckpointHook(Hook):
  """Saves the state, the data iterator's position and the selection
  record every `every` steps and at each new best (then as the best),
  after the step's metrics are on disk; never a diverged state."""
  checkpoints: checkpoints_lib.Checkpoints
  every: int
  iterator: Any
  selection: Selection
  log: LogHook
  writer: Any

  def due(self, step):
    return step % self.every == 0 or self.selection.improved_at == step

  def __call__(self, step, state, metrics):
    self.log.flush()
    self.writer.flush()
    divergence.check_finite(step, {'train/loss': metrics['train/loss']})
    best = self.selection.improved_at == step
    self.checkpoints.save(state, self.iterator, self.selection.record,
                          self.selection.record['best_val'] if best else None)

  def end(self, step, state):
    self.log.flush()
    self.writer.flush()
    self.checkpoints.save(state, self.iterator, self.selection.record)


class Preempted(SystemExit):
  pass


@dataclasses.dataclass
class PreemptionHook(Hook):
  """On SIGTERM (agreed by every process): a checkpoint, then exit."""
  preemption: checkpoints_lib.Preemption
  save: CheckpointHook

  def due(self, step):
    return self.preemption.reached(step)

  def __call__(self, step, state, metrics):
    self.save(step, state, metrics)
    self.save.checkpoints.wait()
    raise Preempted('Preempted (SIGTERM): checkpoint saved at step '
                    f'{step}; rerun the same command to resume.')


class ProfileHook(Hook):
  """Traces steps `start` to `stop - 1` with `jax.profiler` into `folder`
  (`plugins/profile/<time>/<host>.xplane.pb`, which XProf, TensorBoard's
  profile plugin and Perfetto read: benchmarks/PROFILING.md).

  The trace starts before step `start` runs (after the hooks of step
  `start - 1`, or at `begin` when that is the first step to run; a resumed
  run past `start` traces the rest of the window) and stops after the
  hooks of step `stop - 1`, so each traced step holds its own hooks too.
  It waits for the device before starting and before stopping, so the
  trace holds exactly the traced steps' device work. A run that ends
  inside the window stops the trace at `end`; an error, at `close`.

  Only process 0 traces (`enabled`): every process runs the same program
  on its own devices, so one host's trace shows the step; the others keep
  running untraced.
  """

  def __init__(self, folder: str, start: int, stop: int,
               perfetto: bool = False, enabled: Optional[bool] = None,
               progress=None):
    self.folder, self.start, self.stop = folder, start, stop
    self.perfetto = perfetto
    self.enabled = (jax.process_index() == 0 if enabled is None
                    else enabled)
    self.progress = progress
    self.tracing = False
    self.traced = None  # (first, last) step once written; last None: cut.
    self._first = 0

  def _say(self, line: str) -> None:
    _LOG.info(line)
    if self.progress is not None:
      self.progress.write(line)

  def _begin_trace(self, step: int, outputs) -> None:
    jax.block_until_ready(outputs)  # The previous step's work stays out.
    os.makedirs(self.folder, exist_ok=True)
    jax.profiler.start_trace(self.folder,
                             create_perfetto_trace=self.perfetto)
    self.tracing, self._first = True, step
    self._say(f'Profiling steps {step} to {self.stop - 1} into '
              f'{self.folder}.')

  def _end_trace(self, step: Optional[int], outputs) -> None:
    """Stops the trace after `step` (None: after an error)."""
    if outputs is not None:
      jax.block_until_ready(outputs)  # The trace holds the step's work.
    self.tracing = False
    jax.profiler.stop_trace()
    self.traced = (self._first, step)
    if step is None:
      steps = f'steps from {self._first} (interrupted)'
    elif step < self._first:  # It ended (early stop) before the window.
      steps = f'no step (the run ended at step {step})'
    else:
      steps = f'steps {self._first} to {step}'
    self._say(f'Trace of {steps} written to {self.folder}.')

  def begin(self, step, state):
    if self.enabled and self.start <= step + 1 < self.stop:
      self._begin_trace(step + 1, state)

  def due(self, step):
    return self.enabled and step in (self.start - 1, self.stop - 1)

  def __call__(self, step, state, metrics):
    if step == self.stop - 1:
      if self.tracing:
        self._end_trace(step, (state, metrics))
    elif not self.tracing:
      self._begin_trace(step + 1, (state, metrics))

  def end(self, step, state):
    if self.tracing:
      self._end_trace(step, state)
    elif self.enabled and self.traced is None and step < self.start:
      self._say(f'The run ended at step {step}, before the profiled steps '
                f'{self.start} to {self.stop - 1}: nothing traced.')

  def close(self):
    if self.tracing:  # After an error: keep what was traced.
      try:
        self._end_trace(None, None)
      except Exception:  # pylint: disable=broad-except
        _LOG.exception('Stopping the trace after an error failed.')


def begin_all(hooks, step: int, state) -> None:
  for hook in hooks:
    hook.begin(step, state)


def run_due(hooks, step: int, state, metrics) -> None:
  for hook in hooks:
    if hook.due(step):
      hook(step, state, metrics)


def end_all(hooks, step: int, state) -> None:
  for hook in hooks:
    hook.end(step, state)


def close_all(hooks) -> None:
  for hook in hooks:
    hook.close()
