"""`train_and_evaluate(config, workdir)`: the story of a run.

  1. Resolve and validate the config; build the mesh, the data, the
     forecaster (a model or a baseline: one `evaluators.Predictor`) and its
     evaluations (`config.evals`).
  2. Train (unless zero-shot): restore or initialise; then for each step,
     step and run the hooks that are due: log, evaluate and select,
     checkpoint, preemption.
  3. The final evaluations of the tested model (the best one, or the
     final one).
  4. Artifacts: results.json, the export, the plot.

The steps live in `steps`, the hooks in `hooks`, checkpoints in
`checkpoints`, artifacts in `artifacts`; evaluations are
`ttm_jax.evaluators`, the model comes from `models.factory`, the data
from `data.builders`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import ml_collections
import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax import evaluators
from ttm_jax import optim
from ttm_jax import schema
from ttm_jax import sharding
from ttm_jax.data import builders
from ttm_jax.data import pipeline
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.train import artifacts as artifacts_lib
from ttm_jax.train import checkpoints as checkpoints_lib
from ttm_jax.train import hooks as hooks_lib
from ttm_jax.train import lr_finder
from ttm_jax.train import state as state_lib
from ttm_jax.train import steps
from ttm_jax.runs import metric_writer
from ttm_jax.runs import progress as progress_lib
from ttm_jax.runs import workdir as workdir_lib

_LOG = logging.getLogger(__name__)
OUTPUTS = ('results.json', 'metrics.jsonl', 'tensorboard', 'checkpoints',
           'export', 'forecast.png', 'config.json', 'profile')


@dataclasses.dataclass
class Run:
  """What every stage of a run shares.

  Attributes:
    predictor: what is evaluated (a model's forecast, or a baseline's).
    variables: its variables ({} for a baseline).
    evals: the evaluations of `config.evals`, built for `predictor`.
    describe: what every results record says of the forecaster.
    artifacts: what the run writes from the tested variables.
    model: the model to train (None for a baseline, which never trains).
  """
  config: ml_collections.ConfigDict
  workdir: str
  mesh: Any
  data: builders.Data
  writer: metric_writer.MetricWriter
  predictor: evaluators.Predictor
  variables: Any
  evals: Dict[str, evaluators.Evaluator]
  describe: Dict[str, Any]
  artifacts: List[artifacts_lib.Artifact]
  model: Optional[factory.Model] = None


@dataclasses.dataclass(frozen=True)
class Plan:
  """How many steps, and when to log, evaluate and checkpoint."""
  steps_per_epoch: int
  total_steps: int
  eval_every: int
  log_every: int
  checkpoint_every: int

  def cadence(self, every_steps: int) -> int:
    """An evaluation's cadence: 0 is the validation cadence."""
    return every_steps or self.eval_every


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


# ------------------------------------------------------------------ setup
def _selection_metric(config, run: Run) -> str:
  """config.selection.metric, or wql for a quantile head, else mse; it
  must be among the metrics of the selection's evaluation."""
  chosen = config.selection.metric or (
      'wql' if run.predictor.has_quantiles else 'mse')
  evaluator = run.evals[config.selection.eval]
  names = [m.name for m in evaluator.metrics]
  if chosen not in names:
    raise errors.ConfigError(
        f'config.selection.metric={chosen!r} (validation selects on it) is '
        f'not among the metrics of config.evals.{config.selection.eval} '
        f'{names}: add it to its metrics or choose another.')
  return chosen


def _forecaster(config, model: Optional[factory.Model], season: int):
  """(predictor, variables, describe) of a baseline (model None) or a
  model."""
  if model is None:
    return (evaluators.baseline_predictor(
        config.baseline, config.prediction_length, season), {},
            {'baseline': config.baseline})
  if model.new_weights:
    _LOG.warning('New weights: %s', model.new_weights)
  if config.compute_dtype != 'float32':
    print(f'compute_dtype={config.compute_dtype}: every Linear multiplies '
          f'in {config.compute_dtype} (float32 accumulation; parameters, '
          'norms, softmax, loss and optimiser in float32): results differ '
          'from float32 and from the reference.', flush=True)
  describe = dict(parameters=int(sum(
      np.size(x) for x in jax.tree_util.tree_leaves(
          model.variables['params']))), architecture=architecture(
              model.config), compute_dtype=config.compute_dtype)
  return evaluators.model_predictor(model), model.variables, describe


def _check_batch(config, mesh) -> None:
  if config.task != 'zero_shot' and config.data.batch_size % mesh.size:
    raise errors.ConfigError(
        f'config.data.batch_size={config.data.batch_size} does not split '
        f'over the {mesh.size} devices of the data mesh: use a multiple of '
        f'{mesh.size} (on CPU, or set --cpu_devices to a divisor).')


def _make_run(config, workdir: Optional[str], data: builders.Data,
              model: Optional[factory.Model]) -> Run:
  """The run of `model` (None: `config.baseline`) on `data`: mesh,
  forecaster, evaluations and writer (in memory without a `workdir`)."""
  mesh = sharding.make_mesh()
  _check_batch(config, mesh)
  season = config.season_length or baselines.season_length(data.freq)
  predictor, variables, describe = _forecaster(config, model, season)
  context = evaluators.Context(
      data, mesh, config.data.eval_batch_size or config.data.batch_size,
      season, config.data.num_threads)
  evals = evaluators.from_config(config.evals, predictor, context)
  return Run(config, workdir, mesh, data,
             metric_writer.MetricWriter(workdir, config.tensorboard),
             predictor, variables, evals, describe, [], model)


def required_splits(config) -> Tuple[str, ...]:
  """The splits that must have windows: those the evaluations that run
  read (zero-shot: the final ones), and the train split when training."""
  training = config.task != 'zero_shot'
  running = {name: spec for name, spec in config.evals.items()
             if spec['final'] or (training and spec['every_steps'] >= 0)}
  read = evaluators.splits_read(running)
  return (('train',) if training else ()) + tuple(
      s for s in ('valid', 'test') if s in read)


def setup(config, workdir: str) -> Run:
  """The run's mesh, data, forecaster, evaluations and writer."""
  os.makedirs(workdir, exist_ok=True)
  _check_batch(config, sharding.make_mesh())
  data = builders.build_data(config, required_splits(config))
  model = None if config.baseline else factory.create_model(config)
  run = _make_run(config, workdir, data, model)
  if model is not None:
    run.artifacts = artifacts_lib.model_artifacts(config, model, data,
                                                  workdir)
  return run


# -------------------------------------------------------------------- fit
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


def _restore(run: Run, ckpts, state, iterator, selection):
  restored = ckpts.restore(state, iterator)
  if restored is None:
    return state
  state, selection.record = restored
  step = int(state.step)
  run.writer.drop_after(step)
  _LOG.info('Resumed from step %d', step)
  print(f'Resumed from step {step}.', flush=True)
  return sharding.replicate(state, run.mesh)


def _hooks(run: Run, plan: Plan, ckpts, selection, iterator, preemption,
           progress, start: int) -> List[hooks_lib.Hook]:
  """Log, evaluate and select, checkpoint, preemption, then the profiler
  (last: a traced step holds its hooks): in that order."""
  log = hooks_lib.LogHook(run.writer, plan.log_every, start + 1, progress)
  evals = [hooks_lib.EvalHook(e, plan.cadence(e.every_steps),
                              plan.total_steps, run.writer, selection,
                              progress)
           for e in run.evals.values() if e.every_steps >= 0]
  save = hooks_lib.CheckpointHook(ckpts, plan.checkpoint_every, iterator,
                                  selection, log, run.writer)
  found = [log, *evals, save]
  if run.workdir is None:  # In memory: nothing to save or trace into.
    return found
  found.append(hooks_lib.PreemptionHook(preemption, save))
  if run.config.profile.steps:
    found.append(hooks_lib.ProfileHook(
        os.path.join(run.workdir, 'profile'), *run.config.profile.steps,
        perfetto=run.config.profile.perfetto, progress=progress))
  return found


def fit(run: Run):
  """Trains; returns the variables to test and the training summary."""
  config = run.config
  drop = builders.drop_remainder(config, run.model.config)
  plan = make_plan(config, run.data, drop)
  if plan.steps_per_epoch == 0:
    raise errors.DataError(
        f'{run.data.num_train_windows} training windows are fewer than one '
        f'batch of {config.data.batch_size}.')
  ckpts = (checkpoints_lib.Checkpoints(config.checkpoint_dir or run.workdir,
                                       config.keep_checkpoints)
           if run.workdir else checkpoints_lib.InMemory())
  selection = hooks_lib.Selection.fresh(
      _learning_rate(run, ckpts, drop), config.selection.eval,
      _selection_metric(config, run), config.early_stopping_patience)
  optimizer = _make_optimizer(config, plan, selection.record['learning_rate'],
                              run.model.variables['params'])
  state = state_lib.create_train_state(config.seed, run.model.variables,
                                       optimizer, run.mesh)
  iterator = iter(builders.train_batches(config, run.data, drop,
                                         config.data.seed))
  state = _restore(run, ckpts, state, iterator, selection)
  train_step = steps.make_train_step(run.model, optimizer, run.mesh)
  start = int(state.step)
  try:
    # In memory there is nothing to save on SIGTERM: the signal ends the
    # process as usual, not a preemption.
    preempt = (checkpoints_lib.Preemption(ckpts) if run.workdir
               else contextlib.nullcontext())
    with preempt as preemption, progress_lib.Progress(
        plan.total_steps, start) as progress:
      hooks = _hooks(run, plan, ckpts, selection, iterator, preemption,
                     progress, start)
      step = start
      try:
        hooks_lib.begin_all(hooks, step, state)
        while step < plan.total_steps and not selection.stopped:
          step += 1
          # Marks the step for XProf's step-time views (free when untraced).
          with jax.profiler.StepTraceAnnotation('train', step_num=step):
            state, metrics = train_step(
                state, sharding.shard_batch(next(iterator), run.mesh))
          hooks_lib.run_due(hooks, step, state, metrics)
        hooks_lib.end_all(hooks, step, state)
      finally:
        hooks_lib.close_all(hooks)
    ckpts.wait()
    return _tested(run, ckpts, state, selection, plan)
  finally:
    ckpts.close()


def _tested(run: Run, ckpts, state, selection: hooks_lib.Selection,
            plan: Plan):
  """The variables to test (the best step's, with config.test_best) and
  the training summary."""
  summary = dict(learning_rate=float(selection.record['learning_rate']),
                 steps=int(state.step), steps_per_epoch=plan.steps_per_epoch,
                 **selection.summary(), tested='final')
  best = selection.record['best_step']
  if best is None or not run.config.test_best:
    return state.variables, summary
  if best not in ckpts.all_steps():
    _LOG.warning('The best step %d has no checkpoint (moved aside?): '
                 'testing the final model.', best)
    return state.variables, summary
  print(f'Testing the best model (step {best}, {selection.evaluation} '
        f'{selection.metric} {selection.record["best_val"]:.5f}).',
        flush=True)
  restored = ckpts.restore_state(best, state)
  return restored.variables, dict(summary, tested='best')


def fit_model(model: factory.Model, data: builders.Data, config,
              workdir: Optional[str] = None
              ) -> Tuple[factory.Model, Dict[str, Any]]:
  """Fits `model` on `data` with the recipe `config` (an experiment config,
  e.g. `recipes.few_shot`: optimiser, schedule, batch, frozen weights,
  selection and early stopping on `config.evals`), as `train_and_evaluate`
  fits a run's model: the same loop, hooks and selection.

  In memory: no file is written and nothing is reloaded, unless `workdir`
  is given (its checkpoints and metrics go there, and a rerun resumes).

  Returns:
    (the model with the tested variables, the best step's or the final
    one's as `config.test_best` says; the training summary).
  """
  config = schema.resolve(config, in_memory=True)
  model = factory.derive(model, config)
  if workdir:
    os.makedirs(workdir, exist_ok=True)
  run = _make_run(config, workdir, data, model)
  try:
    variables, summary = fit(run)
  finally:
    run.writer.close()
  return dataclasses.replace(model, variables=jax.device_get(variables)), (
      summary)


# ------------------------------------------------------- final evaluations
def evaluate_final(run: Run, variables, step: int,
                   extra: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Every final evaluation of `variables`: records for results.json."""
  config, records = run.config, []
  for name, evaluator in run.evals.items():
    if not evaluator.final:
      continue
    start = time.time()
    values = evaluator.run(variables, progress=f'{run.data.name} {name}')
    split = evaluator.spec.get('split') or evaluator.spec.get('score')
    record = dict(dataset=run.data.name, split=split, evaluation=name,
                  context_length=config.context_length,
                  prediction_length=config.prediction_length, **values,
                  seconds=round(time.time() - start, 1), task=config.task,
                  **extra)
    if run.data.notes:
      record['notes'] = list(run.data.notes)
    records.append(record)
    run.writer.write(step, {f'{name}/{k}': v for k, v in values.items()
                            if isinstance(v, float)})
    _print_record(run.data.name, name, values, record['seconds'])
  return records


def _print_record(dataset: str, name: str, values: Dict[str, Any],
                  seconds: float) -> None:
  shown = [k for k in values if isinstance(values[k], float)]
  print(f'[{dataset} {name}] ' + ' '.join(
      f'{k} {values[k]:.6f}' for k in shown) +
        f' over {values["num_windows"]} windows ({seconds} s)', flush=True)
  for other, got in values.items():
    if isinstance(got, dict):
      print(f'[{dataset} {name}] {other.replace("_", " ")}: ' + ' '.join(
          f'{k} {got[k]:.6f}' for k in shown if k in got), flush=True)


def architecture(config) -> Dict[str, Any]:
  """The architecture options results record (the sweeps' tables)."""
  return {name: getattr(config, name)
          for name in config_lib.ARCHITECTURE_FIELDS}


# -------------------------------------------------------------------- run
def train_and_evaluate(config, workdir: str,
                       argv: Optional[Sequence[str]] = None
                       ) -> List[Dict[str, Any]]:
  """Runs `config` in `workdir`; returns the results records.

  The config is validated before anything is written; the workdir is
  locked for the run, and its history (runs.jsonl) records `argv` (default
  sys.argv) and the resolved config.
  """
  config = schema.resolve(config)
  workdir_lib.check_writable(workdir)
  if config.task != 'zero_shot':  # orbax would wait minutes, then fail.
    workdir_lib.check_writable(os.path.join(
        config.checkpoint_dir or workdir, 'checkpoints'), 'checkpoint folder')
  with workdir_lib.Workdir(workdir, config, argv,
                           schema.RESUME_FIELDS) as folder:
    run = setup(config, folder.path)
    try:
      variables, extra, step = run.variables, dict(run.describe), 0
      if config.task != 'zero_shot':
        variables, extra['training'] = fit(run)
        step = extra['training']['steps']
      variables = sharding.replicate(variables, run.mesh)
      records = evaluate_final(run, variables, step, extra)
      artifacts_lib.write(folder, records, run.artifacts, variables)
    finally:
      run.writer.close()
  if jax.process_index() == 0:
    written = ', '.join(n for n in OUTPUTS
                        if os.path.exists(os.path.join(folder.path, n)))
    print(f'Wrote to {folder.path}: {written}', flush=True)
  return records
