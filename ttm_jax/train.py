"""The training and evaluation engine: `train_and_evaluate(config, workdir)`.

Jitted, data-parallel steps over a 1-D mesh of every device of every process
(parameters replicated, batch split); AdamW + one-cycle as the reference;
orbax checkpoints (state + data iterator) that resume exactly; early stopping
on validation loss with the best model kept for the test; export in the
reference's format; metrics.jsonl, TensorBoard and results.json.

Modes (`config.mode`): 'zero_shot' (evaluate only), 'finetune' (full, or head
probing with `config.frozen` regexes), 'pretrain' (channel-independent
mixture with diverse resolution sampling).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import time
from typing import Any, Dict, List, Optional, Sequence

import flax
import grain
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from ttm_jax import optim
from ttm_jax import writers
from ttm_jax.data import forecasting
from ttm_jax.data import pipeline
from ttm_jax.data import pretrain
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib

_LOG = logging.getLogger(__name__)
MODEL_INPUTS = ('past_values', 'past_observed_mask', 'future_values',
                'future_observed_mask', 'freq_token',
                'static_categorical_values')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any
  rng: jax.Array


# ------------------------------------------------------------------- mesh
def make_mesh(devices=None) -> jax.sharding.Mesh:
  """1-D 'data' mesh over `devices` (default: every device of every
  process). Auto axis type: the pmap model, where XLA propagates the batch
  sharding itself."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def shard_batch(batch: Dict[str, np.ndarray], mesh) -> Dict[str, jax.Array]:
  """This process's rows of a global batch -> a global array split on data."""
  sharding = NamedSharding(mesh, P('data'))
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def replicate(tree, mesh):
  return jax.device_put(tree, NamedSharding(mesh, P()))


# ------------------------------------------------------------------- model
def build_model(config: ml_collections.ConfigDict):
  """(TTMConfig, module, variables) from a checkpoint or from scratch."""
  model_cfg = config.model
  overrides = dict(model_cfg.get('overrides', {}) or {})
  rng = jax.random.key(config.seed)
  if model_cfg.get('checkpoint'):
    ttm_config, _, variables, report = checkpoint.load_pretrained(
        model_cfg.checkpoint, revision=model_cfg.get('revision') or None,
        rng=rng, return_report=True, **overrides)
    if report.new:
      _LOG.warning('New weights: %s', report.new)
  else:
    arch = dict(model_cfg.get('arch', {}) or {})
    arch.setdefault('context_length', config.context_length)
    arch.setdefault('prediction_length', config.prediction_length)
    arch.update(overrides)
    ttm_config = config_lib.TTMConfig(**arch)
    variables = checkpoint.init_variables(ttm_config, rng)
  if ttm_config.context_length != config.context_length:
    raise config_lib.ConfigError(
        f'config.context_length={config.context_length} but the model\'s is '
        f'{ttm_config.context_length}: set them equal.')
  if ttm_config.output_length != config.prediction_length:
    raise config_lib.ConfigError(
        f'config.prediction_length={config.prediction_length} but the model '
        f'forecasts {ttm_config.output_length} steps (prediction_length '
        f'{ttm_config.prediction_length}, prediction_filter_length '
        f'{ttm_config.prediction_filter_length}); set '
        'model.overrides.prediction_filter_length.')
  dtype = jnp.bfloat16 if config.get('compute_dtype') == 'bfloat16' else None
  module = checkpoint.build_model(ttm_config, dtype=dtype)
  return ttm_config, module, variables


# -------------------------------------------------------------------- data
@dataclasses.dataclass
class Data:
  train: Optional[Any]
  valid: Any
  test: Any
  name: str
  scalers: Optional[List[windows.Scaler]] = None
  weights: Optional[List[float]] = None


def build_data(config: ml_collections.ConfigDict) -> Data:
  data = config.data
  cl, fl = config.context_length, config.prediction_length
  if data.kind == 'benchmark':
    splits = forecasting.load_benchmark(
        data.name, cl, fl, data_dir=data.get('data_dir') or None,
        fewshot_fraction=data.get('fewshot_fraction') or None)
    return Data(splits.train, splits.valid, splits.test, data.name,
                splits.scalers)
  if data.kind == 'csv':
    table = sources.read_table(
        data.path, timestamp_column=data.get('timestamp_column') or None,
        target_columns=list(data.target_columns) or None,
        control_columns=list(data.get('control_columns', [])),
        static_categorical_columns=list(
            data.get('static_categorical_columns', [])),
        id_columns=list(data.get('id_columns', [])),
        freq=data.get('freq') or None)
    splits = forecasting.make_splits(
        table, cl, fl, windows.SplitRule(
            train_fraction=data.get('train_fraction', 0.7),
            test_fraction=data.get('test_fraction', 0.2)),
        fewshot_fraction=data.get('fewshot_fraction') or None)
    return Data(splits.train, splits.valid, splits.test, data.name,
                splits.scalers)
  if data.kind == 'pretrain':
    corpora = []
    for corpus_cfg in data.corpora:
      if corpus_cfg['kind'] == 'synthetic':
        found = pretrain.synthetic_corpora(
            corpus_cfg.get('num_series', 64), seed=corpus_cfg.get('seed', 0))
      elif corpus_cfg['kind'] == 'tsf':
        found = [pretrain.tsf_corpus(corpus_cfg['path'])]
      else:
        raise ValueError(f'unknown corpus kind {corpus_cfg["kind"]!r}')
      for corpus in found:
        factors = corpus_cfg.get('drs_factors', ())
        if isinstance(factors, dict):  # Per frequency of the corpus.
          factors = factors.get(corpus.freq, ())
        corpora.extend(pretrain.diverse_resolutions(
            corpus, factors, corpus_cfg.get('drs_method', 'mean')))
    splits = [pretrain.corpus_splits(c, cl, fl) for c in corpora]
    splits = [s for s in splits if s is not None]
    if not splits:
      raise sources.DataError('No pretraining corpus has a series long '
                              'enough for one window.')
    trains = [s['train'] for s in splits]
    weights = [float(len(t)) for t in trains]
    return Data(trains, forecasting.ConcatSource([s['valid'] for s in splits]),
                forecasting.ConcatSource([s['test'] for s in splits]),
                data.name, weights=weights)
  raise ValueError(f'unknown data.kind {data.kind!r}')


# ------------------------------------------------------------------- steps
def _inputs(batch, ttm_config):
  inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
  if not ttm_config.resolution_prefix_tuning:
    inputs.pop('freq_token', None)
  if ttm_config.categorical_vocab_size_list is None:
    inputs.pop('static_categorical_values', None)
  return inputs


def make_train_step(module, ttm_config, tx, mesh, frozen: Sequence[str] = ()):
  """One optimizer step: pure, jitted once, state donated.

  Parameters matching the `frozen` regexes are constants to autodiff (their
  gradient is zero, so no backward pass runs through a frozen backbone, and
  `grad_norm` is over the trained parameters, as HF's Trainer reports it);
  `tx` must leave them unchanged too (`optim.make_optimizer(frozen=...)`).
  """
  replicated = NamedSharding(mesh, P())

  def step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    labels = optim.path_labels(state.params, frozen) if frozen else None

    def loss_fn(params):
      if labels is not None:
        params = jax.tree.map(
            lambda p, label: jax.lax.stop_gradient(p) if label == 'frozen'
            else p, params, labels)
      variables = {'params': params}
      if state.batch_stats:
        variables['batch_stats'] = state.batch_stats
      out, updates = module.apply(
          variables, **_inputs(batch, ttm_config), deterministic=False,
          rngs={'dropout': rng}, mutable=['batch_stats'])
      return out.loss, updates.get('batch_stats', {})

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params,
                              opt_state=opt_state,
                              batch_stats=batch_stats or state.batch_stats)
    metrics = {'train/loss': loss, 'grad_norm': optax.global_norm(grads)}
    lr = optim.current_learning_rate(opt_state)
    if lr is not None:
      metrics['lr'] = lr
    return new_state, metrics

  return jax.jit(step, donate_argnums=(0,), out_shardings=(replicated,
                                                           replicated))


def make_eval_step(module, ttm_config, mesh):
  """Sums of squared and absolute errors and element counts of a batch,
  weighted by `weight` (padding) and the future observed mask."""
  replicated = NamedSharding(mesh, P())

  def step(variables, batch):
    out = module.apply(variables, **_inputs(batch, ttm_config))
    target = batch['future_values'][:, :ttm_config.output_length]
    mask = batch['future_observed_mask'][:, :ttm_config.output_length]
    pci = ttm_config.prediction_channel_indices
    if pci is not None:
      target, mask = target[..., list(pci)], mask[..., list(pci)]
    error = out.prediction_outputs - target
    weight = mask * batch['weight'][:, None, None]
    return {'se': jnp.sum(weight * error**2), 'ae': jnp.sum(
        weight * jnp.abs(error)), 'count': jnp.sum(weight),
            'windows': jnp.sum(batch['weight'])}

  return jax.jit(step, out_shardings=replicated)


def evaluate(eval_step, variables, source, batch_size, mesh,
             num_threads=0, progress: str = '') -> Dict[str, float]:
  """Exact MSE/MAE over every window, step and channel of `source`.

  Per-batch sums stay on the device until the end (read in float64), so
  the host builds the next batch while the device computes; `progress`
  labels a progress bar (process 0)."""
  devices = mesh.devices.size
  batch_size = -(-batch_size // devices) * devices
  batches = pipeline.EvalBatches(source, batch_size, num_threads=num_threads)
  bar = writers.Progress(len(batches), unit='batch', desc=progress,
                         leave=False) if progress else None
  pending = []
  for k, batch in enumerate(batches, 1):
    pending.append(eval_step(variables, shard_batch(batch, mesh)))
    if k > 1:  # At most two batches in flight: bounded memory.
      jax.block_until_ready(pending[-2])
    if bar is not None:
      bar.update(k)
  totals = {key: sum(np.float64(s[key]) for s in jax.device_get(pending))
            for key in pending[0]}
  if bar is not None:
    bar.close()
  return {'mse': totals['se'] / totals['count'],
          'mae': totals['ae'] / totals['count'],
          'num_windows': int(round(totals['windows']))}


def _drop_remainder(config, ttm_config) -> bool:
  """Whether each epoch's partial batch is dropped (`data.drop_remainder`;
  False pads it, as HF's Trainer keeps it). Padding rows would enter
  BatchNorm statistics, so that combination is refused."""
  drop = bool(config.data.get('drop_remainder', True))
  if not drop and 'batch' in ttm_config.norm_mlp.lower():
    raise ValueError(
        "config.data.drop_remainder=False pads each epoch's last batch, and "
        "padding rows would enter the statistics of norm_mlp='BatchNorm'; "
        'set config.data.drop_remainder=True for this model.')
  return drop


# ------------------------------------------------------------- LR finder
def find_learning_rate(config, module, ttm_config, variables, tx_kwargs,
                       train_source, mesh, drop_remainder: bool) -> float:
  """The reference's LR finder: exponential sweep 1e-7 -> 10 over 100
  steps of AdamW (no clipping) on shuffled batches, EMA-smoothed loss,
  stop at 4x the best, 'valley' suggestion; the weights are untouched."""
  finder = config.optim.lr_finder
  rates_fn = optim.lr_finder_rates(finder.start_lr, finder.end_lr,
                                   finder.num_iter)
  # Plain AdamW (constant beta1, no clipping) stepping through the sweep:
  # optimizer step k uses rates_fn(k), as the torch scheduler gives it.
  frozen = tx_kwargs['frozen']
  tx = optim.make_optimizer(0, rates_fn, schedule='constant',
                            weight_decay=tx_kwargs['weight_decay'],
                            frozen=frozen, params=variables['params'])
  state = init_state(config, variables, tx, mesh)
  step = make_train_step(module, ttm_config, tx, mesh, frozen)
  # Shuffled batches, epoch after epoch, as the reference's DataLoader
  # (shuffle=True) gives them; an order of its own (seed + 1).
  batches = iter(pipeline.train_dataset(
      train_source, config.data.batch_size,
      config.data.get('seed', config.seed) + 1,
      drop_remainder=drop_remainder))
  losses, rates, best, average = [], [], float('inf'), 0.0
  for k in range(finder.num_iter + 1):
    state, metrics = step(state, shard_batch(next(batches), mesh))
    loss = float(metrics['train/loss'])
    average = finder.beta * average + (1 - finder.beta) * loss
    smoothed = average / (1 - finder.beta**(k + 1))
    losses.append(smoothed)
    rates.append(rates_fn(k + 1))
    best = min(best, smoothed)
    if smoothed > 4 * best or not np.isfinite(smoothed):
      break
  suggestion = optim.valley(rates, losses)
  _LOG.info('LR finder: %d steps, suggested learning rate %.3g', len(losses),
            suggestion)
  return suggestion


# ------------------------------------------------------------ checkpoints
def init_state(config, variables, tx, mesh) -> TrainState:
  # The state is donated to the train step, so it must own its buffers:
  # without the copy, a second state built from the same variables (after
  # the LR finder) would read deleted arrays.
  variables = jax.tree_util.tree_map(jnp.copy, variables)
  params = variables['params']
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                     opt_state=tx.init(params),
                     batch_stats=variables.get('batch_stats', {}),
                     rng=jax.random.key_data(jax.random.key(config.seed + 1)))
  return replicate(state, mesh)


def _state_rng(state):
  return jax.random.wrap_key_data(state.rng)


class Checkpoints:
  """Latest-N and best checkpoints in the workdir (orbax, async)."""

  def __init__(self, workdir: str, config):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.get('keep_checkpoints', 3),
        enable_async_checkpointing=True, create=True)
    self.latest = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), 'checkpoints'),
        options=options, item_names=('state', 'data', 'meta'))
    self.best = ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), 'best'),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                             enable_async_checkpointing=False),
        item_names=('variables', 'meta'))

  def save(self, state, iterator, meta, force=False):
    step = int(state.step)
    if step in self.latest.all_steps():
      return
    self.latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(iterator),
        meta=ocp.args.JsonSave(meta)), force=force)

  def restore(self, abstract_state, iterator):
    step = self.latest.latest_step()
    if step is None:
      return None
    restored = self.latest.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(iterator),
        meta=ocp.args.JsonRestore()))
    return restored.state, restored.meta

  def save_best(self, step, variables, meta):
    # Both managers sync processes through orbax's process-wide barriers
    # (same keys): a best save racing the latest manager's async finalize
    # fails multi-process with "Barrier ... is already ongoing".
    self.latest.wait_until_finished()
    if step in self.best.all_steps():  # Re-reached after a resume.
      self.best.delete(step)
    self.best.save(step, args=ocp.args.Composite(
        variables=ocp.args.StandardSave(variables),
        meta=ocp.args.JsonSave(meta)), force=True)
    self.best.wait_until_finished()

  def restore_best(self, abstract_variables):
    step = self.best.latest_step()
    if step is None:
      return None
    return self.best.restore(step, args=ocp.args.Composite(
        variables=ocp.args.StandardRestore(abstract_variables),
        meta=ocp.args.JsonRestore())).variables

  def wait(self):
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.latest.close()
    self.best.close()


class Preemption:
  """SIGTERM -> finish the current step, checkpoint, exit cleanly."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    _LOG.warning('SIGTERM: saving a checkpoint before exiting.')
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


# ------------------------------------------------------------------- main
def _variables(state: TrainState) -> Dict[str, Any]:
  out = {'params': state.params}
  if state.batch_stats:
    out['batch_stats'] = state.batch_stats
  return out


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> List[Dict[str, Any]]:
  """Runs `config` in `workdir`; returns the results records."""
  os.makedirs(workdir, exist_ok=True)
  mesh = make_mesh()
  ttm_config, module, variables = build_model(config)
  data = build_data(config)
  writer = writers.MetricWriter(workdir, config.get('tensorboard', True))
  eval_step = make_eval_step(module, ttm_config, mesh)
  eval_batch = config.data.get('eval_batch_size') or config.data.batch_size
  threads = config.data.get('num_threads', 0)
  results_meta = dict(dataset=data.name,
                      context_length=config.context_length,
                      prediction_length=config.prediction_length)
  buffers = {k: v for k, v in variables.items() if k not in ('params',
                                                            'batch_stats')}

  def full_variables(v):
    return {**v, **buffers}

  if config.mode != 'zero_shot':
    variables, summary = train(config, workdir, mesh, module, ttm_config,
                               variables, data, writer, eval_step, buffers)
    results_meta['training'] = summary
  variables = replicate(full_variables(
      {k: v for k, v in variables.items() if k in ('params', 'batch_stats')}),
                        mesh)
  results = []
  for split in config.get('eval_splits', ('test',)):
    source = data.valid if split == 'valid' else data.test
    start = time.time()
    metrics = evaluate(eval_step, variables, source, eval_batch, mesh,
                       threads, progress=f'{data.name} {split}')
    record = dict(results_meta, split=split, **metrics,
                  seconds=round(time.time() - start, 1),
                  mode=config.mode)
    results.append(record)
    writer.write(int(config.get('final_step', 0)), {
        f'{split}/mse': metrics['mse'], f'{split}/mae': metrics['mae']})
    print(f'[{data.name} {split}] mse {metrics["mse"]:.6f} mae '
          f'{metrics["mae"]:.6f} over {metrics["num_windows"]} windows '
          f'({record["seconds"]} s)', flush=True)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump(results, f, indent=2)
    if config.get('export', True):
      checkpoint.save_pretrained(os.path.join(workdir, 'export'), ttm_config,
                                 jax.device_get(variables))
    if config.get('plot', False):
      writers.plot_forecasts(os.path.join(workdir, 'forecast.png'), module,
                             variables, data.test, ttm_config,
                             title=f'{data.name} test windows')
  writer.close()
  if jax.process_index() == 0:
    outputs = ', '.join(
        name for name in ('results.json', 'metrics.jsonl', 'tensorboard',
                          'checkpoints', 'best', 'export', 'forecast.png',
                          'config.json') if os.path.exists(
                              os.path.join(workdir, name)))
    print(f'Wrote to {os.path.abspath(workdir)}: {outputs}', flush=True)
  return results


def train(config, workdir, mesh, module, ttm_config, variables, data, writer,
          eval_step, buffers):
  """The training loop; returns the variables to test (the best) and a
  summary (learning rate, steps, best step and validation MSE)."""
  cfg = config
  batch_size = cfg.data.batch_size
  drop_remainder = _drop_remainder(cfg, ttm_config)
  if cfg.mode == 'pretrain':
    num_train = int(sum(len(t) for t in data.train))
    steps_per_epoch = cfg.get('steps_per_epoch') or max(
        num_train // batch_size, 1)
  else:
    num_train = len(data.train)
    steps_per_epoch = pipeline.steps_per_epoch(num_train, batch_size,
                                               drop_remainder)
    if steps_per_epoch == 0:
      raise sources.DataError(
          f'{num_train} training windows are fewer than one batch of '
          f'{batch_size}.')
  total_steps = cfg.get('num_steps') or steps_per_epoch * cfg.num_epochs
  frozen = tuple(cfg.get('frozen', ()) or ())
  tx_kwargs = dict(weight_decay=cfg.optim.weight_decay,
                   schedule=cfg.optim.schedule,
                   pct_start=cfg.optim.get('pct_start', 0.3),
                   cycle_momentum=cfg.optim.get('cycle_momentum', True),
                   clip_norm=cfg.optim.get('clip_norm', 0.0), frozen=frozen)
  with_params = dict(params=variables['params'])
  ckpts = Checkpoints(workdir, cfg)
  learning_rate = cfg.optim.lr
  resumed_meta = None
  if ckpts.latest.latest_step() is not None:
    # The LR (found or given) is part of the run's record: reuse it.
    resumed_meta = ckpts.latest.restore(
        ckpts.latest.latest_step(),
        args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    learning_rate = resumed_meta['learning_rate']
  elif cfg.optim.get('lr_finder') and cfg.optim.lr_finder.enabled:
    learning_rate = find_learning_rate(
        cfg, module, ttm_config, variables, tx_kwargs,
        data.train if cfg.mode != 'pretrain' else data.train[0], mesh,
        drop_remainder)
  tx = optim.make_optimizer(total_steps, learning_rate, **tx_kwargs,
                            **with_params)
  state = init_state(cfg, variables, tx, mesh)
  if cfg.mode == 'pretrain':
    dataset = pipeline.mixture_dataset(data.train, data.weights, batch_size,
                                       cfg.data.get('seed', cfg.seed),
                                       num_threads=cfg.data.get(
                                           'num_threads', 0))
  else:
    dataset = pipeline.train_dataset(
        data.train, batch_size, cfg.data.get('seed', cfg.seed),
        drop_remainder=drop_remainder,
        num_threads=cfg.data.get('num_threads', 0))
  iterator = iter(dataset)
  meta = dict(learning_rate=learning_rate, best_val=None, best_step=None,
              bad_evals=0, stopped=False)
  restored = ckpts.restore(state, iterator)
  if restored is not None:
    state, meta = restored
    state = replicate(state, mesh)
    _LOG.info('Resumed from step %d in %s', int(state.step), workdir)
    print(f'Resumed from step {int(state.step)}.', flush=True)
  train_step = make_train_step(module, ttm_config, tx, mesh, frozen)
  eval_every = cfg.get('eval_every_steps') or steps_per_epoch
  log_every = cfg.get('log_every_steps', 50)
  ckpt_every = cfg.get('checkpoint_every_steps') or eval_every
  eval_batch = cfg.data.get('eval_batch_size') or batch_size
  patience = cfg.get('early_stopping_patience', 0)
  preemption = Preemption()
  progress = writers.Progress(total_steps, int(state.step))
  pending = None
  start_step = int(state.step)
  try:
    step = start_step
    while step < total_steps and not meta['stopped']:
      batch = next(iterator)
      state, metrics = train_step(state, shard_batch(batch, mesh))
      step += 1
      if pending is not None:  # Log one step late: never wait on the device.
        progress.update(pending[0], pending[1])
        if pending[0] % log_every == 0 or pending[0] == start_step + 1:
          writer.write(pending[0], jax.device_get(pending[1]))
      pending = (step, metrics)
      if step % eval_every == 0 or step == total_steps:
        current = {**_variables(state), **buffers}
        threads = cfg.data.get('num_threads', 0)
        val = evaluate(eval_step, current, data.valid, eval_batch, mesh,
                       threads)
        logged = {'val/loss': val['mse'], 'val/mae': val['mae']}
        if cfg.get('track_test'):
          # Analysis only (how test moves along the validation curve); the
          # model choice and early stopping use validation alone.
          test = evaluate(eval_step, current, data.test, eval_batch, mesh,
                          threads)
          logged.update({'track/test_mse': test['mse'],
                         'track/test_mae': test['mae']})
        writer.write(step, logged)
        improved = meta['best_val'] is None or val['mse'] < meta['best_val']
        if improved:
          meta.update(best_val=val['mse'], best_step=step, bad_evals=0)
          ckpts.save_best(step, jax.device_get(_variables(state)),
                          {'val_loss': val['mse'], 'step': step})
        else:
          meta['bad_evals'] += 1
          if patience and meta['bad_evals'] >= patience:
            meta['stopped'] = True
        progress.write(
            f'step {step}/{total_steps} epoch {step / steps_per_epoch:.1f}: '
            f'val mse {val["mse"]:.5f} (best {meta["best_val"]:.5f} at '
            f'{meta["best_step"]})' + (
                f' [test mse {logged["track/test_mse"]:.5f}]'
                if 'track/test_mse' in logged else '') +
            (' early stop' if meta['stopped'] else ''))
      if step % ckpt_every == 0 or preemption.requested:
        ckpts.save(state, iterator, meta, force=preemption.requested)
      if preemption.requested:
        ckpts.wait()
        raise SystemExit('Preempted (SIGTERM): checkpoint saved at step '
                         f'{step}; rerun the same command to resume.')
    if pending is not None:
      progress.update(pending[0], pending[1])
      writer.write(pending[0], jax.device_get(pending[1]))
    ckpts.save(state, iterator, meta, force=True)
    ckpts.wait()
  finally:
    preemption.restore()
    progress.close()
  final = _variables(state)
  best = ckpts.restore_best(jax.device_get(final))
  ckpts.close()
  summary = dict(learning_rate=float(meta['learning_rate']),
                 steps=int(state.step), steps_per_epoch=steps_per_epoch,
                 best_step=meta['best_step'], best_val_mse=meta['best_val'],
                 early_stopped=bool(meta['stopped']), tested='final')
  if best is not None and cfg.get('test_best', True):
    print(f'Testing the best model (step {meta["best_step"]}, val mse '
          f'{meta["best_val"]:.5f}).', flush=True)
    return best, dict(summary, tested='best')
  return final, summary

