"""The reference's learning-rate finder (granite-tsfm `optimal_lr_finder`):
an exponential sweep of AdamW (no clipping) over shuffled batches, the loss
EMA-smoothed, stopped at 4x the best, and the 'valley' suggestion. The
model's weights are untouched (the sweep runs on a copy)."""

from __future__ import annotations

import logging

import numpy as np

from ttm_jax import optim
from ttm_jax import sharding
from ttm_jax.models import factory
from ttm_jax.train import state as state_lib
from ttm_jax.train import steps

_LOG = logging.getLogger(__name__)


def find_learning_rate(config, model: factory.Model, batches, mesh) -> float:
  """The suggested learning rate for `model` on `batches` (an iterable of
  host batches, used epoch after epoch)."""
  finder = config.optim.lr_finder
  rates_fn = optim.lr_finder_rates(finder.start_lr, finder.end_lr,
                                   finder.num_iter)
  # Constant beta1, no clipping; optimizer step k uses rates_fn(k), as the
  # torch scheduler gives it.
  optimizer = optim.make_optimizer(
      0, rates_fn, schedule='constant',
      weight_decay=config.optim.weight_decay, frozen=config.frozen,
      params=model.variables['params'])
  state = state_lib.create_train_state(config.seed, model.variables,
                                       optimizer, mesh)
  step = steps.make_train_step(model, optimizer, mesh)
  iterator = iter(batches)
  raw, rates = [], []
  for k in range(finder.num_iter + 1):
    state, metrics = step(state, sharding.shard_batch(next(iterator), mesh))
    raw.append(float(metrics['train/loss']))
    rates.append(rates_fn(k + 1))
    smoothed = optim.smoothed(raw, finder.beta)
    if smoothed[-1] > 4 * min(smoothed) or not np.isfinite(smoothed[-1]):
      break
  suggestion = optim.valley(rates, smoothed)
  _LOG.info('LR finder: %d steps, suggested learning rate %.3g', len(raw),
            suggestion)
  return suggestion
