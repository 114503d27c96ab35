"""The benchmark suites' own metrics, computed as the suites compute them
(numpy, float64; tests/suites/test_benchmark.py checks them against the
`fev` package and GluonTS's evaluation).

fev (per window, then the mean over windows; fev.metrics):
  seasonal error  per item, nanmean |y_t - y_{t-m}| over its whole past
                  (m = the task's seasonality); undefined (NaN) when the
                  past has no pair, and such items are left out of MASE
                  and SQL (fev >= 0.7; 0.6.0 used 1.0 instead: the same on
                  every Chronos Benchmark II task held here)
  MASE            mean over items and steps of |y - median| / seasonal error
  WQL             per level nanmean(ql) / max(nanmean|y|, epsilon),
                  averaged over levels; ql = 2 |(y - q^)(1{y <= q^} - q)|
  SQL             per level mean of ql / seasonal error, averaged
  WAPE            nanmean|y - median| / max(nanmean|y|, epsilon)
  (epsilon: the task's metric option, default 0; MASE and SQL clip the
  seasonal error at theirs.) A multivariate task: each target column's
  metrics, then their mean.
GIFT-Eval (GluonTS's evaluate_model, axis=None: every window, item and step
at once; the 11 columns of its all_results.csv), with the seasonal error
of each window's whole past (season 1 when longer than the past). A ratio
of one point (MASE, MAPE, sMAPE, MSIS) is left out where GluonTS's masked
division masks it: a zero (or undefined) seasonal error, a zero truth for
MAPE, a zero truth and forecast for sMAPE (`gluonts_ratio`); the pooled
ratios (ND, NRMSE, the weighted quantile loss) are plain divisions, as
GluonTS's.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ttm_jax import baselines
from ttm_jax import metrics as metrics_lib

FEV_METRICS = ('MASE', 'WQL', 'SQL', 'WAPE')
GIFT_COLUMNS = (
    'MSE[mean]', 'MSE[0.5]', 'MAE[0.5]', 'MASE[0.5]', 'MAPE[0.5]',
    'sMAPE[0.5]', 'MSIS', 'RMSE[mean]', 'NRMSE[mean]', 'ND[0.5]',
    'mean_weighted_sum_quantile_loss')


def seasonal_errors(pasts: Sequence[np.ndarray], season: int,
                    gluonts_rule: bool = False) -> np.ndarray:
  """[n] `metrics.seasonal_error` of each ragged past [t_i] (fev's rule, or
  GluonTS's with `gluonts_rule`); NaN without a pair."""
  past, lengths = baselines.stack(pasts)
  return metrics_lib.seasonal_error(
      past, season, 'gluonts' if gluonts_rule else 'fev', lengths)[:, 0]


def _safemean(values: np.ndarray) -> float:
  finite = values[np.isfinite(values)]
  return float(np.mean(finite)) if finite.size else float('nan')


def quantile_loss(truth: np.ndarray, quantiles: np.ndarray,
                  levels: Sequence[float]) -> np.ndarray:
  """[n, h, q]: 2 |(y - q^)(1{y <= q^} - q)|."""
  y = truth[..., None]
  return 2 * np.abs((y - quantiles) * ((y <= quantiles)
                                       - np.asarray(levels)))


def _epsilon(options, name: str) -> float:
  return float((options or {}).get(name, {}).get('epsilon', 0.0))


def fev_window(truth: np.ndarray, median: np.ndarray, quantiles: np.ndarray,
               pasts: Sequence[np.ndarray], season: int,
               levels: Sequence[float],
               options: Optional[Dict[str, Dict[str, float]]] = None
               ) -> Dict[str, float]:
  """fev's metrics of one window: truth, median [n, h], quantiles
  [n, h, q] at `levels`; `options` the task's metric options ({'WAPE':
  {'epsilon': 1.0}}: the floor of WAPE's and WQL's denominator, of MASE's
  and SQL's seasonal error)."""
  errors_ = seasonal_errors(pasts, season)
  with np.errstate(divide='ignore', invalid='ignore'):
    size = np.nanmean(np.abs(truth))
    scale = np.clip(errors_, _epsilon(options, 'MASE'), None)[:, None]
    out = {'MASE': _safemean(np.abs(truth - median) / scale),
           'WAPE': float(np.nanmean(np.abs(truth - median))
                         / max(size, _epsilon(options, 'WAPE')))}
    if len(levels):
      ql = quantile_loss(truth, quantiles, levels)
      out['WQL'] = float(np.mean(np.nanmean(ql, axis=(0, 1))
                                 / max(size, _epsilon(options, 'WQL'))))
      scale = np.clip(errors_, _epsilon(options, 'SQL'), None)[:, None]
      out['SQL'] = float(np.mean([_safemean(ql[..., k] / scale)
                                  for k in range(len(levels))]))
  return out


def fev_window_dims(truth: np.ndarray, median: np.ndarray,
                    quantiles: np.ndarray, pasts: Sequence[np.ndarray],
                    season: int, levels: Sequence[float],
                    dims: Optional[np.ndarray] = None,
                    options: Optional[Dict[str, Dict[str, float]]] = None
                    ) -> Dict[str, float]:
  """`fev_window` of a multivariate task: each target column's metrics
  (its series by `dims`), then their mean, as fev averages over target
  columns; `dims` None: one column."""
  if dims is None:
    return fev_window(truth, median, quantiles, pasts, season, levels,
                      options)
  per_dim = []
  for d in np.unique(dims):
    rows = np.flatnonzero(dims == d)
    per_dim.append(fev_window(truth[rows], median[rows], quantiles[rows],
                              [pasts[i] for i in rows], season, levels,
                              options))
  return {name: float(np.mean([m[name] for m in per_dim]))
          for name in per_dim[0]}


def fev_task(per_window: List[Dict[str, float]]) -> Dict[str, float]:
  """The task's metrics: each the mean over its windows."""
  return {name: float(np.mean([w[name] for w in per_window]))
          for name in per_window[0]}


def _tail_quantile(levels, quantiles: np.ndarray, q: float,
                   tol: float = 1e-8) -> np.ndarray:
  """GluonTS's QuantileForecast.quantile outside the levels: its
  exponential tail approximation from the two outermost levels."""
  x, y = list(levels), [quantiles[..., k] for k in range(len(levels))]
  if q <= x[0]:
    beta = (y[1] - y[0]) / np.log((x[1] + tol) / (x[0] + tol) + tol)
    return beta * np.log((q + tol) / (x[1] + tol) + tol) + y[1]
  beta = (y[-1] - y[-2]) / np.log((1 - x[-2] + tol) / (1 - x[-1] + tol)
                                  + tol)
  return beta * np.log((1 - x[-2] + tol) / (1 - q + tol) + tol) + y[-2]


def gluonts_ratio(numerator: np.ndarray, denominator: np.ndarray
                  ) -> np.ndarray:
  """numerator / denominator, NaN where GluonTS's evaluation masks it:
  its labels are masked arrays, so every per-point ratio is numpy.ma's
  division, which masks a non-finite quotient and a denominator that is
  0 next to the numerator (|numerator| * finfo(float).tiny >=
  |denominator|); GluonTS's means then skip masked points."""
  numerator = np.asarray(numerator, np.float64)
  denominator = np.asarray(denominator, np.float64)
  with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
    ratio = numerator / denominator
    masked = ~np.isfinite(ratio) | (
        np.abs(numerator) * np.finfo(np.float64).tiny >= np.abs(denominator))
  return np.where(masked, np.nan, ratio)


def gift(truth: np.ndarray, mean: np.ndarray, quantiles: np.ndarray,
         pasts: Sequence[np.ndarray], season: int, levels: Sequence[float],
         alpha: float = 0.05) -> Dict[str, float]:
  """GIFT-Eval's 11 metrics over every window at once: truth and mean
  [n, h], quantiles [n, h, q] at `levels` (0.5 among them), pasts the
  windows' histories."""
  median = quantiles[..., list(levels).index(0.5)]
  scale = seasonal_errors(pasts, season, gluonts_rule=True)[:, None]
  observed = ~np.isnan(truth)
  y = np.where(observed, truth, np.nan)
  lower = _tail_quantile(levels, quantiles, alpha / 2)
  upper = _tail_quantile(levels, quantiles, 1 - alpha / 2)
  interval = (upper - lower + 2 / alpha * (lower - y) * (y < lower)
              + 2 / alpha * (y - upper) * (y > upper))
  ql = quantile_loss(y, quantiles, levels)
  abs_sum = np.nansum(np.abs(y))
  with np.errstate(divide='ignore', invalid='ignore'):
    mse_mean = float(np.nanmean((y - mean) ** 2))
    return {
        'MSE[mean]': mse_mean,
        'MSE[0.5]': float(np.nanmean((y - median) ** 2)),
        'MAE[0.5]': float(np.nanmean(np.abs(y - median))),
        'MASE[0.5]': float(np.nanmean(gluonts_ratio(np.abs(y - median),
                                                    scale))),
        'MAPE[0.5]': float(np.nanmean(gluonts_ratio(np.abs(y - median),
                                                    np.abs(y)))),
        'sMAPE[0.5]': float(np.nanmean(gluonts_ratio(
            2 * np.abs(y - median), np.abs(y) + np.abs(median)))),
        'MSIS': float(np.nanmean(gluonts_ratio(interval, scale))),
        'RMSE[mean]': float(np.sqrt(mse_mean)),
        'NRMSE[mean]': float(np.sqrt(mse_mean) / np.nanmean(np.abs(y))),
        'ND[0.5]': float(np.nansum(np.abs(y - median)) / abs_sum),
        'mean_weighted_sum_quantile_loss': float(np.mean(
            np.nansum(ql, axis=(0, 1)) / abs_sum)),
    }


def relative(value: float, baseline: Optional[float], low: float = 0.01,
             high: float = 100.0) -> float:
  """value / baseline's, clipped to [low, high] as fev's leaderboard
  clips them (NaN where either is missing)."""
  ok = baseline is not None and np.isfinite(value) and np.isfinite(
      baseline) and baseline > 0
  return float(np.clip(value / baseline, low, high)) if ok else float('nan')


def geometric_mean(values: Sequence[float]) -> float:
  """The leaderboards' aggregate of relative scores (NaN left out)."""
  finite = np.asarray([v for v in values if np.isfinite(v)])
  return float(np.exp(np.mean(np.log(finite)))) if finite.size else float(
      'nan')
