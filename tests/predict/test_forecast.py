"""Forecasting a user's data: the API against model.apply, formats,
contexts, horizons, frequencies, intervals, fine-tuning, backtests, the
CLI on a real file, and bad input."""

import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests import conftest
from ttm_jax import errors
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.predict import frames

ROOT = conftest.ROOT
SMALL = dict(context_length=64, prediction_length=16, patch_length=8,
             patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
             decoder_num_layers=1, adaptive_patching_levels=1)


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('ttm') / 'small'
  config = config_lib.TTMConfig(**SMALL)
  checkpoint.save_pretrained(str(folder), config, checkpoint.init_variables(
      config, jax.random.key(0)))
  return str(folder)


def _frame(rows=300, freq='h', columns=('y',), start='2024-01-01', seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(rows)
  data = {'time': pd.date_range(start, periods=rows, freq=freq)}
  for k, name in enumerate(columns):
    data[name] = 10 + np.sin(2 * np.pi * t / 24 + k) + 0.3 * rng.normal(
        size=rows)
  return pd.DataFrame(data)


def _apply(model_dir, past, mask=None):
  """model.apply on one context [L, c]. With a `mask`, as the API feeds
  it: standardised per channel over the observed steps (float64; the
  masked steps' values as given, standardised alike), and the forecast
  mapped back."""
  _, model, variables = ttm_jax.load_pretrained(model_dir)
  past = np.asarray(past, np.float64)
  loc, scale = np.zeros(past.shape[1]), np.ones(past.shape[1])
  if mask is not None:
    mask = np.asarray(mask, bool)
    for c in range(past.shape[1]):
      seen = past[mask[:, c], c]
      loc[c], spread = seen.mean(), seen.std()
      scale[c] = spread if spread > 0 else 1.0
    past = (past - loc) / scale
  out = model.apply(variables, past.astype(np.float32)[None],
                    past_observed_mask=None if mask is None else
                    mask.astype(np.float32)[None])
  return np.asarray(out.prediction_outputs)[0] * scale + loc


def test_one_window_equals_model_apply(model_dir):
  df = _frame(rows=64, columns=('a', 'b'))
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=model_dir)
  expected = _apply(model_dir, df[['a', 'b']].to_numpy())
  # rtol: the API standardises each context in float64 first, so the
  # scaler's minimum scale (1e-5 under the root) acts on variance 1.
  np.testing.assert_allclose(out[['a', 'b']].to_numpy(), expected, atol=1e-6,
                             rtol=1e-6)
  assert out['time'].iloc[0] == pd.Timestamp('2024-01-03 16:00')
  assert len(out) == 16


def test_long_format_equals_wide(model_dir):
  wide = _frame(rows=200, columns=('u', 'v'))
  long = pd.concat([pd.DataFrame({'site': name, 'time': wide['time'],
                                  'load': wide[name]})
                    for name in ('u', 'v')], ignore_index=True)
  by_site = ttm_jax.forecast(long, timestamp_column='time', horizon=16,
                             checkpoint=model_dir, id_columns=['site'])
  together = ttm_jax.forecast(wide, timestamp_column='time', horizon=16,
                              checkpoint=model_dir)
  assert list(by_site.columns) == ['site', 'time', 'load']
  for name in ('u', 'v'):
    np.testing.assert_allclose(
        by_site[by_site.site == name]['load'].to_numpy(),
        together[name].to_numpy(), atol=1e-6)


@pytest.mark.parametrize('pad', ['zero', 'mean', 'edge'])
def test_short_context_is_padded_and_masked(model_dir, caplog, pad):
  """The pads (inputs.pad) are masked and hold a raw 0, the context's mean
  or its first value; the scaler's statistics are the history's own."""
  df = _frame(rows=40)
  with caplog.at_level(logging.WARNING):
    out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                           checkpoint=model_dir, inputs=dict(pad=pad))
  assert 'padded in front' in caplog.text
  values = df['y'].to_numpy()
  past = np.full((64, 1), {'zero': 0.0, 'mean': values.mean(),
                           'edge': values[0]}[pad])
  past[24:, 0] = values
  mask = np.zeros((64, 1))
  mask[24:] = 1
  np.testing.assert_allclose(out['y'].to_numpy(),
                             _apply(model_dir, past, mask)[:, 0], atol=1e-6,
                             rtol=1e-6)


@pytest.mark.parametrize('gaps', ['last', 'zero', 'mean'])
def test_long_context_uses_the_last_window_and_nan_is_missing(model_dir,
                                                              gaps):
  """A gap (inputs.gaps) takes the last value before it, counted as
  observed (as IBM's pipelines), or a raw 0 or the context's mean,
  masked."""
  df = _frame(rows=500)
  df.loc[470, 'y'] = np.nan
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=model_dir, inputs=dict(gaps=gaps))
  last = df['y'].to_numpy()[-64:, None].copy()
  mask = ~np.isnan(last)
  if gaps == 'last':
    last[~mask], mask[:] = df['y'].to_numpy()[469], True
  else:
    last[~mask] = 0.0 if gaps == 'zero' else last[mask].mean()
  expected = _apply(model_dir, last, mask)
  np.testing.assert_allclose(out['y'].to_numpy(), expected[:, 0], atol=1e-6)


def test_the_default_inputs_are_the_one_paths():
  """The API's default is inference.inputs.DEFAULT, which the runner
  takes too (one path, one default)."""
  import inspect  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  for fn in (ttm_jax.forecast, ttm_jax.backtest):
    default = inspect.signature(fn).parameters['inputs'].default
    assert inputs_lib.of(default) == inputs_lib.DEFAULT


@pytest.mark.parametrize('horizon', [7, 16, 40])
def test_horizons_shorter_equal_and_rolled(model_dir, horizon):
  df = _frame(rows=200)
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=horizon,
                         checkpoint=model_dir)['y'].to_numpy()
  assert len(out) == horizon
  values = df['y'].to_numpy()
  first = _apply(model_dir, values[-64:, None])[:, 0]
  np.testing.assert_allclose(out[:min(horizon, 16)], first[:min(horizon, 16)],
                             atol=1e-6)
  if horizon > 16:  # 2.5x: the forecast fed back, twice.
    history = np.concatenate([values, first])
    second = _apply(model_dir, history[-64:, None])[:, 0]
    np.testing.assert_allclose(out[16:32], second, atol=1e-5)


@pytest.mark.parametrize('freq, step', [('h', '1h'), ('15min', '15min'),
                                        ('D', '1D'), ('MS', None)])
def test_frequencies(model_dir, freq, step):
  df = _frame(rows=120, freq=freq)
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=5,
                         checkpoint=model_dir)
  expected = pd.date_range(df['time'].iloc[-1], periods=6, freq=freq)[1:]
  assert list(out['time']) == list(expected)
  if step:
    assert (out['time'].diff().iloc[1:] == pd.Timedelta(step)).all()


def test_conformal_intervals_cover_their_level(model_dir):
  rng = np.random.default_rng(3)
  rows = 2600
  noise = np.zeros(rows)
  for i in range(1, rows):
    noise[i] = 0.5 * noise[i - 1] + rng.normal()
  df = pd.DataFrame({'time': pd.date_range('2020-01-01', periods=rows,
                                           freq='h'),
                     'y': 3 * np.sin(2 * np.pi * np.arange(rows) / 24) + noise})
  report = ttm_jax.backtest(df, timestamp_column='time', horizon=16,
                            checkpoint=model_dir, windows=120,
                            quantiles=(0.1, 0.9), calibration_windows=200)
  assert abs(report['model']['coverage_80'] - 0.80) <= 0.05, report
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=model_dir, quantiles=[0.1, 0.5, 0.9])
  assert (out['y_q0.1'] < out['y_q0.5']).all() and (
      out['y_q0.5'] < out['y_q0.9']).all()
  np.testing.assert_allclose(out['y_q0.5'], out['y'])


def test_backtest_baselines_are_computed_the_same_way(model_dir):
  df = _frame(rows=400)
  report = ttm_jax.backtest(df, timestamp_column='time', horizon=16,
                            checkpoint=model_dir, windows=2)
  values = df['y'].to_numpy()
  errors_ = []
  scales = []
  for k in range(2):
    origin = 400 - 16 * (2 - k)
    forecast = values[origin - 24:origin - 24 + 16]  # Season 24 (hourly).
    errors_.append(values[origin:origin + 16] - forecast)
    history = values[:origin]
    scales.append(np.mean(np.abs(history[24:] - history[:-24])))
  errors_ = np.array(errors_)
  naive = report['seasonal_naive']
  assert naive['mse'] == pytest.approx(np.mean(errors_**2))
  assert naive['mase'] == pytest.approx(np.mean(
      np.abs(errors_) / np.array(scales)[:, None]))
  assert report['season'] == 24 and set(report['model']) >= {'mse', 'mae',
                                                             'mase'}


def _window_mse(folder, source):
  """MSE of the model in `folder` over every window of `source`, by
  hand."""
  from ttm_jax.models import ttm  # pylint: disable=g-import-not-at-top
  _, module, variables = ttm_jax.load_pretrained(str(folder))
  items = [source[i] for i in range(len(source))]
  batch = {k: np.stack([it[k] for it in items]) for k in items[0]}
  out = module.apply(variables, **ttm.model_inputs(batch, module.config))
  return float(np.mean((batch['future_values']
                        - np.asarray(out.prediction_outputs))**2))


def test_finetune_head_probes_then_forecasts(model_dir, tmp_path,
                                            monkeypatch):
  """forecast(finetune=F) head-probes in memory: the backbone stays the
  checkpoint's bit for bit, the tested model's MSE on the validation
  windows (the rest of each history, checked by hand) is below the
  starting model's, the forecast is the fine-tuned model's, and nothing
  is written without finetune_dir (its checkpoints and metrics with)."""
  from ttm_jax.data import builders  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import windows  # pylint: disable=g-import-not-at-top
  from ttm_jax.predict import api  # pylint: disable=g-import-not-at-top
  from ttm_jax.predict import finetune  # pylint: disable=g-import-not-at-top
  from ttm_jax.predict import rolling  # pylint: disable=g-import-not-at-top
  df = _frame(rows=700)
  before = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                            checkpoint=model_dir)
  seen = {}
  finetuned = finetune.finetuned

  def recording(model, frame, fraction, finetune_dir=None, channels=None,
                *args, **kwargs):
    assert channels is None  # No covariates: no exogenous mixer.
    seen['frame'] = frame
    seen['model'] = finetuned(model, frame, fraction, finetune_dir, channels,
                              *args, **kwargs)
    return seen['model']

  monkeypatch.setattr(api.finetune_lib, 'finetuned', recording)
  monkeypatch.chdir(tmp_path)
  after = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                           checkpoint=model_dir, finetune=0.6)
  assert not os.listdir(tmp_path)  # In memory.
  assert not np.allclose(before['y'], after['y'])
  tuned = seen['model']
  start = checkpoint.to_state_dict(ttm_jax.load_pretrained(model_dir)[2])
  state = checkpoint.to_state_dict(tuned.variables)
  backbone = [k for k in start if k.startswith('backbone.')]
  assert backbone
  for key in backbone:
    np.testing.assert_array_equal(state[key], start[key], err_msg=key)
  assert any(not np.array_equal(state[k], start[k]) for k in start)
  valid = builders.table_data(
      finetune.to_table(seen['frame'], None), 64, 16,
      windows.SplitRule(train_fraction=0.6, test_fraction=0.0),
      'finetune').valid
  kept = tmp_path / 'kept'
  checkpoint.save_pretrained(str(kept), tuned.config, tuned.variables)
  assert _window_mse(kept, valid) < _window_mse(model_dir, valid)  # It fell.
  ends = [(0, len(seen['frame'].series[0].values))]
  np.testing.assert_allclose(
      after['y'], rolling.forecast_at(tuned, seen['frame'], ends, 16)[0, :, 0],
      atol=1e-6)
  folder = tmp_path / 'run'
  ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                   checkpoint=model_dir, finetune=0.6,
                   finetune_dir=str(folder))
  assert (folder / 'metrics.jsonl').exists()
  assert (folder / 'checkpoints').is_dir()


def test_auto_picks_a_local_checkpoint_by_context(model_dir, tmp_path):
  folder = tmp_path / 'zoo'
  for context in (64, 128):
    config = config_lib.TTMConfig(**dict(SMALL, context_length=context))
    checkpoint.save_pretrained(str(folder / f'ttm_{context}'), config,
                               checkpoint.init_variables(config,
                                                         jax.random.key(1)))
  from ttm_jax.inference import choice  # pylint: disable=g-import-not-at-top
  assert choice.choose_checkpoint(100, 16, 'h', str(folder))[0].endswith(
      'ttm_64')
  assert choice.choose_checkpoint(500, 16, 'h', str(folder))[0].endswith(
      'ttm_128')
  out = ttm_jax.forecast(_frame(rows=150), timestamp_column='time',
                         horizon=16, checkpoint='auto',
                         checkpoints_dir=str(folder))
  assert len(out) == 16
  with pytest.raises(errors.CheckpointError, match='found no checkpoint'):
    choice.choose_checkpoint(100, 16, 'h', str(tmp_path / 'none'))


@pytest.mark.parametrize('change, words', [
    (lambda d: d.rename(columns={'y': 'load'}), "target column 'y' is not"),
    (lambda d: d.assign(y=d['y'].astype(object).where(d.index != 5, 'x')),
     "non-numeric value 'x' at row 6"),
    (lambda d: d.assign(y=d['y'].where(d.index != 9, np.inf)),
     'inf at row 10'),
    (lambda d: d.drop(index=[50, 51]),
     'irregular: the usual step is h, but rows 50 and 51'),
    (lambda d: d.assign(y=np.nan), "target 'y' has no observed value"),
])
def test_bad_input_is_one_clear_error(model_dir, change, words):
  df = change(_frame(rows=200))
  with pytest.raises(errors.TTMError, match=words):
    ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                     checkpoint=model_dir, target_columns=['y'])


def test_irregular_series_can_be_regularised(model_dir):
  """On the hourly grid: a gap's rows are inserted as missing (NaN, so
  masked in the context), a duplicated time keeps its first row."""
  original = _frame(rows=200)
  df = original.drop(index=[150, 151])  # Inside the last 64 rows.
  duplicate = df.iloc[[10]].assign(y=-99.0)  # After row 10: not kept.
  df = pd.concat([df, duplicate]).sort_values('time', kind='stable')
  frame = frames.to_series(df, 'time', regularize=True)
  (series,) = frame.series
  assert frame.freq == 'h'
  np.testing.assert_array_equal(series.timestamps,
                                original['time'].to_numpy())
  expected = original['y'].to_numpy().copy()
  expected[[150, 151]] = np.nan
  np.testing.assert_array_equal(series.values[:, 0], expected)
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                         checkpoint=model_dir, regularize=True,
                         inputs=dict(gaps='mean'))
  assert list(out['time']) == list(pd.date_range(
      original['time'].iloc[-1], periods=17, freq='h')[1:])
  last = expected[-64:, None].copy()
  mask = ~np.isnan(last)
  last[~mask] = last[mask].mean()
  np.testing.assert_allclose(out['y'].to_numpy(),
                             _apply(model_dir, last, mask)[:, 0], atol=1e-6)


def test_cli_on_a_real_file_with_renamed_columns(tmp_path):
  etth1 = conftest.require_data('ltsf', 'ETTh1.csv')
  r2 = conftest.require_checkpoint('fraware__ChronoAPI__root')
  df = pd.read_csv(etth1).iloc[:2500].rename(
      columns={'date': 'when', 'OT': 'oil_temperature'})
  df.to_csv(tmp_path / 'mine.csv', index=False)
  out = tmp_path / 'out'
  process = subprocess.run(
      [sys.executable, '-m', 'experiments.forecast', '--data',
       str(tmp_path / 'mine.csv'), '--timestamp_column', 'when',
       '--target_columns', 'oil_temperature', '--horizon', '48',
       '--checkpoint', r2, '--quantiles', '0.1,0.9', '--backtest', '2',
       '--out', str(out)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True, text=True, timeout=600)
  assert process.returncode == 0, process.stderr[-3000:]
  lines = process.stdout.strip().splitlines()
  assert lines[-1].startswith('Forecast 1 series x 1 target(s), 48 steps')
  forecasts = pd.read_csv(out / 'forecasts.csv')
  assert list(forecasts.columns) == ['when', 'oil_temperature',
                                     'oil_temperature_q0.1',
                                     'oil_temperature_q0.9']
  assert len(forecasts) == 48 and (out / 'forecast.png').exists()
  report = json.loads((out / 'backtest.json').read_text())
  assert report['windows'] == 2 and 'coverage_80' in report['model']
  process = subprocess.run(
      [sys.executable, '-m', 'experiments.forecast', '--data',
       str(tmp_path / 'mine.csv'), '--timestamp_column', 'date',
       '--checkpoint', r2, '--out', str(out)], cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
      timeout=600)
  assert process.returncode == 2 and 'Traceback' not in process.stderr
  assert "timestamp column 'date' is not in the data" in process.stderr


# A vocabulary of 10 has a row for hourly data's token 7 (the config's
# default of 5 does not: such a model refuses hourly data).
EXOGENOUS = dict(SMALL, num_input_channels=3, decoder_mode='mix_channel',
                 prediction_channel_indices=(0, 1),
                 exogenous_channel_indices=(2,),
                 enable_forecast_channel_mixing=True,
                 resolution_prefix_tuning=True, frequency_token_vocab_size=10)


@pytest.mark.parametrize('inputs', ['default', 'reference'])
def test_controls_rolled_past_the_horizon_equal_stepwise_apply(tmp_path,
                                                               inputs):
  """Two targets and one control, a mix-channel decoder with exogenous
  mixing and a frequency token (hourly: 7, within its vocabulary of 10),
  2.5 model horizons (16) ahead. By hand: each block is model.apply on the
  last 64 rows (targets, control) with the control's known future in
  future_values (zeros past what is given), then the predicted targets
  and the true future control are appended. The reference's inputs are
  the raw values; the default's are each block's context standardised
  per channel (float64, its mean and population deviation), the future
  values standardised alike and the forecast mapped back: the model mixes
  future_values as given, so the two differ."""
  config = config_lib.TTMConfig(**EXOGENOUS)
  folder = str(tmp_path / 'exogenous')
  checkpoint.save_pretrained(folder, config, checkpoint.init_variables(
      config, jax.random.key(4)))
  df = _frame(rows=150, columns=('a', 'b', 'x'))
  horizon, block = 40, config.prediction_length
  future_times = pd.date_range(df['time'].iloc[-1], periods=horizon + 1,
                               freq='h')[1:]
  rng = np.random.default_rng(5)
  future_x = 10 + rng.normal(size=horizon)
  future_df = pd.DataFrame({'time': future_times, 'x': future_x})
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=horizon,
                         checkpoint=folder, target_columns=['a', 'b'],
                         control_columns=['x'], future_df=future_df,
                         inputs=inputs)
  assert list(out.columns) == ['time', 'a', 'b']
  assert list(out['time']) == list(future_times)

  _, model, variables = ttm_jax.load_pretrained(folder)
  token = np.array([ttm_jax.frequency_token('h')], np.int32)

  def apply(past, future):
    if inputs == 'default':
      loc, scale = past.mean(axis=0), past.std(axis=0)
      past, future = (past - loc) / scale, (future - loc) / scale
    else:
      loc, scale = np.zeros(3), np.ones(3)
    predicted = np.asarray(model.apply(
        variables, past[None].astype(np.float32),
        past_observed_mask=np.ones((1,) + past.shape, np.float32),
        future_values=future[None].astype(np.float32),
        freq_token=token).prediction_outputs, np.float64)[0]
    return predicted * scale[:2] + loc[:2]

  history = df[['a', 'b', 'x']].to_numpy()
  expected = []
  for start in range(0, horizon, block):
    known = future_x[start:start + block]
    future = np.zeros((block, 3))
    future[:len(known), 2] = known
    predicted = apply(history[-64:], future)[:len(known)]
    expected.append(predicted)
    history = np.concatenate(
        [history, np.concatenate([predicted, known[:, None]], axis=1)])
  expected = np.concatenate(expected)
  assert expected.shape == (horizon, 2) and np.isfinite(expected).all()
  np.testing.assert_allclose(out[['a', 'b']].to_numpy(), expected,
                             atol=1e-5, rtol=1e-5)
  # The control's future does reach the first block (exogenous mixing).
  future = np.zeros((block, 3))
  assert not np.allclose(apply(df[['a', 'b', 'x']].to_numpy()[-64:], future),
                         expected[:block])


def _scores(truth, predicted, scale):
  """MSE, MAE and MASE over the observed truth; scale [windows, targets]."""
  observed = ~np.isnan(truth)
  error = (truth - predicted)[observed]
  scaled = (np.abs(truth - predicted) / scale[:, None, :])[observed]
  return dict(mse=np.mean(error**2), mae=np.mean(np.abs(error)),
              mase=np.mean(scaled))


def test_backtest_scores_by_hand(model_dir):
  """Model, seasonal-naive and repeat-last scores of a 3-window backtest
  of two targets (hourly: season 24), one truth value missing, from
  `forecast` on the frame cut at each origin and NumPy."""
  rows, horizon, windows, season = 260, 16, 3, 24
  df = _frame(rows=rows, columns=('a', 'b'), seed=7)
  df.loc[rows - 5, 'a'] = np.nan  # In the last window's truth only.
  report = ttm_jax.backtest(df, timestamp_column='time', horizon=horizon,
                            checkpoint=model_dir, windows=windows,
                            quantiles=())
  values = df[['a', 'b']].to_numpy()
  origins = [rows - horizon * (windows - k) for k in range(windows)]
  truth = np.stack([values[o:o + horizon] for o in origins])
  model = np.stack([
      ttm_jax.forecast(df.iloc[:o], timestamp_column='time', horizon=horizon,
                       checkpoint=model_dir)[['a', 'b']].to_numpy()
      for o in origins])
  lags = np.arange(horizon) % season - season  # Seasonal naive's rows.
  naive = np.stack([values[o + lags] for o in origins])
  last = np.stack([np.repeat(values[o - 1:o], horizon, axis=0)
                   for o in origins])
  scale = np.stack([np.mean(np.abs(values[season:o] - values[:o - season]),
                            axis=0) for o in origins])
  assert not np.isnan(naive).any() and not np.isnan(scale).any()
  assert (report['windows'], report['season'], report['series']) == (
      windows, season, 1)
  for name, predicted in (('model', model), ('seasonal_naive', naive),
                          ('repeat_last', last)):
    expected = _scores(truth, predicted, scale)
    for metric in ('mse', 'mae', 'mase'):
      assert report[name][metric] == pytest.approx(expected[metric],
                                                   rel=1e-6), (name, metric)
