"""Short, low-frequency series adapted to a long-context TTM, zero-shot.

A TTM pretrained on minutely to daily data with a 512-step context sees a
yearly series of 20 points as 492 padded steps and a jump, and a monthly
series' seasonal cycle of 12 as noise inside one 64-step patch. This
recipe changes the inputs, not the model:

1. **Deseasonalise** (`deseasonalize`): when the past passes the M4
   competition's 90% seasonality test at the task's season (the test and
   the classical multiplicative decomposition of the M4 benchmarks'
   `SeasonalityTest` and `decompose(type="multiplicative")`, as used for
   Naive2 and Theta), the model forecasts the seasonally adjusted series
   and the forecast is multiplied back by the seasonal indices.
2. **Upsample** (`upsample`): the adjusted past is linearly interpolated
   onto a grid `k = max(1, upsample // season)` times finer (k = 8 for
   yearly data at the default, 2 for quarterly, 1 for monthly), the model
   forecasts `k * horizon` steps (rolled past its own horizon when needed)
   and every k-th is kept, so a short trend fills many patches as a smooth
   curve does at the pretraining frequencies.

How the adapted past is then padded to the context is the forecasting
path's `inputs.Inputs.pad` ('edge', the first observed value, was chosen
with the adaptation). An `Adaptation` is an option of the one forecasting
path (`inference.forecast`), with scope 'all' (every past, the benchmark
runner's `adapt` recipe) or 'short' (only pasts shorter than the model's
context).

Nothing is fitted to the evaluated data beyond each past's own seasonal
indices (as Naive2 does), and nothing after a forecast's origin is read.
The settings were chosen on the validation split of Chronos Benchmark
II's five Monash tasks (docs/results/, the adapted-pasts note).
"""

import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors

SCOPES = ('all', 'short')
SEASONALITIES = ('multiplicative', 'additive')
# The M4 benchmarks' critical value (90%, one-sided normal).
_TCRIT = 1.645


@dataclasses.dataclass(frozen=True)
class Adaptation:
  """How pasts are adapted before a TTM forecasts them.

  Attributes:
    deseasonalize: M4's multiplicative seasonal adjustment when its test
      finds the task's season.
    upsample: the interpolation factor for a season-1 task; a task of
      season m gets max(1, upsample // m); 1 turns it off.
    scope: 'all' (every past) or 'short' (only pasts shorter than the
      model's context; longer ones are forecast as given).
    seasonality: 'multiplicative' (M4's: the past divided by its seasonal
      indices; positive pasts only, and not invariant to an offset) or
      'additive' (R's decompose(type="additive"): the seasonal component
      subtracted; invariant to offset and scale).
  """
  deseasonalize: bool = True
  upsample: int = 8
  scope: str = 'all'
  seasonality: str = 'multiplicative'

  def check(self) -> 'Adaptation':
    if self.scope not in SCOPES:
      raise errors.ConfigError(f'adaptation scope={self.scope!r}: expected '
                               f'one of {SCOPES}.')
    if self.seasonality not in SEASONALITIES:
      raise errors.ConfigError(f'adaptation seasonality='
                               f'{self.seasonality!r}: expected one of '
                               f'{SEASONALITIES}.')
    if isinstance(self.upsample, bool) or not isinstance(
        self.upsample, (int, np.integer)) or self.upsample < 1:
      raise errors.ConfigError(f'adaptation upsample={self.upsample!r}: '
                               'expected an integer of at least 1.')
    return self

  def factor(self, season: int) -> int:
    """The upsampling factor for a task of this season."""
    return max(1, int(self.upsample) // max(1, int(season)))

  def as_dict(self):
    return dataclasses.asdict(self)


def acf(x: np.ndarray, lags: int) -> np.ndarray:
  """[lags]: the sample autocorrelations at lags 1..lags (R's `acf`:
  deviations from the mean, the lag-0 sum as denominator)."""
  d = np.asarray(x, np.float64) - np.mean(x)
  denominator = np.sum(d * d)
  if denominator == 0:
    return np.full(lags, np.nan)
  return np.array([np.sum(d[k:] * d[:len(d) - k]) / denominator
                   for k in range(1, lags + 1)])


def is_seasonal(x: np.ndarray, season: int) -> bool:
  """The M4 benchmarks' `SeasonalityTest`: at least 3 seasons, and the
  autocorrelation at the season beyond 1.645 of its standard error
  (Bartlett's, from the lower lags)."""
  x = np.asarray(x, np.float64)
  if season <= 1 or len(x) < 3 * season or not np.all(np.isfinite(x)):
    return False
  r = acf(x, season)
  if not np.all(np.isfinite(r)):
    return False
  limit = _TCRIT / np.sqrt(len(x)) * np.sqrt(
      1 + 2 * np.sum(np.square(r[:season - 1])))
  return bool(abs(r[season - 1]) > limit)


def seasonal_indices(x: np.ndarray, season: int,
                     kind: str = 'multiplicative') -> np.ndarray:
  """[season]: R's `decompose(type=kind)` figure: the series over (or
  minus, additive) its centred moving average (2 x m for an even season),
  averaged per position in the cycle (position 0 = the first value),
  normalised to mean 1 (mean 0, additive)."""
  x = np.asarray(x, np.float64)
  if season % 2 == 0:
    weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
  else:
    weights = np.ones(season) / season
  trend = np.convolve(x, weights, mode='valid')
  offset = (len(weights) - 1) // 2
  part = x[offset:offset + len(trend)]
  ratio = part - trend if kind == 'additive' else part / trend
  position = (np.arange(len(trend)) + offset) % season
  figure = np.array([ratio[position == j].mean() for j in range(season)])
  if kind == 'additive':
    return figure - figure.mean()
  return figure / figure.mean()


def deseasonalize(pasts: Sequence[np.ndarray], season: int,
                  kind: str = 'multiplicative'
                  ) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]]]:
  """(adjusted pasts, each past's seasonal indices or None): a past is
  adjusted when it is seasonal by `is_seasonal` and fully observed (and,
  multiplicative, positive); others pass unchanged."""
  adjusted, indices = [], []
  for past in pasts:
    past = np.asarray(past, np.float64)
    if (season > 1 and np.all(np.isfinite(past))
        and (kind == 'additive' or np.all(past > 0))
        and is_seasonal(past, season)):
      figure = seasonal_indices(past, season, kind)
      steps = figure[np.arange(len(past)) % season]
      adjusted.append(past - steps if kind == 'additive' else past / steps)
      indices.append(figure)
    else:
      adjusted.append(past)
      indices.append(None)
  return adjusted, indices


def reseasonalize(values: np.ndarray, indices, lengths, season: int,
                  kind: str = 'multiplicative') -> np.ndarray:
  """values [n, h, ...] (forecasts after pasts of `lengths`) times (plus,
  additive) each series' seasonal index at its steps."""
  out = np.array(values, np.float64, copy=True)
  for i, figure in enumerate(indices):
    if figure is not None:
      steps = figure[(lengths[i] + np.arange(out.shape[1])) % season]
      steps = steps.reshape((-1,) + (1,) * (out.ndim - 2))
      if kind == 'additive':
        out[i] += steps
      else:
        out[i] *= steps
  return out


def upsample(past: np.ndarray, factor: int) -> np.ndarray:
  """The past linearly interpolated onto a grid `factor` times finer,
  ending at its last value ((len - 1) * factor + 1 values); a point
  between a missing value and any other is missing."""
  past = np.asarray(past, np.float64)
  if factor == 1 or len(past) < 2:
    return past
  position = np.arange((len(past) - 1) * factor + 1) / factor
  low = np.floor(position).astype(int)
  high = np.minimum(low + 1, len(past) - 1)
  weight = position - low
  # (1 - w) * a + w * b, with the on-grid points exact (and a missing
  # neighbour at weight 0 left out).
  return np.where(weight == 0, past[low],
                  (1 - weight) * past[low] + weight * past[high])


def downsample(values: np.ndarray, factor: int, horizon: int) -> np.ndarray:
  """[n, horizon, ...]: every factor-th step of a forecast made on the
  upsampled grid (its step factor * j is the original step j)."""
  return values[:, factor - 1::factor][:, :horizon]
