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

The probabilistic metrics follow GluonTS's evaluation (`gluonts.ev`, as
GIFT-Eval and Chronos use it, aggregated over every entry: `axis=None`) and
are tested against it:

  wql       mean over the levels of sum(2 |(y - q^)(1{q^ >= y} - q)|) /
            sum(|y|) (MeanWeightedSumQuantileLoss, the CRPS approximation);
  mase      mean of |y - median| / s, s the seasonal error of the window's
            context for that channel: the mean of |y_t - y_{t-m}| over
            observed pairs, m the season (1 when longer than the context);
  msis      mean of the interval score of the widest central interval
            (alpha = 2 x the lowest level, 0.2 for 0.1..0.9) divided by s;
  coverage  coverage_<p>: the share of targets inside each central
            interval [q, 1 - q] (p = 100 (1 - 2q), closed ends).

A forecaster without quantiles (seasonal naive, repeat last) is scored as
GluonTS scores a point forecast: every quantile is the point forecast. A
window whose context has no seasonal error (constant, or too few observed
pairs) has no finite scaled error: GluonTS returns inf or NaN for the whole
aggregate; here those windows are left out of mase and msis (and counted in
`mase_excluded`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
_LOG = logging.getLogger(__name__)
# GIFT-Eval's levels (and TTMConfig.quantile_levels' default).
DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


SEASONAL_ERROR_RULES = ('gluonts', 'fev')


def seasonal_error(past, season: int, rule: str = 'gluonts', lengths=None):
  """[n, c]: the mean of |y_t - y_{t-m}| over each history's observed pairs
  (`past` [n, t, c], NaN missing, a ragged batch left-padded with NaN:
  `baselines.stack`); NaN where there is no pair. NumPy or jax.numpy.

  The rule for a history shorter than the season is the suite's:
    'gluonts'  m = 1 when the season exceeds the history (`lengths`, default
               the full width): gluonts.ev.ts_stats.seasonal_error, as
               GIFT-Eval, the evaluators and the backtests scale MASE;
    'fev'      m = the season always, so such a history has no pair (fev
               leaves it out of MASE and SQL).
  """
  if rule not in SEASONAL_ERROR_RULES:
    raise ValueError(f'rule={rule!r}: one of {SEASONAL_ERROR_RULES}.')
  xp = np if isinstance(past, np.ndarray) else jnp
  width = past.shape[1]

  def mean_difference(m):
    if m >= width:
      return xp.full((past.shape[0], past.shape[2]), xp.nan)
    difference = xp.abs(past[:, m:] - past[:, :width - m])
    paired = ~xp.isnan(difference)
    count = paired.sum(axis=1)
    total = xp.where(paired, difference, 0.0).sum(axis=1)
    return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)

  error = mean_difference(max(season, 1))
  if rule == 'gluonts' and season > 1:
    length = xp.full((past.shape[0],), width) if lengths is None else (
        xp.asarray(lengths))
    error = xp.where((season > length)[:, None], mean_difference(1), error)
  return error


@dataclasses.dataclass(frozen=True)
class EvalBatch:
  """What a metric sees of one batch (device arrays).

  Attributes:
    prediction: [b, h, c'] point forecast in the data's units.
    target: [b, h, c'] true future, aligned with the forecast.
    weight: [b, h, c'] 1 where a target entry counts, else 0.
    past: [b, l, c'] the context of the forecast channels (None with
      `scale`).
    past_weight: [b, l, c'] 1 where the context is observed.
    window_weight: [b] 1 for real windows, 0 for padding.
    quantiles: [b, h, c', q] forecasts at `levels`, or None for a point
      forecaster.
    levels: the quantile levels (ascending, symmetric about 0.5).
    season: the season m of the seasonal error (MASE, MSIS).
    scale: [b, 1, c'] the seasonal error when the caller computed it (a
      backtest's, over each window's whole history); None: from `past`.
  """
  prediction: Array
  target: Array
  weight: Array
  past: Array
  past_weight: Array
  window_weight: Array
  quantiles: Optional[Array] = None
  levels: Tuple[float, ...] = DEFAULT_LEVELS
  season: int = 1
  scale: Optional[Array] = None

  def quantile_forecasts(self) -> Array:
    """[b, h, c', q]: the quantiles, or (a point forecaster, as GluonTS's
    PointForecast) the point forecast at every level."""
    if self.quantiles is not None:
      return self.quantiles
    return jnp.repeat(self.prediction[..., None], len(self.levels), axis=-1)

  def seasonal_error(self) -> Array:
    """[b, 1, c']: `seasonal_error` of each context (GluonTS's rule); 0
    where there is no pair."""
    if self.scale is not None:
      return self.scale
    past = jnp.where(self.past_weight > 0, self.past, jnp.nan)
    error = seasonal_error(past, self.season, 'gluonts')[:, None, :]
    return jnp.where(jnp.isnan(error), 0.0, error)

  def central_intervals(self):
    """(label, lower index, upper index) of each central interval, widest
    first: label '80' for levels (0.1, 0.9)."""
    q = len(self.levels)
    return [(interval_label(self.levels[i], self.levels[q - 1 - i]), i,
             q - 1 - i) for i in range(q // 2)]


def interval_label(lower: float, upper: float) -> str:
  width = round((upper - lower) * 100, 6)
  return f'{width:g}'


class Metric:
  """A metric computed from streamed sums.

  Subclasses set `name` and implement `sums` (device, per batch; a dict of
  scalar arrays) and `result` (host, once; the metric values from the
  totals of every sum over all batches).
  """
  name: str = ''
  # True when the metric reads quantile forecasts (a point TTM cannot give
  # them: see `check_quantile_metrics`).
  needs_quantiles: bool = False
  # The results that reach the sweep tables ('<stage>/<result>' columns);
  # None: the one named `name`. Counts (mase_excluded) stay out.
  table_results: Optional[Tuple[str, ...]] = None

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


def _scaled(batch: EvalBatch, values: Array):
  """Sums of `values` / seasonal error over the entries with a positive
  seasonal error, their count, and the count of those without."""
  scale = batch.seasonal_error()
  usable = batch.weight * (scale > 0)
  safe = jnp.where(scale > 0, scale, 1.0)
  return {'sum': jnp.sum(usable * values / safe),
          'count': jnp.sum(usable),
          'excluded': jnp.sum(batch.weight) - jnp.sum(usable)}


def _scaled_result(name: str, totals, warn_excluded: bool = False
                   ) -> Dict[str, float]:
  """{name: mean} of a scaled metric, saying once (`warn_excluded`) how
  many entries were left out; {} when no entry has a seasonal error (e.g.
  every context no longer than the season, where GluonTS's is NaN): the
  metric is undefined there and left out, said once."""
  if not totals['count']:
    _LOG.warning('%s is undefined here (no window has a seasonal error: the '
                 'contexts are no longer than the season, constant or '
                 'unobserved); left out of the results.', name)
    return {}
  if warn_excluded and totals['excluded']:
    _LOG.warning('%s: %d target entries left out (their context has no '
                 'seasonal error: constant or unobserved).', name,
                 int(totals['excluded']))
  return {name: _ratio(totals['sum'], totals['count'])}


class MeanAbsoluteScaledError(Metric):
  """MASE: |y - median| over the context's seasonal error, averaged over
  every observed entry (gluonts.ev.MASE, axis=None)."""
  name = 'mase'

  def sums(self, batch):
    return _scaled(batch, jnp.abs(batch.target - batch.prediction))

  def result(self, totals):
    return dict(_scaled_result('mase', totals, warn_excluded=True),
                mase_excluded=int(round(totals['excluded'])))


class MeanWeightedSumQuantileLoss(Metric):
  """WQL: for each level, the summed quantile loss over the summed |y|;
  averaged over levels (gluonts.ev.MeanWeightedSumQuantileLoss)."""
  name = 'wql'
  needs_quantiles = True

  def sums(self, batch):
    quantiles = batch.quantile_forecasts()
    taus = jnp.asarray(batch.levels, quantiles.dtype)
    error = batch.target[..., None] - quantiles
    loss = 2 * jnp.abs(error * ((quantiles >= batch.target[..., None])
                                - taus))
    weighted = jnp.sum(batch.weight[..., None] * loss, axis=(0, 1, 2))
    out = {f'ql_{k}': weighted[k] for k in range(len(batch.levels))}
    out['abs'] = jnp.sum(batch.weight * jnp.abs(batch.target))
    return out

  def result(self, totals):
    levels = sorted(int(k[3:]) for k in totals if k.startswith('ql_'))
    return {'wql': float(np.mean([_ratio(totals[f'ql_{k}'], totals['abs'])
                                  for k in levels]))}


class MeanScaledIntervalScore(Metric):
  """MSIS of the widest central interval, alpha = 2 x the lowest level
  (gluonts.ev.MSIS(alpha))."""
  name = 'msis'
  needs_quantiles = True

  def sums(self, batch):
    quantiles = batch.quantile_forecasts()
    alpha = 2 * batch.levels[0]
    lower, upper, y = quantiles[..., 0], quantiles[..., -1], batch.target
    score = (upper - lower + 2.0 / alpha * (lower - y) * (y < lower)
             + 2.0 / alpha * (y - upper) * (y > upper))
    return _scaled(batch, score)

  def result(self, totals):
    return _scaled_result('msis', totals)


class IntervalCoverage(Metric):
  """coverage_<p>: the share of observed targets inside each central
  interval [q^_q, q^_{1-q}] (closed)."""
  name = 'coverage'
  needs_quantiles = True
  table_results = ('coverage_80',)  # The (0.1, 0.9) interval.

  def sums(self, batch):
    quantiles = batch.quantile_forecasts()
    y = batch.target
    out = {'count': jnp.sum(batch.weight)}
    for label, lo, hi in batch.central_intervals():
      inside = (quantiles[..., lo] <= y) & (y <= quantiles[..., hi])
      out[f'in_{label}'] = jnp.sum(batch.weight * inside)
    return out

  def result(self, totals):
    return {f'coverage_{k[3:]}': _ratio(v, totals['count'])
            for k, v in totals.items() if k.startswith('in_')}


METRICS: Dict[str, Metric] = {
    metric.name: metric for metric in (
        MeanSquaredError(), MeanAbsoluteError(),
        MeanWeightedSumQuantileLoss(), MeanAbsoluteScaledError(),
        MeanScaledIntervalScore(), IntervalCoverage())
}
POINT_METRICS = ('mse', 'mae', 'mase')
QUANTILE_METRICS = ('wql', 'msis', 'coverage')


def table_results() -> Tuple[str, ...]:
  """The results of every registered metric that sweep tables show, in
  registry order."""
  return tuple(result for metric in METRICS.values()
               for result in metric.table_results or (metric.name,))


def get(names: Sequence[str]):
  return [METRICS[name] for name in names]


def default_names(quantiles: bool) -> Tuple[str, ...]:
  """The metrics of an evaluation that names none."""
  return POINT_METRICS + (QUANTILE_METRICS if quantiles else ())


def check_quantile_metrics(names: Sequence[str], has_quantiles: bool) -> None:
  """A point model asked for quantile metrics: one clear error."""
  asked = [n for n in names if METRICS[n].needs_quantiles]
  if asked and not has_quantiles:
    from ttm_jax import errors  # pylint: disable=g-import-not-at-top
    raise errors.ConfigError(
        f'eval_metrics {asked} need quantile forecasts, but this model is a '
        'point model (no multi-quantile head). Train one with '
        'config.model.overrides.multi_quantile_head=True (e.g. configs/'
        'few_shot.py:...,quantiles=0.1:0.9), or get intervals around the '
        'point forecasts with conformal calibration: '
        'ttm_jax.forecast(..., intervals=...) (ttm_jax.inference.conformal).')


# ----------------------------------------------------------- accumulation
def batch_sums(metrics: Sequence[Metric], batch: EvalBatch,
               prefix: str = '') -> Dict[str, Array]:
  """Every metric's sums of one batch, keyed '[prefix:]metric/sum', plus
  the number of real windows."""
  out = {f'{prefix}windows': jnp.sum(batch.window_weight)}
  for metric in metrics:
    for key, value in metric.sums(batch).items():
      out[f'{prefix}{metric.name}/{key}'] = value.astype(jnp.float32)
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


def results(metrics: Sequence[Metric], totals) -> Dict[str, Any]:
  """The metric values from device totals (read here, once); the sums of a
  compared forecaster ('name:' prefixed) become a nested `name` object."""
  host = jax.device_get(totals)
  values = {k: float(np.float64(s) + np.float64(c))
            for k, (s, c) in host.items()}
  groups: Dict[str, Dict[str, float]] = {}
  for key, value in values.items():
    group, _, own = key.rpartition(':')
    groups.setdefault(group, {})[own] = value
  out = _group_results(metrics, groups.pop(''))
  for group, own in groups.items():
    out[group] = _group_results(metrics, own)
  return out


def evaluate_batch(metrics: Sequence[Metric], batch: EvalBatch
                   ) -> Dict[str, Any]:
  """Every metric of one batch, computed at once (small host-side
  evaluations, such as a backtest's windows)."""
  sums = batch_sums(metrics, batch)
  return results(metrics, {k: (v, jnp.zeros_like(v)) for k, v in sums.items()})


def _group_results(metrics, values) -> Dict[str, Any]:
  out = {}
  for metric in metrics:
    prefix = f'{metric.name}/'
    own = {k[len(prefix):]: v for k, v in values.items()
           if k.startswith(prefix)}
    out.update(metric.result(own))
  out['num_windows'] = int(round(values['windows']))
  return out


def make_eval_batch(prediction, target, weight, past, past_weight,
                    window_weight, pci: Optional[Sequence[int]] = None,
                    quantiles=None, levels=DEFAULT_LEVELS,
                    season: int = 1) -> EvalBatch:
  """An `EvalBatch`, the context reduced to the forecast channels."""
  if pci is not None:
    past, past_weight = past[..., list(pci)], past_weight[..., list(pci)]
  return EvalBatch(prediction=prediction, target=target, weight=weight,
                   past=past, past_weight=past_weight,
                   window_weight=window_weight, quantiles=quantiles,
                   levels=tuple(levels), season=int(season))
