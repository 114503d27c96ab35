"""Shared pieces of the sweeps: argument defaults and the pretrain-then-
zero-shot chain of the pretraining ablations."""

from configs import common
from configs import few_shot
from configs import pretrain
from configs import zero_shot
from ttm_jax.workbench import sweeps

BENCHMARKS = ('etth1', 'ettm1')


def parse(arg, **extra):
  """The arguments every pretraining ablation takes."""
  return common.parse_arg(arg, corpus='', data_dir='', steps=1500, batch=256,
                          seeds=3, context=512, horizon=96, arch='tiny',
                          quick=False, **extra)


def pretrain_base(arg, context=None, horizon=None):
  """Pretraining on the corpus (small scale), RPT off unless swept."""
  context, horizon = context or arg.context, horizon or arg.horizon
  if arg.quick:
    context, horizon = min(context, 64), min(horizon, 16)
  config = pretrain.get_config(
      f'corpus={arg.corpus},arch={arg.arch},steps={arg.steps},'
      f'batch={arg.batch},context={context},horizon={horizon},rpt=false,'
      f'eval_every={max(arg.steps // 3, 1)},eval_windows=2000,'
      f'quick={arg.quick}')
  config.early_stopping_patience = 0
  config.export = True
  config.plot = False
  config.tensorboard = False
  if arg.quick:  # Under a minute a point.
    config.num_steps, config.data.batch_size = 24, 16
    config.eval_every_steps = config.checkpoint_every_steps = 12
    config.steps_per_epoch = 12
    config.data.eval_max_windows = 64
  return config


def zero_shot_stages(arg, context=None, horizon=None):
  """Zero-shot on ETTh1 and ETTm1 (quick: ETTh1) with the pretrained
  model."""
  context, horizon = context or arg.context, horizon or arg.horizon
  if arg.quick:
    context, horizon = min(context, 64), min(horizon, 16)
  out = []
  for name in BENCHMARKS[:1] if arg.quick else BENCHMARKS:  # quick: ETTh1.
    base = zero_shot.get_config(f'data={name},context={context},'
                                f'horizon={horizon}')
    base.tensorboard = False
    out.append(sweeps.stage(name, base=base,
                            checkpoint=sweeps.FROM_STAGE + 'pretrain',
                            data_dir=arg.data_dir))
  return out


def seeded(arg, variants, stages=None):
  """Every variant at every seed: points with the pretrain -> zero-shot
  chain (or `stages`)."""
  points = []
  for variant in variants:
    for seed in range(1 if arg.quick else arg.seeds):
      point = dict(variant, seed=seed, **{'data.seed': seed})
      point['stages'] = stages(variant) if stages else (
          [sweeps.stage('pretrain')] + zero_shot_stages(arg))
      points.append(point)
  return points


def parse_few_shot(arg, **extra):
  """The arguments every sweep from IBM's r2 weights takes."""
  return common.parse_arg(arg, checkpoint=common.R2_CHECKPOINT, data_dir='',
                          seeds=3, max_epochs=50, quick=False, **extra)


def zero_shot_point(arg, name):
  """IBM's r2 weights zero-shot on benchmark `name` (deterministic: one
  run), the baseline of the block `name`."""
  base = zero_shot.get_config(f'data={name},checkpoint={arg.checkpoint}')
  base.data_dir = arg.data_dir
  base.tensorboard = False
  return {'data.name': name, '_name': f'{name}_zero_shot',
          '_group': f'{name} zero-shot', '_baseline': True, '_block': name,
          'stages': [sweeps.stage('run', base=base)]}


def few_shot_base(arg, **few_shot_args):
  """configs/few_shot.py with `few_shot_args`, the sweep's checkpoint, data
  folder and epoch cap; no export or TensorBoard (many points)."""
  spec = ''.join(f'{k}={v},' for k, v in few_shot_args.items())
  config = few_shot.get_config(f'{spec}checkpoint={arg.checkpoint},'
                               f'quick={arg.quick}')
  config.data_dir = arg.data_dir
  config.num_epochs = arg.max_epochs
  config.export = False
  config.tensorboard = False
  return config
