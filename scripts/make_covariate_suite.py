r"""Writes the covariate suite's datasets (ttm_jax/suites/files/covariates.yaml)
in fev's dataset layout, from the public files under ../shared/data/extra.

  .venv/bin/python scripts/make_covariate_suite.py \
      --source ../shared/data/extra --out "$TTM_DATA_DIR/covariates"

writes `<out>/<dataset_config>/train.parquet` for each dataset: one row per
series with `id`, `timestamp` and one sequence column per target and
dynamic covariate, and scalar static columns, as fev's Hugging Face
datasets are laid out. fev reads them with `FEV_DATASETS_PREFIX=<out>`
(`fev.Task(dataset_path=..., dataset_config=...)` loads
`<out>/<dataset_config>/*.parquet`); the benchmark runner's `--data_dir
<out>` finds `<out>/<dataset_config>/`. Never commit these files (the
sources' licences: CC BY 4.0 for the UCI sets, GPL-3 for tsibbledata's).

Deterministic: the same inputs give byte-identical files (no randomness,
rows sorted by time, fixed column order, parquet written without
pandas metadata). A source that its folder's SOURCE.txt lists with a
SHA-256 (vic_elec, beijing) is checked against it first. What is done to
each source, and nothing else:

  vic_elec_30T        australia_halfhourly/vic_elec_2012_2014.csv: Time
                      (UTC, as published) without its zone, Demand (MW),
                      Temperature (Melbourne, C), Holiday (0/1); its Date
                      column (a day serial) dropped. 52,608 half-hours.
  beijing_pm25_1H     beijing_air/PRSA_data_2010.1.1-2014.12.31.csv: the
                      hour from year/month/day/hour; pm2.5 (NA missing) as
                      pm25; DEWP, TEMP, PRES, Iws, Is, Ir as dewpoint,
                      temperature, pressure, wind_speed_cum,
                      snow_hours_cum, rain_hours_cum; cbwd (wind
                      direction, categorical) as wind_direction. 43,824
                      hours.
  metro_traffic_1H    metro_traffic/metro_interstate_traffic_hourly.csv
                      from 2015-11-01 00:00 (after the last gap longer than
                      3 days) to 2018-09-30 23:00 on the hourly grid: an
                      hour given twice (several weather labels) keeps its
                      first row; a missing hour has no traffic_volume
                      (NaN) and the weather of the last hour before it
                      (temp, rain_1h, snow_1h, clouds_all, weather_main);
                      holiday is 1 on every hour of a date whose midnight
                      row names a holiday (the file names it on midnight
                      only), else 0.
  tetouan_power_10T   tetouan_power/tetouan_power_10min.csv without its
                      empty rows: the times (month/day/year) parsed; one
                      series per distribution zone (id zone_1..3, static
                      column zone), target power (kW) and the city's
                      Temperature, Humidity and Wind Speed as temperature,
                      humidity, wind_speed. 52,416 ten-minute steps.
"""

import argparse
import hashlib
import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# (dataset_config, source file under --source), in the YAML's order.
SOURCES = (
    ('vic_elec_30T', 'australia_halfhourly/vic_elec_2012_2014.csv'),
    ('beijing_pm25_1H', 'beijing_air/PRSA_data_2010.1.1-2014.12.31.csv'),
    ('metro_traffic_1H', 'metro_traffic/metro_interstate_traffic_hourly.csv'),
    ('tetouan_power_10T', 'tetouan_power/tetouan_power_10min.csv'),
)
METRO_START = '2015-11-01 00:00'


def _checked(source: str, relative: str) -> str:
  """The file's path, after its SHA-256 matches the one its folder's
  SOURCE.txt lists for it (by name)."""
  path = os.path.join(source, relative)
  with open(os.path.join(os.path.dirname(path), 'SOURCE.txt')) as f:
    listed = re.findall(r'^([0-9a-f]{64})\s+(\S.*?)\s*$', f.read(), re.M)
  name = os.path.basename(path)
  wanted = [digest for digest, listed_name in listed if listed_name == name]
  digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
  if wanted and digest != wanted[0]:
    raise SystemExit(f'{path}: SHA-256 {digest} is not the {wanted[0]} its '
                     'SOURCE.txt lists; the file changed.')
  return path


def _one_row(item: str, frame: pd.DataFrame, static=None) -> dict:
  """A series as fev's one-row layout: sequences of every column."""
  row = {'id': item, 'timestamp': frame.index.to_numpy()}
  for column in frame.columns:
    row[column] = frame[column].to_numpy()
  row.update(static or {})
  return row


def vic_elec(path: str):
  raw = pd.read_csv(path)
  time = pd.to_datetime(raw['Time'], utc=True).dt.tz_localize(None)
  frame = pd.DataFrame({'demand': raw['Demand'].to_numpy(np.float64),
                        'temperature': raw['Temperature'].to_numpy(
                            np.float64),
                        'holiday': raw['Holiday'].astype(np.float64)
                        .to_numpy()}, index=pd.DatetimeIndex(time))
  return [_one_row('vic', frame)]


def beijing_pm25(path: str):
  raw = pd.read_csv(path, na_values=['NA'])
  time = pd.to_datetime(raw[['year', 'month', 'day', 'hour']])
  frame = pd.DataFrame({
      'pm25': raw['pm2.5'].to_numpy(np.float64),
      'dewpoint': raw['DEWP'].to_numpy(np.float64),
      'temperature': raw['TEMP'].to_numpy(np.float64),
      'pressure': raw['PRES'].to_numpy(np.float64),
      'wind_direction': raw['cbwd'].astype(str).to_numpy(),
      'wind_speed_cum': raw['Iws'].to_numpy(np.float64),
      'snow_hours_cum': raw['Is'].to_numpy(np.float64),
      'rain_hours_cum': raw['Ir'].to_numpy(np.float64)},
                       index=pd.DatetimeIndex(time))
  return [_one_row('beijing', frame)]


def metro_traffic(path: str):
  raw = pd.read_csv(path)
  raw['time'] = pd.to_datetime(raw['date_time'])
  raw = raw[raw['time'] >= pd.Timestamp(METRO_START)]
  raw = raw.sort_values('time', kind='stable').drop_duplicates(
      'time', keep='first').set_index('time')
  grid = pd.date_range(METRO_START, raw.index[-1], freq='h')
  named = raw['holiday'].where(raw['holiday'] != 'None')
  holidays = set(named.dropna().index.normalize())
  frame = raw.reindex(grid)
  weather = ['temp', 'rain_1h', 'snow_1h', 'clouds_all', 'weather_main']
  frame[weather] = frame[weather].ffill()
  out = pd.DataFrame({
      'traffic_volume': frame['traffic_volume'].to_numpy(np.float64),
      'holiday': np.isin(grid.normalize(), list(holidays)).astype(
          np.float64),
      'temp': frame['temp'].to_numpy(np.float64),
      'rain_1h': frame['rain_1h'].to_numpy(np.float64),
      'snow_1h': frame['snow_1h'].to_numpy(np.float64),
      'clouds_all': frame['clouds_all'].to_numpy(np.float64),
      'weather_main': frame['weather_main'].astype(str).to_numpy()},
                     index=grid)
  return [_one_row('metro', out)]


def tetouan_power(path: str):
  raw = pd.read_csv(path).dropna(how='all')
  time = pd.to_datetime(raw['DateTime'], format='%m/%d/%y %H:%M')
  weather = {'temperature': raw['Temperature'].to_numpy(np.float64),
             'humidity': raw['Humidity'].to_numpy(np.float64),
             'wind_speed': raw['Wind Speed'].to_numpy(np.float64)}
  rows = []
  for zone in (1, 2, 3):
    frame = pd.DataFrame(
        {'power': raw[f'Zone {zone} Power Consumption'].to_numpy(
            np.float64), **weather}, index=pd.DatetimeIndex(time))
    rows.append(_one_row(f'zone_{zone}', frame, {'zone': f'zone_{zone}'}))
  return rows


CONVERTERS = {'vic_elec_30T': vic_elec, 'beijing_pm25_1H': beijing_pm25,
              'metro_traffic_1H': metro_traffic,
              'tetouan_power_10T': tetouan_power}


def write(rows, path: str) -> None:
  """One-row-per-series parquet, no pandas metadata (byte-stable)."""
  columns = {}
  for name in rows[0]:
    values = [row[name] for row in rows]
    if isinstance(values[0], np.ndarray):
      columns[name] = pa.array([list(v) for v in values])
    else:
      columns[name] = pa.array(values)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(pa.table(columns), path)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', required=True,
                      help='The folder holding the public files '
                      '(../shared/data/extra).')
  parser.add_argument('--out', required=True,
                      help='Where to write <dataset_config>/train.parquet '
                      '(e.g. $TTM_DATA_DIR/covariates).')
  parser.add_argument('--datasets', default='',
                      help='Comma-separated dataset configs (default all).')
  args = parser.parse_args(argv)
  wanted = [d for d in args.datasets.split(',') if d]
  unknown = sorted(set(wanted) - set(CONVERTERS))
  if unknown:
    raise SystemExit(f'--datasets {unknown}: expected some of '
                     f'{sorted(CONVERTERS)}.')
  for config, relative in SOURCES:
    if wanted and config not in wanted:
      continue
    rows = CONVERTERS[config](_checked(args.source, relative))
    target = os.path.join(args.out, config, 'train.parquet')
    write(rows, target)
    print(f'{config}: {len(rows)} series x {len(rows[0]["timestamp"])} '
          f'steps -> {target}', flush=True)


if __name__ == '__main__':
  main()
