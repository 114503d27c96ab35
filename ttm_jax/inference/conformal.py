"""Split-conformal intervals from a series' own history (as granite-tsfm's
`PostHocProbabilisticProcessor` with absolute residuals and uniform
weights): the forecasts of the last calibration windows before the origin
give |truth - forecast| per horizon step and target; the interval of level
q < 0.5 is forecast - t(alpha = 2q), of q > 0.5 forecast + t(alpha =
2(1 - q)), with t(alpha) the ceil((n + 1)(1 - alpha))-th smallest of the n
scores (infinite when that rank exceeds n, so a level needs enough
calibration windows: `windows_needed`); q = 0.5 is the forecast."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def check_levels(levels: Sequence[float]) -> list:
  """Sorted plain floats of unique levels in (0, 1); anything else (a
  scalar, a string, a duplicate) is a ConfigError naming `quantiles`."""
  from ttm_jax import checks  # pylint: disable=g-import-not-at-top
  complaint = checks.levels()(levels)
  if complaint:
    from ttm_jax import errors  # pylint: disable=g-import-not-at-top
    raise errors.ConfigError(
        f'quantiles={checks.show(levels)}: {complaint}.')
  return sorted(float(q) for q in levels)


def _alpha(level: float) -> float:
  return 2 * level if level < 0.5 else 2 * (1 - level)


def windows_needed(levels: Sequence[float]) -> int:
  """The fewest calibration scores that give every level a finite bound:
  the smallest n with ceil((n + 1)(1 - alpha)) <= n (about 1/alpha - 1;
  0 for the median alone)."""
  needed = 0
  for q in levels:
    if abs(q - 0.5) < 1e-9:
      continue
    alpha = _alpha(q)
    n = max(1, int((1 - alpha) / alpha) - 2)
    while np.ceil((n + 1) * (1.0 - alpha)) > n:
      n += 1
    needed = max(needed, n)
  return needed


def thresholds(scores: np.ndarray, alpha: float) -> np.ndarray:
  """The conformal threshold of [n, ...] scores at miscoverage `alpha`, per
  cell over its n non-missing scores (NaN scores are left out)."""
  counts = np.sum(~np.isnan(scores), axis=0)
  ranks = np.ceil((counts + 1) * (1.0 - alpha)).astype(int)
  ordered = np.sort(scores, axis=0)  # NaN last.
  picked = np.take_along_axis(
      ordered, np.clip(ranks - 1, 0, scores.shape[0] - 1)[None], 0)[0]
  return np.where(ranks > counts, np.inf, picked)


def offsets(residuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
  """[h, c, q] offsets of the split-conformal quantiles from the point
  forecast, from calibration residuals [n, h, c] (truth - forecast): per
  horizon step and channel, minus the threshold of |residual| at
  miscoverage 2q below the median, plus the one at 2(1 - q) above; 0 at
  0.5."""
  scores = np.abs(residuals)
  columns = []
  for q in levels:
    if abs(q - 0.5) < 1e-9:
      columns.append(np.zeros(residuals.shape[1:]))
    elif q < 0.5:
      columns.append(-thresholds(scores, 2 * q))
    else:
      columns.append(thresholds(scores, 2 * (1 - q)))
  return np.stack(columns, axis=-1)


def bands(forecast: np.ndarray, residuals: np.ndarray,
          levels: Sequence[float]) -> Dict[float, np.ndarray]:
  """{level: [h, targets]} around `forecast` [h, targets] from calibration
  residuals [n, h, targets] (truth - forecast)."""
  shifts = offsets(residuals, levels)
  return {q: forecast + shifts[..., k] for k, q in enumerate(levels)}
