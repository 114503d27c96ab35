"""The in-memory fine-tunes (`train.finetune`) as the benchmark runner's
per-task fine-tune uses them (IBM's GIFT recipe on each task's pasts): no
value at or after a test cutoff reaches training, short histories are
padded as IBM's wrapper pads them, too few windows fall back to zero-shot,
and nothing is written."""

import numpy as np
import pytest

from tests.suites.test_benchmark import tiny_model  # pylint: disable=unused-import  # A fixture.
from ttm_jax.data import forecasting
from ttm_jax.suites import benchmark
from ttm_jax.suites import finetuned
from ttm_jax.suites import tasks as tasks_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.train import finetune

TASK = tasks_lib.Task(
    suite='chronos_ii', name='t', dataset_path='p', dataset_config='c',
    horizon=4, seasonality=1, num_windows=2, initial_cutoff=-8,
    window_step_size=4)


def test_padding_follows_ibms_wrapper():
  # Context 32, horizon 4: long enough, none; at least 5 horizons, keep 4
  # horizons of context (pad 32 - 16); else one window (pad to 36).
  assert forecasting.padding(40, 32, 4, 4) == 0
  assert forecasting.padding(20, 32, 4, 4) == 16
  assert forecasting.padding(12, 32, 4, 4) == 24
  # The last horizon of each history is validation. Histories of 40 and
  # 24: training parts of 36 (one window of 32 + 4) and 20 (padded by 16
  # to 36: one window).
  assert finetune.series_windows([40, 24], 32, 4) == 1 + 1
  assert finetune.series_windows([60], 32, 4) == 60 - 4 - 36 + 1


def test_histories_stop_at_each_series_first_cutoff():
  values = [np.arange(20.), np.arange(9.)]
  windows = tasks_lib.windows(TASK, values)
  # Series 1 (9 points) has 1 past point at cutoff -8: kept (min 1).
  histories = benchmark.task_histories(windows)
  assert [len(h) for h in histories] == [12, 1]


def _prepare(forecaster, windows):
  return forecaster.prepare(benchmark.task_histories(windows), TASK.horizon,
                            'D', TASK.name)


def test_training_data_holds_no_test_value(tiny_model, monkeypatch):
  """The histories handed to training (the fit itself replaced) end
  before each series' first cutoff: no poisoned value among them, nor in
  any training or validation window."""
  seen = {}
  series_data = finetune.builders.series_data

  def recording(series, *args, **kwargs):
    seen['histories'] = [np.array(h) for h in series]
    return series_data(series, *args, **kwargs)

  def fake_fit(model, data, config, workdir=None):
    seen['data'], seen['workdir'] = data, workdir
    return model, {}

  monkeypatch.setattr(finetune.builders, 'series_data', recording)
  monkeypatch.setattr(finetune.loop, 'fit_model', fake_fit)
  rng = np.random.default_rng(8)
  values = [np.concatenate([rng.normal(0, 1, n), np.full(8, 1e9)])
            for n in (52, 62, 72)]
  forecaster = finetuned.finetune_forecaster(tiny_model)
  tuned = _prepare(forecaster, tasks_lib.windows(TASK, values))
  assert [len(h) for h in seen['histories']] == [52, 62, 72]
  assert max(np.max(h) for h in seen['histories']) < 1e9
  data = seen['data']
  for source in (data.train, data.valid):
    for i in range(len(source)):
      window = source[i]
      assert np.nanmax(np.abs(window['past_values'])) < 1e3
      assert np.nanmax(np.abs(window['future_values'])) < 1e3
  assert seen['workdir'] is None  # In memory.
  assert tuned.notes['training_windows'] == sum(
      n - 4 - 36 + 1 for n in (52, 62, 72))


@pytest.mark.slow  # Two fine-tunes of a tiny model: ~17 s.
def test_finetune_never_sees_a_test_value(tiny_model):
  rng = np.random.default_rng(7)
  clean = [rng.normal(0, 1, n).cumsum() + 10 for n in (60, 70, 80, 90)]
  # Every value from the first cutoff on replaced by a huge one.
  poisoned = [np.concatenate([v[:-8], np.full(8, 1e9)]) for v in clean]
  forecasts = []
  for values in (clean, poisoned):
    windows = tasks_lib.windows(TASK, values)
    forecaster = finetuned.finetune_forecaster(tiny_model, quantiles='point',
                                               quick=True)
    tuned = _prepare(forecaster, windows)
    assert tuned.notes['finetuned'] and tuned.name == 'model-ft'
    forecasts.append(tuned(windows[0].pasts, 4, 'D')[0])
  np.testing.assert_array_equal(forecasts[0], forecasts[1])
  zero_shot = forecaster_lib.model_forecaster(
      tiny_model, quantiles='point', inputs='reference')
  assert not np.allclose(forecasts[0], zero_shot(
      windows[0].pasts, 4, 'D')[0])  # It did train.


def test_too_few_windows_fall_back_to_zero_shot(tiny_model):
  values = [np.arange(30.) + k for k in range(3)]  # Parts of 18: 1 each.
  windows = tasks_lib.windows(TASK, values)
  forecaster = finetuned.finetune_forecaster(tiny_model, quantiles='point')
  tuned = _prepare(forecaster, windows)
  assert not tuned.notes['finetuned'] and '3 training windows' in (
      tuned.notes['reason'])
  zero_shot = forecaster_lib.model_forecaster(
      tiny_model, quantiles='point', inputs='reference')
  np.testing.assert_array_equal(
      tuned(windows[0].pasts, 4, 'D')[0],
      zero_shot(windows[0].pasts, 4, 'D')[0])


def test_series_windows_are_what_the_runner_asks_the_model():
  """Training and validation windows of data kind 'series': the last
  horizon of each history validates; every window is the context the
  fine-tuned model is then asked with (`inputs.prepare` with the
  reference's inputs: padded with masked zeros, as fev's TTM wrapper)
  divided by its mean absolute observed value."""
  rng = np.random.default_rng(9)
  long = rng.normal(50, 5, 40).cumsum()
  short = rng.normal(50, 5, 24).cumsum()
  splits = forecasting.series_splits([long, short], 32, 4)
  assert len(splits.train) == 2 and len(splits.valid) == 2
  for k, history in enumerate((long, short)):
    item = splits.valid[k]
    context, observed, _, _ = inputs_lib.prepare([history[:-4]], 32,
                                                 inputs_lib.REFERENCE)
    size = np.abs(history[:-4][-32:]).mean()
    np.testing.assert_array_equal(item['past_observed_mask'], observed[0])
    np.testing.assert_allclose(item['past_values'], context[0] / size,
                               rtol=1e-6)
    np.testing.assert_allclose(item['future_values'][:, 0],
                               history[-4:] / size, rtol=1e-6)
  # The short history's training part (20 points) is padded by 16: its
  # one training window has 20 - 4 = 16 observed context steps.
  assert splits.train[1]['past_observed_mask'].sum() == 16


def test_an_in_memory_fit_leaves_sigterm_alone(tiny_model, monkeypatch,
                                              tmp_path):
  """Without a run folder nothing is saved on SIGTERM, so the fit takes no
  preemption handler (the signal ends the process as usual) and writes
  nothing."""
  from ttm_jax.inference import forecaster as forecaster_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.train import checkpoints  # pylint: disable=g-import-not-at-top

  def refuse(*args, **kwargs):
    raise AssertionError('a preemption handler in memory')

  monkeypatch.setattr(checkpoints, 'Preemption', refuse)
  monkeypatch.chdir(tmp_path)
  rng = np.random.default_rng(3)
  model = forecaster_lib.load(tiny_model)
  tuned, notes = finetune.histories(
      model.model, model.source, [rng.normal(0, 1, 80).cumsum()
                                  for _ in range(3)], 4, 'D', quick=True)
  assert notes['finetuned'] and tuned is not None
  assert not list(tmp_path.iterdir())
