r"""GIFT-Eval (97 configurations), each as GIFT-Eval windows and scores it
(its 11 GluonTS metrics), GIFT-Eval's own seasonal naive beside; writes
its submission files, all_results.csv and config.json.

  .venv/bin/python -m experiments.benchmark --config \
      configs/benchmarks/gift_eval.py:checkpoint=C,data_dir=D[,tasks=a+b] \
      --workdir W
  .venv/bin/python -m experiments.benchmark --config \
      configs/benchmarks/gift_eval.py:baseline=seasonal_naive,data_dir=D \
      --workdir W

Arguments: those of configs/benchmarks/chronos_ii.py, and config.json's
fields (`ttm_jax.suites.config.GIFT_ARGS`): org, code_link, model_link,
model_type, testdata_leakage (Yes|No; empty: decided from the
checkpoint's pretraining data, refused when it cannot be).

Measured (2 CPU cores, 2026-12-07): baseline=seasonal_naive on the 15
configurations of ../shared/data/gift_eval (data_dir=../shared/data/
gift_eval) reproduces GIFT-Eval's published seasonal_naive MASE[0.5] and
CRPS to 1.2e-7 relative, 6 s for the 15 (the other 82 listed missing).
"""

from configs import common
from ttm_jax.suites import config


def get_config(arg=None):
  arg = common.parse_arg(arg, **config.GIFT_ARGS)
  return config.benchmark('gift_eval', **arg.to_dict())
