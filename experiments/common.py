"""Shared setup of the entry points: multi-process start, logging, and the
one-line errors.

`main_wrapper(main)` runs an entry point so that any exception ends it
with one line on stderr and a non-zero status, without a traceback (unless
--verbose): a problem with the user's input (any `ttm_jax.TTMError`) its
own message and status 2; a full disk or an interrupt its own line and
status 1; any other exception `error: <what> (<type>: <message>)` and
status 1. `run(main)` is `app.run(main)` whose flag parsing (an unknown,
missing or malformed flag; a config file that fails to load) ends the same
way, with status 2.
"""

import errno
import logging
import re
import os
import sys
import threading
import traceback
import warnings

from absl import app
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


def _one_line(text: str, limit: int = 400) -> str:
  text = ' '.join(str(text).split())
  return text if len(text) <= limit else text[:limit - 3] + '...'


def describe(error: BaseException) -> str:
  """'<type>: <message>' of a foreign exception, on one line."""
  message = _one_line(error)
  if isinstance(error, SyntaxError) and error.lineno:
    message = _one_line(f'{error.msg} ({error.filename}, line '
                        f'{error.lineno})')
  return f'{type(error).__name__}: {message}' if message else (
      type(error).__name__)


def _root_cause(error: BaseException) -> BaseException:
  """The innermost exception of a chain (the one a library re-wrapped)."""
  seen = set()
  while id(error) not in seen:
    seen.add(id(error))
    inner = error.__cause__ or error.__context__
    if inner is None:
      return error
    error = inner
  return error


def _config_file_flags():
  """Names of the flags that load a config file (ml_collections)."""
  out = []
  for name, flag in flags.FLAGS._flags().items():  # pylint: disable=protected-access
    if type(flag.parser).__name__ == 'ConfigFileFlagParser':
      out.append(name)
  return out


def _flag_argument(argv, name: str) -> str:
  """The value given to --name in argv ('' if absent)."""
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      return arg.split('=', 1)[1]
    if arg == f'--{name}' and i + 1 < len(argv):
      return argv[i + 1]
  return ''


def _unknown_override(argv, name: str, error: BaseException,
                      cause: BaseException):
  """The message of a `--<name>.a.b=v` override whose group `a` the
  config lacks (ml_collections raises a KeyError naming `a`), or None."""
  if not isinstance(cause, KeyError) or not cause.args:
    return None
  key = str(cause.args[0])
  for arg in argv:
    if not arg.startswith(f'--{name}.'):
      continue
    parts = arg[len(name) + 3:].split('=', 1)[0].split('.')
    if key in parts[:-1]:
      hint, seen = '', error
      while seen is not None and not hint:  # ml_collections' suggestion.
        found = re.search(r'Did you mean \\?"([\w.]+)\\?"', str(seen))
        hint = f' (did you mean {found.group(1)!r}?)' if found else ''
        seen = seen.__cause__ or seen.__context__
      group = '.'.join(parts[:parts.index(key) + 1])
      return (f'--{name}.{".".join(parts)}: the config has no field '
              f'{group}{hint}.')
  return None


def _config_failure(argv, error: BaseException):
  """The one-line message of a config file that failed to load, or None
  when `error` is not one. Only a config file runs code while flags are
  parsed, so an exception that is not a flag error comes from one; a flag
  error names its flag."""
  for name in _config_file_flags():
    spec = _flag_argument(argv, name)
    if not spec or (isinstance(error, flags.Error)
                    and f'flag --{name}=' not in str(error)):
      continue
    cause = _root_cause(error)
    if isinstance(cause, errors.TTMError):
      return f'--{name} {spec}: {_one_line(cause)}'
    unknown = _unknown_override(argv, name, error, cause)
    if unknown:
      return unknown
    return (f'--{name} {spec}: the config file could not be loaded '
            f'({describe(cause)})')
  return None


def _flag_message(argv, error: BaseException) -> str:
  config = _config_failure(argv, error)
  if config:
    return config
  if isinstance(error, flags.Error):
    text = _one_line(re.sub(r'^flag ', '', str(error)))
    required = re.search(r'Flag (--\w+) must have a value other than None',
                         text)
    if required:
      text = f'{required.group(1)} is required'
    text = re.sub(r'^(--\w+=.*?): invalid literal for int\(\) with base 10.*',
                  r'\1: must be an integer', text)
    text = re.sub(r'^(--\w+=.*?): could not convert string to float.*',
                  r'\1: must be a number', text)
    return f'{text} (see --helpshort for the flags)'
  return f'the flags could not be parsed ({describe(error)})'


def _unloaded_config(argv):
  """The message of a config flag whose file could not be read (the
  library defers that error to the first use of the config), or None."""
  for name in _config_file_flags():
    value = flags.FLAGS[name].value
    error = getattr(value, '_error', None)
    if type(value).__name__ == '_ErrorConfig' and error is not None:
      spec = _flag_argument(argv, name)
      return f'--{name} {spec}: the config file could not be loaded ' \
          f'({describe(error)})'
  return None


def parse_flags(argv):
  """absl's flag parsing with every failure in one line (status 2)."""
  verbose = any(re.fullmatch(r'--verbose(=(true|1|yes))?', a, re.I)
                for a in argv[1:])
  try:
    rest = flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if verbose:
      raise
    _exit(_flag_message(argv, e), EXIT_INPUT)
  problem = _unloaded_config(argv)
  if problem and not verbose:
    _exit(problem, EXIT_INPUT)
  return rest


def run(main):
  """`app.run(main)` with one-line flag errors (see `parse_flags`)."""
  app.run(main, flags_parser=parse_flags)


def main_wrapper(main):
  """`main(argv)` with any exception reported in one line (tracebacks only
  with --verbose): input errors (status 2), a full disk and interrupts
  (their own lines), and any other exception as `error: <what> (<type>:
  <message>)` (status 1)."""
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
      if VERBOSE.value:
        raise
      if _disk_full(e):
        _exit('no space left on device while writing the run; the last '
              'complete checkpoint is kept. Free space and rerun the same '
              'command to resume.', EXIT_ENVIRONMENT)
      _exit(f'the command stopped on an unexpected error ({describe(e)}); '
            'rerun with --verbose for the traceback.', EXIT_ENVIRONMENT)
  return wrapped
