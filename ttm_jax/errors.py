"""The project's errors: one base class, so entry points can catch them.

A `TTMError` is a problem with the user's input (data, checkpoint, config,
workdir). Its message is one line that names the file, column, row or
field, the value, and what would be accepted; the entry points print it
without a traceback (unless --verbose) and exit with status 2.
"""

from __future__ import annotations


class TTMError(Exception):
  """A problem with the user's input, explained in one line."""


class ConfigError(TTMError, ValueError):
  """A configuration the model or the engine cannot run, or that
  contradicts its checkpoint."""


class DataError(TTMError, ValueError):
  """Bad or missing data, with what was expected and where."""


class CheckpointError(TTMError, ValueError):
  """A checkpoint that cannot be read or contradicts the configuration."""


class TrainingDiverged(TTMError):
  """A loss or metric became NaN or infinite (a learning rate too high, or
  data the model cannot fit)."""


class WorkdirError(TTMError):
  """A workdir that this run cannot use (held by another run, or holding a
  run of a different configuration)."""
