"""Rolling-origin backtest: the last `windows` forecast windows of every
series, origins `horizon` apart and ending at the series' end, each
forecast from the whole history before its origin.

The forecasting API's `ttm_jax.backtest` runs this evaluator with its
forecaster; the scores are the shared metrics (`ttm_jax.metrics`): MSE, MAE
and MASE of the forecaster and of each compared baseline on the same
windows, and the coverage of each central interval when bands are given.
MASE's scale is GluonTS's: the seasonal error of the whole history before
the origin (`metrics.seasonal_error`: missing pairs left out; season 1 when
the season exceeds the history).

A metric that is undefined is None, never NaN, with the reason beside it
in `<metric>_undefined` (MASE when every window's history is constant or
has no observed pair a season apart: no seasonal error to scale by; any
metric when no target value of the windows is observed), so a report is
strict JSON (`json.dump(..., allow_nan=False)`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import baselines
from ttm_jax import metrics as metrics_lib
from ttm_jax.inference import backtests

POINT = ('mse', 'mae', 'mase')


def origins(lengths: Sequence[int], horizon: int, windows: int,
            min_history: int = 1, names: Optional[Sequence[str]] = None
            ) -> List[backtests.Request]:
  """(series, origin) of the last `windows` windows of each series
  (`backtests.origins`).

  Raises:
    errors.DataError: naming the first series (by `names`, else position)
      whose first origin leaves fewer than `min_history` rows before it.
  """
  return backtests.origins(lengths, horizon, windows, min_history, 'error',
                           names)


@dataclasses.dataclass
class Windows:
  """The backtest windows: truth [n, h, c] (NaN missing) and, per window,
  the history before its origin [t_i, c]."""
  truth: np.ndarray
  histories: List[np.ndarray]
  season: int

  @classmethod
  def of(cls, series: Sequence[np.ndarray],
         requests: Sequence[backtests.Request], horizon: int,
         season: int) -> 'Windows':
    truth, histories = backtests.cut(series, requests, horizon)
    return cls(truth, histories, season)

  def scale(self) -> np.ndarray:
    """[n, 1, c] the seasonal error of each window's history."""
    past, lengths = baselines.stack(self.histories)
    return metrics_lib.seasonal_error(past, self.season, 'gluonts',
                                      lengths)[:, None, :]

  def score(self, point: np.ndarray,
            bands: Optional[Dict[float, np.ndarray]] = None
            ) -> Dict[str, float]:
    """MSE, MAE, MASE of `point` [n, h, c] over every observed target;
    with `bands` ({level: [n, h, c]}), the coverage of each central
    interval whose two ends are among the levels."""
    observed = ~np.isnan(self.truth)
    truth = np.where(observed, self.truth, 0.0)
    names, quantiles, levels = POINT, None, metrics_lib.DEFAULT_LEVELS
    central = _central(bands or {})
    if central:
      names = POINT + ('coverage',)
      levels = tuple(central)
      quantiles = np.stack([bands[q] for q in levels], axis=-1)
    metrics = metrics_lib.get(names)
    scale = np.nan_to_num(self.scale(), nan=0.0)
    batch = metrics_lib.EvalBatch(
        prediction=point.astype(np.float32), target=truth.astype(np.float32),
        weight=observed.astype(np.float32), past=None, past_weight=None,
        window_weight=np.ones(len(truth), np.float32),
        quantiles=None if quantiles is None else quantiles.astype(np.float32),
        levels=levels, season=self.season,
        scale=scale.astype(np.float32))
    values = metrics_lib.evaluate_batch(metrics, batch)
    wanted = list(POINT) + [k for k in values if k.startswith('coverage_')]
    out = {}
    for name in wanted:
      value = values.get(name)
      if value is not None and math.isfinite(value):
        out[name] = float(value)
      else:
        out[name] = None
        out[f'{name}_undefined'] = self._undefined(name, observed)
    return out

  def _undefined(self, name: str, observed: np.ndarray) -> str:
    """Why metric `name` has no value on these windows."""
    if not observed.any():
      return 'no target value of the backtest windows is observed'
    if name == 'mase':
      scale = self.scale()
      if np.nanmax(np.where(np.isnan(scale), -1.0, scale)) == 0.0:
        return ('constant history: no seasonal error (every window\'s '
                'history is constant, so MASE would divide by zero)')
      return ('no seasonal error: no window\'s history has an observed pair '
              f'{self.season} steps apart, or all are constant')
    return 'not defined on these windows'


def _central(bands: Dict[float, np.ndarray]) -> Tuple[float, ...]:
  """The levels of `bands` that pair into central intervals (q, 1 - q)."""
  levels = sorted(bands)
  return tuple(q for q in levels
               if any(abs(p - (1 - q)) < 1e-9 for p in levels))


def naive_forecasts(name: str, windows: Windows, horizon: int) -> np.ndarray:
  """[n, h, c] of the named baseline from each window's whole history."""
  return baselines.forecast(name, windows.histories, horizon, windows.season)


def run(windows: Windows, point: np.ndarray, horizon: int,
        bands: Optional[Dict[float, np.ndarray]] = None,
        compare: Sequence[str] = ('seasonal_naive', 'repeat_last'),
        ) -> Dict[str, Dict[str, float]]:
  """{'model': scores, <baseline>: scores} on the same windows."""
  report = {'model': windows.score(point, bands)}
  for name in compare:
    report[name] = windows.score(naive_forecasts(name, windows, horizon))
  return report


def collect_bands(per_window: Sequence[Dict[float, np.ndarray]]
                  ) -> Dict[float, np.ndarray]:
  """{level: [n, h, c]} from one {level: [h, c]} per window."""
  return {q: np.stack([w[q] for w in per_window]) for q in per_window[0]}

