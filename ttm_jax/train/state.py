"""The train state: a pytree of step, parameters, optimiser state, BatchNorm
statistics and the dropout key, replicated over the mesh."""

from __future__ import annotations

from typing import Any, Dict

import flax
import jax
import jax.numpy as jnp

from ttm_jax import optim
from ttm_jax import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any  # BatchNorm statistics ({} without BatchNorm).
  buffers: Any  # Fixed tables (the sincos positional encoding), or {}.
  rng: jax.Array  # Raw key data; step keys are fold_in(rng, step).

  @property
  def variables(self) -> Dict[str, Any]:
    """The model's variables, as `model.apply` takes them."""
    out = {'params': self.params}
    for name in ('batch_stats', 'buffers'):
      if getattr(self, name):
        out[name] = getattr(self, name)
    return out


def create_train_state(seed: int, variables: Dict[str, Any],
                       optimizer: optim.Optimizer, mesh) -> TrainState:
  """A fresh state for `variables`, replicated on `mesh`. Dropout keys come
  from `seed + 1` (the weights' own seed is `seed`)."""
  # The state is donated to the train step, so it must own its buffers:
  # without the copy, a second state built from the same variables (after
  # the LR finder) would read deleted arrays.
  variables = jax.tree_util.tree_map(jnp.copy, variables)
  params = variables['params']
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                     opt_state=optimizer.init(params),
                     batch_stats=variables.get('batch_stats', {}),
                     buffers=variables.get('buffers', {}),
                     rng=jax.random.key_data(jax.random.key(seed + 1)))
  return sharding.replicate(state, mesh)
