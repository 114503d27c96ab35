"""Fine-tunes of a model already in memory, with the library's recipes, by
the one training loop (`loop.fit_model`): no data file, no run folder
unless asked for, no reload.

  histories   IBM's GIFT-Eval recipe for TTM-R2-Finetuned on univariate
              histories (`recipes.series_finetune`): the benchmark
              runner's per-task fine-tune
  table       IBM's few-shot head probing (`recipes.few_shot`) on the first
              fraction of each series of a table: `ttm_jax.forecast(
              finetune=F)`

A fine-tune that gives the model an exogenous mixer (`recipes.
exogenous_fields`) trains on windows made as the forecasting path makes
its inputs (`Standardized`: each window's context through
`inference.inputs.prepare`, its future standardised by the context's
statistics), so the mixer reads the known covariates' future values in
training exactly as it will at forecast time (where `forecast._rolled`
standardises them by the context's statistics). Without it the windows
are scaled by each series' train-split scaler (`table`) or its context's
mean absolute value (`histories`), which the model's own scaler undoes
for the channels it reads through the backbone, but not for the future
values the mixer reads raw.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax import recipes
from ttm_jax.data import builders
from ttm_jax.data import forecasting
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.models import factory
from ttm_jax.train import loop

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Standardized:
  """A training window (`data.windows.take_window`'s) as the forecasting
  path would feed its context (`inputs.prepare` with `inputs`, for a
  model with the `scaler` type), its future values standardised by the
  same statistics (0 where missing); `inputs` must standardise."""
  inputs: inputs_lib.Inputs
  scaler: str = 'std'

  def __call__(self, item: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    past = np.where(item['past_observed_mask'], item['past_values'],
                    np.nan).astype(np.float64)
    prepared = inputs_lib.prepare([past], len(past), self.inputs,
                                  self.scaler)
    future = (item['future_values'].astype(np.float64) - prepared.loc[0]
              ) / prepared.scale[0]
    return dict(item, past_values=prepared.values[0],
                past_observed_mask=prepared.mask[0],
                future_values=np.where(item['future_observed_mask'], future,
                                       0.0).astype(np.float32))


def exogenous_transform(overrides: Optional[Dict[str, Any]],
                        inputs: Optional[inputs_lib.Inputs],
                        scaler: str) -> Optional[Standardized]:
  """The windows' transform of a fine-tune with `overrides`: `Standardized`
  by `inputs` (default: the default inputs) when they give the model
  exogenous channels, else None. Inputs that do not standardise are
  refused (the mixer would read raw future values)."""
  if not (overrides or {}).get('exogenous_channel_indices'):
    return None
  inputs = inputs or inputs_lib.DEFAULT
  inputs_lib.check_for_mixer(inputs)
  return Standardized(dataclasses.replace(inputs, adaptation=None), scaler)


def series_windows(lengths: Sequence[int], context: int, horizon: int,
                   min_context_mult: int = 4) -> int:
  """The training windows of histories of `lengths` under the series
  recipe (`forecasting.series_splits`: the last horizon held out for
  validation, short histories padded)."""
  total = 0
  for length in lengths:
    train = length - horizon
    if train > 0:
      total += windows.num_windows(
          train + forecasting.padding(train, context, horizon,
                                      min_context_mult), context, horizon)
  return total


def histories(model: factory.Model, source: str,
              series: Sequence[np.ndarray],
              horizon: int, freq: str, *, fraction: float = 0.2,
              max_windows: int = 4000, min_windows: int = 10,
              learning_rate: float = 1e-4, seed: int = 42,
              num_epochs: Optional[int] = None, quick: bool = False,
              workdir: Optional[str] = None,
              overrides: Optional[Dict[str, Any]] = None,
              inputs: Optional[inputs_lib.Inputs] = None,
              zero_residuals: bool = recipes.EXOGENOUS_ZERO_RESIDUALS
              ) -> Tuple[Optional[factory.Model], Dict[str, Any]]:
  """IBM's GIFT fine-tune recipe (`recipes.series_finetune`) of `model`
  (named `source` in the records) on univariate histories, for forecasts
  of `horizon` steps; or on histories [t, c] (the target, then the
  channels of `overrides`, e.g. `recipes.exogenous_fields`: TTMConfig
  fields applied first), their windows `Standardized` by `inputs` when
  the model gets exogenous channels (module docstring); the residual
  branches the overrides add start at zero when `zero_residuals`
  (`recipes.EXOGENOUS_ZERO_RESIDUALS`).

  As IBM's: `fraction` of the training windows (0.9, and 50 epochs, when
  that is under 200), zero-shot when there are `min_windows` or fewer;
  here also at most `max_windows` (CPU time), and `num_epochs` when given.
  A horizon longer than the model's trains its whole horizon (the
  forecasts are rolled past it). `learning_rate` 0: the LR finder's. In
  memory unless `workdir`.

  Returns:
    (the fine-tuned model, or None for zero-shot; what was done).
  """
  context = model.config.context_length
  horizon = min(horizon, model.config.prediction_length)
  count = series_windows([len(h) for h in series], context, horizon)
  if count <= min_windows:
    return None, dict(finetuned=False, training_windows=count,
                      reason=f'{count} training windows (<= {min_windows}): '
                      'zero-shot, as IBM\'s recipe')
  if int(fraction * count) < 200:
    fraction = 0.9
  used = min(max(int(fraction * count), 1), max_windows)
  config = recipes.series_finetune(
      source, context=context, horizon=horizon, num_windows=used,
      train_windows=used if used < count else 0,
      learning_rate=learning_rate, seed=seed, quick=quick)
  if num_epochs and not quick:
    config.num_epochs = num_epochs
  if overrides:
    config.model.overrides.update(overrides)
    config.model.zero_new_residuals = zero_residuals
  data = builders.series_data(
      series, freq, context, horizon, config.data.name,
      min_context_mult=config.data.min_context_mult,
      train_windows=config.data.train_windows,
      valid_windows=config.data.eval_max_windows, seed=config.data.seed,
      transform=exogenous_transform(overrides, inputs,
                                    model.config.scaler_type))
  tuned, summary = loop.fit_model(model, data, config, workdir)
  return tuned, dict(finetuned=True, training_windows=count,
                     used_windows=used, epochs=config.num_epochs, **summary)


def table(model: factory.Model, source: str, data_table: sources.Table,
          fraction: float,
          *, quick: bool = False, workdir: Optional[str] = None,
          overrides: Optional[Dict[str, Any]] = None,
          inputs: Optional[inputs_lib.Inputs] = None,
          zero_residuals: bool = recipes.EXOGENOUS_ZERO_RESIDUALS
          ) -> Tuple[factory.Model, Dict[str, Any]]:
  """IBM's few-shot head probing (`recipes.few_shot`: LR finder,
  one-cycle, early stopping) of `model` (named `source` in the records;
  its recipe as `recipes.few_shot`'s default data, as before this ran in
  memory) on the first `fraction` of each
  series of `data_table`, validated on the rest; its batch at most the
  number of training windows. In memory unless `workdir`. `overrides`:
  TTMConfig fields applied to the model first (`factory.derive`: new
  weights initialised as the reference does, the new residual branches'
  outputs zero when `zero_residuals`), e.g.
  `recipes.exogenous_fields`, whose windows are then `Standardized` by
  `inputs` (the forecast's; module docstring)."""
  context = model.config.context_length
  horizon = model.config.output_length
  rule = windows.SplitRule(train_fraction=fraction, test_fraction=0.0)
  count = sum(windows.num_windows(
      windows.split_ranges(len(v), rule, context)['train'][1], context,
      horizon) for v in data_table.values)
  if count < 1:
    raise errors.DataError(
        f'finetune={fraction:g}: the first {fraction:g} of each history has '
        f'no training window of {context} + {horizon} rows: give more '
        'history or a larger fraction.')
  config = recipes.few_shot(source, context=context, horizon=horizon,
                            quick=quick)
  if overrides:
    config.model.overrides.update(overrides)
    config.model.zero_new_residuals = zero_residuals
  config.data.update(kind='csv', name='finetune', fewshot_fraction=0.0,
                     train_fraction=fraction, test_fraction=0.0)
  if config.data.batch_size > count:  # Not padded up to a full batch.
    _LOG.warning('finetune: %d training windows, fewer than the batch of '
                 '%d: the batch is %d.', count, config.data.batch_size,
                 count)
    config.data.batch_size = count
  # Validation (the rest of each history) selects and stops early; there
  # is no test split.
  config.evals = dict(val=dict(type='windows', split='valid',
                               every_steps=0, final=True))
  config.tensorboard = False
  data = builders.table_data(
      data_table, context, horizon, rule, 'finetune',
      transform=exogenous_transform(overrides, inputs,
                                    model.config.scaler_type))
  return loop.fit_model(model, data, config, workdir)
