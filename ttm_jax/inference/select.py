"""A choice (or blend) of a model and naive baselines by backtest, per series
or per dataset: itself a `forecaster.Forecaster`.

  chosen = select.forecaster(forecaster.model_forecaster(r2))

For each window to forecast, every candidate forecasts the last `windows`
rolling-origin backtest windows inside each past (origins `horizon` apart,
ending at the past's end: `backtests.origins`), so nothing at or after the
window's cutoff is used. Each candidate's error on a series is its mean
absolute error scaled by each backtest history's seasonal error (GluonTS's
rule, `metrics.seasonal_error`). Then:

  per='series'   each series takes the candidate with the lowest error,
                 its own error pooled with the dataset's mean error
                 (`pool` pseudo-windows of the dataset mean: a series with
                 few backtest windows leans on the dataset's ranking)
  per='dataset'  every series takes the candidate with the lowest mean
                 error over the series
  mode='blend'   instead of the best, a mix weighted by inverse error

A series whose past is too short for one backtest window (fewer than
`max(2, season + 1)` points before it) takes seasonal naive. Quantiles:
normal around the chosen forecast, scaled by its own mean absolute error
at each step on the series' backtest windows (IBM's in-sample intervals;
the past's seasonal error where there is none).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax import metrics as metrics_lib
from ttm_jax.inference import backtests
from ttm_jax.inference import forecaster as forecaster_lib

MODEL = 'ttm'  # The model's name among the candidates.
CANDIDATES = (MODEL, 'seasonal_naive', 'naive', 'drift')
MODES = ('select', 'blend')
PER = ('series', 'dataset')
INTERVALS = ('normal', 'pooled')
# A seasonal naive one week back (sub-weekly data; the task's season
# otherwise), on last-value-filled pasts.
WEEKLY = 'weekly_naive'
# The fallback of a series too short to backtest: a seasonal naive.
FALLBACKS = ('seasonal_naive', 'gift_seasonal_naive')


def _baseline(name: str) -> Callable:
  """`fn(pasts, horizon, season) -> [n, h]` of a univariate baseline."""
  return lambda pasts, horizon, season: baselines.forecast(
      name, pasts, horizon, season)[..., 0]


BASELINES: Dict[str, Callable] = {
    name: _baseline(name) for name in ('seasonal_naive', 'naive', 'drift',
                                       'gift_seasonal_naive')}


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How the candidates are scored and combined (module docstring)."""
  candidates: Tuple[str, ...] = CANDIDATES
  mode: str = 'select'
  per: str = 'series'
  windows: int = 3
  pool: float = 1.0
  intervals: str = 'normal'
  interval_scale: float = 1.0

  def check(self, models: Sequence[str] = (MODEL,)) -> None:
    """One ConfigError naming the first bad option, before any work;
    `models`: the names of the model candidates given."""
    known = tuple(models) + tuple(BASELINES) + (WEEKLY,)
    unknown = [c for c in self.candidates
               if c not in known and c != MODEL]
    if unknown or not self.candidates:
      raise errors.ConfigError(f'select candidates {list(self.candidates)}: '
                               f'each must be one of {list(known)}.')
    if len(set(self.candidates)) != len(self.candidates):
      raise errors.ConfigError(f'select candidates {list(self.candidates)} '
                               'name one twice.')
    if not set(FALLBACKS) & set(self.candidates):
      raise errors.ConfigError(
          f'select candidates {list(self.candidates)}: seasonal_naive must '
          'be one (the series too short to backtest fall back to it).')
    if MODEL in self.candidates and MODEL not in models:
      raise errors.ConfigError(f"select candidate {MODEL!r} needs a "
                               '--checkpoint.')
    if self.intervals not in INTERVALS or not self.interval_scale > 0:
      raise errors.ConfigError(
          f'select intervals={self.intervals!r} interval_scale='
          f'{self.interval_scale}: intervals is one of {list(INTERVALS)}, '
          'interval_scale positive.')
    if self.mode not in MODES or self.per not in PER:
      raise errors.ConfigError(
          f'select mode={self.mode!r} per={self.per!r}: mode is one of '
          f'{list(MODES)}, per one of {list(PER)}.')
    if self.windows < 1 or self.pool < 0:
      raise errors.ConfigError(
          f'select windows={self.windows}, pool={self.pool}: windows must '
          'be at least 1 and pool at least 0.')


@dataclasses.dataclass
class Backtests:
  """Each candidate's forecasts of the backtest windows inside the pasts.

  Attributes:
    series: [r] the past each backtest window belongs to.
    truth: [r, h] its values.
    scale: [r] the seasonal error of its history (1 where undefined).
    forecasts: [r, h, k] the candidates' forecasts.
  """
  series: np.ndarray
  truth: np.ndarray
  scale: np.ndarray
  forecasts: np.ndarray


def run_backtests(candidates: Sequence[Callable], pasts, horizon: int,
                  season: int, windows: int) -> Backtests:
  """Every candidate (`fn(histories, horizon) -> [n, h]`) on the backtest
  windows of `pasts` (those leaving fewer than `max(2, season + 1)` points
  before their origin, or with no observed truth, are left out)."""
  found = [(i, o) for i, o in backtests.origins(
      [len(p) for p in pasts], horizon, windows, max(2, season + 1))
           if np.any(~np.isnan(pasts[i][o:o + horizon]))]  # Some truth.
  if not found:
    empty = np.zeros((0, horizon))
    return Backtests(np.zeros(0, int), empty, np.zeros(0),
                     np.zeros((0, horizon, len(candidates))))
  truth, histories = backtests.cut(pasts, found, horizon)
  past, lengths = baselines.stack(histories)
  scale = metrics_lib.seasonal_error(past, season, 'gluonts', lengths)[:, 0]
  scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
  forecasts = np.stack([fn(histories, horizon) for fn in candidates], -1)
  return Backtests(np.array([i for i, _ in found]), truth, scale, forecasts)


def _mean_by_series(values: np.ndarray, series: np.ndarray,
                    count: int) -> Tuple[np.ndarray, np.ndarray]:
  """([n, ...] the mean of `values` [r, ...] over each series' rows, [n]
  the row counts); 0 where a series has none."""
  counts = np.bincount(series, minlength=count).astype(float)
  totals = np.zeros((count,) + values.shape[1:])
  np.add.at(totals, series, values)
  shape = (-1,) + (1,) * (values.ndim - 1)
  return totals / np.maximum(counts, 1).reshape(shape), counts


def weights(tests: Backtests, recipe: Recipe, count: int,
            fallback: int) -> np.ndarray:
  """[n, k] each series' weight on each candidate; a series without a
  backtest window puts it all on candidate `fallback`."""
  scaled = np.nanmean(np.abs(tests.truth[..., None] - tests.forecasts),
                      axis=1) / tests.scale[:, None]
  scaled = np.where(np.isfinite(scaled), scaled, np.inf)
  error, counts = _mean_by_series(scaled, tests.series, count)
  has = counts > 0
  dataset = np.mean(error[has], axis=0) if has.any() else np.zeros(
      error.shape[1])
  if recipe.per == 'dataset':
    score = np.tile(dataset, (count, 1))
  else:  # 0/0 for a series without a window (pool 0): it falls back.
    with np.errstate(invalid='ignore'):
      score = (error * counts[:, None] + recipe.pool * dataset) / (
          counts[:, None] + recipe.pool)
  if recipe.mode == 'select':
    out = np.zeros_like(score)
    out[np.arange(count), np.argmin(score, axis=1)] = 1.0
  else:
    inverse = 1.0 / np.maximum(score, 1e-12)
    out = inverse / inverse.sum(axis=1, keepdims=True)
  out[~has] = np.eye(score.shape[1])[fallback]
  return out


def _chosen_errors(tests: Backtests, chosen: np.ndarray, count: int):
  """The chosen forecast's (weights `chosen` [n, k]) backtest errors:
  (truth - forecast [windows, h], and per series and step the mean of the
  absolute errors and of the share observed [n, h], both over the series'
  windows)."""
  point = np.einsum('rhk,rk->rh', tests.forecasts, chosen[tests.series])
  error = tests.truth - point
  total, _ = _mean_by_series(np.nan_to_num(np.abs(error)), tests.series,
                             count)
  seen, _ = _mean_by_series((~np.isnan(error)).astype(float), tests.series,
                            count)
  return error, total, seen


def _interval_scale(tests: Backtests, chosen: np.ndarray, pasts,
                    season: int) -> np.ndarray:
  """[n, h]: per series and step, the mean absolute error of the chosen
  forecast (weights `chosen` [n, k]) on its backtest windows; the past's
  seasonal error (or 1) where it has none or it is 0."""
  count, horizon = len(pasts), tests.truth.shape[1]
  _, total, seen = _chosen_errors(tests, chosen, count)
  with np.errstate(invalid='ignore', divide='ignore'):
    scale = total / seen if len(tests.series) else np.zeros((count, horizon))
  return np.where(np.isfinite(scale) & (scale > 0), scale,
                  forecaster_lib.fallback_scale(pasts, season)[:, None])


def _pooled(tests: Backtests, chosen: np.ndarray, point: np.ndarray,
            levels, recipe: Recipe, pasts, season: int) -> np.ndarray:
  """[n, h, q]: 'pooled' intervals. Each series' scale is its mean
  absolute backtest error over all its windows and steps (the past's
  seasonal error where it has none); the backtest errors over their
  series' scale are pooled over the dataset, and their quantiles taken
  per step where a step has 20 or more, else over every step with each
  step's spread (the running maximum of its root mean square, as errors
  grow with the horizon), centred on their median, so the median is the
  point forecast."""
  count, horizon = len(pasts), point.shape[1]
  error, total, seen = _chosen_errors(tests, chosen, count)
  with np.errstate(invalid='ignore', divide='ignore'):
    series_scale = total.mean(axis=1) / seen.mean(axis=1)
  fallback = forecaster_lib.fallback_scale(pasts, season)
  series_scale = np.where(np.isfinite(series_scale) & (series_scale > 0),
                          series_scale, fallback)
  z = error / series_scale[tests.series, None]
  levels = np.asarray(levels)
  spread = np.zeros((horizon, len(levels)))
  finite = np.isfinite(z)
  if finite.sum(axis=0).min() >= 20:
    for t in range(horizon):
      spread[t] = np.quantile(z[finite[:, t], t], levels) - np.median(
          z[finite[:, t], t])
  elif finite.sum() >= 20:
    with np.errstate(invalid='ignore'):
      rms = np.sqrt(np.nanmean(np.where(finite, z, np.nan) ** 2, axis=0))
    rms = np.maximum.accumulate(np.where(np.isfinite(rms) & (rms > 0), rms,
                                         np.nanmax(rms)))
    shape = np.quantile((z / rms)[finite], levels)
    shape = shape - np.median((z / rms)[finite])
    spread = rms[:, None] * shape[None]
  else:
    return forecaster_lib.normal_quantiles(
        point, recipe.interval_scale * np.repeat(
            series_scale[:, None], horizon, axis=1), levels)
  return point[..., None] + recipe.interval_scale * series_scale[
      :, None, None] * spread[None]


def _candidates(recipe: Recipe, models: Dict[str, Any], freq: str,
                season: int) -> List[Callable]:
  """`fn(histories, horizon) -> [n, h]` of each candidate."""
  out = []
  for name in recipe.candidates:
    if name in models:
      out.append(lambda pasts, horizon, model=models[name]: model(
          pasts, horizon, freq, (), season)[0])
    elif name == WEEKLY:
      out.append(lambda pasts, horizon, week=(
          baselines.week_length(freq) or season): BASELINES[
              'gift_seasonal_naive'](pasts, horizon, week))
    else:
      out.append(lambda pasts, horizon, fn=BASELINES[name]: fn(
          pasts, horizon, season))
  return out


def forecaster(models, recipe: Recipe = Recipe()
               ) -> forecaster_lib.Forecaster:
  """The recipe as a forecaster. `models`: the model candidates by name
  ({'ttm': a forecaster}, or several: a fine-tuned and a zero-shot model),
  a single forecaster (the 'ttm' candidate), or None (baselines only);
  their point forecasts are scored. Its `report()` gives the share of
  forecasts each candidate made since the last call (the runner records
  it per task). A model with a `prepare` step (a fine-tune) makes the
  recipe's own `prepare`: every model prepared, then the recipe built on
  them."""
  if models is None:
    models = {}
  elif isinstance(models, forecaster_lib.Forecaster):
    models = {MODEL: models}
  models = dict(models)
  recipe.check(tuple(models))
  shares = np.zeros(len(recipe.candidates))
  fallback = next(recipe.candidates.index(c) for c in recipe.candidates
                  if c in FALLBACKS)

  def fn(pasts, horizon, freq, levels, season):
    candidates = _candidates(recipe, models, freq, season)
    tests = run_backtests(candidates, pasts, horizon, season,
                          recipe.windows)
    chosen = weights(tests, recipe, len(pasts), fallback)
    shares[:] += chosen.sum(axis=0)
    point = np.einsum('nhk,nk->nh', np.stack(
        [fn(pasts, horizon) for fn in candidates], -1), chosen)
    if not len(levels):
      return point, point[..., :0]
    if recipe.intervals == 'pooled':
      return point, _pooled(tests, chosen, point, levels, recipe, pasts,
                            season)
    # IBM's in-sample intervals (at interval_scale 1): normal, with the
    # chosen forecast's mean absolute backtest error per series and step.
    scale = _interval_scale(tests, chosen, pasts, season)
    return point, forecaster_lib.normal_quantiles(
        point, recipe.interval_scale * scale, levels)

  def report() -> Dict[str, object]:
    total = max(shares.sum(), 1e-12)
    out = dict(dataclasses.asdict(recipe), share={
        name: round(float(v / total), 4)
        for name, v in zip(recipe.candidates, shares)})
    shares[:] = 0.0
    return out

  names = [models[c].name if c == MODEL else c for c in recipe.candidates]
  name = f'{recipe.mode}[{",".join(names)}]'
  first = next(iter(models.values()), None)
  pretraining = sorted({d for m in models.values()
                        for d in (m.pretraining_data or ())}) if (
                            models) else ()
  if any(m.pretraining_data is None for m in models.values()):
    pretraining = None
  config = dict(first.config if first is not None else {},
                recipe=dataclasses.asdict(recipe))
  if any(m.prepare is not None for m in models.values()):  # Fine-tuned first.

    def prepare(*args):
      return forecaster({k: m.prepare(*args) if m.prepare else m
                         for k, m in models.items()}, recipe)

    return forecaster_lib.Forecaster(
        name, fn, 'insample', pretraining, config, prepare=prepare)
  notes = {k: m.notes for k, m in models.items() if m.notes}
  return forecaster_lib.Forecaster(
      name, fn, 'insample', pretraining, config, report=report, notes=notes)
