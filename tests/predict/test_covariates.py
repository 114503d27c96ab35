"""Covariates through `ttm_jax.forecast` and `ttm_jax.backtest`: zero-shot
by in-context regression (the API's placing of history and future_df
against `inference.covariates` called by hand, both orders helping a
target the covariates drive, no look past a backtest origin for past-only
covariates, static covariates changing nothing), and misaligned covariates
refused, each naming the column and the first bad rows."""

import logging

import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests.predict.test_bad_inputs_api import _refused
from tests.predict.test_bad_inputs_frames import exogenous_dir  # pylint: disable=unused-import
from tests.predict.test_forecast import model_dir  # pylint: disable=unused-import
from ttm_jax import errors
from ttm_jax.inference import covariates
from ttm_jax.inference import model as model_lib

HORIZON = 16


def _load_frames(rows=400, sites=('a', 'b'), seed=0):
  """Hourly load driven by temperature and a day type (a categorical),
  per site, with the next HORIZON hours of both in a future frame."""
  rng = np.random.default_rng(seed)
  parts, futures = [], []
  for k, site in enumerate(sites):
    count = rows + HORIZON
    times = pd.date_range('2024-01-01', periods=count, freq='h')
    temp = 15 + 8 * np.sin(np.arange(count) / 37.0 + k) + rng.normal(
        size=count)
    day = np.where(rng.random(count) < 0.3, 'holiday', 'work')
    load = (100 + 6 * temp + 25 * (day == 'holiday')
            + 3 * np.sin(2 * np.pi * np.arange(count) / 24)
            + rng.normal(size=count))
    frame = pd.DataFrame({'site': site, 'time': times, 'load': load,
                          'temp': temp, 'day': day})
    parts.append(frame.iloc[:rows])
    futures.append(frame.iloc[rows:].drop(columns=['load']))
  return (pd.concat(parts, ignore_index=True),
          pd.concat(futures, ignore_index=True))


def _forecast(model_dir, df, **kwargs):
  return ttm_jax.forecast(df, **{**dict(
      timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site'], target_columns=['load']), **kwargs})


@pytest.mark.parametrize('order', covariates.ORDERS)
def test_the_api_places_history_and_future_as_the_regression_reads_them(
    model_dir, order):
  """Site b's forecast is `inference.covariates.forecast` on its load,
  temperature (history then future_df) and day type coded in sorted
  order (holiday 0, work 1)."""
  df, future = _load_frames()
  out = _forecast(model_dir, df, known_covariates=['temp', 'day'],
                  future_df=future, regression=dict(order=order))
  mine = df[df['site'] == 'b']
  ahead = future[future['site'] == 'b']
  known = np.stack([
      np.concatenate([mine['temp'], ahead['temp']]),
      np.concatenate([mine['day'], ahead['day']]) == 'work'], axis=1)
  model = model_lib.Model(model_dir)
  want, _ = covariates.forecast(
      model, [mine['load'].to_numpy()],
      [covariates.Covariates(past=np.zeros((len(mine), 0)),
                             known=known.astype(float))],
      covariates.Layout(known=('temp', 'day'), categorical=frozenset(
          {'day'})), HORIZON, 'h', regression=covariates.of(dict(
              order=order)), season=24)
  np.testing.assert_allclose(out[out['site'] == 'b']['load'], want[0, :, 0],
                             rtol=1e-6)


def test_covariates_that_drive_the_target_help_in_both_orders(model_dir):
  """Backtest MSE over 3 windows: each order (at ridge 1: these covariates
  drive the target) beats the same model without the covariates, on load
  that temperature and day type drive."""
  df, _ = _load_frames()
  common = dict(timestamp_column='time', horizon=HORIZON,
                checkpoint=model_dir, id_columns=['site'],
                target_columns=['load'], windows=3, quantiles=())
  without = ttm_jax.backtest(df.drop(columns=['temp', 'day']), **common)
  for order in covariates.ORDERS:
    report = ttm_jax.backtest(df, known_covariates=['temp', 'day'],
                              regression=dict(order=order, ridge=1.0),
                              **common)
    assert report['model']['mse'] < 0.5 * without['model']['mse'], order
    assert report['covariates']['regression']['order'] == order
    assert report['covariates']['categorical'] == ['day']


def test_a_constant_covariate_changes_nothing(model_dir):
  """Regress-first with a covariate constant over the context: the fit is
  the context's mean, and the standardised inputs make TTM's forecast of
  the centred history that of the history, shifted back."""
  df, future = _load_frames(sites=('a',))
  df, future = df.assign(flat=3.0), future.assign(flat=3.0)
  plain = _forecast(model_dir, df[['site', 'time', 'load']])
  flat = _forecast(model_dir, df, known_covariates=['flat'],
                   future_df=future[['site', 'time', 'flat']])
  np.testing.assert_allclose(flat['load'], plain['load'], rtol=1e-5)


def test_past_covariates_are_not_read_after_a_backtest_origin(model_dir):
  """The last backtest window's forecast is the same whatever the past-only
  temperature is after its origin (it is lagged by the horizon), and
  changes with it before (ungated: the gate may turn it off)."""
  df, _ = _load_frames(sites=('a',))
  common = dict(timestamp_column='time', horizon=HORIZON,
                checkpoint=model_dir, id_columns=['site'],
                target_columns=['load'], windows=1, quantiles=(),
                past_covariates=['temp'], regression=dict(gate=0))
  report = ttm_jax.backtest(df[['site', 'time', 'load', 'temp']], **common)
  later = df[['site', 'time', 'load', 'temp']].copy()
  later.loc[len(df) - HORIZON:, 'temp'] += 50
  assert ttm_jax.backtest(later, **common)['model'] == report['model']
  earlier = df[['site', 'time', 'load', 'temp']].copy()
  earlier.loc[len(df) - 2 * HORIZON:len(df) - HORIZON - 1, 'temp'] += 50
  assert ttm_jax.backtest(earlier, **common)['model'] != report['model']


def test_static_covariates_change_no_zero_shot_forecast(model_dir, caplog):
  df, future = _load_frames()
  df['region'] = df['site'].map({'a': 'north', 'b': 'south'})
  plain = _forecast(model_dir, df, known_covariates=['temp'],
                    future_df=future)
  with caplog.at_level(logging.WARNING):
    static = _forecast(model_dir, df, known_covariates=['temp'],
                       static_covariates=['region'], future_df=future)
  np.testing.assert_allclose(static['load'], plain['load'], rtol=1e-9)
  assert 'intercept absorbs them' in caplog.text


def test_an_unseen_category_in_the_future_adds_nothing(model_dir):
  df, future = _load_frames(sites=('a',))
  known = dict(known_covariates=['temp', 'day'])
  base = _forecast(model_dir, df, future_df=future, **known)
  odd = future.copy()
  odd.loc[odd.index[3], 'day'] = 'strike'  # Never seen in the history.
  changed = _forecast(model_dir, df, future_df=odd, **known)
  # Step 3 loses the day type's coefficient; the others are unchanged.
  steps = np.arange(HORIZON) != 3
  np.testing.assert_allclose(changed['load'][steps], base['load'][steps],
                             rtol=1e-9)
  assert changed['load'][3] != base['load'][3]


# ------------------------------------------------ misaligned covariates
def test_a_future_frame_short_of_the_horizon_names_series_time_and_row(
    model_dir):
  df, future = _load_frames()
  short = future.drop(index=future.index[-2:])
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             future_df=short), errors.DataError,
           "future_df lacks known covariate values for series {'site': "
           "'b'} at 2024-01-18 06:00:00 (and 1 more of the 16 forecast "
           'steps): it does not cover the horizon; its rows for this series '
           'end at row 30 (2024-01-18 05:00:00).')


def test_a_covariate_missing_in_the_future_frame_is_named(model_dir):
  df, future = _load_frames()
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp', 'day'],
                             future_df=future.drop(columns=['day'])),
           errors.DataError, "future_df has no column 'day' (a known "
           'covariate column).')
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp']),
           errors.DataError, "Give the future values of the known "
           "covariates ['temp'] for the 16 forecast steps in future_df")


def test_nan_in_a_known_future_covariate_names_column_and_rows(model_dir):
  df, future = _load_frames()
  future.loc[[20, 21], 'temp'] = np.nan
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             future_df=future), errors.DataError,
           "future_df: known covariate 'temp' is missing (NaN) for series "
           "{'site': 'b'} at rows [21, 22] (2024-01-17 20:00:00 ...): every "
           'forecast step needs its value.')


def test_a_covariate_that_is_also_a_target_is_refused(model_dir):
  df, future = _load_frames()
  _refused(lambda: _forecast(model_dir, df, target_columns=['load', 'temp'],
                             known_covariates=['temp'], future_df=future),
           errors.ConfigError, "Column 'temp' is given twice: as a target "
           'and as a known covariate column')
  _refused(lambda: _forecast(model_dir, df, past_covariates=['temp'],
                             static_covariates=['temp']),
           errors.ConfigError, "Column 'temp' is given twice: as a past "
           'covariate and as a static covariate column')


def test_mismatched_ids_are_named(model_dir):
  df, future = _load_frames()
  renamed = future.assign(site=future['site'].replace({'b': 'c'}))
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             future_df=renamed), errors.DataError,
           "future_df has series {'site': 'c'} at rows [17, 18, 19, 20, 21] "
           '(16 in all), which is not a series of the data (2 series, e.g. '
           "series {'site': 'a'}, series {'site': 'b'})")
  only_a = future[future['site'] == 'a']
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             future_df=only_a), errors.DataError,
           "future_df has no rows for series {'site': 'b'}: give its 16 "
           'forecast steps (temp).')


def test_other_covariate_mistakes_are_named(model_dir, exogenous_dir):
  df, future = _load_frames()
  df['region'] = np.where(np.arange(len(df)) == 7, 'west', 'north')
  _refused(lambda: _forecast(model_dir, df, static_covariates=['region']),
           errors.DataError, "Static covariate 'region' changes within "
           "series {'site': 'a'}: 'north' at row 1, 'west' at row 8")
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             categorical_covariates=['day'],
                             future_df=future), errors.ConfigError,
           "categorical_covariates ['day'] are not covariates")
  _refused(lambda: _forecast(model_dir, df, known_covariates=['temp'],
                             future_df=future, regression=dict(
                                 order='regress')),
           errors.ConfigError, "regression={'order': 'regress'}: "
           "order='regress': expected one of ('xreg+ttm', 'ttm+xreg')")
  # A model with an exogenous mixer reads its channels as controls.
  _refused(lambda: ttm_jax.forecast(
      df.rename(columns={'load': 'y'}).assign(z=1.0, x=0.0),
      timestamp_column='time', horizon=HORIZON, checkpoint=exogenous_dir,
      id_columns=['site'], target_columns=['y', 'z'], control_columns=['x'],
      past_covariates=['temp']), errors.ConfigError,
           "covariates ['temp']: the model " + exogenous_dir + ' has an '
           'exogenous mixer')
