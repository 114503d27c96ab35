"""Shared setup of the entry points: multi-process start, logging, and the
one-line errors.

`main_wrapper(main)` runs an entry point so that a problem with the user's
input (any `ttm_jax.TTMError`), a full disk or an interrupt ends it with
one line on stderr and a non-zero status, without a traceback (unless
--verbose).
"""

import errno
import logging
import os
import sys
import threading
import traceback
import warnings

from absl import flags
from absl import logging as absl_logging
import jax

from ttm_jax import compilation
from ttm_jax import errors

COORDINATOR = flags.DEFINE_string(
    'coordinator', '', 'host:port of process 0, to run as several processes '
    '(jax.distributed). Empty: detect a cluster (SLURM, Open MPI, TPU pod) '
    'from the environment, else one process.')
NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'Processes (with '
                                     '--coordinator).')
PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'This process (with '
                                  '--coordinator).')
CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'Host CPU devices per process (0: default).')
VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks and library '
                            'logs.')

EXIT_INPUT = 2  # A problem with the user's input.
EXIT_ENVIRONMENT = 1  # Disk full, interrupted, preempted.


def _join_detected_cluster() -> None:
  """Joins the cluster the environment shows (SLURM, Open MPI, TPU pods:
  JAX's own detection, through its public `jax.distributed.initialize()`),
  or stays one process where it finds none (it then raises ValueError
  before starting anything)."""
  try:
    jax.distributed.initialize()
  except ValueError:
    return
  print(f'Cluster detected: process {jax.process_index()} of '
        f'{jax.process_count()}.', flush=True)


def setup():
  """Initialises jax (devices, processes) before any computation."""
  # Keep the console for the progress bar and summaries: orbax and jax log
  # every checkpoint step at INFO (and background-thread errors that the
  # entry point reports itself).
  absl_logging.set_verbosity(absl_logging.INFO if VERBOSE.value
                             else absl_logging.WARNING)
  # orbax logs through absl's logger, including errors of its background
  # writers that the entry point reports itself: quiet unless --verbose.
  logging.getLogger('absl').setLevel(logging.INFO if VERBOSE.value
                                     else logging.CRITICAL)
  # ... and its asyncio tasks report their own failures when collected.
  logging.getLogger('asyncio').setLevel(logging.INFO if VERBOSE.value
                                        else logging.CRITICAL)
  logging.getLogger('jax').setLevel(logging.INFO if VERBOSE.value
                                    else logging.WARNING)
  if not VERBOSE.value:  # 'warning: ...' lines, not absl's log prefix.
    absl_logging.get_absl_handler().setFormatter(
        logging.Formatter('%(levelname)s: %(message)s'))
  # One CPU device per core (the data mesh then splits each batch across
  # the cores; no effect on GPU/TPU runs), and compiled programs cached.
  compilation.use_cpu_cores(CPU_DEVICES.value or None)
  compilation.enable_persistent_cache()
  if COORDINATOR.value:
    jax.distributed.initialize(coordinator_address=COORDINATOR.value,
                               num_processes=NUM_PROCESSES.value,
                               process_id=PROCESS_ID.value)
  else:
    _join_detected_cluster()


def _disk_full(error: BaseException) -> bool:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    text = str(error)
    if 'No space left on device' in text or (
        'RESOURCE_EXHAUSTED' in text and 'writing' in text.lower()):
      return True
    error = error.__cause__ or error.__context__
  return False


def _quiet_threads() -> None:
  """Errors of library threads (orbax's async writers) go to the log, not
  the console: the main thread reports the failure once."""
  def hook(args):
    logging.getLogger('ttm_jax.threads').debug(
        'Thread %s: %s', args.thread, ''.join(traceback.format_exception(
            args.exc_type, args.exc_value, args.exc_traceback)))
  threading.excepthook = hook
  sys.unraisablehook = lambda unraisable: None


def _exit(message: str, status: int) -> None:
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.stdout.flush()
  # Skip interpreter teardown: background writer threads would print their
  # own tracebacks into a closed event loop. Checkpoints are atomic.
  os._exit(status)  # pylint: disable=protected-access


def main_wrapper(main):
  """`main(argv)` with input errors, a full disk and interrupts reported in
  one line (tracebacks only with --verbose)."""
  def wrapped(argv):
    if not VERBOSE.value:
      _quiet_threads()
      # Library background tasks cut short by a failure (orbax's async
      # writers) warn about un-awaited coroutines at exit.
      warnings.filterwarnings('ignore', category=RuntimeWarning,
                              message='.*(coroutine|tracemalloc).*')
    try:
      return main(argv)
    except errors.TTMError as e:
      if VERBOSE.value:
        raise
      _exit(str(e), EXIT_INPUT)
    except KeyboardInterrupt:
      _exit('interrupted; the last checkpoint is kept: rerun the same '
            'command to resume.', EXIT_ENVIRONMENT)
    except Exception as e:  # pylint: disable=broad-except
      if VERBOSE.value or not _disk_full(e):
        raise
      _exit('no space left on device while writing the run; the last '
            'complete checkpoint is kept. Free space and rerun the same '
            'command to resume.', EXIT_ENVIRONMENT)
  return wrapped
