r"""Ablation: model size, the tiny / small / r2_512 shapes (TTM-Q/B-like
sizes at context 512), pretrained the same way, zero-shot on ETTh1 and
ETTm1 at horizon 96; 3 seeds.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/size.py:corpus=CORPUS,data_dir=../shared/data/ltsf \
      --workdir W
"""

from configs.sweeps import common


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  presets = ('tiny', 'small') if arg.quick else ('tiny', 'small', 'r2_512')
  variants = [{'model.preset': p, '_group': p, '_baseline': p == 'tiny'}
              for p in presets]
  return common.seeded(arg, variants)
