"""A run that diverged: a non-finite loss or metric stops it."""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np

from ttm_jax import errors


def check_finite(step: int, metrics: Dict[str, Any]) -> Dict[str, float]:
  """The metrics as floats; `errors.TrainingDiverged` if one is NaN or
  infinite."""
  values = {k: float(np.asarray(v)) for k, v in metrics.items()}
  bad = {k: v for k, v in values.items() if not math.isfinite(v)}
  if bad:
    raise errors.TrainingDiverged(
        f'{", ".join(f"{k}={v}" for k, v in bad.items())} at step {step}: '
        'the run diverged (nothing non-finite is recorded). The checkpoints '
        'before it are kept; lower config.optim.lr or set '
        'config.optim.clip_norm, in a new workdir.')
  return values
