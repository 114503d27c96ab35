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
"""

import json
import math
import os
import time

from absl import app
from absl import flags

_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'The TTM (IBM r2 512-96).')
_DATA = flags.DEFINE_string('data_dir', '', 'The covariate suite\'s data '
                            '(scripts/make_covariate_suite.py --out).')
_WORKDIR = flags.DEFINE_string('workdir', '', 'Where records go.')
_TASKS = flags.DEFINE_list('tasks', [], 'Only these tasks (names).')
_STAGE = flags.DEFINE_enum('stage', '1', ['1', '2'], '1: the order; 2: the '
                           'grid of order, ridge and time features.')

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
  print(text, flush=True)
  with open(os.path.join(_WORKDIR.value, 'grid.md'), 'w') as f:
    f.write(text + '\n')
  with open(os.path.join(_WORKDIR.value, 'grid.json'), 'w') as f:
    json.dump(dict(records=records, ratios=ratios, means=means,
                   chosen=_name(chosen)), f, indent=2)


def main(argv):
  del argv
  from ttm_jax.suites import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
  os.makedirs(_WORKDIR.value, exist_ok=True)
  tasks = tasks_lib.select(tasks_lib.load_suite('covariates'), _TASKS.value)
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
  print(text, flush=True)
  with open(os.path.join(_WORKDIR.value, 'order.md'), 'w') as f:
    f.write(text + '\n')
  with open(os.path.join(_WORKDIR.value, 'order.json'), 'w') as f:
    json.dump(dict(records=records, ratios=ratios, means=means, wins=wins,
                   chosen=chosen), f, indent=2)


if __name__ == '__main__':
  app.run(main)
