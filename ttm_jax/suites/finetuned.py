"""A checkpoint fine-tuned per task on the task's pasts, as a forecaster:
the benchmark runner's `finetune.enabled` and the recipes' fine-tuned
candidates (`suites/recipes.py`). With covariates (`exogenous_inputs`),
a task's covariates become channels of an exogenous mixer the fine-tune
trains (`recipes.exogenous_fields`: the known ones read with their
future values), on windows standardised as those inputs standardise a
context (`train.finetune.Standardized`)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from ttm_jax import recipes
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib


def finetune_forecaster(checkpoint, revision: str = '',
                        quantiles: str = 'auto',
                        pretrained_on: Optional[Sequence[str]] = None,
                        fraction: float = 0.2, max_windows: int = 4000,
                        learning_rate: float = 1e-4, quick: bool = False,
                        inputs=inputs_lib.REFERENCE,
                        name: Optional[str] = None,
                        num_epochs: Optional[int] = None,
                        exogenous_inputs: Optional[inputs_lib.Inputs] = None,
                        zero_residuals: bool = (
                            recipes.EXOGENOUS_ZERO_RESIDUALS)
                        ) -> forecaster_lib.Forecaster:
  """A checkpoint fine-tuned per task on the task's pasts before its test
  windows (`benchmark.task_histories`) with IBM's GIFT recipe, in memory
  (`train.finetune.histories`: `fraction` of the training windows, at
  most `max_windows`; zero-shot when too few; the LR finder's rate when
  `learning_rate` is 0), then forecast through the one path with `inputs`
  (default the reference's: its training windows are padded with masked
  zeros, as the reference pads) and quantiles as `model_forecaster`
  ('auto': in-sample errors for a point model, as IBM's); named `name`
  (default the model's) with '-ft'. `checkpoint` may be a loaded
  `model.Model`; `num_epochs` replaces the recipe's epochs.
  `exogenous_inputs`: it reads covariates (`Forecaster.covariates`): a
  task's dynamic covariates are the channels [target | known | past-only]
  (`covariates.Channels`, a categorical a 0/1 channel per value its pasts
  hold) of an exogenous mixer trained with the recipe, on windows and
  forecast contexts standardised by these inputs, its new residual
  branches starting at zero when `zero_residuals`; a task without
  covariates is
  fine-tuned as without them."""
  model = forecaster_lib.load(checkpoint, revision)
  base = forecaster_lib.model_forecaster(model, quantiles=quantiles,
                                         pretrained_on=pretrained_on,
                                         inputs=inputs, name=name)
  config = dict(base.config, finetune=dict(
      fraction=fraction, max_windows=max_windows,
      learning_rate=learning_rate or 'lr_finder', quick=quick,
      **({'num_epochs': num_epochs} if num_epochs else {})))
  if exogenous_inputs is not None:
    config['exogenous_inputs'] = exogenous_inputs.name
    config['zero_residuals'] = zero_residuals
  name = f'{base.name}-ft'

  def prepare(histories, horizon: int, freq: str, task_name: str,
              covariates: Optional[covariates_lib.Given] = None
              ) -> forecaster_lib.Forecaster:
    from ttm_jax.train import finetune  # pylint: disable=g-import-not-at-top
    del task_name
    channels = overrides = None
    series = histories
    if covariates is not None and covariates.layout:
      channels = covariates_lib.Channels.of(covariates.layout,
                                            covariates.values)
      series, _ = channels.apply(histories, covariates.values, 0)
      overrides = recipes.exogenous_fields(
          1, channels.num_known, len(channels.names) - channels.num_known)
    tuned, notes = finetune.histories(
        model.model, model.source, series, horizon, freq,
        fraction=fraction, max_windows=max_windows,
        learning_rate=learning_rate, num_epochs=num_epochs, quick=quick,
        overrides=overrides, inputs=exogenous_inputs,
        zero_residuals=zero_residuals)
    if tuned is None:  # Zero-shot (too few windows): no mixer.
      found, channels = base, None
    else:
      found = forecaster_lib.model_forecaster(
          model_lib.Model(model.source, model=tuned), quantiles=quantiles,
          inputs=exogenous_inputs if channels is not None else inputs,
          channels=channels)
    return dataclasses.replace(
        found, name=name, notes=notes, prepare=None,
        pretraining_data=base.pretraining_data,
        config=dict(config, channels=list(channels.names))
        if channels is not None else config,
        covariates=channels is not None)

  return dataclasses.replace(base, name=name, prepare=prepare, config=config,
                             covariates=exogenous_inputs is not None)
