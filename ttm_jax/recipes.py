"""Recipes the library itself runs, as functions that return an experiment
config: the config files in `configs/` call them with their arguments, and
`ttm_jax.forecast(finetune=...)` calls them directly (no config strings to
build or parse, so a path with a comma is just a path).

  config = recipes.few_shot(checkpoint='ibm-granite/granite-timeseries-ttm-r2',
                            data='etth1', fraction=0.05)
"""

from __future__ import annotations

from typing import Optional, Sequence

import ml_collections

from ttm_jax import schema

# IBM granite r2 (context 512, horizon 96 on `main`).
R2_CHECKPOINT = 'ibm-granite/granite-timeseries-ttm-r2'
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
# Head probing freezes the backbone: the model's, or each branch's of r3's
# decomposed model (trend_forecaster/backbone/..., residual_forecaster/...).
BACKBONE = ('(.*/)?backbone/.*',)


def quantile_fields(levels: Optional[Sequence[float]]) -> dict:
  """The TTMConfig fields of a multi-quantile head at `levels` ({} for a
  point model)."""
  if not levels:
    return {}
  return dict(multi_quantile_head=True, quantile_levels=tuple(levels))


# Whether a fine-tune that gives a pretrained TTM the channels of
# `exogenous_fields` starts the residual branches they add at zero
# (`model.zero_new_residuals`: the model forecasts as the pretrained one
# until trained) rather than as the reference initialises them (random):
# `train.finetune`'s default, and so the runner's and the API's. Chosen on
# the covariate suite's validation split by a rule fixed before:
# docs/results/2026-12-07-covariate-finetune-zero-start.md.
EXOGENOUS_ZERO_RESIDUALS = True


def exogenous_fields(num_targets: int, num_known: int, num_past: int,
                     categorical_sizes: Sequence[int] = ()) -> dict:
  """The TTMConfig fields that give a pretrained TTM an exogenous mixer
  over channels [targets, known covariates, past-only covariates], as
  IBM's exogenous tutorial (TTM_SPEC.md 4.3: ttm_with_exog_tutorial) sets
  them: the channel-mixing decoder, the targets as prediction channels,
  the known covariates as exogenous channels read with their future
  values by forecast channel mixing (window 1 each side, its mixer on,
  the last context step prepended); past-only covariates are channels the
  decoder mixes; static categoricals get embeddings. Without known
  covariates there is no forecast channel mixing."""
  fields = dict(num_input_channels=num_targets + num_known + num_past,
                decoder_mode='mix_channel',
                prediction_channel_indices=list(range(num_targets)))
  if num_known:
    fields.update(
        exogenous_channel_indices=list(range(num_targets,
                                             num_targets + num_known)),
        enable_forecast_channel_mixing=True, fcm_context_length=1,
        fcm_use_mixer=True, fcm_mix_layers=2, fcm_prepend_past=True)
  if categorical_sizes:
    fields['categorical_vocab_size_list'] = list(categorical_sizes)
  return fields


def few_shot(checkpoint: str = R2_CHECKPOINT, *, data: str = 'etth1',
             fraction: float = 0.05, context: int = 512, horizon: int = 96,
             full: bool = False, seed: int = 42, revision: str = '',
             quantile_levels: Optional[Sequence[float]] = None,
             conformal: bool = False,
             quick: bool = False) -> ml_collections.ConfigDict:
  """IBM's few-shot head probing of a pretrained TTM (TTM_SPEC.md 4.3).

  Backbone frozen (unless `full`), head dropout 0.7 for ETT, batch 64 (32
  Electricity, 8 Traffic), LR finder, one-cycle AdamW, up to 50 epochs with
  early stopping (patience 10) on validation MSE (WQL with a quantile
  head), the best model tested, as the reference's HF Trainer runs it.

  Args:
    checkpoint: the pretrained model (folder or hub id).
    revision: its hub revision (e.g. '512-96-dec-512-r3' of
      ibm-research/ttm-r3; '' for main).
    data: the registered benchmark (a caller may switch `config.data` to
      its own file).
    fraction: IBM's few-shot fraction of the train split (1: all of it).
    context, horizon: the model's context and forecast lengths.
    full: fine-tune every weight instead of the head.
    seed: dropout and shuffling seed.
    quantile_levels: give the model a multi-quantile head at these levels.
    conformal: also score the test split with split-conformal intervals
      calibrated on the last 5,000 validation windows (a point model).
    quick: a few steps, no LR finder (tests).
  """
  config = schema.defaults()
  config.seed = config.data.seed = seed
  config.task = 'finetune'
  config.context_length = context
  config.prediction_length = horizon
  config.checkpoint = checkpoint
  config.revision = revision
  overrides = quantile_fields(quantile_levels)
  if data in ETT:
    overrides['head_dropout'] = 0.7
  config.model.overrides = overrides
  config.data.name = data
  config.data.fewshot_fraction = fraction if fraction < 1 else 0.0
  config.data.batch_size = BATCH_SIZES.get(data, 64)
  config.data.eval_batch_size = EVAL_BATCH_SIZES.get(data, EVAL_BATCH_SIZE)
  # As the reference's HF Trainer runs it: the last partial batch of each
  # epoch is kept (steps per epoch = ceil(N / batch), which also sets the
  # one-cycle length) and gradients are clipped to norm 1 (max_grad_norm).
  config.data.drop_remainder = False
  config.optim.clip_norm = 1.0
  config.optim.lr_finder.enabled = True
  config.frozen = () if full else BACKBONE
  if conformal:
    config.evals.test_conformal = dict(
        type='conformal', calibrate='valid', score='test', windows=5000,
        final=True, every_steps=-1, metrics=(), compare=('seasonal_naive',))
  if quick:
    config.num_epochs = 1
    config.num_steps = 4
    config.eval_every_steps = 2
    config.optim.lr_finder.enabled = False
  return config


def series_finetune(checkpoint: str, *, context: int, horizon: int,
                    num_windows: int, train_windows: int = 0,
                    valid_windows: int = 2000, learning_rate: float = 0.0,
                    seed: int = 42,
                    quick: bool = False) -> ml_collections.ConfigDict:
  """IBM's GIFT fine-tune of TTM-R2 (granite-tsfm gift_leaderboard;
  docs/benchmark_suites.md section 6) on univariate histories given in
  memory (`train.finetune.histories`; data kind 'series': short ones
  padded to keep 4 horizons of context).

  Every weight trained (freeze_backbone 0), MAE loss and selection, head
  dropout 0.2, the LR finder, one-cycle AdamW, 20 epochs (50 when there
  are fewer than 200 training windows), early stopping after 5 epochs
  without a better validation MAE (each history's last window), batch 64
  (8 for at most 1,000 windows).

  Args:
    checkpoint: the pretrained model (folder or hub id; the name of the
      model in memory that `train.finetune` fits).
    context, horizon: the model's context and the forecast length (a
      shorter horizon than the checkpoint's is its
      prediction_filter_length).
    num_windows: the training windows used (sets batch and epochs).
    train_windows: a seeded sample of this many of them (0: all).
    valid_windows: validation windows evaluated each epoch (a sample).
    learning_rate: the peak rate; 0: the LR finder's (IBM's default).
    seed: dropout, shuffling and sampling seed.
    quick: a few steps, no LR finder (tests).
  """
  config = few_shot(checkpoint, data='series', fraction=1.0, context=context,
                    horizon=horizon, full=True, seed=seed, quick=quick)
  config.model.overrides = dict(head_dropout=0.2, loss='mae')
  config.data.update(kind='series', fewshot_fraction=0.0,
                     train_windows=train_windows,
                     eval_max_windows=valid_windows,
                     batch_size=8 if num_windows <= 1000 else 64,
                     eval_batch_size=256)
  config.data.name = 'finetune'
  config.early_stopping_patience = 5
  config.selection.metric = 'mae'
  config.evals = dict(val=dict(type='windows', split='valid', every_steps=0,
                               final=True, metrics=('mae', 'mse')))
  config.tensorboard = False
  if learning_rate:
    config.optim.lr = learning_rate
    config.optim.lr_finder.enabled = False
  if not quick:
    config.num_epochs = 50 if num_windows < 200 else 20
  return config
