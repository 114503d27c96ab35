"""How the engine compiles: XLA options per kind of program, one CPU device
per core, and the persistent compilation cache.

On XLA:CPU (jaxlib 0.10), dots and their neighbouring element-wise ops are
fused into YNNPACK kernels. Measured on TTM r2 512-96 (2 cores, see
benchmarks/bench_model.py and issue 11's closing note):
  - inference is 1.6-1.8x faster with no YNN fusion at all (plain dot
    kernels; YNN fusions materialise broadcasts of constants at full
    activation size and do not run across cores);
  - a training step is 1.15-1.25x faster when YNN fuses dots *and*
    reductions (the backward's LayerNorm and softmax sums).
So each jitted program gets the option that suits it; on GPU and TPU none
is set.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Dict, Optional

import jax

_LOG = logging.getLogger(__name__)

CPU_OPTIONS: Dict[str, Dict[str, Any]] = {
    'train': {'xla_cpu_experimental_ynn_fusion_type':
              'LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE'},
    'infer': {'xla_cpu_experimental_ynn_fusion_type': ''},
}
CACHE_ENV = 'TTM_COMPILATION_CACHE'


@functools.lru_cache(maxsize=None)
def _accepted(kind: str) -> bool:
  """Whether this jaxlib takes the options (else they are left out)."""
  try:
    jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS[kind])(1.0)
    return True
  except Exception as e:  # pylint: disable=broad-except
    _LOG.warning('XLA options %s not accepted by this jaxlib (%s); '
                 'compiling with the defaults.', CPU_OPTIONS[kind], e)
    return False


def options(kind: str) -> Optional[Dict[str, Any]]:
  """XLA compiler options for a program of `kind` ('train' or 'infer')."""
  if jax.default_backend() != 'cpu' or not _accepted(kind):
    return None
  return dict(CPU_OPTIONS[kind])


def jit(fn: Callable, kind: str, **kwargs) -> Callable:
  """`jax.jit(fn, **kwargs)` with the options for `kind`."""
  return jax.jit(fn, compiler_options=options(kind), **kwargs)


def usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # Not Linux.
    return os.cpu_count() or 1


def use_cpu_cores(count: Optional[int] = None) -> int:
  """One XLA CPU device per usable core (call before JAX starts its
  backends). XLA:CPU runs most element-wise kernels on one thread; with a
  device per core, the data mesh splits every batch across the cores.
  Does nothing for GPU or TPU runs (their devices are the mesh)."""
  count = count or usable_cores()
  jax.config.update('jax_num_cpu_devices', count)
  return count


def enable_persistent_cache(path: Optional[str] = None) -> Optional[str]:
  """Keeps compiled programs on disk across runs (`$TTM_COMPILATION_CACHE`,
  else ~/.cache/ttm_jax/xla), unless JAX already has a cache directory or
  the variable is set to 'off'."""
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  path = path or os.environ.get(CACHE_ENV) or os.path.join(
      os.path.expanduser('~'), '.cache', 'ttm_jax', 'xla')
  if path == 'off':
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    _LOG.warning('No compilation cache (%s: %s).', path, e)
    return None
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  return path
