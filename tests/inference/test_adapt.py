"""Short pasts adapted to a long-context TTM (inference.adapt): the M4
seasonality test and multiplicative decomposition by hand and on series
whose seasonal indices are known, the upsampling grid, the edge pads of
the one forecasting path's inputs, and the adapted forecaster against the
model on contexts built by hand. (--adapt's flag errors:
tests/inference/test_select.py, with the runner's other flags.)"""

import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.inference import adapt
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from tests.suites.test_benchmark import tiny_model  # pylint: disable=unused-import  # A fixture.

SEASON4 = np.array([0.8, 1.3, 1.1, 0.6])


def _r_acf(x, lag):
  """R's acf at one lag, written out term by term."""
  m = sum(x) / len(x)
  top = sum((x[t] - m) * (x[t + lag] - m) for t in range(len(x) - lag))
  return top / sum((v - m) ** 2 for v in x)


def test_acf_and_the_seasonality_test_by_hand():
  x = [3.0, 5.0, 4.0, 1.0, 3.5, 5.5, 4.2, 0.9, 3.1, 5.2, 4.4, 1.2,
       3.4, 5.5, 4.7, 1.5, 3.8, 5.8, 4.5, 1.2, 3.3, 5.3, 4.3, 1.3]
  np.testing.assert_allclose(adapt.acf(np.array(x), 4),
                             [_r_acf(x, k) for k in range(1, 5)], rtol=1e-12)
  r = [_r_acf(x, k) for k in range(1, 5)]
  limit = 1.645 / np.sqrt(24) * np.sqrt(1 + 2 * (r[0]**2 + r[1]**2
                                                 + r[2]**2))
  assert adapt.is_seasonal(np.array(x), 4) == (abs(r[3]) > limit)
  assert adapt.is_seasonal(np.array(x), 4)  # A clear cycle of 4.
  # Fewer than three seasons, season 1 and a missing value: not tested.
  assert not adapt.is_seasonal(np.array(x[:11]), 4)
  assert adapt.is_seasonal(np.array(x[:12]), 4) == (
      abs(_r_acf(x[:12], 4)) > 1.645 / np.sqrt(12) * np.sqrt(1 + 2 * sum(
          _r_acf(x[:12], k)**2 for k in (1, 2, 3))))
  assert not adapt.is_seasonal(np.array(x), 1)
  assert not adapt.is_seasonal(np.array(x[:-1] + [np.nan]), 4)
  # White noise has no seasonality to find (at this seed).
  noise = np.random.default_rng(0).normal(10, 1, 60)
  assert not adapt.is_seasonal(noise, 12)


@pytest.mark.parametrize('figure', [SEASON4, np.array([1.2, 0.7, 1.1])])
def test_seasonal_indices_of_a_constant_level_are_the_pattern(figure):
  """x_t = c * s[t mod m]: the centred moving average is c * mean(s), so
  the indices are s / mean(s) (an even and an odd season)."""
  m = len(figure)
  x = 50.0 * figure[np.arange(5 * m + 1) % m]
  np.testing.assert_allclose(adapt.seasonal_indices(x, m),
                             figure / figure.mean(), rtol=1e-12)


def test_a_linear_trend_has_unit_indices():
  """The 2 x 4 moving average of a straight line is the line."""
  x = 5.0 + 0.5 * np.arange(17)
  np.testing.assert_allclose(adapt.seasonal_indices(x, 4), np.ones(4),
                             rtol=1e-12)


def test_deseasonalize_and_reseasonalize_continue_the_cycle():
  n, horizon = 22, 7
  past = 100.0 * SEASON4[np.arange(n) % 4]
  [adjusted], [figure] = adapt.deseasonalize([past], 4)
  level = 100.0 * SEASON4.mean()
  np.testing.assert_allclose(adjusted, np.full(n, level), rtol=1e-12)
  flat = np.full((1, horizon), level)
  future = 100.0 * SEASON4[(n + np.arange(horizon)) % 4]
  np.testing.assert_allclose(
      adapt.reseasonalize(flat, [figure], [n], 4)[0], future, rtol=1e-12)
  # Quantiles [n, h, q] are scaled step by step alike.
  band = np.stack([flat, 2 * flat], axis=-1)
  np.testing.assert_allclose(
      adapt.reseasonalize(band, [figure], [n], 4)[0],
      np.stack([future, 2 * future], axis=-1), rtol=1e-12)


@pytest.mark.parametrize('past', [
    np.r_[100.0 * SEASON4[np.arange(20) % 4][:-1], np.nan],  # Missing.
    np.r_[100.0 * SEASON4[np.arange(19) % 4], 0.0],          # Not positive.
    100.0 * SEASON4[np.arange(11) % 4],                       # < 3 seasons.
])
def test_pasts_a_multiplicative_adjustment_cannot_take_pass_unchanged(past):
  [adjusted], [figure] = adapt.deseasonalize([past], 4)
  assert figure is None
  np.testing.assert_array_equal(adjusted, past)


def test_upsample_and_downsample_by_hand():
  np.testing.assert_allclose(adapt.upsample(np.array([0.0, 2.0, 4.0]), 4),
                             np.arange(9) * 0.5)
  np.testing.assert_array_equal(adapt.upsample(np.array([3.0, 7.0]), 2),
                                [3.0, 5.0, 7.0])
  # A missing value spoils the points between it and its neighbours only.
  np.testing.assert_array_equal(
      adapt.upsample(np.array([1.0, np.nan, 3.0, 5.0]), 2),
      [1.0, np.nan, np.nan, np.nan, 3.0, 4.0, 5.0])
  one = np.array([4.0])
  np.testing.assert_array_equal(adapt.upsample(one, 8), one)
  # A line continued on the fine grid lands on the line's original steps.
  fine = 4.0 + 0.5 * np.arange(1, 4 * 3 + 1)
  np.testing.assert_allclose(adapt.downsample(fine[None], 4, 3)[0],
                             [6.0, 8.0, 10.0])


def test_factors_by_season():
  adaptation = adapt.Adaptation()
  assert [adaptation.factor(m) for m in (1, 4, 12, 52)] == [8, 2, 1, 1]
  assert adapt.Adaptation(upsample=1).factor(1) == 1


@pytest.mark.parametrize('kwargs,message', [
    (dict(scope='some'), "scope='some'"),
    (dict(upsample=0), 'upsample=0'),
    (dict(upsample=2.5), 'upsample=2.5'),
])
def test_bad_adaptations_are_named(kwargs, message):
  with pytest.raises(errors.ConfigError, match=message):
    adapt.Adaptation(**kwargs).check()


def test_edge_pads_repeat_the_first_observed_value():
  pasts = [np.array([np.nan, 2.0, 3.0]), np.array([5.0, np.nan, 6.0, 7.0]),
           np.arange(10.0)]
  raw = dict(gaps='zero', standardize=False)
  zero, zero_mask, _, _ = inputs_lib.prepare(
      pasts, 6, inputs_lib.Inputs(pad='zero', **raw))
  edge, edge_mask, _, _ = inputs_lib.prepare(
      pasts, 6, inputs_lib.Inputs(pad='edge', **raw))
  np.testing.assert_array_equal(edge_mask, zero_mask)  # Pads stay masked.
  np.testing.assert_array_equal(edge[..., 0], [
      [2.0, 2.0, 2.0, 2.0, 2.0, 3.0],
      [5.0, 5.0, 5.0, 0.0, 6.0, 7.0],  # A missing value inside stays 0.
      [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]])
  np.testing.assert_array_equal(zero[..., 0][0], [0, 0, 0, 0, 2, 3])


def test_the_adapted_forecast_is_the_engine_on_a_context_built_by_hand(
    tiny_model):
  """Season 1, upsampling 2, edge pads: the engine's forecast of the
  interpolated past, left-padded with its first value and masked there,
  every second step; for a past longer than the context, of the last 32
  points of the whole past interpolated."""
  short = np.array([3.0, 4.5, 4.0, 6.0, 7.5])
  long = np.random.default_rng(3).normal(0, 1, 40).cumsum() + 20
  model = model_lib.Model(tiny_model)
  contexts, masks = [], []
  for past in (short, long):
    n = len(past)
    fine = np.interp(np.arange(2 * n - 1) / 2, np.arange(n), past)[-32:]
    context = np.full(32, fine[0])
    context[-len(fine):] = fine
    mask = np.zeros(32, bool)
    mask[-len(fine):] = True
    contexts.append(context)
    masks.append(mask)
  expected = model.run(
      np.stack(contexts)[..., None].astype(np.float32),
      np.stack(masks)[..., None], 'YS')[:, [1, 3, 5], 0]
  forecaster = forecaster_lib.model_forecaster(
      tiny_model, quantiles='point', inputs=inputs_lib.Inputs(
          pad='edge', gaps='zero', standardize=False,
          adaptation=adapt.Adaptation(deseasonalize=False, upsample=2)))
  point, quantiles = forecaster([short, long], 3, 'YS', (0.1, 0.5), 1)
  np.testing.assert_allclose(point, expected, rtol=1e-6)
  np.testing.assert_array_equal(quantiles[:, :, 1], point)
  assert forecaster.name.endswith('-adapted')
  assert forecaster.config['adaptation'] == dict(
      deseasonalize=False, upsample=2, scope='all',
      seasonality='multiplicative')


def test_a_seasonal_series_of_constant_level_is_continued(tiny_model):
  """Deseasonalised it is a constant, which any TTM forecasts as that
  constant (the scaler's scale is ~0): the adapted forecast is the
  cycle; as given, the untrained model's is not."""
  n, horizon = 40, 12
  past = 100.0 * SEASON4[np.arange(n) % 4]
  future = 100.0 * SEASON4[(n + np.arange(horizon)) % 4]
  adapted = forecaster_lib.model_forecaster(
      tiny_model, quantiles='insample', inputs=inputs_lib.Inputs(
          adaptation=adapt.Adaptation()))
  point, quantiles = adapted([past], horizon, 'QS', (0.1, 0.5, 0.9), 4)
  np.testing.assert_allclose(point[0], future, rtol=1e-3)
  assert np.all(np.diff(quantiles[0], axis=-1) >= 0)
  plain = forecaster_lib.model_forecaster(tiny_model, quantiles='point')
  as_given, _ = plain([past], horizon, 'QS', (), 4)
  assert np.max(np.abs(as_given[0] - future) / future) > 1e-2


def test_the_additive_adjustment_recovers_its_pattern_and_ignores_offsets():
  """R's decompose(type='additive') figure of a trend plus a known cycle
  is the cycle (mean 0); the additive adaptation is offset-invariant where
  the multiplicative one is not."""
  n = 48
  cycle = np.array([3.0, -1.0, 0.5, -2.5])
  past = 10 + 0.2 * np.arange(n) + cycle[np.arange(n) % 4]
  figure = adapt.seasonal_indices(past, 4, 'additive')
  np.testing.assert_allclose(figure, cycle - cycle.mean(), atol=1e-9)
  adjusted, indices = adapt.deseasonalize([past, past + 1e6], 4, 'additive')
  np.testing.assert_allclose(indices[0], indices[1], atol=1e-6)
  np.testing.assert_allclose(adjusted[1] - 1e6, adjusted[0], atol=1e-6)
  back = adapt.reseasonalize(np.zeros((1, 4)), indices[:1], [n], 4,
                             'additive')
  np.testing.assert_allclose(back[0], figure[(n + np.arange(4)) % 4])
  _, multiplicative = adapt.deseasonalize([past, past + 1e6], 4)
  assert not np.allclose(multiplicative[0], multiplicative[1], atol=1e-3)
