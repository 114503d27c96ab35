"""Resolution-prefix tokens (ttm_jax.models.frequency): GIFT-Eval's and
GluonTS's frequency strings map as the reference's get_frequency_token maps
them once pandas' aliases are normalised, and a model whose embedding has
no row for the data's token refuses to forecast (it gave NaN)."""

import logging

import jax
import numpy as np
import pytest

from tests import conftest
from ttm_jax import errors
from ttm_jax.inference import forecast
from ttm_jax.inference import model as model_lib
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.models import frequency

# Every frequency string of GIFT-Eval's 97 configurations (and GluonTS's
# minute and second aliases), with its token.
GIFT_TOKENS = {
    'T': 1, '5T': 3, '10T': 4, '15T': 5, '30T': 6, '10S': 0, 'H': 7,
    'D': 8, 'W-SUN': 9, 'W-THU': 9, 'W-TUE': 9, 'W-FRI': 9, 'M': 0,
    'Q-DEC': 0, 'A-DEC': 0}


def test_gift_eval_frequencies_map_as_the_reference_after_normalising():
  preprocessor = conftest.require_module(
      'tsfm_public.toolkit.time_series_preprocessor')
  reference = preprocessor.TimeSeriesPreprocessor()
  for freq, token in GIFT_TOKENS.items():
    assert frequency.frequency_token(freq, warn=False) == token, freq
    try:
      expected = reference.get_frequency_token(frequency.resolution(freq))
    except ValueError:  # 'M', 'Q-DEC', 'A-DEC': the reference raises.
      expected = 0
    assert token == expected, freq
  assert frequency.resolution('15T') == '15min'
  assert frequency.resolution('W-SUN') == frequency.resolution('1W') == 'W'
  assert frequency.frequency_token('2W', warn=False) == 0  # Not weekly.


def test_months_quarters_and_years_are_out_of_vocabulary(caplog):
  with caplog.at_level(logging.WARNING):
    assert frequency.frequency_token('M') == 0
  assert "'M'" in caplog.text and 'out-of-vocabulary' in caplog.text


def _model(vocab_size: int) -> model_lib.Model:
  config = config_lib.TTMConfig(
      context_length=32, prediction_length=8, patch_length=8,
      patch_stride=8, d_model=16, decoder_d_model=16, num_layers=1,
      decoder_num_layers=1, adaptive_patching_levels=1,
      resolution_prefix_tuning=True, frequency_token_vocab_size=vocab_size)
  return model_lib.Model('tiny', model=factory.new_model(
      config, jax.random.key(0)))


def test_a_token_beyond_the_vocabulary_is_refused():
  """Hourly data (token 7) for the config default's vocabulary of 5: one
  error naming the frequency, the token and the vocabulary, where the
  embedding lookup gave all-NaN forecasts. The same model forecasts
  10-minute data (token 4), and a vocabulary of 10 hourly data."""
  history = [np.sin(np.arange(40.0))]
  small = _model(5)
  with pytest.raises(errors.ConfigError,
                     match=r"Frequency 'H' has resolution token 7, but this "
                           r'model embeds 5 resolution tokens'):
    forecast.forecast(small, history, 8, 'H')
  point, _ = forecast.forecast(small, history, 8, '10T')
  assert np.isfinite(point).all()
  point, _ = forecast.forecast(_model(10), history, 8, 'H')
  assert np.isfinite(point).all()
  with pytest.raises(errors.ConfigError, match='token 5,.* embeds 4'):
    frequency.checked_token('15min', 4)
