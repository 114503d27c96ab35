"""Split-conformal intervals around a point forecaster: calibrated on one
split, scored on another.

  config.evals.test_conformal = dict(type='conformal', calibrate='valid',
                                     score='test', final=True)

The last `windows` windows of the calibration split give the absolute
errors; per horizon step and channel, their conformal thresholds at
miscoverage 2q (below the median) or 2(1 - q) (above) are the quantile
offsets around the point forecast. The scored split then gets every metric
of its windows, the quantile ones (wql, msis, coverage) included.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import checks
from ttm_jax import compilation
from ttm_jax import errors
from ttm_jax import metrics as metrics_lib
from ttm_jax import fields
from ttm_jax import sharding
from ttm_jax.data import builders
from ttm_jax.data import pipeline
from ttm_jax.evaluators import common
from ttm_jax.evaluators import windows
from ttm_jax.inference import conformal


def _point(out):
  return out[0] if isinstance(out, tuple) else out


def residuals(predictor: common.Predictor, variables, source,
              batch_size: int, mesh, max_windows: int,
              num_threads: int = 0) -> np.ndarray:
  """[n, h', c'] truth - point forecast (NaN where unobserved) of the last
  `max_windows` windows of `source` (every host gets all of them)."""
  from ttm_jax.models import ttm  # pylint: disable=g-import-not-at-top
  first = max(len(source) - max_windows, 0)
  subset = builders.Subset(source, np.arange(first, len(source)))
  config = predictor.config

  def fn(v, batch):
    target, mask = batch['future_values'], batch['future_observed_mask']
    if config is not None:
      target, mask = ttm.align_targets(config, target, mask)
    point = _point(predictor.forecast(v, batch))
    return jnp.where(mask > 0, target - point, jnp.nan), batch['weight']

  run = compilation.jit(fn, 'infer', predictor.precision,
                        out_shardings=sharding.replicated(mesh))
  out = []
  for batch in pipeline.EvalBatches(
      subset, sharding.round_to_devices(batch_size, mesh),
      num_threads=num_threads):
    errors_, weight = jax.device_get(run(variables,
                                         sharding.shard_batch(batch, mesh)))
    out.append(errors_[weight > 0])
  return np.concatenate(out)


def with_offsets(forecast: Callable) -> Callable:
  """`forecast` with split-conformal quantiles: its variables become
  `(variables, offsets [h, c, q])`, so one compiled step serves every
  calibration."""
  def with_intervals(variables, batch):
    inner, offsets = variables
    point = _point(forecast(inner, batch))
    return point, point[..., None] + offsets
  return with_intervals


@common.register('conformal')
class ConformalEvaluator(common.Evaluator):
  """A point forecaster's windows of `score`, with quantiles from the
  errors on the last `windows` windows of `calibrate`."""
  FIELDS = {
      'calibrate': fields.Field('valid', 'The calibration split.',
                                checks.one_of('valid', 'test')),
      'score': windows.SPLIT,
      'windows': fields.Field(5000, 'Calibration windows (the last ones of '
                              'the calibration split).', checks.positive()),
      'compare': windows.COMPARE,
  }

  def __init__(self, name, spec, predictor, context):
    super().__init__(name, spec, predictor, context)
    if predictor.has_quantiles:
      raise errors.ConfigError(
          f'config.evals.{name} calibrates intervals around a point '
          'forecaster, but this model has a quantile head (its own '
          "quantiles are scored by a 'windows' evaluation).")
    names = predictor.metric_names(spec['metrics'])
    names = tuple(dict.fromkeys(names + metrics_lib.QUANTILE_METRICS))
    self.metrics = metrics_lib.get(names)
    self.levels = metrics_lib.DEFAULT_LEVELS
    self.step = windows.make_eval_step(
        with_offsets(predictor.forecast), self.metrics, context.mesh,
        predictor.config, season=context.season, levels=self.levels,
        compare=common.compared(spec['compare'], predictor.horizon,
                                context.season),
        precision=predictor.precision)

  @classmethod
  def splits_of(cls, spec):
    return tuple(dict.fromkeys((spec['calibrate'], spec['score'])))

  def run(self, variables, progress=''):
    context, spec = self.context, self.spec
    found = residuals(self.predictor, variables,
                      context.source(spec['calibrate']), context.batch_size,
                      context.mesh, spec['windows'], context.num_threads)
    offsets = sharding.replicate(
        conformal.offsets(found, self.levels).astype(np.float32),
        context.mesh)
    values = windows.evaluate(
        self.step, (variables, offsets), context.source(spec['score']),
        context.batch_size, context.mesh, self.metrics, context.num_threads,
        progress)
    return dict(values, intervals='conformal',
                conformal_windows=int(len(found)))
