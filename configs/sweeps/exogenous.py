r"""The exogenous mixer on ETTh1: OT as the target, the other six columns as
controls with known future values (as IBM's exogenous notebooks), decoder
common_channel vs mix_channel, both with forecast channel mixing; head
probing IBM's r2 512-96 on a fraction of the data (IBM's recipe otherwise),
horizon 96, 3 seeds. The metric is on OT alone.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/exogenous.py:checkpoint=R2,data_dir=DATA \
      --workdir W

Measured (2 CPU cores, fraction 0.1, max_epochs=20, 6 points, 21 min of
point time): OT test MSE 0.0530 (common_channel) vs 0.0529 (mix_channel,
-0.1%), MAE -1.5%; docs/results/2026-11-25-exogenous.md.
"""

from configs.sweeps import common

CONTROLS = ('HUFL', 'HULL', 'MUFL', 'MULL', 'LUFL', 'LULL')


def _parse(arg):
  return common.parse_few_shot(arg, fraction=0.1)


def get_config(arg=None):
  arg = _parse(arg)
  config = common.few_shot_base(arg, data='etth1', fraction=arg.fraction)
  config.data.target_columns = ('OT',)
  config.data.control_columns = CONTROLS
  config.model.overrides = dict(
      head_dropout=0.7, num_input_channels=1 + len(CONTROLS),
      prediction_channel_indices=[0],
      exogenous_channel_indices=list(range(1, 1 + len(CONTROLS))),
      enable_forecast_channel_mixing=True, fcm_context_length=1,
      fcm_use_mixer=True, fcm_prepend_past=True)
  return config


def get_sweep(arg=None):
  arg = _parse(arg)
  points = []
  for mode in ('common_channel', 'mix_channel'):
    for seed in range(1 if arg.quick else arg.seeds):
      points.append({'model.overrides.decoder_mode': mode, 'seed': seed,
                     'data.seed': seed, '_group': f'decoder {mode}',
                     '_baseline': mode == 'common_channel'})
  return points
