"""The suites' own harnesses score ttm-jax as the runner does
(`suites.adapters`): fev's `Task.iter_windows` and `evaluation_summary`
over `adapters.FevModel`'s predictions give the runner's MASE and WQL
(`benchmark.run_task`), and GIFT-Eval's `evaluate_model` over
`adapters.GluonTSPredictor` gives the runner's `all_results.csv` row, to
1e-6, for a tiny model, IBM r2 512-96, the suites' seasonal naives and a
per-task fine-tune.

fev reads its tasks from local parquet files in its layout
(FEV_DATASETS_PREFIX); GIFT-Eval's data are the `save_to_disk` folders of
../shared/data/gift_eval, read by `GiftDataset`, a minimal copy of
GIFT-Eval's `Dataset` (its notebooks' only way to the test data)."""

import dataclasses
import json
import math
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import conftest
from tests.suites import test_benchmark
from tests.suites import test_gift_eval_published
from ttm_jax.data import pretrain
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.suites import adapters
from ttm_jax.suites import benchmark
from ttm_jax.suites import finetuned
from ttm_jax.suites import task_data
from ttm_jax.suites import tasks as tasks_lib

tiny_model = test_benchmark.tiny_model  # The fixture (a saved tiny TTM).
R2 = 'fraware__ChronoAPI__root'
R2_PRETRAINING = ['ibm-granite/granite-timeseries-ttm-r2']
# Declared for the tiny model (random weights), so that the pretraining
# flags and GIFT-Eval's leakage field have something to decide.
TINY_PRETRAINING = ['m1_yearly']
TOLERANCE = 1e-6  # Relative, the bar.


@pytest.fixture(scope='module')
def r2():
  return conftest.require_checkpoint(R2)


def _forecaster(kind: str, tiny: str, r2_folder=None):
  """The forecasters compared: the tiny model zero-shot (in-sample
  intervals), fine-tuned per task (quick), IBM r2 zero-shot (fev's TTM
  wrapper's inputs and point quantiles, and its in-sample intervals), and
  the suites' seasonal naives."""
  if kind == 'tiny':
    return forecaster_lib.model_forecaster(tiny, quantiles='insample',
                                           pretrained_on=TINY_PRETRAINING)
  if kind == 'tiny-ft':
    return finetuned.finetune_forecaster(tiny, quick=True,
                                         pretrained_on=TINY_PRETRAINING)
  if kind == 'r2':
    return forecaster_lib.model_forecaster(
        r2_folder, quantiles='point', inputs='reference',
        pretrained_on=R2_PRETRAINING)
  if kind == 'r2-insample':
    return forecaster_lib.model_forecaster(
        r2_folder, quantiles='insample', pretrained_on=R2_PRETRAINING)
  if kind == 'r2-ft':
    return finetuned.finetune_forecaster(
        r2_folder, quick=True, pretrained_on=R2_PRETRAINING)
  return forecaster_lib.baseline(kind)


# ------------------------------------------------------------------- fev
def _suite_task(suite: str, name: str) -> tasks_lib.Task:
  [task] = tasks_lib.select(tasks_lib.load_suite(suite), [name])
  return task


def _write_fev_dataset(data, task: tasks_lib.Task, frame: pd.DataFrame):
  """`frame` as the task's dataset in fev's mirror layout,
  <data>/<dataset_config>/train.parquet (FEV_DATASETS_PREFIX), where the
  runner also looks (`task_data.locate`)."""
  folder = data / task.dataset_config
  folder.mkdir(parents=True)
  pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                 folder / 'train.parquet')


def _fev_task(task: tasks_lib.Task, data, monkeypatch):
  """fev's own Task of the suite's definition (`fev.Task(**spec)`), read
  from `data` as fev's mirror (FEV_DATASETS_PREFIX); fev 0.10.0 under
  datasets 5 needs its download config shimmed, and no fork in a process
  running JAX (num_proc=0)."""
  fev = conftest.require_fev(monkeypatch, data)
  fev_task = fev.Task(**task.spec)
  fev_task.load_full_dataset(num_proc=0)
  return fev_task


def _fev_agrees(task, data, forecaster, monkeypatch, runner_data=None):
  """fev's summary of the adapter's predictions against the runner's
  record on the same files (or on `runner_data`): every metric fev
  reports, the forecast count and the pretraining flag. Returns the
  relative differences."""
  series = task_data.read(task, str(runner_data or data))
  record = benchmark.run_task(task, series, forecaster)
  fev_task = _fev_task(task, data, monkeypatch)
  model = adapters.FevModel(forecaster, num_proc=0)
  summary = fev_task.evaluation_summary(
      model.fit_predict(fev_task), model.model_name,
      training_time_s=model.training_time,
      inference_time_s=model.inference_time,
      trained_on_this_dataset=(fev_task.dataset_config in
                               model.trained_on_datasets))
  assert summary['model_name'] == record['model_name'] == forecaster.name
  assert summary['num_forecasts'] == record['num_forecasts']
  assert summary['trained_on_this_dataset'] == bool(
      record['trained_on_this_dataset'])
  assert (model.training_time > 0) == (forecaster.prepare is not None)
  differences = {}
  for metric in ('MASE', 'WQL', 'SQL', 'WAPE'):
    if metric in summary:
      ours = record['metrics'][metric]
      assert summary[metric] == pytest.approx(ours, rel=TOLERANCE), metric
      differences[metric] = abs(summary[metric] / ours - 1)
  return differences


def _m1_like(count: int = 8, low: int = 20, high: int = 80) -> pd.DataFrame:
  """Yearly series in chronos_datasets' layout, some shorter than the
  tiny model's context, with a gap."""
  values = test_benchmark._ragged(np.random.default_rng(11), count, low,
                                  high)
  values[2][5] = np.nan
  return test_benchmark._long_frame(values)


@pytest.mark.parametrize('kind', ['tiny', 'tiny-ft', 'seasonal_naive'])
def test_fev_harness_scores_the_runners_numbers(tmp_path, monkeypatch,
                                                 tiny_model, kind):
  """Chronos Benchmark II's monash_m1_yearly definition on small series:
  fev's MASE and WQL of FevModel's predictions are the runner's, for the
  model zero-shot, fine-tuned per task (prepared on the pasts only: fev
  times it as training) and seasonal naive."""
  task = _suite_task('chronos_ii', 'monash_m1_yearly')
  _write_fev_dataset(tmp_path, task, _m1_like())
  _fev_agrees(task, tmp_path, _forecaster(kind, tiny_model), monkeypatch)


@pytest.mark.parametrize('name,make', [
    ('rohlik_orders_1W', test_benchmark._rohlik_long),
    ('uk_covid_nation_1D/new', test_benchmark._covid_wide)])
def test_fev_harness_on_date_cutoffs_and_several_targets(
    tmp_path, monkeypatch, tiny_model, name, make):
  """fev-bench's definitions: date cutoffs over the long format (series
  dropped by later windows) and three target columns over 20 windows
  (fev splits them into univariate series itself)."""
  task = _suite_task('fev_bench', name)
  _write_fev_dataset(tmp_path, task, make(np.random.default_rng(5)))
  _fev_agrees(task, tmp_path, _forecaster('tiny', tiny_model), monkeypatch)


def _recording(forecaster):
  """The forecaster with its `prepare` (if any) recording what it was
  given."""
  seen = []
  if forecaster.prepare is None:
    return forecaster, seen

  def prepare(histories, horizon, freq, name):
    seen.append(([np.array(h) for h in histories], horizon, freq, name))
    return forecaster.prepare(histories, horizon, freq, name)
  return dataclasses.replace(forecaster, prepare=prepare), seen


def _same_preparation(seen):
  """The runner's and the adapter's `prepare` calls got the same pasts
  (in order), horizon, frequency and task name."""
  (runner, *rest), (adapter, *others) = seen
  assert rest == others
  assert len(runner) == len(adapter)
  for ours, theirs in zip(runner, adapter):
    np.testing.assert_array_equal(ours, theirs)


def test_fev_harness_on_a_fine_tune_over_several_windows(tmp_path,
                                                         monkeypatch,
                                                         tiny_model):
  """rohlik_orders_1W's five date windows, fine-tuned per task: FevModel
  prepares the forecaster on each series' past at its first window, the
  runner's `task_histories` exactly (nothing a later window's past adds),
  and fev's scores are the runner's."""
  task = _suite_task('fev_bench', 'rohlik_orders_1W')
  _write_fev_dataset(tmp_path, task, test_benchmark._rohlik_long(
      np.random.default_rng(5)))
  forecaster, seen = _recording(_forecaster('tiny-ft', tiny_model))
  _fev_agrees(task, tmp_path, forecaster, monkeypatch)
  assert len(seen) == 2
  _same_preparation(seen)


def test_fev_model_declares_what_it_was_trained_on(r2):
  """fev's trained_on_datasets: the fev suites' dataset configs the runner
  flags for r2's pretraining data, and none for a baseline."""
  model = adapters.FevModel(_forecaster('r2', '', r2))
  assert model.model_name == os.path.basename(r2)
  for suite in ('chronos_ii', 'fev_bench'):
    for task in tasks_lib.load_suite(suite):
      assert (task.dataset_config in model.trained_on_datasets) == (
          benchmark.overlaps(task, R2_PRETRAINING)), task.name
  assert adapters.FevModel(_forecaster('seasonal_naive', '')
                           ).trained_on_datasets == []


def _monash_in_fev_layout(data, task: tasks_lib.Task):
  """The Monash .tsf file a Chronos Benchmark II task was built from, in
  chronos_datasets' layout (id, timestamp, target; timestamps from each
  series' start at the file's frequency)."""
  tsf = conftest.require_data('monash', task_data.MONASH_FILES[
      task.dataset_config])
  found = pretrain.read_tsf(tsf)
  rows = []
  for attributes, values in zip(found.attributes, found.series):
    start = pd.Timestamp(attributes['start_timestamp'].split(' ')[0])
    rows.append(dict(id=attributes['series_name'],
                     timestamp=pd.date_range(start, periods=len(values),
                                             freq=found.freq).to_numpy(),
                     target=np.asarray(values, np.float64)))
  _write_fev_dataset(data, task, pd.DataFrame(rows))
  return os.path.dirname(tsf)


@pytest.mark.parametrize('kind', [
    'r2', 'seasonal_naive', 'tiny',
    pytest.param('r2-insample', marks=pytest.mark.slow),
    pytest.param('r2-ft', marks=pytest.mark.slow)])
def test_fev_harness_on_a_real_monash_task(tmp_path, monkeypatch, tiny_model,
                                           r2, kind):
  """monash_m1_yearly built in fev's layout from the Monash file: fev's
  summary of FevModel's predictions equals the runner's record on that
  .tsf file (the path that reproduces fev's published figures). A
  fine-tune is compared on the same parquet files instead: it depends on
  the order of the pasts, which fev sorts by id and the .tsf keeps as
  written (T1, T2, ... against T1, T10, T100, ...)."""
  task = _suite_task('chronos_ii', 'monash_m1_yearly')
  monash = _monash_in_fev_layout(tmp_path, task)
  forecaster = _forecaster(kind, tiny_model, r2)
  _fev_agrees(task, tmp_path, forecaster, monkeypatch,
              runner_data=None if forecaster.prepare else monash)


# ------------------------------------------------------------- GIFT-Eval
# GIFT-Eval's Dataset (SalesforceAIResearch/gift-eval@4fd98a9f,
# src/gift_eval/data.py), as its notebooks build the test data, written
# again here: the package is not on PyPI. Departure: pandas 3 no longer
# reads GIFT's old frequency aliases ('15T', 'H'), so the periods of
# `start` use today's spelling ('15min', 'h'); the forecaster still gets
# GIFT's string (`freq`), as the runner does.
GIFT_PRED_LENGTHS = {'M': 12, 'W': 8, 'D': 30, 'H': 48, 'T': 48, 'S': 60}
GIFT_M4_PRED_LENGTHS = {'A': 6, 'Q': 8, 'M': 18, 'W': 13, 'D': 14, 'H': 48}
GIFT_TERMS = {'short': 1, 'medium': 10, 'long': 15}  # data.py:68-80
# data.py:88-102: pandas' new names back to the old.
GIFT_OLD_NAMES = {'Y': 'A', 'YE': 'A', 'QE': 'Q', 'ME': 'M', 'h': 'H',
                  'min': 'T', 's': 'S', 'us': 'U'}


def _period_freq(freq: str) -> str:
  """A GIFT frequency string in pandas 3's period spelling."""
  count, name, anchor = re.fullmatch(r'(\d*)([A-Za-z]+)(-\w+)?',
                                     freq).groups()
  name = {'T': 'min', 'H': 'h', 'S': 's', 'A': 'Y', 'U': 'us'}.get(name,
                                                                   name)
  return f'{count}{name}{anchor or ""}'


def _offset(freq: str):
  """The pandas offset of a GIFT frequency (pandas 3: 'M' is 'ME')."""
  return pd.Period('2000-01-01', freq=_period_freq(freq)).freq


class GiftDataset:
  """GIFT-Eval's `Dataset` (data.py:122-241): the configuration's
  save_to_disk folder as GluonTS entries, its horizon, windows and test
  data."""

  def __init__(self, root: str, name: str, term: str = 'short',
               to_univariate: bool = False):
    datasets = conftest.require_module('datasets')
    toolz = conftest.require_module('toolz')
    from gluonts.dataset import common  # pylint: disable=g-import-not-at-top
    from gluonts import itertools as gluonts_itertools  # pylint: disable=g-import-not-at-top
    self.name, self.term = name, term
    # data.py:132-134, then 135-144: each entry's start a period.
    self.hf_dataset = datasets.load_from_disk(
        os.path.join(root, name)).with_format('numpy')
    process = common.ProcessDataEntry(_period_freq(self.freq),
                                      one_dim_target=self.target_dim == 1)
    self.gluonts_dataset = gluonts_itertools.Map(
        toolz.compose(process, _itemize_start), self.hf_dataset)
    if to_univariate:
      self.gluonts_dataset = _to_univariate().apply(self.gluonts_dataset)

  @property
  def freq(self) -> str:  # data.py:158-160
    return str(self.hf_dataset[0]['freq'])

  @property
  def target_dim(self) -> int:  # data.py:162-168
    target = self.hf_dataset[0]['target']
    return target.shape[0] if target.ndim > 1 else 1

  @property
  def prediction_length(self) -> int:  # data.py:149-156
    from gluonts import time_feature  # pylint: disable=g-import-not-at-top
    name = time_feature.norm_freq_str(_offset(self.freq).name)
    name = GIFT_OLD_NAMES.get(name, name)
    lengths = (GIFT_M4_PRED_LENGTHS if 'm4' in self.name else
               GIFT_PRED_LENGTHS)
    return GIFT_TERMS[self.term] * lengths[name]

  @property
  def windows(self) -> int:  # data.py:188-193, 196-205 (first variate)
    if 'm4' in self.name:
      return 1
    shortest = min(len(t[0]) if t.ndim > 1 else len(t)
                   for t in self.hf_dataset['target'])
    return min(max(1, math.ceil(0.1 * shortest / self.prediction_length)),
               20)

  @property
  def test_data(self):  # data.py:231-241
    from gluonts.dataset import split  # pylint: disable=g-import-not-at-top
    _, template = split.split(
        self.gluonts_dataset, offset=-self.prediction_length * self.windows)
    return template.generate_instances(
        prediction_length=self.prediction_length, windows=self.windows,
        distance=self.prediction_length)


def _itemize_start(entry):  # data.py:83-85
  entry['start'] = entry['start'].item()
  return entry


def _to_univariate():
  """data.py:105-119: each variate of `target` an entry of its own, its
  item_id suffixed '_dim<k>'."""
  from gluonts import transform  # pylint: disable=g-import-not-at-top

  class MultivariateToUnivariate(transform.Transformation):

    def __call__(self, data_it, is_train: bool = False):
      del is_train
      for entry in data_it:
        for k, variate in enumerate(list(entry['target'])):
          yield dict(entry, target=variate,
                     item_id=f'{entry["item_id"]}_dim{k}')
  return MultivariateToUnivariate()


def _gift_metrics():
  """The metrics of GIFT-Eval's notebooks (naive.ipynb, cell 2)."""
  from gluonts.ev import metrics  # pylint: disable=g-import-not-at-top
  return [metrics.MSE(forecast_type='mean'), metrics.MSE(forecast_type=0.5),
          metrics.MAE(), metrics.MASE(), metrics.MAPE(), metrics.SMAPE(),
          metrics.MSIS(), metrics.RMSE(), metrics.NRMSE(), metrics.ND(),
          metrics.MeanWeightedSumQuantileLoss(
              quantile_levels=list(adapters.GIFT_LEVELS))]


def gift_evaluate(forecaster, root: str, task: tasks_lib.Task):
  """GIFT-Eval's evaluation of one configuration (naive.ipynb, cell 6):
  its Dataset (to_univariate when multivariate), the season
  get_seasonality gives its frequency, `evaluate_model` with its
  arguments; the forecaster as `adapters.GluonTSPredictor`. Returns the
  metrics' row."""
  conftest.require_module('gluonts')
  from gluonts import model as gluonts_model  # pylint: disable=g-import-not-at-top
  from gluonts import time_feature  # pylint: disable=g-import-not-at-top
  name = task.dataset_config
  to_univariate = GiftDataset(root, name, task.term).target_dim > 1
  dataset = GiftDataset(root, name, task.term, to_univariate)
  season = time_feature.get_seasonality(_offset(dataset.freq).freqstr)
  assert (dataset.prediction_length, season) == (task.horizon,
                                                 task.seasonality)
  predictor = adapters.GluonTSPredictor(
      forecaster, dataset.prediction_length, dataset.freq, season,
      name=task.name)
  return gluonts_model.evaluate_model(
      predictor, test_data=dataset.test_data, metrics=_gift_metrics(),
      batch_size=512, axis=None, mask_invalid_label=True,
      allow_nan_forecast=False, seasonality=season).iloc[0]


def _runner_row(forecaster, root: str, name: str, work) -> pd.Series:
  """The runner's all_results.csv row of one configuration."""
  benchmark.run('gift_eval', root, str(work), forecaster, [name],
                progress=lambda line: None)
  frame = pd.read_csv(work / 'all_results.csv').set_index('dataset')
  return frame.loc[name]


def _gift_agrees(forecaster, root: str, task, work):
  """Every all_results.csv column of the runner against GIFT-Eval's
  evaluate_model of the adapter, to 1e-6 relative. Returns the relative
  differences."""
  ours = _runner_row(forecaster, root, task.name, work)
  theirs = gift_evaluate(forecaster, root, task)
  assert ours['model'] == forecaster.name
  with open(os.path.join(tasks_lib.SUITES_DIR, 'gift_eval_terms.json')) as f:
    columns = [c for c in json.load(f)['all_results_csv_columns']
               if c.startswith('eval_metrics/')]
  assert len(columns) == 11
  differences = {}
  for column in columns:
    value = theirs[column.removeprefix('eval_metrics/')]
    assert np.isfinite(value), column
    assert ours[column] == pytest.approx(value, rel=TOLERANCE), column
    differences[column] = abs(ours[column] / value - 1) if value else 0.0
  return differences


GIFT_CONFIGS = test_gift_eval_published.CONFIGS
CHEAP = ('us_births/M/short', 'saugeen/M/short', 'ett1/W/short')


@pytest.mark.parametrize('name', [
    name if name in CHEAP else pytest.param(name, marks=pytest.mark.slow)
    for name in GIFT_CONFIGS])
@pytest.mark.parametrize('kind', ['gift_seasonal_naive', 'r2'])
def test_gift_evaluate_model_scores_the_runners_all_results(tmp_path, r2,
                                                            kind, name):
  """GIFT-Eval's evaluate_model over GluonTSPredictor equals the runner's
  all_results.csv row on the shared configurations: GIFT-Eval's seasonal
  naive and IBM r2 512-96 zero-shot (rolled past 96 steps on ett1's
  medium and long terms), every column."""
  root = conftest.require_data('gift_eval')
  [task] = tasks_lib.select(tasks_lib.load_suite('gift_eval'), [name])
  _gift_agrees(_forecaster(kind, '', r2), root, task, tmp_path / 'work')


def _gift_layout(root, name: str, freq: str, values):
  """Series in GIFT-Eval's save_to_disk layout: root/<name>/, item_id,
  start (timestamp[s]), freq, target (float32)."""
  datasets = conftest.require_module('datasets')
  table = pa.table({
      'item_id': [f'T{i}' for i in range(len(values))],
      'start': pa.array(pd.to_datetime(['1990-01-07'] * len(values)),
                        pa.timestamp('s')),
      'freq': [freq] * len(values),
      'target': pa.array([list(v) for v in values], pa.list_(pa.float32()))})
  datasets.Dataset(table).save_to_disk(os.path.join(root, name))


@pytest.mark.parametrize('kind', ['tiny', 'tiny-ft'])
def test_gift_predictor_prepares_on_the_pasts_as_the_runner(tmp_path,
                                                            tiny_model, kind):
  """hierarchical_sales/W/short's definition on small weekly series in
  GIFT-Eval's layout (three windows, a gap): evaluate_model over
  GluonTSPredictor equals the runner, for the model zero-shot and
  fine-tuned per task, which the predictor prepares on each item's past
  at its first window (the runner's `task_histories`) from the test
  data's inputs."""
  values = test_benchmark._ragged(np.random.default_rng(12), 6, 170, 220)
  values[1][40] = np.nan
  root = str(tmp_path / 'data')
  [task] = tasks_lib.select(tasks_lib.load_suite('gift_eval'),
                            ['hierarchical_sales/W/short'])
  _gift_layout(root, task.dataset_config, 'W-SUN', values)
  forecaster, seen = _recording(_forecaster(kind, tiny_model))
  _gift_agrees(forecaster, root, task, tmp_path / 'work')
  assert GiftDataset(root, task.dataset_config).windows == 3
  if kind == 'tiny-ft':
    assert len(seen) == 2
    _same_preparation(seen)
