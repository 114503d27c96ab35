"""The jitted steps: one optimiser step, and inference batches. Pure
functions, compiled once; the train state is donated; metrics are flat
dicts of scalars. (The evaluation step is `evaluators.windows`'.)"""

from __future__ import annotations

from typing import Callable

import jax
import optax

from ttm_jax import compilation
from ttm_jax import optim
from ttm_jax import sharding
from ttm_jax.models import factory
from ttm_jax.models import ttm
from ttm_jax.train import state as state_lib


def make_train_step(model: factory.Model, optimizer: optim.Optimizer,
                    mesh) -> Callable:
  """`step(state, batch) -> (state, metrics)`, jitted, state donated.

  Parameters the optimizer freezes are constants to autodiff (their
  gradient is zero, so no backward pass runs through a frozen backbone, and
  `grad_norm` is over the trained parameters, as HF's Trainer reports it).
  Dropout keys are `fold_in(state.rng, state.step)`.
  """
  module, config = model.module, model.config

  def step(state: state_lib.TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      params = optimizer.stop_frozen_gradients(params)
      out, updates = module.apply(
          {**state.variables, 'params': params},
          **ttm.model_inputs(batch, config), deterministic=False,
          rngs={'dropout': rng}, mutable=['batch_stats'])
      return out.loss, updates.get('batch_stats', {})

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state,
                                          state.params)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params,
                                                         updates),
                              opt_state=opt_state,
                              batch_stats=batch_stats or state.batch_stats)
    metrics = {'train/loss': loss, 'grad_norm': optax.global_norm(grads),
               'lr': optim.current_learning_rate(opt_state)}
    return new_state, metrics

  replicated = sharding.replicated(mesh)
  return compilation.jit(step, 'train', compilation.precision_of(module),
                         donate_argnums=(0,),
                         out_shardings=(replicated, replicated))
