r"""Few-shot head probing of a pretrained TTM on a benchmark, IBM's recipe
(TTM_SPEC.md 4.3; the recipe itself is `ttm_jax.recipes.few_shot`):
backbone frozen, head dropout 0.7 for ETT, batch 64 (32 Electricity, 8
Traffic), LR finder, one-cycle AdamW, up to 50 epochs with early stopping
(patience 10) on validation loss, best model tested, seed 42.

  .venv/bin/python -m experiments.train \
      --config configs/few_shot.py:data=etth1,fraction=0.05 --workdir W

Targets (5%, horizon 96): ETTh1 0.362, ETTh2 0.273, ETTm1 0.341, ETTm2
0.176, Weather 0.150, Electricity 0.145, Traffic 0.410.
Measured (2 CPU cores, seed 42): ETTh1 5% 0.3616 (244 s); ETTm1 5% 0.3403
(762 s; LR finder 2.5e-4, the epoch-1 validation minimum kept; before
540f26b changed the epoch shuffle the finder picked 1.1e-3 and the run
kept epoch 8, 0.3263: docs/results/2026-12-07-one-path-remeasured.md, and
docs/results/2026-11-24-paper-table.md on this cell's two minima).
`seed=S` sets the dropout and shuffling seeds;
`--config.evals.test.every_steps=0` also scores the test split at every
validation (analysis only: selection stays on validation).

`conformal=true` also scores the test split with split-conformal intervals
around the point forecasts (calibrated on the last 5,000 validation
windows; results.json's `test_conformal` record).

`quantiles=0.1:0.9` gives the model a multi-quantile head at the levels
0.1, 0.2, ..., 0.9 (`lo:hi:step` for another step): new weights on the
point model, trained with the pinball loss averaged over the levels; the
best model is chosen on validation WQL, and the results add wql, msis and
coverage_<p> (beside seasonal naive's).

r3 (ibm-research/ttm-r3): `checkpoint=ibm-research/ttm-r3,revision=
512-96-dec-512-r3,context=512` (a release of ttm_jax.models.zoo); head
probing freezes the backbone of each branch of a decomposed model. r3
options that keep the weights' shapes change through
--config.model.overrides.<field>=... (trend_loss_weight,
residual_loss_weight, joint_loss_weight, combine_quantiles_via_variance,
penalize_large_width_ratio, width_penalty_mode, light_mode, head_dropout).
"""

from configs import common
from ttm_jax import recipes


def get_config(arg=None):
  arg = common.parse_arg(arg, data='etth1', fraction=0.05, context=512,
                         horizon=96, checkpoint=common.R2_CHECKPOINT,
                         revision='', full=False, quick=False, seed=42,
                         quantiles='', conformal=False)
  return recipes.few_shot(
      arg.checkpoint, data=arg.data, fraction=arg.fraction,
      context=arg.context, horizon=arg.horizon, full=arg.full, seed=arg.seed,
      revision=arg.revision,
      quantile_levels=common.quantile_levels(arg.quantiles),
      conformal=arg.conformal, quick=arg.quick)
