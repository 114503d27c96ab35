"""Checkpoints in the workdir (orbax): the latest N (state, data iterator,
run record) for resuming exactly, and the best model by validation loss.
SIGTERM requests a checkpoint and a clean exit (preemption)."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, Dict, Optional

from etils import epath
import grain
import jax
from jax.experimental.multihost_utils import sync_global_devices
import orbax.checkpoint as ocp

_LOG = logging.getLogger(__name__)


class Checkpoints:
  """Latest-N (async) and best checkpoints under `root` (the workdir, or
  any path orbax writes to: a shared filesystem, `gs://bucket/run`).

  A checkpoint that fails to restore (a truncated array file, a missing
  item) is moved aside to `root/damaged/` (never deleted), said so, and
  the next newest is tried.
  """

  def __init__(self, root: str, keep: int):
    root = root if '://' in root else os.path.abspath(root)
    self.root = root
    self.latest = ocp.CheckpointManager(
        os.path.join(root, 'checkpoints'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=True, create=True),
        item_names=('state', 'data', 'meta'))
    self.best = ocp.CheckpointManager(
        os.path.join(root, 'best'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, enable_async_checkpointing=False),
        item_names=('variables', 'meta'))

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def save(self, state, iterator, meta: Dict[str, Any], force=False):
    step = int(state.step)
    if step in self.latest.all_steps():
      return
    self.latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta)), force=force)

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
    sync_global_devices('ttm_jax damaged checkpoint moved')
    self.latest.reload()

  def _restore_newest(self, args_fn):
    """The newest checkpoint that restores with `args_fn()`, moving the
    damaged ones aside; None when there is none."""
    while True:
      step = self.latest_step()
      if step is None:
        return None
      try:
        return self.latest.restore(step, args=args_fn())
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

  def save_best(self, step: int, variables, meta: Dict[str, Any]):
    # Both managers sync processes through orbax's process-wide barriers
    # (same keys): a best save racing the latest manager's async finalize
    # fails multi-process with "Barrier ... is already ongoing".
    self.latest.wait_until_finished()
    if step in self.best.all_steps():  # Re-reached after a resume.
      self.best.delete(step)
    self.best.save(step, args=ocp.args.Composite(
        variables=ocp.args.StandardSave(variables),
        meta=ocp.args.JsonSave(meta)), force=True)
    self.best.wait_until_finished()

  def restore_best(self, abstract_variables):
    step = self.best.latest_step()
    if step is None:
      return None
    return self.best.restore(step, args=ocp.args.Composite(
        variables=ocp.args.StandardRestore(abstract_variables),
        meta=ocp.args.JsonRestore())).variables

  def wait(self):
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.latest.close()
    self.best.close()


class Preemption:
  """While active, SIGTERM requests a checkpoint and a clean exit instead of
  killing the run (`requested` turns True)."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum, frame):
    del signum, frame
    _LOG.warning('SIGTERM: saving a checkpoint before exiting.')
    self.requested = True

  def __enter__(self) -> 'Preemption':
    self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    signal.signal(signal.SIGTERM, self._previous)
    return False
