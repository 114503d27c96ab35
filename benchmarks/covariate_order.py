r"""The validation runs behind the zero-shot covariates' defaults
(`ttm_jax.inference.covariates.Regression`): the order, 'xreg+ttm'
(regress, then TTM on the residuals) or 'ttm+xreg' (TTM, then regress its
in-context errors), then the ridge penalty and time features, chosen on
validation data only, never on test.

  .venv/bin/python scripts/make_covariate_suite.py \
      --source ../shared/data/extra --out "$TTM_DATA_DIR/covariates"
  .venv/bin/python -m benchmarks.covariate_order \
      --checkpoint ../shared/checkpoints/fraware__ChronoAPI__root \
      --data_dir "$TTM_DATA_DIR/covariates" --workdir /tmp/covariate_order
  .venv/bin/python -m benchmarks.covariate_order --stage 2 ...  (the grid)
  .venv/bin/python -m benchmarks.covariate_order --stage 3 ...  (the runner)

Validation data: every task of the covariate suite
(ttm_jax/suites/files/covariates.yaml) on its validation split: each series
cut at the task's first test cutoff (nothing at or after it is read), and
the task's windows (count, horizon, one horizon apart) at the end of what
is left, scored by `ttm_jax.backtest` with the task's covariates (known,
past-only and static as the task declares them; past-only ones lagged by
the horizon; static ones change nothing) and the regression's other
options at their defaults (ridge 1, no time features). The model is IBM's
r2 512-96, zero-shot, the API's default inputs.

Each order's backtest MASE is divided by that of the same model without
covariates on the same windows. The rule, fixed before the run: the
default is the order with the lower geometric mean of that ratio over the
suite's tasks; when the two geometric means are within 1% of each other,
the order that wins more tasks; a tie there goes to 'xreg+ttm' (TimesFM's
default). The table and the choice are printed and written to
<workdir>/order.md (records in <workdir>/order.json).

Stage 2 (`--stage 2`; its rule fixed after stage 1 ran, before it runs):
stage 1 found both orders worse than no covariates on four of the five
tasks at ridge 1, so the grid is every order x ridge {1, 100, 10000} x
time features {none, hour}, each setting's ratio as above; the defaults
are the setting with the lowest geometric mean over the tasks; settings
within 1% of it go to the earliest in that order (xreg+ttm first, the
smaller ridge, no time features). Written to <workdir>/grid.md and
grid.json.

Stage 3 (`--stage 3`; its rule fixed after stages 1 and 2 and before it
ran, in this docstring and the commit that added it). Stages 1 and 2 found
no setting that helped on average: a regression over one context credits
a cycle the target shares to the covariates (Tetouan 5.5x worse), and
heavy shrinkage only turned the covariates off. Exploration on the same
validation windows (NumPy over cached TTM forecasts, before this rule)
showed three things worth a grid: clipping the regressors to their fitted
range (now always on: an outlier such as metro's rain_1h of 9,831 mm
moved forecasts without bound), regressing TTM's in-context errors on the
known covariates' surprises (their deviation from TTM's forecast of them:
Beijing -35%), and fitting on more in-context windows than the context
holds. Stage 3 runs the benchmark runner itself (`suites.benchmark.
run_config`: configs/benchmarks/covariates.py, split=validation,
quantiles=point) for each setting of

  order 'xreg+ttm' (known='value')   x ridge {1, 100, 10000}
                                     x windows {0 (the context), 40}
                                     x gate {0, 5}
  order 'ttm+xreg' x known {'value', 'surprise'} x the same,

(36 settings, in that order: 'xreg+ttm' first, then 'value' before
'surprise', the smaller ridge, windows 0, gate 0 first), against the same
checkpoint without covariates (covariates=ignore) on the same windows.
Each setting's ratio per task is its MASE over that without covariates.
The rule:

  1. admissible: no task's ratio above 1.02 (covariates may not hurt a
     task by more than 2%);
  2. the default is the admissible setting with the lowest geometric
     mean of the ratio over the five tasks; admissible settings within
     0.5% of that mean go to the earliest in the order above;
  3. if no setting is admissible, the one with the lowest largest ratio.

The test windows are scored once, after the choice (configs/benchmarks/
covariates.py, docs/results/2026-12-07-covariate-suite.md). Written to
<workdir>/stage3.md and stage3.json (records under <workdir>/stage3/).
"""

import math
import os
import time

from absl import app
from absl import flags

from benchmarks import common

_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'The TTM (IBM r2 512-96).')
_DATA = flags.DEFINE_string('data_dir', '', 'The covariate suite\'s data '
                            '(scripts/make_covariate_suite.py --out).')
_WORKDIR = flags.DEFINE_string('workdir', '', 'Where records go.')
_TASKS = flags.DEFINE_list('tasks', [], 'Only these tasks (names).')
_STAGE = flags.DEFINE_enum('stage', '1', ['1', '2', '3'], '1: the order; 2: '
                           'the grid of order, ridge and time features; 3: '
                           'the runner over order, known, ridge, windows '
                           'and gate.')

ORDERS = ('xreg+ttm', 'ttm+xreg')
TOLERANCE = 0.01
# Stage 2: (order, ridge, time features), in the tie-break order.
GRID = tuple((order, ridge, features) for order in ORDERS
             for ridge in (1.0, 100.0, 10000.0)
             for features in ((), ('hour',)))


def long_frame(task, data_dir: str):
  """The task's data as one long DataFrame (id, timestamp, target, the
  covariates), cut at the task's first test cutoff."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not (isinstance(task.initial_cutoff, int) and task.initial_cutoff < 0):
    raise ValueError(f'{task.name}: expected cutoffs counted from the end.')
  table = pd.read_parquet(os.path.join(data_dir, task.dataset_config,
                                       'train.parquet'))
  dynamic = list(task.known_dynamic + task.past_dynamic)
  parts = []
  for _, row in table.iterrows():
    keep = len(row['timestamp']) + task.initial_cutoff
    part = pd.DataFrame({
        'id': row['id'], 'timestamp': pd.DatetimeIndex(row['timestamp']),
        task.target: np.asarray(row[task.target], np.float64)})
    for column in dynamic:
      part[column] = np.asarray(row[column])
    for column in task.static:
      part[column] = row[column]
    parts.append(part.iloc[:keep])
  return pd.concat(parts, ignore_index=True)


def score(task, frame, checkpoint: str, order, ridge=1.0, features=()):
  """The backtest report of the validation windows, with the covariates by
  `order`, `ridge` and time `features` (order None: without them)."""
  import ttm_jax  # pylint: disable=g-import-not-at-top
  covariates = dict(known_covariates=list(task.known_dynamic),
                    past_covariates=list(task.past_dynamic),
                    static_covariates=list(task.static),
                    regression=dict(order=order, ridge=ridge,
                                    time_features=features)
                    ) if order else {}
  columns = ['id', 'timestamp', task.target] + (
      list(task.covariates) if order else [])
  return ttm_jax.backtest(
      frame[columns], timestamp_column='timestamp', horizon=task.horizon,
      checkpoint=checkpoint, windows=task.num_windows, quantiles=(),
      id_columns=['id'], target_columns=[task.target], **covariates)


def choose(rows):
  """The rule of the module docstring over rows {order: ratio} per task:
  (the order, the geometric means, the tasks each order wins)."""
  means = {o: math.exp(sum(math.log(r[o]) for r in rows) / len(rows))
           for o in ORDERS}
  wins = {o: sum(r[o] < r[other] for r in rows)
          for o, other in zip(ORDERS, ORDERS[::-1])}
  first, second = ORDERS
  if abs(means[first] / means[second] - 1) > TOLERANCE:
    return min(ORDERS, key=means.get), means, wins
  if wins[first] != wins[second]:
    return max(ORDERS, key=wins.get), means, wins
  return first, means, wins


def _name(setting) -> str:
  order, ridge, features = setting
  return f'{order} ridge {ridge:g}' + (f' +{"+".join(features)}'
                                       if features else '')


def grid(tasks) -> None:
  """Stage 2 (module docstring)."""
  records, ratios = [], []
  for task in tasks:
    frame = long_frame(task, _DATA.value)
    none = score(task, frame, _CHECKPOINT.value, None)['model']['mase']
    record = dict(task=task.name, none=none)
    for setting in GRID:
      start = time.time()
      record[_name(setting)] = score(task, frame, _CHECKPOINT.value,
                                     *setting)['model']['mase']
      print(f'{task.name} {_name(setting)}: MASE '
            f'{record[_name(setting)]:.4f} ({time.time() - start:.0f} s)',
            flush=True)
    records.append(record)
    ratios.append({_name(g): record[_name(g)] / none for g in GRID})
  means = {_name(g): math.exp(sum(math.log(r[_name(g)]) for r in ratios)
                              / len(ratios)) for g in GRID}
  best = min(means.values())
  chosen = next(g for g in GRID if means[_name(g)] <= best * (1 + TOLERANCE))
  lines = ['| setting | ' + ' | '.join(r['task'] for r in records)
           + ' | geometric mean |', '|---' * (len(records) + 2) + '|']
  for setting in GRID:
    name = _name(setting)
    lines.append(f'| {name} | ' + ' | '.join(
        f'{r[name]:.3f}' for r in ratios) + f' | {means[name]:.4f} |')
  lines.append('')
  lines.append('MASE over that without covariates ('
               + ', '.join(f"{r['task']} {r['none']:.4f}" for r in records)
               + f'). Chosen by the rule: {_name(chosen)}.')
  text = '\n'.join(lines)
  common.report(_WORKDIR.value, 'grid', text, dict(
      records=records, ratios=ratios, means=means, chosen=_name(chosen)))


# Stage 3: (order, known, ridge, windows, gate), in the tie-break order.
STAGE3 = tuple(
    (order, known, ridge, windows, gate)
    for order, known in (('xreg+ttm', 'value'), ('ttm+xreg', 'value'),
                         ('ttm+xreg', 'surprise'))
    for ridge in (1.0, 100.0, 10000.0) for windows in (0, 40)
    for gate in (0, 5))
STAGE3_MAX_RATIO = 1.02
STAGE3_TOLERANCE = 0.005


def _name3(setting) -> str:
  order, known, ridge, windows, gate = setting
  return (f'{order} {known} ridge {ridge:g} windows {windows} '
          f'gate {gate}')


def choose3(ratios):
  """Stage 3's rule (module docstring) over {setting name: [ratio per
  task]}: (the chosen name, {name: geometric mean}, {name: largest})."""
  means = {n: math.exp(sum(math.log(r) for r in v) / len(v))
           for n, v in ratios.items()}
  worst = {n: max(v) for n, v in ratios.items()}
  names = [_name3(s) for s in STAGE3 if _name3(s) in ratios]
  admissible = [n for n in names if worst[n] <= STAGE3_MAX_RATIO]
  if not admissible:
    return min(names, key=worst.get), means, worst
  best = min(means[n] for n in admissible)
  return next(n for n in admissible
              if means[n] <= best * (1 + STAGE3_TOLERANCE)), means, worst


def stage3(names) -> None:
  """Stage 3 (module docstring): the runner on the validation split."""
  from ttm_jax.suites import benchmark  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import config as config_lib  # pylint: disable=g-import-not-at-top

  def run(folder, **changes):
    config = config_lib.benchmark(
        'covariates', checkpoint=_CHECKPOINT.value, data_dir=_DATA.value,
        split='validation', quantiles='point',
        covariates='use' if changes else 'ignore')
    config.tasks = tuple(names)
    config.regression.update(changes)
    start = time.time()
    records = benchmark.run_config(config, os.path.join(
        _WORKDIR.value, 'stage3', folder), progress=lambda line: None)
    found = {r['task_name']: r['metrics']['MASE'] for r in records}
    print(f'{folder}: ' + ', '.join(f'{k} {v:.4f}' for k, v in
                                    found.items())
          + f' ({time.time() - start:.0f} s)', flush=True)
    return found

  none = run('none')
  tasks = list(none)
  ratios, mase = {}, {}
  for setting in STAGE3:
    order, known, ridge, windows, gate = setting
    found = run(_name3(setting).replace(' ', '_'), order=order, known=known,
                ridge=ridge, windows=windows, gate=gate)
    mase[_name3(setting)] = found
    ratios[_name3(setting)] = [found[t] / none[t] for t in tasks]
  chosen, means, worst = choose3(ratios)
  lines = ['| setting | ' + ' | '.join(tasks) + ' | geometric mean | '
           'largest |', '|---' * (len(tasks) + 3) + '|']
  for name, values in ratios.items():
    mark = f'**{name}**' if name == chosen else name
    lines.append(f'| {mark} | ' + ' | '.join(f'{r:.3f}' for r in values)
                 + f' | {means[name]:.4f} | {worst[name]:.3f} |')
  lines.append('')
  lines.append('MASE without covariates: ' + ', '.join(
      f'{t} {none[t]:.4f}' for t in tasks) + f'. Chosen by the rule: '
               f'{chosen}.')
  text = '\n'.join(lines)
  common.report(_WORKDIR.value, 'stage3', text, dict(
      none=none, mase=mase, ratios=ratios, means=means, worst=worst,
      chosen=chosen))


def main(argv):
  del argv
  from ttm_jax.suites import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
  os.makedirs(_WORKDIR.value, exist_ok=True)
  tasks = tasks_lib.select(tasks_lib.load_suite('covariates'), _TASKS.value)
  if _STAGE.value == '3':
    stage3([t.name for t in tasks])
    return
  if _STAGE.value == '2':
    grid(tasks)
    return
  records, ratios = [], []
  for task in tasks:
    frame = long_frame(task, _DATA.value)
    record = dict(task=task.name, horizon=task.horizon,
                  windows=task.num_windows, series=int(frame['id'].nunique()),
                  covariates=list(task.covariates))
    for order in (None,) + ORDERS:
      start = time.time()
      report = score(task, frame, _CHECKPOINT.value, order)
      record[order or 'none'] = dict(mase=report['model']['mase'],
                                     mae=report['model']['mae'],
                                     seconds=round(time.time() - start, 1))
      record['seasonal_naive'] = report['seasonal_naive']['mase']
      print(f'{task.name} {order or "none"}: MASE '
            f'{report["model"]["mase"]:.4f} ({time.time() - start:.0f} s)',
            flush=True)
    records.append(record)
    ratios.append({o: record[o]['mase'] / record['none']['mase']
                   for o in ORDERS})
  chosen, means, wins = choose(ratios)
  lines = ['| task | h x windows | no covariates | xreg+ttm | ttm+xreg | '
           'seasonal naive |', '|---|---|---|---|---|---|']
  for record, ratio in zip(records, ratios):
    lines.append(
        f"| {record['task']} | {record['horizon']} x {record['windows']} | "
        f"{record['none']['mase']:.4f} | {record['xreg+ttm']['mase']:.4f} "
        f"({ratio['xreg+ttm']:.3f}) | {record['ttm+xreg']['mase']:.4f} "
        f"({ratio['ttm+xreg']:.3f}) | {record['seasonal_naive']:.4f} |")
  lines.append(f"| geometric mean of the ratio | | 1 | "
               f"{means['xreg+ttm']:.4f} | {means['ttm+xreg']:.4f} | |")
  lines.append('')
  lines.append(f'Tasks won: {wins}. Chosen by the rule: {chosen}.')
  text = '\n'.join(lines)
  common.report(_WORKDIR.value, 'order', text, dict(
      records=records, ratios=ratios, means=means, wins=wins,
      chosen=chosen))


if __name__ == '__main__':
  app.run(main)
