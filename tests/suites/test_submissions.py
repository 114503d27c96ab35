"""The suites' submission files: fev's results CSV (summary.csv) passes the
checks fev's own submission test applies, and GIFT-Eval's config.json
takes its fields from the config and decides the test-data leakage or
refuses.

fev's checks are those of autogluon/fev @ 1bc95fd77 `test/
test_fev_bench_submissions.py`, reimplemented with fev's own constants
(`fev.analysis.TASK_DEF_COLUMNS`, `pivot_table`, `leaderboard`): the
required columns, no duplicate (model, task) row, every task one of
fev-bench's, no NaN in MASE and SQL, and, beside the other submissions
(here fev's published seasonal naive, `tests/fixtures/
fev_bench_seasonal_naive.csv`: `benchmarks/fev_bench/results/
seasonal_naive.csv` of that commit, Apache-2.0), a pivot onto exactly one
row per fev-bench task and a leaderboard holding every model.
"""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import conftest
from tests.suites import test_benchmark as helpers
from ttm_jax import errors
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.suites import benchmark
from ttm_jax.suites import tables
from ttm_jax.suites import tasks as tasks_lib

PUBLISHED = os.path.join(conftest.FIXTURES, 'fev_bench_seasonal_naive.csv')
FEV_BENCH = os.path.join(tasks_lib.SUITES_DIR, 'fev_bench.yaml')
MAX_RESULT_FILE_BYTES = 5 * 1024 * 1024  # fev's limit.


@pytest.mark.parametrize('suite', ['chronos_ii', 'fev_bench'])
def test_task_definitions_are_fevs(suite):
  """Every task's definition columns equal `fev.Task(**spec).to_dict()`
  (fev's normalisation: cutoffs, sorted column lists, metric specs)."""
  fev = conftest.require_module('fev')
  for task in tasks_lib.load_suite(suite):
    assert tables.task_definition(task) == fev.Task(**task.spec).to_dict(), (
        task.name)


def _fev_bench_run(tmp_path, forecaster):
  """summary.csv of three fev-bench tasks in fev's layouts (weekly long
  format, date cutoffs with covariates, three targets), scored by
  `forecaster`."""
  data = tmp_path / 'data'
  makers = {
      'solar_1W': lambda rng: helpers._long_frame(  # pylint: disable=protected-access
          helpers._ragged(rng, 4, 40, 60), freq='W'),  # pylint: disable=protected-access
      'rohlik_orders_1W': helpers._rohlik_long,  # pylint: disable=protected-access
      'uk_covid_nation_1D/new': helpers._covid_wide,  # pylint: disable=protected-access
  }
  for task in tasks_lib.select(tasks_lib.load_suite('fev_bench'),
                               list(makers)):
    folder = data / task.dataset_path / task.dataset_config
    folder.mkdir(parents=True)
    frame = makers[task.name](np.random.default_rng(9))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                   folder / 'train.parquet')
  records = benchmark.run('fev_bench', str(data), str(tmp_path / 'work'),
                          forecaster, list(makers),
                          progress=lambda line: None)
  assert len(records) == 3
  return tmp_path / 'work' / 'summary.csv'


def test_fev_bench_csv_passes_fevs_submission_checks(tmp_path):
  fev = conftest.require_module('fev')
  analysis = conftest.require_module('fev.analysis')
  path = _fev_bench_run(tmp_path, forecaster_lib.baseline())
  assert path.stat().st_size <= MAX_RESULT_FILE_BYTES
  summary = pd.read_csv(path)
  required = analysis.TASK_DEF_COLUMNS + ['model_name', 'task_name', 'MASE',
                                          'SQL']
  assert not [c for c in required if c not in summary.columns]
  assert not summary.duplicated(['model_name', 'task_name']).any()
  # The rules followed are those of the fev the tests run.
  assert set(summary['fev_version']) == {fev.__version__}
  names = {t.task_name for t in fev.Benchmark.from_yaml(FEV_BENCH).tasks}
  assert set(summary['task_name']) <= names
  for metric in ('MASE', 'SQL'):
    assert summary[metric].notna().all(), metric
  # No NaN in what a row is: the model, the task, its error and metrics.
  assert summary[['model_name', 'task_name', 'test_error', 'MASE', 'SQL',
                  'WAPE', 'WQL', 'num_forecasts']].notna().all().all()
  # Beside the published submissions: one pivot row per fev-bench task
  # (a malformed definition column would split a task into another row).
  both = pd.concat([pd.read_csv(PUBLISHED), summary], ignore_index=True)
  for metric in ('MASE', 'SQL'):
    pivot = analysis.pivot_table(both, metric_column=metric)
    assert len(pivot) == len(names) == 100, metric
    assert pivot['seasonal_naive'].notna().sum() == 3
    board = analysis.leaderboard(
        summaries=both, metric_column=metric, missing_strategy='impute',
        baseline_model='Seasonal Naive')
    assert set(both['model_name']) == set(board.index)
  # Column by column, the definitions are those fev wrote (the data here
  # is synthetic: only the definitions must meet).
  ours = summary.set_index('task_name')
  theirs = pd.read_csv(PUBLISHED).set_index('task_name').loc[ours.index]
  for column in analysis.TASK_DEF_COLUMNS:
    assert (ours[column].fillna('').astype(str)
            == theirs[column].fillna('').astype(str)).all(), column


def test_a_bad_definition_column_splits_the_pivot(tmp_path):
  """The pivot check has teeth: a definition column written otherwise
  (the target list in the task's own order, not fev's sorted one) makes
  an extra row."""
  analysis = conftest.require_module('fev.analysis')
  summary = pd.read_csv(_fev_bench_run(tmp_path, forecaster_lib.baseline()))
  summary.loc[summary['task_name'] == 'uk_covid_nation_1D/new', 'target'] = (
      "['new_cases', 'new_deaths', 'new_admissions']")
  both = pd.concat([pd.read_csv(PUBLISHED), summary], ignore_index=True)
  assert len(analysis.pivot_table(both, metric_column='SQL')) == 101


# ------------------------------------------------------------- GIFT-Eval
R2 = 'ibm-granite/granite-timeseries-ttm-r2'


def test_gift_testdata_leakage_is_decided_or_refused():
  r2 = list(forecaster_lib.KNOWN_PRETRAINING[R2])
  # r2's card lists us_births, saugeenday, ...: GIFT-Eval datasets.
  assert benchmark.testdata_leakage([r2]) == 'Yes'
  assert benchmark.testdata_leakage([r2], 'Yes') == 'Yes'
  with pytest.raises(errors.ConfigError,
                     match=r"config.submission.testdata_leakage='No' "
                     r"contradicts .*'saugeenday'"):
    benchmark.testdata_leakage([r2], 'No')
  # Known and disjoint (a baseline, a model pretrained on ETT only).
  assert benchmark.testdata_leakage([(), ['etth1']]) == 'No'
  # A checkpoint that does not say: only the config decides.
  with pytest.raises(errors.ConfigError,
                     match=r"config.submission.testdata_leakage='' cannot "
                     r'be decided'):
    benchmark.testdata_leakage([None])
  assert benchmark.testdata_leakage([None], 'No') == 'No'
  # An overlap anywhere decides, whatever else is unknown.
  assert benchmark.testdata_leakage([None, r2]) == 'Yes'


def test_gift_config_takes_its_fields_from_the_config():
  def record(config, pretraining):
    return dict(model_name='m', model_config=config,
                pretraining_data=pretraining)
  submission = dict(org='ttm-jax', code_link='https://example.org/c',
                    model_link='', model_type='', testdata_leakage='')
  found = benchmark.gift_config(
      [record(dict(checkpoint=R2, finetune={}), list(
          forecaster_lib.KNOWN_PRETRAINING[R2]))], submission)
  assert found == dict(
      model='m', model_type='fine-tuned', model_dtype='float32',
      model_link=f'https://huggingface.co/{R2}',
      code_link='https://example.org/c', org='ttm-jax',
      testdata_leakage='Yes', replication_code_available='Yes')
  zero = benchmark.gift_config(
      [record(dict(checkpoint='/models/mine'), ['etth1'])],
      dict(submission, model_type='zero-shot', model_link='https://x'))
  assert (zero['model_type'], zero['model_link'], zero['testdata_leakage']
          ) == ('zero-shot', 'https://x', 'No')
  baseline = benchmark.gift_config(
      [record(dict(baseline='gift_seasonal_naive'), [])], submission)
  assert baseline['model_type'] == 'statistical'
