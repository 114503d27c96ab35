r"""fev's Chronos Benchmark II (27 tasks, zero-shot), each task as fev defines
and scores it (MASE, WQL), seasonal naive beside.

  R2=ibm-granite/granite-timeseries-ttm-r2
  .venv/bin/python -m experiments.benchmark --config \
      configs/benchmarks/chronos_ii.py:checkpoint=$R2,quantiles=point,data_dir=D \
      --workdir W [--config.tasks="('m4_yearly', 'monash_m1_yearly')"]

Arguments (`ttm_jax.suites.config.ARGS`): checkpoint (a folder, hub id,
bundled name or 'auto'), baseline=seasonal_naive, data_dir, tasks=a+b,
recipe=backtest_select, quantiles=point|insample|head, inputs, split=
validation, finetune=true, adapt=true, pretrained_on=a+b, rerun=true;
every other field (`python -c "from ttm_jax.suites import config;
print(config.describe())"`) through --config.<field>=....

Measured on the five Monash tasks held in ../shared (2 CPU cores): r2
512-96 zero-shot with quantiles=point reproduces fev's published MASE and
WQL to the fourth decimal, 12.8 s for the five
(docs/results/2026-12-02-chronos-ii-monash-anchors.md); the other
recipes' figures: docs/benchmarks.md.
"""

from configs import common
from ttm_jax.suites import config


def get_config(arg=None):
  arg = common.parse_arg(arg, **config.ARGS)
  return config.benchmark('chronos_ii', **arg.to_dict())
