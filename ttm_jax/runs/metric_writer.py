"""Metrics: one JSON line per logged step in metrics.jsonl (TensorBoard
beside it), logged one step late so the loop never waits on the device."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import jax

from ttm_jax.runs import divergence
from ttm_jax.runs import progress as progress_lib


class MetricWriter:
  """One JSON line per logged step in `workdir/metrics.jsonl` (process 0),
  mirrored to TensorBoard when tensorboardX is available.

  Metrics of the same step (training, validation, test) are merged into
  that step's line, written once the run moves past the step, at `flush`
  (before a checkpoint) or at `close`; metrics of a step whose line is
  already written are merged into that line, so each step has one line,
  also across a resume (the file's last line is read back). The merged
  line replaces the old one in a copy renamed over the file: a kill never
  leaves a step without its line. A non-finite value is never written: it
  raises `errors.TrainingDiverged`.
  """

  def __init__(self, workdir: Optional[str], tensorboard: bool = True):
    # Without a workdir (a fit in memory) nothing is written; values are
    # still checked.
    self.enabled = jax.process_index() == 0 and workdir is not None
    self.path = os.path.join(workdir or '', 'metrics.jsonl')
    self.pending: Optional[Dict[str, Any]] = None
    self.written: Optional[Dict[str, Any]] = None  # The last line's.
    self.offset = 0  # Where the last line starts.
    self.tb = None
    if self.enabled:
      self._read_last_line()
    if self.enabled and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self.tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
      except ImportError:
        self.tb = None

  def _read_last_line(self) -> None:
    """A resumed run merges into the line its predecessor wrote last."""
    try:
      with open(self.path, 'rb') as f:
        data = f.read()
    except FileNotFoundError:
      return
    start = data.rfind(b'\n', 0, len(data) - 1) + 1
    try:
      last = json.loads(data[start:])
    except ValueError:  # Empty, or a line cut by a kill: drop_after moves it.
      return
    if isinstance(last, dict) and 'step' in last:
      self.written, self.offset = last, start

  def write(self, step: int, metrics: Dict[str, Any]) -> None:
    values = divergence.check_finite(step, metrics)
    if not self.enabled:
      return
    step = int(step)
    if self.pending is not None and self.pending['step'] != step:
      self.flush()
    if self.pending is None:
      last = self.written
      self.pending = dict(last) if last and last['step'] == step else {
          'step': step}
    self.pending.update(values)
    if self.tb is not None:
      for k, v in values.items():
        self.tb.add_scalar(k, v, step)

  def flush(self) -> None:
    """Writes the pending step's line (replacing that step's last line)."""
    if self.pending is not None and self.enabled:
      line = (json.dumps(self.pending) + '\n').encode()
      if self.written and self.written['step'] == self.pending['step']:
        with open(self.path, 'rb') as f:
          head = f.read(self.offset)
        tmp = self.path + '.tmp'
        with open(tmp, 'wb') as f:
          f.write(head + line)
        os.replace(tmp, self.path)
      else:
        with open(self.path, 'ab') as f:
          self.offset = f.seek(0, os.SEEK_END)
          f.write(line)
      self.written = self.pending
    self.pending = None

  def drop_after(self, step: int) -> None:
    """On resuming from `step`: lines of later steps (the interrupted
    run's, about to be recomputed) move to metrics.superseded.jsonl, so each
    step appears once in metrics.jsonl."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = f.readlines()
    keep, later = [], []
    for line in lines:
      try:
        (later if json.loads(line)['step'] > step else keep).append(line)
      except (ValueError, KeyError):  # A line cut by the interruption.
        later.append(line if line.endswith('\n') else line + '\n')
    if not later:
      return
    with open(self.path + '.superseded.jsonl', 'a') as f:
      f.writelines(later)
    tmp = self.path + '.tmp'
    with open(tmp, 'w') as f:
      f.writelines(keep)
    os.replace(tmp, self.path)
    self.written = None
    self._read_last_line()

  def close(self) -> None:
    self.flush()
    if self.tb is not None:
      self.tb.close()


class DelayedLogger:
  """Logs each step's metrics one step late, so the loop never waits on the
  device (big_vision's trick): `log(step, metrics)` reads the previous
  step's values. Written every `every` steps, at the run's first step, and
  at `flush` (the last step)."""

  def __init__(self, writer: MetricWriter, every: int, first: int):
    self.writer, self.every, self.first = writer, every, first
    self.pending = None

  def _due(self, step: int) -> bool:
    return step % self.every == 0 or step == self.first

  def _emit(self, progress: progress_lib.Progress,
            force: bool = False) -> None:
    step, metrics = self.pending
    progress.update(step, metrics)
    if force or self._due(step):
      self.writer.write(step, jax.device_get(metrics))

  def log(self, step: int, metrics: Dict[str, Any],
          progress: progress_lib.Progress) -> None:
    if self.pending is not None:
      self._emit(progress)
    self.pending = (step, metrics)

  def flush(self, progress: progress_lib.Progress,
            force: bool = True) -> None:
    """Writes the pending step now: always (`force`: the last step), or
    only if it is due (before a checkpoint, so the step's metrics are on
    disk first; a step not due stays pending)."""
    if self.pending is not None and (force or self._due(self.pending[0])):
      self._emit(progress, force=force)
      self.pending = None
