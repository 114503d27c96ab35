"""Shared test setup: 8 CPU devices, float32 matmuls at full precision,
and the two ways a test may depend on something outside the repository
(`require_module`, `require_shared`): both skip on a fresh clone, naming
what is missing, and fail under CI=true, so no check goes quietly missing
where everything should be installed."""

import importlib
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
import pytest  # pylint: disable=g-import-not-at-top

jax.config.update('jax_num_cpu_devices', 8)
jax.config.update('jax_default_matmul_precision', 'highest')

# The repository's root and the committed fixtures, wherever a test lives.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')
SHARED = os.environ.get(
    'TTM_SHARED_DIR',
    os.path.join(os.path.dirname(__file__), '..', '..', 'shared'))
CHECKPOINTS = os.path.join(SHARED, 'checkpoints')

DEV_SETUP = 'install the dev dependencies: bash scripts/setup.sh --dev'


def in_ci() -> bool:
  """Whether missing dependencies fail (CI=true) rather than skip."""
  return os.environ.get('CI', '').strip().lower() in ('true', '1', 'yes')


def _missing(reason: str):
  if in_ci():
    pytest.fail(f'CI=true, but {reason}', pytrace=False)
  # Reported at the test that asked, not at this line (as skip marks are).
  raise pytest.skip.Exception(reason, allow_module_level=True,
                              _use_item_location=True)


def require_module(name: str):
  """`name` imported, as `pytest.importorskip` (module level or in a test),
  except that under CI=true a failed import fails. The reason names the
  module that could not be imported: for a package installed without its
  dependencies, the missing transitive one."""
  try:
    return importlib.import_module(name)
  except ImportError as e:
    error = e
  # Outside the except block: the report is the reason, not a chain.
  missing = getattr(error, 'name', None)
  detail = (f' (it needs {missing!r}, which is missing)'
            if missing and missing != name else '')
  _missing(f'cannot import {name}{detail}: {error}; {DEV_SETUP}')


def require_fev(monkeypatch, prefix=None):
  """The `fev` package, ready to read local data in a test: fev 0.10.0's
  download config wrapper predates datasets 5's signature, so it is
  shimmed (for this test only); with `prefix`, FEV_DATASETS_PREFIX points
  fev's dataset paths at that folder (fev's mirror layout)."""
  fev = require_module('fev')
  datasets = require_module('datasets')
  from fev import utils as fev_utils  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(fev_utils, 'PatchedDownloadConfig', lambda
                      storage_options: datasets.DownloadConfig(
                          storage_options=storage_options))
  if prefix is not None:
    monkeypatch.setenv('FEV_DATASETS_PREFIX', str(prefix))
  return fev


def require_shared(path: str, how_to_get: str) -> str:
  """`path` (a file or folder under ../shared), skipping when it is absent
  (failing under CI=true) with `how_to_get` in the reason."""
  if not os.path.exists(path):
    _missing(f'{path} is absent: {how_to_get} (TTM_SHARED_DIR={SHARED})')
  return path


def require_checkpoint(name: str) -> str:
  """The real checkpoint folder `name` of ../shared/checkpoints."""
  return require_shared(
      os.path.join(CHECKPOINTS, name),
      'the real checkpoints live in ../shared/checkpoints (see its README; '
      'set TTM_SHARED_DIR to the folder holding checkpoints/)')


def require_data(*parts: str) -> str:
  """A real data file or folder under ../shared/data."""
  return require_shared(
      os.path.join(SHARED, 'data', *parts),
      'the real data sets live in ../shared/data (see its README for '
      'sources; set TTM_SHARED_DIR to the folder holding data/)')
