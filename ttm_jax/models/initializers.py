"""How every TTM variable is initialised, declared once.

Every variable declares the reference's initial distribution as a spec:
('uniform', low, high), ('normal', std), ('constant', value) (a scalar, or
a tuple of values along the last axis) or ('sincos',)
(the fixed positional table). Modules create their variables through
`initializer(spec)`, which boxes the value with its spec (Flax axis
metadata, unboxed inside the modules), so the distribution of every leaf
can be read off the traced tree (`checkpoint.init_variables`) without
running the initialisers or knowing parameter names.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Tuple

import flax
from flax.core import meta
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax.models import config as config_lib

Spec = Tuple[Any, ...]


class Initialised(flax.struct.PyTreeNode, meta.AxisMetadata):
  """A variable's value with the spec of its initial distribution."""
  value: Any
  spec: Spec = flax.struct.field(pytree_node=False)

  def unbox(self):
    return self.value

  def replace_boxed(self, val):
    return self.replace(value=val)

  def add_axis(self, index, params):
    del index, params
    return self

  def remove_axis(self, index, params):
    del index, params
    return self


def linear_init_spec(fan_in: int, fan_out: int, init: 'InitSpec'
                     ) -> Tuple[Spec, Spec]:
  """(kernel, bias) initial distributions of a Linear, as the reference."""
  scheme = init.init_linear if init.post_init else 'pytorch'
  if scheme == 'normal':
    return ('normal', init.init_std), ('constant', 0.0)
  if scheme == 'uniform':
    return ('uniform', 0.0, 1.0), ('constant', 0.0)
  if scheme == 'xavier_uniform':
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return ('uniform', -limit, limit), ('constant', 0.0)
  # torch.nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) on the
  # weight is U(+-1/sqrt(fan_in)); the bias is U(+-1/sqrt(fan_in)).
  bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
  return ('uniform', -bound, bound), ('uniform', -bound, bound)


def embed_init_spec(vocab: int, dim: int, init: 'InitSpec') -> Spec:
  scheme = init.init_embed if init.post_init else 'pytorch'
  if scheme == 'uniform':
    return ('uniform', 0.0, 1.0)
  if scheme == 'xavier_uniform':
    limit = math.sqrt(6.0 / (vocab + dim))
    return ('uniform', -limit, limit)
  return ('normal', 1.0)  # torch.nn.Embedding: N(0, 1).


def initializer(spec: Spec) -> Callable:
  """A Flax initializer drawing from `spec`, its value boxed with it."""
  def init(key, shape, dtype=jnp.float32):
    if spec[0] == 'uniform':
      value = jax.random.uniform(key, shape, dtype, spec[1], spec[2])
    elif spec[0] == 'normal':
      value = spec[1] * jax.random.normal(key, shape, dtype)
    else:  # A constant: a scalar, or values along the last axis.
      value = jnp.full(shape, jnp.asarray(spec[1], dtype), dtype)
    return Initialised(value, spec)
  return init


def constant(value: float) -> Callable:
  """A boxed constant for `Module.variable` (no rng)."""
  return lambda shape: Initialised(jnp.full(shape, value, jnp.float32),
                                   ('constant', value))


def sample_spec(spec: Spec, shape, rng: np.random.Generator) -> np.ndarray:
  """The spec's distribution drawn with NumPy (fast initialisation)."""
  if spec[0] == 'uniform':
    return rng.uniform(spec[1], spec[2], size=shape).astype(np.float32)
  if spec[0] == 'normal':
    return (spec[1] * rng.standard_normal(size=shape)).astype(np.float32)
  return np.full(shape, np.asarray(spec[1], np.float32), np.float32)


@dataclasses.dataclass(frozen=True)
class InitSpec:
  """How new Linear and Embedding weights are initialised."""
  init_linear: str = 'pytorch'
  init_embed: str = 'pytorch'
  post_init: bool = False
  init_std: float = 0.02

  @classmethod
  def from_config(cls, config: config_lib.TTMConfig) -> 'InitSpec':
    return cls(config.init_linear, config.init_embed, config.post_init,
               config.init_std)

  def embed(self, vocab: int, dim: int, name: str) -> nn.Embed:
    """An Embedding [vocab, dim] initialised as the reference's."""
    return nn.Embed(vocab, dim, embedding_init=initializer(
        embed_init_spec(vocab, dim, self)), name=name)
