"""The console progress bar (tqdm), process 0 only."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import jax
import numpy as np


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
      loss = float(np.asarray(metrics['train/loss']))
      self.bar.set_postfix(loss=f'{loss:.4f}', refresh=False)

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
