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

bfloat16 programs (`compute_dtype='bfloat16'`) want other options: the
float32 choices run bfloat16 dots through kernels that leave the CPU's
bfloat16 instructions (AVX512-BF16, AMX) idle, so the bfloat16 model ran no
faster than float32 through the engine. Measured on a 2-core AMD EPYC
(avx512_bf16, no AMX), IBM r2 512-96, batch 64 x 7, interleaved rounds:
  - inference with each dot its own YNN kernel
    (`LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT`): 6,804 series/s, against 6,291
    with no fusion (float32's choice) and 2,765 with dot fusions;
  - a training step with XLA's default options: 1,083 series/s, against
    886 with float32's dot + reduce fusions and 917 with individual dots
    (float32's best in the same run: 975).
(benchmarks/bench_model.py; docs/speed.md and its dated notes.)
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Dict, Optional, Tuple

import jax

_LOG = logging.getLogger(__name__)

_INDIVIDUAL_DOT = {'xla_cpu_experimental_ynn_fusion_type':
                   'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'}
# By kind of program and compute dtype ('float32' or 'bfloat16').
CPU_OPTIONS: Dict[Tuple[str, str], Dict[str, Any]] = {
    ('train', 'float32'): {'xla_cpu_experimental_ynn_fusion_type':
                           'LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE'},
    ('infer', 'float32'): {'xla_cpu_experimental_ynn_fusion_type': ''},
    ('train', 'bfloat16'): {},  # XLA's defaults.
    ('infer', 'bfloat16'): _INDIVIDUAL_DOT,
}
PRECISIONS = ('float32', 'bfloat16')
CACHE_ENV = 'TTM_COMPILATION_CACHE'


@functools.lru_cache(maxsize=None)
def _accepted(key: Tuple[str, str]) -> bool:
  """Whether this jaxlib takes the options (else they are left out)."""
  try:
    jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS[key])(1.0)
    return True
  except Exception as e:  # pylint: disable=broad-except
    _LOG.warning('XLA options %s not accepted by this jaxlib (%s); '
                 'compiling with the defaults.', CPU_OPTIONS[key], e)
    return False


def options(kind: str, precision: str = 'float32'
            ) -> Optional[Dict[str, Any]]:
  """XLA compiler options for a program of `kind` ('train' or 'infer')
  computing in `precision` ('float32' or 'bfloat16': the model's
  compute_dtype)."""
  if precision not in PRECISIONS:
    raise ValueError(f'precision must be one of {PRECISIONS}, got '
                     f'{precision!r}.')
  key = (kind, precision)
  if jax.default_backend() != 'cpu' or not _accepted(key):
    return None
  return dict(CPU_OPTIONS[key])


def precision_of(module: Any) -> str:
  """'bfloat16' for a module whose matmuls are bfloat16, else 'float32'."""
  dtype = getattr(module, 'dtype', None)
  return 'bfloat16' if dtype is not None and jax.numpy.dtype(
      dtype) == jax.numpy.bfloat16 else 'float32'


def jit(fn: Callable, kind: str, precision: str = 'float32',
        **kwargs) -> Callable:
  """`jax.jit(fn, **kwargs)` with the options for `kind` and `precision`."""
  return jax.jit(fn, compiler_options=options(kind, precision), **kwargs)


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
