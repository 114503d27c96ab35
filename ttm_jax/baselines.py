"""The naive forecasters, one implementation each, for every caller: the
config evaluators (fixed-length contexts inside jitted steps, jax.numpy),
the forecasting API's backtest, the benchmark runner and the backtest
choice (ragged histories, NumPy). Each function takes `past [n, t, c]`
with NaN where a value is missing (a ragged batch is left-padded with NaN
by `stack`, which also gives each row's length) and returns `[n, h, c]`:

  naive           the last observed value of each channel (0 if none);
                  registered as 'naive' and as 'repeat_last' (the
                  evaluators' and backtest reports' name)
  seasonal_naive  the value one season earlier (GluonTS's SeasonalNaive);
                  the last observed value when the history is shorter
                  than the season; a missing value in the copied season
                  is 0 (`missing='zero'`, fev's runner and the
                  evaluators) or was filled before (`impute_last_value`,
                  as GIFT-Eval feeds its baselines)
  drift           seasonal naive plus the history's mean change per step
                  (the random walk with drift for season 1)
  context_mean    the mean of the observed history
  gift_seasonal_naive
                  GIFT-Eval's seasonal naive (statsforecast's
                  SeasonalNaive on GluonTS's last-value-filled pasts):
                  seasonal naive of the filled past (`fill_last`), so a
                  missing value in the copied season is the last observed
                  one before it, not 0; a history shorter than the season
                  repeats its last value (statsforecast forecasts NaN
                  there, which GIFT-Eval's evaluation refuses). Its
                  quantiles (`gift_seasonal_naive_quantiles`) are
                  statsforecast's normal intervals around it
                  (`seasonal_naive_sigma`, `interval_z`)

The season comes from the frequency as GluonTS's `get_seasonality` gives it
(hourly 24, 15-minute 96, daily 1, monthly 12, ...): `season_length`.
The seasonal error that scales MASE is `ttm_jax.metrics.seasonal_error`.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

NAMES = ('repeat_last', 'seasonal_naive', 'context_mean', 'naive', 'drift',
         'gift_seasonal_naive')
# gluonts.time_feature.get_seasonality's base periods.
_BASE_SEASONS = {'S': 3600, 's': 3600, 'T': 1440, 'min': 1440, 'H': 24,
                 'h': 24, 'D': 1, 'B': 5, 'W': 1, 'M': 12, 'ME': 12,
                 'MS': 12, 'Q': 4, 'QE': 4, 'QS': 4, 'Y': 1, 'A': 1,
                 'YE': 1, 'YS': 1}


def season_length(freq: Optional[str]) -> int:
  """GluonTS's seasonality of a pandas frequency: the base period divided by
  the multiple when it divides it, else 1 (e.g. '15min' 96, 'h' 24, 'D' 1)."""
  if not freq:
    return 1
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    offset = pd.tseries.frequencies.to_offset(freq)
  except ValueError:
    return 1
  name = offset.name.split('-')[0]
  base = _BASE_SEASONS.get(name, _BASE_SEASONS.get(name.upper(), 1))
  multiple = offset.n
  return base // multiple if multiple and base % multiple == 0 else 1


# GIFT-Eval's (pandas 2) spellings of the units pandas 3 renamed.
_OLD_UNITS = {'T': 'min', 'H': 'h', 'S': 's', 'L': 'ms', 'U': 'us',
              'N': 'ns'}


def week_length(freq: Optional[str]) -> int:
  """Steps in a week at a fixed sub-weekly frequency ('D' 7, 'B' 5, 'h'
  168, '15min' 672, old spellings such as '15T' and 'H' too); 0 for a
  weekly or coarser one, or one that does not divide a week."""
  if not freq:
    return 0
  import pandas as pd  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  match = re.fullmatch(r'(\d*)([A-Za-z]+)', str(freq).strip())
  if match and match.group(2) in _OLD_UNITS:
    freq = match.group(1) + _OLD_UNITS[match.group(2)]
  try:
    offset = pd.tseries.frequencies.to_offset(freq)
  except ValueError:
    return 0
  if offset.name.split('-')[0] in ('B', 'C'):
    return 5 * offset.n if offset.n == 1 else 0
  try:
    step = pd.Timedelta(offset)
  except ValueError:
    return 0
  week = pd.Timedelta(days=7)
  if step <= pd.Timedelta(0) or step >= week or week % step:
    return 0
  return int(week // step)


def xp_of(array):
  """jax.numpy for a JAX array (or tracer), else NumPy."""
  if isinstance(array, np.ndarray):
    return np
  import jax  # pylint: disable=g-import-not-at-top
  if isinstance(array, jax.Array):
    return jax.numpy
  return np


def stack(histories: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
  """(past [n, t, c] float64 left-padded with NaN to the longest, lengths
  [n]) of ragged histories, each [t_i] or [t_i, c]."""
  arrays = [np.asarray(h, np.float64) for h in histories]
  arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
  lengths = np.array([len(a) for a in arrays], int)
  channels = arrays[0].shape[1] if arrays else 1
  out = np.full((len(arrays), max(lengths, default=0), channels), np.nan)
  for i, a in enumerate(arrays):
    if len(a):
      out[i, out.shape[1] - len(a):] = a
  return out, lengths


def impute_last_value(history: np.ndarray) -> np.ndarray:
  """GluonTS's LastValueImputation of one history [t] or [t, c] per
  channel: each missing value is the last observed one before it, leading
  ones the first observed; a channel with nothing observed (or a single
  missing value) is 0."""
  values = np.array(history, np.float64)
  flat = values[:, None] if values.ndim == 1 else values
  for k in range(flat.shape[1]):
    column = flat[:, k]
    missing = np.isnan(column)
    if len(column) == 1 or missing.all():
      column[missing] = 0.0
      continue
    index = np.where(~missing, np.arange(len(column)), 0)
    np.maximum.accumulate(index, out=index)
    column[:] = column[index]
    lead = np.isnan(column)
    column[lead] = column[~lead][0]
  return values


def fill_last(past):
  """[n, t, c]: `impute_last_value` of each row and channel of `past`
  (NumPy or jax.numpy): a missing value is the last observed one before
  it, leading ones (a ragged batch's left pads too) the first observed;
  a channel with nothing observed is 0."""
  xp = xp_of(past)
  observed = ~xp.isnan(past)
  steps = xp.arange(past.shape[1])[None, :, None]
  latest = xp.maximum.accumulate(xp.where(observed, steps, 0), axis=1)
  filled = xp.take_along_axis(past, latest, axis=1)
  first = xp.take_along_axis(past, xp.argmax(observed, axis=1)[:, None],
                             axis=1)
  filled = xp.where(xp.isnan(filled), first, filled)
  return xp.where(observed.any(axis=1)[:, None], filled, 0.0)


def _last_observed(past):
  """[n, c]: each channel's last observed value (0 if none)."""
  xp = xp_of(past)
  observed = ~xp.isnan(past)
  steps = xp.arange(past.shape[1])[None, :, None]
  last = xp.max(xp.where(observed, steps, -1), axis=1)
  value = xp.take_along_axis(past, xp.maximum(last, 0)[:, None, :], axis=1)
  return xp.where(last >= 0, value[:, 0], 0.0)


def naive(past, horizon: int, season: int = 1, lengths=None):
  """[n, h, c]: the last observed value, repeated."""
  del season, lengths
  xp = xp_of(past)
  return xp.repeat(_last_observed(past)[:, None, :], horizon, axis=1)


def seasonal_naive(past, horizon: int, season: int = 1, lengths=None):
  """[n, h, c]: the value one season before each step (missing: 0); a
  history shorter than the season (`lengths`, default the full width)
  repeats its last observed value."""
  xp = xp_of(past)
  width = past.shape[1]
  last = naive(past, horizon)
  if season <= 1 or season > width:
    return last
  copied = past[:, width - season + np.arange(horizon) % season]
  copied = xp.where(xp.isnan(copied), 0.0, copied)
  if lengths is None:
    return copied
  long_enough = xp.asarray(lengths)[:, None, None] >= season
  return xp.where(long_enough, copied, last)


def drift(past, horizon: int, season: int = 1, lengths=None):
  """[n, h, c]: seasonal naive plus the history's mean change per step
  times the steps since the copied value: (mean of the last season - mean
  of the first) / (length - season). With season 1, the random walk with
  drift, last + h (last - first) / (length - 1). A history shorter than
  two seasons (or than two steps) has no slope: seasonal naive."""
  xp = xp_of(past)
  m = max(season, 1)
  width = past.shape[1]
  length = (xp.full((past.shape[0],), width) if lengths is None
            else xp.asarray(lengths))
  point = seasonal_naive(past, horizon, m, length)
  if width < 2 * m or width < 2:
    return point
  first = xp.take_along_axis(
      past, xp.clip((width - length)[:, None] + xp.arange(m)[None, :], 0,
                    width - 1)[:, :, None], axis=1)
  slope = (_nanmean(past[:, width - m:], xp) - _nanmean(first, xp)) / (
      xp.maximum(length - m, 1)[:, None])
  usable = ((length >= 2 * m) & (length > 1))[:, None] & xp.isfinite(slope)
  ahead = xp.asarray((np.arange(horizon) // m + 1) * m)[None, :, None]
  return point + xp.where(usable, slope, 0.0)[:, None, :] * ahead


def gift_seasonal_naive(past, horizon: int, season: int = 1, lengths=None):
  """[n, h, c]: `seasonal_naive` of the past filled with its last values
  (`fill_last`), as GIFT-Eval's StatsForecastPredictor feeds
  statsforecast's SeasonalNaive."""
  return seasonal_naive(fill_last(past), horizon, season, lengths)


def seasonal_naive_sigma(past, horizon: int, season: int = 1,
                         lengths=None):
  """[n, h, c]: the standard deviation statsforecast's SeasonalNaive gives
  each forecast step of a (filled) history: sigma sqrt(floor(k / m) + 1)
  at step k, sigma the root of the sum of the squared in-sample residuals
  y_t - y_{t-m} over (length - m); 0 when length <= m. `lengths` as
  `stack` gives them (pairs reaching into a row's left pad are not
  residuals)."""
  xp = xp_of(past)
  m = max(season, 1)
  width = past.shape[1]
  length = (xp.full((past.shape[0],), width) if lengths is None
            else xp.asarray(lengths))
  if m < width:
    residual = past[:, m:] - past[:, :width - m]
    inside = (xp.arange(width - m)[None, :] >= (width - length)[:, None])
    squares = xp.where(inside[:, :, None] & ~xp.isnan(residual),
                       residual**2, 0.0).sum(axis=1)
    count = (length - m)[:, None]
    sigma = xp.where(count > 0, xp.sqrt(squares / xp.maximum(count, 1)),
                     0.0)
  else:
    sigma = xp.zeros((past.shape[0], past.shape[2]))
  widen = xp.sqrt(xp.asarray(np.arange(horizon) // m + 1.0))
  return sigma[:, None, :] * widen[None, :, None]


def interval_z(levels: Sequence[float]) -> np.ndarray:
  """[q]: the standard normal quantile of each level as GIFT-Eval asks
  statsforecast for it: the end (lower below 0.5, else upper) of the
  central interval of round(200 |q - 0.5|) percent, so 0.1 is the lower
  end of the 80% interval and 0.5 its mean."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  levels = np.asarray(levels, np.float64)
  percent = np.round(200 * (np.maximum(levels, 1 - levels) - 0.5))
  z = stats.norm.ppf(0.5 + percent / 200)
  return np.where(levels > 0.5, z, -z)


def gift_seasonal_naive_quantiles(histories: Sequence[np.ndarray],
                                  horizon: int, season: int,
                                  levels: Sequence[float]
                                  ) -> Tuple[np.ndarray, np.ndarray]:
  """GIFT-Eval's seasonal-naive forecasts of univariate ragged histories
  (NaN missing): (point [n, h], quantiles [n, h, q] at `levels`).

  Each history is cast to float32 and last-value filled, as GIFT-Eval's
  StatsForecastPredictor does; the point is `gift_seasonal_naive`; each
  quantile is point + `interval_z` * `seasonal_naive_sigma`, the
  `lo-`/`hi-` bound statsforecast's SeasonalNaive gives
  (docs/benchmark_suites.md, section 7).
  """
  past, lengths = stack([np.asarray(h, np.float32) for h in histories])
  filled = fill_last(past)
  point = seasonal_naive(filled, horizon, season, lengths)[..., 0]
  sigma = seasonal_naive_sigma(filled, horizon, season, lengths)[..., 0]
  return point, point[..., None] + sigma[..., None] * interval_z(levels)


def _nanmean(values, xp):
  """[n, c] mean over axis 1 of the observed values; NaN when none."""
  observed = ~xp.isnan(values)
  count = observed.sum(axis=1)
  total = xp.where(observed, values, 0.0).sum(axis=1)
  return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)


def context_mean(past, horizon: int, season: int = 1, lengths=None):
  """[n, h, c]: the mean of the observed history (0 if none)."""
  del season, lengths
  xp = xp_of(past)
  mean = _nanmean(past, xp)
  return xp.repeat(xp.where(xp.isnan(mean), 0.0, mean)[:, None, :], horizon,
                   axis=1)


FORECASTERS: Dict[str, Callable] = {
    'repeat_last': naive, 'naive': naive, 'seasonal_naive': seasonal_naive,
    'drift': drift, 'context_mean': context_mean,
    'gift_seasonal_naive': gift_seasonal_naive}


def forecast(name: str, histories: Sequence[np.ndarray], horizon: int,
             season: int = 1) -> np.ndarray:
  """[n, h, c] of the named baseline from ragged histories ([t_i] or
  [t_i, c], NaN missing), each from its whole history."""
  past, lengths = stack(histories)
  return np.asarray(FORECASTERS[name](past, horizon, season, lengths))


def forecaster(name: str, horizon: int, season: int) -> Callable:
  """`fn(batch) -> [b, horizon, c]` of the named baseline on a batch of
  fixed-length contexts (`past_values`, `past_observed_mask`), traceable
  inside jitted steps."""
  fn = FORECASTERS[name]

  def forecast_batch(batch):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    past = batch['past_values']
    mask = batch.get('past_observed_mask')
    if mask is not None:
      past = jnp.where(mask > 0, past, jnp.nan)
    return fn(past, horizon, season)

  return forecast_batch

