r"""Reproduces IBM's published TTM r2 table (context 512, horizon 96):
zero-shot and 5% few-shot test MSE on the seven LTSF benchmarks, beside
IBM's figures, with the difference, test windows and wall time per cell.

  .venv/bin/python -m experiments.paper_table --workdir /tmp/ttm_table \
      [--data_dir ../shared/data/ltsf] [--checkpoint ...] [--modes zs,fs5]

Cells whose data file is absent are skipped (and listed). Each cell runs in
its own sub-workdir, exactly as the per-cell commands would:
  python -m experiments.evaluate --config configs/zero_shot.py:data=D ...
  python -m experiments.train --config configs/few_shot.py:data=D,fraction=0.05
With --seeds 42,43,44 each few-shot cell is run per seed (`seed=S` in the
few-shot config) and reported as the mean with its range.
Writes W/table.md, W/table.csv and W/table.json.
"""

import csv
import json
import os
import time

from absl import flags

from configs import common as config_common
from configs import few_shot
from configs import zero_shot
from experiments import common
from ttm_jax import train
from ttm_jax.data import sources

_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', '', 'LTSF data directory '
                                '(empty: $TTM_DATA_DIR).')
_CHECKPOINT = flags.DEFINE_string('checkpoint', config_common.R2_CHECKPOINT,
                                  'IBM r2 512-96 checkpoint (folder or hub).')
_MODES = flags.DEFINE_list('modes', ['zs', 'fs5'], 'zs and/or fs5.')
_SEEDS = flags.DEFINE_list(
    'seeds', ['42'], 'Few-shot seeds (IBM: 42). Several give the mean and '
    'the spread of each few-shot cell; each seed is its own sub-workdir.')
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


def _cell(dataset, mode, workdir, seed=42):
  if mode == 'zs':
    config = zero_shot.get_config(f'data={dataset}')
  else:
    config = few_shot.get_config(f'data={dataset},fraction=0.05,seed={seed}')
  with config.unlocked():
    config.checkpoint = _CHECKPOINT.value
    config.data_dir = _DATA_DIR.value
  start = time.time()
  (record,) = train.train_and_evaluate(config, workdir)
  record['wall_seconds'] = round(time.time() - start, 1)
  return record


@common.main_wrapper
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
      seeds = [42] if mode == 'zs' else [int(x) for x in _SEEDS.value]
      records = []
      for seed in seeds:
        name = f'{dataset}_{mode}' + (f'_seed{seed}' if len(seeds) > 1
                                      else '')
        records.append(_cell(dataset, mode, os.path.join(_WORKDIR.value,
                                                         name), seed))
      mses = [r['mse'] for r in records]
      mse = float(sum(mses) / len(mses))
      target = IBM[dataset][0 if mode == 'zs' else 1]
      training = [r.get('training', {}) for r in records]
      rows.append(dict(
          dataset=dataset, setting=mode, mse=mse, ibm=target, diff=mse - target,
          mse_min=min(mses), mse_max=max(mses), seeds=len(seeds),
          mae=float(sum(r['mae'] for r in records) / len(records)),
          num_windows=records[0]['num_windows'],
          learning_rate=' '.join(f"{t['learning_rate']:.3g}"
                                 for t in training if t),
          best_step=' '.join(str(t['best_step']) for t in training if t),
          wall_seconds=round(sum(r['wall_seconds'] for r in records), 1)))
      print(f'{dataset} {mode}: mse {mse:.4f} (IBM {target:.3f}, '
            f'{mse - target:+.4f}) in {rows[-1]["wall_seconds"]} s',
            flush=True)
  with open(os.path.join(_WORKDIR.value, 'table.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ['none'])
    writer.writeheader()
    writer.writerows(rows)
  lines = ['| dataset | setting | test MSE | IBM | diff | test windows | '
           'wall time | LR found | best step |',
           '|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    mse = f"{r['mse']:.4f}"
    if r['seeds'] > 1:
      mse += f" ({r['mse_min']:.4f}-{r['mse_max']:.4f}, {r['seeds']} seeds)"
    setting = 'zero-shot' if r['setting'] == 'zs' else '5% few-shot'
    lines.append(f"| {r['dataset']} | {setting} | {mse} | {r['ibm']:.3f} | "
                 f"{r['diff']:+.4f} | {r['num_windows']} | "
                 f"{r['wall_seconds']:.0f} s | {r['learning_rate'] or '-'} | "
                 f"{r['best_step'] or '-'} |")
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
  common.run(main)
