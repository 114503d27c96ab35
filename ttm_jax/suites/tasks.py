"""Benchmark tasks as the suites define them: fev's Chronos Benchmark II and
fev-bench (`suites/fev_*.yaml`, copied from autogluon/fev), GIFT-Eval
(`suites/gift_eval_terms.json`, derived from SalesforceAIResearch/gift-eval;
docs/benchmark_suites.md gives every rule's source line), and the covariate
suite (`suites/covariates.yaml`, fev's format, on public data converted by
scripts/make_covariate_suite.py).

A task cuts each series into evaluation windows: window k's cutoff is
`initial_cutoff + k * window_step_size` (fev `Task.cutoffs`), counted from
the end of each series when negative; a date cutoff (an ISO timestamp)
keeps every step stamped at or before it in the past (fev
`_compute_cutoff_indices`), the next cutoffs `k * window_step_size` later
(a pandas offset string, or steps of the data's frequency). A series is
kept for a window only when at least `min_context_length` points precede
the cutoff and `horizon` follow it (fev `_filter_by_length`: never
padded). GIFT-Eval's test windows
are the same arithmetic: `windows` non-overlapping horizons at the end of
each series, their number 1 for M4 and otherwise ceil(10% of the shortest
series / horizon), between 1 and 20.

The validation split (`validation`) is the task moved back before its
test windows: each series cut at its first test cutoff (nothing at or
after it is kept), then the same windows (count, step, horizon) cut from
what is left, the last ending at that cutoff: every cutoff moved back by
the test windows' span, `(num_windows - 1) * window_step_size + horizon`
steps (one horizon times the windows with fev's default cutoffs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax.inference import covariates as covariates_lib

SUITES_DIR = os.path.join(os.path.dirname(__file__), 'files')
SUITES = ('chronos_ii', 'fev_bench', 'gift_eval', 'covariates')
SPLITS = ('test', 'validation')  # The task's own windows, or those before.
_FEV_FILES = {'chronos_ii': 'fev_chronos_ii.yaml',
              'fev_bench': 'fev_bench.yaml', 'covariates': 'covariates.yaml'}


@dataclasses.dataclass(frozen=True)
class Task:
  """One benchmark task.

  Attributes:
    suite: 'chronos_ii', 'fev_bench', 'gift_eval' or 'covariates'.
    name: the suite's task name (fev `task_name`; GIFT `dataset/freq/term`).
    dataset_path, dataset_config: where the suite publishes its data (the
      HF dataset id and config; GIFT: 'Salesforce/GiftEval' and the folder).
    horizon, seasonality: steps forecast, season of the scaled metrics.
    num_windows: windows per series (GIFT: 0 until the data fixes it).
    initial_cutoff: the first window's cutoff (negative: from the end).
    window_step_size: steps between cutoffs.
    min_context_length, max_context_length: fev's past bounds.
    quantile_levels: the levels scored.
    eval_metric, extra_metrics: the suite's metrics.
    target: the target column (fev; 'target' for GIFT), or a list of
      them (a multivariate task: each column forecast, the metrics
      averaged over columns as fev averages them).
    univariate_from: fev `generate_univariate_targets_from`: these columns
      (or '__ALL__' sequence columns) become series of their own.
    known_dynamic, past_dynamic, static: the covariate columns the task
      provides (fev's known_dynamic_columns, past_dynamic_columns,
      static_columns).
    metric_options: the suite's options of each metric by name, e.g.
      {'WAPE': {'epsilon': 1.0}}.
    term: GIFT's short/medium/long; '' for fev.
    spec: the task as the suite's file gives it (for summary.csv).
  """
  suite: str
  name: str
  dataset_path: str
  dataset_config: str
  horizon: int
  seasonality: int
  num_windows: int
  initial_cutoff: Any  # Steps (an int), or a date (an ISO timestamp).
  window_step_size: Any  # Steps, or a pandas offset string (date cutoffs).
  min_context_length: int = 1
  max_context_length: Optional[int] = None
  quantile_levels: Tuple[float, ...] = ()
  eval_metric: str = 'MASE'
  extra_metrics: Tuple[str, ...] = ()
  target: Any = 'target'
  univariate_from: Any = None
  known_dynamic: Tuple[str, ...] = ()
  past_dynamic: Tuple[str, ...] = ()
  static: Tuple[str, ...] = ()
  metric_options: Dict[str, Dict[str, Any]] = dataclasses.field(
      default_factory=dict)
  term: str = ''
  spec: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def dataset_id(self) -> str:
    """The id to fetch the data by."""
    return (f'{self.dataset_path}/{self.dataset_config}'
            if self.dataset_config else self.dataset_path)

  def with_windows(self, lengths: Sequence[int]) -> 'Task':
    """GIFT-Eval: the task with its number of windows fixed by the
    data (1 for M4, else ceil(0.1 * shortest / horizon) in [1, 20])."""
    if self.num_windows:
      return self
    count = 1 if 'm4' in self.dataset_config.lower() else min(
        max(1, math.ceil(0.1 * min(lengths) / self.horizon)), 20)
    return dataclasses.replace(self, num_windows=count,
                               initial_cutoff=-self.horizon * count)

  @property
  def target_columns(self) -> List[str]:
    return list(self.target) if isinstance(self.target, (list, tuple)) else [
        self.target]

  @property
  def covariates(self) -> Tuple[str, ...]:
    """Every covariate column of the task (dynamic, then static)."""
    return self.known_dynamic + self.past_dynamic + self.static

  @property
  def dated(self) -> bool:
    """Whether the cutoffs are dates (else step counts)."""
    return isinstance(self.initial_cutoff, str)

  def date_step(self, freq: str = ''):
    """The pandas offset between date cutoffs (`window_step_size` steps of
    `freq` when it is a count)."""
    import pandas as pd  # pylint: disable=g-import-not-at-top
    if isinstance(self.window_step_size, str):
      return pd.tseries.frequencies.to_offset(self.window_step_size)
    if freq:
      return pd.tseries.frequencies.to_offset(freq) * self.window_step_size
    raise errors.DataError(
        f'Task {self.name}: its date cutoffs step by '
        f'{self.window_step_size} steps, but the data has no inferable '
        'frequency.')

  def cutoffs(self, freq: str = '') -> List[Any]:
    """The windows' cutoffs: steps (ints), or pandas Timestamps for a date
    cutoff (fev `Task.cutoffs`: an integer step is `freq` steps)."""
    if not self.dated:
      return [self.initial_cutoff + k * self.window_step_size
              for k in range(self.num_windows)]
    import pandas as pd  # pylint: disable=g-import-not-at-top
    offset = self.date_step(freq)
    first = pd.Timestamp(self.initial_cutoff)
    # As fev: no offset added to the first (an anchored offset would move
    # it).
    return [first if k == 0 else first + k * offset
            for k in range(self.num_windows)]


def _metric_name(metric) -> str:
  return metric if isinstance(metric, str) else metric['name']


def _fev_cutoff(spec: Dict[str, Any], horizon: int, windows: int):
  """(initial_cutoff, window_step_size) as fev normalises them: a date as
  its ISO timestamp, an offset string as its freqstr."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  name = spec.get('task_name') or spec.get('dataset_config')
  step = spec.get('window_step_size') or horizon
  try:
    step = (pd.tseries.frequencies.to_offset(step).freqstr
            if isinstance(step, str) else int(step))
    cutoff = spec.get('initial_cutoff')
    if isinstance(cutoff, str):
      cutoff = pd.Timestamp(cutoff).isoformat()
  except ValueError as e:
    raise errors.ConfigError(f'Task {name}: {e}') from None
  if cutoff is None:
    if isinstance(step, str):
      raise errors.ConfigError(
          f'Task {name}: window_step_size={step!r} (a date offset) needs '
          'a date initial_cutoff.')
    cutoff = -horizon - (windows - 1) * step
  return cutoff, step


def _metric_options(spec: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  metrics = [spec.get('eval_metric', 'MASE')] + list(
      spec.get('extra_metrics', ()))
  return {m['name'].upper(): {k: v for k, v in m.items() if k != 'name'}
          for m in metrics if isinstance(m, dict)}


def _fev_task(suite: str, spec: Dict[str, Any]) -> Task:
  horizon = int(spec['horizon'])
  windows = int(spec.get('num_windows', 1))
  cutoff, step = _fev_cutoff(spec, horizon, windows)
  target = spec.get('target', 'target')
  return Task(
      suite=suite, name=spec.get('task_name') or spec['dataset_config'],
      dataset_path=spec['dataset_path'],
      dataset_config=spec.get('dataset_config') or '', horizon=horizon,
      seasonality=int(spec.get('seasonality', 1)), num_windows=windows,
      initial_cutoff=cutoff, window_step_size=step,
      min_context_length=int(spec.get('min_context_length', 1)),
      max_context_length=spec.get('max_context_length'),
      quantile_levels=tuple(spec.get('quantile_levels', ())),
      eval_metric=_metric_name(spec.get('eval_metric', 'MASE')),
      extra_metrics=tuple(_metric_name(m)
                          for m in spec.get('extra_metrics', ())),
      target=tuple(target) if isinstance(target, list) else target,
      univariate_from=spec.get('generate_univariate_targets_from'),
      known_dynamic=tuple(spec.get('known_dynamic_columns', ())),
      past_dynamic=tuple(spec.get('past_dynamic_columns', ())),
      static=tuple(spec.get('static_columns', ())),
      metric_options=_metric_options(spec), spec=dict(spec))


def _gift_task(entry: Dict[str, Any], levels) -> Task:
  horizon = int(entry['prediction_length'])
  windows = 1 if 'm4' in entry['hf_name'].lower() else 0
  return Task(
      suite='gift_eval', name=entry['config'], dataset_path='Salesforce/'
      'GiftEval', dataset_config=entry['hf_name'], horizon=horizon,
      seasonality=int(entry['seasonality_gluonts_0_15']),
      num_windows=windows, initial_cutoff=-horizon * windows if windows
      else None, window_step_size=horizon, quantile_levels=tuple(levels),
      eval_metric='MASE', extra_metrics=('CRPS',), term=entry['term'],
      spec=dict(entry))


def load_suite(suite: str) -> List[Task]:
  """Every task of `suite`, as its published definition gives it."""
  if suite in _FEV_FILES:
    import yaml  # pylint: disable=g-import-not-at-top
    with open(os.path.join(SUITES_DIR, _FEV_FILES[suite])) as f:
      specs = yaml.safe_load(f)['tasks']
    return [_fev_task(suite, spec) for spec in specs]
  if suite == 'gift_eval':
    with open(os.path.join(SUITES_DIR, 'gift_eval_terms.json')) as f:
      terms = json.load(f)
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    return [_gift_task(entry, levels) for entry in terms['configs']]
  raise errors.ConfigError(f'suite={suite!r}: expected one of {SUITES}.')


def select(tasks: Sequence[Task], names: Sequence[str]) -> List[Task]:
  """The tasks named (all when `names` is empty); an unknown name, or one
  named twice (it would be scored and averaged twice), is a ConfigError
  (the known ones listed)."""
  if not names:
    return list(tasks)
  known = {t.name: t for t in tasks}
  unknown = [n for n in names if n not in known]
  if unknown:
    raise errors.ConfigError(
        f'tasks {unknown} are not tasks of this suite; known: '
        f'{sorted(known)}.')
  twice = sorted({n for n in names if list(names).count(n) > 1})
  if twice:
    raise errors.ConfigError(f'tasks {twice} are named twice: each task is '
                             'scored once.')
  return [known[n] for n in names]


@dataclasses.dataclass
class Window:
  """One evaluation window of a task: the kept series' positions, their
  pasts (ragged, float64, NaN missing) and futures [n, horizon]; with
  covariates, each kept series' (`inference.covariates.Covariates`: the
  past-only ones over its past, the known ones over its past and
  horizon)."""
  items: np.ndarray
  pasts: List[np.ndarray]
  futures: np.ndarray
  covariates: Optional[List[covariates_lib.Covariates]] = None


def _cutoff_indices(task: Task, cutoff, lengths: np.ndarray,
                    timestamps: Optional[Sequence[np.ndarray]]) -> np.ndarray:
  """Per series, how many of its steps precede `cutoff`: Python slicing
  of a step cutoff, or the steps stamped at or before a date cutoff."""
  if not task.dated:
    return np.clip(cutoff if cutoff >= 0 else lengths + cutoff, 0, lengths)
  if timestamps is None:
    raise errors.DataError(
        f'Task {task.name} cuts at the date {task.initial_cutoff}, but its '
        'series have no timestamps (a .tsf file or a table without a '
        'timestamp column).')
  moment = np.datetime64(cutoff.tz_localize(None) if cutoff.tzinfo else
                         cutoff)
  return np.array([np.searchsorted(np.asarray(t, 'datetime64[ns]'), moment,
                                   side='right') for t in timestamps])


def windows(task: Task, series: Sequence[np.ndarray],
            timestamps: Optional[Sequence[np.ndarray]] = None,
            freq: str = '',
            covariates: Optional[Sequence[np.ndarray]] = None
            ) -> List[Window]:
  """The task's windows over `series` (fev's cutoff arithmetic and length
  filter); a date cutoff needs each series' `timestamps` (sorted), and,
  with a step count between windows, the data's `freq`. `covariates`:
  per series [t, k] the task's known then past dynamic covariates
  (`task_data.Series.covariates`), cut for each window as its past is
  (the known ones also over its horizon)."""
  known = len(task.known_dynamic)
  out = []
  lengths = np.array([len(s) for s in series])
  for cutoff in task.cutoffs(freq):
    index = _cutoff_indices(task, cutoff, lengths, timestamps)
    keep = np.flatnonzero((index >= task.min_context_length)
                          & (lengths - index >= task.horizon))
    pasts, futures, found = [], [], []
    for i in keep:
      first = 0 if task.max_context_length is None else max(
          0, index[i] - task.max_context_length)
      pasts.append(np.asarray(series[i][first:index[i]], np.float64))
      futures.append(np.asarray(series[i][index[i]:index[i] + task.horizon],
                                np.float64))
      if covariates is not None:
        found.append(covariates_lib.Covariates(
            past=covariates[i][first:index[i], known:],
            known=covariates[i][first:index[i] + task.horizon, :known]))
    if not len(keep):
      raise errors.DataError(
          f'Task {task.name}: no series has {task.min_context_length} past '
          f'and {task.horizon} future points at cutoff {cutoff}.')
    out.append(Window(keep, pasts, np.stack(futures),
                      found if covariates is not None else None))
  return out


def validation(task: Task, series: Sequence[np.ndarray],
               timestamps: Optional[Sequence[np.ndarray]] = None,
               freq: str = '') -> Tuple[Task, List[np.ndarray],
                                        Optional[List[np.ndarray]]]:
  """The validation split of `task` (its window count fixed: GIFT's
  `with_windows` first): (the task whose windows `windows` cuts from the
  truncated series, each series cut at its first test cutoff, their
  timestamps cut alike). The validation windows end at that cutoff; the
  series' values at or after it are not in the result."""
  if not task.num_windows:
    raise errors.ConfigError(f'Task {task.name}: fix its windows '
                             '(with_windows) before its validation split.')
  lengths = np.array([len(s) for s in series])
  cutoffs = task.cutoffs(freq)
  index = np.min([_cutoff_indices(task, c, lengths, timestamps)
                  for c in cutoffs], axis=0)
  cut = [np.asarray(s)[:i] for s, i in zip(series, index)]
  stamps = None if timestamps is None else [
      np.asarray(t)[:i] for t, i in zip(timestamps, index)]
  if task.dated:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    if not freq:
      raise errors.DataError(
          f'Task {task.name}: its validation split moves its date cutoffs '
          f'back by {task.horizon} steps, but the data has no inferable '
          'frequency.')
    first = cutoffs[0] - pd.tseries.frequencies.to_offset(
        freq) * task.horizon
    if len(cutoffs) > 1:
      first = first - task.date_step(freq) * (len(cutoffs) - 1)
    start = first.isoformat()
  else:
    span = (task.num_windows - 1) * task.window_step_size + task.horizon
    if cutoffs[0] < 0 and cutoffs[-1] >= 0:
      raise errors.ConfigError(
          f'Task {task.name}: its cutoffs {cutoffs} count from the end '
          'and from the start; no validation split.')
    # From the end of the cut series, or from the start as the test's.
    start = -span if cutoffs[0] < 0 else cutoffs[0] - span
    if start < 0 <= cutoffs[0]:
      raise errors.DataError(
          f'Task {task.name}: its first cutoff {cutoffs[0]} leaves no room '
          f'for {task.num_windows} validation window(s) of {span} steps '
          'before it.')
  return dataclasses.replace(task, initial_cutoff=start), cut, stamps
