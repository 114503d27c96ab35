r"""Zero-shot evaluation time and peak memory on Electricity- and
Traffic-sized data, through the same command as the paper table.

The real files are not needed: this writes CSVs of the real files' shape
(Electricity 26,304 rows x 321 series, Traffic 17,544 x 862; hourly) under
the registry's names into a scratch folder, then runs
`configs/zero_shot.py:data=<name>` through the engine on them. The MSE of
synthetic data means nothing; the window count, wall time, series per
second and peak resident memory are what it measures. With the real files,
`experiments.paper_table` reports the same timings on real values.

  .venv/bin/python -m benchmarks.bench_large_eval [--datasets electricity,traffic]
      [--scratch /tmp/ttm_large] [--checkpoint ../shared/checkpoints/...]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from benchmarks import common
from ttm_jax.data import sources

SHAPES = {'electricity': (26304, 321), 'traffic': (17544, 862)}


def write_csv(name: str, folder: str) -> str:
  """A seasonal random-walk table shaped like the real `name` file."""
  rows, columns = SHAPES[name]
  spec = sources.REGISTRY[name]
  path = os.path.join(folder, spec.subdir, spec.file)
  if os.path.exists(path):
    return path
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(0)
  t = np.arange(rows)[:, None]
  values = (np.cumsum(rng.normal(size=(rows, columns)), axis=0) * 0.05 +
            np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6, columns)) +
            rng.normal(scale=0.1, size=(rows, columns))).astype(np.float32)
  frame = pd.DataFrame(values, columns=[str(c) for c in range(columns)])
  frame.insert(0, 'date', pd.date_range('2016-07-01', periods=rows,
                                        freq='h').strftime('%Y-%m-%d %H:%M:%S'))
  frame.to_csv(path, index=False, float_format='%.4f')
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--datasets', default='electricity,traffic')
  parser.add_argument('--scratch', default='/tmp/ttm_large_eval')
  parser.add_argument('--checkpoint', default=common.R2_CHECKPOINT)
  args = parser.parse_args()
  report = []
  for name in args.datasets.split(','):
    path = write_csv(name, args.scratch)
    workdir = os.path.join(args.scratch, f'{name}_zs')
    command = [sys.executable, '-m', 'experiments.evaluate', '--config',
               f'configs/zero_shot.py:data={name}', '--workdir', workdir,
               f'--config.data_dir={args.scratch}',
               f'--config.checkpoint={args.checkpoint}']
    start = time.time()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)  # This child's own peak RSS.
    wall = time.time() - start
    if os.waitstatus_to_exitcode(status):
      raise SystemExit(f'{" ".join(command)} failed')
    peak_mb = usage.ru_maxrss / 1024
    (record,) = json.load(open(os.path.join(workdir, 'results.json')))
    rows, columns = SHAPES[name]
    series = record['num_windows'] * columns
    report.append(dict(
        dataset=name, shape=f'{rows} x {columns}',
        file_mb=round(os.path.getsize(path) / 2**20),
        test_windows=record['num_windows'], test_series=series,
        eval_seconds=record['seconds'], command_seconds=round(wall, 1),
        series_per_second=round(series / record['seconds']),
        peak_rss_mb=round(peak_mb)))
    print(json.dumps(report[-1]), flush=True)
  with open(os.path.join(args.scratch, 'report.json'), 'w') as f:
    json.dump(report, f, indent=1)


if __name__ == '__main__':
  main()
