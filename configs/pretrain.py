r"""Pretraining TTM from scratch: channel-independent univariate windows
mixed over sources (in proportion to their window counts unless weighted),
diverse resolution sampling (DRS), resolution prefix tuning (TTM_SPEC 4.1).

From a corpus prepared on disk (streamed; each host reads only its share):

  .venv/bin/python -m experiments.prepare_corpus --out /data/corpus \
      --source 'monash:../shared/data/monash/*.tsf' \
      --source csv:../shared/data/libcity/los_speed.csv,freq=5min
  .venv/bin/python -m experiments.train \
      --config configs/pretrain.py:corpus=/data/corpus,arch=tiny,steps=2000 \
      --workdir /tmp/ttm_pretrain

(the v2 public corpus: `--sources_file configs/corpora/public_v2.txt
--data_dir ../shared/data` instead of the --source flags). The export
carries the corpus's datasets (config.json `pretraining_data`, README.md).

or, small, in memory: `configs/pretrain.py:tsf_dir=...` (three Monash files)
or `synthetic=true`. arch: a preset of ttm_jax.models.presets (tiny, small,
r2_512 = the r1/r2 512 shape, r2_1024). IBM's recipe: AdamW + one-cycle, LR
1e-3, batch 3000, 25 epochs, early stopping; here batch and steps are
arguments (a full r2 run is 24-30 h on 6 A100s). `quantiles=0.1:0.9`
pretrains with a multi-quantile head (pinball loss over the levels; the
best model chosen on validation WQL).

Pretraining computes in bfloat16 by default (`compute_dtype`: every
Linear's products bfloat16, float32 accumulation; parameters, norms,
softmax, loss and AdamW float32): on validation it is indistinguishable
from float32 (a tiny-shape 600-step run: val MSE 0.2010 both, the same to
4 decimals at every evaluation) and its train step is the faster one
(docs/speed.md; docs/results/2026-12-03-bfloat16-accuracy.md).
`--config.compute_dtype=float32` for a float32 run (the ablation notes in
docs/results/ dated before 2026-12-03 were float32).

r3 (IBM's granite-tsfm branch ttm-r3-release-mq2-merge): `r3=` adds r3's
additions to the preset, joined with + (decompose, register, multi_scale,
fft: ttm_jax.models.presets.R3_ADDITIONS), e.g. `r3=decompose+register`;
`shape=512-96-dec-512-r3` takes the context, horizon and decomposition of
an r3 release (presets.r3_shape; every key of zoo.RELEASES ending -r3).
Any other TTMConfig field goes through --config.model.arch.<field>=...
(e.g. register_tokens=4, trend_patch_length=32, trend_loss_weight=0.5,
residual_context_length=256, combine_quantiles_via_variance=true).
"""

from configs import common
from ttm_jax import errors
from ttm_jax.models import presets

TSF_FILES = ('m4_hourly_dataset.tsf',
             'kdd_cup_2018_dataset_without_missing_values.tsf',
             'saugeenday_dataset.tsf')
# DRS for the in-memory corpora (a prepared corpus carries its own copies).
DRS = {'h': (24,), '10min': (3, 6), '15min': (2, 4), 'D': (7,), 'd': (7,)}


def get_config(arg=None):
  arg = common.parse_arg(arg, corpus='', arch='r2_512', tsf_dir='',
                         synthetic=False, steps=20000, batch=256, horizon=0,
                         context=0, rpt=True, lr=1e-3, eval_windows=20000,
                         eval_every=1000, quick=False, quantiles='', r3='',
                         shape='')
  config = common.base_config()
  config.task = 'pretrain'
  config.compute_dtype = 'bfloat16'
  shape = _shape(arg)
  config.context_length = shape.pop('context_length')
  config.prediction_length = shape.pop('prediction_length')
  config.model.preset = arg.arch
  config.model.arch = dict(resolution_prefix_tuning=arg.rpt,
                           frequency_token_vocab_size=10,
                           **common.quantile_fields(arg.quantiles))
  config.model.arch.update(shape)  # The r3 additions win (decompose).
  config.model.arch.update(presets.r3_additions(arg.r3))
  if arg.corpus:
    config.data.update(kind='corpus', name='pretrain', corpus_dir=arg.corpus,
                       eval_max_windows=arg.eval_windows)
  else:
    corpora = [dict(kind='tsf', path=f'{arg.tsf_dir}/{name}',
                    drs_factors=DRS, drs_method='mean')
               for name in TSF_FILES] if arg.tsf_dir else []
    if arg.synthetic or not corpora:
      corpora.append(dict(kind='synthetic', num_series=256, seed=0,
                          drs_factors=DRS, drs_method='mean'))
    config.data.update(kind='pretrain', name='pretrain', corpora=corpora)
  config.data.update(batch_size=arg.batch, eval_batch_size=512,
                     num_threads=4, seed=0)
  config.optim.lr = arg.lr
  config.num_steps = arg.steps
  config.steps_per_epoch = arg.eval_every
  config.eval_every_steps = arg.eval_every
  config.checkpoint_every_steps = arg.eval_every
  config.early_stopping_patience = 10
  config.plot = True
  if arg.quick:  # Seconds; used by tests.
    config.data.num_threads = 0
    config.data.eval_batch_size = 64
    config.plot = False
  return config


def _shape(arg):
  """Context, horizon (and decomposition) from `shape`, else from
  `context` (default by preset) and `horizon` (default 96)."""
  if not arg.shape:
    return dict(context_length=arg.context or {
        'tiny': 256, 'r2_1024': 1024}.get(arg.arch, 512),
                prediction_length=arg.horizon or 96)
  shape = presets.r3_shape(arg.shape)
  for name, field in (('context', 'context_length'),
                      ('horizon', 'prediction_length')):
    if arg[name] and arg[name] != shape[field]:
      raise errors.ConfigError(
          f'{name}={arg[name]} contradicts shape={arg.shape} ({field} '
          f'{shape[field]}): drop one.')
  return shape
