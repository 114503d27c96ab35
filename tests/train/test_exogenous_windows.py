"""A fine-tune that gives TTM an exogenous mixer trains on the inputs the
forecasting path will feed it: for a training window (the API's table
split and the runner's padded histories alike), its past values, mask and
the known covariate's future values equal what `forecast.forecast` hands
`model.run` when it forecasts from that window's origin with the known
covariate's future (`train.finetune.Standardized`). Without the transform
(the train-split scaler's windows) the future values the mixer reads
differ: the mismatch this fixes."""

import jax
import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax import recipes
from ttm_jax.data import builders
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.inference import forecast as forecast_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.train import finetune

SMALL = dict(context_length=32, prediction_length=8, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)
FIELDS = recipes.exogenous_fields(1, 1, 1)  # target | known | past-only.


@pytest.fixture(scope='module')
def model():
  config = config_lib.TTMConfig(**SMALL, **FIELDS)
  return model_lib.Model('small', model=factory.new_model(
      config, jax.random.key(0)))


def _history(length=200):
  """[t, 3]: a load, a temperature near 1,000 with a slow drift (its
  context's statistics far from the series'), and a past-only pressure,
  some values missing."""
  rng = np.random.default_rng(0)
  t = np.arange(length)
  temperature = 1000 + 0.5 * t + 5 * np.sin(t / 4) + rng.normal(size=length)
  load = 3 * temperature + rng.normal(size=length)
  pressure = rng.normal(size=length)
  values = np.stack([load, temperature, pressure], axis=1)
  values[[40, 41, 120], 0] = np.nan
  return values


def _forecast_inputs(model, history, origin, monkeypatch):
  """What the forecasting path hands `model.run` forecasting 8 steps from
  `origin`: the values, mask and future values of the first call."""
  seen = []
  original = model.run

  def recording(values, mask, freq, futures=None, *args, **kwargs):
    seen.append((values, mask, futures))
    return original(values, mask, freq, futures, *args, **kwargs)

  monkeypatch.setattr(model, 'run', recording)
  future = history[origin:origin + 8, 1:].copy()
  future[:, 1] = np.nan  # The past-only channel has no known future.
  forecast_lib.forecast(model, [history[:origin]], 8, 'h',
                        inputs_lib.DEFAULT, num_targets=1,
                        futures=future[None])
  return seen[0]


def _table(history):
  return sources.Table(values=[history], columns=['load', 'temp', 'press'],
                       target_columns=['load'],
                       control_columns=['temp', 'press'], ids=[''],
                       freq='h')


def _sources(history, transform):
  """The training windows of the API's table split (first 60%) and of the
  runner's histories, with `transform`."""
  table = builders.table_data(
      _table(history), 32, 8, windows.SplitRule(train_fraction=0.6,
                                                test_fraction=0.0),
      'finetune', transform=transform)
  series = builders.series_data([history], 'h', 32, 8, 'finetune',
                                transform=transform)
  return dict(table=table.train, series=series.train)


@pytest.mark.parametrize('kind', ['table', 'series'])
def test_training_windows_are_the_forecasts_inputs(model, kind,
                                                   monkeypatch):
  history = _history()
  transform = finetune.exogenous_transform(FIELDS, inputs_lib.DEFAULT, 'std')
  source = _sources(history, transform)[kind]
  for index in (0, 13, len(source) - 1):
    item = source[index]
    origin = int(source.starts[index]) + 32  # Neither split pads this one.
    values, mask, futures = _forecast_inputs(model, history, origin,
                                             monkeypatch)
    np.testing.assert_allclose(item['past_values'], values[0], atol=2e-5)
    np.testing.assert_array_equal(item['past_observed_mask'], mask[0])
    # The exogenous channel's future: what the mixer reads.
    np.testing.assert_allclose(item['future_values'][:, 1],
                               futures[0, :, 1], atol=2e-5)
  plain = _sources(history, None)[kind][13]
  origin = int(source.starts[13]) + 32
  _, _, futures = _forecast_inputs(model, history, origin, monkeypatch)
  assert np.abs(plain['future_values'][:, 1] - futures[0, :, 1]).max() > 0.5


def test_a_mixer_is_refused_inputs_that_do_not_standardise():
  with pytest.raises(errors.ConfigError, match='read its covariates'):
    finetune.exogenous_transform(FIELDS, inputs_lib.REFERENCE, 'std')
  assert finetune.exogenous_transform({}, inputs_lib.REFERENCE, 'std') is None
