"""Benchmark tasks as the suites define them: fev's Chronos Benchmark II and
fev-bench (`suites/fev_*.yaml`, copied from autogluon/fev) and GIFT-Eval
(`suites/gift_eval_terms.json`, derived from SalesforceAIResearch/gift-eval;
docs/benchmark_suites.md gives every rule's source line).

A task cuts each series into evaluation windows: window k's cutoff is
`initial_cutoff + k * window_step_size` (fev `Task.cutoffs`), counted from
the end of each series when negative; a series is kept for a window only
when at least `min_context_length` points precede the cutoff and `horizon`
follow it (fev `_filter_by_length`: never padded). GIFT-Eval's test windows
are the same arithmetic: `windows` non-overlapping horizons at the end of
each series, their number 1 for M4 and otherwise ceil(10% of the shortest
series / horizon), between 1 and 20.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors

SUITES_DIR = os.path.join(os.path.dirname(__file__), 'suites')
SUITES = ('chronos_ii', 'fev_bench', 'gift_eval')
_FEV_FILES = {'chronos_ii': 'fev_chronos_ii.yaml',
              'fev_bench': 'fev_bench.yaml'}


@dataclasses.dataclass(frozen=True)
class Task:
  """One benchmark task.

  Attributes:
    suite: 'chronos_ii', 'fev_bench' or 'gift_eval'.
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
    target: the target column(s) (fev); 'target' for GIFT.
    univariate_from: fev `generate_univariate_targets_from`: these columns
      (or '__ALL__' sequence columns) become series of their own.
    covariates: dynamic or static covariate columns the task provides
      (scored here without them: TTM r2 is univariate).
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
  initial_cutoff: Any  # An int; a date string is not supported yet.
  window_step_size: int
  min_context_length: int = 1
  max_context_length: Optional[int] = None
  quantile_levels: Tuple[float, ...] = ()
  eval_metric: str = 'MASE'
  extra_metrics: Tuple[str, ...] = ()
  target: Any = 'target'
  univariate_from: Any = None
  covariates: Tuple[str, ...] = ()
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

  def cutoffs(self) -> List[int]:
    if not isinstance(self.initial_cutoff, int):
      raise errors.ConfigError(
          f'Task {self.name} cuts at the date {self.initial_cutoff!r}: date '
          'cutoffs are not supported yet.')
    return [self.initial_cutoff + k * self.window_step_size
            for k in range(self.num_windows)]


def _metric_name(metric) -> str:
  return metric if isinstance(metric, str) else metric['name']


def _fev_task(suite: str, spec: Dict[str, Any]) -> Task:
  horizon = int(spec['horizon'])
  windows = int(spec.get('num_windows', 1))
  step = int(spec.get('window_step_size') or horizon)
  cutoff = spec.get('initial_cutoff')
  if cutoff is None:
    cutoff = -horizon - (windows - 1) * step
  covariates = tuple(spec.get('known_dynamic_columns', ())) + tuple(
      spec.get('past_dynamic_columns', ())) + tuple(
          spec.get('static_columns', ()))
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
      target=spec.get('target', 'target'),
      univariate_from=spec.get('generate_univariate_targets_from'),
      covariates=covariates, spec=dict(spec))


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
  """The tasks named (all when `names` is empty); an unknown name is a
  ConfigError listing the known ones."""
  if not names:
    return list(tasks)
  known = {t.name: t for t in tasks}
  unknown = [n for n in names if n not in known]
  if unknown:
    raise errors.ConfigError(
        f'--tasks {unknown} are not tasks of this suite; known: '
        f'{sorted(known)}.')
  return [known[n] for n in names]


@dataclasses.dataclass
class Window:
  """One evaluation window of a task: the kept series' positions, their
  pasts (ragged, float64, NaN missing) and futures [n, horizon]."""
  items: np.ndarray
  pasts: List[np.ndarray]
  futures: np.ndarray


def windows(task: Task, series: Sequence[np.ndarray]) -> List[Window]:
  """The task's windows over `series` (fev's cutoff arithmetic and length
  filter)."""
  out = []
  lengths = np.array([len(s) for s in series])
  for cutoff in task.cutoffs():
    index = np.clip(cutoff if cutoff >= 0 else lengths + cutoff, 0, lengths)
    keep = np.flatnonzero((index >= task.min_context_length)
                          & (lengths - index >= task.horizon))
    pasts, futures = [], []
    for i in keep:
      first = 0 if task.max_context_length is None else max(
          0, index[i] - task.max_context_length)
      pasts.append(np.asarray(series[i][first:index[i]], np.float64))
      futures.append(np.asarray(series[i][index[i]:index[i] + task.horizon],
                                np.float64))
    if not len(keep):
      raise errors.DataError(
          f'Task {task.name}: no series has {task.min_context_length} past '
          f'and {task.horizon} future points at cutoff {cutoff}.')
    out.append(Window(keep, pasts, np.stack(futures)))
  return out
