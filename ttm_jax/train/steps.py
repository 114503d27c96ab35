"""The jitted steps: one optimiser step, and one evaluation batch's metric
sums added to running totals. Pure functions, compiled once; the train
state is donated; metrics are flat dicts of scalars."""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import jax
import numpy as np
import optax

from ttm_jax import compilation
from ttm_jax import metrics as metrics_lib
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
  return compilation.jit(step, 'train', donate_argnums=(0,),
                         out_shardings=(replicated, replicated))


def model_forecaster(model: factory.Model) -> Callable:
  """`forecast(variables, batch) -> (point [b, h, c'], quantiles
  [b, h, c', q] or None)` of a TTM."""
  def forecast(variables, batch):
    out = model.module.apply(variables,
                             **ttm.model_inputs(batch, model.config))
    return out.prediction_outputs, out.quantile_outputs
  return forecast


def make_eval_step(forecast: Callable, metrics: Sequence[metrics_lib.Metric],
                   mesh, config=None, *, season: int = 1,
                   levels: Sequence[float] = metrics_lib.DEFAULT_LEVELS,
                   compare: Optional[Mapping[str, Callable]] = None
                   ) -> Callable:
  """`step(variables, batch, totals) -> totals`: the metric sums of
  `forecast(variables, batch)` on the batch (weighted by the future
  observed mask and the window `weight`) added to running totals on the
  device; `totals=None` starts them.

  Args:
    forecast: `(variables, batch) -> point [b, h, c']`, or `(point,
      quantiles [b, h, c', q] or None)`.
    metrics: what to sum.
    mesh: the data mesh.
    config: a TTMConfig, to align targets with the forecast (horizon
      filter, channel selection); None: as given.
    season: the season of MASE and MSIS.
    levels: the quantile levels (of the quantiles, or at which a point
      forecast is scored).
    compare: other forecasters `batch -> point` (e.g. seasonal naive)
      scored with the same metrics on the same windows; their results come
      back as nested objects under their names.
  """
  pci = config.prediction_channel_indices if config is not None else None

  def sums(variables, batch):
    target, mask = batch['future_values'], batch['future_observed_mask']
    if config is not None:
      target, mask = ttm.align_targets(config, target, mask)
    window = batch['weight']

    def scored(out, prefix=''):
      point, quantiles = out if isinstance(out, tuple) else (out, None)
      return metrics_lib.batch_sums(metrics, metrics_lib.make_eval_batch(
          prediction=point, target=target,
          weight=mask * window[:, None, None], past=batch['past_values'],
          past_weight=batch['past_observed_mask'] * window[:, None, None],
          window_weight=window, pci=pci, quantiles=quantiles,
          levels=levels, season=season), prefix)

    out = scored(forecast(variables, batch))
    for name, other in (compare or {}).items():
      point = other(batch)
      if pci is not None and point.shape[-1] != len(pci):
        point = point[..., list(pci)]
      out.update(scored(point[:, :target.shape[1]], f'{name}:'))
    return out

  replicated = sharding.replicated(mesh)
  # Totals are not donated: the evaluator waits on the previous ones.
  add = compilation.jit(
      lambda v, b, t: metrics_lib.accumulate(t, sums(v, b)), 'infer',
      out_shardings=replicated)

  def step(variables, batch, totals=None):
    if totals is None:  # Zeros of the sums' shapes (traced, not compiled).
      shapes = jax.eval_shape(sums, variables, batch)
      totals = sharding.replicate(metrics_lib.zeros_like_totals(
          {k: np.zeros(v.shape, v.dtype) for k, v in shapes.items()}), mesh)
    return add(variables, batch, totals)

  return step


def make_predict_fn(model: factory.Model, mesh,
                    variables=None) -> Callable:
  """`predict(batch) -> TTMOutput` for inference with `variables` (default
  the model's), jitted with the inference options. A batch of at least one
  window per device is split over the mesh (padded to a multiple of the
  devices, then cut back); a smaller one runs on one device."""
  module, config = model.module, model.config
  variables = model.variables if variables is None else variables
  devices = mesh.devices.size

  def apply(v, batch):
    return module.apply(v, **ttm.model_inputs(batch, config))

  single = compilation.jit(apply, 'infer')
  spread = compilation.jit(apply, 'infer',
                           out_shardings=sharding.replicated(mesh))
  on_one = jax.device_put(variables, mesh.devices.flat[0])
  on_all = sharding.replicate(variables, mesh)

  def predict(batch):
    ttm.warn_if_nan(batch.get('past_values'))
    size = len(next(iter(batch.values())))
    if size < devices:
      return single(on_one, batch)
    padded = sharding.round_to_devices(size, mesh)
    if padded != size:
      batch = {k: np.concatenate([v, np.repeat(v[:1], padded - size, 0)])
               for k, v in batch.items()}
    out = spread(on_all, sharding.shard_batch(batch, mesh))
    return jax.tree.map(lambda x: x[:size] if x.ndim else x, out)

  return predict
