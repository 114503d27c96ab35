"""`train_and_evaluate(config, workdir)`: the story of a run.

  1. Resolve and validate the config; build the mesh, model and data.
  2. Train (unless zero-shot): restore or initialise; then for each step:
     step, log, evaluate, checkpoint, stop on preemption or early
     stopping.
  3. Test the best model (or the final one) on the evaluation splits.
  4. Export it in the reference's format; write results.json.

Each concern lives in its own module: steps (train/eval steps), evaluation
(streamed metrics), checkpoints (orbax, preemption), lr_finder; the model
comes from `models.factory`, the data from `data.builders`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax import metrics as metrics_lib
from ttm_jax import optim
from ttm_jax import schema
from ttm_jax import sharding
from ttm_jax.data import builders
from ttm_jax.data import pipeline
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.train import checkpoints as checkpoints_lib
from ttm_jax.train import divergence
from ttm_jax.train import evaluation
from ttm_jax.train import lr_finder
from ttm_jax.train import state as state_lib
from ttm_jax.train import steps
from ttm_jax.workbench import metric_writer
from ttm_jax.workbench import plots
from ttm_jax.workbench import progress as progress_lib
from ttm_jax.workbench import workdir as workdir_lib

_LOG = logging.getLogger(__name__)
OUTPUTS = ('results.json', 'metrics.jsonl', 'tensorboard', 'checkpoints',
           'best', 'export', 'forecast.png', 'config.json')


@dataclasses.dataclass
class Run:
  """What every stage of a run shares."""
  config: ml_collections.ConfigDict
  workdir: str
  mesh: Any
  model: factory.Model
  data: builders.Data
  writer: metric_writer.MetricWriter
  metrics: Sequence[metrics_lib.Metric]
  eval_step: Callable
  # The test step: `eval_step` plus the compared forecasters (seasonal
  # naive) on the same windows.
  test_step: Optional[Callable] = None
  selection_metric: str = 'mse'
  season: int = 1  # Of MASE, MSIS and seasonal naive.

  @property
  def metric_names(self) -> List[str]:
    return [m.name for m in self.metrics]

  @property
  def eval_batch_size(self) -> int:
    return self.config.data.eval_batch_size or self.config.data.batch_size

  def evaluate(self, variables, split: str, progress: str = '',
               compare: bool = False, step: Optional[Callable] = None,
               metrics: Optional[Sequence[metrics_lib.Metric]] = None):
    """Metrics of `split`: the validation step, or with `compare` the test
    step (seasonal naive beside), or a given `step` and its `metrics`."""
    source = self.data.valid if split == 'valid' else self.data.test
    if step is None:
      step = self.test_step if compare and self.test_step else self.eval_step
    return evaluation.evaluate(
        step, variables, source, self.eval_batch_size, self.mesh,
        metrics or self.metrics, self.config.data.num_threads, progress)


@dataclasses.dataclass(frozen=True)
class Plan:
  """How many steps, and when to log, evaluate and checkpoint."""
  steps_per_epoch: int
  total_steps: int
  eval_every: int
  log_every: int
  checkpoint_every: int

  def evaluates(self, step: int) -> bool:
    return step % self.eval_every == 0 or step == self.total_steps

  def checkpoints(self, step: int) -> bool:
    return step % self.checkpoint_every == 0


def make_plan(config, data: builders.Data, drop: bool) -> Plan:
  steps_per_epoch = config.steps_per_epoch
  if not steps_per_epoch:
    steps_per_epoch = (max(data.num_train_windows // config.data.batch_size,
                           1) if data.is_mixture else pipeline.steps_per_epoch(
                               data.num_train_windows,
                               config.data.batch_size, drop))
  total = config.num_steps or steps_per_epoch * config.num_epochs
  eval_every = config.eval_every_steps or steps_per_epoch
  return Plan(steps_per_epoch, total, eval_every, config.log_every_steps,
              config.checkpoint_every_steps or eval_every)


# ------------------------------------------------------------------- fit
def _learning_rate(run: Run, ckpts, drop: bool) -> float:
  """The run's learning rate: the resumed run's (found or given), else the
  finder's, else config.optim.lr."""
  meta = ckpts.restore_meta()
  if meta is not None:
    return meta['learning_rate']
  if run.config.optim.lr_finder.enabled:
    return lr_finder.find_learning_rate(
        run.config, run.model,
        builders.finder_batches(run.config, run.data, drop), run.mesh)
  return run.config.optim.lr


def _make_optimizer(config, plan: Plan, learning_rate: float, params):
  return optim.make_optimizer(
      plan.total_steps, learning_rate, weight_decay=config.optim.weight_decay,
      schedule=config.optim.schedule, pct_start=config.optim.pct_start,
      cycle_momentum=config.optim.cycle_momentum,
      clip_norm=config.optim.clip_norm, frozen=config.frozen, params=params)


class _Selection:
  """Early stopping and the best model, by the validation selection metric
  (lower is better: mse, or wql for quantile heads). Its `record`
  (learning rate, best, patience count) is checkpointed with the state."""

  def __init__(self, record: Dict[str, Any], patience: int):
    self.record, self.patience = record, patience

  @classmethod
  def fresh(cls, learning_rate: float, patience: int) -> '_Selection':
    return cls(dict(learning_rate=learning_rate, best_val=None,
                    best_step=None, bad_evals=0, stopped=False), patience)

  @property
  def stopped(self) -> bool:
    return self.record['stopped']

  def update(self, step: int, value: float) -> bool:
    """Records a validation result; True when it is the best so far."""
    r = self.record
    if r['best_val'] is None or value < r['best_val']:
      r.update(best_val=value, best_step=step, bad_evals=0)
      return True
    r['bad_evals'] += 1
    r['stopped'] = bool(self.patience and r['bad_evals'] >= self.patience)
    return False


def _validate(run: Run, state, step: int, selection: _Selection, ckpts,
              progress: progress_lib.Progress, plan: Plan) -> None:
  variables = state.variables
  val = run.evaluate(variables, 'valid')
  logged = {'val/loss': val['mse'],
            **{f'val/{k}': v for k, v in val.items()
               if k not in ('mse', 'num_windows')}}
  if run.config.track_test:
    # Analysis only (how test moves along the validation curve); the model
    # choice and early stopping use validation alone.
    test = run.evaluate(variables, 'test')
    logged.update({f'track/test_{k}': v for k, v in test.items()
                   if k != 'num_windows'})
  run.writer.write(step, logged)
  chosen = run.selection_metric
  if selection.update(step, val[chosen]):
    ckpts.save_best(step, jax.device_get(variables),
                    {'val_loss': val[chosen], 'step': step})
  r = selection.record
  progress.write(
      f'step {step}/{plan.total_steps} epoch {step / plan.steps_per_epoch:.1f}'
      f': val {chosen} {val[chosen]:.5f} (best {r["best_val"]:.5f} at '
      f'{r["best_step"]})' + (f' [test mse {logged["track/test_mse"]:.5f}]'
                              if 'track/test_mse' in logged else '')
      + (' early stop' if selection.stopped else ''))


def _restore(run: Run, ckpts, state, iterator, selection: _Selection):
  restored = ckpts.restore(state, iterator)
  if restored is None:
    return state
  state, selection.record = restored
  step = int(state.step)
  run.writer.drop_after(step)
  _LOG.info('Resumed from step %d', step)
  print(f'Resumed from step {step}.', flush=True)
  return sharding.replicate(state, run.mesh)


def fit(run: Run):
  """Trains; returns the variables to test and the training summary."""
  config = run.config
  drop = builders.drop_remainder(config, run.model.config)
  plan = make_plan(config, run.data, drop)
  if plan.steps_per_epoch == 0:
    raise errors.DataError(
        f'{run.data.num_train_windows} training windows are fewer than one '
        f'batch of {config.data.batch_size}.')
  ckpts = checkpoints_lib.Checkpoints(config.checkpoint_dir or run.workdir,
                                      config.keep_checkpoints)
  selection = _Selection.fresh(_learning_rate(run, ckpts, drop),
                               config.early_stopping_patience)
  optimizer = _make_optimizer(config, plan, selection.record['learning_rate'],
                              run.model.variables['params'])
  state = state_lib.create_train_state(config.seed, run.model.variables,
                                       optimizer, run.mesh)
  iterator = iter(builders.train_batches(config, run.data, drop,
                                         config.data.seed))
  state = _restore(run, ckpts, state, iterator, selection)
  try:
    state = _train_steps(run, plan, ckpts, selection, optimizer, state,
                         iterator)
  finally:
    ckpts.wait()
  return _tested_variables(run, ckpts, state, selection, plan)


def _train_steps(run: Run, plan: Plan, ckpts, selection: _Selection,
                 optimizer, state, iterator):
  """The step loop, from the restored step to the end (or an early stop,
  or a preemption, which checkpoints and exits)."""
  train_step = steps.make_train_step(run.model, optimizer, run.mesh)
  start = int(state.step)
  logger = metric_writer.DelayedLogger(run.writer, plan.log_every,
                                       first=start + 1)
  with checkpoints_lib.Preemption() as preemption, progress_lib.Progress(
      plan.total_steps, start) as progress:
    for step in range(start + 1, plan.total_steps + 1):
      if selection.stopped:
        break
      state, metrics = train_step(
          state, sharding.shard_batch(next(iterator), run.mesh))
      logger.log(step, metrics, progress)  # Reads the previous step's.
      if plan.evaluates(step):
        _validate(run, state, step, selection, ckpts, progress, plan)
      if plan.checkpoints(step) or preemption.requested:
        # A diverged state is never checkpointed over a good one.
        divergence.check_finite(step, {'train/loss': metrics['train/loss']})
        ckpts.save(state, iterator, selection.record,
                   force=preemption.requested)
      if preemption.requested:
        ckpts.wait()
        raise SystemExit('Preempted (SIGTERM): checkpoint saved at step '
                         f'{step}; rerun the same command to resume.')
    logger.flush(progress)
  ckpts.save(state, iterator, selection.record, force=True)
  return state


def _tested_variables(run: Run, ckpts, state, selection: _Selection,
                      plan: Plan):
  final = state.variables
  best = ckpts.restore_best(jax.device_get(final))
  ckpts.close()
  r = selection.record
  summary = dict(learning_rate=float(r['learning_rate']),
                 steps=int(state.step), steps_per_epoch=plan.steps_per_epoch,
                 best_step=r['best_step'],
                 **{f'best_val_{run.selection_metric}': r['best_val']},
                 early_stopped=bool(r['stopped']), tested='final')
  if best is not None and run.config.test_best:
    print(f'Testing the best model (step {r["best_step"]}, val '
          f'{run.selection_metric} '
          f'{r["best_val"]:.5f}).', flush=True)
    return best, dict(summary, tested='best')
  return final, summary


# -------------------------------------------------------------- test/export
def test(run: Run, variables, step: int,
         extra: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Every `config.eval_splits` split: records for results.json."""
  config = run.config
  records = []
  conformal = _conformal_step(run, variables) if (
      config.conformal_intervals) else {}
  for split in config.eval_splits:
    start = time.time()
    values = run.evaluate(variables, split, progress=f'{run.data.name} '
                          f'{split}', compare=True,
                          **conformal.get('evaluate', {}))
    values.update(conformal.get('record', {}))
    record = dict(dataset=run.data.name, split=split,
                  context_length=config.context_length,
                  prediction_length=config.prediction_length, **values,
                  seconds=round(time.time() - start, 1), task=config.task,
                  **extra)
    if run.data.notes:
      record['notes'] = list(run.data.notes)
    records.append(record)
    run.writer.write(step, {f'{split}/{k}': v for k, v in values.items()
                            if isinstance(v, float)})
    shown = [k for k in values if isinstance(values[k], float)]
    print(f'[{run.data.name} {split}] ' + ' '.join(
        f'{k} {values[k]:.6f}' for k in shown) +
          f' over {values["num_windows"]} windows ({record["seconds"]} s)',
          flush=True)
    if 'seasonal_naive' in values:
      naive = values['seasonal_naive']
      print(f'[{run.data.name} {split}] seasonal naive: ' + ' '.join(
          f'{k} {naive[k]:.6f}' for k in shown if k in naive), flush=True)
  return records


def _conformal_step(run: Run, variables) -> Dict[str, Any]:
  """The test step of a point model with split-conformal quantiles,
  calibrated on the validation split (its last conformal_windows windows),
  and what the record says of them."""
  config, model = run.config, run.model
  if model is None or model.config.multi_quantile_head:
    raise errors.ConfigError(
        'config.conformal_intervals calibrates intervals around a point '
        'model; ' + ('a baseline has no model.' if model is None else
                     'this model has a quantile head (its own quantiles are '
                     'evaluated).'))
  forecast = steps.model_forecaster(model)
  errors_ = evaluation.residuals(
      forecast, variables, run.data.valid, run.eval_batch_size, run.mesh,
      model.config, config.conformal_windows, config.data.num_threads)
  levels = metrics_lib.DEFAULT_LEVELS
  names = list(dict.fromkeys(run.metric_names + list(
      metrics_lib.QUANTILE_METRICS)))
  metrics = metrics_lib.get(names)
  step = steps.make_eval_step(
      evaluation.conformal_forecaster(
          forecast, evaluation.conformal_offsets(errors_, levels)),
      metrics, run.mesh, model.config, season=run.season, levels=levels,
      compare=_compared(config, model.config.prediction_length, run.season))
  return {'evaluate': dict(step=step, metrics=metrics),
          'record': {'intervals': 'conformal',
                     'conformal_windows': int(len(errors_))}}


def architecture(config) -> Dict[str, Any]:
  """The architecture options results record (the sweeps' tables)."""
  return {name: getattr(config, name)
          for name in config_lib.ARCHITECTURE_FIELDS}


def export(run: Run, variables, results: List[Dict[str, Any]],
           workdir: workdir_lib.Workdir) -> None:
  """results.json (an earlier one kept in history/), the reference-format
  export and the forecast plot."""
  if jax.process_index() != 0:
    return
  workdir.keep_previous('results.json')
  with open(workdir.file('results.json'), 'w') as f:
    json.dump(results, f, indent=2)
  workdir = run.workdir
  if run.model is None:  # A baseline: nothing to export or plot.
    return
  host_variables = jax.device_get(variables)
  if run.config.export:
    checkpoint.save_pretrained(os.path.join(workdir, 'export'),
                               run.model.config, host_variables)
  if run.config.plot:
    plots.plot_forecasts(os.path.join(workdir, 'forecast.png'),
                         run.model.module, host_variables, run.data.test,
                         run.model.config,
                         title=f'{run.data.name} test windows')


def setup(config, workdir: str) -> Run:
  """The run's mesh, model, data, writer and evaluation step."""
  os.makedirs(workdir, exist_ok=True)
  mesh = sharding.make_mesh()
  if config.task != 'zero_shot' and config.data.batch_size % mesh.size:
    raise errors.ConfigError(
        f'config.data.batch_size={config.data.batch_size} does not split '
        f'over the {mesh.size} devices of the data mesh: use a multiple of '
        f'{mesh.size} (on CPU, or set --cpu_devices to a divisor).')
  data = builders.build_data(config)
  season = config.season_length or baselines.season_length(data.freq)
  writer = metric_writer.MetricWriter(workdir, config.tensorboard)
  if config.baseline:  # A naive forecaster instead of a model.
    names = config.eval_metrics or metrics_lib.default_names(quantiles=True)
    metrics = metrics_lib.get(names)
    forecast = baselines.forecaster(config.baseline,
                                    config.prediction_length, season)
    step = steps.make_eval_step(lambda v, b: forecast(b), metrics, mesh,
                                season=season)
    return Run(config, workdir, mesh, None, data, writer, metrics, step,
               selection_metric=_selection_metric(config, names, False),
               season=season)
  model = factory.create_model(config)
  if model.new_weights:
    _LOG.warning('New weights: %s', model.new_weights)
  quantiles = model.config.multi_quantile_head
  names = config.eval_metrics or metrics_lib.default_names(quantiles)
  metrics_lib.check_quantile_metrics(names, quantiles)
  metrics = metrics_lib.get(names)
  options = dict(season=season, levels=(model.config.quantile_levels
                                        if quantiles else
                                        metrics_lib.DEFAULT_LEVELS))
  forecast = steps.model_forecaster(model)
  compare = _compared(config, model.config.prediction_length, season)
  return Run(config, workdir, mesh, model, data, writer, metrics,
             steps.make_eval_step(forecast, metrics, mesh, model.config,
                                  **options),
             steps.make_eval_step(forecast, metrics, mesh, model.config,
                                  compare=compare, **options),
             _selection_metric(config, names, quantiles), season)


def _compared(config, horizon: int, season: int):
  """The forecasters scored beside a model on its test windows."""
  if not config.compare_seasonal_naive:
    return None
  return {'seasonal_naive': baselines.forecaster('seasonal_naive', horizon,
                                                 season)}


def _selection_metric(config, names: Sequence[str], quantiles: bool) -> str:
  """config.selection_metric, or wql for a quantile head, else mse; it must
  be among the evaluated metrics."""
  chosen = config.selection_metric or ('wql' if quantiles else 'mse')
  if chosen not in names:
    raise errors.ConfigError(
        f'config.selection_metric={chosen!r} (validation selects on it) is '
        f'not among the evaluated metrics {list(names)}: add it to '
        'config.eval_metrics or choose another.')
  return chosen


def train_and_evaluate(config, workdir: str,
                       argv: Optional[Sequence[str]] = None
                       ) -> List[Dict[str, Any]]:
  """Runs `config` in `workdir`; returns the results records.

  The config is validated before anything is written; the workdir is
  locked for the run, and its history (runs.jsonl) records `argv` (default
  sys.argv) and the resolved config.
  """
  config = schema.resolve(config)
  with workdir_lib.Workdir(workdir, config, argv) as folder:
    results = _run(config, folder)
  return results


def _run(config, folder: workdir_lib.Workdir) -> List[Dict[str, Any]]:
  workdir = folder.path
  run = setup(config, workdir)
  try:
    extra, step = {}, 0
    variables = run.model.variables if run.model is not None else {}
    if config.baseline:
      extra['baseline'] = config.baseline
    else:
      extra.update(parameters=int(sum(
          np.size(x) for x in jax.tree_util.tree_leaves(variables['params']))),
                   architecture=architecture(run.model.config))
    if config.task != 'zero_shot':
      variables, extra['training'] = fit(run)
      step = extra['training']['steps']
    variables = sharding.replicate(variables, run.mesh)
    results = test(run, variables, step, extra)
    export(run, variables, results, folder)
  finally:
    run.writer.close()
  if jax.process_index() == 0:
    written = ', '.join(n for n in OUTPUTS
                        if os.path.exists(os.path.join(workdir, n)))
    print(f'Wrote to {os.path.abspath(workdir)}: {written}', flush=True)
  return results
