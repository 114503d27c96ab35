r"""Zero-shot evaluation of a pretrained TTM on a benchmark (IBM's protocol).

  .venv/bin/python -m experiments.evaluate \
      --config configs/zero_shot.py:data=etth1 --workdir /tmp/zs_etth1 \
      [--config.checkpoint=...] [--config.data_dir=...]

A horizon shorter than the checkpoint's (`horizon=48`) is served by its
prediction_filter_length. Target (IBM r2 512-96, horizon 96): ETTh1 0.363,
ETTh2 0.276, ETTm1 0.338, ETTm2 0.176, Weather 0.150, Electricity 0.180,
Traffic 0.518. Measured (2 CPU cores): ETTh1 0.3628 (2785 windows, 13 s),
ETTm1 0.3377 (11425 windows, 28 s).
"""

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, data='etth1', context=512, horizon=96,
                         checkpoint=common.R2_CHECKPOINT, revision='')
  config = common.base_config()
  config.task = 'zero_shot'
  config.context_length = arg.context
  config.prediction_length = arg.horizon
  config.checkpoint = arg.checkpoint
  config.revision = arg.revision
  config.data.name = arg.data
  config.data.batch_size = common.BATCH_SIZES.get(arg.data, 64)
  config.data.eval_batch_size = common.EVAL_BATCH_SIZES.get(
      arg.data, common.EVAL_BATCH_SIZE)
  config.export = False
  return config
