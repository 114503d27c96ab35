r"""Chronos Benchmark II's five Monash tasks forecast through the forecasting
API (`ttm_jax.forecast`, one call per task, as a new user would), scored
with fev's MASE: the API's default inputs, the reference's (IBM's pipeline:
fev's published ttm-r2 row) and any other preset.

  .venv/bin/python -m benchmarks.api_on_monash \
      --checkpoint ../shared/checkpoints/fraware__ChronoAPI__root \
      --data_dir ../shared/data/monash --inputs default,reference

Each task's histories become one long DataFrame (an id column, timestamps
at the task's frequency ending at the series' last observed step, the
target); only each history's last 512 values are passed (the model reads
no more, and every input rule here looks no further back: no history of
these tasks has a missing value), which keeps yearly timestamps inside
pandas' range. The windows, the truth and fev's MASE (the seasonal error
of each whole past) are the benchmark runner's.
"""

import time

from absl import app
from absl import flags
import numpy as np
import pandas as pd

_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'The TTM.')
_DATA_DIR = flags.DEFINE_string('data_dir', '', 'The Monash .tsf files.')
_INPUTS = flags.DEFINE_list('inputs', ['default', 'reference'],
                            'Input presets (ttm_jax.inference.inputs).')
_TASKS = flags.DEFINE_list('tasks', [
    'm4_yearly', 'monash_tourism_monthly', 'monash_tourism_quarterly',
    'monash_tourism_yearly', 'monash_m1_yearly'], 'Chronos II tasks.')
KEEP = 512
FREQS = {'m4_yearly': 'YS', 'monash_tourism_monthly': 'MS',
         'monash_tourism_quarterly': 'QS', 'monash_tourism_yearly': 'YS',
         'monash_m1_yearly': 'YS'}


def task_frame(pasts, freq: str) -> pd.DataFrame:
  """A long frame of the pasts' last KEEP values, each series ending at the
  same date."""
  end = pd.Timestamp('2200-01-01')
  frames = []
  for i, past in enumerate(pasts):
    values = np.asarray(past, np.float64)[-KEEP:]
    stamps = pd.date_range(end=end, periods=len(values), freq=freq)
    frames.append(pd.DataFrame({'id': f's{i:05d}', 'time': stamps,
                                'y': values}))
  return pd.concat(frames, ignore_index=True)


def mase(task_name: str, inputs: str):
  """(fev's MASE of the API's forecasts of the task, seconds)."""
  import ttm_jax  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import task_data  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import task_metrics  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import tasks as tasks_lib  # pylint: disable=g-import-not-at-top
  [task] = tasks_lib.select(tasks_lib.load_suite('chronos_ii'), [task_name])
  series = task_data.read(task, _DATA_DIR.value)
  task = task.with_windows([len(v) for v in series.values])
  [window] = tasks_lib.windows(task, series.values, series.timestamps,
                               series.freq)
  frame = task_frame(window.pasts, FREQS[task_name])
  start = time.time()
  out = ttm_jax.forecast(frame, timestamp_column='time', id_columns=['id'],
                         horizon=task.horizon, checkpoint=_CHECKPOINT.value,
                         freq=FREQS[task_name], inputs=inputs)
  seconds = time.time() - start
  point = out.pivot(index='id', columns='time', values='y').to_numpy()
  metrics = task_metrics.fev_window(
      window.futures, point, point[..., None], window.pasts,
      task.seasonality, (0.5,))
  return metrics['MASE'], seconds


def main(argv):
  del argv
  print('| task | ' + ' | '.join(_INPUTS.value) + ' |')
  print('|---' * (len(_INPUTS.value) + 1) + '|')
  for name in _TASKS.value:
    cells = []
    for inputs in _INPUTS.value:
      value, seconds = mase(name, inputs)
      cells.append(f'{value:.4f} ({seconds:.1f} s)')
    print(f'| {name} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  app.run(main)
