"""The training and evaluation engine, one module per concern:

  state.py        TrainState and its creation
  steps.py        the jitted train and evaluation steps
  evaluation.py   exact streamed metrics over every window of a split
  checkpoints.py  orbax checkpoints (latest N + best), preemption
  divergence.py   a non-finite loss or metric stops the run
  lr_finder.py    the reference's learning-rate finder
  loop.py         train_and_evaluate(config, workdir): the story of a run
"""

from ttm_jax.train.loop import train_and_evaluate

__all__ = ['train_and_evaluate']
