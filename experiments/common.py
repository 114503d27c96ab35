"""Shared setup of the entry points: distributed init, workdir records."""

import json
import logging
import os
import sys

from absl import flags
from absl import logging as absl_logging
import jax

COORDINATOR = flags.DEFINE_string(
    'coordinator', '', 'host:port of process 0, to run as several processes '
    '(jax.distributed); empty for one process.')
NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Processes.')
PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'This process.')
CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'Host CPU devices per process (0: default).')


def setup():
  """Initialises jax (devices, multi-process) before any computation."""
  # Keep the console for the progress bar and summaries: orbax and jax log
  # every checkpoint step at INFO.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger('jax').setLevel(logging.WARNING)
  logging.getLogger('absl').setLevel(logging.WARNING)
  if CPU_DEVICES.value:
    jax.config.update('jax_num_cpu_devices', CPU_DEVICES.value)
  if COORDINATOR.value:
    # Collectives between processes' CPU devices (no effect on GPU/TPU).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=COORDINATOR.value,
                               num_processes=NUM_PROCESSES.value,
                               process_id=PROCESS_ID.value)


def record(config, workdir):
  """Writes the resolved config and the command line to the workdir."""
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() != 0:
    return
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))
  with open(os.path.join(workdir, 'command.json'), 'a') as f:
    f.write(json.dumps({'argv': sys.argv}) + '\n')
