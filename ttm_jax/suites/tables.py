"""A benchmark run's tables and plot, from its task records
(`suites.benchmark`): fev's results format (summary.csv: every column
of fev's task definitions, as fev writes them, so the file pivots onto
the leaderboard's tasks), the scores relative to seasonal naive with
their geometric means, GIFT-Eval's submission files."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas

from ttm_jax.suites import task_metrics
from ttm_jax.suites import tasks as tasks_lib

# fev's task definition (`fev.Task.to_dict()`, in its order): fev's
# TASK_DEF_COLUMNS (`fev.analysis`), with num_windows and window_step_size.
TASK_COLUMNS = ('dataset_path', 'dataset_config', 'horizon', 'num_windows',
                'initial_cutoff', 'window_step_size', 'min_context_length',
                'max_context_length', 'seasonality', 'eval_metric',
                'extra_metrics', 'quantile_levels', 'id_column',
                'timestamp_column', 'target',
                'generate_univariate_targets_from', 'known_dynamic_columns',
                'past_dynamic_columns', 'static_columns', 'task_name')
# The fev release whose task, window and metric rules the runner follows
# and is tested against (tests/suites/): fev's leaderboard needs a
# fev_version of at least 0.6.0 in every row.
FEV_VERSION = '0.10.0'
FEV_COLUMNS = (('model_name',) + TASK_COLUMNS + (
    'test_error', 'MASE', 'WQL', 'SQL', 'WAPE', 'training_time_s',
    'inference_time_s', 'trained_on_this_dataset', 'num_forecasts',
    'fev_version', 'split',
    'quantile_source', 'covariates_ignored', 'covariates_used', 'seconds',
    'num_series',
    'model_config'))


def task_definition(task: tasks_lib.Task) -> Dict[str, Any]:
  """The task as fev's `Task.to_dict()` gives it (fev's normalisation:
  cutoffs computed, quantile levels and column lists sorted, metrics as
  the suite's file writes them), for the windows scored (a validation
  split's moved cutoffs; GIFT-Eval's window count once the data fixed
  it)."""
  spec = task.spec if task.suite != 'gift_eval' else {}
  target = (sorted(task.target) if isinstance(task.target, (list, tuple))
            else task.target)
  univariate = task.univariate_from
  return dict(
      dataset_path=task.dataset_path,
      dataset_config=task.dataset_config or None, horizon=task.horizon,
      num_windows=task.num_windows, initial_cutoff=task.initial_cutoff,
      window_step_size=task.window_step_size,
      min_context_length=task.min_context_length,
      max_context_length=task.max_context_length,
      seasonality=task.seasonality,
      eval_metric=spec.get('eval_metric', task.eval_metric),
      extra_metrics=list(spec.get('extra_metrics', task.extra_metrics)),
      quantile_levels=sorted(task.quantile_levels),
      id_column=spec.get('id_column', 'id'),
      timestamp_column=spec.get('timestamp_column', 'timestamp'),
      target=target,
      generate_univariate_targets_from=(
          list(univariate) if isinstance(univariate, (list, tuple))
          else univariate),
      known_dynamic_columns=sorted(task.known_dynamic),
      past_dynamic_columns=sorted(task.past_dynamic),
      static_columns=sorted(task.static), task_name=task.name)


def summary(records: Sequence[Dict[str, Any]],
            suite: str) -> pandas.DataFrame:
  """One row per task in fev's results format: every column of fev's task
  definition as fev writes it (lists as Python lists, None empty), the
  model, test_error (the task's eval metric) and the metrics; then this
  runner's columns (`split`: the test windows or the validation ones
  before them; each row's own `model_config`)."""
  specs = {t.name: t for t in tasks_lib.load_suite(suite)}
  rows = []
  for record in records:
    task = specs[record['task_name']]
    definition = record.get('task_definition') or task_definition(
        dataclasses.replace(task, num_windows=record['num_windows']))
    metrics = record['metrics']
    rows.append(dict(
        model_name=record['model_name'], **definition,
        test_error=metrics.get(task.eval_metric.upper(),
                               metrics.get(task.eval_metric)),
        **{k: metrics.get(k) for k in task_metrics.FEV_METRICS},
        training_time_s=record.get('training_time_s'),
        inference_time_s=record['inference_time_s'],
        trained_on_this_dataset=record['trained_on_this_dataset'],
        num_forecasts=record['num_forecasts'], fev_version=FEV_VERSION,
        split=_split(record),
        quantile_source=record['quantile_source'],
        covariates_ignored=' '.join(record.get('covariates_ignored', ())),
        covariates_used=_used(record.get('covariates')),
        seconds=record.get('seconds'), num_series=record['num_series'],
        model_config=json.dumps(record.get('model_config') or {},
                                sort_keys=True)))
  frame = pandas.DataFrame(rows, columns=list(FEV_COLUMNS), dtype=object)
  twice = frame[frame.duplicated(['model_name', 'task_name'])]
  if len(twice):
    raise ValueError(f'tasks scored twice: {twice["task_name"].tolist()}')
  return frame


def _used(covariates: Optional[Dict[str, Any]]) -> str:
  """The covariates a record's forecaster read, and how, in one cell."""
  if not covariates:
    return ''
  how = ('exogenous mixer' if 'exogenous_mixer' in covariates else
         'regression ' + json.dumps(covariates['regression'], sort_keys=True)
         if covariates.get('regression') else covariates.get('baseline', ''))
  return ' '.join(covariates['known'] + covariates['past']) + f' ({how})'


def _split(record: Dict[str, Any]) -> str:
  return record.get('split', 'test')  # Records written before splits.


# GIFT-Eval's leaderboard scores: its pooled all_results.csv columns.
GIFT_RELATIVE = {'MASE': 'MASE[0.5]',
                 'CRPS': 'mean_weighted_sum_quantile_loss'}
RELATIVE_COLUMNS = ('MASE', 'WQL', 'SQL', 'CRPS')


def _gift_relative(record: Dict[str, Any]) -> Dict[str, float]:
  """GIFT-Eval's relative MASE and CRPS of a record: its pooled metrics
  over GIFT-Eval's seasonal naive's, unclipped (the leaderboard divides
  by seasonal naive's scores; no clipping is documented)."""
  if record.get('baseline') != 'gift_seasonal_naive':
    raise ValueError(
        f"{record['task_name']}: its record was scored beside "
        f"{record.get('baseline', 'the point seasonal naive')}, not "
        "GIFT-Eval's seasonal naive (gift_seasonal_naive): rerun it in a "
        'new workdir.')
  return {name: task_metrics.relative(
      record['gift'][column], record['gift_seasonal_naive'][column], 0.0,
      np.inf) for name, column in GIFT_RELATIVE.items()}


def relative(records: Sequence[Dict[str, Any]]) -> pandas.DataFrame:
  """Per task, its scores over seasonal naive's on the same windows, and a
  last row with their geometric means: fev's MASE, WQL and SQL (per
  window, then averaged; clipped to [0.01, 100], as fev's leaderboard),
  or for GIFT-Eval its pooled MASE[0.5] and CRPS (mean weighted sum
  quantile loss) over GIFT-Eval's seasonal naive's (`_gift_relative`).
  `split` says which windows (one split a table: a mix is an error)."""
  splits = sorted({_split(r) for r in records})
  if len(splits) > 1:
    raise ValueError(f'records of splits {splits} in one table.')
  rows = []
  for record in records:
    row = {'task_name': record['task_name'], 'split': _split(record),
           'trained_on_this_dataset': record['trained_on_this_dataset']}
    if record.get('suite') == 'gift_eval':
      row.update(_gift_relative(record))
      rows.append(row)
      continue
    for name in ('MASE', 'WQL', 'SQL'):
      ours, naive = record['metrics'].get(name), record[
          'seasonal_naive'].get(name)
      if ours is not None and naive is not None:
        row[name] = task_metrics.relative(ours, naive)
    rows.append(row)
  frame = pandas.DataFrame(rows)
  if len(frame):
    means = {c: task_metrics.geometric_mean(frame[c].dropna())
             for c in RELATIVE_COLUMNS if c in frame}
    frame = pandas.concat([frame, pandas.DataFrame(
        [dict(task_name='geometric mean', split=splits[0], **means)])],
        ignore_index=True)
  return frame


def gift_results(records) -> pandas.DataFrame:
  """GIFT-Eval's all_results.csv: its 15 columns, one row per config."""
  with open(os.path.join(tasks_lib.SUITES_DIR,
                         'gift_eval_terms.json')) as f:
    configs = {c['config']: c for c in json.load(f)['configs']}
  rows = []
  for record in records:
    entry = configs[record['task_name']]
    rows.append(dict(
        dataset=record['task_name'], model=record['model_name'],
        **{f'eval_metrics/{k}': record['gift'][k]
           for k in task_metrics.GIFT_COLUMNS},
        domain=entry['domain'], num_variates=entry['num_variates']))
  return pandas.DataFrame(rows)


def _markdown(frame: pandas.DataFrame) -> str:
  columns = list(frame.columns)
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  for _, row in frame.iterrows():
    lines.append('| ' + ' | '.join(
        f'{v:.4f}' if isinstance(v, float) else ('' if v is None else str(v))
        for v in row) + ' |')
  return '\n'.join(lines) + '\n'


def plot(path: str, frame: pandas.DataFrame) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tasks = frame[frame['task_name'] != 'geometric mean']
  names = [c for c in ('MASE', 'WQL', 'CRPS') if c in tasks]
  fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(tasks) + 2), 3.6))
  width = 0.8 / max(len(names), 1)
  for k, name in enumerate(names):
    ax.bar(np.arange(len(tasks)) + k * width, tasks[name], width, label=name)
  ax.axhline(1.0, color='0.3', lw=1, ls='--')
  ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2)
  ax.set_xticklabels(tasks['task_name'], rotation=40, ha='right', fontsize=7)
  ax.set_ylabel('relative to seasonal naive')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write(workdir: str, suite: str, records: List[Dict[str, Any]],
          gift_config: Optional[Dict[str, str]] = None) -> None:
  """summary.csv, relative.csv/.md, relative.png and, for GIFT-Eval,
  all_results.csv and config.json (`gift_config`: its fields, decided
  by the runner, `benchmark.gift_config`)."""
  if not records:
    return
  summary(records, suite).to_csv(os.path.join(workdir, 'summary.csv'),
                                 index=False)
  table = relative(records)
  table.to_csv(os.path.join(workdir, 'relative.csv'), index=False)
  with open(os.path.join(workdir, 'relative.md'), 'w') as f:
    f.write(_markdown(table))
  plot(os.path.join(workdir, 'relative.png'), table)
  if suite == 'gift_eval':
    gift_results(records).to_csv(
        os.path.join(workdir, 'all_results.csv'), index=False)
    if gift_config is None:
      raise ValueError("GIFT-Eval's config.json needs its fields "
                       '(benchmark.gift_config).')
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(gift_config, f, indent=4)
