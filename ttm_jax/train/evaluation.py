"""Exact metrics over every window of a split, streamed in bounded memory.

Fixed-size padded batches (each window once; padding rows weigh 0) go
through the evaluation step, which adds their metric sums to totals held on
the device; the totals are read once, at the end. At most two batches are
in flight, so memory is the source plus two batches whatever its size.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import jax

from ttm_jax import metrics as metrics_lib
from ttm_jax import sharding
from ttm_jax import writers
from ttm_jax.data import pipeline


def evaluate(eval_step: Callable, variables, source, batch_size: int, mesh,
             metrics: Sequence[metrics_lib.Metric], num_threads: int = 0,
             progress: str = '') -> Dict[str, float]:
  """Every metric over every window, horizon step and channel of `source`.

  Args:
    eval_step: from `steps.make_eval_step`.
    variables: the model's variables (replicated on `mesh`).
    source: random-access windows.
    batch_size: global batch (rounded up to the devices).
    mesh: the data mesh.
    metrics: what to compute (their `result`s are returned, plus
      `num_windows`).
    num_threads: grain reader threads (0: the main thread).
    progress: label of a progress bar (process 0); empty for none.
  """
  batches = pipeline.EvalBatches(
      source, sharding.round_to_devices(batch_size, mesh),
      num_threads=num_threads)
  bar = writers.Progress(len(batches), unit='batch', desc=progress,
                         leave=False) if progress else None
  totals, previous = None, None
  for k, batch in enumerate(batches, 1):
    totals = eval_step(variables, sharding.shard_batch(batch, mesh), totals)
    if previous is not None:  # At most two batches in flight.
      jax.block_until_ready(previous)
    previous = totals
    if bar is not None:
      bar.update(k)
  if bar is not None:
    bar.close()
  return metrics_lib.results(metrics, totals)
