"""The one implementation of the naive baselines (ttm_jax.baselines) and of
the seasonal error (ttm_jax.metrics.seasonal_error): by hand on ragged
histories with gaps, NumPy and jax.numpy alike, GluonTS's last-value
imputation and seasonal error, and fev's seasonal error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import conftest
from ttm_jax import baselines
from ttm_jax import metrics


def _ragged():
  return [np.array([1., 2., 3., 4., 5., 6.]),        # long enough
          np.array([7., np.nan, 9.]),                # a gap, short
          np.array([np.nan, 2., 4., 6., np.nan])]    # ends missing


def test_naive_by_hand():
  out = baselines.forecast('naive', _ragged(), 3)
  np.testing.assert_allclose(out[..., 0], [[6] * 3, [9] * 3, [6] * 3])
  # 'repeat_last' is the same function (the evaluators' name).
  assert baselines.FORECASTERS['repeat_last'] is baselines.naive


def test_seasonal_naive_by_hand():
  out = baselines.forecast('seasonal_naive', _ragged(), 5, season=2)
  np.testing.assert_allclose(out[..., 0], [
      [5, 6, 5, 6, 5],
      [0, 9, 0, 9, 0],      # the missing value of the copied season is 0
      [6, 0, 6, 0, 6]])
  # A history shorter than the season repeats its last observed value.
  out = baselines.forecast('seasonal_naive', _ragged(), 2, season=4)
  np.testing.assert_allclose(out[..., 0], [[3, 4], [9, 9], [2, 4]])


def test_gift_seasonal_naive_by_hand():
  """GIFT-Eval's: the filled past's season, so a missing value in it is
  the last observed before it (not 0); a short history its last value."""
  out = baselines.forecast('gift_seasonal_naive', _ragged(), 5, season=2)
  np.testing.assert_allclose(out[..., 0], [
      [5, 6, 5, 6, 5],
      [7, 9, 7, 9, 7],      # [7, nan, 9] filled: [7, 7, 9]
      [6, 6, 6, 6, 6]])     # [nan, 2, 4, 6, nan] filled: [2, 2, 4, 6, 6]
  out = baselines.forecast('gift_seasonal_naive', _ragged(), 2, season=4)
  np.testing.assert_allclose(out[..., 0], [[3, 4], [9, 9], [2, 4]])


def test_fill_last_is_impute_last_value_on_each_row():
  rng = np.random.default_rng(3)
  histories = [rng.normal(size=n) for n in (1, 2, 5, 9, 12)]
  for h in histories[1:]:
    h[rng.random(len(h)) < 0.4] = np.nan
  histories.append(np.full(4, np.nan))
  past, lengths = baselines.stack(histories)
  for filled in (baselines.fill_last(past),
                 np.asarray(jax.jit(baselines.fill_last)(jnp.asarray(past)))):
    for row, history, length in zip(filled[..., 0], histories, lengths):
      np.testing.assert_allclose(row[len(row) - length:],
                                 baselines.impute_last_value(history),
                                 rtol=1e-6)


def test_seasonal_naive_sigma_and_quantiles_by_hand():
  """statsforecast's SeasonalNaive intervals: sigma = sqrt(sum of the
  squared residuals y_t - y_{t-m} / (n - m)), widened by sqrt(floor(k / m)
  + 1) at step k; 0 without a residual; quantile q the end of the central
  round(200 |q - 0.5|)% interval."""
  histories = [np.array([1., 3., 2., 6., 3.]),   # residuals 1, 3, 1
               np.array([4., np.nan, 5.]),       # filled [4, 4, 5]: 1
               np.array([8.])]                   # no residual
  levels = (0.1, 0.5, 0.8)
  point, quantiles = baselines.gift_seasonal_naive_quantiles(
      histories, 5, 2, levels)
  sigma = np.array([np.sqrt(11 / 3), 1.0, 0.0])
  widen = np.sqrt([1, 1, 2, 2, 3])
  z = [-1.2815515655446004, 0.0, 0.8416212335729143]
  np.testing.assert_allclose(point, [[6, 3, 6, 3, 6], [4, 5, 4, 5, 4],
                                     [8] * 5])
  np.testing.assert_allclose(
      quantiles, point[..., None] + (sigma[:, None] * widen)[..., None]
      * np.asarray(z), rtol=1e-12, atol=1e-12)
  # An interval is a whole percent: 0.333 is the lower end of the 33% one,
  # -ppf(0.665) (ppf(0.333) itself is -0.4316).
  np.testing.assert_allclose(baselines.interval_z([0.333, 0.9]),
                             [-0.4261480078412783, 1.2815515655446004])


def test_drift_and_context_mean_by_hand():
  # Season 1 on [1, 2, 3, 4, 5, 6]: last + h (6 - 1) / 5 = 6 + h.
  out = baselines.forecast('drift', _ragged()[:1], 3)
  np.testing.assert_allclose(out[0, :, 0], [7, 8, 9])
  # The first observed value is where a left-padded history starts:
  # [7, nan, 9] has slope (9 - 7) / 2 = 1.
  out = baselines.forecast('drift', _ragged()[1:2], 2)
  np.testing.assert_allclose(out[0, :, 0], [10, 11])
  out = baselines.forecast('context_mean', _ragged(), 2)
  np.testing.assert_allclose(out[..., 0], [[3.5] * 2, [8] * 2, [4] * 2])
  assert baselines.forecast('context_mean', [np.full(3, np.nan)], 1)[
      0, 0, 0] == 0.0


@pytest.mark.parametrize('name', ['naive', 'seasonal_naive', 'drift',
                                  'context_mean', 'gift_seasonal_naive'])
def test_numpy_and_jax_agree(name):
  """The evaluators' batched form (jax.numpy inside jit, fixed contexts
  with a mask) computes what the ragged NumPy form computes."""
  rng = np.random.default_rng(0)
  past = rng.normal(size=(4, 12, 2)).cumsum(axis=1)
  mask = rng.random(past.shape) > 0.2
  fn = jax.jit(baselines.forecaster(name, 5, 3))
  batched = np.asarray(fn({'past_values': jnp.asarray(
      np.where(mask, past, 0.0), jnp.float32),
                           'past_observed_mask': jnp.asarray(mask)}))
  ragged = baselines.forecast(name, list(np.where(mask, past, np.nan)), 5,
                              3)
  np.testing.assert_allclose(batched, ragged, rtol=1e-5, atol=1e-5)


def test_impute_last_value_is_gluonts():
  feature = conftest.require_module('gluonts.transform.feature')
  rng = np.random.default_rng(1)
  for _ in range(20):
    values = rng.normal(size=rng.integers(1, 12))
    values[rng.random(len(values)) < 0.4] = np.nan
    expected = feature.LastValueImputation()(values.copy())
    np.testing.assert_array_equal(baselines.impute_last_value(values),
                                  np.atleast_1d(expected))


def test_seasonal_error_rules():
  """GluonTS's (season 1 when the season exceeds the history) and fev's
  (no pair, so NaN) on ragged histories with gaps, against the suites'
  own functions."""
  ts_stats = conftest.require_module('gluonts.ev.ts_stats')
  fev_metrics = conftest.require_module('fev.metrics')
  rng = np.random.default_rng(2)
  histories = [rng.normal(size=n) for n in (2, 3, 4, 9, 30)]
  histories[4][[3, 10]] = np.nan
  past, lengths = baselines.stack(histories)
  gluonts = metrics.seasonal_error(past, 4, 'gluonts', lengths)[:, 0]
  for history, value in zip(histories, gluonts):
    expected = ts_stats.seasonal_error(np.ma.masked_invalid(history), 4)
    np.testing.assert_allclose(value, np.ma.filled(expected, np.nan).item(),
                               rtol=1e-12)
  fev = metrics.seasonal_error(past, 4, 'fev', lengths)[:, 0]
  expected = fev_metrics._abs_seasonal_error_per_item(  # pylint: disable=protected-access
      y_past=np.concatenate(histories)[:, None], y_past_lengths=lengths,
      seasonality=4)[:, 0]
  np.testing.assert_allclose(fev, expected, rtol=1e-12)
  assert np.isnan(fev[:2]).all() and np.isfinite(gluonts[:2]).all()
  # By hand: [0, 2, 1, 5] at season 2 has pairs |1 - 0|, |5 - 2|.
  np.testing.assert_allclose(metrics.seasonal_error(
      np.array([[[0.], [2.], [1.], [5.]]]), 2), [[2.0]])


def test_week_length_by_hand():
  """Steps per week at sub-weekly frequencies, GIFT-Eval's old spellings
  too; 0 where a week is not a whole number of steps or the data is
  weekly or coarser."""
  cases = {'D': 7, 'B': 5, 'h': 168, 'H': 168, '15T': 672, '15min': 672,
           '10S': 60480, '2h': 84, '5h': 0, 'W-THU': 0, 'M': 0, 'MS': 0,
           '': 0, None: 0}
  assert {f: baselines.week_length(f) for f in cases} == cases
