"""Evaluation metrics as exact streamed sums: the extension point.

A metric says which sums it needs from each batch (`sums`, traced inside
the jitted evaluation step, on the device) and how its values follow from
the totals over every window (`result`, on the host, once). The evaluator
adds each batch's sums to running totals on the device (compensated
float32 summation, so millions of windows lose no precision) and reads them
once at the end; the loop never changes when a metric is added: write a
`Metric` and register it in `METRICS`.

Every sum is weighted by `EvalBatch.weight`: the future observed mask times
the window weight (0 for padding rows), so each observed target entry of
each window counts exactly once.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class EvalBatch:
  """What a metric sees of one batch (device arrays).

  Attributes:
    prediction: [b, h, c'] point forecast in the data's units.
    target: [b, h, c'] true future, aligned with the forecast.
    weight: [b, h, c'] 1 where a target entry counts, else 0.
    past: [b, l, c'] the context of the forecast channels.
    past_weight: [b, l, c'] 1 where the context is observed.
    window_weight: [b] 1 for real windows, 0 for padding.
  """
  prediction: Array
  target: Array
  weight: Array
  past: Array
  past_weight: Array
  window_weight: Array


class Metric:
  """A metric computed from streamed sums.

  Subclasses set `name` and implement `sums` (device, per batch; a dict of
  scalar arrays) and `result` (host, once; the metric values from the
  totals of every sum over all batches).
  """
  name: str = ''

  def sums(self, batch: EvalBatch) -> Dict[str, Array]:
    raise NotImplementedError

  def result(self, totals: Mapping[str, float]) -> Dict[str, float]:
    raise NotImplementedError


def _ratio(numerator: float, denominator: float) -> float:
  return float(numerator / denominator) if denominator else float('nan')


class MeanSquaredError(Metric):
  """Mean of (forecast - target)^2 over every observed target entry."""
  name = 'mse'

  def sums(self, batch):
    error = batch.prediction - batch.target
    return {'se': jnp.sum(batch.weight * error**2),
            'count': jnp.sum(batch.weight)}

  def result(self, totals):
    return {'mse': _ratio(totals['se'], totals['count'])}


class MeanAbsoluteError(Metric):
  """Mean of |forecast - target| over every observed target entry."""
  name = 'mae'

  def sums(self, batch):
    error = batch.prediction - batch.target
    return {'ae': jnp.sum(batch.weight * jnp.abs(error)),
            'count': jnp.sum(batch.weight)}

  def result(self, totals):
    return {'mae': _ratio(totals['ae'], totals['count'])}


METRICS: Dict[str, Metric] = {
    metric.name: metric for metric in (MeanSquaredError(),
                                       MeanAbsoluteError())
}


def get(names: Sequence[str]):
  return [METRICS[name] for name in names]


# ----------------------------------------------------------- accumulation
def batch_sums(metrics: Sequence[Metric], batch: EvalBatch
               ) -> Dict[str, Array]:
  """Every metric's sums of one batch, keyed 'metric/sum', plus the number
  of real windows."""
  out = {'windows': jnp.sum(batch.window_weight)}
  for metric in metrics:
    for key, value in metric.sums(batch).items():
      out[f'{metric.name}/{key}'] = value.astype(jnp.float32)
  return out


def zeros_like_totals(sums: Mapping[str, Array]):
  """Running totals for `sums`: (sum, compensation) pairs, all zero."""
  return {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in sums.items()}


def accumulate(totals, sums):
  """Neumaier-compensated running sums (float32 on the device, with the
  rounding error carried): exact to float64 precision for our sizes."""
  out = {}
  for key, value in sums.items():
    total, compensation = totals[key]
    new = total + value
    compensation = compensation + jnp.where(
        jnp.abs(total) >= jnp.abs(value), (total - new) + value,
        (value - new) + total)
    out[key] = (new, compensation)
  return out


def results(metrics: Sequence[Metric], totals) -> Dict[str, float]:
  """The metric values from device totals (read here, once)."""
  host = jax.device_get(totals)
  values = {k: float(np.float64(s) + np.float64(c))
            for k, (s, c) in host.items()}
  out = {}
  for metric in metrics:
    prefix = f'{metric.name}/'
    own = {k[len(prefix):]: v for k, v in values.items()
           if k.startswith(prefix)}
    out.update(metric.result(own))
  out['num_windows'] = int(round(values['windows']))
  return out


def make_eval_batch(prediction, target, weight, past, past_weight,
                    window_weight, pci: Optional[Sequence[int]] = None
                    ) -> EvalBatch:
  """An `EvalBatch`, the context reduced to the forecast channels."""
  if pci is not None:
    past, past_weight = past[..., list(pci)], past_weight[..., list(pci)]
  return EvalBatch(prediction=prediction, target=target, weight=weight,
                   past=past, past_weight=past_weight,
                   window_weight=window_weight)
