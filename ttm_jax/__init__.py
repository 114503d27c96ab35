"""ttm-jax: IBM's Tiny Time Mixers (TTM) in JAX/Flax.

Public surface:
  from ttm_jax import TTMConfig, TinyTimeMixerForPrediction
  from ttm_jax import load_pretrained, save_pretrained, frequency_token
  from ttm_jax import TTMError   # the base of every input error
  ttm_jax.forecast(df, timestamp_column=..., horizon=..., checkpoint=...)
"""

from ttm_jax.errors import TTMError
from ttm_jax.models.checkpoint import load_pretrained
from ttm_jax.models.checkpoint import save_pretrained
from ttm_jax.models.config import TTMConfig
from ttm_jax.models.frequency import frequency_token
from ttm_jax.models.ttm import TinyTimeMixerForMaskedPrediction
from ttm_jax.models.ttm import TinyTimeMixerForPrediction
from ttm_jax.models.ttm import TTMOutput
from ttm_jax.predict import backtest
from ttm_jax.predict import forecast

__all__ = [
    'TTMConfig', 'TinyTimeMixerForPrediction',
    'TinyTimeMixerForMaskedPrediction', 'TTMOutput', 'TTMError',
    'frequency_token', 'load_pretrained', 'save_pretrained', 'forecast',
    'backtest'
]
__version__ = '0.2.0'
