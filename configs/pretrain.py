r"""Pretraining TTM from scratch: channel-independent univariate windows from
Monash `.tsf` files (and/or the synthetic corpus), mixed in proportion to
their window counts, with diverse resolution sampling (TTM_SPEC.md 4.1).

  .venv/bin/python -m experiments.train \
      --config configs/pretrain.py:arch=r2_512,tsf_dir=../shared/data/monash \
      --workdir /tmp/ttm_pretrain

arch: tiny | r2_512 (context 512, P 64, D 192, the r1/r2 512 shape) |
r2_1024 (P 128, D 384). IBM's recipe: AdamW + one-cycle, LR 1e-3, batch
3000, 25 epochs, early stopping; here the batch and step budget are config
fields (a full r2 run is 24-30 h on 6 A100s; this is a workbench for
ablations at smaller scale). Hourly files get 2h/4h/D copies, 10-minute ones
30min/h, daily ones W.
"""

from configs import common

TSF_FILES = ('m4_hourly_dataset.tsf',
             'kdd_cup_2018_dataset_without_missing_values.tsf',
             'saugeenday_dataset.tsf')


def get_config(arg=None):
  arg = common.parse_arg(arg, arch='r2_512', tsf_dir='', synthetic=True,
                         steps=20000, batch=256, horizon=96, rpt=True)
  config = common.base_config()
  config.task = 'pretrain'
  config.context_length = {'tiny': 256, 'r2_1024': 1024}.get(arg.arch, 512)
  config.prediction_length = arg.horizon
  config.model.preset = arg.arch
  config.model.arch = dict(resolution_prefix_tuning=arg.rpt,
                           frequency_token_vocab_size=10)
  drs = {'h': (24,), '10min': (3, 6), '15min': (2, 4), 'D': (7,),
         'd': (7,)}
  corpora = []
  if arg.tsf_dir:
    corpora += [dict(kind='tsf', path=f'{arg.tsf_dir}/{name}',
                     drs_factors=drs, drs_method='mean')
                for name in TSF_FILES]
  if arg.synthetic:
    corpora.append(dict(kind='synthetic', num_series=256, seed=0,
                        drs_factors=drs, drs_method='mean'))
  config.data.update(kind='pretrain', name='pretrain', batch_size=arg.batch,
                     eval_batch_size=512, num_threads=4, seed=0,
                     corpora=corpora)
  config.optim.lr = 1e-3
  config.num_steps = arg.steps
  config.steps_per_epoch = 1000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.plot = True
  return config
