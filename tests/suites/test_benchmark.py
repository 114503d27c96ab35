"""The benchmark runner: the suites' windows and metrics (against the fev
package and GluonTS), every suite's path end to end on small datasets made
in its published layout, and fev's published ttm-r2 / seasonal_naive
figures on the Monash tasks held in ../shared."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import conftest
from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax import save_pretrained
from ttm_jax.suites import benchmark
from ttm_jax.suites import task_data
from ttm_jax.suites import task_metrics
from ttm_jax.suites import tables as benchmark_tables
from ttm_jax.suites import recipes
from ttm_jax.suites import tasks as tasks_lib
from ttm_jax.inference import adapt
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import select
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib

ROOT = conftest.ROOT
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
PUBLISHED = os.path.join(tasks_lib.SUITES_DIR, 'fev_chronos_ii_published.csv')


def _ragged(rng, count, low, high):
  return [rng.normal(10, 3, rng.integers(low, high)).cumsum()
          for _ in range(count)]


# ------------------------------------------------------------- windows
def test_windows_follow_fevs_cutoffs_and_length_filter():
  task = tasks_lib.Task(
      suite='chronos_ii', name='t', dataset_path='p', dataset_config='c',
      horizon=2, seasonality=1, num_windows=2, initial_cutoff=-4,
      window_step_size=2, min_context_length=3)
  series = [np.arange(10.0), np.arange(5.0), np.arange(20.0)]
  first, second = tasks_lib.windows(task, series)
  # Cutoff -4: series 1 has 1 past point (< 3) and is dropped there.
  assert first.items.tolist() == [0, 2]
  np.testing.assert_array_equal(first.pasts[0], np.arange(6.0))
  np.testing.assert_array_equal(first.futures, [[6, 7], [16, 17]])
  # Cutoff -2: series 1 has its 3 past points.
  assert second.items.tolist() == [0, 1, 2]
  np.testing.assert_array_equal(second.futures[1], [3, 4])


def test_gift_window_count_rule():
  task = [t for t in tasks_lib.load_suite('gift_eval')
          if t.name == 'electricity/H/short'][0]
  assert task.horizon == 48 and task.num_windows == 0
  # ceil(0.1 * 5000 / 48) = 11; capped at 20; at least 1.
  assert task.with_windows([5000, 9000]).num_windows == 11
  assert task.with_windows([100000]).num_windows == 20
  assert task.with_windows([30]).num_windows == 1
  m4 = [t for t in tasks_lib.load_suite('gift_eval')
        if t.name == 'm4_yearly/A/short'][0]
  assert m4.num_windows == 1 and m4.horizon == 6


def test_suites_load_every_published_task():
  assert len(tasks_lib.load_suite('chronos_ii')) == 27
  assert len(tasks_lib.load_suite('fev_bench')) == 100
  assert len(tasks_lib.load_suite('gift_eval')) == 97


# ------------------------------------------------------------- metrics
def test_fev_metrics_match_the_fev_package():
  fev_metrics = conftest.require_module('fev.metrics')
  rng = np.random.default_rng(0)
  pasts = _ragged(rng, 12, 3, 40)
  pasts[3][5] = np.nan
  truth = rng.normal(10, 3, (12, 6)).cumsum(axis=1)
  quantiles = np.sort(truth[..., None] + rng.normal(0, 2, (12, 6, 9)),
                      axis=-1)
  median = quantiles[..., 4]
  ours = task_metrics.fev_window(truth, median, quantiles, pasts, 4, LEVELS)
  kwargs = dict(y_true=truth[..., None], y_pred=median[..., None],
                y_past=np.concatenate(pasts)[:, None],
                y_past_lengths=np.array([len(p) for p in pasts]),
                q_pred=quantiles[:, :, None, :], seasonality=4,
                quantile_levels=list(LEVELS))
  for name in ('MASE', 'WQL', 'SQL', 'WAPE'):
    theirs = getattr(fev_metrics, name)().compute(**kwargs)
    assert ours[name] == pytest.approx(theirs, rel=1e-10), name


def _gluonts_gift_row(pasts, truth, mean, quantiles, season):
  """GluonTS's own evaluation of the forecasts, as GIFT-Eval calls it
  (evaluate_forecasts, axis=None, invalid labels masked): its row of
  GIFT-Eval's 11 metrics."""
  conftest.require_module('gluonts')
  from gluonts.dataset.split import split  # pylint: disable=g-import-not-at-top
  from gluonts.ev import metrics as gm  # pylint: disable=g-import-not-at-top
  from gluonts.model import evaluate_forecasts  # pylint: disable=g-import-not-at-top
  from gluonts.model.forecast import QuantileForecast  # pylint: disable=g-import-not-at-top
  horizon = truth.shape[1]
  entries = [{'target': np.concatenate([p, t]), 'item_id': str(i),
              'start': pd.Period('2020-01', freq='M')}
             for i, (p, t) in enumerate(zip(pasts, truth))]
  _, template = split(entries, offset=-horizon)
  test_data = template.generate_instances(prediction_length=horizon,
                                          windows=1)
  forecasts = [QuantileForecast(
      forecast_arrays=np.concatenate([quantiles[i].T, mean[i][None]]),
      start_date=label['start'],
      forecast_keys=[str(q) for q in LEVELS] + ['mean'],
      item_id=label['item_id'])
               for i, label in enumerate(test_data.label)]
  metrics = [gm.MSE(forecast_type='mean'), gm.MSE(forecast_type=0.5),
             gm.MAE(), gm.MASE(), gm.MAPE(), gm.SMAPE(), gm.MSIS(),
             gm.RMSE(), gm.NRMSE(), gm.ND(),
             gm.MeanWeightedSumQuantileLoss(quantile_levels=LEVELS)]
  return evaluate_forecasts(forecasts, test_data=test_data, metrics=metrics,
                            axis=None, seasonality=season).iloc[0]


def test_gift_metrics_match_gluonts():
  rng = np.random.default_rng(1)
  pasts = _ragged(rng, 8, 10, 30)
  truth = rng.normal(10, 3, (8, 5)).cumsum(axis=1) + 50
  quantiles = np.sort(truth[..., None] + rng.normal(0, 3, (8, 5, 9)), -1)
  mean = quantiles.mean(axis=-1)
  row = _gluonts_gift_row(pasts, truth, mean, quantiles, 12)
  ours = task_metrics.gift(truth, mean, quantiles, pasts, 12, LEVELS)
  for column in task_metrics.GIFT_COLUMNS:
    assert ours[column] == pytest.approx(row[column], rel=1e-6), column


def test_gift_metrics_mask_undefined_ratios_as_gluonts():
  """Series whose seasonal error is 0 (constant pasts) or undefined (one
  point, nothing observed), zero truths (MAPE) and a zero truth forecast
  exactly (sMAPE): GluonTS masks those points' ratios, so MASE, MAPE,
  sMAPE and MSIS stay finite and equal its own."""
  rng = np.random.default_rng(6)
  pasts = _ragged(rng, 6, 10, 20) + [
      np.full(15, 4.0), np.full(9, 0.0), np.array([3.0]),
      np.full(7, np.nan)]
  truth = rng.normal(10, 3, (10, 4)).cumsum(axis=1) + 50
  truth[7] = 0.0  # Zero truths after a zero past.
  quantiles = np.sort(truth[..., None] + rng.normal(0, 3, (10, 4, 9)), -1)
  quantiles[7, :2] = 0.0  # Truth 0 forecast 0: sMAPE's 0 / 0.
  truth[0, 1] = np.nan  # A missing truth: masked by both.
  mean = quantiles.mean(axis=-1)
  ours = task_metrics.gift(truth, mean, quantiles, pasts, 3, LEVELS)
  row = _gluonts_gift_row(pasts, truth, mean, quantiles, 3)
  for column in task_metrics.GIFT_COLUMNS:
    assert np.isfinite(ours[column]), column
    assert ours[column] == pytest.approx(row[column], rel=1e-6), column
  # Each ratio is the mean over the points GluonTS keeps.
  scale = task_metrics.seasonal_errors(pasts, 3, gluonts_rule=True)
  assert scale[6] == 0 and scale[7] == 0 and np.isnan(scale[9])
  kept = np.isfinite(truth) & (np.nan_to_num(scale) > 0)[:, None]
  with np.errstate(divide='ignore', invalid='ignore'):
    scaled = np.abs(truth - quantiles[..., 4]) / scale[:, None]
  assert ours['MASE[0.5]'] == pytest.approx(np.mean(scaled[kept]))


def test_relative_scores_clip_and_geometric_mean():
  rel = {k: task_metrics.relative(v, b) for k, v, b in (
      ('a', 2.0, 1.0), ('b', 1e-4, 1.0), ('c', 1.0, float('nan')))}
  assert rel['a'] == 2.0 and rel['b'] == 0.01 and np.isnan(rel['c'])
  assert task_metrics.geometric_mean([2.0, 0.5, float('nan')]) == (
      pytest.approx(1.0))


def test_gift_relative_scores_are_pooled_over_gifts_seasonal_naive():
  """GIFT-Eval's relative.csv: the pooled MASE[0.5] and CRPS over GIFT's
  seasonal naive's, unclipped (fev's per-window MASE and WQL are not
  used); a record scored beside another baseline is refused."""
  def record(name, mase, crps, naive_mase, naive_crps):
    return dict(task_name=name, suite='gift_eval', split='test',
                trained_on_this_dataset=False,
                baseline='gift_seasonal_naive',
                metrics={'MASE': 9.0, 'WQL': 9.0},
                seasonal_naive={'MASE': 1.0, 'WQL': 1.0},
                gift={'MASE[0.5]': mase,
                      'mean_weighted_sum_quantile_loss': crps},
                gift_seasonal_naive={
                    'MASE[0.5]': naive_mase,
                    'mean_weighted_sum_quantile_loss': naive_crps})
  records = [record('a', 2.0, 0.3, 1.0, 0.6), record('b', 500.0, 0.2, 1.0,
                                                      0.8)]
  frame = benchmark_tables.relative(records)
  assert list(frame['task_name']) == ['a', 'b', 'geometric mean']
  np.testing.assert_allclose(frame['MASE'], [2.0, 500.0, np.sqrt(1000.0)])
  np.testing.assert_allclose(frame['CRPS'], [0.5, 0.25, np.sqrt(0.125)])
  assert 'WQL' not in frame
  old = dict(records[0], baseline='seasonal_naive')
  with pytest.raises(ValueError, match="a: .*beside seasonal_naive"):
    benchmark_tables.relative([old])


# ------------------------------------------------------- end to end
def _long_frame(values, start='2000-01-01', freq='YS'):
  rows = []
  for i, v in enumerate(values):
    stamps = pd.date_range(start, periods=len(v), freq=freq)
    rows.append({'id': f'S{i}', 'timestamp': list(stamps),
                 'target': list(v)})
  return pd.DataFrame(rows)


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('tiny') / 'model')
  config = config_lib.TTMConfig(
      context_length=32, prediction_length=8, patch_length=8,
      patch_stride=8, d_model=16, decoder_d_model=16, num_layers=1,
      decoder_num_layers=1, adaptive_patching_levels=1)
  save_pretrained(folder, config,
                  checkpoint.init_variables(config, jax.random.key(0)))
  return folder


def test_chronos_ii_task_end_to_end_in_the_hf_layout(tmp_path, tiny_model):
  rng = np.random.default_rng(2)
  values = _ragged(rng, 6, 9, 40)  # Some far shorter than the context.
  folder = tmp_path / 'data/autogluon/chronos_datasets/monash_m1_yearly'
  folder.mkdir(parents=True)
  pq.write_table(pa.Table.from_pandas(_long_frame(values)),
                 folder / 'train-00000-of-00001.parquet')
  work = tmp_path / 'work'
  forecaster = forecaster_lib.model_forecaster(
      tiny_model, quantiles='insample', pretrained_on=['m1_yearly'])
  records = benchmark.run('chronos_ii', str(tmp_path / 'data'), str(work),
                          forecaster, ['monash_m1_yearly', 'm4_yearly'],
                          progress=lambda line: None)
  [record] = records  # m4_yearly has no data: listed, skipped.
  missing = json.loads((work / 'missing.json').read_text())
  assert missing[0]['dataset_id'] == 'autogluon/chronos_datasets/m4_yearly'
  assert record['trained_on_this_dataset'] is True
  assert record['quantile_source'] == 'insample'
  # Seasonal naive (yearly: season 1, the last value) by hand, fev's MASE.
  pasts = [v[:-6] for v in values]
  truth = np.stack([v[-6:] for v in values])
  point = np.stack([np.full(6, p[-1]) for p in pasts])
  scale = np.array([np.mean(np.abs(np.diff(p))) for p in pasts])
  assert record['seasonal_naive']['MASE'] == pytest.approx(
      np.mean(np.abs(truth - point) / scale[:, None]), rel=1e-9)
  summary = pd.read_csv(work / 'summary.csv')
  assert summary['task_name'].tolist() == ['monash_m1_yearly']
  assert summary['MASE'][0] == pytest.approx(record['metrics']['MASE'])
  relative = pd.read_csv(work / 'relative.csv')
  assert relative['MASE'][0] == pytest.approx(
      record['metrics']['MASE'] / record['seasonal_naive']['MASE'])
  assert (work / 'relative.png').exists()

  def fail(*args, **kwargs):
    raise AssertionError('a finished task ran again')
  original = benchmark.run_task
  benchmark.run_task = fail
  try:
    again = benchmark.run('chronos_ii', str(tmp_path / 'data'), str(work),
                          forecaster, ['monash_m1_yearly'],
                          progress=lambda line: None)
  finally:
    benchmark.run_task = original
  assert again == records


def test_gift_eval_end_to_end_in_the_save_to_disk_layout(tmp_path):
  rng = np.random.default_rng(3)
  values = _ragged(rng, 5, 20, 30)
  table = pa.table({'item_id': [f'T{i}' for i in range(5)],
                    'start': pd.to_datetime(['1990-01-01'] * 5),
                    'freq': ['A-DEC'] * 5,
                    'target': [list(v) for v in values]})
  folder = tmp_path / 'data/m4_yearly'
  folder.mkdir(parents=True)
  with pa.OSFile(str(folder / 'data-00000-of-00001.arrow'), 'wb') as sink:
    with pa.ipc.new_stream(sink, table.schema) as writer:
      writer.write_table(table)
  work = tmp_path / 'work'
  process = subprocess.run(
      [sys.executable, '-m', 'experiments.benchmark', '--config',
       'configs/benchmarks/gift_eval.py:baseline=seasonal_naive,data_dir='
       f'{tmp_path / "data"},tasks=m4_yearly/A/short,org=ttm-jax,'
       'code_link=https://example.org/ttm-jax', '--workdir',
       str(work)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True, text=True, timeout=600)
  assert process.returncode == 0, process.stderr[-3000:]
  results = pd.read_csv(work / 'all_results.csv')
  with open(os.path.join(tasks_lib.SUITES_DIR,
                         'gift_eval_terms.json')) as f:
    assert list(results.columns) == json.load(f)['all_results_csv_columns']
  # Seasonal naive (season 1 on yearly data: the last value), by hand.
  truth = np.stack([v[-6:] for v in values])
  point = np.stack([np.full(6, v[-7]) for v in values])
  assert results['eval_metrics/MSE[0.5]'][0] == pytest.approx(
      np.mean((truth - point) ** 2))
  assert results['eval_metrics/ND[0.5]'][0] == pytest.approx(
      np.abs(truth - point).sum() / np.abs(truth).sum())
  config = json.loads((work / 'config.json').read_text())
  # GIFT-Eval's own seasonal naive, as statistical, from the config.
  assert config == dict(
      model='gift_seasonal_naive', model_type='statistical',
      model_dtype='float32', model_link='',
      code_link='https://example.org/ttm-jax', org='ttm-jax',
      testdata_leakage='No', replication_code_available='Yes')


def test_fev_bench_task_end_to_end(tmp_path):
  task = [t for t in tasks_lib.load_suite('fev_bench')
          if t.name == 'solar_1W'][0]
  rng = np.random.default_rng(4)
  values = _ragged(rng, 4, 40, 60)
  folder = tmp_path / 'data' / task.dataset_path / task.dataset_config
  folder.mkdir(parents=True)
  pq.write_table(pa.Table.from_pandas(_long_frame(values, freq='W')),
                 folder / 'data.parquet')
  series = task_data.read(task, str(tmp_path / 'data'))
  assert series.ids == ['S0', 'S1', 'S2', 'S3'] and series.freq.startswith(
      'W')
  record = benchmark.run_task(task, series, forecaster_lib.baseline())
  assert set(record['metrics']) >= {'MASE', 'WQL', 'SQL', 'WAPE'}
  assert record['num_forecasts'] == 4 * task.num_windows


def _fev_task(spec, path, monkeypatch):
  """fev's own Task over a local parquet file."""
  fev = conftest.require_fev(monkeypatch)
  fields = {k: v for k, v in spec.items() if k not in ('dataset_path',
                                                       'dataset_config')}
  task = fev.Task(dataset_path=str(path), **fields)
  # No fork in a process running JAX (datasets 5 forks a pool even for
  # num_proc=1; 0 runs in this process).
  task.load_full_dataset(num_proc=0)
  return task


def _fev_seasonal_naive(task):
  """Seasonal naive (as baselines.seasonal_naive: NaN as 0, the last
  value when the past is shorter than a season) on each of fev's own
  windows, every quantile the point, in fev's prediction format."""
  out = []
  for window in task.iter_windows():
    past, _ = window.get_input_data()
    per_column = {}
    for column in task.target_columns:
      rows = []
      for item in past:
        point = baselines.forecast(
            'seasonal_naive', [np.asarray(item[column], np.float64)],
            task.horizon, task.seasonality)[0, :, 0]
        rows.append({'predictions': point,
                     **{str(q): point for q in task.quantile_levels}})
      per_column[column] = rows
    out.append(per_column)
  return out


def _rohlik_long(rng):
  """rohlik_orders_1W's layout in fev's long format (one row per week):
  series of different spans, so later date cutoffs drop some."""
  rows = []
  spans = [('2021-01-03', '2024-03-03'), ('2022-06-05', '2023-09-03'),
           ('2023-04-23', '2024-02-25'), ('2020-05-03', '2024-06-02')]
  for k, (first, last) in enumerate(spans):
    stamps = pd.date_range(first, last, freq='W-SUN')
    # Values a float32 holds exactly: fev (0.10.0 with datasets 5) reads
    # them back as float32.
    orders = rng.gamma(5, 100, len(stamps)).astype(np.float32).astype(float)
    orders[rng.random(len(stamps)) < 0.05] = np.nan
    for t, stamp in enumerate(stamps):
      rows.append(dict(id=f'W{k}', timestamp=stamp, orders=orders[t],
                       holiday=float(t % 9 == 0), shops_closed=0.0,
                       winter_school_holidays=0.0, school_holidays=0.0,
                       **{c: rng.normal() for c in (
                           'shutdown', 'mini_shutdown', 'blackout',
                           'mov_change', 'frankfurt_shutdown',
                           'precipitation', 'snow', 'user_activity_1',
                           'user_activity_2')}))
  return pd.DataFrame(rows)


def _covid_wide(rng):
  """uk_covid_nation_1D's layout: three target columns per item, past
  covariates, one row per item."""
  rows = []
  for k, length in enumerate((640, 700, 600)):
    stamps = pd.date_range('2020-03-01', periods=length, freq='D')
    row = {'id': f'N{k}', 'timestamp': list(stamps)}
    for column in ('new_cases', 'new_deaths', 'new_admissions'):
      row[column] = list((rng.gamma(3, 50, length) * (1 + np.sin(
          np.arange(length) * 2 * np.pi / 7))).astype(np.float32).astype(
              float))  # As float32 holds them (see _rohlik_long).
    for column in ('new_vaccinated_1', 'new_vaccinated_2',
                   'new_vaccinated_3', 'hospital_cases',
                   'icu_ventilator_occupancy'):
      row[column] = list(rng.normal(size=length))
    rows.append(row)
  return pd.DataFrame(rows)


@pytest.mark.parametrize('name,make', [
    ('rohlik_orders_1W', _rohlik_long), ('uk_covid_nation_1D/new',
                                         _covid_wide)])
def test_fev_bench_covariates_and_multivariate_match_fev(tmp_path, name,
                                                         make, monkeypatch):
  """Date cutoffs (rohlik: weekly, long format, series dropped by later
  windows) and several targets (uk covid: three columns, 20 windows): the
  windows, metrics and forecast count are fev's own, and the covariates
  are reported as ignored."""
  [task] = tasks_lib.select(tasks_lib.load_suite('fev_bench'), [name])
  folder = tmp_path / 'data' / task.dataset_path / task.dataset_config
  folder.mkdir(parents=True)
  pq.write_table(pa.Table.from_pandas(make(np.random.default_rng(5)),
                                      preserve_index=False),
                 folder / 'train.parquet')
  lines = []
  [record] = benchmark.run('fev_bench', str(tmp_path / 'data'),
                           str(tmp_path / 'work'),
                           forecaster_lib.baseline(), [name],
                           progress=lines.append)
  fev_task = _fev_task(task.spec, folder / 'train.parquet', monkeypatch)
  theirs = fev_task.evaluation_summary(_fev_seasonal_naive(fev_task),
                                       'seasonal_naive')
  assert record['num_forecasts'] == theirs['num_forecasts']
  for metric in ('SQL', 'MASE', 'WAPE', 'WQL'):
    for ours in (record['metrics'], record['seasonal_naive']):
      assert ours[metric] == pytest.approx(theirs[metric], rel=1e-9), metric
  assert record['covariates_ignored'] == list(task.covariates)
  assert any('covariates ignored' in line and task.covariates[-1] in line
             for line in lines)
  summary = pd.read_csv(tmp_path / 'work' / 'summary.csv')
  assert summary['covariates_ignored'][0] == ' '.join(task.covariates)
  assert summary['test_error'][0] == pytest.approx(theirs['test_error'])


def test_fev_task_missing_column_is_named(tmp_path):
  [task] = tasks_lib.select(tasks_lib.load_suite('fev_bench'),
                            ['uk_covid_nation_1D/new'])
  folder = tmp_path / task.dataset_path / task.dataset_config
  folder.mkdir(parents=True)
  frame = _covid_wide(np.random.default_rng(6)).drop(
      columns=['hospital_cases'])
  pq.write_table(pa.Table.from_pandas(frame), folder / 'train.parquet')
  with pytest.raises(errors.DataError, match="'hospital_cases' "
                     r'\(past_dynamic_columns\)'):
    task_data.read(task, str(tmp_path))


# ---------------------------------------------------- validation split
def _recording(forecaster):
  """The forecaster, and the list its forecasts are appended to (each
  call's pasts and outputs)."""
  seen = []

  def fn(pasts, horizon, freq, levels, season):
    out = forecaster.fn(pasts, horizon, freq, levels, season)
    seen.append(([np.array(p) for p in pasts], out))
    return out
  return dataclasses.replace(forecaster, fn=fn), seen


def _holdout_case(windows, cutoff, dated):
  """A task (horizon 3, step 3; `cutoff` None: fev's default), six ragged
  series (some too short for a window) and, for a date task, their daily
  stamps ending on different days."""
  horizon = step = 3
  first = -horizon - (windows - 1) * step if cutoff is None else cutoff
  if dated:
    first = '2020-02-20T00:00:00'
  task = tasks_lib.Task(
      suite='chronos_ii', name='t', dataset_path='p', dataset_config='c',
      horizon=horizon, seasonality=2, num_windows=windows,
      initial_cutoff=first, window_step_size=step,
      quantile_levels=(0.1, 0.5, 0.9))
  values = _ragged(np.random.default_rng(7), 6, 4, 40)
  stamps = [pd.date_range(end=pd.Timestamp('2020-03-01') - pd.Timedelta(
      days=i), periods=len(v), freq='D').to_numpy() for i, v in
            enumerate(values)] if dated else None
  return task, task_data.Series([f'S{i}' for i in range(6)], values,
                                'D' if dated else '', 'x', stamps)


def _select_model(tiny_model):
  return select.forecaster(
      forecaster_lib.model_forecaster(tiny_model, quantiles='point'),
      select.Recipe(windows=2))


def _same_records(a, b):
  timings = ('seconds', 'inference_time_s', 'training_time_s')
  assert {k: v for k, v in a.items() if k not in timings} == {
      k: v for k, v in b.items() if k not in timings}


def _same_forecasts(a, b):
  assert len(a) == len(b)
  for (pasts_a, out_a), (pasts_b, out_b) in zip(a, b):
    assert len(pasts_a) == len(pasts_b)
    for x, y in zip(pasts_a, pasts_b):
      np.testing.assert_array_equal(x, y)
    for x, y in zip(out_a, out_b):
      np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize('windows,cutoff,dated', [
    (1, None, False), (2, None, False), (1, -8, False), (2, None, True)])
def test_validation_split_is_the_test_split_of_cut_series(
    tiny_model, windows, cutoff, dated):
  """split='validation' forecasts and scores exactly what test does on the
  series cut by hand at their first test cutoff, with the windows ending
  there: fev's default cutoff is the same task on series one horizon
  (times the windows) shorter; an explicit cutoff (-8, ETTm's kind) or a
  date moves back by the windows' span (3 steps a window here)."""
  task, series = _holdout_case(windows, cutoff, dated)
  if dated:  # Stamps up to the cutoff kept; cutoffs 2 x 3 days earlier.
    keep = [int(np.sum(t <= np.datetime64('2020-02-20'))) for t in
            series.timestamps]
    expected_task = dataclasses.replace(
        task, initial_cutoff='2020-02-14T00:00:00')
  else:
    keep = [max(0, len(v) + task.initial_cutoff) for v in series.values]
    expected_task = task if cutoff is None else dataclasses.replace(
        task, initial_cutoff=-3)
  cut = dataclasses.replace(
      series, values=[v[:k] for v, k in zip(series.values, keep)],
      timestamps=None if not dated else [
          t[:k] for t, k in zip(series.timestamps, keep)])
  ours, seen = _recording(_select_model(tiny_model))
  theirs, expected = _recording(_select_model(tiny_model))
  record = benchmark.run_task(task, series, ours, split='validation')
  reference = benchmark.run_task(expected_task, cut, theirs)
  assert record['split'] == 'validation' and reference['split'] == 'test'
  reference['split'] = 'validation'
  _same_records(record, reference)
  _same_forecasts(seen, expected)
  assert record['num_forecasts'] >= 4
  # Not the test split's windows.
  test = benchmark.run_task(task, series, forecaster_lib.baseline())
  assert test['seasonal_naive'] != record['seasonal_naive']


def _adapted_blend(tiny_model):
  """The README's recipe: the model on adapted pasts blended with
  seasonal naive by backtest."""
  return select.forecaster(
      forecaster_lib.model_forecaster(
          tiny_model, quantiles='point', inputs=inputs_lib.Inputs(
              pad='edge', gaps='zero', standardize=False,
              adaptation=adapt.Adaptation())),
      select.Recipe(candidates=('ttm', 'seasonal_naive'), mode='blend',
                    windows=2))


@pytest.mark.parametrize('dated,adapted', [(False, False), (True, False),
                                           (False, True)])
def test_validation_split_never_reads_the_test_windows(tiny_model, dated,
                                                       adapted):
  """Every value at or after each series' first test cutoff poisoned (NaN,
  +-1e12, inf): the validation forecasts and record are bit-identical
  (the backtest choice, and the adapted blend on positive series with a
  cycle of 2, which the seasonal adjustment takes)."""
  task, series = _holdout_case(2, None, dated)
  if adapted:
    series = dataclasses.replace(series, values=[
        (np.abs(v) + 10) * (1 + 0.3 * (-1.0) ** np.arange(len(v)))
        for v in series.values])
  if dated:
    first = [int(np.sum(t <= np.datetime64('2020-02-20'))) for t in
             series.timestamps]
  else:
    first = [max(0, len(v) - 6) for v in series.values]
  poison = np.array([np.nan, 1e12, -1e12, np.inf])
  poisoned = dataclasses.replace(series, values=[
      np.concatenate([v[:k], np.resize(poison, len(v) - k)])
      for v, k in zip(series.values, first)])
  make = _adapted_blend if adapted else _select_model
  clean, seen = _recording(make(tiny_model))
  dirty, seen_dirty = _recording(make(tiny_model))
  record = benchmark.run_task(task, series, clean, split='validation')
  _same_records(record, benchmark.run_task(task, poisoned, dirty,
                                           split='validation'))
  _same_forecasts(seen, seen_dirty)
  assert np.isfinite(record['metrics']['MASE'])


def test_validation_outputs_say_their_split(tmp_path):
  """The runner with split=validation and without, in one workdir:
  validation in W/validation/, test in W/, every record and table row
  labelled with its split; seasonal naive on the validation windows by
  hand; a rerun skips each split's finished task; a record of the other
  split is refused, not mixed in."""
  from tests import entry_points  # pylint: disable=g-import-not-at-top
  values = _ragged(np.random.default_rng(8), 5, 14, 30)
  data = tmp_path / 'data'
  folder = data / 'autogluon/chronos_datasets/monash_m1_yearly'
  folder.mkdir(parents=True)
  pq.write_table(pa.Table.from_pandas(_long_frame(values)),
                 folder / 'train-00000-of-00001.parquet')
  work = tmp_path / 'work'
  spec = ('configs/benchmarks/chronos_ii.py:baseline=seasonal_naive,'
          f'data_dir={data},tasks=monash_m1_yearly')
  base = ['experiments.benchmark', '--workdir', str(work), '--config']
  outcomes = entry_points.run_batch([base + [spec + ',split=validation'],
                                     base + [spec]])
  for rc, out, err in outcomes:
    assert rc == 0, (out + err)[-3000:]
  assert '(validation split)' in outcomes[0][1]
  splits = {'validation': work / 'validation', 'test': work}
  records = {}
  for split, where in splits.items():
    records[split] = json.loads(
        (where / 'tasks/monash_m1_yearly.json').read_text())
    assert records[split]['split'] == split
    assert pd.read_csv(where / 'summary.csv')['split'].tolist() == [split]
    assert set(pd.read_csv(where / 'relative.csv')['split']) == {split}
  # Yearly: season 1, the last value; validation truth the 6 before the
  # test's, pasts what precedes them.
  pasts = [v[:-12] for v in values]
  truth = np.stack([v[-12:-6] for v in values])
  point = np.stack([np.full(6, p[-1]) for p in pasts])
  scale = np.array([np.mean(np.abs(np.diff(p))) for p in pasts])
  assert records['validation']['seasonal_naive']['MASE'] == pytest.approx(
      np.mean(np.abs(truth - point) / scale[:, None]), rel=1e-9)
  assert records['test']['seasonal_naive'] != records['validation'][
      'seasonal_naive']

  def fail(*args, **kwargs):
    raise AssertionError('a finished task ran again')
  original = benchmark.run_task
  benchmark.run_task = fail
  try:
    from configs.benchmarks import chronos_ii  # pylint: disable=g-import-not-at-top
    for split in splits:  # The same config (a record names its settings).
      [again] = benchmark.run_config(
          chronos_ii.get_config(f'{spec.split(":", 1)[1]},split={split}'),
          str(work), lambda line: None)
      assert again == records[split]
    # A validation record where test records go: refused.
    mixed = tmp_path / 'mixed'
    (mixed / 'tasks').mkdir(parents=True)
    (mixed / 'tasks/monash_m1_yearly.json').write_text(
        json.dumps(records['validation']))
    with pytest.raises(errors.ConfigError, match='holds a validation'):
      benchmark.run('chronos_ii', str(data), str(mixed),
                    forecaster_lib.baseline(), ['monash_m1_yearly'],
                    lambda line: None)
  finally:
    benchmark.run_task = original


# ----------------------------------------------- published fev figures
@pytest.mark.parametrize('name', [
    'monash_m1_yearly', 'monash_tourism_yearly',
    pytest.param('monash_tourism_quarterly', marks=pytest.mark.slow),
    pytest.param('monash_tourism_monthly', marks=pytest.mark.slow),
    pytest.param('m4_yearly', marks=pytest.mark.slow)])
def test_reproduces_fevs_published_ttm_r2_and_seasonal_naive(name):
  """IBM r2 512-96 zero-shot (quantiles = the point forecast, as fev's TTM
  wrapper) and seasonal naive, on the Monash .tsf files these tasks were
  built from: MASE within 0.5% of fev's stored results (fev 0.6.0)."""
  data = conftest.require_data('monash')
  r2 = conftest.require_checkpoint('fraware__ChronoAPI__root')
  [task] = tasks_lib.select(tasks_lib.load_suite('chronos_ii'), [name])
  series = task_data.read(task, data)
  record = benchmark.run_task(task, series, forecaster_lib.model_forecaster(
      r2, quantiles='point', inputs='reference'))
  published = pd.read_csv(PUBLISHED).set_index(['model_name', 'task_name'])
  for ours, model in ((record['metrics'], 'ttm-r2'),
                      (record['seasonal_naive'], 'seasonal_naive')):
    theirs = published.loc[(model, name)]
    assert ours['MASE'] == pytest.approx(theirs['MASE'], rel=5e-3), model
    assert ours['WQL'] == pytest.approx(theirs['WQL'], rel=5e-3), model


def _leaderboard(tiny_model, **options):
  """recipe=leaderboard over the tiny model: a quick fine-tune, every
  candidate, as the runner builds it from its config."""
  settings = {name: field.default
              for name, field in recipes.LEADERBOARD_FIELDS.items()}
  settings.update(quick=True, windows=2, **options)
  return recipes.RECIPES['leaderboard'].build(
      dict(suite='chronos_ii', leaderboard=settings),
      forecaster_lib.model_forecaster(tiny_model, quantiles='point'))


@pytest.mark.parametrize('intervals', ['pooled', 'normal'])
def test_the_leaderboard_recipe_never_reads_the_test_windows(tiny_model,
                                                            intervals):
  """Every value at or after each series' first test cutoff poisoned:
  the leaderboard recipe's validation record (its per-task fine-tune, the
  zero-shot model, the baselines, the choice by backtest and its
  intervals) is bit-identical; and it scores every series."""
  task, series = _holdout_case(2, None, False)
  series = dataclasses.replace(series, values=[
      np.abs(v) + 10 for v in series.values])
  first = [max(0, len(v) - 6) for v in series.values]
  poison = np.array([np.nan, 1e12, -1e12, np.inf])
  poisoned = dataclasses.replace(series, values=[
      np.concatenate([v[:k], np.resize(poison, len(v) - k)])
      for v, k in zip(series.values, first)])
  records = [benchmark.run_task(task, values, _leaderboard(
      tiny_model, intervals=intervals), split='validation')
             for values in (series, poisoned)]
  _same_records(*records)
  assert records[0]['model_name'] == 'model-leaderboard'
  assert records[0]['model_notes']['finetuned']['finetuned']  # It trained.
  assert sum(records[0]['recipe']['share'].values()) == pytest.approx(1.0)
  assert np.isfinite(records[0]['metrics']['MASE'])
  assert np.isfinite(records[0]['metrics']['WQL'])
