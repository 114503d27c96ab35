"""Shared test setup: 8 CPU devices, float32 matmuls at full precision."""

import os

import jax

jax.config.update('jax_num_cpu_devices', 8)
jax.config.update('jax_default_matmul_precision', 'highest')

SHARED = os.environ.get(
    'TTM_SHARED_DIR',
    os.path.join(os.path.dirname(__file__), '..', '..', 'shared'))
CHECKPOINTS = os.path.join(SHARED, 'checkpoints')
