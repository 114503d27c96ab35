"""Every public argument of `ttm_jax.forecast` and `ttm_jax.backtest`
(and the forecast CLI's flags), with its check: one clear error naming the
argument, before any work."""

from __future__ import annotations

import os

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.models import zoo
from ttm_jax.predict import frames

CALIBRATION_WINDOWS = 64
INTERVALS = ('auto', 'model', 'conformal')
SHORT_HISTORY = ('pad', 'error')

_NAMES = checks.names()


def _check_checkpoint(value):
  if not isinstance(value, str) or not value:
    return "must be a folder, a hub id, a bundled name or 'auto'"
  if value.startswith('auto:') and value[len('auto:'):] not in zoo.HUB_IDS:
    return f"'auto:' must name a release: one of {list(zoo.HUB_IDS)}"
  return None


def _check_inputs(value):
  try:
    inputs_lib.of(value)
  except errors.ConfigError as e:
    return str(e).split(': ', 1)[-1].rstrip('.')
  return None


def _check_regression(value):
  try:
    covariates_lib.of(value)
  except errors.ConfigError as e:
    message = str(e).rstrip('.')
    for prefix in ('regression: ', 'regression '):
      if message.startswith(prefix):
        return message[len(prefix):]
    return message.split(': ', 1)[-1]
  return None


# Every public argument of forecast() and backtest() but the frames: its
# check (see ttm_jax/checks.py).
ARGUMENTS = {
    'timestamp_column': checks.instance((str, int), 'a column name'),
    'horizon': checks.count(1),
    'windows': checks.count(1),
    'checkpoint': _check_checkpoint,
    'id_columns': _NAMES,
    'target_columns': checks.optional(_NAMES),
    'control_columns': _NAMES,
    'static_categorical_columns': _NAMES,
    'quantiles': checks.optional(checks.levels()),
    'context': checks.optional(checks.count(1)),
    'finetune': checks.optional(checks.open_fraction()),
    'finetune_dir': checks.optional(checks.string()),
    'revision': checks.string(),
    'freq': checks.optional(checks.string()),
    'regularize': checks.boolean(),
    'checkpoints_dir': checks.optional(checks.string()),
    'allow_download': checks.boolean(),
    'calibration_windows': checks.count(1),
    'intervals': checks.one_of(*INTERVALS),
    'short_history': checks.one_of(*SHORT_HISTORY),
    'inputs': _check_inputs,
    'categorical_vocab': categoricals.check_given,
    'past_covariates': _NAMES,
    'known_covariates': _NAMES,
    'static_covariates': _NAMES,
    'categorical_covariates': _NAMES,
    'regression': _check_regression,
}


def check_arguments(prefix: str = '', **values) -> None:
  """Refuses the first argument that fails its check (`ARGUMENTS`), in one
  line naming it (`prefix` + name: '--' for command-line flags).

  Raises:
    errors.ConfigError: naming the argument, its value and what is valid.
  """
  for name, value in values.items():
    complaint = ARGUMENTS[name](value)
    if complaint:
      raise errors.ConfigError(
          f'{prefix}{name}={checks.show(value)}: {complaint}.')
  if values.get('freq') is not None:
    frames.check_freq(values['freq'])
  finetune_dir = values.get('finetune_dir')
  if finetune_dir and os.path.exists(finetune_dir) and (
      not os.path.isdir(finetune_dir) or os.listdir(finetune_dir)):
    raise errors.ConfigError(
        f'{prefix}finetune_dir={finetune_dir!r} exists and is not an empty '
        'folder: give a new folder for the fine-tuning run.')


