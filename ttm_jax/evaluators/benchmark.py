"""The field's benchmarks in one call: every task of a suite (fev's Chronos
Benchmark II and fev-bench, GIFT-Eval) forecast by a checkpoint or a
baseline, scored as the suite scores it, beside seasonal naive.

  report = benchmark.run('chronos_ii', data_dir, workdir,
                         benchmark.model_forecaster(checkpoint))

Forecasters: a checkpoint zero-shot (`model_forecaster`), fine-tuned per
task on the task's pasts first (`finetune_forecaster`, IBM's GIFT recipe),
a baseline, or a backtest choice among them (`backtest_select`). A model
is univariate: each target column of a multivariate task is forecast on
its own (the metrics averaged over columns, as fev's), and the task's
covariates are listed as ignored in its record and summary row.

Per task: its windows (`tasks.windows`), one batched forecast of every
window's past (histories of any length: padded and masked to the model's
context), the suite's metrics (`task_metrics`), and seasonal naive on the
same windows. Results land in `workdir/tasks/<task>.json` (a rerun skips
finished tasks), then:

  summary.csv        fev's summary format, one row per task (task_name,
                     MASE, WQL, SQL, test_error, ..., model_name,
                     trained_on_this_dataset, quantile_source,
                     covariates_ignored, training_time_s, seconds)
  relative.csv/.md   each metric over seasonal naive's, clipped to
                     [0.01, 100], and their geometric mean (the
                     leaderboards' aggregate)
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
from ttm_jax.evaluators import adapt
from ttm_jax.evaluators import task_data
from ttm_jax.evaluators import task_metrics
from ttm_jax.evaluators import tasks as tasks_lib
from ttm_jax.workbench import benchmark_tables

QUANTILE_SOURCES = ('head', 'point', 'insample')
# What IBM's model cards say each release was pretrained on (TTM_SPEC.md
# 4.x): the datasets the benchmark rows flag as overlapping.
KNOWN_PRETRAINING = {
    'ibm-granite/granite-timeseries-ttm-r2': (
        'australian_electricity_demand', 'australian_weather', 'bitcoin',
        'kdd_cup_2018', 'london_smart_meters', 'saugeenday', 'solar_power',
        'sunspot', 'solar', 'us_births', 'wind_farms', 'wind_power',
        'pems03', 'pems04', 'pems07', 'pems08', 'pems_bay', 'los_loop'),
}


@dataclasses.dataclass
class Forecaster:
  """What the runner forecasts with.

  Attributes:
    name: the model's name in the rows.
    forecast: `(pasts, horizon, freq, levels) -> (median [n, h],
      quantiles [n, h, q])`.
    quantile_source: where its quantiles come from ('head', 'point': the
      median at every level, 'insample': normal around the point with the
      scale of its own errors on the past).
    pretraining_data: the datasets it was pretrained on (None: unknown).
    config: what summary.csv's model_config says.
    report: `() -> dict` of what the forecaster did since its last call
      (a recipe's choices), recorded with each task; None: nothing.
    prepare: `(task, windows, freq) -> Forecaster` run before a task's
      forecasts (a fine-tune on the windows' pasts); None: none.
    notes: how it was made (a fine-tune's windows, epochs, ...).
  """
  name: str
  forecast: Callable
  quantile_source: str
  pretraining_data: Optional[Sequence[str]] = None
  config: Dict[str, Any] = dataclasses.field(default_factory=dict)
  report: Optional[Callable[[], Dict[str, Any]]] = None
  prepare: Optional[Callable[..., 'Forecaster']] = None
  notes: Dict[str, Any] = dataclasses.field(default_factory=dict)


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
def seasonal_naive(pasts: Sequence[np.ndarray], horizon: int,
                   season: int) -> np.ndarray:
  """[n, h]: each past's value one season earlier (its last observed value
  when the past is shorter than the season), from its whole past: the
  float64 twin of `baselines.seasonal_naive` for histories of any
  length."""
  out = np.zeros((len(pasts), horizon))
  for i, past in enumerate(pasts):
    if season > 1 and len(past) >= season:
      out[i] = np.nan_to_num(past[len(past) - season
                                  + np.arange(horizon) % season])
    else:
      observed = past[~np.isnan(past)]
      out[i] = observed[-1] if observed.size else 0.0
  return out


def baseline_forecaster() -> Forecaster:
  """Seasonal naive (every quantile the point, as fev scores point
  baselines); its season is the task's, given with each call."""

  def forecast(pasts, horizon, freq, levels, season=1):
    del freq
    point = seasonal_naive(pasts, horizon, season)
    return point, np.repeat(point[..., None], len(levels), axis=-1)
  return Forecaster('seasonal_naive', forecast, 'point', pretraining_data=())


def _contexts(pasts: Sequence[np.ndarray], length: int, pad: str = 'zero'):
  """[n, length, 1] contexts (the last `length` values, left-padded with
  zeros, or with the first observed value for pad='edge') and their
  observed masks (pads and missing values unobserved)."""
  values = np.full((len(pasts), length), np.nan)
  for i, past in enumerate(pasts):
    tail = past[-length:]
    values[i, length - len(tail):] = tail
  observed = ~np.isnan(values)
  filled = np.where(observed, values, 0.0)
  if pad == 'edge':
    first = np.argmax(observed, axis=1)
    edge = filled[np.arange(len(pasts)), first]
    before = np.arange(length)[None, :] < first[:, None]
    filled = np.where(before, edge[:, None], filled)
  return filled.astype(np.float32)[..., None], observed[..., None]


def _rolled(engine, pasts, horizon: int, freq: str, pad: str = 'zero'):
  """[n, h] point forecasts (rolled past the model's horizon) and, within
  it, the head's [n, h, q] quantiles (None without a head)."""
  histories, points, head = [np.asarray(p, np.float64) for p in pasts], [], None
  done = 0
  while done < horizon:
    context, mask = _contexts(histories, engine.context_length, pad)
    out = engine.forecast_windows(context, mask, freq,
                                  with_quantiles=bool(
                                      engine.quantile_levels) and not done)
    if isinstance(out, tuple):
      out, head = out[0], out[1][:, :horizon, 0]
    step = out[:, :horizon - done, 0]
    points.append(step)
    histories = [np.concatenate([h, s]) for h, s in zip(histories, step)]
    done += step.shape[1]
  return np.concatenate(points, axis=1), head


def normal_quantiles(point, scale, levels) -> np.ndarray:
  """[n, h, q]: the normal quantiles at `levels` around `point` [n, h]
  with standard deviation `scale` [n, h]."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  z = stats.norm.ppf(np.asarray(levels))
  return point[..., None] + scale[..., None] * z


def _insample_scale(point_fn, pasts, horizon, season) -> np.ndarray:
  """[n, h]: per series and step, the mean |error| of the model's own
  forecasts (`point_fn(pasts, horizon) -> (point, head)`) at up to three
  origins inside the past (h apart); a series
  with no room for one takes its past's seasonal error (or 1)."""
  total = np.zeros((len(pasts), horizon))
  count = np.zeros(len(pasts))
  for k in (1, 2, 3):
    rows = [i for i, p in enumerate(pasts) if len(p) > k * horizon + 1]
    if not rows:
      break
    origins = [pasts[i][:len(pasts[i]) - k * horizon] for i in rows]
    truth = np.stack([pasts[i][len(pasts[i]) - k * horizon:][:horizon]
                      for i in rows])
    point, _ = point_fn(origins, horizon)
    total[rows] += np.nan_to_num(np.abs(truth - point))
    count[rows] += 1
  fallback = task_metrics.seasonal_errors(pasts, season, gluonts_rule=True)
  fallback = np.where(np.isfinite(fallback) & (fallback > 0), fallback, 1.0)
  with np.errstate(invalid='ignore', divide='ignore'):
    scale = total / count[:, None]
  return np.where((count[:, None] > 0) & (scale > 0), scale,
                  fallback[:, None])


def model_forecaster(checkpoint: str, revision: str = '',
                     quantiles: str = 'auto',
                     pretrained_on: Optional[Sequence[str]] = None,
                     adaptation: Optional[adapt.Adaptation] = None
                     ) -> Forecaster:
  """A checkpoint zero-shot.

  Args:
    checkpoint, revision: the model.
    quantiles: 'head' (its quantile head), 'point' (the median at every
      level, as fev's TTM wrapper scores r2), 'insample' (normal around the
      point, scaled by its errors on each past), or 'auto' (the head when
      it has one, else insample).
    pretrained_on: what it was pretrained on: dataset names, or a key of
      KNOWN_PRETRAINING; default: what the checkpoint declares
      (`pretraining_data`).
    adaptation: the pasts deseasonalised, upsampled and edge-padded
      before the model sees them (`adapt.Adaptation`); None: as given,
      zero-padded (the reference's).
  """
  if adaptation is not None:
    adaptation.check()
  from ttm_jax.predict import engine as engine_lib  # pylint: disable=g-import-not-at-top
  engine = engine_lib.Forecaster(checkpoint, revision)
  source = ('head' if engine.quantile_levels else 'insample') if (
      quantiles == 'auto') else quantiles
  if source not in QUANTILE_SOURCES:
    raise errors.ConfigError(f'quantiles={quantiles!r}: expected one of '
                             f"{QUANTILE_SOURCES + ('auto',)}.")
  if source == 'head' and not engine.quantile_levels:
    raise errors.ConfigError(f'{checkpoint} has no quantile head: use '
                             "quantiles='insample' or 'point'.")

  def predict(pasts, horizon, freq, season=1):
    """(point [n, h], head [n, h, q] or None) of the (adapted) pasts."""
    if adaptation is None:
      return _rolled(engine, pasts, horizon, freq)
    lengths = [len(p) for p in pasts]
    indices = [None] * len(pasts)
    if adaptation.deseasonalize:
      pasts, indices = adapt.deseasonalize(pasts, season)
    k = adaptation.factor(season)
    # Only the last context's worth is upsampled: the model reads no more
    # ((keep - 1) * k + 1 >= context), and a long past would cost k times.
    keep = engine.context_length // k + 2
    point, head = _rolled(engine, [adapt.upsample(p[-keep:], k)
                                   for p in pasts],
                          k * horizon, freq, adaptation.pad)
    point = adapt.reseasonalize(adapt.downsample(point, k, horizon),
                                indices, lengths, season)
    if head is not None:
      head = adapt.reseasonalize(adapt.downsample(head, k, horizon),
                                 indices, lengths, season)
    return point, head

  def forecast(pasts, horizon, freq, levels, season=1):
    point, head = predict(pasts, horizon, freq, season)
    if source == 'point' or not len(levels):
      return point, np.repeat(point[..., None], len(levels), axis=-1)
    if source == 'head' and head is not None and head.shape[1] == horizon:
      grid = np.asarray(engine.quantile_levels)
      return point, np.stack([np.stack([np.interp(
          levels, grid, head[i, t]) for t in range(horizon)])
                              for i in range(len(head))])
    scale = _insample_scale(
        lambda origins, h: predict(origins, h, freq, season), pasts,
        horizon, season)
    return point, normal_quantiles(point, scale, levels)

  declared = pretraining_data(checkpoint)
  if pretrained_on:
    declared = [d for name in pretrained_on
                for d in KNOWN_PRETRAINING.get(name, (name,))]
  config = dict(checkpoint=checkpoint, revision=revision,
                context_length=engine.context_length,
                prediction_length=engine.horizon)
  name = os.path.basename(os.path.normpath(checkpoint))
  if adaptation is not None:
    config['adaptation'] = adaptation.as_dict()
    name += '-adapted'
  return Forecaster(name, forecast, source, declared, config)


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


def finetune_forecaster(checkpoint: str, workdir: str, revision: str = '',
                        quantiles: str = 'auto',
                        pretrained_on: Optional[Sequence[str]] = None,
                        fraction: float = 0.2, max_windows: int = 4000,
                        learning_rate: float = 1e-4,
                        quick: bool = False) -> Forecaster:
  """A checkpoint fine-tuned per task on the task's pasts before its test
  windows (`task_histories`) with IBM's GIFT recipe
  (`predict.finetune.finetune_histories`: `fraction` of the training
  windows, at most `max_windows`; zero-shot when too few; the LR
  finder's rate when `learning_rate` is 0), in
  workdir/finetune/<task>/, then scored as `model_forecaster` (quantiles
  'auto': in-sample errors for a point model, as IBM's)."""
  base = model_forecaster(checkpoint, revision, quantiles, pretrained_on)

  def prepare(task: tasks_lib.Task, windows, freq: str) -> Forecaster:
    from ttm_jax.predict import finetune  # pylint: disable=g-import-not-at-top
    folder = os.path.join(workdir, 'finetune', task.name.replace('/', '__'))
    model, notes = finetune.finetune_histories(
        checkpoint, task_histories(windows), task.horizon, freq, folder,
        revision=revision, fraction=fraction, max_windows=max_windows,
        learning_rate=learning_rate, quick=quick)
    tuned = base if model is None else model_forecaster(model,
                                                        quantiles=quantiles)
    return dataclasses.replace(
        tuned, name=f'{base.name}-ft', notes=notes, prepare=None,
        pretraining_data=base.pretraining_data, config=config)

  config = dict(base.config, finetune=dict(
      fraction=fraction, max_windows=max_windows,
      learning_rate=learning_rate or 'lr_finder'))
  return dataclasses.replace(base, name=f'{base.name}-ft', prepare=prepare,
                             config=config)


def pretraining_data(checkpoint: str) -> Optional[List[str]]:
  """What a checkpoint declares it was pretrained on: its config.json's
  `pretraining_data` (models pretrained here), IBM's model card for IBM's
  hub ids, else None (unknown)."""
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  folder = checkpoint if os.path.isdir(checkpoint) else os.path.join(
      checkpoint_lib.PRETRAINED_DIR, checkpoint)
  path = os.path.join(folder, 'config.json')
  names = [checkpoint]
  if os.path.exists(path):
    with open(path) as f:
      values = json.load(f)
    if values.get('pretraining_data') is not None:
      return list(values['pretraining_data'])
    names.append(values.get('_name_or_path', ''))
  for hub_id, found in KNOWN_PRETRAINING.items():
    if any(name.startswith(hub_id) for name in names):
      return list(found)
  return None


# ------------------------------------------------------------------ tasks
def _score(task: tasks_lib.Task, forecaster: Forecaster, windows, freq,
           dims: Optional[np.ndarray] = None):
  """(fev metrics per window, GIFT inputs) of one forecaster; `dims` each
  series' target column (multivariate tasks)."""
  levels = task.quantile_levels
  per_window, gift = [], []
  for window in windows:
    median, quantiles = forecaster.forecast(
        window.pasts, task.horizon, freq, levels, season=task.seasonality)
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


def run_task(task: tasks_lib.Task, series: task_data.Series,
             forecaster: Forecaster, split: str = 'test') -> Dict[str, Any]:
  """One task's record on `split` ('test': the task's windows;
  'validation': those before them, `holdout`): its metrics, seasonal
  naive's on the same windows, the overlap flag, the timings."""
  task, series = holdout(task, series, split)
  windows = tasks_lib.windows(task, series.values, series.timestamps,
                              series.freq)
  training = None
  if forecaster.prepare is not None:
    start = time.time()
    forecaster = forecaster.prepare(task, windows, series.freq)
    training = round(time.time() - start, 2)
  if forecaster.report is not None:
    forecaster.report()  # Only this task's forecasts in its record.
  start = time.time()
  per_window, gift = _score(task, forecaster, windows, series.freq,
                            series.dims)
  seconds = time.time() - start
  naive_windows, naive_gift = _score(task, baseline_forecaster(), windows,
                                     series.freq, series.dims)
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
                seasonal_naive=task_metrics.fev_task(naive_windows))
  if forecaster.report is not None:
    record['recipe'] = forecaster.report()
  if task.suite == 'gift_eval':
    record['gift'] = _gift_scores(task, gift)
    record['gift_seasonal_naive'] = _gift_scores(task, naive_gift)
  return record


def run(suite: str, data_dir: str, workdir: str, forecaster: Forecaster,
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
