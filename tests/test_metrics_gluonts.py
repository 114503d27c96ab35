"""The streamed metrics (ttm_jax.metrics) against GluonTS's own evaluation
(`gluonts.model.evaluate_forecasts`, axis=None, as GIFT-Eval runs it), on
random and real windows, with missing values in contexts and targets, and
seasonal naive against GluonTS's SeasonalNaivePredictor."""

import os

import numpy as np
import pandas as pd
import pytest

from tests import conftest
from ttm_jax import baselines
from ttm_jax import metrics as metrics_lib
from ttm_jax import sharding
from ttm_jax.evaluators import windows

gluonts = conftest.require_module('gluonts')
# pylint: disable=g-import-not-at-top,wrong-import-position
from gluonts.dataset.split import split
from gluonts.ev import metrics as gm
from gluonts.model import evaluate_forecasts
from gluonts.model.forecast import QuantileForecast
from gluonts.model.seasonal_naive import SeasonalNaivePredictor

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _gluonts_data(past, future):
  """Each (window, channel) as one univariate series: its history is the
  window's context, its label the window's future (NaN missing)."""
  n, length, c = past.shape
  horizon = future.shape[1]
  entries = []
  for w in range(n):
    for k in range(c):
      entries.append({'target': np.concatenate([past[w, :, k],
                                                future[w, :, k]]),
                      'start': pd.Period('2020-01-01', freq='h'),
                      'item_id': f'{w}/{k}'})
  _, template = split(entries, offset=-horizon)
  return template.generate_instances(prediction_length=horizon, windows=1)


def _gluonts_metrics(test_data, forecasts, season, levels):
  metrics = [gm.MSE(forecast_type='0.5'), gm.MAE(forecast_type='0.5'),
             gm.MASE(), gm.MeanWeightedSumQuantileLoss(levels),
             gm.MSIS(alpha=2 * levels[0])]
  metrics += [gm.Coverage(q) for q in levels]
  table = evaluate_forecasts(forecasts, test_data=test_data, metrics=metrics,
                             axis=None, seasonality=season)
  row = table.iloc[0]
  out = {'mse': row['MSE[0.5]'], 'mae': row['MAE[0.5]'],
         'mase': row['MASE[0.5]'],
         'wql': row['mean_weighted_sum_quantile_loss'], 'msis': row['MSIS']}
  q = len(levels)
  for i in range(q // 2):  # Central intervals: P(lo < y <= hi).
    label = metrics_lib.interval_label(levels[i], levels[q - 1 - i])
    out[f'coverage_{label}'] = (row[f'coverage[{levels[q - 1 - i]}]']
                                - row[f'coverage[{levels[i]}]'])
  return out


def _quantile_forecasts(test_data, quantiles, levels):
  """QuantileForecasts of [n, h, c, q] in the items' order."""
  n, _, c, _ = quantiles.shape
  out = []
  for index, (label, w, k) in enumerate(zip(
      test_data.label, np.repeat(np.arange(n), c), np.tile(np.arange(c), n))):
    del index
    out.append(QuantileForecast(
        forecast_arrays=quantiles[w, :, k, :].T.astype(np.float64),
        start_date=label['start'], forecast_keys=[str(q) for q in levels],
        item_id=label['item_id']))
  return out


def _batch(past, future, pad_windows=0):
  """The pipeline's batch of NaN-marked arrays (plus padding rows)."""
  def padded(x):
    return np.concatenate([x, np.zeros((pad_windows,) + x.shape[1:],
                                       x.dtype)])
  weight = np.concatenate([np.ones(len(past)), np.zeros(pad_windows)])
  return {'past_values': padded(np.nan_to_num(past)).astype(np.float32),
          'past_observed_mask': padded(~np.isnan(past)).astype(np.float32),
          'future_values': padded(np.nan_to_num(future)).astype(np.float32),
          'future_observed_mask': padded(~np.isnan(future)).astype(
              np.float32),
          'weight': weight.astype(np.float32)}


def _ours(forecast, batches, season, levels, compare=None):
  """Our streamed metrics over `batches` (several: the totals carry)."""
  mesh = sharding.make_mesh()
  names = metrics_lib.default_names(quantiles=True)
  metrics = metrics_lib.get(names)
  step = windows.make_eval_step(forecast, metrics, mesh, season=season,
                               levels=levels, compare=compare)
  totals = None
  for batch in batches:
    totals = step({}, sharding.shard_batch(batch, mesh), totals)
  return metrics_lib.results(metrics, totals)


def _assert_close(ours, theirs, tolerance=1e-6):
  for key, value in theirs.items():
    assert ours[key] == pytest.approx(value, rel=tolerance, abs=tolerance), (
        key, ours[key], value)


def _random_windows(seed, n=24, length=40, horizon=12, channels=3):
  rng = np.random.default_rng(seed)
  past = rng.normal(size=(n, length, channels)).cumsum(1).astype(np.float32)
  future = (past[:, -1:, :] + rng.normal(size=(n, horizon, channels))
            ).astype(np.float32)
  past[rng.random(past.shape) < 0.1] = np.nan  # Missing context values.
  future[rng.random(future.shape) < 0.1] = np.nan  # Missing targets.
  spread = np.sort(rng.normal(size=(n, horizon, channels, len(LEVELS))),
                   axis=-1)
  centre = np.nan_to_num(future) + rng.normal(size=future.shape)
  quantiles = (centre[..., None] + spread).astype(np.float32)
  return past, future, quantiles


@pytest.mark.parametrize('season', [1, 7, 60])  # 60 > context: m = 1.
def test_random_windows_match_gluonts(season):
  past, future, quantiles = _random_windows(season)
  halves = [slice(0, 12), slice(12, 24)]  # Two batches, streamed.
  batches = []
  for part in halves:
    batch = _batch(past[part], future[part], pad_windows=4)
    batch['quantiles'] = np.concatenate([quantiles[part], np.full(
        (4,) + quantiles.shape[1:], 7.0, np.float32)])
    batches.append(batch)

  def forecast(variables, batch):
    del variables
    return batch['quantiles'][..., len(LEVELS) // 2], batch['quantiles']

  ours = _ours(forecast, batches, season, LEVELS)
  test_data = _gluonts_data(past, future)
  theirs = _gluonts_metrics(test_data, _quantile_forecasts(
      test_data, quantiles, LEVELS), season, LEVELS)
  assert ours['num_windows'] == 24 and ours['mase_excluded'] == 0
  _assert_close(ours, theirs)


def test_other_levels_match_gluonts():
  levels = (0.05, 0.25, 0.5, 0.75, 0.95)
  past, future, quantiles = _random_windows(3)
  quantiles = quantiles[..., [0, 2, 4, 6, 8]]

  def forecast(variables, batch):
    del variables, batch
    return quantiles[..., 2], quantiles

  ours = _ours(forecast, [_batch(past, future)], 4, levels)
  test_data = _gluonts_data(past, future)
  theirs = _gluonts_metrics(test_data, _quantile_forecasts(
      test_data, quantiles, levels), 4, levels)
  assert set(k for k in ours if k.startswith('coverage_')) == {
      'coverage_90', 'coverage_50'}
  _assert_close(ours, theirs)


def test_real_windows_and_seasonal_naive_match_gluonts():
  """ETTh1 test-period windows (context 512, horizon 96, 7 channels, season
  24): quantile forecasts around seasonal naive, and seasonal naive itself
  beside it, each against GluonTS (its own SeasonalNaivePredictor)."""
  etth1 = conftest.require_data('ltsf', 'ETTh1.csv')
  values = pd.read_csv(etth1).iloc[:, 1:].to_numpy(np.float32)
  length, horizon, season = 512, 96, 24
  starts = np.arange(12000, 12000 + 40 * 37, 37)
  past = np.stack([values[s:s + length] for s in starts])
  future = np.stack([values[s + length:s + length + horizon]
                     for s in starts])
  past[3, 100:140, 2] = np.nan  # A gap in one context, and in targets.
  future[5, 10:20, :] = np.nan
  naive = baselines.forecaster('seasonal_naive', horizon, season)
  rng = np.random.default_rng(0)
  offsets = np.sort(rng.normal(size=len(LEVELS)) * 0.8).astype(np.float32)
  batch = _batch(past, future)

  def forecast(variables, b):  # The median is the point forecast.
    del variables
    quantiles = naive(b)[..., None] + offsets
    return quantiles[..., len(LEVELS) // 2], quantiles

  ours = _ours(forecast, [batch], season, LEVELS,
               compare={'seasonal_naive': naive})
  test_data = _gluonts_data(past, future)
  point = np.asarray(naive(batch))
  theirs = _gluonts_metrics(test_data, _quantile_forecasts(
      test_data, point[..., None] + offsets, LEVELS), season, LEVELS)
  _assert_close(ours, theirs)
  # Seasonal naive: GluonTS's predictor on the same contexts.
  predictor = SeasonalNaivePredictor(prediction_length=horizon,
                                     season_length=season)
  naive_theirs = _gluonts_metrics(
      test_data, list(predictor.predict(test_data.input)), season, LEVELS)
  naive_ours = ours['seasonal_naive']
  # The closed interval [lo, hi] of a point forecast holds exact hits; the
  # GluonTS difference P(lo < y <= hi) is 0 for it.
  hits = np.nansum(point == future) / np.sum(~np.isnan(future))
  for key in [k for k in naive_theirs if k.startswith('coverage_')]:
    assert naive_theirs[key] == 0.0
    naive_theirs[key] = hits
  _assert_close(naive_ours, naive_theirs)


def test_constant_context_is_left_out_of_scaled_metrics():
  """A context with no seasonal error: GluonTS would divide by zero; here
  the window leaves MASE and MSIS (counted), the rest keep it."""
  past = np.stack([np.arange(16, dtype=np.float32)[:, None],
                   np.full((16, 1), 3.0, np.float32)])
  future = np.array([[[20.0], [22.0]], [[3.0], [5.0]]], np.float32)
  point = np.array([[[16.0], [16.0]], [[3.0], [3.0]]], np.float32)

  batch = _batch(past, future, pad_windows=6)
  batch['point'] = np.concatenate([point, np.zeros((6, 2, 1), np.float32)])

  def forecast(variables, b):
    del variables
    return b['point']

  ours = _ours(forecast, [batch], 1, LEVELS)
  # Window 0: seasonal error 1, errors 4 and 6 -> MASE 5; window 1 out.
  assert ours['mase'] == pytest.approx(5.0)
  assert ours['mase_excluded'] == 2
  assert ours['mse'] == pytest.approx((16 + 36 + 0 + 4) / 4)
  # A point forecast at every level: WQL = sum |e| / sum |y|.
  assert ours['wql'] == pytest.approx((4 + 6 + 2) / (20 + 22 + 3 + 5))


def test_context_no_longer_than_the_season_leaves_scaled_metrics_out():
  """Season == context: no pair y_t, y_{t-m} (GluonTS: NaN). MASE and MSIS
  are left out, not NaN (a NaN would end the run as diverged); the rest
  are computed."""
  rng = np.random.default_rng(7)
  past = rng.normal(size=(3, 8, 2)).astype(np.float32)
  future = rng.normal(size=(3, 4, 2)).astype(np.float32)
  batch = _batch(past, future, pad_windows=5)  # 8 rows: any device count.
  batch['point'] = np.concatenate([future + 0.5,
                                   np.zeros((5, 4, 2), np.float32)])

  def forecast(variables, b):
    del variables
    return b['point']

  ours = _ours(forecast, [batch], 8, LEVELS)
  assert 'mase' not in ours and 'msis' not in ours
  assert ours['mase_excluded'] == 3 * 4 * 2
  assert ours['mse'] == pytest.approx(0.25)
  assert np.isfinite(ours['wql'])
