"""`ttm_jax.forecast(finetune=F)` with covariates trains TTM's exogenous
mixer: the model it fine-tunes has the reference's channels (targets as
prediction channels, known covariates, a categorical one a channel per
value, as exogenous channels, past-only ones as mixed channels, a static
categorical as an embedding), its forward pass is the reference's on the
same weights (tsfm_public, within 1e-5), it is fitted on the histories
alone, and its forecast is model.apply on the last context with the known
covariates' future values from future_df."""

import functools

import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests import conftest
from tests.predict.test_bad_inputs_api import _refused
from tests.predict.test_covariates import HORIZON
from tests.predict.test_covariates import _load_frames
from tests.predict.test_forecast import model_dir  # pylint: disable=unused-import
from ttm_jax import errors
from ttm_jax.models import checkpoint
from ttm_jax.predict import api
from ttm_jax.train import finetune as train_finetune


@pytest.fixture(scope='module')
def tuned(model_dir, tmp_path_factory):  # pylint: disable=redefined-outer-name
  """One fine-tune (4 steps of the recipe: `quick`) with a numeric and a
  categorical known covariate, a past-only one and a static categorical;
  what it was given, and the forecast."""
  df, future = _load_frames()
  df['pressure'] = np.random.default_rng(1).normal(size=len(df))
  df['region'] = df['site'].map({'a': 'north', 'b': 'south'})
  seen = {}
  original = api.finetune_lib.finetuned
  table = train_finetune.table

  def recording(model, frame, fraction, finetune_dir=None, channels=None,
                inputs=None):
    seen.update(frame=frame, channels=channels, start=model, inputs=inputs)
    seen['model'] = original(model, frame, fraction, finetune_dir, channels,
                             inputs)
    return seen['model']

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(api.finetune_lib, 'finetuned', recording)
    patch.setattr(train_finetune, 'table',
                  functools.partial(table, quick=True))
    patch.chdir(tmp_path_factory.mktemp('cwd'))
    out = ttm_jax.forecast(
        df, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
        id_columns=['site'], target_columns=['load'],
        known_covariates=['temp', 'day'], past_covariates=['pressure'],
        static_covariates=['region'], future_df=future, finetune=0.6)
  return dict(seen, df=df, future=future, out=out)


def test_the_model_gets_the_references_exogenous_channels(tuned):
  config = tuned['model'].config
  # load | temp, day=holiday, day=work | pressure.
  assert config.num_input_channels == 5
  assert list(config.prediction_channel_indices) == [0]
  assert list(config.exogenous_channel_indices) == [1, 2, 3]
  assert config.enable_forecast_channel_mixing and config.fcm_use_mixer
  assert (config.fcm_context_length, config.fcm_mix_layers) == (1, 2)
  assert config.fcm_prepend_past and config.decoder_mode == 'mix_channel'
  assert list(config.categorical_vocab_size_list) == [2]
  assert tuned['frame'].control_columns == [
      'temp', 'day=holiday', 'day=work', 'pressure']
  assert tuned['frame'].static_categorical_columns == ['region']
  # Head probing: the backbone is the checkpoint's, the new mixer trained.
  start = checkpoint.to_state_dict(tuned['start'].variables)
  state = checkpoint.to_state_dict(tuned['model'].variables)
  for key in (k for k in start if k.startswith('backbone.')):
    np.testing.assert_array_equal(state[key], start[key], err_msg=key)
  assert any(k.startswith('head.fcm_block.') for k in state)


def test_it_is_fitted_on_the_histories_alone(tuned):
  """The fine-tune's frame holds each series' history (no future row), its
  channels the history's covariates, one-hot for the day type."""
  df = tuned['df']
  for series in tuned['frame'].series:
    mine = df[df['site'] == series.key[0]]
    assert len(series.values) == len(mine)
    np.testing.assert_array_equal(series.values[:, 0], mine['load'])
    np.testing.assert_array_equal(series.values[:, 1], mine['temp'])
    np.testing.assert_array_equal(series.values[:, 3],
                                  (mine['day'] == 'work').astype(float))
    np.testing.assert_array_equal(series.values[:, 4], mine['pressure'])


def test_the_forecast_is_model_apply_with_the_future_covariates(tuned):
  """Site b by hand: the last 64 rows of its five channels standardised
  per channel (the API's inputs), future_values holding the known
  covariates' future (future_df, standardised alike; the target and the
  past-only channel zero before standardising, NaN then 0 for the
  latter), the region's code, mapped back."""
  model = tuned['model']
  df, future = tuned['df'], tuned['future']
  mine = df[df['site'] == 'b']
  ahead = future[future['site'] == 'b']
  past = np.stack([mine['load'], mine['temp'], mine['day'] == 'holiday',
                   mine['day'] == 'work', mine['pressure']], 1).astype(
                       float)[-64:]
  loc, scale = past.mean(0), past.std(0)
  scale = np.where(scale > 0, scale, 1.0)
  known = np.zeros((HORIZON, 5))
  known[:, 1] = ahead['temp']
  known[:, 2] = ahead['day'] == 'holiday'
  known[:, 3] = ahead['day'] == 'work'
  known = (known - loc) / scale
  known[:, 4] = 0.0
  out = model.model.module.apply(
      model.variables, ((past - loc) / scale).astype(np.float32)[None],
      past_observed_mask=np.ones((1, 64, 5), np.float32),
      future_values=known.astype(np.float32)[None],
      static_categorical_values=np.array([[1]], np.int32))
  want = np.asarray(out.prediction_outputs, np.float64)[0, :, 0] * scale[
      0] + loc[0]
  got = tuned['out'][tuned['out']['site'] == 'b']['load'].to_numpy()
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
  # The known covariates' future reaches the forecast (exogenous mixing).
  still = known.copy()
  still[:, 1:4] = 0.0
  flat = model.model.module.apply(
      model.variables, ((past - loc) / scale).astype(np.float32)[None],
      past_observed_mask=np.ones((1, 64, 5), np.float32),
      future_values=still.astype(np.float32)[None],
      static_categorical_values=np.array([[1]], np.int32))
  assert not np.allclose(np.asarray(flat.prediction_outputs)[0, :, 0],
                         np.asarray(out.prediction_outputs)[0, :, 0])


def test_the_forward_pass_is_the_references(tuned):
  """The fine-tuned model and tsfm_public's TinyTimeMixerForPrediction
  with its config and weights, on the same random inputs (five channels,
  the known covariates' future values, the static categorical): every
  output within 1e-5 (tests/reference.py)."""
  reference = conftest.require_module('tests.reference')
  torch = conftest.require_module('torch')
  model = tuned['model']
  ref = reference.tsfm.TinyTimeMixerForPrediction(
      reference.reference_config(model.config))
  state = checkpoint.to_state_dict(model.variables)
  missing, unexpected = ref.load_state_dict(
      {k: torch.tensor(np.asarray(v)) for k, v in state.items()},
      strict=False)
  assert not unexpected and all('num_batches_tracked' in k
                                for k in missing), (missing, unexpected)
  ref.eval()
  inputs = reference.make_inputs(model.config, batch_size=4)
  inputs['static_categorical_values'] = np.array([[0], [1], [1], [0]],
                                                 np.int64)
  reference.assert_outputs_match(
      reference.run_ours(model.model.module, model.variables, inputs),
      reference.run_reference(ref, inputs),
      ref64=reference.run_reference_float64(ref, inputs))


def test_a_new_category_in_the_future_and_a_rolled_horizon(model_dir):
  """A day type the history never held is all zero in its channels, and a
  horizon past the model's rolls (the past-only channel missing after
  the origin): both forecast finite values."""
  df, future = _load_frames(sites=('a',))
  longer = pd.concat([future, future.assign(
      time=future['time'] + pd.Timedelta(hours=HORIZON))],
                     ignore_index=True)
  longer.loc[3, 'day'] = 'strike'
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(train_finetune, 'table', functools.partial(
        train_finetune.table, quick=True))
    out = ttm_jax.forecast(
        df.assign(pressure=1.0 + np.arange(len(df)) % 5),
        timestamp_column='time', horizon=2 * HORIZON, checkpoint=model_dir,
        id_columns=['site'], target_columns=['load'],
        known_covariates=['temp', 'day'], past_covariates=['pressure'],
        future_df=longer, finetune=0.6)
  assert len(out) == 2 * HORIZON and np.isfinite(out['load']).all()


def test_misaligned_or_ignored_inputs_are_refused_before_training(model_dir):
  """A NaN future covariate and regression options (which a fine-tune
  would ignore) are refused before any training step."""
  df, future = _load_frames()
  common = dict(timestamp_column='time', horizon=HORIZON,
                checkpoint=model_dir, id_columns=['site'],
                target_columns=['load'], known_covariates=['temp'],
                finetune=0.6)

  def fail(*args, **kwargs):
    raise AssertionError('trained')

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(train_finetune, 'table', fail)
    broken = future.copy()
    broken.loc[2, 'temp'] = np.nan
    _refused(lambda: ttm_jax.forecast(df, future_df=broken, **common),
             errors.DataError, "known covariate 'temp' is missing (NaN)")
    _refused(lambda: ttm_jax.forecast(df, future_df=future,
                                      regression=dict(ridge=1.0), **common),
             errors.ConfigError, 'is for zero-shot covariates (in-context '
             "regression); with finetune= the covariates train the model's "
             'exogenous mixer instead')
