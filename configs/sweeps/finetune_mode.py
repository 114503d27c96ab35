r"""Fine-tuning mode on IBM's r2 512-96, 5% of the data: zero-shot vs head
probing (backbone frozen) vs full fine-tuning, ETTh1 and ETTm1 at horizon
96, 3 seeds (zero-shot is deterministic: one run).

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/finetune_mode.py:checkpoint=R2,data_dir=DATA \
      --workdir W

Measured (2 CPU cores, max_epochs=10, 14 points, 30 min of point time):
test MSE vs zero-shot, head probing ETTh1 -0.2%, ETTm1 +0.6%; full
fine-tuning -0.1%, +3.8%; the table:
docs/results/2026-11-25-finetune-from-r2.md.
"""

from configs.sweeps import common


def _parse(arg):
  return common.parse_few_shot(arg, fraction=0.05)


def get_config(arg=None):
  arg = _parse(arg)
  return common.few_shot_base(arg, fraction=arg.fraction)


def get_sweep(arg=None):
  arg = _parse(arg)
  points = []
  for name in (('etth1',) if arg.quick else ('etth1', 'ettm1')):
    points.append(common.zero_shot_point(arg, name))
    for mode, frozen in (('head probing', ('backbone/.*',)),
                         ('full fine-tuning', ())):
      for seed in range(1 if arg.quick else arg.seeds):
        points.append({
            'data.name': name, 'frozen': frozen, 'seed': seed,
            'data.seed': seed,
            '_name': f'{name}_{mode.split()[0]}_seed{seed}',
            '_group': f'{name} {mode}', '_block': name})
  return points
