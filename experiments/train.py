r"""Trains (pretraining, fine-tuning, head probing) and evaluates a config.

  .venv/bin/python -m experiments.train --config configs/X.py[:args] \
      --workdir DIR [--config.field=value ...] [--verbose]

Rerunning the same command in the same workdir resumes from its latest
checkpoint. On a cluster (SLURM, Open MPI, TPU pods) every process runs the
same command and finds the others; elsewhere add --coordinator=host:port
--num_processes=N --process_id=i. Bad input ends with one line and status 2.
"""

from absl import flags
from ml_collections import config_flags

from experiments import common
from ttm_jax import train

_CONFIG = config_flags.DEFINE_config_file('config', lock_config=False,
                                          accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)


@common.main_wrapper
def main(argv):
  del argv
  common.setup()
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  common.run(main)
