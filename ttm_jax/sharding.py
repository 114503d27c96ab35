"""Data parallelism on a 1-D mesh: the pmap programming model on today's
API. Parameters are replicated (`P()`), batches split over 'data'; one
program runs on every device of every process."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np


def make_mesh(devices: Optional[Sequence[jax.Device]] = None
              ) -> jax.sharding.Mesh:
  """1-D 'data' mesh over `devices` (default: every device of every
  process). Auto axis type: XLA propagates the batch sharding itself."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_batch(batch: Dict[str, np.ndarray], mesh) -> Dict[str, jax.Array]:
  """This process's rows of a global batch -> global arrays split on data."""
  sharding = NamedSharding(mesh, P('data'))
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def replicate(tree, mesh):
  return jax.device_put(tree, replicated(mesh))


def round_to_devices(batch_size: int, mesh) -> int:
  """`batch_size` rounded up to a multiple of the mesh's devices."""
  devices = mesh.devices.size
  return -(-batch_size // devices) * devices
