"""Exact metrics over every window of a split, streamed in bounded memory.

Fixed-size padded batches (each window once; padding rows weigh 0) go
through the evaluation step, which adds their metric sums to totals held on
the device; the totals are read once, at the end. At most two batches are
in flight, so memory is the source plus two batches whatever its size.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import compilation
from ttm_jax import metrics as metrics_lib
from ttm_jax import sharding
from ttm_jax.data import builders
from ttm_jax.data import pipeline
from ttm_jax.models import ttm
from ttm_jax.predict import conformal
from ttm_jax.workbench import progress as progress_lib


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
  bar = progress_lib.Progress(len(batches), unit='batch', desc=progress,
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


# ------------------------------------------------------ conformal intervals
def residuals(forecast: Callable, variables, source, batch_size: int, mesh,
              config, max_windows: int, num_threads: int = 0) -> np.ndarray:
  """[n, h', c'] truth - point forecast (NaN where unobserved) of the last
  `max_windows` windows of `source` (every host gets all of them)."""
  first = max(len(source) - max_windows, 0)
  subset = builders.Subset(source, np.arange(first, len(source)))

  def fn(v, batch):
    target, mask = ttm.align_targets(config, batch['future_values'],
                                     batch['future_observed_mask'])
    out = forecast(v, batch)
    point = out[0] if isinstance(out, tuple) else out
    return jnp.where(mask > 0, target - point, jnp.nan), batch['weight']

  run = compilation.jit(fn, 'infer',
                        out_shardings=sharding.replicated(mesh))
  out = []
  for batch in pipeline.EvalBatches(
      subset, sharding.round_to_devices(batch_size, mesh),
      num_threads=num_threads):
    errors, weight = jax.device_get(run(variables,
                                        sharding.shard_batch(batch, mesh)))
    out.append(errors[weight > 0])
  return np.concatenate(out)


def conformal_offsets(errors: np.ndarray, levels: Sequence[float]
                      ) -> np.ndarray:
  """[h, c, q] offsets of split-conformal quantiles from calibration errors
  [n, h, c]: per horizon step and channel, the conformal threshold of |error|
  at miscoverage 2q (below the median) or 2(1 - q) (above); 0 at 0.5."""
  scores = np.abs(errors)
  columns = []
  for q in levels:
    if abs(q - 0.5) < 1e-9:
      columns.append(np.zeros(errors.shape[1:]))
    elif q < 0.5:
      columns.append(-conformal.thresholds(scores, 2 * q))
    else:
      columns.append(conformal.thresholds(scores, 2 * (1 - q)))
  return np.stack(columns, axis=-1).astype(np.float32)


def conformal_forecaster(forecast: Callable, offsets: np.ndarray
                         ) -> Callable:
  """`forecast` with split-conformal quantiles: point + offsets [h, c, q]."""
  offsets = jnp.asarray(offsets)

  def with_intervals(variables, batch):
    out = forecast(variables, batch)
    point = out[0] if isinstance(out, tuple) else out
    return point, point[..., None] + offsets
  return with_intervals

