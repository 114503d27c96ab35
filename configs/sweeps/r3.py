r"""Ablation: IBM's r3 additions to TTM, each alone against the r2 shape
(granite-tsfm branch ttm-r3-release-mq2-merge; issue 22).

Variants (ttm_jax.models.presets.R3_ADDITIONS, over the tiny preset, RPT
off as in the other pretraining ablations):
  * r2 shape: the baseline, none of r3's additions;
  * decompose: r3's decomposed model (a trend and a residual TTM of the
    same shape on a robust-LOWESS split of the scaled context; about twice
    the parameters), with its three weighted losses;
  * register: 2 learned register tokens before the patches;
  * multi_scale: multi-scale patching (one embedding per 2**i average-pooled
    scale, the base norm on);
  * fft: 2 tokens from the top rFFT frequencies (embedded indices).
Each point pretrains on the prepared public corpus, then runs zero-shot on
ETTh1 and ETTm1 at horizon 96 (context 512), 3 seeds:

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/r3.py:corpus=CORPUS,data_dir=../shared/data/ltsf \
      --workdir W

`quick=true` runs every variant once, tiny (tests; 4 min on 2 CPU cores
shared with other work: about 30-60 s a point). Parameters at context 512,
horizon 96: r2 shape 152,368; decompose 304,736; register 162,600;
multi_scale 346,574 (63 patches instead of 32, so a larger head); fft
174,840. Measured (750 steps, 3 seeds):
docs/results/2026-12-02-r3-ablation.md.
"""

from configs.sweeps import common
from ttm_jax.models import presets

VARIANTS = ('decompose', 'register', 'multi_scale', 'fft')


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  variants = [{'_group': 'r2 shape', '_baseline': True}]
  for name in VARIANTS:
    variant = {f'model.arch.{field}': value
               for field, value in presets.R3_ADDITIONS[name].items()}
    variants.append(dict(variant, _group=name))
  return common.seeded(arg, variants)
