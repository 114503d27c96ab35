"""Bad input in the frames of `ttm_jax.forecast` and `ttm_jax.backtest`,
round 4: `future_df` with repeated times or text, controls that the model
reads none of, and a short series refused for a frequency inferred from
another. Each ends in one line naming the series, column, row or time,
before any forecast; never in pandas' or NumPy's own error."""

import jax
import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests.predict.test_bad_inputs_api import _refused
from tests.predict.test_forecast import EXOGENOUS
from tests.predict.test_forecast import model_dir  # pylint: disable=unused-import
from ttm_jax import errors
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib

HORIZON = 16


@pytest.fixture(scope='module')
def exogenous_dir(tmp_path_factory):
  """Two targets and a control, mixed (exogenous channel 2), without the
  frequency token."""
  folder = str(tmp_path_factory.mktemp('ttm') / 'exogenous')
  config = config_lib.TTMConfig(**dict(EXOGENOUS,
                                       resolution_prefix_tuning=False))
  checkpoint.save_pretrained(folder, config, checkpoint.init_variables(
      config, jax.random.key(4)))
  return folder


def _long(rows=150):
  rng = np.random.default_rng(0)
  parts = []
  for site in ('a', 'b'):
    parts.append(pd.DataFrame({
        'site': site,
        'time': pd.date_range('2024-01-01', periods=rows, freq='h'),
        'y': rng.normal(size=rows), 'z': rng.normal(size=rows),
        'x': rng.normal(size=rows)}))
  return pd.concat(parts, ignore_index=True)


def _future(df):
  """The controls' next HORIZON values of each site."""
  parts = []
  for site, group in df.groupby('site'):
    times = pd.date_range(group['time'].iloc[-1], periods=HORIZON + 1,
                          freq='h')[1:]
    parts.append(pd.DataFrame({'site': site, 'time': times,
                               'x': np.arange(HORIZON, dtype=float)}))
  return pd.concat(parts, ignore_index=True)


def _with_controls(folder, df, future_df, **kwargs):
  return ttm_jax.forecast(
      df, timestamp_column='time', horizon=HORIZON, checkpoint=folder,
      id_columns=['site'], target_columns=['y', 'z'], control_columns=['x'],
      future_df=future_df, **kwargs)


def test_the_future_controls_are_checked_naming_series_row_and_time(
    exogenous_dir):
  df = _long()
  good = _future(df)
  out = _with_controls(exogenous_dir, df, good)
  assert len(out) == 2 * HORIZON and np.isfinite(out[['y', 'z']]).all().all()
  repeated = pd.concat([good, good.iloc[[20]]], ignore_index=True)
  _refused(lambda: _with_controls(exogenous_dir, df, repeated),
           errors.DataError, "future_df has series {'site': 'b'} at "
           '2024-01-07 10:00:00 twice (rows 21 and 33): give each forecast '
           'step one row.')
  text = good.astype({'x': object})
  text.loc[7, 'x'] = 'high'
  _refused(lambda: _with_controls(exogenous_dir, df, text), errors.DataError,
           "future_df: column 'x' has a non-numeric value 'high' at row 8")
  infinite = good.copy()
  infinite.loc[3, 'x'] = np.inf
  _refused(lambda: _with_controls(exogenous_dir, df, infinite),
           errors.DataError, "future_df: column 'x' has inf at row 4")
  _refused(lambda: _with_controls(exogenous_dir, df, good.iloc[:-1]),
           errors.DataError, "future_df lacks control values for series "
           "{'site': 'b'} at 2024-01-07 21:00:00")
  # Checked before fine-tuning: no training runs for a bad future_df.
  _refused(lambda: _with_controls(exogenous_dir, df, repeated,
                                  finetune=0.5),
           errors.DataError, 'twice')


def test_controls_a_model_reads_none_of_are_refused(model_dir):
  df = _long()
  words = ("control_columns ['x']: the model " + model_dir + ' reads no '
           'controls')
  _refused(lambda: ttm_jax.forecast(
      df, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site'], target_columns=['y'], control_columns=['x'],
      future_df=_future(df)), errors.ConfigError, words)
  _refused(lambda: ttm_jax.backtest(
      df, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site'], target_columns=['y'], control_columns=['x'],
      windows=2, quantiles=()), errors.ConfigError, words)
  _refused(lambda: ttm_jax.forecast(
      df, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site'], target_columns=['y'], future_df=_future(df)),
           errors.ConfigError, 'future_df is given but there are no '
           'control_columns or known_covariates: it would be ignored')
  # Without them, the same call forecasts.
  out = ttm_jax.forecast(df, timestamp_column='time', horizon=HORIZON,
                         checkpoint=model_dir, id_columns=['site'],
                         target_columns=['y'])
  assert len(out) == 2 * HORIZON


def test_a_short_series_names_the_series_its_frequency_came_from(model_dir):
  df = _long()[['site', 'time', 'y']]
  short = pd.DataFrame({'site': 'c', 'time': pd.to_datetime(
      ['2024-01-01 00:00', '2024-01-01 00:30']), 'y': [1.0, 2.0]})
  both = pd.concat([df, short], ignore_index=True)
  message = _refused(lambda: ttm_jax.forecast(
      both, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site']), errors.DataError,
                     "Series {'site': 'c'} has 2 rows, too few to infer its "
                     "frequency, and they are not on the frequency 'h' "
                     "inferred from series {'site': 'a'}: rows 301 and 302 "
                     'are 0 days 00:30:00 apart')
  assert 'given' not in message.split('Give')[0]
  # A given freq says so.
  _refused(lambda: ttm_jax.forecast(
      both, timestamp_column='time', horizon=HORIZON, checkpoint=model_dir,
      id_columns=['site'], freq='h'), errors.DataError,
           "Series {'site': 'c'}: freq='h' contradicts the timestamps")
  # On the inferred grid, a two-row series forecasts.
  fine = short.assign(time=pd.to_datetime(['2024-01-01 00:00',
                                           '2024-01-01 01:00']))
  out = ttm_jax.forecast(pd.concat([df, fine], ignore_index=True),
                         timestamp_column='time', horizon=HORIZON,
                         checkpoint=model_dir, id_columns=['site'])
  assert len(out) == 3 * HORIZON
