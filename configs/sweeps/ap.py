r"""Ablation: adaptive patching (AP) levels 0 vs 3 (TTM paper, Table 7:
AP helps by a few percent at horizon 96).

Each point pretrains a small TTM on the prepared corpus, then runs
zero-shot on ETTh1 and ETTm1 at horizon 96 (context 512), 3 seeds.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/ap.py:corpus=CORPUS,data_dir=../shared/data/ltsf \
      --workdir W

Measured: docs/results/2026-11-25-ablations-v1-corpus.md (2 CPU cores).
"""

from configs.sweeps import common


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  variants = [
      {'model.arch.adaptive_patching_levels': 0, '_group': 'AP 0',
       '_baseline': True},
      {'model.arch.adaptive_patching_levels': 3, '_group': 'AP 3'},
  ]
  return common.seeded(arg, variants)
