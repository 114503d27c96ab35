"""Every window of a split, scored exactly, in bounded memory.

Fixed-size padded batches (each window once; padding rows weigh 0) go
through the evaluation step, which adds their metric sums to totals held on
the device; the totals are read once, at the end. At most two batches are
in flight, so memory is the source plus two batches whatever its size.

  config.evals.test = dict(type='windows', split='test',
                           compare=('seasonal_naive',), final=True)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import jax
import numpy as np

from ttm_jax import baselines
from ttm_jax import checks
from ttm_jax import compilation
from ttm_jax import metrics as metrics_lib
from ttm_jax import fields
from ttm_jax import sharding
from ttm_jax.data import pipeline
from ttm_jax.evaluators import common
from ttm_jax.runs import progress as progress_lib

SPLIT = fields.Field('test', "The split scored: 'valid' or 'test'.",
                     checks.one_of('valid', 'test'))
COMPARE = fields.Field((), 'Baselines scored on the same windows with the '
                       "same metrics (e.g. ('seasonal_naive',)); their "
                       'results nest under their names.',
                       checks.each(checks.one_of(*baselines.NAMES)))


def make_eval_step(forecast: Callable, metrics: Sequence[metrics_lib.Metric],
                   mesh, config=None, *, season: int = 1,
                   levels: Sequence[float] = metrics_lib.DEFAULT_LEVELS,
                   compare: Optional[Mapping[str, Callable]] = None,
                   precision: str = 'float32') -> Callable:
  """`step(variables, batch, totals) -> totals`: the metric sums of
  `forecast(variables, batch)` on the batch (weighted by the future
  observed mask and the window `weight`) added to running totals on the
  device; `totals=None` starts them.

  Args:
    forecast: `(variables, batch) -> point [b, h, c']`, or `(point,
      quantiles [b, h, c', q] or None)`.
    metrics: what to sum.
    mesh: the data mesh.
    config: a TTMConfig, to align targets with the forecast (horizon
      filter, channel selection); None: as given.
    season: the season of MASE and MSIS.
    levels: the quantile levels (of the quantiles, or at which a point
      forecast is scored).
    compare: other forecasters `batch -> point` (e.g. seasonal naive)
      scored with the same metrics on the same windows; their results come
      back as nested objects under their names.
    precision: the forecaster's compute dtype (its XLA options).
  """
  from ttm_jax.models import ttm  # pylint: disable=g-import-not-at-top
  pci = config.prediction_channel_indices if config is not None else None

  def sums(variables, batch):
    target, mask = batch['future_values'], batch['future_observed_mask']
    if config is not None:
      target, mask = ttm.align_targets(config, target, mask)
    window = batch['weight']

    def scored(out, prefix=''):
      point, quantiles = out if isinstance(out, tuple) else (out, None)
      return metrics_lib.batch_sums(metrics, metrics_lib.make_eval_batch(
          prediction=point, target=target,
          weight=mask * window[:, None, None], past=batch['past_values'],
          past_weight=batch['past_observed_mask'] * window[:, None, None],
          window_weight=window, pci=pci, quantiles=quantiles,
          levels=levels, season=season), prefix)

    out = scored(forecast(variables, batch))
    for name, other in (compare or {}).items():
      point = other(batch)
      if pci is not None and point.shape[-1] != len(pci):
        point = point[..., list(pci)]
      out.update(scored(point[:, :target.shape[1]], f'{name}:'))
    return out

  replicated = sharding.replicated(mesh)
  # Totals are not donated: the evaluator waits on the previous ones.
  add = compilation.jit(
      lambda v, b, t: metrics_lib.accumulate(t, sums(v, b)), 'infer',
      precision, out_shardings=replicated)

  def step(variables, batch, totals=None):
    if totals is None:  # Zeros of the sums' shapes (traced, not compiled).
      shapes = jax.eval_shape(sums, variables, batch)
      totals = sharding.replicate(metrics_lib.zeros_like_totals(
          {k: np.zeros(v.shape, v.dtype) for k, v in shapes.items()}), mesh)
    return add(variables, batch, totals)

  return step


def evaluate(eval_step: Callable, variables, source, batch_size: int, mesh,
             metrics: Sequence[metrics_lib.Metric], num_threads: int = 0,
             progress: str = '') -> Dict[str, Any]:
  """Every metric over every window, horizon step and channel of `source`.

  Args:
    eval_step: from `make_eval_step`.
    variables: the forecaster's variables (replicated on `mesh`).
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


@common.register('windows')
class WindowsEvaluator(common.Evaluator):
  """Every window of one split, with baselines compared on the same
  windows."""
  FIELDS = {'split': SPLIT, 'compare': COMPARE}

  def __init__(self, name, spec, predictor, context):
    super().__init__(name, spec, predictor, context)
    self.metrics = metrics_lib.get(predictor.metric_names(spec['metrics']))
    self.step = make_eval_step(
        predictor.forecast, self.metrics, context.mesh, predictor.config,
        season=context.season, levels=predictor.levels,
        compare=common.compared(spec['compare'], predictor.horizon,
                                context.season),
        precision=predictor.precision)

  @classmethod
  def splits_of(cls, spec):
    return (spec['split'],)

  def run(self, variables, progress=''):
    context = self.context
    return evaluate(self.step, variables, context.source(self.spec['split']),
                    context.batch_size, context.mesh, self.metrics,
                    context.num_threads, progress)
