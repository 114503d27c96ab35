"""Metrics (metrics.jsonl + TensorBoard), console progress and plots."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, Optional

import jax
import numpy as np

from ttm_jax.models import ttm


def _scalar(value) -> float:
  return float(np.asarray(value))


class MetricWriter:
  """One JSON line per logged step in `workdir/metrics.jsonl` (process 0),
  mirrored to TensorBoard when tensorboardX is available."""

  def __init__(self, workdir: str, tensorboard: bool = True):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.tb = None
    if self.enabled and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self.tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
      except ImportError:
        self.tb = None

  def write(self, step: int, metrics: Dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step)}
    record.update({k: _scalar(v) for k, v in metrics.items()})
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if self.tb is not None:
      for k, v in record.items():
        if k != 'step' and math.isfinite(v):
          self.tb.add_scalar(k, v, int(step))

  def close(self) -> None:
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

  def _emit(self, progress: 'Progress', force: bool = False) -> None:
    step, metrics = self.pending
    progress.update(step, metrics)
    if force or step % self.every == 0 or step == self.first:
      self.writer.write(step, jax.device_get(metrics))

  def log(self, step: int, metrics: Dict[str, Any],
          progress: 'Progress') -> None:
    if self.pending is not None:
      self._emit(progress)
    self.pending = (step, metrics)

  def flush(self, progress: 'Progress') -> None:
    if self.pending is not None:
      self._emit(progress, force=True)
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
