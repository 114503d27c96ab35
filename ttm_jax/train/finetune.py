"""Fine-tunes of a model already in memory, with the library's recipes, by
the one training loop (`loop.fit_model`): no data file, no run folder
unless asked for, no reload.

  histories   IBM's GIFT-Eval recipe for TTM-R2-Finetuned on univariate
              histories (`recipes.series_finetune`): the benchmark
              runner's per-task fine-tune
  table       IBM's few-shot head probing (`recipes.few_shot`) on the first
              fraction of each series of a table: `ttm_jax.forecast(
              finetune=F)`
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax import recipes
from ttm_jax.data import builders
from ttm_jax.data import forecasting
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.models import factory
from ttm_jax.train import loop

_LOG = logging.getLogger(__name__)


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
              workdir: Optional[str] = None
              ) -> Tuple[Optional[factory.Model], Dict[str, Any]]:
  """IBM's GIFT fine-tune recipe (`recipes.series_finetune`) of `model`
  (named `source` in the records) on univariate histories, for forecasts
  of `horizon` steps.

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
  data = builders.series_data(
      series, freq, context, horizon, config.data.name,
      min_context_mult=config.data.min_context_mult,
      train_windows=config.data.train_windows,
      valid_windows=config.data.eval_max_windows, seed=config.data.seed)
  tuned, summary = loop.fit_model(model, data, config, workdir)
  return tuned, dict(finetuned=True, training_windows=count,
                     used_windows=used, epochs=config.num_epochs, **summary)


def table(model: factory.Model, source: str, data_table: sources.Table,
          fraction: float,
          *, quick: bool = False, workdir: Optional[str] = None,
          overrides: Optional[Dict[str, Any]] = None
          ) -> Tuple[factory.Model, Dict[str, Any]]:
  """IBM's few-shot head probing (`recipes.few_shot`: LR finder,
  one-cycle, early stopping) of `model` (named `source` in the records;
  its recipe as `recipes.few_shot`'s default data, as before this ran in
  memory) on the first `fraction` of each
  series of `data_table`, validated on the rest; its batch at most the
  number of training windows. In memory unless `workdir`. `overrides`:
  TTMConfig fields applied to the model first (`factory.derive`: new
  weights initialised as the reference does), e.g.
  `recipes.exogenous_fields`."""
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
  data = builders.table_data(data_table, context, horizon, rule, 'finetune')
  return loop.fit_model(model, data, config, workdir)
