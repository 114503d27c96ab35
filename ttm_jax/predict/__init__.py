"""Forecasting a user's own data: `forecast` and `backtest` (api.py), with
the DataFrame handling (frames.py), the model wrapper (engine.py) and
conformal intervals (conformal.py)."""

from ttm_jax.predict.api import backtest
from ttm_jax.predict.api import forecast

__all__ = ['forecast', 'backtest']
