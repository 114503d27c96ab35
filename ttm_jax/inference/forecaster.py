"""One forecaster type: a model, a fine-tuned model, a baseline, and a
blend or selection of them (`select`) all have one call,

  point, quantiles = forecaster(histories, horizon, freq, levels)

univariate histories (ragged, NaN missing, any length) in; point
forecasts [n, h] and quantiles [n, h, q] at `levels` out. The benchmark
runner, the suites' harness adapters and the recipes score and combine
forecasters through it. A forecaster that reads covariates
(`Forecaster.covariates`: a model zero-shot by in-context regression, a
fine-tune with an exogenous mixer, the regression-only baseline) also
takes them, `covariates=` a `covariates.Given` aligned with the
histories; the others are never handed any.

Quantiles come from the model's head ('head'), are the point forecast at
every level ('point', as fev scores point forecasts and its TTM wrapper
scored r2), or are normal around the point with the scale of the
forecaster's own errors at up to three origins inside each past
('insample', after IBM's GIFT-Eval recipe); GIFT-Eval's seasonal naive
has statsforecast's normal intervals ('statsforecast', `baseline`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax import metrics as metrics_lib
from ttm_jax.inference import backtests
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecast as forecast_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib

QUANTILE_SOURCES = ('head', 'point', 'insample')
# What IBM's model cards say each release was pretrained on (TTM_SPEC.md
# 4.x): the datasets the benchmark rows flag as overlapping.
KNOWN_PRETRAINING = {
    'ibm-granite/granite-timeseries-ttm-r2': (
        'australian_electricity_demand', 'australian_weather', 'bitcoin',
        'kdd_cup_2018', 'london_smart_meters', 'saugeenday', 'solar_power',
        'sunspot', 'solar', 'us_births', 'wind_farms', 'wind_power',
        'pems03', 'pems04', 'pems07', 'pems08', 'pems_bay', 'los_loop'),
}


@dataclasses.dataclass
class Forecaster:
  """Something that forecasts histories.

  Attributes:
    name: its name in rows and records.
    fn: `(histories, horizon, freq, levels, season) -> (point [n, h],
      quantiles [n, h, q])`.
    quantile_source: where its quantiles come from (module docstring).
    pretraining_data: the datasets it was pretrained on (None: unknown;
      (): none, a statistical baseline).
    config: what it is, for records (checkpoint, inputs, recipe, ...).
    report: `() -> dict` of what it did since its last call (a recipe's
      choices); None: nothing.
    prepare: `(histories, horizon, freq, name) -> Forecaster` run on a
      task's pasts before its forecasts (a fine-tune); None: none.
    notes: how it was made (a fine-tune's windows, epochs, ...).
    covariates: whether `fn` (and `prepare`) read covariates: they then
      take `covariates=` (a `covariates.Given`, or None without any).
  """
  name: str
  fn: Callable
  quantile_source: str
  pretraining_data: Optional[Sequence[str]] = None
  config: Dict[str, Any] = dataclasses.field(default_factory=dict)
  report: Optional[Callable[[], Dict[str, Any]]] = None
  prepare: Optional[Callable[..., 'Forecaster']] = None
  notes: Dict[str, Any] = dataclasses.field(default_factory=dict)
  covariates: bool = False

  def __call__(self, histories: Sequence[np.ndarray], horizon: int,
               freq: str, levels: Sequence[float] = (),
               season: Optional[int] = None,
               covariates: Optional[covariates_lib.Given] = None):
    """(point [n, h], quantiles [n, h, q]) of univariate `histories`;
    `season` defaults to the frequency's (`baselines.season_length`);
    `covariates` reach a forecaster that reads them (else an error)."""
    if season is None:
      season = baselines.season_length(freq)
    extra = {}
    if covariates is not None:
      if not self.covariates:
        raise ValueError(f'{self.name} reads no covariates.')
      extra['covariates'] = covariates
    return self.fn([np.asarray(h, np.float64) for h in histories],
                   int(horizon), freq, tuple(levels), int(season), **extra)


def baseline(name: str = 'seasonal_naive') -> Forecaster:
  """A naive baseline (`ttm_jax.baselines`), every quantile the point (as
  fev and GluonTS score point forecasts), but 'gift_seasonal_naive':
  GIFT-Eval's seasonal naive with statsforecast's normal intervals
  (`baselines.gift_seasonal_naive_quantiles`), the baseline of GIFT-Eval's
  leaderboard."""
  if name not in baselines.FORECASTERS:
    raise errors.ConfigError(f'baseline {name!r}: expected one of '
                             f'{sorted(baselines.FORECASTERS)}.')
  if name == 'gift_seasonal_naive':
    def gift_fn(histories, horizon, freq, levels, season):
      del freq
      return baselines.gift_seasonal_naive_quantiles(histories, horizon,
                                                     season, levels)
    return Forecaster(name, gift_fn, 'statsforecast', pretraining_data=(),
                      config=dict(baseline=name))

  def fn(histories, horizon, freq, levels, season):
    del freq
    point = baselines.forecast(name, histories, horizon, season)[..., 0]
    return point, np.repeat(point[..., None], len(levels), axis=-1)
  return Forecaster(name, fn, 'point', pretraining_data=(),
                    config=dict(baseline=name))


def normal_quantiles(point, scale, levels) -> np.ndarray:
  """[n, h, q]: the normal quantiles at `levels` around `point` [n, h]
  with standard deviation `scale` [n, h]."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  z = stats.norm.ppf(np.asarray(levels))
  return point[..., None] + scale[..., None] * z


def fallback_scale(histories, season: int) -> np.ndarray:
  """[n]: each history's seasonal error (GluonTS's rule), 1 where it is
  undefined or 0: the scale of intervals without errors to go by."""
  past, lengths = baselines.stack(histories)
  error = metrics_lib.seasonal_error(past, season, 'gluonts', lengths)[:, 0]
  return np.where(np.isfinite(error) & (error > 0), error, 1.0)


def insample_scale(point_fn, histories, horizon, season,
                   covariates: Optional[covariates_lib.Given] = None
                   ) -> np.ndarray:
  """[n, h]: per series and step, the mean |error| of `point_fn(origins,
  horizon) -> [m, h]` at up to three origins inside each history (h
  apart, `backtests.origins`); a series with no room for one takes
  `fallback_scale`. With `covariates`, `point_fn(origins, horizon,
  covariates at the origins)`."""
  requests = backtests.origins([len(h) for h in histories], horizon, 3,
                               min_history=2)
  total = np.zeros((len(histories), horizon))
  count = np.zeros(len(histories))
  if requests:
    truth, origins = backtests.cut(histories, requests, horizon)
    extra = () if covariates is None else (covariates.at(requests,
                                                         horizon),)
    errors_ = np.nan_to_num(np.abs(truth - point_fn(origins, horizon,
                                                    *extra)))
    rows = np.array([i for i, _ in requests])
    np.add.at(total, rows, errors_)
    np.add.at(count, rows, 1)
  with np.errstate(invalid='ignore', divide='ignore'):
    scale = total / count[:, None]
  return np.where((count[:, None] > 0) & (scale > 0), scale,
                  fallback_scale(histories, season)[:, None])


def load(checkpoint, revision: str = '') -> model_lib.Model:
  """A `model.Model` from itself or a checkpoint."""
  if isinstance(checkpoint, model_lib.Model):
    return checkpoint
  return model_lib.Model(checkpoint, revision)


def model_forecaster(checkpoint, revision: str = '',
                     quantiles: str = 'auto',
                     pretrained_on: Optional[Sequence[str]] = None,
                     inputs: inputs_lib.Inputs = inputs_lib.DEFAULT,
                     name: Optional[str] = None,
                     regression: Optional[covariates_lib.Regression] = None,
                     channels: Optional[covariates_lib.Channels] = None
                     ) -> Forecaster:
  """A TTM through the one forecasting path (`forecast.forecast`).

  Args:
    checkpoint, revision: the model (a checkpoint, or a `model.Model`, as
      a fine-tune returns it).
    quantiles: 'head', 'point', 'insample', or 'auto' (the head when it
      has one, else insample).
    pretrained_on: what it was pretrained on: dataset names, or a key of
      KNOWN_PRETRAINING; default: what the checkpoint declares.
    inputs: how histories become its inputs (`inputs.Inputs`).
    name: its name in rows (default the checkpoint's folder name, with
      '-adapted' when the inputs adapt pasts).
    regression: it reads covariates (`Forecaster.covariates`), a model
      without an exogenous mixer by in-context regression with these
      options (`covariates.forecast`).
    channels: it reads covariates, a model with an exogenous mixer (a
      fine-tune's) as these channels after the target
      (`covariates.Channels`).
  """
  inputs = inputs_lib.of(inputs)
  model = load(checkpoint, revision)
  source = ('head' if model.quantile_levels else 'insample') if (
      quantiles == 'auto') else quantiles
  if source not in QUANTILE_SOURCES:
    raise errors.ConfigError(f'quantiles={quantiles!r}: expected one of '
                             f"{QUANTILE_SOURCES + ('auto',)}.")
  if source == 'head' and not model.quantile_levels:
    raise errors.ConfigError(f'{model.source} has no quantile head: use '
                             "quantiles='insample' or 'point'.")

  def predict(histories, horizon, freq, season, given=None):
    with_quantiles = bool(model.quantile_levels)
    if given is not None and channels is not None:
      values, futures = channels.apply(histories, given.values, horizon)
      point, head = forecast_lib.forecast(
          model, values, horizon, freq, inputs, season, num_targets=1,
          futures=futures, with_quantiles=with_quantiles)
    elif given is not None and given.layout:
      point, head = covariates_lib.forecast(
          model, histories, given.values, given.layout, horizon, freq,
          inputs, regression, season, with_quantiles=with_quantiles)
    else:
      point, head = forecast_lib.forecast(
          model, histories, horizon, freq, inputs, season,
          with_quantiles=with_quantiles)
    return point[..., 0], None if head is None else head[:, :, 0]

  def fn(histories, horizon, freq, levels, season, covariates=None):
    point, head = predict(histories, horizon, freq, season, covariates)
    if source == 'point' or not len(levels):
      return point, np.repeat(point[..., None], len(levels), axis=-1)
    if source == 'head' and head is not None and head.shape[1] == horizon:
      grid = np.asarray(model.quantile_levels)
      return point, np.stack([np.stack([np.interp(
          levels, grid, head[i, t]) for t in range(horizon)])
                              for i in range(len(head))])
    scale = insample_scale(
        lambda origins, h, *given: predict(origins, h, freq, season,
                                           *given)[0],
        histories, horizon, season, covariates)
    return point, normal_quantiles(point, scale, levels)

  declared = pretraining_data(model.source)
  if pretrained_on:
    declared = [d for entry in pretrained_on
                for d in KNOWN_PRETRAINING.get(entry, (entry,))]
  config = dict(checkpoint=model.source, revision=model.revision,
                context_length=model.context_length,
                prediction_length=model.horizon, inputs=inputs.name)
  if name is None:
    name = os.path.basename(os.path.normpath(model.source))
    if inputs.adaptation is not None and inputs != inputs_lib.DEFAULT:
      name += '-adapted'  # The default's adaptation of short pasts: none.
  if inputs.adaptation is not None:
    config['adaptation'] = inputs.adaptation.as_dict()
  if regression is not None:
    config['regression'] = regression.as_dict()
  if channels is not None:
    config['channels'] = list(channels.names)
  return Forecaster(name, fn, source, declared, config,
                    covariates=regression is not None or channels is not None)


def regression_baseline(penalty: float = 1.0) -> Forecaster:
  """The regression-only baseline (`covariates.regression_only`: each
  history's target regressed on its covariates alone, ridge `penalty`),
  every quantile the point; without covariates, the history's mean."""

  def fn(histories, horizon, freq, levels, season, covariates=None):
    del freq, season
    if covariates is None or not covariates.layout:
      point = np.stack([np.full(horizon, np.nanmean(h)) for h in histories])
    else:
      point = covariates_lib.regression_only(
          histories, covariates.values, covariates.layout, horizon,
          penalty)[..., 0]
    return point, np.repeat(point[..., None], len(levels), axis=-1)
  return Forecaster('covariate_regression', fn, 'point', pretraining_data=(),
                    config=dict(baseline='covariate_regression',
                                ridge=penalty), covariates=True)


def pretraining_data(checkpoint: str) -> Optional[List[str]]:
  """What a checkpoint declares it was pretrained on: its config.json's
  `pretraining_data` (models pretrained here), IBM's model card for IBM's
  hub ids, else None (unknown)."""
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  folder = checkpoint if os.path.isdir(checkpoint) else os.path.join(
      checkpoint_lib.PRETRAINED_DIR, checkpoint)
  path = os.path.join(folder, 'config.json')
  names = [checkpoint]
  if os.path.exists(path):
    with open(path) as f:
      values = json.load(f)
    if values.get('pretraining_data') is not None:
      return list(values['pretraining_data'])
    names.append(values.get('_name_or_path', ''))
  for hub_id, found in KNOWN_PRETRAINING.items():
    if any(name.startswith(hub_id) for name in names):
      return list(found)
  return None
