r"""Reproduces IBM's published TTM r2 table (context 512, horizon 96):
zero-shot and 5% few-shot test MSE on the seven LTSF benchmarks, beside
IBM's figures, with the difference, test windows and wall time per cell.

  .venv/bin/python -m experiments.paper_table --workdir /tmp/ttm_table \
      [--data_dir ../shared/data/ltsf] [--checkpoint ...] [--modes zs,fs5]

Cells whose data file is absent are skipped (and listed). Each cell runs in
its own sub-workdir, exactly as the per-cell commands would:
  python -m experiments.evaluate --config configs/zero_shot.py:data=D ...
  python -m experiments.train --config configs/few_shot.py:data=D,fraction=0.05
Writes W/table.md and W/table.csv.
"""

import csv
import json
import os
import time

from absl import app
from absl import flags

from configs import common as config_common
from configs import few_shot
from configs import zero_shot
from experiments import common
from ttm_jax import train
from ttm_jax.data import sources

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', config_common.DATA_DIR,
                                'LTSF data directory.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', config_common.R2_CHECKPOINT,
                                  'IBM r2 512-96 checkpoint (folder or hub).')
_MODES = flags.DEFINE_list('modes', ['zs', 'fs5'], 'zs and/or fs5.')
_DATASETS = flags.DEFINE_list(
    'datasets', ['etth1', 'etth2', 'ettm1', 'ettm2', 'weather', 'electricity',
                 'traffic'], 'Datasets.')

# IBM's combined_results-granite-r2.csv, r2 512-96 (TTM_SPEC.md 6.3).
IBM = {
    'etth1': (0.363, 0.362), 'etth2': (0.276, 0.273),
    'ettm1': (0.338, 0.341), 'ettm2': (0.176, 0.176),
    'weather': (0.150, 0.150), 'electricity': (0.180, 0.145),
    'traffic': (0.518, 0.410),
}


def _cell(dataset, mode, workdir):
  if mode == 'zs':
    config = zero_shot.get_config(f'data={dataset}')
  else:
    config = few_shot.get_config(f'data={dataset},fraction=0.05')
  with config.unlocked():
    config.checkpoint = _CHECKPOINT.value
    config.data_dir = _DATA_DIR.value
  common.record(config, workdir)
  start = time.time()
  (record,) = train.train_and_evaluate(config, workdir)
  record['wall_seconds'] = round(time.time() - start, 1)
  return record


def main(argv):
  del argv
  common.setup()
  os.makedirs(_WORKDIR.value, exist_ok=True)
  rows, skipped = [], []
  for dataset in _DATASETS.value:
    spec = sources.REGISTRY[dataset]
    try:
      sources.locate(spec, _DATA_DIR.value)
    except sources.DataError as e:
      skipped.append(dataset)
      print(f'SKIP {dataset}: {e}', flush=True)
      continue
    for mode in _MODES.value:
      workdir = os.path.join(_WORKDIR.value, f'{dataset}_{mode}')
      record = _cell(dataset, mode, workdir)
      target = IBM[dataset][0 if mode == 'zs' else 1]
      rows.append(dict(dataset=dataset, mode=mode, mse=record['mse'],
                       ibm=target, diff=record['mse'] - target,
                       mae=record['mae'], num_windows=record['num_windows'],
                       wall_seconds=record['wall_seconds']))
      print(f'{dataset} {mode}: mse {record["mse"]:.4f} (IBM {target:.3f}, '
            f'{record["mse"] - target:+.4f}) in {record["wall_seconds"]} s',
            flush=True)
  with open(os.path.join(_WORKDIR.value, 'table.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ['none'])
    writer.writeheader()
    writer.writerows(rows)
  lines = ['| dataset | setting | test MSE | IBM | diff | test windows | '
           'wall time |', '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['dataset']} | {'zero-shot' if r['mode'] == 'zs' else '5% few-shot'} "
                 f"| {r['mse']:.4f} | {r['ibm']:.3f} | {r['diff']:+.4f} | "
                 f"{r['num_windows']} | {r['wall_seconds']:.0f} s |")
  if skipped:
    lines.append('')
    lines.append(f'Skipped (data file absent): {", ".join(skipped)}.')
  table = '\n'.join(lines) + '\n'
  with open(os.path.join(_WORKDIR.value, 'table.md'), 'w') as f:
    f.write(table)
  with open(os.path.join(_WORKDIR.value, 'table.json'), 'w') as f:
    json.dump(dict(rows=rows, skipped=skipped), f, indent=2)
  print(table)


if __name__ == '__main__':
  app.run(main)
