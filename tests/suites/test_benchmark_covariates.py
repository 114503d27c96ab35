"""Covariates in the benchmark runner (config covariates='use'), end to end
on small data in fev's layout against fev's own `Task`: each window's
covariates are fev's (the past data's columns up to the cutoff, the known
ones' future data over the horizon; rohlik's long format and date
cutoffs, uk covid's past-only covariates and three targets), and the
runner's records of a tiny checkpoint zero-shot (in-context regression),
fine-tuned (exogenous mixer) and of the regression-only baseline are
fev's `evaluation_summary` of the same forecaster fed from fev's own
windows. Records say what was used and how; rows without covariates stay
(covariates='ignore'), and a record of one is not reused for the other."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.suites import test_adapters
from tests.suites import test_benchmark
from tests.suites.test_benchmark import tiny_model  # pylint: disable=unused-import
from ttm_jax import errors
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.suites import benchmark
from ttm_jax.suites import config as config_lib
from ttm_jax.suites import tasks as tasks_lib

DIRECTIONS = ('NE', 'NW', 'SE', 'cv')


def _recording():
  """A forecaster that reads covariates (seasonal naive's forecasts) and
  the list of (pasts, covariates) it was given."""
  seen = []
  naive = forecaster_lib.baseline()

  def fn(pasts, horizon, freq, levels, season, covariates=None):
    seen.append((pasts, covariates))
    return naive.fn(pasts, horizon, freq, levels, season)
  return forecaster_lib.Forecaster('recording', fn, 'point', (),
                                   covariates=True), seen


def _float32(values):
  """Values a float32 holds exactly (fev 0.10.0 with datasets 5 reads
  doubles back as float32)."""
  return np.asarray(values, np.float32).astype(np.float64)


@pytest.mark.parametrize('name,make', [
    ('rohlik_orders_1W', test_benchmark._rohlik_long),  # pylint: disable=protected-access
    ('uk_covid_nation_1D/new', test_benchmark._covid_wide)])  # pylint: disable=protected-access
def test_each_window_gets_the_covariates_fev_gives_it(tmp_path, monkeypatch,
                                                      name, make):
  [task] = tasks_lib.select(tasks_lib.load_suite('fev_bench'), [name])
  frame = make(np.random.default_rng(5))
  for column in task.known_dynamic + task.past_dynamic:
    frame[column] = (_float32(frame[column]) if not isinstance(
        frame[column].iloc[0], list) else [list(_float32(v))
                                           for v in frame[column]])
  test_adapters._write_fev_dataset(tmp_path, task, frame)  # pylint: disable=protected-access
  forecaster, seen = _recording()
  lines = []
  [record] = benchmark.run('fev_bench', str(tmp_path), str(tmp_path / 'w'),
                           forecaster, [name], progress=lines.append)
  assert record['covariates_ignored'] == []
  assert record['covariates']['known'] == list(task.known_dynamic)
  assert record['covariates']['past'] == list(task.past_dynamic)
  assert any('covariates used' in line for line in lines)
  fev_task = test_adapters._fev_task(task, tmp_path, monkeypatch)  # pylint: disable=protected-access
  targets = len(task.target_columns)
  assert len(seen) == task.num_windows
  for (pasts, given), window in zip(seen, fev_task.iter_windows()):
    past, future = window.get_input_data()
    assert len(pasts) == targets * len(past)
    assert given.layout.known == task.known_dynamic
    assert given.layout.past == task.past_dynamic
    for k, item in enumerate(past):
      for j in range(targets):  # Each target series of the item alike.
        found = given.values[k * targets + j]
        length = len(item['timestamp'])
        assert len(pasts[k * targets + j]) == length
        for c, column in enumerate(task.known_dynamic):
          want = np.concatenate([item[column], future[k][column]])
          np.testing.assert_array_equal(found.known[:, c], want)
        for c, column in enumerate(task.past_dynamic):
          np.testing.assert_array_equal(found.past[:, c], item[column])
        assert found.past.shape[0] == length


def _beijing_like(rng, series=2, length=780):
  """The covariate suite's beijing_pm25_1H layout, small: hourly pm25
  driven by the dew point and a text wind direction, six numeric known
  covariates, one row per series."""
  rows = []
  for k in range(series):
    stamps = pd.date_range('2014-01-01', periods=length, freq='h')
    t = np.arange(length)
    dew = _float32(5 * np.sin(2 * np.pi * t / 24 + k) + rng.normal(
        size=length))
    direction = np.array(DIRECTIONS)[rng.integers(0, 4, length)]
    pm25 = _float32(80 + 12 * dew + 30 * (direction == 'SE')
                    + rng.normal(0, 3, length))
    row = {'id': f'B{k}', 'timestamp': list(stamps), 'pm25': list(pm25),
           'dewpoint': list(dew), 'wind_direction': list(direction)}
    for column in ('temperature', 'pressure', 'wind_speed_cum',
                   'snow_hours_cum', 'rain_hours_cum'):
      row[column] = list(_float32(rng.gamma(2, 3, length)))
    rows.append(row)
  return pd.DataFrame(rows)


def _config(data, **changes):
  config = config_lib.benchmark('covariates', data_dir=str(data),
                                tasks='beijing_pm25_1H', covariates='use')
  for key, value in changes.items():
    group, _, field = key.rpartition('.')
    (config[group] if group else config)[field] = value
  return config


def _fev_given(task, item, future, horizon):
  """An item's covariates from fev's window data (past data up to the
  cutoff, future data over the horizon), wind direction coded by its
  sorted values."""
  codes = {d: float(k) for k, d in enumerate(DIRECTIONS)}
  columns = []
  for column in task.known_dynamic:
    values = list(item[column]) + list(future[column])
    columns.append([codes[v] for v in values] if column == 'wind_direction'
                   else np.asarray(values, np.float64))
  known = np.stack(columns, axis=1)
  assert len(known) == len(item['timestamp']) + horizon
  return covariates_lib.Covariates(past=np.zeros((len(known) - horizon, 0)),
                                   known=known)


def _fev_summary(task, fev_task, forecaster, name):
  """fev's evaluation of `forecaster` fed each of fev's windows (its
  target pasts and covariates from fev's data), prepared first (a
  fine-tune) on the pasts of fev's first window."""
  layout = covariates_lib.Layout(known=task.known_dynamic,
                                 categorical=frozenset({'wind_direction'}))
  windows = list(fev_task.iter_windows())
  if forecaster.prepare is not None:
    past, future = windows[0].get_input_data()
    pasts = [np.asarray(item['pm25'], np.float64) for item in past]
    found = [covariates_lib.cut(_fev_given(task, item, ahead, task.horizon),
                                len(p), 0)
             for item, ahead, p in zip(past, future, pasts)]
    forecaster = forecaster.prepare(pasts, task.horizon, 'h', task.name,
                                    covariates=covariates_lib.Given(
                                        layout, found))
  predictions = []
  for window in windows:
    past, future = window.get_input_data()
    pasts = [np.asarray(item['pm25'], np.float64) for item in past]
    given = covariates_lib.Given(layout, [
        _fev_given(task, item, ahead, task.horizon)
        for item, ahead in zip(past, future)])
    point, quantiles = forecaster(pasts, task.horizon, 'h',
                                  task.quantile_levels, task.seasonality,
                                  covariates=given)
    predictions.append({'pm25': [
        {'predictions': point[i], **{str(q): quantiles[i, :, k]
                                     for k, q in enumerate(
                                         task.quantile_levels)}}
        for i in range(len(pasts))]})
  return fev_task.evaluation_summary(predictions, name)


@pytest.mark.parametrize('kind', ['zero-shot', 'gated surprise',
                                  'fine-tuned', 'regression-only'])
def test_the_records_are_fevs_scores_of_the_same_forecaster(
    tmp_path, monkeypatch, tiny_model, kind):  # pylint: disable=redefined-outer-name
  [task] = tasks_lib.select(tasks_lib.load_suite('covariates'),
                            ['beijing_pm25_1H'])
  data = tmp_path / 'data'
  test_adapters._write_fev_dataset(  # pylint: disable=protected-access
      data, task, _beijing_like(np.random.default_rng(7)))
  changes = {
      'zero-shot': {'checkpoint': tiny_model},
      'gated surprise': {'checkpoint': tiny_model,
                         'regression.order': 'ttm+xreg',
                         'regression.known': 'surprise',
                         'regression.gate': 2, 'regression.ridge': 1.0},
      'fine-tuned': {'checkpoint': tiny_model, 'finetune.enabled': True,
                     'finetune.quick': True},
      'regression-only': {'baseline': 'covariate_regression'}}[kind]
  config = _config(data, **changes)
  [record] = benchmark.run_config(config, str(tmp_path / 'work'),
                                  progress=lambda line: None)
  used = record['covariates']
  assert record['covariates_ignored'] == []
  assert used['known'] == list(task.known_dynamic)
  assert used['categorical'] == ['wind_direction']
  if kind == 'fine-tuned':
    assert used['exogenous_mixer'] == (
        ['dewpoint', 'temperature', 'pressure']
        + [f'wind_direction={k}' for k in range(4)]
        + ['wind_speed_cum', 'snow_hours_cum', 'rain_hours_cum'])
  elif kind == 'regression-only':
    assert used['baseline'] == 'covariate_regression'
  else:
    assert used['regression']['order'] == config.regression.order
  forecaster = benchmark.make_forecaster(config_lib.resolve(config))
  theirs = _fev_summary(task, test_adapters._fev_task(  # pylint: disable=protected-access
      task, data, monkeypatch), forecaster, record['model_name'])
  assert record['num_forecasts'] == theirs['num_forecasts']
  for metric in ('SQL', 'MASE', 'WAPE', 'WQL'):
    assert record['metrics'][metric] == pytest.approx(
        theirs[metric], rel=1e-6), metric
  summary = pd.read_csv(tmp_path / 'work' / 'summary.csv')
  assert summary['covariates_used'][0].startswith('dewpoint temperature')


def test_rows_without_covariates_stay_and_are_not_mixed(tmp_path,
                                                        tiny_model):  # pylint: disable=redefined-outer-name
  """covariates='ignore' scores the same checkpoint without them (listed
  as ignored, another forecast); a workdir holding it refuses a run with
  covariates='use', naming the setting, and rescores with rerun."""
  [task] = tasks_lib.select(tasks_lib.load_suite('covariates'),
                            ['beijing_pm25_1H'])
  data = tmp_path / 'data'
  test_adapters._write_fev_dataset(  # pylint: disable=protected-access
      data, task, _beijing_like(np.random.default_rng(8)))
  work = str(tmp_path / 'work')
  ignore = _config(data, checkpoint=tiny_model, covariates='ignore')
  [without] = benchmark.run_config(ignore, work, progress=lambda line: None)
  assert without['covariates_ignored'] == list(task.covariates)
  assert without['covariates'] is None
  use = _config(data, checkpoint=tiny_model, **{'regression.ridge': 1.0})
  with pytest.raises(errors.WorkdirError, match='settings.covariates'):
    benchmark.run_config(use, work, progress=lambda line: None)
  use.rerun = True
  [with_] = benchmark.run_config(use, work, progress=lambda line: None)
  assert with_['metrics']['MASE'] != without['metrics']['MASE']
  stored = json.loads((tmp_path / 'work' / 'tasks' /
                       'beijing_pm25_1H.json').read_text())
  assert stored['covariates']['regression']['ridge'] == 1.0


@pytest.mark.parametrize('changes,words', [
    (dict(baseline='covariate_regression', covariates='ignore'),
     "config.baseline='covariate_regression' reads the tasks' covariates"),
    (dict(checkpoint='c', recipe='backtest_select'),
     "config.covariates='use' is read by the checkpoint"),
    (dict(checkpoint='c', covariates='ignore', **{'regression.ridge': 1.0}),
     'config.regression.ridge=1.0 is read only with'),
    (dict(checkpoint='c', **{'regression.order': 'xreg+ttm',
                             'regression.known': 'surprise'}),
     "needs order='ttm+xreg'"),
    (dict(checkpoint='c', inputs='reference', **{'finetune.enabled': True}),
     "config.inputs='reference' does not standardise")])
def test_covariate_settings_are_checked_before_any_work(tmp_path, changes,
                                                        words):
  with pytest.raises(errors.ConfigError) as caught:
    config_lib.resolve(_config(tmp_path, **changes))
  assert words in str(caught.value)
