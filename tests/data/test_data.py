"""Data: IBM's protocol (splits, scaling, windows) against the reference's
preprocessing, grain pipelines, .tsf reader, DRS, and named errors."""

import logging
import os

import numpy as np
import pandas as pd
import pytest

from tests import conftest
from ttm_jax.data import forecasting
from ttm_jax.data import pipeline
from ttm_jax.data import pretrain
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.models import frequency

LTSF = os.path.join(conftest.SHARED, 'data', 'ltsf')


def _write_frame(path, rows, columns=3, seed=0, nans=True, start='2020-01-01',
                 freq='h'):
  rng = np.random.default_rng(seed)
  data = {'date': pd.date_range(start, periods=rows, freq=freq)}
  for k in range(columns):
    values = rng.normal(k, 1 + k, size=rows).cumsum() * 0.1 + 10 * k
    if nans and k == 1:
      values[rng.choice(rows, size=rows // 20, replace=False)] = np.nan
    data[f'c{k}'] = values
  frame = pd.DataFrame(data)
  frame.to_csv(path, index=False)
  return frame


# --------------------------------------------------------------- protocol
def test_window_counts_ett_and_electricity_shape():
  ett = windows.split_ranges(17420, sources.REGISTRY['etth1'].split, 512)
  counts = {k: windows.num_windows(b - a, 512, 96) for k, (a, b) in
            ett.items()}
  assert counts == {'train': 8033, 'valid': 2785, 'test': 2785}
  # Electricity: 26304 rows, 70/10/20 (granite-tsfm issue #259).
  elec = windows.split_ranges(26304, windows.SplitRule(), 512)
  counts = {k: windows.num_windows(b - a, 512, 96) for k, (a, b) in
            elec.items()}
  assert counts == {'train': 17805, 'valid': 2537, 'test': 5165}
  minute = windows.split_ranges(69680, sources.REGISTRY['ettm1'].split, 512)
  assert minute == {'train': (0, 34560), 'valid': (34048, 46080),
                    'test': (45568, 57600)}


def test_fewshot_rows_hand_computed():
  # int(0.05 * (8640 - 512)) + 512 = 406 + 512.
  assert windows.fewshot_rows(8640, 0.05, 512) == (0, 918)
  assert windows.fewshot_rows(8640, 0.1, 512, 'last') == (8640 - 1324, 8640)
  with pytest.raises(ValueError, match='fraction'):
    windows.fewshot_rows(100, 0.0, 10)


def test_scaler_population_std_and_round_trip():
  values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [np.nan, 5.0]])
  scaler = windows.Scaler.fit(values)
  np.testing.assert_allclose(scaler.mean, [3.0, 5.0])
  np.testing.assert_allclose(scaler.scale, [np.sqrt(8 / 3), 1.0])
  out = scaler.transform(values)
  np.testing.assert_allclose(scaler.inverse(out)[:3], values[:3], rtol=1e-6)


def test_windows_contain_no_future_in_context():
  values = np.arange(40, dtype=np.float64)[:, None]
  item = windows.take_window(values, 5, 10, 4)
  np.testing.assert_array_equal(item['past_values'][:, 0], np.arange(5, 15))
  np.testing.assert_array_equal(item['future_values'][:, 0],
                                np.arange(15, 19))


def _reference_datasets(frame, context, horizon, split_config,
                        fewshot=None, freq='1h'):
  tsp_module = conftest.require_module(
      'tsfm_public.toolkit.time_series_preprocessor')
  tsp = tsp_module.TimeSeriesPreprocessor(
      id_columns=[], timestamp_column='date',
      target_columns=[c for c in frame.columns if c != 'date'], scaling=True,
      scaler_type='standard', freq=freq, context_length=context,
      prediction_length=horizon)
  kwargs = {}
  if fewshot is not None:
    kwargs = dict(fewshot_fraction=fewshot, fewshot_location='first')
  return tsp_module.get_datasets(tsp, frame, split_config=split_config,
                                 use_frequency_token=True,
                                 enable_padding=False, **kwargs)


def _compare_to_reference(ours, reference_sets, picks=6):
  for name, ref in zip(('train', 'valid', 'test'), reference_sets):
    assert len(ours[name]) == len(ref), name
    for i in np.linspace(0, len(ref) - 1, picks).astype(int):
      r, o = ref[int(i)], ours[name][int(i)]
      for key in ('past_values', 'future_values', 'past_observed_mask',
                  'future_observed_mask'):
        np.testing.assert_array_equal(np.asarray(r[key], np.float32),
                                      np.asarray(o[key], np.float32),
                                      err_msg=f'{name}[{i}] {key}')
      assert int(r['freq_token']) == int(o['freq_token'])


@pytest.mark.parametrize('fewshot', [None, 0.1])
def test_generated_file_matches_reference_preprocessing(tmp_path, fewshot):
  frame = _write_frame(tmp_path / 'gen.csv', 900, columns=3)
  table = sources.read_table(str(tmp_path / 'gen.csv'), freq='1h')
  ours = forecasting.make_splits(table, 64, 16, windows.SplitRule(),
                                 fewshot_fraction=fewshot)
  frame = pd.read_csv(tmp_path / 'gen.csv', parse_dates=['date'])
  _compare_to_reference(ours, _reference_datasets(
      frame, 64, 16, {'train': 0.7, 'test': 0.2}, fewshot=fewshot))
  assert ours.train[0]['freq_token'] == 7


def test_real_etth1_matches_reference_preprocessing():
  path = conftest.require_data('ltsf', 'ETTh1.csv')
  ours = forecasting.load_benchmark('etth1', 512, 96, data_dir=LTSF)
  assert forecasting.window_count(ours) == {'train': 8033, 'valid': 2785,
                                            'test': 2785}
  frame = pd.read_csv(path, parse_dates=['date'])
  _compare_to_reference(ours, _reference_datasets(
      frame, 512, 96, {'train': [0, 8640], 'valid': [8640, 11520],
                       'test': [11520, 14400]}))


def test_long_format_with_ids_controls_and_categoricals(tmp_path):
  rows = []
  for sid, (n, cat) in enumerate([(120, 'a'), (150, 'b')]):
    for t in range(n):
      rows.append(dict(date=pd.Timestamp('2021-01-01') + pd.Timedelta(
          days=t), store=f's{sid}', y=float(t + 100 * sid), x=float(t % 7),
                       kind=cat))
  pd.DataFrame(rows).to_csv(tmp_path / 'long.csv', index=False)
  table = sources.read_table(str(tmp_path / 'long.csv'), id_columns=['store'],
                             target_columns=['y'], control_columns=['x'],
                             static_categorical_columns=['kind'])
  assert table.ids == ['s0', 's1'] and table.columns == ['y', 'x']
  assert table.freq == 'D'
  splits = forecasting.make_splits(table, 20, 5, windows.SplitRule())
  # Per id: 70/10/20 split of 120 and 150 rows.
  assert len(splits.train) == (84 - 25 + 1) + (105 - 25 + 1)
  item = splits.train[len(splits.train) - 1]
  assert item['static_categorical_values'].tolist() == [1]
  assert frequency.frequency_token(table.freq) == 8


# ----------------------------------------------------------------- errors
def test_named_errors(tmp_path):
  with pytest.raises(sources.DataError, match='looked for .*ETTh2.csv.*'
                     'zhouhaoyi'):
    forecasting.load_benchmark('etth2', 512, 96, data_dir=str(tmp_path))
  with pytest.raises(sources.DataError, match="Did you mean .*'etth1'"):
    sources.read_registered('etth', str(tmp_path))
  _write_frame(tmp_path / 'a.csv', 100)
  with pytest.raises(sources.DataError, match="Column 'cl1'.*Did you mean"):
    sources.read_table(str(tmp_path / 'a.csv'), target_columns=['cl1'])
  frame = _write_frame(tmp_path / 'b.csv', 100)
  frame.loc[10, 'date'] = frame.loc[9, 'date']
  frame.to_csv(tmp_path / 'b.csv', index=False)
  with pytest.raises(sources.DataError, match='duplicated timestamps'):
    sources.read_table(str(tmp_path / 'b.csv'))
  frame = _write_frame(tmp_path / 'c.csv', 100)
  frame = frame.iloc[[0, 2, 1] + list(range(3, 100))]
  frame.to_csv(tmp_path / 'c.csv', index=False)
  with pytest.raises(sources.DataError, match='not increasing'):
    sources.read_table(str(tmp_path / 'c.csv'))
  frame = _write_frame(tmp_path / 'd.csv', 100)
  frame['c2'] = np.nan
  frame.to_csv(tmp_path / 'd.csv', index=False)
  with pytest.raises(sources.DataError, match=r"\['c2'\] have no value"):
    sources.read_table(str(tmp_path / 'd.csv'))
  _write_frame(tmp_path / 'e.csv', 100)
  table = sources.read_table(str(tmp_path / 'e.csv'))
  with pytest.raises(sources.DataError, match='train split has no window'):
    forecasting.make_splits(table, 64, 16, windows.SplitRule())


def test_unknown_frequency_warns(caplog):
  with caplog.at_level(logging.WARNING):
    assert frequency.frequency_token('3min') == 0
  assert 'out-of-vocabulary' in caplog.text
  for freq, token in (('1h', 7), ('h', 7), ('10min', 4), ('15min', 5),
                      ('1d', 8), ('D', 8), ('W', 9), ('min', 1)):
    assert frequency.frequency_token(freq) == token, freq


# --------------------------------------------------------------- pipeline
def _toy_source(n=103):
  values = [np.arange(n + 11, dtype=np.float64)[:, None]]
  series, starts = windows.window_starts([n + 11], 8, 4)
  return forecasting.WindowSource(values, series, starts, 8, 4,
                                  np.zeros(1, np.int32))


def test_train_iterator_resumes_exactly_mid_epoch():
  source = _toy_source()
  def batches(it, k):
    return [next(it)['past_values'][:, 0, 0].tolist() for _ in range(k)]
  full = batches(iter(pipeline.train_dataset(source, 8, seed=3,
                                             process_index=0,
                                             process_count=1)), 30)
  it = iter(pipeline.train_dataset(source, 8, seed=3, process_index=0,
                                   process_count=1))
  first = batches(it, 17)
  state = it.get_state()
  resumed = iter(pipeline.train_dataset(source, 8, seed=3, process_index=0,
                                        process_count=1))
  resumed.set_state(state)
  assert first + batches(resumed, 13) == full
  # Each epoch: 96 of the 103 windows (whole batches), shuffled, distinct.
  flat = [x for b in full for x in b]
  assert sorted(flat[:96]) != flat[:96]
  assert len(set(flat[:96])) == 96


@pytest.mark.parametrize('hosts', [1, 2])
def test_partial_batch_is_kept_padded(hosts):
  # HF's Trainer keeps each epoch's partial batch; drop_remainder=False
  # pads it instead: every window once per epoch, padding rows weight 0
  # with no observed future.
  source = _toy_source(103)
  assert pipeline.steps_per_epoch(103, 8, drop_remainder=False) == 13
  assert pipeline.steps_per_epoch(103, 8) == 12
  real, padding, steps = [], 0, 0
  for p in range(hosts):
    for batch in pipeline.train_dataset(
        source, 8, seed=5, num_epochs=2, drop_remainder=False,
        process_index=p, process_count=hosts):
      steps += 1
      weight = batch['weight']
      assert set(np.unique(weight)) <= {0.0, 1.0}
      mask = batch['future_observed_mask'].reshape(len(weight), -1)
      np.testing.assert_array_equal(mask.min(1), weight)
      np.testing.assert_array_equal(mask.max(1), weight)
      real += batch['past_values'][weight == 1, 0, 0].tolist()
      padding += int(np.sum(weight == 0))
  assert steps == 2 * 13 * hosts
  assert padding == 2 * (13 * 8 - 103)
  assert sorted(real) == sorted(2 * [float(source[i]['past_values'][0, 0])
                                     for i in range(103)])
  # A source smaller than one batch still trains (one padded batch).
  small = _toy_source(5)
  (batch,) = list(pipeline.train_dataset(small, 8, seed=0, num_epochs=1,
                                         drop_remainder=False,
                                         process_index=0, process_count=1))
  assert batch['weight'].sum() == 5
  with pytest.raises(ValueError, match='fewer than one batch'):
    pipeline.train_dataset(small, 8, seed=0, process_index=0,
                           process_count=1)


def test_hosts_see_disjoint_windows():
  source = _toy_source()
  seen = []
  for p in range(2):
    it = iter(pipeline.train_dataset(source, 8, seed=1, process_index=p,
                                     process_count=2, num_epochs=1))
    seen.append({int(x) for b in it for x in b['past_values'][:, 0, 0]})
  assert not seen[0] & seen[1]
  # 103 windows, global batch 8: 96 used per epoch, 48 per host.
  assert len(seen[0]) == len(seen[1]) == 48


@pytest.mark.parametrize('hosts', [1, 3])
def test_eval_batches_cover_every_window_once(hosts):
  source = _toy_source(103)
  counts = np.zeros(len(source))
  for p in range(hosts):
    batches = pipeline.EvalBatches(source, 12, process_index=p,
                                   process_count=hosts)
    assert len(batches) == 9
    for batch in batches:
      assert batch['past_values'].shape[0] == 12 // hosts
      for start, w in zip(batch['past_values'][:, 0, 0], batch['weight']):
        counts[int(start)] += w
  np.testing.assert_array_equal(counts, np.ones(len(source)))


def test_mixture_follows_weights():
  a, b = _toy_source(50), _toy_source(50)
  b.values = [v + 1000 for v in b.values]
  it = iter(pipeline.mixture_dataset([a, b], [3, 1], 16, seed=0,
                                     process_index=0, process_count=1))
  values = np.concatenate([next(it)['past_values'][:, 0, 0]
                           for _ in range(50)])
  share = np.mean(values >= 1000)
  assert 0.2 < share < 0.3


# ------------------------------------------------------------ tsf and DRS
TSF = """# comment
@relation test
@attribute series_name string
@attribute start_timestamp date
@frequency hourly
@horizon 48
@missing true
@equallength false
@data
T1:2020-01-01 00-00-00:1,2,3,4,5,6,7,8
T2:2020-01-01 00-00-00:10,?,30,40.5
"""


def test_tsf_reader_hand_computed(tmp_path):
  (tmp_path / 'x.tsf').write_text(TSF.replace('\n', '\r\n'))
  tsf = pretrain.read_tsf(str(tmp_path / 'x.tsf'))
  assert tsf.frequency == 'hourly' and tsf.freq == 'h' and tsf.horizon == 48
  assert tsf.missing and not tsf.equal_length
  np.testing.assert_array_equal(tsf.series[0], np.arange(1, 9))
  np.testing.assert_array_equal(tsf.series[1], [10, np.nan, 30, 40.5])
  assert tsf.attributes[1] == {'series_name': 'T2',
                               'start_timestamp': '2020-01-01 00-00-00'}
  (tmp_path / 'bad.tsf').write_text('@data\nA:1,2\n')
  with pytest.raises(sources.DataError, match='attributes'):
    pretrain.read_tsf(str(tmp_path / 'bad.tsf'))


def test_drs_hand_computed():
  corpus = pretrain.UnivariateCorpus('x', [np.arange(10.0)], 'h')
  copies = pretrain.diverse_resolutions(corpus, [2, 4], 'mean')
  assert [c.freq for c in copies] == ['h', '2h', '4h']
  np.testing.assert_array_equal(copies[1].series[0], [0.5, 2.5, 4.5, 6.5,
                                                      8.5])
  np.testing.assert_array_equal(copies[2].series[0], [1.5, 5.5])
  decimated = pretrain.diverse_resolutions(corpus, [3], 'decimate')[1]
  np.testing.assert_array_equal(decimated.series[0], [0, 3, 6, 9])
  daily = pretrain.diverse_resolutions(corpus, [24], 'mean')[1]
  assert daily.freq == 'D' and frequency.frequency_token(daily.freq) == 8
  minutes = pretrain.UnivariateCorpus('m', [np.arange(60.0)], '10min')
  assert [c.freq for c in pretrain.diverse_resolutions(
      minutes, [3, 6], 'decimate')] == ['10min', '30min', 'h']


def test_short_series_dropped_with_count(caplog):
  corpus = pretrain.UnivariateCorpus(
      'x', [np.arange(30.0), np.arange(5.0), np.arange(12.0)], 'h')
  with caplog.at_level(logging.INFO):
    source = pretrain.corpus_windows(corpus, 8, 4)
  assert '2 series kept, 1 dropped' in caplog.text
  assert len(source) == (30 - 12 + 1) + 1


def test_real_monash_hourly_tsf():
  path = conftest.require_data('monash', 'm4_hourly_dataset.tsf')
  tsf = pretrain.read_tsf(path)
  assert len(tsf.series) == 414 and tsf.horizon == 48 and tsf.freq == 'h'
  assert sum(len(s) for s in tsf.series) == 373_372
