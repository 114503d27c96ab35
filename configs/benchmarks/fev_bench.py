r"""fev-bench (100 tasks: date cutoffs, multivariate targets, covariates),
each task as fev defines and scores it (SQL, MASE, WAPE, WQL), seasonal
naive beside; summary.csv is fev's results format (every task-definition
column), ready for fev's leaderboard.

  .venv/bin/python -m experiments.benchmark --config \
      configs/benchmarks/fev_bench.py:checkpoint=C,data_dir=D[,tasks=a+b] \
      --workdir W

Arguments as configs/benchmarks/chronos_ii.py (`ttm_jax.suites.config.
ARGS`). The covariates of a task are checked to be in its table, then
listed as ignored (covariates=ignore, the default), or with
covariates=use handed to the checkpoint (zero-shot: in-context
regression, --config.regression.<field>; finetune=true: an exogenous
mixer) or to baseline=covariate_regression (docs/benchmarks.md).

Not yet measured on fev-bench's data (not held here); its path is tested
against `fev.Task` itself on small datasets in fev's layout
(tests/suites/test_benchmark.py).
"""

from configs import common
from ttm_jax.suites import config


def get_config(arg=None):
  arg = common.parse_arg(arg, **config.ARGS)
  return config.benchmark('fev_bench', **arg.to_dict())
