r"""The paper's pretraining ablations in one sweep, one factor at a time
against a shared baseline: adaptive patching (AP), diverse resolution
sampling (DRS), resolution prefix tuning (RPT) and size.

The baseline is the `tiny` preset as the other pretraining ablations run
it (AP 2 levels, the corpus's DRS copies used, RPT off); each other group
changes one thing:
  * AP 0 and AP 3: adaptive patching levels (paper, Table 7);
  * DRS off: only the sources as given, no lower-resolution copies;
  * RPT on: resolution prefix tuning (a learned frequency token);
  * small: the next size up (ttm_jax.models.presets: P 32, D 96, 2 layers).
Each point pretrains on the prepared corpus, then runs zero-shot on ETTh1
and ETTm1 at horizon 96 (context 512); 3 seeds. Sharing the baseline
halves the points of ap.py + drs.py + rpt.py + size.py (whose baselines
are this same run, or differ from it in one field), so the ablation fits
a larger corpus at the same budget:

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/factors.py:corpus=CORPUS,data_dir=../shared/data/ltsf,steps=500 \
      --workdir W

Measured on the v2 public corpus + KernelSynth series:
docs/results/2026-12-03-factors-ablation.md.
"""

from configs.sweeps import common


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  variants = [
      {'_group': 'tiny (AP 2, DRS on, RPT off)', '_baseline': True},
      {'model.arch.adaptive_patching_levels': 0, '_group': 'AP 0'},
      {'model.arch.adaptive_patching_levels': 3, '_group': 'AP 3'},
      {'data.corpus_drs': False, '_group': 'DRS off'},
      {'model.arch.resolution_prefix_tuning': True, '_group': 'RPT on'},
      {'model.preset': 'small', '_group': 'small'},
  ]
  return common.seeded(arg, variants)
