"""One forecasting path: the benchmark runner's forecaster and the
forecasting API (`ttm_jax.forecast`) give identical forecasts for
identical histories and inputs, on ragged, short and gappy histories,
within and past the model's horizon; and the API with the reference's
inputs reproduces fev's published ttm-r2 rows through the API itself."""

import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests import conftest
from tests.suites.test_benchmark import tiny_model  # pylint: disable=unused-import  # A fixture.
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.suites import task_data
from ttm_jax.suites import task_metrics
from ttm_jax.suites import tasks as tasks_lib


def _histories():
  """Ragged histories: longer than the context (32), shorter, a few steps,
  with gaps inside and at the start, at very different levels."""
  rng = np.random.default_rng(11)
  out = []
  for length, level in ((90, 5.0), (40, 1e4), (20, -3.0), (7, 2e-3),
                        (33, 50.0)):
    values = level + rng.normal(0, abs(level) * 0.1 + 0.1, length).cumsum()
    out.append(values)
  out[0][[10, 60, 61, 85]] = np.nan
  out[1][[0, 1, 30]] = np.nan
  out[2][5] = np.nan
  out[4][-1] = np.nan
  return out


def _frame(histories):
  """A long frame of the histories, each ending on the same day."""
  end = pd.Timestamp('2024-06-30')
  return pd.concat([pd.DataFrame({
      'id': f's{i}', 'y': h,
      'time': pd.date_range(end=end, periods=len(h), freq='D')})
                    for i, h in enumerate(histories)], ignore_index=True)


@pytest.mark.parametrize('inputs', [
    'default', 'reference', 'legacy_api',
    dict(pad='zero', gaps='mean', standardize=True)])
@pytest.mark.parametrize('horizon', [5, 8, 19])
def test_the_runner_and_the_api_forecast_alike(tiny_model, inputs, horizon):
  histories = _histories()
  runner = forecaster_lib.model_forecaster(tiny_model, quantiles='point',
                                           inputs=inputs)
  point, _ = runner(histories, horizon, 'D')
  api = ttm_jax.forecast(_frame(histories), timestamp_column='time',
                         id_columns=['id'], horizon=horizon,
                         checkpoint=tiny_model, inputs=inputs)
  api = api.pivot(index='id', columns='time', values='y').to_numpy()
  assert np.isfinite(point).all()
  np.testing.assert_array_equal(api, point)
  preset = inputs_lib.of(inputs)
  if preset.standardize and preset.pad != 'zero':  # Offset-invariant.
    shifted, _ = runner([h + 1e9 for h in histories], horizon, 'D')
    scale = 1.0 + np.abs(point).max(axis=1, keepdims=True)
    assert np.all(np.abs(shifted - 1e9 - point) <= 1e-5 * scale)


def test_the_inputs_differ_where_they_say():
  """Long, gapless histories reach the model alike under every standardised
  setting; a short one does not (pads), nor does one with a gap."""
  long = np.linspace(1.0, 2.0, 40)
  short = long[-10:]
  gappy = long.copy()
  gappy[20] = np.nan
  made = {name: inputs_lib.prepare([long, short, gappy], 32, preset)
          for name, preset in inputs_lib.PRESETS.items()}
  default, legacy = made['default'], made['legacy_api']
  np.testing.assert_array_equal(default.values[0], legacy.values[0])
  assert not np.array_equal(default.values[1], legacy.values[1])
  assert not np.array_equal(default.values[2], legacy.values[2])
  # The reference feeds raw values: the same as the data, float32.
  np.testing.assert_array_equal(made['reference'].values[0, :, 0],
                                long[-32:].astype(np.float32))


# -------------------------------------------- the reference, through the API
@pytest.mark.parametrize('name', [
    'monash_m1_yearly',
    pytest.param('monash_tourism_yearly', marks=pytest.mark.slow),
    pytest.param('monash_tourism_quarterly', marks=pytest.mark.slow),
    pytest.param('monash_tourism_monthly', marks=pytest.mark.slow),
    pytest.param('m4_yearly', marks=pytest.mark.slow)])
def test_the_api_with_reference_inputs_reproduces_fevs_ttm_r2(name):
  """IBM r2 512-96 through `ttm_jax.forecast(inputs='reference')`, one call
  per task (each history's last 512 values, which is all the model reads),
  scored with fev's MASE: fev's published ttm-r2 figure to 4 decimals."""
  data = conftest.require_data('monash')
  r2 = conftest.require_checkpoint('fraware__ChronoAPI__root')
  published = pd.read_csv(conftest.ROOT + '/ttm_jax/suites/files/'
                          'fev_chronos_ii_published.csv').set_index(
                              ['model_name', 'task_name'])
  [task] = tasks_lib.select(tasks_lib.load_suite('chronos_ii'), [name])
  series = task_data.read(task, data)
  task = task.with_windows([len(v) for v in series.values])
  [window] = tasks_lib.windows(task, series.values, series.timestamps,
                               series.freq)
  freq = {'monash_tourism_monthly': 'MS',
          'monash_tourism_quarterly': 'QS'}.get(name, 'YS')
  end = pd.Timestamp('2200-01-01')
  frame = pd.concat([pd.DataFrame({
      'id': f's{i:05d}', 'y': past[-512:],
      'time': pd.date_range(end=end, periods=len(past[-512:]), freq=freq)})
                     for i, past in enumerate(window.pasts)],
                    ignore_index=True)
  out = ttm_jax.forecast(frame, timestamp_column='time', id_columns=['id'],
                         horizon=task.horizon, checkpoint=r2, freq=freq,
                         inputs='reference')
  point = out.pivot(index='id', columns='time', values='y').to_numpy()
  mase = task_metrics.fev_window(window.futures, point, point[..., None],
                                 window.pasts, task.seasonality,
                                 (0.5,))['MASE']
  assert round(mase, 4) == round(published.loc[('ttm-r2', name), 'MASE'], 4)
