"""Shared test setup: 8 CPU devices, float32 matmuls at full precision."""

import os
import tempfile

# One persistent compilation cache for this run and the subprocesses the
# engine tests start (they inherit the environment): identical programs are
# compiled once.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'ttm_jax_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import jax  # pylint: disable=g-import-not-at-top

jax.config.update('jax_num_cpu_devices', 8)
jax.config.update('jax_default_matmul_precision', 'highest')

SHARED = os.environ.get(
    'TTM_SHARED_DIR',
    os.path.join(os.path.dirname(__file__), '..', '..', 'shared'))
CHECKPOINTS = os.path.join(SHARED, 'checkpoints')
