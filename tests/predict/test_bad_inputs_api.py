"""Bad and degenerate input to the forecasting API (`ttm_jax.forecast`,
`ttm_jax.backtest`) and its CLI (`experiments.forecast`): each class ends
in one clear line naming the culprit, or in a defined, correct answer."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

# The forecast tests' small model (a module fixture, shared).
from tests.predict.test_forecast import model_dir  # pylint: disable=unused-import
import ttm_jax
from ttm_jax import errors
from tests import conftest

ROOT = conftest.ROOT


def _frame(rows=200, freq='h', seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(rows)
  return pd.DataFrame({
      'time': pd.date_range('2024-01-01', periods=rows, freq=freq),
      'y': 10 + np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=rows)})


def _long(lengths=(200, 200), seed=0):
  parts = []
  for k, rows in enumerate(lengths):
    part = _frame(rows, seed=seed + k)
    part.insert(0, 'site', 'abcdefgh'[k])
    parts.append(part)
  return pd.concat(parts, ignore_index=True)


def _refused(call, kind, words):
  """`call()` raises one line of `kind` containing `words`, without NumPy
  reprs; returns the message."""
  with pytest.raises(kind) as caught:
    call()
  message = str(caught.value)
  assert words in message, message
  assert '\n' not in message and 'np.' not in message, message
  return message


def _forecast(model_dir, df, **kwargs):
  return ttm_jax.forecast(df, **{**dict(timestamp_column='time', horizon=16,
                                        checkpoint=model_dir), **kwargs})


def _backtest(model_dir, df, **kwargs):
  return ttm_jax.backtest(df, **{**dict(
      timestamp_column='time', horizon=16, checkpoint=model_dir, windows=2,
      quantiles=()), **kwargs})


# --------------------------------------------------------------- arguments
@pytest.mark.parametrize('name', ['horizon', 'context', 'calibration_windows',
                                  'windows'])
@pytest.mark.parametrize('value', [True, 2.5, -1, 0, '16'])
def test_whole_number_arguments(model_dir, name, value):
  run = _backtest if name == 'windows' else _forecast
  _refused(lambda: run(model_dir, _frame(), **{name: value}),
           errors.ConfigError,
           f'{name}={value!r}: must be an integer >= 1.')


def test_numpy_integers_are_integers(model_dir):
  out = _forecast(model_dir, _frame(), horizon=np.int64(5),
                  context=np.int32(100))
  assert len(out) == 5


@pytest.mark.parametrize('quantiles, words', [
    (0.5, 'quantiles=0.5: must be a list of numbers in (0, 1)'),
    ('0.1,0.9', "quantiles='0.1,0.9': must be a list of numbers in (0, 1)"),
    (['a'], "quantiles=['a']: has 'a': levels must be numbers in (0, 1)"),
    ([0.1, True], 'has True: levels must be numbers in (0, 1)'),
    ([0.1, 1.5], 'has 1.5: levels must be numbers in (0, 1)'),
    ([0.1, 0.1], 'has 0.1 twice: levels must be unique'),
    ([0.1, float('nan')], 'has nan: levels must be numbers in (0, 1)'),
])
def test_quantile_levels(model_dir, quantiles, words):
  _refused(lambda: _forecast(model_dir, _frame(), quantiles=quantiles),
           errors.ConfigError, words)
  _refused(lambda: _backtest(model_dir, _frame(), quantiles=quantiles),
           errors.ConfigError, words)


def test_extreme_level_needs_calibration_windows(model_dir):
  _refused(lambda: _forecast(model_dir, _frame(), quantiles=[0.005, 0.5]),
           errors.ConfigError, 'the level 0.005 needs at least 99 calibration '
           'windows for a finite conformal bound, but calibration_windows=64')
  # Enough windows asked for, too little history for them: 40 rows leave
  # 17 windows of 16 steps (each from at least one patch of 8); 0.02 needs
  # 24.
  _refused(lambda: _forecast(model_dir, _frame(rows=40), quantiles=[0.02]),
           errors.DataError, 'The series has room for 17 calibration '
           'window(s) of 16 steps before its forecast origin (row 40); the '
           'quantiles need 24: give at least 47 rows of history')
  out = _forecast(model_dir, _frame(rows=300), quantiles=[0.02, 0.98],
                  calibration_windows=100)
  assert np.isfinite(out[['y_q0.02', 'y_q0.98']].to_numpy()).all()


@pytest.mark.parametrize('roles, kind, words', [
    (dict(target_columns=['y', 'y']), errors.ConfigError,
     "target_columns=['y', 'y']: names 'y' twice."),
    (dict(id_columns=['site'], target_columns=['site']), errors.ConfigError,
     "Column 'site' is given twice: as an id and as a target column"),
    (dict(target_columns=['y'], control_columns=['y']), errors.ConfigError,
     "Column 'y' is given twice: as a target and as a control column"),
    (dict(timestamp_column='y', target_columns=['y']), errors.ConfigError,
     "Column 'y' is given twice: as a timestamp and as a target column"),
    (dict(id_columns='site'), errors.ConfigError,
     "id_columns='site': must be a list of column names (write ['site'])"),
    (dict(id_columns=['site'], control_columns=['temp']), errors.DataError,
     "The control column 'temp' is not in the data"),
    (dict(id_columns=['site'], intervals='bands'), errors.ConfigError,
     "intervals='bands': must be one of ['auto', 'model', 'conformal']"),
    (dict(id_columns=['site'], short_history='drop'), errors.ConfigError,
     "short_history='drop': must be one of ['pad', 'error']"),
    (dict(id_columns=['site'], finetune=1.5), errors.ConfigError,
     'finetune=1.5: must be a number in (0, 1)'),
    (dict(id_columns=['site'], regularize='yes'), errors.ConfigError,
     "regularize='yes': must be true or false"),
    (dict(id_columns=['site'], freq='fortnightly'), errors.ConfigError,
     "freq='fortnightly' is not a pandas frequency"),
])
def test_column_roles_and_options(model_dir, roles, kind, words):
  _refused(lambda: _forecast(model_dir, _long(), **roles), kind, words)


# ---------------------------------------------------------- degenerate data
def test_offset_and_scale_give_the_same_forecast(model_dir):
  df = _frame(rows=150)
  df.loc[140, 'y'] = np.nan  # A missing value in the context too.
  base = _forecast(model_dir, df, quantiles=[0.1, 0.9])
  columns = ['y', 'y_q0.1', 'y_q0.9']
  for transform, undo in ((lambda v: v * 1e-9, lambda v: v / 1e-9),
                          (lambda v: v + 1e9, lambda v: v - 1e9),
                          (lambda v: v * 1e6 - 3e7, lambda v: (v + 3e7) / 1e6)):
    out = _forecast(model_dir, df.assign(y=transform(df['y'])),
                    quantiles=[0.1, 0.9])
    np.testing.assert_allclose(undo(out[columns].to_numpy()),
                               base[columns].to_numpy(), rtol=1e-4)


def test_target_with_no_observed_value_is_refused(model_dir):
  df = _long()
  df.loc[(df.site == 'b') & (df.index % 200 >= 100), 'y'] = np.nan
  _refused(lambda: _forecast(model_dir, df, id_columns=['site']),
           errors.DataError, "Series {'site': 'b'}: target 'y' has no "
           "observed value in the last 64 rows (the model's context)")
  df = _long((5, 200))
  df.loc[df.site == 'a', 'y'] = np.nan
  _refused(lambda: _forecast(model_dir, df, id_columns=['site']),
           errors.DataError, "Series {'site': 'a'}: target 'y' has no "
           'observed value in its history')


def test_undefined_metric_is_null_with_a_reason(model_dir):
  df = _frame(rows=150).assign(y=5.0)
  report = _backtest(model_dir, df, quantiles=(0.1, 0.9))
  text = json.dumps(report, allow_nan=False)  # Strict JSON.
  for name in ('model', 'seasonal_naive', 'repeat_last'):
    assert report[name]['mase'] is None, text
    assert report[name]['mase_undefined'].startswith(
        'constant history: no seasonal error'), text
  assert report['model']['mse'] == pytest.approx(0.0, abs=1e-4)


def test_numeric_timestamps_are_refused(model_dir):
  df = _frame().assign(time=np.arange(200) * 3600)
  _refused(lambda: _forecast(model_dir, df), errors.DataError,
           "Column 'time' holds numbers, not timestamps (row 1: 0): their "
           'unit would be a guess. Convert them first')


def test_unparsable_timestamp_names_its_row(model_dir):
  df = _frame()
  df['time'] = df['time'].astype(str)
  df.loc[5, 'time'] = 'not a date'
  message = _refused(lambda: _forecast(model_dir, df), errors.DataError,
                     "Column 'time' has 'not a date' at row 6 that is not a "
                     'timestamp')
  assert 'You might want to try' not in message
  df = _frame()
  df.loc[[3, 9], 'time'] = pd.NaT
  _refused(lambda: _forecast(model_dir, df), errors.DataError,
           "Column 'time' has no timestamp at rows [4, 10]")


def test_freq_that_contradicts_the_data_is_refused(model_dir):
  _refused(lambda: _forecast(model_dir, _frame(), freq='D'),
           errors.DataError, "freq='D' contradicts the timestamps (the "
           "data's frequency is h): rows 1 and 2 are 0 days 01:00:00 apart")
  out = _forecast(model_dir, _frame(), freq='h', horizon=3)
  assert len(out) == 3


def test_missing_ids_are_refused_naming_the_rows(model_dir):
  df = _long()
  df.loc[[2, 7, 250], 'site'] = None
  _refused(lambda: _forecast(model_dir, df, id_columns=['site']),
           errors.DataError, "Id column 'site' is empty (missing) at rows "
           '[3, 8, 251]: every row needs its series id')


# --------------------------------------------------------------- messages
def test_too_short_for_the_backtest_names_the_series(model_dir):
  df = _long((200, 30))
  df['site'] = df['site'].map({'a': 11, 'b': 12}).astype(np.int64)
  _refused(lambda: _backtest(model_dir, df, id_columns=['site'], windows=2),
           errors.DataError, "Series {'site': 12} is too short for 2 "
           'backtest windows of 16 steps (30 rows; needs at least 33)')
  _refused(lambda: _backtest(model_dir, df, id_columns=['site'], windows=1,
                             quantiles=(0.1, 0.9)),
           errors.DataError, "Series {'site': 12} is too short for 1 "
           'backtest windows of 16 steps (30 rows; needs at least 43)')


def test_finetune_leaves_no_folder_and_clamps_the_batch(model_dir, tmp_path,
                                                        monkeypatch):
  """The fit itself is replaced (its cost is not the point): it records
  the batch and returns the starting model. Nothing is written without
  finetune_dir, whether the fit ends or fails; a finetune_dir that holds
  something is refused before any work."""
  from ttm_jax.train import finetune  # pylint: disable=g-import-not-at-top
  seen = {}

  def fake_fit(model, data, config, workdir=None):
    del data
    seen['batch'], seen['workdir'] = config.data.batch_size, workdir
    if seen.get('fail'):
      raise errors.DataError('stopped')
    return model, {}

  monkeypatch.setattr(finetune.loop, 'fit_model', fake_fit)
  monkeypatch.setenv('TMPDIR', str(tmp_path))
  monkeypatch.setattr('tempfile.tempdir', None)
  monkeypatch.chdir(tmp_path)
  df = _frame(rows=200)
  out = _forecast(model_dir, df, finetune=0.6)
  assert len(out) == 16
  # 0.6 x 200 = 120 rows: 120 - 64 - 16 + 1 windows, under the batch of 64.
  assert seen['batch'] == 41 and seen['workdir'] is None
  seen['fail'] = True
  with pytest.raises(errors.DataError, match='stopped'):
    _forecast(model_dir, df, finetune=0.6)
  assert not os.listdir(tmp_path)
  seen['fail'] = False
  kept = tmp_path / 'kept'
  _forecast(model_dir, df, finetune=0.6, finetune_dir=str(kept))
  assert seen['workdir'] == str(kept)
  kept.mkdir(exist_ok=True)
  (kept / 'something').write_text('x')
  _refused(lambda: _forecast(model_dir, df, finetune=0.6,
                             finetune_dir=str(kept)),
           errors.ConfigError, 'exists and is not an empty folder')


# ------------------------------------------------- short histories (#21)
def test_every_series_gets_a_forecast_however_short(model_dir, caplog):
  df = _long((1, 5, 200))
  with caplog.at_level(logging.WARNING):
    out = _forecast(model_dir, df, id_columns=['site'], horizon=4)
  assert sorted(out['site'].unique()) == ['a', 'b', 'c']
  assert np.isfinite(out['y']).all()
  warnings = [r.getMessage() for r in caplog.records
              if 'padded in front' in r.getMessage()]
  assert warnings == [
      "2 series have fewer rows than the model's context (64) before a "
      'forecast origin: padded in front, the padding masked (shortest: 1 '
      'rows).']
  # The one-row series' first step: from its one value (masked padding).
  first = out[out.site == 'a']['time'].iloc[0]
  assert first == df[df.site == 'a']['time'].iloc[0] + pd.Timedelta('1h')
  _refused(lambda: _forecast(model_dir, df, id_columns=['site'],
                             short_history='error'),
           errors.DataError, "Series {'site': 'a'} has 1 row(s) of history "
           "before its forecast origin, fewer than the model's context (64), "
           "and short_history='error'")
  # A wide frame of one row needs its frequency.
  one = _frame(rows=1)
  _refused(lambda: _forecast(model_dir, one), errors.DataError,
           'has 1 rows: too few to infer its frequency (give freq=...)')
  assert len(_forecast(model_dir, one, freq='h')) == 16


def test_backtest_origins_of_short_series_are_padded(model_dir):
  report = _backtest(model_dir, _frame(rows=20), windows=1)
  assert report['model']['mse'] is not None
  _refused(lambda: _backtest(model_dir, _frame(rows=20), windows=1,
                             short_history='error'),
           errors.DataError, 'The series has 4 row(s) of history before its '
           'backtest origin')


# ---------------------------------------------------------------- the CLI
def _cli(*args):
  return subprocess.run(
      [sys.executable, '-m', 'experiments.forecast', *args], cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
      timeout=300)


@pytest.mark.parametrize('flag, words', [
    (['--horizon', '-3'], 'error: --horizon=-3: must be an integer >= 1.'),
    (['--quantiles', '0.1,abc'], "error: --quantiles: 'abc' is not a number"),
    (['--freq', 'D'], "freq='D' contradicts the timestamps"),
])
def test_cli_flags_are_one_line(model_dir, tmp_path, flag, words):
  path = tmp_path / 'data.csv'
  _frame().to_csv(path, index=False)
  process = _cli('--data', str(path), '--timestamp_column', 'time',
                 '--checkpoint', model_dir, '--out', str(tmp_path / 'out'),
                 *flag)
  assert process.returncode == 2, process.stderr[-2000:]
  assert 'Traceback' not in process.stderr
  assert words in process.stderr, process.stderr[-2000:]
  if 'freq' not in words:  # Refused before reading the data or the model.
    assert not (tmp_path / 'out').exists()


def test_cli_backtest_json_is_strict(model_dir, tmp_path):
  path = tmp_path / 'constant.csv'
  _frame(rows=150).assign(y=5.0).to_csv(path, index=False)
  process = _cli('--data', str(path), '--timestamp_column', 'time',
                 '--checkpoint', model_dir, '--horizon', '16',
                 '--backtest', '2', '--out', str(tmp_path / 'out'))
  assert process.returncode == 0, process.stderr[-2000:]
  assert 'backtest MASE undefined: constant history' in process.stdout
  text = (tmp_path / 'out' / 'backtest.json').read_text()
  report = json.loads(text, parse_constant=lambda c: pytest.fail(c))
  assert report['model']['mase'] is None
  assert report['model']['mase_undefined'].startswith('constant history')
