"""The training and evaluation engine, one module per concern:

  state.py        TrainState and its creation
  steps.py        the jitted train step
  hooks.py        the loop's periodic actions: log, evaluate and select,
                  checkpoint, preemption, profile
  checkpoints.py  one orbax manager (latest N + best), agreed preemption
  artifacts.py    results.json, the export, the plot (plots.py)
  lr_finder.py    the reference's learning-rate finder
  snapshots.py    any checkpoint of a run in the reference's format
  loop.py         train_and_evaluate(config, workdir): the story of a run;
                  fit_model(model, data, recipe): the same fit in memory
  finetune.py     IBM's fine-tune recipes on histories or a table, in
                  memory (the runner's per-task fine-tune, forecast(finetune=))

Evaluations are `ttm_jax.evaluators`; the run folder, metric writer,
progress bar and divergence check are `ttm_jax.runs`.
"""

from ttm_jax.train.loop import train_and_evaluate

__all__ = ['train_and_evaluate']
