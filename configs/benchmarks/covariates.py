r"""The covariate suite (ttm_jax/suites/files/covariates.yaml: five fev tasks
on public data with real covariates), each task as fev defines and scores
it (SQL, MASE, WAPE, WQL), seasonal naive beside, with the tasks'
covariates by default (covariates=use; covariates=ignore gives the rows
without them).

  .venv/bin/python scripts/make_covariate_suite.py \
      --source ../shared/data/extra --out /tmp/covariates
  R2=../shared/checkpoints/fraware__ChronoAPI__root
  .venv/bin/python -m experiments.benchmark --config \
      configs/benchmarks/covariates.py:checkpoint=$R2,data_dir=/tmp/covariates \
      --workdir W                 # zero-shot with covariates
  ...:checkpoint=$R2,covariates=ignore,...            # zero-shot without
  ...:checkpoint=$R2,finetune=true,...                # fine-tuned with
  ...:checkpoint=$R2,finetune=true,covariates=ignore  # fine-tuned without
  ...:baseline=covariate_regression,...               # regression only
  ...:baseline=seasonal_naive,...                     # seasonal naive

Arguments as configs/benchmarks/chronos_ii.py (`ttm_jax.suites.config.
ARGS`) with covariates=use|ignore; the regression's options through
--config.regression.<field>=... (their defaults, chosen on the suite's
validation split: ttm_jax/inference/covariates.py).

Measured: docs/results/2026-12-07-covariate-suite.md (the table, the
commands, the host; zero-shot and fine-tuned, with and without
covariates, against seasonal naive and the regression-only baseline).
"""

from configs import common
from ttm_jax.suites import config


def get_config(arg=None):
  arg = common.parse_arg(arg, **dict(config.ARGS, covariates='use'))
  return config.benchmark('covariates', **arg.to_dict())
