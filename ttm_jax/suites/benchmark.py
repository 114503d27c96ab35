"""The field's benchmarks in one call: every task of a suite (fev's Chronos
Benchmark II and fev-bench, GIFT-Eval) forecast by a checkpoint or a
baseline, scored as the suite scores it, beside seasonal naive.

  report = benchmark.run('chronos_ii', data_dir, workdir,
                         forecaster.model_forecaster(checkpoint))

Forecasters (`inference.forecaster.Forecaster`): a checkpoint zero-shot
(`forecaster.model_forecaster`), fine-tuned per task on the task's pasts
first (`finetune_forecaster`, IBM's GIFT recipe), a baseline, or a
backtest choice among them (`inference.select`). A model
is univariate: each target column of a multivariate task is forecast on
its own (the metrics averaged over columns, as fev's), and the task's
covariates are listed as ignored in its record and summary row.

Per task: its windows (`tasks.windows`), one batched forecast of every
window's past (histories of any length: padded and masked to the model's
context), the suite's metrics (`task_metrics`), and the suite's seasonal
naive on the same windows (`suite_baseline`: GIFT-Eval's own, with
statsforecast's intervals, for gift_eval). Results land in
`workdir/tasks/<task>.json` (a rerun skips finished tasks), then:

  summary.csv        fev's summary format, one row per task (task_name,
                     MASE, WQL, SQL, test_error, ..., model_name,
                     trained_on_this_dataset, quantile_source,
                     covariates_ignored, training_time_s, seconds)
  relative.csv/.md   each metric over seasonal naive's, clipped to
                     [0.01, 100], and their geometric mean (the
                     leaderboards' aggregate); GIFT-Eval: its pooled
                     MASE[0.5] and CRPS over its own seasonal naive's
                     (`tables.relative`)
  all_results.csv, config.json   GIFT-Eval's submission files
  relative.png       the relative MASE and WQL per task
  missing.json       datasets not found, with the id to fetch them by

split='validation' scores every task on its validation split instead
(`tasks.validation`: each series cut at its first test cutoff, the same
windows moved back before it; seasonal naive on those windows too), in
`workdir/validation/` (the same files): every record and row says its
split (`split`), and a record of the other split is never read back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ttm_jax import errors
from ttm_jax.suites import task_data
from ttm_jax.suites import task_metrics
from ttm_jax.suites import tasks as tasks_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.suites import tables as benchmark_tables

def _normalise(name: str) -> str:
  name = name.lower().replace('monash_', '').replace('-', '_')
  for suffix in ('_dataset', '_without_missing_values', '_with_missing'):
    name = name.replace(suffix, '')
  return name


def overlaps(task: tasks_lib.Task, pretraining: Optional[Sequence[str]]):
  """Whether the task's dataset is among the pretraining data (None when
  the checkpoint does not say what it was pretrained on)."""
  if pretraining is None:
    return None
  # GIFT's configs are '<dataset>/<freq>'; declared names may carry their
  # collection ('monash/m4_yearly').
  return _normalise(task.dataset_config.split('/')[0]) in {
      _normalise(p.split('/')[-1]) for p in pretraining}


# ------------------------------------------------------------ forecasters
def task_histories(windows: Sequence[tasks_lib.Window]) -> List[np.ndarray]:
  """Each evaluated series' past at its first window: nothing at or after
  any of its cutoffs (later windows' pasts hold earlier windows'
  futures)."""
  seen, out = set(), []
  for window in windows:
    for item, past in zip(window.items, window.pasts):
      if item not in seen:
        seen.add(item)
        out.append(past)
  return out


def finetune_forecaster(checkpoint, revision: str = '',
                        quantiles: str = 'auto',
                        pretrained_on: Optional[Sequence[str]] = None,
                        fraction: float = 0.2, max_windows: int = 4000,
                        learning_rate: float = 1e-4, quick: bool = False,
                        inputs=inputs_lib.REFERENCE
                        ) -> forecaster_lib.Forecaster:
  """A checkpoint fine-tuned per task on the task's pasts before its test
  windows (`task_histories`) with IBM's GIFT recipe, in memory
  (`train.finetune.histories`: `fraction` of the training windows, at
  most `max_windows`; zero-shot when too few; the LR finder's rate when
  `learning_rate` is 0), then forecast through the one path with `inputs`
  (default the reference's: its training windows are padded with masked
  zeros, as the reference pads) and quantiles as `model_forecaster`
  ('auto': in-sample errors for a point model, as IBM's)."""
  model = forecaster_lib.load(checkpoint, revision)
  base = forecaster_lib.model_forecaster(model, quantiles=quantiles,
                                         pretrained_on=pretrained_on,
                                         inputs=inputs)
  config = dict(base.config, finetune=dict(
      fraction=fraction, max_windows=max_windows,
      learning_rate=learning_rate or 'lr_finder'))
  name = f'{base.name}-ft'

  def prepare(histories, horizon: int, freq: str, task_name: str
              ) -> forecaster_lib.Forecaster:
    from ttm_jax.train import finetune  # pylint: disable=g-import-not-at-top
    del task_name
    tuned, notes = finetune.histories(
        model.model, model.source, histories, horizon, freq,
        fraction=fraction, max_windows=max_windows,
        learning_rate=learning_rate, quick=quick)
    found = base if tuned is None else forecaster_lib.model_forecaster(
        model_lib.Model(model.source, model=tuned), quantiles=quantiles,
        inputs=inputs)
    return dataclasses.replace(
        found, name=name, notes=notes, prepare=None,
        pretraining_data=base.pretraining_data, config=config)

  return dataclasses.replace(base, name=name, prepare=prepare, config=config)


# ------------------------------------------------------------------ tasks
def _score(task: tasks_lib.Task, forecaster: forecaster_lib.Forecaster,
           windows, freq,
           dims: Optional[np.ndarray] = None):
  """(fev metrics per window, GIFT inputs) of one forecaster; `dims` each
  series' target column (multivariate tasks)."""
  levels = task.quantile_levels
  per_window, gift = [], []
  for window in windows:
    median, quantiles = forecaster(window.pasts, task.horizon, freq, levels,
                                   task.seasonality)
    per_window.append(task_metrics.fev_window_dims(
        window.futures, median, quantiles, window.pasts, task.seasonality,
        levels, None if dims is None else dims[window.items],
        task.metric_options))
    gift.append((window.futures, median, quantiles, window.pasts))
  return per_window, gift


def _gift_scores(task, gift) -> Dict[str, float]:
  truth, mean, quantiles, pasts = (np.concatenate([g[0] for g in gift]),
                                   np.concatenate([g[1] for g in gift]),
                                   np.concatenate([g[2] for g in gift]),
                                   [p for g in gift for p in g[3]])
  return task_metrics.gift(truth, mean, quantiles, pasts, task.seasonality,
                           task.quantile_levels)


def _check_split(split: str) -> None:
  if split not in tasks_lib.SPLITS:
    raise errors.ConfigError(f'split={split!r}: expected one of '
                             f'{list(tasks_lib.SPLITS)}.')


def split_workdir(workdir: str, split: str) -> str:
  """Where a split's outputs go: `workdir` for test, `workdir/validation`
  for validation."""
  _check_split(split)
  return workdir if split == 'test' else os.path.join(workdir, split)


def holdout(task: tasks_lib.Task, series: task_data.Series, split: str):
  """(task, series) of `split`: as read for test; for validation, each
  series cut at its first test cutoff and the task's windows moved back
  before it (`tasks.validation`). GIFT's window count is fixed from the
  full series' lengths first, as for test."""
  task = task.with_windows([len(v) for v in series.values])
  _check_split(split)
  if split == 'test':
    return task, series
  task, values, stamps = tasks_lib.validation(task, series.values,
                                              series.timestamps, series.freq)
  return task, dataclasses.replace(series, values=values, timestamps=stamps)


def suite_baseline(task: tasks_lib.Task) -> forecaster_lib.Forecaster:
  """The seasonal naive a task's scores are relative to: GIFT-Eval's own
  (statsforecast's SeasonalNaive with its normal intervals, on
  last-value-filled float32 pasts) for gift_eval, else the point seasonal
  naive at every quantile (fev's leaderboards)."""
  if task.suite == 'gift_eval':
    return forecaster_lib.baseline('gift_seasonal_naive')
  return forecaster_lib.baseline('seasonal_naive')


def run_task(task: tasks_lib.Task, series: task_data.Series,
             forecaster: forecaster_lib.Forecaster, split: str = 'test') -> Dict[str, Any]:
  """One task's record on `split` ('test': the task's windows;
  'validation': those before them, `holdout`): its metrics, seasonal
  naive's on the same windows, the overlap flag, the timings."""
  task, series = holdout(task, series, split)
  windows = tasks_lib.windows(task, series.values, series.timestamps,
                              series.freq)
  training = None
  if forecaster.prepare is not None:
    start = time.time()
    forecaster = forecaster.prepare(task_histories(windows), task.horizon,
                                    series.freq, task.name)
    training = round(time.time() - start, 2)
  if forecaster.report is not None:
    forecaster.report()  # Only this task's forecasts in its record.
  start = time.time()
  per_window, gift = _score(task, forecaster, windows, series.freq,
                            series.dims)
  seconds = time.time() - start
  naive = suite_baseline(task)
  naive_windows, naive_gift = _score(task, naive, windows, series.freq,
                                     series.dims)
  record = dict(task_name=task.name, suite=task.suite, split=split,
                dataset_id=task.dataset_id, source=series.source,
                horizon=task.horizon, seasonality=task.seasonality,
                num_windows=task.num_windows,
                num_series=len(series.values),
                num_forecasts=int(sum(len(w.items) for w in windows)),
                target_columns=task.target_columns,
                covariates_ignored=list(task.covariates),
                model_name=forecaster.name,
                quantile_source=forecaster.quantile_source,
                trained_on_this_dataset=overlaps(
                    task, forecaster.pretraining_data),
                training_time_s=training, model_notes=forecaster.notes,
                inference_time_s=round(seconds, 3),
                metrics=task_metrics.fev_task(per_window),
                baseline=naive.name,
                seasonal_naive=task_metrics.fev_task(naive_windows))
  if forecaster.report is not None:
    record['recipe'] = forecaster.report()
  if task.suite == 'gift_eval':
    record['gift'] = _gift_scores(task, gift)
    record['gift_seasonal_naive'] = _gift_scores(task, naive_gift)
  return record


def run(suite: str, data_dir: str, workdir: str,
        forecaster: forecaster_lib.Forecaster,
        names: Sequence[str] = (), progress: Callable[[str], None] = print,
        split: str = 'test') -> List[Dict[str, Any]]:
  """Every task of `suite` (or those named) on `split`: records in
  <split_workdir>/tasks/<task>.json (finished ones are read back, not
  rerun), then the summary files there."""
  chosen = tasks_lib.select(tasks_lib.load_suite(suite), names)
  workdir = split_workdir(workdir, split)
  folder = os.path.join(workdir, 'tasks')
  os.makedirs(folder, exist_ok=True)
  records, missing = [], []
  for task in chosen:
    path = os.path.join(folder, task.name.replace('/', '__') + '.json')
    if os.path.exists(path):
      with open(path) as f:
        record = json.load(f)
      if record.get('split', 'test') != split:  # Older records: test.
        raise errors.ConfigError(
            f'{path} holds a {record.get("split", "test")} record; this '
            f'run scores {split}: use another --workdir.')
      records.append(record)
      continue
    start = time.time()
    series = task_data.read(task, data_dir)
    if isinstance(series, task_data.Missing):
      missing.append(dict(task=task.name, dataset_id=series.dataset_id,
                          looked_in=series.looked_in))
      progress(f'{task.name}: no data (fetch {series.dataset_id}); skipped.')
      continue
    try:
      record = run_task(task, series, forecaster, split)
    except errors.TTMError as e:
      missing.append(dict(task=task.name, dataset_id=task.dataset_id,
                          unsupported=str(e)))
      progress(f'{task.name}: skipped ({e})')
      continue
    record['seconds'] = round(time.time() - start, 2)
    _write_json(path, record)
    records.append(record)
    m, n = record['metrics'], record['seasonal_naive']
    progress(f'{task.name} ({split}): MASE {m["MASE"]:.4f} (seasonal naive '
             f'{n["MASE"]:.4f}), WQL {m.get("WQL", float("nan")):.4f}, '
             f'{record["num_forecasts"]} forecasts, {record["seconds"]} s')
    if record['covariates_ignored']:
      progress(f'{task.name}: covariates ignored ({forecaster.name} has no '
               'exogenous inputs): '
               + ', '.join(record['covariates_ignored']))
  _write_json(os.path.join(workdir, 'missing.json'), missing)
  kind = ('fine-tuned' if forecaster.prepare is not None else
          'statistical' if forecaster.pretraining_data == () else
          'pretrained')
  benchmark_tables.write(workdir, suite, records, forecaster.config, kind)
  return records


def _strict(value):
  """`value` with every non-finite float as None (strict JSON)."""
  if isinstance(value, dict):
    return {k: _strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict(v) for v in value]
  if isinstance(value, float) and not np.isfinite(value):
    return None
  return value


def _write_json(path: str, value) -> None:
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    json.dump(_strict(value), f, indent=2, allow_nan=False)
  os.replace(tmp, path)
