r"""Ablation: resolution prefix tuning (RPT) off vs on, at a short context
(96, horizon 24: the paper's short-context study, where RPT helps most) and
at context 512 (horizon 96). Pretrain on the corpus, zero-shot on ETTh1 and
ETTm1; 3 seeds.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/rpt.py:corpus=CORPUS,data_dir=../shared/data/ltsf \
      --workdir W
"""

from configs.sweeps import common
from ttm_jax.workbench import sweeps

SETTINGS = ((96, 24), (512, 96))


def get_config(arg=None):
  return common.pretrain_base(common.parse(arg))


def get_sweep(arg=None):
  arg = common.parse(arg)
  variants = []
  for context, horizon in SETTINGS:
    for rpt in (False, True):
      variants.append({
          'context_length': min(context, 64) if arg.quick else context,
          'prediction_length': min(horizon, 16) if arg.quick else horizon,
          'model.arch.resolution_prefix_tuning': rpt,
          '_group': f'context {context}, RPT {"on" if rpt else "off"}',
          '_block': f'context {context}', '_baseline': not rpt})

  def stages(variant):
    return [sweeps.stage('pretrain')] + common.zero_shot_stages(
        arg, variant['context_length'], variant['prediction_length'])

  if arg.quick:  # One context is enough to exercise it.
    variants = variants[2:]
  return common.seeded(arg, variants, stages)
