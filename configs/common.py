"""Shared helpers for configs: `parse_arg` and presets. Configs import
nothing else from the project; logic lives in ttm_jax/."""

import ml_collections as mlc

R2_CHECKPOINT = '../shared/checkpoints/fraware__ChronoAPI__root'
DATA_DIR = '../shared/data/ltsf'

# Architecture presets (TTM_SPEC.md 3.2); d_model = 3 P, decoder 2 P.
ARCHS = {
    'tiny': dict(patch_length=16, d_model=48, decoder_d_model=32,
                 num_layers=1, decoder_num_layers=1,
                 adaptive_patching_levels=2, dropout=0.2, head_dropout=0.2),
    'r2_512': dict(patch_length=64, d_model=192, decoder_d_model=128,
                   num_layers=2, decoder_num_layers=2,
                   adaptive_patching_levels=3, dropout=0.2,
                   head_dropout=0.2),
    'r2_1024': dict(patch_length=128, d_model=384, decoder_d_model=256,
                    num_layers=2, decoder_num_layers=2,
                    adaptive_patching_levels=3, dropout=0.2,
                    head_dropout=0.2),
}
# IBM's few-shot batch sizes (TTM_SPEC.md 4.3).
BATCH_SIZES = {'traffic': 8, 'electricity': 32}
# Evaluation batches in windows. Each window is `channels` series, and on
# this CPU the r2 forward runs fastest at a few hundred to ~2k series a
# batch (measured: 7 ch x 64 windows 3,300-3,500 series/s, x 256 2,900;
# 321 ch x 4 2,440, x 32 2,020 and 2.2 GB; 862 ch x 2 2,740), so the wide
# sets take few windows a batch. The metric is an exact mean over all
# windows whatever the batch.
EVAL_BATCH_SIZE = 64
EVAL_BATCH_SIZES = {'electricity': 4, 'traffic': 2}
ETT = ('etth1', 'etth2', 'ettm1', 'ettm2')


def parse_arg(arg, **defaults):
  """'a=1,b=x' -> ConfigDict over `defaults` (types follow the defaults)."""
  out = mlc.ConfigDict(defaults)
  if not arg:
    return out
  for item in arg.split(','):
    if not item:
      continue
    key, _, value = item.partition('=')
    if key not in defaults:
      raise ValueError(f'Unknown config argument {key!r}; known: '
                       f'{sorted(defaults)}')
    default = defaults[key]
    if isinstance(default, bool):
      value = value.lower() in ('1', 'true', 'yes')
    elif isinstance(default, int):
      value = int(value)
    elif isinstance(default, float):
      value = float(value)
    out[key] = value
  return out


def base_config():
  """Fields every experiment has (overridden per config)."""
  config = mlc.ConfigDict()
  config.seed = 42
  config.mode = 'finetune'
  config.context_length = 512
  config.prediction_length = 96
  config.model = mlc.ConfigDict(dict(checkpoint='', revision='',
                                     overrides={}, arch={}))
  config.data = mlc.ConfigDict(dict(
      kind='benchmark', name='etth1', data_dir=DATA_DIR,
      fewshot_fraction=0.0, batch_size=64, eval_batch_size=0, num_threads=0,
      seed=42, drop_remainder=True))
  config.optim = mlc.ConfigDict(dict(
      lr=1e-3, weight_decay=0.01, schedule='onecycle', pct_start=0.3,
      cycle_momentum=True, clip_norm=0.0,  # HF Trainer's default is 1.0.
      lr_finder=dict(enabled=False, start_lr=1e-7, end_lr=10.0,
                     num_iter=100, beta=0.98)))
  config.frozen = ()
  config.num_epochs = 50
  config.num_steps = 0
  config.steps_per_epoch = 0
  config.early_stopping_patience = 10
  config.eval_every_steps = 0
  config.log_every_steps = 50
  config.checkpoint_every_steps = 0
  config.keep_checkpoints = 3
  config.eval_splits = ('test',)
  # Also evaluate the test split at every evaluation, logged as
  # track/test_mse (analysis of the curve; selection stays on validation).
  config.track_test = False
  config.test_best = True
  config.compute_dtype = 'float32'
  config.export = True
  config.plot = False
  config.tensorboard = True
  return config
