r"""Evaluates a checkpoint (IBM's or any exported run) without training.

  .venv/bin/python -m experiments.evaluate \
      --config configs/zero_shot.py:data=etth1 --workdir DIR \
      [--config.checkpoint=DIR/export] [--config.data_dir=...] [--verbose]
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
  config = _CONFIG.value
  with config.unlocked():
    config.task = 'zero_shot'
  train.train_and_evaluate(config, _WORKDIR.value)


if __name__ == '__main__':
  common.run(main)
