r"""Trains (pretraining, fine-tuning, head probing) and evaluates a config.

  .venv/bin/python -m experiments.train --config configs/X.py[:args] \
      --workdir DIR [--config.field=value ...]

Rerunning the same command in the same workdir resumes from its latest
checkpoint. Several processes: add --coordinator=host:port
--num_processes=N --process_id=i to each.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import common
from ttm_jax import train

_CONFIG = config_flags.DEFINE_config_file('config', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)


def main(argv):
  del argv
  common.setup()
  config = _CONFIG.value
  common.record(config, _WORKDIR.value)
  train.train_and_evaluate(config, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
