r"""Scores a checkpoint (or seasonal naive) on the field's benchmarks: fev's
Chronos Benchmark II, fev-bench and GIFT-Eval, each task as its suite
defines and scores it, with the suite's seasonal naive beside on the same
windows. A run is a config file of configs/benchmarks/ (one a suite):

  .venv/bin/python -m experiments.benchmark \
      --config configs/benchmarks/chronos_ii.py:checkpoint=C,data_dir=D \
      --workdir W [--config.finetune.lr=1e-3 ...]

The config's fields (checked, each with its doc: ttm_jax/suites/config.py;
the guide: docs/benchmarks.md) say the forecaster (a checkpoint, 'auto'
per task, a baseline, a fine-tune, adapted pasts, a recipe), the tasks,
the split and the submission fields. Outputs in W: summary.csv (fev's
results format), relative.csv/.md/.png, missing.json, and for GIFT-Eval
all_results.csv and config.json; W/tasks/ holds a record per task, reused
by a later run only when made the same way (else refused, naming the
difference; config.rerun=true scores it again). Bad input ends with one
line and status 2, before any work.
"""

from absl import flags
from ml_collections import config_flags

from experiments import common

_CONFIG = config_flags.DEFINE_config_file('config', lock_config=False,
                                          accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder.',
                               required=True)


@common.main_wrapper
def main(argv):
  del argv
  from ttm_jax.suites import benchmark  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.resolve(_CONFIG.value)  # Before any set-up.
  common.setup()
  records = benchmark.run_config(config, _WORKDIR.value)
  print(f'{len(records)} task(s) scored ({config.split} split); wrote '
        f'{benchmark.split_workdir(_WORKDIR.value, config.split)}/'
        'summary.csv and relative.md.', flush=True)


if __name__ == '__main__':
  common.run(main)
