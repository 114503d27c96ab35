r"""The validation grid behind `recipe=leaderboard`'s settings: every
GIFT-Eval configuration held locally, on its validation windows (each
series cut at its first test cutoff, the test windows moved back before
it: `--config.split=validation`), never on test.

  .venv/bin/python -m benchmarks.leaderboard_grid \
      --checkpoint ../shared/checkpoints/fraware__ChronoAPI__root \
      --data_dir ../shared/data/gift_eval --out /tmp/leaderboard_grid

Per configuration the checkpoint is fine-tuned once per fine-tune setting
(`--epochs`, `--max_windows`: IBM's GIFT recipe in memory) and every
candidate's forecasts are cached, so each combination setting (the
candidates, blend or select, per series or dataset, the intervals and
their scale) costs only its combination. Each setting's score is the
geometric mean over the configurations of MASE[0.5] and CRPS relative to
GIFT-Eval's seasonal naive on the same windows, as the leaderboard pools
them. The rule, fixed before the grid runs: the lowest geometric mean of
(relative MASE x relative CRPS)^(1/2); ties within 0.002 go to the simpler
setting (the earlier row). Round 1 (`--round 1`): candidates, blend or
select, intervals and backtest windows; round 2, declared after round 1
chose pooled intervals over 8 backtest windows and before it ran, with the
same rule: the intervals' width (x1.0, x1.25) and 8 or 16 windows. Round 3
(`--round 3`), declared after round 2 chose x1.0 over 16 windows and the
one test look of that choice took 307 s of the 15 minutes the recipe may
take (docs/results/2026-12-07-gift-eval-leaderboard.md): the fine-tune's
budget, with round 2's combination fixed, one run per budget
(`--max_windows`, `--epochs`): (500, 5) as in rounds 1-2, (2000, 5) and
(500, 20); the same rule, ties within 0.002 to the cheaper budget (that
order); a budget whose test run would take over 15 minutes alone is out.
The table is printed and written to <out>/grid.md, the records to
<out>/records.json.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import os
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import common

_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'The TTM (IBM r2).')
_DATA_DIR = flags.DEFINE_string('data_dir', '', 'GIFT-Eval configurations.')
_OUT = flags.DEFINE_string('out', '', 'Where the table and records go.')
_TASKS = flags.DEFINE_list('tasks', [], 'Only these configurations.')
_EPOCHS = flags.DEFINE_integer('epochs', 5, "The fine-tune's epochs.")
_MAX_WINDOWS = flags.DEFINE_integer('max_windows', 500, 'Training windows.')
_SPLIT = flags.DEFINE_enum('split', 'validation', ['validation', 'test'],
                           'test only for the chosen setting, once.')
_ONLY = flags.DEFINE_list('only', [], 'Only these settings, by name.')
_LR = flags.DEFINE_float('lr', 1e-4, "The fine-tune's peak learning rate.")
_ROUND = flags.DEFINE_integer('round', 1, 'The grid round (settings()).')


def _cached(forecaster):
  """The forecaster with its outputs remembered per input (the backtests
  and forecasts every combination asks for again)."""
  memory = {}

  def fn(histories, horizon, freq, levels, season):
    digest = hashlib.sha1()
    for h in histories:
      digest.update(np.asarray(h, np.float64).tobytes())
      digest.update(b'|')
    key = (digest.hexdigest(), horizon, tuple(levels), season)
    if key not in memory:
      memory[key] = forecaster.fn(histories, horizon, freq, levels, season)
    return memory[key]
  return dataclasses.replace(forecaster, fn=fn)


def settings():
  """(name, candidates, select.Recipe options) of the grid, simplest
  first."""
  from ttm_jax.inference import select  # pylint: disable=g-import-not-at-top
  out = [('zero_shot alone', None), ('finetuned alone', None)]
  everything = ('finetuned', 'zero_shot', 'gift_seasonal_naive',
                select.WEEKLY, 'drift')
  if _ROUND.value == 3:  # The fine-tune's budget (flags), round 2's choice.
    return out[1:] + [('ft+zs+sn+week+drift select pooled x1.0 w16',
                       select.Recipe(everything, 'select', 'series', 16,
                                     1.0, 'pooled', 1.0))]
  if _ROUND.value == 1:  # Intervals and backtest windows.
    bases = {'ft+sn': ('finetuned', 'gift_seasonal_naive'),
             'ft+zs+sn+week': everything[:4],
             'ft+zs+sn+week+drift': everything}
    options = (('normal', 1.25, 3), ('pooled', 1.0, 3), ('pooled', 1.0, 8))
  else:  # Declared after round 1 chose pooled intervals over 8 windows.
    bases = {'ft+sn': ('finetuned', 'gift_seasonal_naive'),
             'ft+zs+sn+week+drift': everything}
    options = (('pooled', 1.0, 8), ('pooled', 1.25, 8), ('pooled', 1.0, 16),
               ('pooled', 1.25, 16))
  for (label, candidates), mode, (intervals, scale, windows) in (
      itertools.product(bases.items(), ('blend', 'select'), options)):
    recipe = select.Recipe(candidates, mode, 'series', windows, 1.0,
                           intervals, scale)
    out.append((f'{label} {mode} {intervals} x{scale} w{windows}', recipe))
  return out


def main(argv):
  del argv
  from ttm_jax.inference import forecaster as forecaster_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import select  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import benchmark  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import finetuned  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import task_data  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
  os.makedirs(_OUT.value, exist_ok=True)
  # The suite's baseline is the same for every setting: computed once per
  # configuration (GIFT-Eval's seasonal naive reads whole histories).
  baselines, suite_baseline = {}, benchmark.suite_baseline

  def cached_baseline(task):
    if task.name not in baselines:
      baselines[task.name] = _cached(suite_baseline(task))
    return baselines[task.name]
  benchmark.suite_baseline = cached_baseline
  model = forecaster_lib.load(_CHECKPOINT.value)
  pretrained = ['ibm-granite/granite-timeseries-ttm-r2']
  zero_shot = forecaster_lib.model_forecaster(
      model, quantiles='insample', pretrained_on=pretrained)
  tuner = finetuned.finetune_forecaster(
      model, quantiles='insample', pretrained_on=pretrained,
      max_windows=_MAX_WINDOWS.value, num_epochs=_EPOCHS.value,
      learning_rate=_LR.value)
  grid = [s for s in settings() if not _ONLY.value or s[0] in _ONLY.value]
  scores = {name: {} for name, _ in grid}
  seconds = {}
  for task in tasks_lib.load_suite('gift_eval'):
    if _TASKS.value and task.name not in _TASKS.value:
      continue
    series = task_data.read(task, _DATA_DIR.value)
    if isinstance(series, task_data.Missing):
      continue
    start = time.time()
    split_task, split_series = benchmark.holdout(task, series, _SPLIT.value)
    windows = tasks_lib.windows(split_task, split_series.values,
                                split_series.timestamps, split_series.freq)
    tuned = _cached(tuner.prepare(benchmark.task_histories(windows),
                                  split_task.horizon, split_series.freq,
                                  task.name))
    models = {'finetuned': tuned, 'zero_shot': _cached(zero_shot)}
    for name, recipe in grid:
      if recipe is None:  # A candidate alone, IBM's in-sample intervals.
        made = dict(models, ft_ibm=tuned)[name.split()[0]]
      else:
        made = select.forecaster({k: v for k, v in models.items()
                                  if k in recipe.candidates}, recipe)
      record = benchmark.run_task(task, series, made, _SPLIT.value)
      ours, base = record['gift'], record['gift_seasonal_naive']
      scores[name][task.name] = (
          ours['MASE[0.5]'] / base['MASE[0.5]'],
          ours['mean_weighted_sum_quantile_loss']
          / base['mean_weighted_sum_quantile_loss'])
    seconds[task.name] = round(time.time() - start, 1)
    print(f'{task.name}: {seconds[task.name]} s ({tuned.notes})',
          flush=True)
  with open(os.path.join(_OUT.value, 'records.json'), 'w') as f:
    json.dump(dict(scores=scores, seconds=seconds), f, indent=2)
  tasks = sorted(next(iter(scores.values())))
  lines = ['| setting | geometric MASE | geometric CRPS | score | ' +
           ' | '.join(tasks) + ' |', '|---' * (len(tasks) + 4) + '|']
  best = None
  for name, per_task in scores.items():
    mase = math.exp(np.mean([math.log(per_task[t][0]) for t in tasks]))
    crps = math.exp(np.mean([math.log(per_task[t][1]) for t in tasks]))
    score = math.sqrt(mase * crps)
    if best is None or score < best[1] - 0.002:
      best = (name, score)
    lines.append(f'| {name} | {mase:.3f} | {crps:.3f} | {score:.3f} | ' +
                 ' | '.join(f'{per_task[t][0]:.2f}/{per_task[t][1]:.2f}'
                            for t in tasks) + ' |')
  lines.append(f'\nChosen ({_SPLIT.value}): {best[0]}; seconds per '
               f'configuration: {seconds}')
  text = '\n'.join(lines)
  common.report(_OUT.value, 'grid', text)


if __name__ == '__main__':
  app.run(main)
