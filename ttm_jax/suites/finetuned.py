"""A checkpoint fine-tuned per task on the task's pasts, as a forecaster:
the benchmark runner's `finetune.enabled` and the recipes' fine-tuned
candidates (`suites/recipes.py`)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

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
                        num_epochs: Optional[int] = None
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
  `model.Model`; `num_epochs` replaces the recipe's epochs."""
  model = forecaster_lib.load(checkpoint, revision)
  base = forecaster_lib.model_forecaster(model, quantiles=quantiles,
                                         pretrained_on=pretrained_on,
                                         inputs=inputs, name=name)
  config = dict(base.config, finetune=dict(
      fraction=fraction, max_windows=max_windows,
      learning_rate=learning_rate or 'lr_finder', quick=quick,
      **({'num_epochs': num_epochs} if num_epochs else {})))
  name = f'{base.name}-ft'

  def prepare(histories, horizon: int, freq: str, task_name: str
              ) -> forecaster_lib.Forecaster:
    from ttm_jax.train import finetune  # pylint: disable=g-import-not-at-top
    del task_name
    tuned, notes = finetune.histories(
        model.model, model.source, histories, horizon, freq,
        fraction=fraction, max_windows=max_windows,
        learning_rate=learning_rate, num_epochs=num_epochs, quick=quick)
    found = base if tuned is None else forecaster_lib.model_forecaster(
        model_lib.Model(model.source, model=tuned), quantiles=quantiles,
        inputs=inputs)
    return dataclasses.replace(
        found, name=name, notes=notes, prepare=None,
        pretraining_data=base.pretraining_data, config=config)

  return dataclasses.replace(base, name=name, prepare=prepare, config=config)
