"""Naive forecasters, evaluated by the same evaluator as the models.

Each maps a batch's context to a forecast in the data's units:
  repeat_last     the last observed value of each channel
  seasonal_naive  the value one season earlier (GluonTS's SeasonalNaive;
                  repeat_last when the season is longer than the context)
  context_mean    the mean of the observed context

The season comes from the frequency as GluonTS's `get_seasonality` gives it
(hourly 24, 15-minute 96, daily 1, monthly 12, ...).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import jax.numpy as jnp

NAMES = ('repeat_last', 'seasonal_naive', 'context_mean')
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


def _last_observed(past, mask):
  """[b, c]: each channel's last observed value (0 if none)."""
  steps = jnp.arange(past.shape[1])[None, :, None]
  last = jnp.max(jnp.where(mask > 0, steps, -1), axis=1)
  value = jnp.take_along_axis(past, jnp.maximum(last, 0)[:, None, :], 1)[:, 0]
  return jnp.where(last >= 0, value, 0.0)


def repeat_last(past, mask, horizon: int, season: int = 1):
  del season
  return jnp.repeat(_last_observed(past, mask)[:, None, :], horizon, axis=1)


def seasonal_naive(past, mask, horizon: int, season: int = 1):
  length = past.shape[1]
  if season <= 1 or season > length:
    return repeat_last(past, mask, horizon)
  index = length - season + jnp.arange(horizon) % season
  return past[:, index, :]


def context_mean(past, mask, horizon: int, season: int = 1):
  del season
  total = jnp.sum(past * mask, axis=1)
  mean = total / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
  return jnp.repeat(mean[:, None, :], horizon, axis=1)


FORECASTERS: Dict[str, Callable] = {'repeat_last': repeat_last,
                                    'seasonal_naive': seasonal_naive,
                                    'context_mean': context_mean}


def forecaster(name: str, horizon: int, season: int) -> Callable:
  """`fn(batch) -> [b, horizon, c]` for the named baseline."""
  fn = FORECASTERS[name]

  def forecast(batch):
    past = batch['past_values']
    mask = batch.get('past_observed_mask')
    mask = jnp.ones_like(past) if mask is None else mask.astype(past.dtype)
    return fn(past, mask, horizon, season)

  return forecast
