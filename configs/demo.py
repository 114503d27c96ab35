r"""The embedded default: a short pretraining of a tiny TTM on the synthetic
corpus (with diverse resolution sampling), then evaluation, export and a
forecast plot. Nothing is downloaded; a few minutes on 2 CPU cores.

  .venv/bin/python -m experiments.train --config configs/demo.py \
      --workdir /tmp/ttm_demo

Measured (2 CPU cores): 1500 steps in 1 min 13 s wall, 1.5 GB RSS; test MSE
0.160 (MAE 0.249) on 26,803 held-out synthetic windows; 0.1555 (MAE
0.2447) on an AMD EPYC host of the same kind (2026-12-02), the same with
the engine of 2026-11-25 there: the float arithmetic differs by host.
"""

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, steps=1500, quick=False)
  config = common.base_config()
  config.task = 'pretrain'
  config.seed = 0
  config.context_length = 256
  config.prediction_length = 48
  config.model.preset = 'tiny'
  config.model.arch = dict(resolution_prefix_tuning=True,
                           frequency_token_vocab_size=10)
  config.data.update(
      kind='pretrain', name='synthetic', batch_size=64, eval_batch_size=256,
      num_threads=0, seed=0,
      # DRS: lower-resolution copies whose frequencies the resolution-prefix
      # mapping knows (10min -> 30min, h; 15min -> 30min, h; h -> D; D -> W).
      corpora=[dict(kind='synthetic', num_series=48, seed=0,
                    drs_factors={'10min': (3, 6), '15min': (2, 4),
                                 'h': (24,), 'd': (7,)},
                    drs_method='mean')])
  config.optim.lr = 3e-3
  config.num_steps = arg.steps
  config.steps_per_epoch = 100
  config.early_stopping_patience = 0
  config.eval_every_steps = 500
  config.log_every_steps = 20
  config.checkpoint_every_steps = 500
  config.plot = True
  if arg.quick:  # Seconds; used by tests.
    config.num_steps = 6
    config.eval_every_steps = 3
    config.checkpoint_every_steps = 3
    config.data.corpora = [dict(kind='synthetic', num_series=10, seed=0,
                                drs_factors={'15min': (4,)},
                                drs_method='mean')]
    config.data.eval_batch_size = 512
  return config
