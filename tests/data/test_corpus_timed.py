"""Timed CSV corpus sources: each mess of the published files (daylight
saving repeats, offsets, unsorted rows, gaps, empty lines, text columns,
long files with several ids, US and spreadsheet dates, jitter) made small
here, read onto a regular grid with the report of what was done; bad
sources named before anything is written."""

import glob
import os

import numpy as np
import pandas as pd
import pytest

from experiments import prepare_corpus
from ttm_jax import errors
from ttm_jax.data.corpus import grid
from ttm_jax.data.corpus import sources
from tests import conftest

ROOT = conftest.ROOT


def _read(spec):
  """{series id: Series} of a spec, and its (first) file's report."""
  reports = []
  found = {s.series_id: s for _, s in sources.read(spec, reports)}
  return found, reports[0]


def _wall_clock(tmp_path, shuffle=True):
  """Hourly load published in New York wall-clock time over the 2020
  fall-back (01:00 twice) and spring-forward (02:00 skipped) days; the
  value is the true hour's number. Rows shuffled in blocks, as PJM's."""
  hours = []
  for start in ('2020-03-07 12:00', '2020-10-31 12:00'):
    hours.append(pd.date_range(pd.Timestamp(start, tz='America/New_York'),
                               periods=48, freq='h'))
  stamps = hours[0].append(hours[1])
  frame = pd.DataFrame({
      'Datetime': stamps.tz_localize(None).strftime('%Y-%m-%d %H:%M:%S'),
      'LOAD_MW': np.arange(96, dtype=float)})
  if shuffle:
    frame = pd.concat([frame.iloc[60:], frame.iloc[:60]])
  path = tmp_path / 'zone_hourly.csv'
  frame.to_csv(path, index=False)
  return path


def test_wall_clock_dst_repeat_is_averaged_and_skipped_hour_filled(
    tmp_path):
  path = _wall_clock(tmp_path)
  found, report = _read(f'csv:{path},timestamp=Datetime,min_length=2')
  # Two pieces (the two weekends are months apart), each on an hourly
  # wall-clock grid: spring's skipped 02:00 interpolated, fall's two
  # 01:00 rows averaged.
  spring, fall = found['LOAD_MW#0'], found['LOAD_MW#1']
  assert spring.freq == 'h' and spring.start == '2020-03-07T12:00:00'
  assert len(spring.values) == 49
  np.testing.assert_allclose(spring.values[:14], np.arange(14))
  assert spring.values[14] == 13.5  # 02:00 on 8 March, filled.
  np.testing.assert_allclose(spring.values[15:], np.arange(14, 48))
  # 01:00 on 1 November holds true hours 13 and 14 of the block.
  assert len(fall.values) == 47 and fall.values[13] == 48 + 13.5
  np.testing.assert_allclose(fall.values[14:], np.arange(48 + 15, 96))
  assert report['duplicate_times'] == 1 and report['rows_merged'] == 1
  assert report['missing_steps'] > 1 and report['values_filled'] == 1
  assert report['unsorted'] == 1 and report['gaps_split'] == 1
  assert report['times'] == 'wall clock as published'


def test_local_times_with_tz_become_a_regular_utc_grid(tmp_path):
  path = _wall_clock(tmp_path)
  found, report = _read(f'csv:{path},timestamp=Datetime,'
                        'tz=America/New_York,min_length=2')
  spring, fall = found['LOAD_MW#0'], found['LOAD_MW#1']
  # In UTC nothing repeats and nothing is missing: the true hours.
  np.testing.assert_array_equal(spring.values, np.arange(48))
  np.testing.assert_array_equal(fall.values, np.arange(48, 96))
  assert spring.start == '2020-03-07T17:00:00'  # 12:00 EST.
  assert report['rows_merged'] == 0 and report['values_filled'] == 0
  assert report['times'] == 'local America/New_York -> UTC'


def test_offsets_are_converted_to_utc(tmp_path):
  stamps = pd.date_range('2012-03-31 12:00', periods=96, freq='30min',
                         tz='Australia/Melbourne')  # DST ends 1 April.
  pd.DataFrame({'Time': stamps.strftime('%Y-%m-%d %H:%M:%S%z'),
                'Demand': np.arange(96.0)}).to_csv(tmp_path / 'vic.csv',
                                                   index=False)
  found, report = _read(f'csv:{tmp_path}/vic.csv,timestamp=Time')
  np.testing.assert_array_equal(found['Demand'].values, np.arange(96))
  assert found['Demand'].freq == '30min'
  assert found['Demand'].start == '2012-03-31T01:00:00'
  assert report['times'] == 'UTC (offsets in the file)'


def test_us_dates_empty_lines_and_text_columns(tmp_path):
  stamps = pd.date_range('2017-01-01', periods=300, freq='10min')
  lines = ['DateTime,Weather,Zone 1 Power Consumption']
  for i, stamp in enumerate(stamps):
    lines.append(f'{stamp.month}/{stamp.day}/{stamp:%y} '
                 f'{stamp.hour}:{stamp:%M},{"sunny" if i % 2 else "rain"},'
                 f'{1000.0 + i}')
    lines.append(',,')
  (tmp_path / 'power.csv').write_text('\n'.join(lines) + '\n')
  found, report = _read(f'csv:{tmp_path}/power.csv,timestamp=DateTime,'
                        'date_format=%m/%d/%y %H:%M')
  series = found['Zone 1 Power Consumption']
  np.testing.assert_array_equal(series.values, 1000.0 + np.arange(300))
  assert series.freq == '10min' and series.start == '2017-01-01T00:00:00'
  assert report['empty_rows'] == 300 and report['rows'] == 600
  assert report['columns_text'] == ['Weather']


def test_excel_serial_days(tmp_path):
  days = 36526 + np.arange(200) / 48  # 2000-01-01 in half hours.
  pd.DataFrame({'Date': days, 'NSW': np.arange(200.0)}).to_csv(
      tmp_path / 'temps.csv', index=False)
  found, report = _read(f'csv:{tmp_path}/temps.csv,timestamp=Date,'
                        'date_format=excel')
  np.testing.assert_array_equal(found['NSW'].values, np.arange(200))
  assert found['NSW'].start == '2000-01-01T00:00:00'
  assert report['freq'] == '30min' and report['off_grid'] == 0


def test_long_file_with_several_ids_unsorted_and_with_gaps(tmp_path):
  rng = np.random.default_rng(0)
  rows = []
  stamps = pd.date_range('2018-11-26 06:00', periods=120, freq='h', tz='UTC')
  for location in ('Back Bay', 'Fenway'):
    for provider in ('Lyft', 'Uber'):
      price = 10 + rng.normal(size=120)
      price[50:53] = np.nan  # Filled.
      for i, stamp in enumerate(stamps):
        rows.append((location, provider, str(stamp), price[i], 3.0, 'x'))
  frame = pd.DataFrame(rows, columns=['source_location', 'provider_name',
                                      'timestamp', 'price', 'temp', 'note'])
  frame = frame.sample(frac=1.0, random_state=1)  # Rows in any order.
  frame.to_csv(tmp_path / 'rides.csv', index=False)
  found, report = _read(
      f'csv:{tmp_path}/rides.csv,timestamp=timestamp,'
      'id=source_location+provider_name,exclude=temp')
  assert sorted(found) == ['Back Bay/Lyft/price', 'Back Bay/Uber/price',
                           'Fenway/Lyft/price', 'Fenway/Uber/price']
  for key, series in found.items():
    location, provider, _ = key.split('/')
    truth = frame[(frame.source_location == location)
                  & (frame.provider_name == provider)].sort_values(
                      'timestamp')['price'].to_numpy()
    np.testing.assert_allclose(series.values[:50], truth[:50])
    np.testing.assert_allclose(series.values[50:53], np.interp(
        [50, 51, 52], [49, 53], truth[[49, 53]]))
  assert report['num_ids'] == 4 and report['values_filled'] == 12
  assert report['columns_text'] == ['note']
  assert report['columns_excluded'] == ['temp']


def test_gap_rule_and_parts_of_dates(tmp_path):
  stamps = pd.date_range('2013-03-01', periods=400, freq='h')
  values = np.arange(400.0)
  values[100:103] = np.nan  # 3 missing steps: filled.
  values[200:230] = np.nan  # 30: split.
  keep = np.ones(400, bool)
  keep[300:320] = False  # 20 missing rows: split; 320.. is one piece.
  keep[330:390] = False  # Leaves 320..329: under min_length, dropped.
  frame = pd.DataFrame({'No': np.arange(1, 401), 'year': stamps.year,
                        'month': stamps.month, 'day': stamps.day,
                        'hour': stamps.hour, 'PM2.5': values,
                        'wd': 'NW'})[keep]
  frame.to_csv(tmp_path / 'air.csv', index=False, na_rep='NA')
  found, report = _read(f'csv:{tmp_path}/air.csv,timestamp=year+month+day+'
                        'hour,exclude=No,max_gap=6,min_length=24')
  # [0, 200) with 100..102 interpolated; [230, 300); the 10-step pieces
  # 320..329 and 390..399 are under min_length.
  assert sorted(found) == ['PM2.5#0', 'PM2.5#1']
  np.testing.assert_allclose(found['PM2.5#0'].values, np.arange(200))
  np.testing.assert_allclose(found['PM2.5#1'].values, np.arange(230, 300))
  assert found['PM2.5#1'].start == '2013-03-10T14:00:00'
  assert report['gaps_split'] == 3 and report['values_filled'] == 3
  assert report['pieces_dropped'] == 2 and report['values_dropped'] == 20
  assert report['missing_steps'] == 80 and report['columns_text'] == ['wd']
  assert report['columns_excluded'] == ['No']


def test_jittered_times_go_to_the_nearest_step(tmp_path):
  stamps = pd.date_range('2015-08-31 18:22', periods=200, freq='5min')
  for name, pattern, freq, off in (('sparse', [0, 0, 0, 1, 0, 0, -2, 0], '',
                                    50),
                                   ('dense', [0, 1, -1, 2], ',freq=5min',
                                    150)):
    jitter = pd.to_timedelta(np.tile(pattern, 200 // len(pattern)), 'min')
    pd.DataFrame({'timestamp': stamps + jitter,
                  'value': np.arange(200.0)}).to_csv(tmp_path / f'{name}.csv',
                                                     index=False)
    # Dense jitter hides the step (the commonest gap is 3 min): give it.
    found, report = _read(f'csv:{tmp_path}/{name}.csv,timestamp=timestamp'
                          + freq)
    np.testing.assert_array_equal(found['value'].values, np.arange(200))
    assert report['freq'] == '5min' and report['off_grid'] == off
    assert report['freq_given'] == bool(freq)
    assert found['value'].start == '2015-08-31T18:22:00'


def test_duplicates_first_last_and_calendar_steps():
  steps, values = np.array([0, 0, 1, 3, 3]), np.array([1., 3, 5, np.nan, 7])
  np.testing.assert_array_equal(grid.aggregate(steps, values, 4, 'mean'),
                                [2, 5, np.nan, 7])
  np.testing.assert_array_equal(grid.aggregate(steps, values, 4, 'first'),
                                [1, 5, np.nan, 7])
  np.testing.assert_array_equal(grid.aggregate(steps, values, 4, 'last'),
                                [3, 5, np.nan, 7])
  months = pd.to_datetime(['2020-01-01', '2020-02-01', '2020-04-01'])
  times = months.as_unit('ns').asi8
  step, share = grid.infer_step(times, np.zeros(3, np.int64))
  assert step.freq == 'MS' and share == 0.5  # One gap of two months.
  assert list(grid.grid_steps(times, step)[0]) == [0, 1, 3]
  assert grid.freq_name(1800 * 10**9) == '30min'
  assert grid.parse_step('15min').nanoseconds == 900 * 10**9
  assert grid.parse_step('QS').months == 3 and grid.parse_step('x') is None


@pytest.fixture(scope='module')
def bad(tmp_path_factory):
  root = tmp_path_factory.mktemp('bad')
  stamps = pd.date_range('2020-01-01', periods=100, freq='h')
  pd.DataFrame({'date': stamps, 'site': 'a', 'note': 'x'}).to_csv(
      root / 'text_only.csv', index=False)
  mixed = pd.DataFrame({'date': stamps.astype(str), 'v': np.arange(100.0)})
  mixed['v'] = mixed['v'].astype(object)
  mixed.loc[41, 'v'] = 'n/a?'
  mixed.to_csv(root / 'mixed.csv', index=False)
  words = mixed.copy()
  words['v'] = 1.0
  words.loc[7, 'date'] = 'yesterday'
  words.to_csv(root / 'bad_time.csv', index=False)
  mixed.assign(v=1.0).to_csv(root / 'good.csv', index=False)
  return root


@pytest.mark.parametrize('spec, words', [
    ('csv:{r}/good.csv,timestamp=date,bogus=1', r"unknown option 'bogus'"),
    ('csv:{r}/good.csv,timestamp=date,duplicates=median',
     r"duplicates='median': expected one of mean, first, last"),
    ('csv:{r}/good.csv,timestamp=date,max_gap=-1',
     r"max_gap='-1' must be an integer >= 0"),
    ('csv:{r}/good.csv,timestamp=date,tz=Mars/Base',
     r"tz='Mars/Base' is not a time zone"),
    ('csv:{r}/good.csv,timestamp=date,date_format=ymd',
     r"date_format='ymd': expected a strftime format"),
    ('csv:{r}/good.csv,timestamp=date,freq=fortnightly',
     r"freq='fortnightly' is not a pandas frequency"),
    ('csv:{r}/good.csv,tz=UTC', r'tz= need timestamp=COL'),
    ('csv:{r}/good.csv,id=a+b,value=v', r'several id or value columns'),
    ('csv:{r}/absent.csv,timestamp=date',
     r'Source csv:.*absent.csv: no such file'),
    ('csv:{r}/absent*.csv,timestamp=date', r'absent\*.csv matches no file'),
    ('csv:{r}/good.csv,timestamp=when', r"good.csv: no column 'when' "
     r'\(timestamp=;'),
    ('csv:{r}/text_only.csv,timestamp=date', r'text_only.csv: no numeric '
     r'column to read as a series'),
    ('csv:{r}/mixed.csv,timestamp=date', r"mixed.csv: column 'v' has a "
     r"non-numeric value 'n/a\?' at row 42"),
    ('csv:{r}/good.csv,timestamp=date,value=date', r"column 'date' \(named "
     r'by value=\) holds no number'),
    ('csv:{r}/bad_time.csv,timestamp=date', r"bad_time.csv: row 8: time "
     r"'yesterday' does not parse"),
    ('synthetic-kernels:num_series=2,length=100,freq=3min',
     r"freq='3min' has no periods; known: min, 5min"),
    ('synthetic-kernels:length=100', r'num_series= is required'),
])
def test_bad_sources_are_named_before_anything_is_written(bad, spec, words):
  with pytest.raises(errors.DataError, match=words):
    sources.check(spec.format(r=bad))


def test_sources_file(tmp_path):
  (tmp_path / 'list.txt').write_text(
      '# comment\n\nmonash:{data_dir}/m/*.tsf  # trailing\n'
      'csv:{data_dir}/a.csv,timestamp=t,date_format=%m/%d/%y %H:%M\n')
  assert prepare_corpus.read_sources_file(str(tmp_path / 'list.txt'),
                                          '/d/') == [
      'monash:/d/m/*.tsf',
      'csv:/d/a.csv,timestamp=t,date_format=%m/%d/%y %H:%M']
  with pytest.raises(errors.ConfigError, match='no such file'):
    prepare_corpus.read_sources_file(str(tmp_path / 'none.txt'), '.')


def test_public_v2_names_every_extra_file_and_each_checks():
  """Every data file of ../shared/data/extra is matched by a spec of the
  v2 sources file, and every spec passes the before-writing checks."""
  data = conftest.require_data()
  extra = conftest.require_data('extra')
  specs = prepare_corpus.read_sources_file(
      os.path.join(ROOT, 'configs', 'corpora', 'public_v2.txt'), data)
  matched = set()
  for spec in specs:
    sources.check(spec)
    kind, options = sources.parse_source(spec)
    matched.update(glob.glob(options.get('glob', options.get('path'))))
  files = {p for p in glob.glob(f'{extra}/**/*', recursive=True)
           if os.path.isfile(p) and not p.endswith('SOURCE.txt')}
  assert files and not files - matched, sorted(files - matched)


def test_a_file_without_any_time_is_named(tmp_path):
  (tmp_path / 'none.csv').write_text('date,v\n,1\n,2\n')
  with pytest.raises(errors.DataError, match=r'none.csv: no row has a time'):
    list(sources.read(f'csv:{tmp_path}/none.csv,timestamp=date,freq=h'))
