"""Evaluators: one module per kind of evaluation, built from
`config.evals` by name (big_vision's `evaluators` pattern).

  common.py     Predictor (what is scored), Context (the data), the
                registry (`register`, `from_config`, `resolve_spec`)
  windows.py    'windows': every window of a split, baselines beside
  conformal.py  'conformal': intervals calibrated on one split, scored on
                another
  backtest.py   rolling-origin backtest of a user's series (the forecasting
                API's `ttm_jax.backtest`)

A new evaluator is a module with an `Evaluator` subclass decorated with
`@common.register('name')`, imported here; nothing else changes.
"""

from ttm_jax.evaluators import conformal
from ttm_jax.evaluators import windows
from ttm_jax.evaluators.common import baseline_predictor
from ttm_jax.evaluators.common import Context
from ttm_jax.evaluators.common import Evaluator
from ttm_jax.evaluators.common import from_config
from ttm_jax.evaluators.common import model_predictor
from ttm_jax.evaluators.common import Predictor
from ttm_jax.evaluators.common import register
from ttm_jax.evaluators.common import resolve_spec
from ttm_jax.evaluators.common import splits_read

__all__ = ['conformal', 'windows', 'baseline_predictor', 'Context',
           'Evaluator', 'from_config', 'model_predictor', 'Predictor',
           'register', 'resolve_spec', 'splits_read']
