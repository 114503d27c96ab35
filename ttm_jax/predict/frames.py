"""A user's DataFrame in, series out, and forecasts back into a DataFrame.

`to_series` checks and splits a long or wide frame into per-series arrays
(targets then controls), with the frequency inferred and every problem
named: a missing column (with suggestions), non-numeric or infinite values,
duplicated or irregular timestamps (the first offending rows), too little
history. NaN is missing (masked). `regularize=True` puts irregular series
on their frequency grid (duplicates: the first row; gaps: missing values).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ttm_jax import errors
from ttm_jax.data import sources

# Frequencies TTM serves (minutely to monthly).
SUPPORTED = ('min', 'h', 'D', 'W', 'M', 'MS', 'ME', 'B', 'Q', 'QS', 'QE')


@dataclasses.dataclass
class Series:
  """One series of the user's frame.

  Attributes:
    key: the id values (empty for a wide frame).
    timestamps: [t] datetime64.
    values: [t, c] float64, targets then controls (NaN missing).
    categoricals: static categorical values (raw), or empty.
  """
  key: tuple
  timestamps: np.ndarray
  values: np.ndarray
  categoricals: tuple = ()


@dataclasses.dataclass
class Frame:
  """The checked frame: series, column roles, frequency."""
  series: List[Series]
  id_columns: List[str]
  timestamp_column: str
  target_columns: List[str]
  control_columns: List[str]
  static_categorical_columns: List[str]
  freq: str

  @property
  def num_targets(self) -> int:
    return len(self.target_columns)


def _missing(name: str, columns: Sequence[str], role: str):
  close = difflib.get_close_matches(str(name), [str(c) for c in columns], n=3)
  hint = f' Did you mean {close}?' if close else ''
  raise errors.DataError(f'The {role} column {name!r} is not in the data '
                         f'(columns: {list(columns)[:20]}).{hint}')


def _roles(frame, timestamp_column, id_columns, target_columns,
           control_columns, static_columns):
  columns = list(frame.columns)
  for name, role in ([(timestamp_column, 'timestamp')]
                     + [(c, 'id') for c in id_columns]
                     + [(c, 'target') for c in target_columns or ()]
                     + [(c, 'control') for c in control_columns]
                     + [(c, 'static categorical') for c in static_columns]):
    if name not in columns:
      _missing(name, columns, role)
  taken = {timestamp_column, *id_columns, *control_columns, *static_columns}
  if target_columns is None:
    target_columns = [c for c in columns if c not in taken]
  if not target_columns:
    raise errors.DataError('No target column: every column is the '
                           'timestamp, an id, a control or a categorical.')
  return list(target_columns)


def _check_times(times, rows, label: str, regularize: bool):
  """(times, order of rows) after checks; raises naming the first bad rows
  unless `regularize` (then duplicates keep their first row)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  order = np.arange(len(times))
  values = times.astype('datetime64[ns]').astype(np.int64)
  steps = np.diff(values)
  if (steps < 0).any():
    bad = int(np.flatnonzero(steps < 0)[0])
    raise errors.DataError(
        f'{label}timestamps are not increasing: row {rows[bad]} '
        f'({pd.Timestamp(times[bad])}) then row {rows[bad + 1]} '
        f'({pd.Timestamp(times[bad + 1])}); sort the data by time.')
  if (steps == 0).any():
    bad = np.flatnonzero(steps == 0)[:3]
    if not regularize:
      raise errors.DataError(
          f'{label}duplicated timestamps at rows {[rows[i + 1] for i in bad]} '
          f'({pd.Timestamp(times[bad[0]])}); remove them, or pass '
          'regularize=True (the first row of each time is kept).')
    keep = np.concatenate([[True], steps != 0])
    order = order[keep]
  return order


def infer_freq(times: np.ndarray, label: str, rows, regularize: bool) -> str:
  """The frequency of increasing timestamps; irregular ones raise naming
  the first row off the grid (unless `regularize`)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  index = pd.DatetimeIndex(times)
  if len(index) < 3:
    raise errors.DataError(f'{label}has {len(index)} rows: too few to infer '
                           'its frequency (give freq=...).')
  freq = pd.infer_freq(index)
  if freq is None:
    steps = np.diff(index.values.astype('datetime64[ns]').astype(np.int64))
    unique, counts = np.unique(steps, return_counts=True)
    step = pd.Timedelta(int(unique[counts.argmax()]), unit='ns')
    bad = int(np.flatnonzero(steps != step.value)[0])
    freq = pd.tseries.frequencies.to_offset(step).freqstr
    if not regularize:
      raise errors.DataError(
          f'{label}timestamps are irregular: the usual step is {freq}, but '
          f'rows {rows[bad]} and {rows[bad + 1]} are '
          f'{pd.Timedelta(int(steps[bad]), unit="ns")} apart '
          f'({index[bad]} -> {index[bad + 1]}). Pass regularize=True to put '
          'them on the grid (gaps become missing values).')
  return freq


def _regular_grid(times: np.ndarray, values: np.ndarray, freq: str):
  import pandas as pd  # pylint: disable=g-import-not-at-top
  frame = pd.DataFrame(values, index=pd.DatetimeIndex(times))
  grid = frame.asfreq(freq)
  return grid.index.to_numpy(), grid.to_numpy(np.float64)


def to_series(df, timestamp_column: str, id_columns: Sequence[str] = (),
              target_columns: Optional[Sequence[str]] = None,
              control_columns: Sequence[str] = (),
              static_categorical_columns: Sequence[str] = (),
              freq: Optional[str] = None, regularize: bool = False) -> Frame:
  """The checked series of a long (id columns) or wide frame."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not isinstance(df, pd.DataFrame):
    raise errors.DataError(f'Expected a pandas DataFrame, got '
                           f'{type(df).__name__}.')
  if not len(df):
    raise errors.DataError('The data has no rows.')
  id_columns, control_columns = list(id_columns), list(control_columns)
  static = list(static_categorical_columns)
  targets = _roles(df, timestamp_column, id_columns, target_columns,
                   control_columns, static)
  try:
    times = pd.to_datetime(df[timestamp_column]).to_numpy()
  except (ValueError, TypeError) as e:
    raise errors.DataError(f'Column {timestamp_column!r} is not a timestamp '
                           f'({str(e).splitlines()[0]}).') from None
  values = sources.numeric(df[targets + control_columns],
                           rows=np.arange(len(df)) + 1)
  groups = ([((), np.arange(len(df)))] if not id_columns else
            [(k if isinstance(k, tuple) else (k,), np.asarray(v))
             for k, v in df.groupby(id_columns, sort=True).indices.items()])
  series, freqs = [], set()
  for key, rows in groups:
    label = f'Series {dict(zip(id_columns, key))}: ' if key else ''
    order = rows[np.argsort(times[rows], kind='stable')] if id_columns else rows
    keep = _check_times(times[order], order + 1, label, regularize)
    order = order[keep]
    found = freq or infer_freq(times[order], label, order + 1, regularize)
    stamps, block = times[order], values[order]
    if regularize:
      stamps, block = _regular_grid(stamps, block, found)
    freqs.add(found)
    cats = tuple(df[static].iloc[order[0]]) if static else ()
    series.append(Series(key, stamps, block, cats))
  if len(freqs) > 1:
    raise errors.DataError(f'The series have different frequencies '
                           f'{sorted(freqs)}; forecast them separately or '
                           'give freq=...')
  return Frame(series, id_columns, timestamp_column, targets,
               control_columns, static, freqs.pop())


def future_timestamps(last, freq: str, horizon: int) -> np.ndarray:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  return pd.date_range(pd.Timestamp(last), periods=horizon + 1,
                       freq=freq)[1:].to_numpy()


def to_frame(frame: Frame, forecasts: Sequence[np.ndarray],
             quantiles: Optional[Sequence[float]] = None,
             bands: Optional[Sequence[Dict[float, np.ndarray]]] = None):
  """The forecast DataFrame: id columns, timestamp, one column per target
  and `<target>_q<level>` columns."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  parts = []
  for k, (item, forecast) in enumerate(zip(frame.series, forecasts)):
    horizon = len(forecast)
    data: Dict[str, Any] = {c: [v] * horizon
                            for c, v in zip(frame.id_columns, item.key)}
    data[frame.timestamp_column] = future_timestamps(
        item.timestamps[-1], frame.freq, horizon)
    for j, name in enumerate(frame.target_columns):
      data[name] = forecast[:, j]
      for level in quantiles or ():
        data[f'{name}_q{level:g}'] = bands[k][level][:, j]
    parts.append(pd.DataFrame(data))
  return pd.concat(parts, ignore_index=True)
