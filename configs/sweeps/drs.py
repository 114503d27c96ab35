r"""Ablation: diverse resolution sampling (DRS) off vs on: pretraining on
the corpus's sources as given, or with their lower-resolution copies
(prepare_corpus --drs). Zero-shot on ETTh1 and ETTm1 at horizon 96; 3
seeds.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/drs.py:corpus=CORPUS,data_dir=../shared/data/ltsf \
      --workdir W
"""

from configs.sweeps import common


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  variants = [{'data.corpus_drs': False, '_group': 'DRS off',
               '_baseline': True},
              {'data.corpus_drs': True, '_group': 'DRS on'}]
  return common.seeded(arg, variants)
