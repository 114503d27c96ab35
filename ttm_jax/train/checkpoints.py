"""Checkpoints in the workdir: one orbax manager that keeps the latest N
steps (state, data iterator, run record) for resuming exactly, and the best
step by the selection metric, through orbax's preservation policies
(`LatestN` or `BestN`). SIGTERM requests a checkpoint and a clean exit; on
several processes the step is agreed through orbax's `reached_preemption`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import types
from typing import Any, Dict, Optional, Tuple

from etils import epath
import grain
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

_LOG = logging.getLogger(__name__)
SELECTION = 'selection'  # The metric BestN ranks (lower is better).


def _options(keep: int, read_only: bool = False):
  policies = ocp.checkpoint_managers
  return ocp.CheckpointManagerOptions(
      enable_async_checkpointing=True, create=not read_only,
      read_only=read_only,
      preservation_policy=policies.AnyPreservationPolicy([
          policies.LatestN(n=keep),
          # Only new bests carry the metric, so the lowest is the best;
          # reverse: BestN keeps the end of a descending sort.
          policies.BestN(get_metric_fn=lambda m: m[SELECTION], reverse=True,
                         n=1, keep_checkpoints_without_metrics=False)]))


class Checkpoints:
  """The checkpoints of a run under `root/checkpoints` (`root`: the workdir
  or any path orbax writes to, e.g. `gs://bucket/run`).

  A checkpoint that fails to restore (a truncated array file, a missing
  item) is moved aside to `root/damaged/` (never deleted), said so, and
  the next newest is tried.
  """

  def __init__(self, root: str, keep: int, read_only: bool = False):
    root = root if '://' in root else os.path.abspath(root)
    self.root = root
    self.manager = ocp.CheckpointManager(
        os.path.join(root, 'checkpoints'), options=_options(keep, read_only))

  def all_steps(self):
    return self.manager.all_steps()

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, state, iterator, meta: Dict[str, Any],
           best_value: Optional[float] = None) -> None:
    """Saves the step of `state` (once); `best_value`: it is the best so
    far, by that value of the selection metric."""
    step = int(state.step)
    if step in self.manager.all_steps():
      return
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta)), force=True,
                      metrics=None if best_value is None else {
                          SELECTION: float(best_value)})

  def reached_preemption(self, step: int) -> bool:
    """Whether every process agreed to checkpoint at `step` and stop."""
    return self.manager.reached_preemption(step)

  def _move_aside(self, step: int, error: Exception) -> None:
    folder = os.path.join(self.root, 'damaged')
    target = os.path.join(folder, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
    if jax.process_index() == 0:
      epath.Path(folder).mkdir(parents=True, exist_ok=True)
      epath.Path(self.root, 'checkpoints', str(step)).rename(target)
    reason = (str(error).strip().split(' See full')[0].splitlines() or [''])[
        0][:200]
    print(f'Checkpoint step {step} is damaged ({type(error).__name__}: '
          f'{reason}); moved it to {target} and trying the previous one.',
          flush=True)
    _LOG.debug('Damaged checkpoint %d moved to %s: %r', step, target, error)
    multihost_utils.sync_global_devices('ttm_jax damaged checkpoint moved')
    self.manager.reload()

  def _restore_newest(self, args_fn):
    """The newest checkpoint that restores with `args_fn()`, moving the
    damaged ones aside; None when there is none."""
    while True:
      step = self.latest_step()
      if step is None:
        return None
      try:
        return self.manager.restore(step, args=args_fn())
      except Exception as e:  # pylint: disable=broad-except
        self._move_aside(step, e)

  def restore_meta(self) -> Optional[Dict[str, Any]]:
    """The run record of the newest readable checkpoint (None without
    one)."""
    restored = self._restore_newest(
        lambda: ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return None if restored is None else restored.meta

  def restore(self, abstract_state, iterator):
    """(state, meta) of the newest good checkpoint, the iterator moved to
    its position; None without one."""
    restored = self._restore_newest(lambda: ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(iterator),
        meta=ocp.args.JsonRestore()))
    return None if restored is None else (restored.state, restored.meta)

  def restore_state(self, step: int, abstract_state=None):
    """The train state saved at `step`; without `abstract_state`, a
    pytree of arrays on this process's first device, whatever devices
    saved it (an 8-device run exports on a laptop)."""
    if abstract_state is None:
      with ocp.StandardCheckpointer() as reader:
        saved = reader.metadata(self.manager.directory / str(step) / 'state')
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      abstract_state = jax.tree.map(
          lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
          saved.item_metadata)
    return self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state))).state

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


class InMemory:
  """The checkpoints of a run without a folder (`loop.fit_model` in
  memory): the best step's variables kept on the host, for testing the
  best model; nothing to resume from."""

  def __init__(self):
    self.best: Optional[Tuple[int, Any]] = None

  def all_steps(self):
    return [self.best[0]] if self.best else []

  def latest_step(self) -> Optional[int]:
    return None

  def save(self, state, iterator, meta: Dict[str, Any],
           best_value: Optional[float] = None) -> None:
    del iterator, meta
    if best_value is not None:
      self.best = (int(state.step), jax.device_get(state.variables))

  def reached_preemption(self, step: int) -> bool:
    del step
    return False

  def restore_meta(self) -> Optional[Dict[str, Any]]:
    return None

  def restore(self, abstract_state, iterator):
    del abstract_state, iterator
    return None

  def restore_state(self, step: int, abstract_state=None):
    del abstract_state
    if self.best is None or self.best[0] != step:
      raise KeyError(f'step {step} was not kept in memory')
    return types.SimpleNamespace(variables=self.best[1])

  def wait(self):
    pass

  def close(self):
    pass


class Preemption:
  """SIGTERM requests a checkpoint and a clean exit instead of killing the
  run. On one process, a handler of its own notes the signal; on several,
  JAX's preemption service (started by `jax.distributed.initialize`) takes
  SIGTERM on any of them and every process agrees on the step to save at
  (orbax's `reached_preemption`), so all save the same step and stop."""

  def __init__(self, checkpoints: Checkpoints):
    self.checkpoints = checkpoints
    self.distributed = jax.process_count() > 1
    self.requested = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    _LOG.warning('SIGTERM: saving a checkpoint before exiting.')
    self.requested = True

  def reached(self, step: int) -> bool:
    """Whether to checkpoint at `step` and stop (every process alike)."""
    if self.distributed:
      return self.checkpoints.reached_preemption(step)
    return self.requested

  def __enter__(self) -> 'Preemption':
    if not self.distributed:  # Keep JAX's handler on several processes.
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False
