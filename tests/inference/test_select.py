"""The backtest choice of a model and baselines (inference.select):
the baselines, the backtest windows, the weights and the forecasts by hand,
and the recipe through the benchmark runner."""

import dataclasses

import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.suites import benchmark
from ttm_jax.suites import task_data
from ttm_jax.suites import tasks as tasks_lib
from ttm_jax.inference import backtests
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import select
from tests.suites.test_benchmark import tiny_model  # pylint: disable=unused-import  # A fixture.

BASELINES_ONLY = select.Recipe(candidates=('seasonal_naive', 'naive',
                                           'drift'), windows=2, pool=0.0)


def test_drift_by_hand():
  drift = select.BASELINES['drift']
  # Season 1: the random walk with drift, last + h (last - first) / (n - 1).
  np.testing.assert_allclose(drift([np.array([1., 2., 4.])], 2, 1),
                             [[5.5, 7.0]])
  # Season 2: seasonal naive [5, 6, 5, 6] plus the slope (mean(5, 6) -
  # mean(1, 2)) / (6 - 2) = 1 per step, 2 steps per season copied.
  np.testing.assert_allclose(
      drift([np.arange(1., 7.)], 4, 2), [[7., 8., 9., 10.]])
  # Shorter than two seasons: seasonal naive (here its last value).
  np.testing.assert_allclose(drift([np.array([3., 4., 5.])], 2, 4),
                             [[5., 5.]])


def test_backtest_windows_lie_inside_the_past():
  # Origins h apart ending at each past's end, oldest first; none leaves
  # fewer than min_history points before it (skipped, or an error).
  assert backtests.origins([10, 5, 3], 2, 3, 3) == [
      (0, 4), (0, 6), (0, 8), (1, 3)]
  with pytest.raises(errors.DataError, match='Series 1 is too short'):
    backtests.origins([10, 5, 3], 2, 3, 3, short='error')


def test_weights_by_hand():
  tests = select.Backtests(
      series=np.array([0, 0, 1]), truth=np.zeros((3, 1)),
      scale=np.array([1., 1., 2.]),
      forecasts=np.array([[[1., 2.]], [[3., 2.]], [[8., 2.]]]))
  # Scaled errors: series 0 [2, 2] (two windows), series 1 [4, 1];
  # dataset means [3, 1.5]; series 2 has no window.
  pooled = select.weights(tests, select.Recipe(pool=1.0), 3, fallback=0)
  np.testing.assert_array_equal(pooled, [[0, 1], [0, 1], [1, 0]])
  alone = select.weights(tests, select.Recipe(pool=0.0), 3, fallback=0)
  np.testing.assert_array_equal(alone[:2], [[1, 0], [0, 1]])  # Tie: first.
  blend = select.weights(tests, select.Recipe(mode='blend', pool=1.0), 3,
                         fallback=0)
  # Series 0: ([2, 2] * 2 + [3, 1.5]) / 3 = [7/3, 5.5/3], weights 1/error.
  inverse = np.array([3 / 7, 3 / 5.5])
  np.testing.assert_allclose(blend[0], inverse / inverse.sum())
  dataset = select.weights(tests, select.Recipe(per='dataset'), 3, 0)
  np.testing.assert_array_equal(dataset, [[0, 1], [0, 1], [1, 0]])


def test_each_series_takes_its_best_baseline():
  trend = np.arange(10.)  # Drift is exact.
  seasonal = np.tile([0., 10.], 5)  # Seasonal naive is exact.
  short = np.array([3., 4.])  # No backtest window: seasonal naive.
  forecaster = select.forecaster(None, BASELINES_ONLY)
  point, quantiles = forecaster([trend, seasonal, short], 2, '',
                                 (0.1, 0.5, 0.9), 2)
  np.testing.assert_allclose(point, [[10., 11.], [0., 10.], [3., 4.]])
  # Exact backtests: intervals fall back to the past's seasonal error.
  np.testing.assert_allclose(quantiles[..., 1], point)
  spread = quantiles[..., 2] - quantiles[..., 0]
  np.testing.assert_allclose(spread[0], 2 * 1.2815515655 * 2.0, rtol=1e-8)
  assert forecaster.report()['share'] == pytest.approx(
      {'seasonal_naive': 2 / 3, 'naive': 0.0, 'drift': 1 / 3}, abs=1e-4)


def test_recipe_through_the_runner(tiny_model):
  rng = np.random.default_rng(0)
  task = tasks_lib.Task(
      suite='chronos_ii', name='t', dataset_path='p', dataset_config='c',
      horizon=3, seasonality=1, num_windows=1, initial_cutoff=-3,
      window_step_size=3, quantile_levels=(0.1, 0.5, 0.9))
  values = [rng.normal(0, 1, n).cumsum() + 0.5 * np.arange(n)
            for n in (4, 12, 30, 50)]
  series = task_data.Series([str(i) for i in range(4)], values, 'YS', 'x')
  model = forecaster_lib.model_forecaster(tiny_model, quantiles='point')
  record = benchmark.run_task(task, series, select.forecaster(model))
  assert record['model_name'] == 'select[model,seasonal_naive,naive,drift]'
  assert record['quantile_source'] == 'insample'
  assert sum(record['recipe']['share'].values()) == pytest.approx(1.0)
  # The 4-point series has a 1-point past: seasonal naive, a quarter.
  assert record['recipe']['share']['seasonal_naive'] >= 0.25


@pytest.mark.parametrize('recipe,message', [
    (select.Recipe(candidates=('naive', 'drift')), 'seasonal_naive must'),
    (select.Recipe(candidates=('seasonal_naive', 'mean')), "'mean'"),
    (dataclasses.replace(BASELINES_ONLY, mode='best'), "mode='best'"),
    (dataclasses.replace(BASELINES_ONLY, windows=0), 'windows=0'),
])
def test_bad_recipes_are_named(recipe, message):
  with pytest.raises(errors.ConfigError, match=message):
    select.forecaster(None, recipe)


def test_model_candidate_needs_a_model():
  with pytest.raises(errors.ConfigError, match='needs a --checkpoint'):
    select.forecaster(None, select.Recipe())


def test_runner_refuses_bad_configs_first(tmp_path):
  """One error line naming the config field, before anything is read or
  written (the old flags' conflict table, as checks of the resolved
  config: ttm_jax/suites/config.py)."""
  from tests import entry_points  # pylint: disable=g-import-not-at-top
  spec = f'configs/benchmarks/chronos_ii.py:data_dir={tmp_path}'

  def case(arg='', *overrides):
    return ['--config', spec + arg] + [f'--config.{o}' for o in overrides]
  only_baselines = "select.candidates=('seasonal_naive','drift')"
  cases = [
      (case(',finetune=true,baseline=seasonal_naive'),
       "config.baseline='seasonal_naive' scores a baseline alone"),
      (case(',finetune=true,recipe=backtest_select', only_baselines),
       'config.finetune.enabled=True fine-tunes config.checkpoint'),
      (case(',recipe=backtest_select'),
       "config.select.candidates=('ttm', 'seasonal_naive', 'naive', "
       "'drift') lists 'ttm'"),
      (case(',recipe=backtest_select',
            "select.candidates=('naive','drift')"),
       'must hold seasonal_naive'),
      (case(',checkpoint=x,finetune=true', 'finetune.fraction=0'),
       'config.finetune.fraction=0.0 must be in (0, 1]'),
      (case(',checkpoint=x,finetune=true', 'finetune.lr=nan'),
       'config.finetune.lr=nan must be finite'),
      (case(',checkpoint=x', 'finetune.lr=0.001'),
       'config.finetune.lr=0.001 is read only when '
       'config.finetune.enabled is true'),
      (case(',adapt=true,baseline=seasonal_naive'),
       'scores a baseline alone'),
      (case(',adapt=true,recipe=backtest_select', only_baselines),
       'config.adapt.enabled=True adapts the pasts config.checkpoint'),
      (case(',adapt=true,checkpoint=x,finetune=true'),
       'without config.finetune.enabled'),
      (case(',checkpoint=x,finetune=true,inputs=default'),
       "config.inputs='default' adapts short pasts, which the fine-tune"),
      (case(',adapt=true,checkpoint=x', 'adapt.upsample=0'),
       'config.adapt.upsample=0 must be >= 1'),
      (case(',checkpoint=x', 'select.mode=blend'),
       "config.select.mode='blend' is read only with "
       "config.recipe='backtest_select'"),
      (case(',baseline=seasonal_naive,quantiles=point'),
       "config.quantiles='point' is read only with config.checkpoint"),
      (case(',checkpoint=x', 'allow_download=true'),
       "config.allow_download=True is read only with "
       "config.checkpoint='auto'"),
      (case(',checkpoint=x,org=me'), "Unknown config argument 'org'"),
      (case(',checkpoint=x', 'submission.org=me'),
       "config.submission.org='me' is read only when config.suite is "
       "'gift_eval'"),
      (case(',checkpoint=x,tasks=m4_yearly+m4_yearly'),
       "names ['m4_yearly'] twice"),
      (case(',checkpoint=x,tasks=m6'), "has ['m6'], not tasks of suite "
       "'chronos_ii'"),
      (case(',checkpoint=x,split=valid'),
       "config argument split='valid'|config.split='valid' must be one "
       "of"),
      (case(',checkpoint=x', 'quantile=point'),
       'config.quantile is not a field'),
      (case(',checkpoint=x', 'finetun.lr=1'),
       "--config.finetun.lr: the config has no field finetun (did you "
       "mean 'finetune'?)"),
      (case(''), "config.checkpoint='' must name a checkpoint"),
  ]
  outcomes = entry_points.run_batch(
      [['experiments.benchmark'] + args + ['--workdir',
                                           str(tmp_path / f'w{k}')]
       for k, (args, _) in enumerate(cases)])
  for k, ((_, words), (rc, out, err)) in enumerate(zip(cases, outcomes)):
    assert rc == 2 and 'Traceback' not in out + err, (out + err)[-2000:]
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, err[-2000:]
    assert any(w in lines[0] for w in words.split('|')), (k, lines[0])
    assert not (tmp_path / f'w{k}').exists()


def test_pooled_intervals_cover_a_random_walk():
  """Gaussian random walks: the 'pooled' 80% intervals (each series' scale
  from its backtests, the standardised errors' quantiles pooled over the
  dataset) cover nearer 80% of a future drawn from the same process than
  'normal' intervals scaled by the mean absolute error (IBM's in-sample
  ones) cover less, as |error| < sigma; both never cross."""
  rng = np.random.default_rng(5)
  walks = rng.normal(0, 1, (300, 130)).cumsum(axis=1)
  pasts, future = list(walks[:, :120]), walks[:, 120:]
  coverage = {}
  for intervals in ('normal', 'pooled'):
    forecaster = select.forecaster(None, select.Recipe(
        ('seasonal_naive',), windows=3, intervals=intervals))
    point, quantiles = forecaster(pasts, 10, 'D', (0.1, 0.5, 0.9), 1)
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    np.testing.assert_allclose(quantiles[..., 1], point)
    coverage[intervals] = np.mean((future >= quantiles[..., 0])
                                  & (future <= quantiles[..., 2]))
  assert 0.70 <= coverage['pooled'] <= 0.86
  assert coverage['normal'] < coverage['pooled'] - 0.05
