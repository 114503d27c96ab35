"""The training and evaluation engine, one module per concern:

  state.py        TrainState and its creation
  steps.py        the jitted train step and inference
  hooks.py        the loop's periodic actions: log, evaluate and select,
                  checkpoint, preemption, profile
  checkpoints.py  one orbax manager (latest N + best), agreed preemption
  artifacts.py    results.json, the export, the plot
  divergence.py   a non-finite loss or metric stops the run
  lr_finder.py    the reference's learning-rate finder
  snapshots.py    any checkpoint of a run in the reference's format
  loop.py         train_and_evaluate(config, workdir): the story of a run

Evaluations are `ttm_jax.evaluators`.
"""

from ttm_jax.train.loop import train_and_evaluate

__all__ = ['train_and_evaluate']
