"""The suites' own harnesses scoring a ttm-jax forecaster: a
`fev.ForecastingModel` for fev (Chronos Benchmark II, fev-bench) and a
GluonTS `Predictor` for GIFT-Eval's `gluonts.model.evaluate_model`.

  model = adapters.FevModel(forecaster)            # any Forecaster
  predictions = model.fit_predict(task)            # a fev.Task
  summary = task.evaluation_summary(
      predictions, model.model_name,
      trained_on_this_dataset=task.dataset_config in
      model.trained_on_datasets)

  predictor = adapters.GluonTSPredictor(forecaster, prediction_length,
                                        freq, season_length)
  gluonts.model.evaluate_model(predictor, test_data=dataset.test_data,
                               metrics=..., axis=None,
                               seasonality=season_length)

Both wrap an `inference.forecaster.Forecaster` (a checkpoint, a baseline,
a recipe) and forecast exactly what the runner (`benchmark.run_task`)
forecasts: each window's univariate pasts (float64, NaN missing), the
task's horizon, frequency, quantile levels and season; a forecaster with
a per-task `prepare` step (the fine-tune) is prepared first on each
series' past at its first window only, as `benchmark.task_histories`
gives them. So the suites' code scores the same numbers as the runner
(tests/suites/test_adapters.py: MASE and WQL, GIFT-Eval's 11 columns, to
1e-6).

fev and gluonts are not dependencies of ttm_jax: the classes are built on
first use (`adapters.FevModel` needs fev and datasets, `adapters.
GluonTSPredictor` gluonts), so importing this module needs neither.
docs/benchmarks.md shows both in use.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.suites import benchmark
from ttm_jax.suites import tasks as tasks_lib

# GIFT-Eval's quantile levels (its notebooks' MeanWeightedSumQuantileLoss).
GIFT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_FEV_SUITES = ('chronos_ii', 'fev_bench', 'covariates')


def trained_on_datasets(pretraining: Optional[Sequence[str]]) -> List[str]:
  """fev's `trained_on_datasets` of a forecaster pretrained on
  `pretraining` (its `pretraining_data`): the dataset configs of the fev
  suites' tasks that the runner flags as overlapping (`benchmark.
  overlaps`), then the names as declared; empty when unknown (None), which
  fev cannot tell from none."""
  if not pretraining:
    return []
  found = {task.dataset_config for suite in _FEV_SUITES
           for task in tasks_lib.load_suite(suite)
           if benchmark.overlaps(task, pretraining)}
  return sorted(found | set(pretraining))


def first_pasts(keys: Sequence[Any],
                pasts: Sequence[np.ndarray]) -> List[np.ndarray]:
  """Each series' past at its first window: of the `pasts` of each key
  (`keys` name their series), the shortest, the first of equals; in the
  order the keys first come. What a forecaster's `prepare` may train on,
  as `benchmark.task_histories`: nothing at or after any cutoff."""
  found: Dict[Any, np.ndarray] = {}
  for key, past in zip(keys, pasts):
    if key not in found or len(past) < len(found[key]):
      found[key] = past
  return list(found.values())


def _reset(forecaster: forecaster_lib.Forecaster) -> None:
  if forecaster.report is not None:
    forecaster.report()  # A recipe's choices: this task's only.


def _list_column(table, column: str) -> List[np.ndarray]:
  """A pyarrow list column as float64 arrays (null as NaN), read from the
  table as fev's metrics read it (its numpy format gives float32)."""
  import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
  values = table.column(column).combine_chunks()
  lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
  flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
  return np.split(np.asarray(flat, np.float64), np.cumsum(lengths)[:-1])


@functools.cache
def _fev_model_class():
  import datasets  # pylint: disable=g-import-not-at-top
  import fev  # pylint: disable=g-import-not-at-top

  class FevModel(fev.ForecastingModel):
    """A ttm-jax forecaster as fev's model (fev >= 0.10): `fit_predict(task)`
    returns each window's predictions in fev's format.

    Each window's target columns become univariate series
    (`fev.convert_input_data(..., as_univariate=True)`, as fev's own
    wrappers of univariate models); the point forecast is fev's
    'predictions', the quantiles its quantile columns. A forecaster with
    `prepare` is prepared on each series' past at its first window
    (`training_time`), then forecasts every window (`inference_time`).

    Attributes:
      forecaster: the wrapped `Forecaster`.
      model_name: its name (the summary's model_name).
      trained_on_datasets: the dataset configs it was pretrained on
        (`trained_on_datasets`), as fev's wrappers declare them.
      report: the recipe's report of the last task (None: no recipe).
    """

    model_name = 'ttm-jax'

    def __init__(self, forecaster: forecaster_lib.Forecaster,
                 name: Optional[str] = None,
                 num_proc: Optional[int] = None):
      """Args:
        forecaster: what forecasts.
        name: its model_name (default the forecaster's name).
        num_proc: passed to `Task.iter_windows` (datasets' processes;
          0 runs in this process, which a process running JAX should
          choose: datasets forks). Default: fev's.
      """
      super().__init__()
      self.forecaster = forecaster
      self.model_name = name or forecaster.name
      self.trained_on_datasets = trained_on_datasets(
          forecaster.pretraining_data)
      self.num_proc = num_proc
      self.report: Optional[Dict[str, Any]] = None

    def _fit_predict(self, task: fev.Task) -> List[datasets.DatasetDict]:
      options = {} if self.num_proc is None else dict(num_proc=self.num_proc)
      windows = []
      for window in task.iter_windows(**options):
        past, _ = fev.convert_input_data(window, adapter='datasets',
                                         as_univariate=True)
        if getattr(past, '_indices', None) is not None:
          past = past.flatten_indices()
        table = past.data.table
        windows.append((table.column(task.id_column).to_pylist(),
                        _list_column(table, 'target')))
      levels = list(task.quantile_levels)
      forecaster = self.forecaster
      if forecaster.prepare is not None:
        with self._record_training_time():
          forecaster = forecaster.prepare(
              first_pasts([k for keys, _ in windows for k in keys],
                          [p for _, pasts in windows for p in pasts]),
              task.horizon, task.freq, task.task_name)
      _reset(forecaster)
      out = []
      for _, pasts in windows:
        with self._record_inference_time():
          point, quantiles = forecaster(pasts, task.horizon, task.freq,
                                        levels, task.seasonality)
        columns = {'predictions': np.asarray(point, np.float64)}
        for k, level in enumerate(levels):
          columns[str(level)] = np.asarray(quantiles[..., k], np.float64)
        out.append(fev.combine_univariate_predictions_to_multivariate(
            datasets.Dataset.from_dict(columns), task.target_columns))
      if forecaster.report is not None:
        self.report = forecaster.report()
      return out

  return FevModel


@functools.cache
def _gluonts_predictor_class():
  from gluonts.dataset import util as dataset_util  # pylint: disable=g-import-not-at-top
  from gluonts.model import forecast as forecast_lib  # pylint: disable=g-import-not-at-top
  from gluonts.model import predictor as predictor_lib  # pylint: disable=g-import-not-at-top

  class GluonTSPredictor(predictor_lib.Predictor):
    """A ttm-jax forecaster as a GluonTS Predictor, as GIFT-Eval's
    `evaluate_model` runs one: `predict(test_data.input)` yields one
    `QuantileForecast` per entry, its keys the quantile levels and 'mean'
    (the point forecast: GIFT-Eval's MSE[mean], RMSE[mean], NRMSE[mean]).

    The entries (univariate: GIFT-Eval's `to_univariate` splits
    multivariate ones) are forecast in one call. A forecaster with
    `prepare` is prepared first on each series' past at its first window
    (the shortest input of each `item_id`), nothing after.
    """

    def __init__(self, forecaster: forecaster_lib.Forecaster,
                 prediction_length: int, freq: str,
                 season_length: Optional[int] = None,
                 quantile_levels: Sequence[float] = GIFT_LEVELS,
                 name: str = ''):
      """Args:
        forecaster: what forecasts.
        prediction_length: the horizon (GIFT-Eval's `Dataset.
          prediction_length`).
        freq: the data's frequency as GIFT-Eval gives it (`Dataset.freq`,
          e.g. '15T'): the forecaster's frequency (resolution token).
        season_length: the season (GIFT-Eval: `get_seasonality(freq)`);
          default the frequency's (`baselines.season_length`).
        quantile_levels: the levels forecast (GIFT-Eval's by default).
        name: the task's name, for `prepare`.
      """
      super().__init__(prediction_length=prediction_length)
      self.forecaster = forecaster
      self.freq = freq
      self.season_length = season_length
      self.quantile_levels = tuple(float(q) for q in quantile_levels)
      self.name = name

    def predict(self, dataset, **kwargs):
      del kwargs  # num_samples and the like: quantiles are forecast.
      entries = list(dataset)
      for entry in entries:
        if np.ndim(entry['target']) != 1:
          raise ValueError(
              'GluonTSPredictor forecasts univariate entries: split '
              "multivariate ones (GIFT-Eval's Dataset(to_univariate=True)).")
      pasts = [np.asarray(e['target'], np.float64) for e in entries]
      horizon = self.prediction_length
      forecaster = self.forecaster
      if forecaster.prepare is not None:
        keys = [e.get('item_id') for e in entries]
        if None in keys:
          raise ValueError(
              'GluonTSPredictor: a forecaster with a per-task prepare step '
              "needs each entry's item_id, to train on each series' past "
              'at its first window only.')
        forecaster = forecaster.prepare(first_pasts(keys, pasts), horizon,
                                        self.freq, self.name)
      _reset(forecaster)
      point, quantiles = forecaster(pasts, horizon, self.freq,
                                    self.quantile_levels, self.season_length)
      keys = [str(q) for q in self.quantile_levels] + ['mean']
      for k, entry in enumerate(entries):
        yield forecast_lib.QuantileForecast(
            forecast_arrays=np.concatenate([quantiles[k].T, point[k][None]]),
            start_date=dataset_util.forecast_start(entry),
            forecast_keys=keys, item_id=entry.get('item_id'))

  return GluonTSPredictor


def __getattr__(name: str):
  """FevModel and GluonTSPredictor, built on first use (module
  docstring)."""
  if name == 'FevModel':
    return _fev_model_class()
  if name == 'GluonTSPredictor':
    return _gluonts_predictor_class()
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
