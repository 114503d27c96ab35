"""The field's benchmarks in one call: every task of a suite (fev's Chronos
Benchmark II and fev-bench, GIFT-Eval) forecast by a checkpoint or a
baseline, scored as the suite scores it, beside seasonal naive.

  report = benchmark.run('chronos_ii', data_dir, workdir,
                         forecaster.model_forecaster(checkpoint))

Forecasters (`inference.forecaster.Forecaster`): a checkpoint zero-shot
(`forecaster.model_forecaster`), fine-tuned per task on the task's pasts
first (`finetuned.finetune_forecaster`, IBM's GIFT recipe), a baseline, or a
backtest choice among them (`inference.select`). A model
is univariate: each target column of a multivariate task is forecast on
its own (the metrics averaged over columns, as fev's). A task's
covariates (fev's known_dynamic_columns, past_dynamic_columns,
static_columns) reach a forecaster that reads them (config covariates=
'use': a checkpoint zero-shot by in-context regression, fine-tuned with
an exogenous mixer, or the regression-only baseline): each window's
covariates cut as its past is, the known ones also over its horizon
(their actual values, as fev-bench's), and the record says which were
used and how (`covariates`); otherwise they are listed as ignored in its
record and summary row.

Per task: its windows (`tasks.windows`), one batched forecast of every
window's past (histories of any length: padded and masked to the model's
context), the suite's metrics (`task_metrics`), and the suite's seasonal
naive on the same windows (`suite_baseline`: GIFT-Eval's own, with
statsforecast's intervals, for gift_eval). Results land in
`workdir/tasks/<task>.json`, then:

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

A record is reused only when everything that made it is equal (its
`identity`: the task and split, the forecaster's name, options and
pretraining data, the run config's settings away from their defaults, the
checkpoint's files by sha256, the data files by size and sha256, and
METRICS_VERSION); otherwise the run is refused with
one line naming the difference, or, with `rerun`, the task is scored
again. One suite a workdir (`benchmark.json` says which).

`run_config(config, workdir)` runs a benchmark config (`suites.config`:
the forecaster it names, 'auto' checkpoints chosen per task, the
submission fields).

split='validation' scores every task on its validation split instead
(`tasks.validation`: each series cut at its first test cutoff, the same
windows moved back before it; seasonal naive on those windows too), in
`workdir/validation/` (the same files): every record and row says its
split (`split`), and a record of the other split is never read back.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from ttm_jax import errors
from ttm_jax import fields
from ttm_jax.suites import config as config_lib
from ttm_jax.suites import finetuned
from ttm_jax.suites import known_files
from ttm_jax.suites import recipes as recipes_lib
from ttm_jax.suites import task_data
from ttm_jax.suites import task_metrics
from ttm_jax.suites import tasks as tasks_lib
from ttm_jax.inference import adapt
from ttm_jax.inference import choice
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.suites import tables as benchmark_tables

# The version of the numbers a record holds: bump it when the metrics
# (task_metrics), the windows (tasks), the baselines or what a record
# stores change, so that records written before are recomputed, not
# mixed in.
METRICS_VERSION = 1
MANIFEST = 'benchmark.json'  # A workdir's suite and its last config.

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
def _first_windows(windows: Sequence[tasks_lib.Window]):
  """(window, position) of each evaluated series' first window, in the
  order the series first come."""
  seen, out = set(), []
  for w, window in enumerate(windows):
    for j, item in enumerate(window.items):
      if item not in seen:
        seen.add(item)
        out.append((w, j))
  return out


def task_histories(windows: Sequence[tasks_lib.Window]) -> List[np.ndarray]:
  """Each evaluated series' past at its first window: nothing at or after
  any of its cutoffs (later windows' pasts hold earlier windows'
  futures)."""
  return [windows[w].pasts[j] for w, j in _first_windows(windows)]


def task_covariates(windows: Sequence[tasks_lib.Window]
                    ) -> List[covariates_lib.Covariates]:
  """The covariates of `task_histories`' pasts, over those pasts only
  (nothing at or after the first cutoff, known ones included)."""
  return [covariates_lib.cut(windows[w].covariates[j],
                             len(windows[w].pasts[j]), 0)
          for w, j in _first_windows(windows)]


def _uses_covariates(forecaster: forecaster_lib.Forecaster,
                     series: task_data.Series) -> bool:
  return forecaster.covariates and series.covariates is not None


def covariates_record(task: tasks_lib.Task, series: task_data.Series,
                      forecaster: forecaster_lib.Forecaster
                      ) -> Dict[str, Any]:
  """What a record says of the covariates a forecaster read: the columns
  by role, the categorical ones, and how (its config's regression options
  or exogenous channels; static columns change no per-series regression
  and no fine-tune here)."""
  config = forecaster.config
  how = (dict(exogenous_mixer=config['channels']) if 'channels' in config
         else dict(regression=config.get('regression'))
         if 'regression' in config else dict(baseline=forecaster.name))
  return dict(known=list(task.known_dynamic), past=list(task.past_dynamic),
              static_unused=list(task.static),
              categorical=sorted(series.categories), **how)


# ------------------------------------------------------------------ tasks
def _score(task: tasks_lib.Task, forecaster: forecaster_lib.Forecaster,
           windows, freq,
           dims: Optional[np.ndarray] = None,
           layout: Optional[covariates_lib.Layout] = None):
  """(fev metrics per window, GIFT inputs) of one forecaster; `dims` each
  series' target column (multivariate tasks); with `layout`, each
  window's covariates handed to it."""
  levels = task.quantile_levels
  per_window, gift = [], []
  for window in windows:
    given = None if layout is None else covariates_lib.Given(
        layout, window.covariates)
    median, quantiles = forecaster(window.pasts, task.horizon, freq, levels,
                                   task.seasonality, covariates=given)
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
  covariates = None if series.covariates is None else [
      c[:len(v)] for c, v in zip(series.covariates, values)]
  return task, dataclasses.replace(series, values=values, timestamps=stamps,
                                   covariates=covariates)


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
  use = _uses_covariates(forecaster, series)
  windows = tasks_lib.windows(task, series.values, series.timestamps,
                              series.freq,
                              series.covariates if use else None)
  layout = series.layout(task) if use else None
  training = None
  if forecaster.prepare is not None:
    start = time.time()
    extra = {} if not use else dict(covariates=covariates_lib.Given(
        layout, task_covariates(windows)))
    forecaster = forecaster.prepare(task_histories(windows), task.horizon,
                                    series.freq, task.name, **extra)
    training = round(time.time() - start, 2)
    use = use and forecaster.covariates  # A fine-tune left zero-shot.
    layout = layout if use else None
  used = covariates_record(task, series, forecaster) if use else None
  if forecaster.report is not None:
    forecaster.report()  # Only this task's forecasts in its record.
  start = time.time()
  per_window, gift = _score(task, forecaster, windows, series.freq,
                            series.dims, layout)
  _check_forecasts(task, forecaster, windows, gift)
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
                covariates_ignored=[] if use else list(task.covariates),
                covariates=used,
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


# --------------------------------------------------------------- identity
def _sha256(value) -> str:
  return hashlib.sha256(json.dumps(value, sort_keys=True).encode()
                        ).hexdigest()


_CHECKPOINT_DIGESTS: Dict[Any, Dict[str, str]] = {}


def checkpoint_digest(checkpoint: str, revision: str = '') -> Dict[str, str]:
  """{file: sha256} of the files a checkpoint's weights and configuration
  are read from (config.json, the weights, categorical_vocab.json)."""
  from ttm_jax.data import categoricals  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  key = (checkpoint, revision)
  if key not in _CHECKPOINT_DIGESTS:
    folder = checkpoint_lib.resolve(checkpoint, revision or None)
    names = (checkpoint_lib.CONFIG_NAME, checkpoint_lib.SAFETENSORS_NAME,
             checkpoint_lib.PYTORCH_NAME, categoricals.FILE_NAME)
    _CHECKPOINT_DIGESTS[key] = {
        name: known_files.digest(os.path.join(folder, name))['sha256']
        for name in names if os.path.isfile(os.path.join(folder, name))}
  return dict(_CHECKPOINT_DIGESTS[key])


def identity(task: tasks_lib.Task, split: str,
             forecaster: forecaster_lib.Forecaster,
             files: Sequence[Dict[str, Any]],
             settings: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Everything that makes a task's record (JSON values): the task's
  definition and split, the forecaster's name, options and pretraining
  data, the run config's `settings` (`suites.config.settings`: its fields
  away from their defaults), its checkpoint's files by content (not by
  path), the data files (path below the data folder, size, sha256) and
  METRICS_VERSION."""
  options = dict(forecaster.config)
  checkpoint = options.pop('checkpoint', '')
  revision = options.pop('revision', '')
  pretraining = forecaster.pretraining_data
  out = dict(  # In the order a difference is worth naming.
      forecaster=dict(name=forecaster.name,
                      quantile_source=forecaster.quantile_source,
                      options=options, pretraining_data=None
                      if pretraining is None else sorted(pretraining)),
      settings=dict(settings or {}),
      checkpoint=checkpoint_digest(checkpoint, revision) if checkpoint
      else None,
      data=list(files),
      task=dict(suite=task.suite, name=task.name, split=split,
                definition=_sha256(task.spec)),
      metrics_version=METRICS_VERSION)
  return json.loads(json.dumps(_strict(out)))


_NONE = '(none)'


def _pairs(old, new, prefix: str = '') -> List[Any]:
  """(dotted key, old, new) of each leaf in which two identities differ,
  in `new`'s order (nested where both sides are groups)."""
  if isinstance(old, dict) and isinstance(new, dict):
    keys = list(new) + [k for k in old if k not in new]
    # A setting absent is at its default (`suites.config.settings`).
    absent = '(default)' if prefix.startswith('settings.') else _NONE
    return [pair for k in keys for pair in _pairs(
        old.get(k, absent), new.get(k, absent), f'{prefix}{k}.')]
  if (isinstance(old, list) and isinstance(new, list)
      and len(old) == len(new)):
    return [pair for k, (a, b) in enumerate(zip(old, new))
            for pair in _pairs(a, b, f'{prefix}{k}.')]
  return [] if old == new else [(prefix.rstrip('.'), old, new)]


def _show(value) -> str:
  if isinstance(value, str) and len(value) > 16:
    value = value[:12] + '...'
  text = json.dumps(value)
  return text if len(text) <= 40 else text[:37] + '...'


def differences(old: Dict[str, Any], new: Dict[str, Any],
                limit: int = 3) -> str:
  """The fields in which two identities differ, old value then now."""
  pairs = _pairs(old, new)
  shown = [f'{key} {_show(a)} (now {_show(b)})' for key, a, b in
           pairs[:limit]]
  more = f' and {len(pairs) - limit} more' if len(pairs) > limit else ''
  return ', '.join(shown) + more


def _reuse(path: str, current: Dict[str, Any], split: str,
           rerun: bool) -> Optional[Dict[str, Any]]:
  """The record at `path` when it was made as `current` says; None when
  there is none (or, with `rerun`, when it was made otherwise or is
  damaged); else one error naming the difference."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
    if not isinstance(record, dict):
      raise ValueError(f'a {type(record).__name__}, not a record')
  except (ValueError, OSError) as e:
    if rerun:
      return None
    raise errors.WorkdirError(
        f'{path}: a damaged task record ({type(e).__name__}: '
        f'{" ".join(str(e).split())[:120]}); set config.rerun=true to '
        'score the task again, or remove the file.') from None
  if record.get('split', 'test') != split and not rerun:  # Older: test.
    raise errors.ConfigError(
        f'{path} holds a {record.get("split", "test")} record; this '
        f'run scores {split}: use another workdir.')
  old = record.get('identity')
  if old == current:
    return record
  if rerun:
    return None
  why = ('it carries no identity (written before records had one)'
         if old is None else differences(old, current))
  raise errors.WorkdirError(
      f'{path} was made by another run: {why}. Set config.rerun=true to '
      'score the task again, or use another workdir.')


# ---------------------------------------------------------------- the run
def check_workdir(workdir: str, suite: str) -> None:
  """A WorkdirError, before any work, when `workdir` (or a folder the run
  writes in it) is a file, or it holds another suite's run."""
  for path in (workdir, os.path.join(workdir, 'tasks'),
               os.path.join(workdir, 'validation'),
               os.path.join(workdir, 'validation', 'tasks')):
    if os.path.exists(path) and not os.path.isdir(path):
      raise errors.WorkdirError(f'{path} is a file, not a folder: give '
                                'another workdir.')
  manifest = os.path.join(workdir, MANIFEST)
  found = None
  if os.path.exists(manifest):
    try:
      with open(manifest) as f:
        found = json.load(f)['suite']
    except (ValueError, OSError, KeyError, TypeError) as e:
      raise errors.WorkdirError(
          f'{manifest}: damaged ({type(e).__name__}); it names the suite '
          'of the run in this workdir: remove it, or give another '
          'workdir.') from None
  else:  # A workdir of the runner before benchmark.json.
    for record in sorted(glob.glob(os.path.join(workdir, '**', 'tasks',
                                                '*.json'), recursive=True)):
      try:
        with open(record) as f:
          found = json.load(f)['suite']
        break
      except (ValueError, OSError, KeyError, TypeError):
        continue
  if found is not None and found != suite:
    raise errors.WorkdirError(
        f'{workdir} holds a {found} run ({MANIFEST}); this run scores '
        f'{suite}, whose summary.csv would replace its own: one suite a '
        'workdir, give another.')


def _check_forecasts(task: tasks_lib.Task,
                     forecaster: forecaster_lib.Forecaster,
                     windows, gift) -> None:
  """Every forecast finite: the metrics would leave a NaN one out while it
  counts as a forecast."""
  for window, (_, median, quantiles, _) in zip(windows, gift):
    bad = ~np.isfinite(median).all(axis=1)
    if np.size(quantiles):
      bad |= ~np.isfinite(quantiles).reshape(len(bad), -1).all(axis=1)
    if bad.any():
      raise errors.DataError(
          f'Task {task.name}: {forecaster.name} forecast non-finite values '
          f'for {int(bad.sum())} series (the first: series '
          f'{int(window.items[np.argmax(bad)])} of the data).')


Chooser = Callable[[tasks_lib.Task, task_data.Series, str],
                   forecaster_lib.Forecaster]


def run(suite: str, data_dir: str, workdir: str,
        forecaster: Union[forecaster_lib.Forecaster, Chooser],
        names: Sequence[str] = (), progress: Callable[[str], None] = print,
        split: str = 'test', *, rerun: bool = False,
        verify_files: bool = True,
        submission: Optional[Dict[str, str]] = None,
        config: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
  """Every task of `suite` (or those named) on `split`: records in
  <split_workdir>/tasks/<task>.json, then the summary files there.

  A record already there is reused when its identity is this run's
  (`identity`); otherwise the run stops with one line naming the
  difference, or, with `rerun`, scores the task again.

  Args:
    suite, data_dir, workdir, names, split: what to score, where.
    forecaster: a Forecaster, or `(task, series, split) -> Forecaster`
      choosing one per task (checkpoint='auto').
    progress: where progress lines go.
    rerun: score again a task whose record was made otherwise.
    verify_files: refuse known files whose bytes differ
      (`known_files`).
    submission: config.submission's fields (GIFT-Eval's config.json).
    config: the run's config, kept in the workdir's benchmark.json.
  """
  _check_split(split)
  chosen = tasks_lib.select(tasks_lib.load_suite(suite), names)
  check_workdir(workdir, suite)
  out = split_workdir(workdir, split)
  folder = os.path.join(out, 'tasks')
  fixed = isinstance(forecaster, forecaster_lib.Forecaster)

  def begin() -> None:  # Nothing is written before a task is scored.
    os.makedirs(folder, exist_ok=True)
    _write_json(os.path.join(workdir, MANIFEST),
                dict(suite=suite, config=config or {}))

  records, missing = [], []
  for task in chosen:
    path = os.path.join(folder, task.name.replace('/', '__') + '.json')
    located = task_data.locate(task, data_dir)
    if isinstance(located, task_data.Missing):
      missing.append(dict(task=task.name, dataset_id=located.dataset_id,
                          looked_in=located.looked_in))
      progress(f'{task.name}: no data (fetch {located.dataset_id}); '
               'skipped.')
      continue
    start = time.time()
    files = task_data.digests(located, data_dir, verify_files)
    series, current = None, forecaster
    if not fixed:
      series = task_data.read(task, data_dir, verify_files, located)
      current = forecaster(task, series, split)
    made = identity(task, split, current, files,
                    None if config is None else config_lib.settings(config))
    record = _reuse(path, made, split, rerun)
    if record is not None:
      records.append(record)
      continue
    if series is None:
      series = task_data.read(task, data_dir, verify_files, located)
    try:
      record = run_task(task, series, current, split)
    except errors.TTMError as e:
      missing.append(dict(task=task.name, dataset_id=task.dataset_id,
                          unsupported=str(e)))
      progress(f'{task.name}: skipped ({e})')
      continue
    record.update(
        seconds=round(time.time() - start, 2), identity=made,
        model_config=current.config,
        pretraining_data=made['forecaster']['pretraining_data'],
        task_definition=benchmark_tables.task_definition(
            holdout(task, series, split)[0]))
    begin()
    _write_json(path, record)
    records.append(json.loads(json.dumps(_strict(record))))
    m, n = record['metrics'], record['seasonal_naive']
    progress(f'{task.name} ({split}): MASE {m["MASE"]:.4f} (seasonal naive '
             f'{n["MASE"]:.4f}), WQL {m.get("WQL", float("nan")):.4f}, '
             f'{record["num_forecasts"]} forecasts, {record["seconds"]} s')
    if record['covariates_ignored']:
      progress(f'{task.name}: covariates ignored ({current.name} reads '
               'none here): ' + ', '.join(record['covariates_ignored']))
    elif record.get('covariates'):
      found = record['covariates']
      progress(f'{task.name}: covariates used: '
               + ', '.join(found['known'] + found['past']))
  begin()
  _write_json(os.path.join(out, 'missing.json'), missing)
  gift = None
  if suite == 'gift_eval' and records:
    gift = gift_config(records, submission or {})
    if not (gift['org'] and gift['code_link']):
      progress('config.json: org and code_link are empty '
               '(config.submission.org, .code_link): GIFT-Eval asks for '
               'both.')
  benchmark_tables.write(out, suite, records, gift)
  return records


# ------------------------------------------------------------ submissions
def testdata_leakage(pretraining: Sequence[Optional[Sequence[str]]],
                     given: str = '') -> str:
  """GIFT-Eval's `testdata_leakage` of forecasters pretrained on
  `pretraining` (a list each; None: unknown): 'Yes' when one holds a
  dataset of any GIFT-Eval configuration (all of them, not only those
  run), 'No' when none does and all are known. `given` (config.submission.
  testdata_leakage) decides where that cannot; a 'No' that contradicts a
  known overlap, or no way to decide, is a ConfigError naming the
  field."""
  gift = tasks_lib.load_suite('gift_eval')
  hits = sorted({t.dataset_config.split('/')[0] for p in pretraining
                 if p is not None for t in gift if overlaps(t, p)})
  if hits:
    if given == 'No':
      fields.fail('submission.testdata_leakage', given, 'contradicts the '
                  'pretraining data, which holds GIFT-Eval datasets '
                  f'{hits}')
    return 'Yes'
  if given or all(p is not None for p in pretraining):
    return given or 'No'
  fields.fail('submission.testdata_leakage', given, 'cannot be decided: the '
              'checkpoint does not say what it was pretrained on (its '
              "config.json's pretraining_data): set config.pretrained_on, "
              "or this field to 'Yes' or 'No'")
  return ''


def _link(checkpoint: str) -> str:
  """The hub page of a hub id; anything else as given."""
  if checkpoint.count('/') == 1 and not os.path.exists(checkpoint) and (
      not checkpoint.startswith(('.', '/', '~'))):
    return f'https://huggingface.co/{checkpoint}'
  return checkpoint


def gift_config(records: Sequence[Dict[str, Any]],
                submission: Dict[str, str]) -> Dict[str, str]:
  """GIFT-Eval's config.json of a run's records, its fields from
  `submission` (config.submission) where given: the model type (default
  statistical without a checkpoint, fine-tuned for a fine-tune, else
  pretrained), the test-data leakage (`testdata_leakage`)."""
  configs = [r.get('model_config') or {} for r in records]
  checkpoints = sorted({c['checkpoint'] for c in configs
                        if c.get('checkpoint')})
  kind = submission.get('model_type') or (
      'statistical' if not checkpoints else
      'fine-tuned' if any('finetune' in c for c in configs) else
      'pretrained')
  names = sorted({r['model_name'] for r in records})
  return dict(
      model=names[0] if len(names) == 1 else '+'.join(names),
      model_type=kind, model_dtype='float32',
      model_link=submission.get('model_link') or ', '.join(
          _link(c) for c in checkpoints),
      code_link=submission.get('code_link', ''),
      org=submission.get('org', ''),
      testdata_leakage=testdata_leakage(
          [r.get('pretraining_data') for r in records],
          submission.get('testdata_leakage', '')),
      replication_code_available='Yes')


# ------------------------------------------------------ runs of a config
def make_forecaster(config, checkpoint: Optional[str] = None,
                    revision: Optional[str] = None,
                    name: Optional[str] = None) -> forecaster_lib.Forecaster:
  """The forecaster of a resolved benchmark config (`suites.config`), for
  its checkpoint or `checkpoint` (an 'auto' choice), named `name`
  (default the checkpoint's)."""
  use = config.get('covariates', 'ignore') == 'use'
  if config.baseline == 'covariate_regression':
    return forecaster_lib.regression_baseline()
  if config.baseline:  # The suite's seasonal naive (GIFT-Eval's own).
    return suite_baseline(tasks_lib.load_suite(config.suite)[0])
  checkpoint = config.checkpoint if checkpoint is None else checkpoint
  revision = config.revision if revision is None else revision
  pretrained_on = list(config.pretrained_on) or None
  model = None
  if checkpoint and config.finetune.enabled:
    model = finetuned.finetune_forecaster(
        checkpoint, revision, config.quantiles, pretrained_on,
        config.finetune.fraction, config.finetune.max_windows,
        config.finetune.lr, quick=config.finetune.quick,
        inputs=inputs_lib.of(config.inputs or 'reference'), name=name,
        exogenous_inputs=inputs_lib.of(config.inputs or 'default')
        if use else None,
        zero_residuals=config.finetune.zero_residuals)
  elif checkpoint:
    inputs = inputs_lib.of(config.inputs or 'default')
    if config.adapt.enabled:
      inputs = dataclasses.replace(
          inputs, pad=config.adapt.pad, adaptation=adapt.Adaptation(
              config.adapt.deseasonalize, config.adapt.upsample))
      name = name and f'{name}-adapted'
    model = forecaster_lib.model_forecaster(
        checkpoint, revision, config.quantiles, pretrained_on, inputs,
        name=name, regression=covariates_lib.of(
            dict(config.regression)) if use else None)
  return recipes_lib.RECIPES[config.recipe].build(config, model)


class _Auto:
  """checkpoint='auto': per task, the zoo's rule (`choice.
  choose_checkpoint`, as the forecasting API) by the task's shortest past,
  its horizon and frequency; one forecaster per checkpoint chosen."""

  def __init__(self, config, progress: Callable[[str], None]):
    self.config, self.progress = config, progress
    self.made: Dict[Any, forecaster_lib.Forecaster] = {}

  def __call__(self, task: tasks_lib.Task, series: task_data.Series,
               split: str) -> forecaster_lib.Forecaster:
    task, held = holdout(task, series, split)
    try:
      windows = tasks_lib.windows(task, held.values, held.timestamps,
                                  held.freq)
      shortest = min(len(p) for w in windows for p in w.pasts)
    except errors.DataError:  # No window: the task is skipped later.
      shortest = min(len(v) for v in held.values)
    config = self.config
    path, revision = choice.choose_checkpoint(
        shortest, task.horizon, held.freq, config.checkpoints_dir or None,
        config.allow_download, choice.release_of(config.checkpoint))
    if (path, revision) not in self.made:
      made = make_forecaster(config, path, revision, name='ttm-auto')
      if config.suite == 'gift_eval':  # Before this task's work.
        testdata_leakage([made.pretraining_data],
                         config.submission.testdata_leakage)
      self.made[(path, revision)] = made
    self.progress(f'{task.name}: checkpoint=auto chose {path}'
                  + (f' (revision {revision})' if revision else ''))
    return self.made[(path, revision)]


def run_config(config, workdir: str,
               progress: Callable[[str], None] = print
               ) -> List[Dict[str, Any]]:
  """A benchmark config (`suites.config`) run in `workdir`: the config
  resolved and checked, the data folder, the workdir and the submission's
  leakage checked, the forecaster built (or chosen per task for 'auto'),
  then `run`. Every refusal comes before a task is scored."""
  config = config_lib.resolve(config)
  data_dir = config_lib.data_folder(config)
  check_workdir(workdir, config.suite)
  if config.checkpoint.split(':')[0] == config_lib.AUTO:
    forecaster = _Auto(config, progress)
  else:
    forecaster = make_forecaster(config)
    if config.suite == 'gift_eval':
      testdata_leakage([forecaster.pretraining_data],
                       config.submission.testdata_leakage)
  return run(config.suite, data_dir, workdir, forecaster, config.tasks,
             progress, config.split, rerun=config.rerun,
             verify_files=config.verify_files,
             submission=config.submission.to_dict(),
             config=config.to_dict())


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
  tmp = f'{path}.{os.getpid()}.tmp'  # Two runs may share a workdir.
  with open(tmp, 'w') as f:
    json.dump(_strict(value), f, indent=2, allow_nan=False)
  os.replace(tmp, path)
