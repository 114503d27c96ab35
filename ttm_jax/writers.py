"""Metrics (metrics.jsonl + TensorBoard), console progress and plots."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, Optional

import jax
import numpy as np

from ttm_jax import errors
from ttm_jax.models import ttm


def _scalar(value) -> float:
  return float(np.asarray(value))


def check_finite(step: int, metrics: Dict[str, Any]) -> Dict[str, float]:
  """The metrics as floats; `errors.TrainingDiverged` if one is NaN or
  infinite."""
  values = {k: _scalar(v) for k, v in metrics.items()}
  bad = {k: v for k, v in values.items() if not math.isfinite(v)}
  if bad:
    raise errors.TrainingDiverged(
        f'{", ".join(f"{k}={v}" for k, v in bad.items())} at step {step}: '
        'the run diverged (nothing non-finite is recorded). The checkpoints '
        'before it are kept; lower config.optim.lr or set '
        'config.optim.clip_norm, in a new workdir.')
  return values


class MetricWriter:
  """One JSON line per logged step in `workdir/metrics.jsonl` (process 0),
  mirrored to TensorBoard when tensorboardX is available.

  Metrics of the same step (training, validation, test) are merged into
  that step's line, written once the run moves past the step, at `flush`
  (before a checkpoint) or at `close`; metrics of a step whose line is
  already written are merged into that line (rewritten in place), so each
  step has one line. A non-finite value is never written: it raises
  `errors.TrainingDiverged`.
  """

  def __init__(self, workdir: str, tensorboard: bool = True):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.pending: Optional[Dict[str, Any]] = None
    self.written: Optional[Dict[str, Any]] = None  # The last line's.
    self.offset = 0  # Where the last line starts.
    self.tb = None
    if self.enabled and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self.tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
      except ImportError:
        self.tb = None

  def write(self, step: int, metrics: Dict[str, Any]) -> None:
    values = check_finite(step, metrics)
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
      with open(self.path, 'a') as f:
        if self.written and self.written['step'] == self.pending['step']:
          f.truncate(self.offset)
        self.offset = f.seek(0, os.SEEK_END)
        f.write(json.dumps(self.pending) + '\n')
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

  def _emit(self, progress: 'Progress', force: bool = False) -> None:
    step, metrics = self.pending
    progress.update(step, metrics)
    if force or self._due(step):
      self.writer.write(step, jax.device_get(metrics))

  def log(self, step: int, metrics: Dict[str, Any],
          progress: 'Progress') -> None:
    if self.pending is not None:
      self._emit(progress)
    self.pending = (step, metrics)

  def flush(self, progress: 'Progress', force: bool = True) -> None:
    """Writes the pending step now: always (`force`: the last step), or
    only if it is due (before a checkpoint, so the step's metrics are on
    disk first; a step not due stays pending)."""
    if self.pending is not None and (force or self._due(self.pending[0])):
      self._emit(progress, force=force)
      self.pending = None


class Progress:
  """A progress bar with step rate and ETA (tqdm), process 0 only."""

  def __init__(self, total: int, initial: int = 0, unit: str = 'step',
               desc: str = '', leave: bool = True):
    self.bar = None
    if jax.process_index() == 0:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc,
                      dynamic_ncols=True, mininterval=1.0, leave=leave)
    self.last = initial
    self.start = time.time()

  def update(self, step: int, metrics: Optional[Dict[str, Any]] = None):
    if self.bar is None:
      return
    self.bar.update(step - self.last)
    self.last = step
    if metrics and 'train/loss' in metrics and step % 10 == 0:
      self.bar.set_postfix(loss=f"{_scalar(metrics['train/loss']):.4f}",
                           refresh=False)

  def write(self, line: str) -> None:
    if self.bar is not None:
      self.bar.write(line)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()

  def __enter__(self) -> 'Progress':
    return self

  def __exit__(self, *exc):
    self.close()
    return False


def plot_forecasts(path: str, module, variables, source, ttm_config,
                   title: str = '', num: int = 4) -> None:
  """Forecast vs truth for `num` windows spread over `source` (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  picks = np.linspace(0, len(source) - 1, num).astype(int)
  items = [source[int(i)] for i in picks]
  batch = {k: np.stack([it[k] for it in items]) for k in items[0]}
  inputs = ttm.model_inputs(batch, ttm_config)
  pred = np.asarray(jax.jit(module.apply)(jax.device_get(variables),
                                          **inputs).prediction_outputs)
  pci = list(ttm_config.prediction_channel_indices or [0])
  channel = 0
  fig, axes = plt.subplots(num, 1, figsize=(10, 2.2 * num))
  tail = min(ttm_config.context_length, 3 * ttm_config.output_length)
  for ax, i in zip(np.atleast_1d(axes), range(num)):
    past = batch['past_values'][i, -tail:, pci[channel]]
    future = batch['future_values'][i, :ttm_config.output_length,
                                    pci[channel]]
    t_past = np.arange(-tail, 0)
    t_future = np.arange(len(future))
    ax.plot(t_past, past, color='0.3', lw=1, label='context')
    ax.plot(t_future, future, color='C0', lw=1, label='truth')
    ax.plot(t_future, pred[i, :, channel], color='C3', lw=1.2,
            label='forecast')
    ax.set_title(f'window {int(picks[i])}', fontsize=8)
  np.atleast_1d(axes)[0].legend(fontsize=7, loc='upper left')
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
