r"""Few-shot fraction: 5, 10, 25, 50 and 100% of the training data, head
probing IBM's r2 512-96 (IBM's recipe: LR finder, one-cycle, early stopping
on validation), ETTh1 and ETTm1 at horizon 96, 3 seeds; the change is against
zero-shot.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/fewshot_fraction.py:checkpoint=R2,data_dir=DATA \
      --workdir W

`max_epochs=E` caps the epochs (IBM: 50, patience 10), for CPU budgets;
`data=etth1` (names joined by '+') picks the benchmarks.

Measured (2 CPU cores, max_epochs=3, 32 points, 49 min of point time):
test MSE vs zero-shot, ETTh1 +0.2% (5%) ... -1.2% (100%), ETTm1 +5.6% (5%)
... -13.4% (100%); with max_epochs=10,data=etth1 (16 points, 30 min):
ETTh1 -0.2% (5%) ... -0.7% (100%). The tables:
docs/results/2026-11-25-finetune-from-r2.md.
"""

from configs.sweeps import common

FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)


def _parse(arg):
  return common.parse_few_shot(arg, data='etth1+ettm1')


def get_config(arg=None):
  return common.few_shot_base(_parse(arg))


def get_sweep(arg=None):
  arg = _parse(arg)
  fractions = FRACTIONS[:2] if arg.quick else FRACTIONS
  datasets = arg.data.split('+')[:1 if arg.quick else None]
  points = []
  for name in datasets:
    points.append(common.zero_shot_point(arg, name))
    for fraction in fractions:
      for seed in range(1 if arg.quick else arg.seeds):
        points.append({
            'data.name': name,
            'data.fewshot_fraction': fraction if fraction < 1 else 0.0,
            'seed': seed, 'data.seed': seed,
            '_name': f'{name}_{int(fraction * 100)}pct_seed{seed}',
            '_group': f'{name} {int(fraction * 100)}%', '_block': name})
  return points
