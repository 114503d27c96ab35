"""In-context covariate regression (inference.covariates) against a hand
computation: the regressors (standardised numbers, one-hot categories, the
past-only covariates lagged by the horizon, the intercept), the ridge fit
by the normal equations (NumPy least squares at ridge 0), and both orders
around TTM's forecast from the one path."""

import dataclasses

import jax
import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.inference import covariates
from ttm_jax.inference import forecast as forecast_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory

SMALL = dict(context_length=32, prediction_length=8, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)
HORIZON = 8
LAYOUT = covariates.Layout(past=('p',), known=('k', 'c'),
                           categorical=frozenset({'c'}))


def _regression(**options):
  """A regression fitted as the hand computations below write it out: on
  the context's windows, known covariates by value, ungated."""
  return covariates.Regression(**{**dict(windows=0, known='value', gate=0),
                                  **options})


@pytest.fixture(scope='module')
def model():
  config = config_lib.TTMConfig(**SMALL)
  return model_lib.Model('small', model=factory.new_model(
      config, jax.random.key(3)))


def _case(length, seed=0):
  """A target driven by a numeric known covariate k, a categorical known
  covariate c (codes 0..2) and the past-only p, one target value
  missing."""
  rng = np.random.default_rng(seed)
  k = rng.normal(size=length + HORIZON)
  c = rng.integers(0, 3, size=length + HORIZON).astype(float)
  p = rng.normal(size=length)
  lagged = np.concatenate([np.zeros(HORIZON), p])[:length]
  y = (5 + 2 * k[:length] + 3 * (c[:length] == 1) + 1.5 * lagged
       + np.sin(np.arange(length) / 3) + 0.1 * rng.normal(size=length))
  y[length - 5] = np.nan
  return y, covariates.Covariates(past=p[:, None],
                                  known=np.stack([k, c], axis=1))


def _by_hand(found, rows, future_rows, fit_rows):
  """The regressors of the module docstring, written out: intercept,
  k standardised over the fitted rows, c one-hot over the values seen
  there, p lagged by the horizon (0 before the history: its mean after
  standardising); at rows other than the fitted ones, the numbers clipped
  to the range they took over the fitted rows."""
  def raw(r):
    lagged = np.where(r - HORIZON >= 0, found.past[np.maximum(
        r - HORIZON, 0), 0], np.nan)
    return found.known[r, 0], found.known[r, 1], lagged

  k_fit, c_fit, p_fit = raw(fit_rows)
  seen = np.unique(c_fit)
  p_seen = p_fit[~np.isnan(p_fit)]

  def matrix(r, clip=True):
    k, c, p = raw(r)
    k = (k - k_fit.mean()) / k_fit.std()
    p = np.where(np.isnan(p), 0.0, (p - p_seen.mean()) / p_seen.std())
    if clip:
      k = np.clip(k, *bounds[0])
      p = np.clip(p, *bounds[1])
    return np.column_stack([np.ones(len(r)), k,
                            *[(c == v).astype(float) for v in seen], p])

  fitted = matrix(fit_rows, clip=False)
  bounds = [(fitted[:, j].min(), fitted[:, j].max()) for j in (1, -1)]
  return fitted, matrix(rows), matrix(future_rows)


def _ridge_normal_equations(x, y, penalty):
  penalised = np.diag([0.0] + [penalty] * (x.shape[1] - 1))
  return np.linalg.solve(x.T @ x + penalised, x.T @ y)


def test_ridge_is_least_squares_at_zero_and_the_normal_equations_above():
  rng = np.random.default_rng(1)
  x = np.column_stack([np.ones(20), rng.normal(size=(20, 3))])
  y = rng.normal(size=20)
  np.testing.assert_allclose(covariates.ridge(x, y, 0.0),
                             np.linalg.lstsq(x, y, rcond=None)[0], atol=1e-12)
  np.testing.assert_allclose(covariates.ridge(x, y, 2.5),
                             _ridge_normal_equations(x, y, 2.5), atol=1e-12)
  # Collinear columns (a full one-hot beside the intercept) at ridge 0: the
  # minimum-norm least-squares fit, as NumPy's.
  onehot = np.eye(3)[rng.integers(0, 3, 20)]
  collinear = np.column_stack([np.ones(20), onehot])
  np.testing.assert_allclose(
      collinear @ covariates.ridge(collinear, y, 0.0),
      collinear @ np.linalg.lstsq(collinear, y, rcond=None)[0], atol=1e-12)


def test_regressors_by_hand():
  _, found = _case(40)
  fit_rows = np.arange(10, 40)
  x_fit, (x_rows, x_future) = covariates.design(
      found, LAYOUT, HORIZON, fit_rows, (np.arange(5, 40),
                                         np.arange(40, 48)))
  want_fit, want_rows, want_future = _by_hand(
      found, np.arange(5, 40), np.arange(40, 48), fit_rows)
  np.testing.assert_allclose(x_fit, want_fit, atol=1e-12)
  np.testing.assert_allclose(x_rows, want_rows, atol=1e-12)
  np.testing.assert_allclose(x_future, want_future, atol=1e-12)
  # A value unseen in the fitted rows (or missing) is all zero.
  found.known[45, 1] = 7.0
  found.known[46, 1] = np.nan
  _, (x_future,) = covariates.design(found, LAYOUT, HORIZON, fit_rows,
                                     (np.arange(40, 48),))
  np.testing.assert_array_equal(x_future[5:7, 2:5], 0.0)
  # A number past the fitted rows' range is clipped to it.
  found.known[44, 0] = 1e6
  x_fit, (x_future,) = covariates.design(found, LAYOUT, HORIZON, fit_rows,
                                         (np.arange(40, 48),))
  assert x_future[4, 1] == x_fit[:, 1].max()


@pytest.mark.parametrize('ridge', [0.0, 0.5])
def test_regress_then_forecast_the_residuals_by_hand(model, ridge):
  """'xreg+ttm': the fit over the last context (32) rows of a 50-row
  history, the missing target left out; TTM forecasts the residuals;
  the regression's values at the horizon are added."""
  y, found = _case(50)
  rows = np.arange(18, 50)
  fit_rows = rows[~np.isnan(y[rows])]
  x_fit, x_rows, x_future = _by_hand(found, rows, np.arange(50, 58),
                                     fit_rows)
  if ridge:
    beta = _ridge_normal_equations(x_fit, y[fit_rows], ridge)
  else:
    beta = np.linalg.lstsq(x_fit, y[fit_rows], rcond=None)[0]
  residual = y[rows] - x_rows @ beta
  ttm, _ = forecast_lib.forecast(model, [residual], HORIZON, 'h')
  want = ttm[0, :, 0] + x_future @ beta
  got, _ = covariates.forecast(model, [y], [found], LAYOUT, HORIZON, 'h',
                               regression=_regression(
                                   order='xreg+ttm', ridge=ridge))
  np.testing.assert_allclose(got[0, :, 0], want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('ridge', [0.0, 0.5])
def test_forecast_then_regress_the_in_context_errors_by_hand(model, ridge):
  """'ttm+xreg': TTM forecasts from the end; inside the context (32 rows,
  so 32 // 8 = 4 windows) it forecasts 8 steps from origins 42, 34, 26
  and 18, each from everything before it; its errors there (one truth
  missing) are regressed on the covariates and the regression's forecast
  of the error added."""
  y, found = _case(50)
  origins = [18, 26, 34, 42]
  inside, _ = forecast_lib.forecast(model, [y[:o] for o in origins],
                                    HORIZON, 'h')
  rows = np.concatenate([np.arange(o, o + HORIZON) for o in origins])
  error = y[rows] - inside[:, :, 0].reshape(-1)
  fit_rows = rows[~np.isnan(error)]
  x_fit, _, x_future = _by_hand(found, rows, np.arange(50, 58), fit_rows)
  beta = (_ridge_normal_equations(x_fit, error[~np.isnan(error)], ridge)
          if ridge else np.linalg.lstsq(x_fit, error[~np.isnan(error)],
                                        rcond=None)[0])
  ttm, _ = forecast_lib.forecast(model, [y], HORIZON, 'h')
  want = ttm[0, :, 0] + x_future @ beta
  got, _ = covariates.forecast(model, [y], [found], LAYOUT, HORIZON, 'h',
                               regression=_regression(
                                   order='ttm+xreg', ridge=ridge))
  np.testing.assert_allclose(got[0, :, 0], want, rtol=1e-6, atol=1e-6)


def _in_context_by_hand(model, y, found, origins, known='value'):
  """TTM's forecast from the end plus the ridge (0.5) forecast of its
  errors at `origins` (one truth missing), on regressors by hand; with
  known='surprise', k replaced in each window by k minus TTM's forecast
  of k from that window's origin."""
  length = len(y)
  if known == 'surprise':
    known_ = found.known.copy()
    for o in origins + [length]:
      guess, _ = forecast_lib.forecast(model, [found.known[:o, 0]],
                                       HORIZON, 'h')
      known_[o:o + HORIZON, 0] -= guess[0, :, 0]
    found = covariates.Covariates(found.past, known_)
  inside, _ = forecast_lib.forecast(model, [y[:o] for o in origins],
                                    HORIZON, 'h')
  rows = np.concatenate([np.arange(o, o + HORIZON) for o in origins])
  error = y[rows] - inside[:, :, 0].reshape(-1)
  fit_rows = rows[~np.isnan(error)]
  x_fit, _, x_future = _by_hand(found, rows,
                                np.arange(length, length + HORIZON),
                                fit_rows)
  beta = _ridge_normal_equations(x_fit, error[~np.isnan(error)], 0.5)
  ttm, _ = forecast_lib.forecast(model, [y], HORIZON, 'h')
  return ttm[0, :, 0] + x_future @ beta, ttm[0, :, 0]


@pytest.mark.parametrize('known', covariates.KNOWN)
def test_more_windows_and_surprises_by_hand(model, known):
  """windows=6 over a 70-row history: origins 22 to 62 (past the 32-row
  context); known='surprise': the numeric known covariate by its
  deviation from TTM's forecast of it from each origin."""
  y, found = _case(70)
  want, _ = _in_context_by_hand(model, y, found, [22, 30, 38, 46, 54, 62],
                                known)
  got, _ = covariates.forecast(model, [y], [found], LAYOUT, HORIZON, 'h',
                               regression=_regression(
                                   order='ttm+xreg', ridge=0.5, windows=6,
                                   known=known))
  np.testing.assert_allclose(got[0, :, 0], want, rtol=1e-6, atol=1e-6)


def test_the_gate_weighs_the_covariates_by_their_backtest(model):
  """gate=2: at origins 42 and 50 of a 58-row history, the forecast with
  covariates (from the history before each) against that without; w is
  the least-squares weight of the change on the error, in [0, 1]; the
  forecast is TTM's plus w times the term. A covariate that is noise gets
  a smaller weight than one that drives the target."""
  y, found = _case(58)
  regression = _regression(order='ttm+xreg', ridge=0.5)
  change, error = [], []
  for o in (42, 50):
    mine = covariates.cut(found, o, HORIZON)
    with_, _ = covariates.forecast(model, [y[:o]], [mine], LAYOUT, HORIZON,
                                   'h', regression=regression)
    without, _ = forecast_lib.forecast(model, [y[:o]], HORIZON, 'h')
    truth = y[o:o + HORIZON]
    seen = ~np.isnan(truth)
    change.append((with_ - without)[0, seen, 0])
    error.append((truth - without[0, :, 0])[seen])
  change, error = np.concatenate(change), np.concatenate(error)
  weight = np.clip(change @ error / (change @ change), 0, 1)
  full, plain = _in_context_by_hand(model, y, found, [26, 34, 42, 50])
  got, _ = covariates.forecast(
      model, [y], [found], LAYOUT, HORIZON, 'h',
      regression=dataclasses.replace(regression, gate=2))
  np.testing.assert_allclose(got[0, :, 0], plain + weight * (full - plain),
                             rtol=1e-6, atol=1e-6)
  assert 0 < weight <= 1
  noise = covariates.Covariates(
      past=np.random.default_rng(5).normal(size=found.past.shape),
      known=np.random.default_rng(6).normal(size=found.known.shape))
  layout = covariates.Layout(past=('p',), known=('k', 'q'))
  assert covariates.gate_weights(
      model, [y[:, None]], [noise], layout, HORIZON, 'h', inputs_lib.DEFAULT,
      dataclasses.replace(regression, gate=2), 1)[0, 0] < weight


def test_the_regression_only_baseline_by_hand():
  """The targets regressed (ridge 2) on the regressors of every history
  row, the regression's values at the next steps."""
  y, found = _case(40)
  rows = np.arange(40)
  fit_rows = rows[~np.isnan(y)]
  x_fit, _, x_future = _by_hand(found, rows, np.arange(40, 48), fit_rows)
  beta = _ridge_normal_equations(x_fit, y[fit_rows], 2.0)
  got = covariates.regression_only([y], [found], LAYOUT, HORIZON, 2.0)
  np.testing.assert_allclose(got[0, :, 0], x_future @ beta, atol=1e-9)


def test_several_series_and_targets_are_each_their_own_fit(model):
  """Two series of different lengths, two targets each: every (series,
  target) forecast is that of the series and target alone."""
  first, found_first = _case(50, seed=2)
  second, found_second = _case(37, seed=3)
  both = [np.stack([first, 2 * first + 1], axis=1),
          np.stack([second, -second], axis=1)]
  for order in covariates.ORDERS:
    regression = _regression(order=order)
    got, _ = covariates.forecast(model, both, [found_first, found_second],
                                 LAYOUT, HORIZON, 'h', regression=regression)
    for i, (history, found) in enumerate(zip(both, [found_first,
                                                    found_second])):
      for c in range(2):
        alone, _ = covariates.forecast(model, [history[:, c]], [found],
                                       LAYOUT, HORIZON, 'h',
                                       regression=regression)
        np.testing.assert_allclose(got[i, :, c], alone[0, :, 0], atol=1e-5)


def test_time_features_are_calendar_fields():
  stamps = np.array(['2024-01-01T23:00', '2024-01-02T00:00',
                     '2024-12-30T05:00'], 'datetime64[ns]')
  np.testing.assert_array_equal(
      covariates.time_features(stamps, ('hour', 'dayofweek', 'weekofyear',
                                        'month')),
      [[23, 0, 1, 1], [0, 1, 1, 1], [5, 0, 1, 12]])


@pytest.mark.parametrize('value,words', [
    (dict(order='both'), "order='both': expected one of"),
    (dict(ridge=-1), 'ridge=-1: expected a finite number >= 0'),
    (dict(time_features=('hours',)), "unknown ['hours']"),
    (dict(lag=3), "unknown option(s) ['lag']"),
    (dict(windows=-1), 'windows=-1: expected an integer >= 0'),
    (dict(gate=1.5), 'gate=1.5: expected an integer >= 0'),
    (dict(known='delta'), "known='delta': expected one of"),
    (dict(order='xreg+ttm', known='surprise'), "needs order='ttm+xreg'"),
    ('xreg+ttm', 'expected a dict of options')])
def test_bad_options_name_the_option(value, words):
  with pytest.raises(errors.ConfigError) as caught:
    covariates.of(value)
  assert words in str(caught.value)


def test_the_defaults_are_the_validated_ones():
  """The defaults chosen on the covariate suite's validation split, and a
  dict that sets the regress-first order alone reads known covariates by
  value (surprises are 'ttm+xreg''s)."""
  assert covariates.Regression() == covariates.Regression(
      order='ttm+xreg', ridge=100.0, time_features=(), windows=40,
      known='surprise', gate=5)
  assert covariates.of(dict(order='xreg+ttm')) == covariates.Regression(
      order='xreg+ttm', known='value')
