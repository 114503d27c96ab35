"""The covariate suite (ttm_jax/suites/files/covariates.yaml): its datasets
built from the public files in ../shared/data/extra by
scripts/make_covariate_suite.py (deterministic), loaded by fev's own
`Benchmark.from_yaml` and `Task` through FEV_DATASETS_PREFIX, with the
windows, targets and covariate columns the suite's tasks declare, as the
runner's task reader sees them."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests import conftest
from ttm_jax.suites import task_data
from ttm_jax.suites import tasks as tasks_lib

SCRIPT = os.path.join(conftest.ROOT, 'scripts', 'make_covariate_suite.py')
YAML = os.path.join(tasks_lib.SUITES_DIR, 'covariates.yaml')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """The suite's datasets, built twice (byte-identical)."""
  source = conftest.require_data('extra')
  folders = []
  for name in ('first', 'second'):
    out = tmp_path_factory.mktemp(name)
    subprocess.run([sys.executable, SCRIPT, '--source', source, '--out',
                    str(out)], check=True, capture_output=True, timeout=300)
    folders.append(out)
  return folders


def _fev_benchmark(prefix, monkeypatch):
  """fev's Benchmark of the YAML, its data under `prefix`."""
  return conftest.require_fev(monkeypatch, prefix).Benchmark.from_yaml(YAML)


def test_the_build_is_deterministic(built):
  first, second = built
  names = sorted(os.listdir(first))
  assert names == ['beijing_pm25_1H', 'metro_traffic_1H',
                   'tetouan_power_10T', 'vic_elec_30T']
  for name in names:
    assert ((first / name / 'train.parquet').read_bytes()
            == (second / name / 'train.parquet').read_bytes()), name


def test_fev_loads_every_task_with_its_windows_and_covariates(
    built, monkeypatch):
  """Each task of the YAML through fev: its windows are ours (count,
  cutoff, the truth of the last), the past data holds every covariate,
  the future data the known and static ones only."""
  benchmark = _fev_benchmark(built[0], monkeypatch)
  ours = {t.name: t for t in tasks_lib.load_suite('covariates')}
  assert [t.task_name for t in benchmark.tasks] == list(ours)
  for fev_task in benchmark.tasks:
    task = ours[fev_task.task_name]
    # No fork in a process running JAX (0: in this process).
    fev_task.load_full_dataset(num_proc=0)
    series = task_data.read(task, str(built[0]))
    windows = tasks_lib.windows(task, series.values)
    fev_windows = list(fev_task.iter_windows())
    assert len(fev_windows) == len(windows) == task.num_windows
    past, future = fev_windows[-1].get_input_data()
    truth = fev_windows[-1].get_ground_truth()
    for k in range(len(series.ids)):
      # fev (0.10.0 with datasets 5) reads the doubles back as float32.
      np.testing.assert_array_equal(
          np.asarray(truth[k][task.target], np.float32),
          windows[-1].futures[k].ravel().astype(np.float32),
          err_msg=task.name)
      assert len(past[k]['timestamp']) == len(windows[-1].pasts[k])
    columns = set(task.known_dynamic + task.past_dynamic + task.static)
    assert columns and columns <= set(past.column_names), task.name
    assert set(future.column_names) - {'id', 'timestamp'} == set(
        task.known_dynamic + task.static), task.name
    assert fev_task.horizon == task.horizon
    assert fev_task.seasonality == task.seasonality


def test_the_tasks_have_real_covariates(built):
  """Every task has covariates with variation over its last test window's
  past (no constant or empty column), and the categorical ones hold
  text."""
  for task in tasks_lib.load_suite('covariates'):
    import pandas as pd  # pylint: disable=g-import-not-at-top
    frame = pd.read_parquet(built[0] / task.dataset_config / 'train.parquet')
    for column in task.known_dynamic + task.past_dynamic:
      values = np.asarray(frame[column][0])
      assert len(set(values.tolist())) > 1, (task.name, column)
    for column in task.static:
      assert frame[column].nunique() == len(frame), (task.name, column)


def test_the_runner_reads_each_tasks_covariates(built):
  """The runner's task reader gives every task's covariates as the parquet
  holds them: known then past columns per series, text columns coded by
  their sorted values, the static zone per series."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  for task in tasks_lib.load_suite('covariates'):
    series = task_data.read(task, str(built[0]))
    frame = pd.read_parquet(built[0] / task.dataset_config / 'train.parquet')
    columns = list(task.known_dynamic + task.past_dynamic)
    for k, found in enumerate(series.covariates):
      assert found.shape == (len(series.values[k]), len(columns))
      for c, column in enumerate(columns):
        values = np.asarray(frame[column][k])
        if column in series.categories:
          assert series.categories[column] == sorted(set(values.tolist()))
          values = np.searchsorted(series.categories[column], values)
        np.testing.assert_array_equal(found[:, c], values.astype(float),
                                      err_msg=(task.name, column))
    if task.static:
      assert [s['zone'] for s in series.statics] == list(frame['zone'])
    assert set(series.categories) == {
        'beijing_pm25_1H': {'wind_direction'},
        'metro_traffic_1H': {'weather_main'}}.get(task.dataset_config,
                                                  set()), task.name
