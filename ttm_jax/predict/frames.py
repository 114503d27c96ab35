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

from ttm_jax import checks
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
  """The target columns, after refusing a column given twice, a column in
  two roles, and a column that is not in the data."""
  named = ([(timestamp_column, 'timestamp')]
           + [(c, 'id') for c in id_columns]
           + [(c, 'target') for c in target_columns or ()]
           + [(c, 'control') for c in control_columns]
           + [(c, 'static categorical') for c in static_columns])
  role_of = {}
  for name, role in named:
    if name in role_of:
      raise errors.ConfigError(
          f'Column {name!r} is given twice'
          + (f' as {_a(role)} column' if role_of[name] == role else
             f': as {_a(role_of[name])} and as {_a(role)} column')
          + '; give each column one role.')
    role_of[name] = role
  columns = list(frame.columns)
  for name, role in named:
    if name not in columns:
      _missing(name, columns, role)
  if target_columns is None:
    target_columns = [c for c in columns if c not in role_of]
  if not target_columns:
    raise errors.DataError('No target column: every column is the '
                           'timestamp, an id, a control or a categorical.')
  return list(target_columns)


def _a(noun: str) -> str:
  return ('an ' if noun[0] in 'aeiou' else 'a ') + noun


def _plain(value):
  """A NumPy scalar as plain Python (for keys shown in messages)."""
  return value.item() if isinstance(value, np.generic) else value


def _rows(rows, limit: int = 5) -> str:
  """Row numbers for a message: 'rows [3, 8] (2 in all)', plain ints."""
  shown = [int(r) for r in rows[:limit]]
  if len(shown) == 1:
    return f'row {shown[0]}'
  more = f' ({len(rows)} in all)' if len(rows) > limit else ''
  return f'rows {shown}{more}'


def parse_times(column, name: str, where: str = '') -> np.ndarray:
  """Timestamps [t] datetime64 of a column, refusing numbers (their unit
  would be a guess), empty cells and unparsable values, each by its first
  row (1-based)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  label = f'{where}column' if where else 'Column'
  if (pd.api.types.is_numeric_dtype(column)
      or pd.api.types.is_bool_dtype(column)):
    seen = np.flatnonzero(column.notna().to_numpy())
    first = (f'row {int(seen[0]) + 1}: {checks.show(column.iloc[seen[0]])}'
             if len(seen) else 'all empty')
    raise errors.DataError(
        f'{label} {name!r} holds numbers, not timestamps ({first}): their '
        'unit would be a guess. Convert them first, e.g. '
        f"df[{name!r}] = pd.to_datetime(df[{name!r}], unit='s'), or write "
        'them as dates.')
  empty = np.flatnonzero(column.isna().to_numpy())
  if len(empty):
    raise errors.DataError(f'{label} {name!r} has no timestamp at '
                           f'{_rows(empty + 1)}; every row needs its time.')
  try:
    return pd.to_datetime(column).to_numpy()
  except (ValueError, TypeError, OverflowError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
  coerced = pd.to_datetime(column, errors='coerce')
  bad = np.flatnonzero(coerced.isna().to_numpy())
  where_bad = (f'{checks.show(column.iloc[bad[0]])} at row {int(bad[0]) + 1}'
               if len(bad) else 'a value')
  # pandas' message ends in a truncated 'You might want to try:' and a
  # position; the value and row say more.
  for cut in ('. You might want to try', ', at position', ' at position'):
    reason = reason.split(cut)[0]
  raise errors.DataError(
      f'{label} {name!r} has {where_bad} that is not a timestamp '
      f'({reason.rstrip(". ")}); write times as e.g. 2024-01-31 13:00.')


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
        f'{label}timestamps are not increasing: row {int(rows[bad])} '
        f'({pd.Timestamp(times[bad])}) then row {int(rows[bad + 1])} '
        f'({pd.Timestamp(times[bad + 1])}); sort the data by time.')
  if (steps == 0).any():
    bad = np.flatnonzero(steps == 0)[:3]
    if not regularize:
      raise errors.DataError(
          f'{label}duplicated timestamps at '
          f'{_rows([rows[i + 1] for i in bad])} '
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
          f'rows {int(rows[bad])} and {int(rows[bad + 1])} are '
          f'{pd.Timedelta(int(steps[bad]), unit="ns")} apart '
          f'({index[bad]} -> {index[bad + 1]}). Pass regularize=True to put '
          'them on the grid (gaps become missing values).')
  return freq


def _regular_grid(times: np.ndarray, values: np.ndarray, freq: str):
  import pandas as pd  # pylint: disable=g-import-not-at-top
  frame = pd.DataFrame(values, index=pd.DatetimeIndex(times))
  grid = frame.asfreq(freq)
  return grid.index.to_numpy(), grid.to_numpy(np.float64)


def check_freq(freq) -> str:
  """`freq` as pandas reads it; an unknown alias is refused naming it."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not isinstance(freq, str) or not freq:
    raise errors.ConfigError(f'freq={checks.show(freq)} must be a pandas '
                             "frequency string such as 'h', '15min' or 'D'.")
  try:
    pd.tseries.frequencies.to_offset(freq)
  except ValueError:
    raise errors.ConfigError(
        f"freq={freq!r} is not a pandas frequency; use one such as 'h', "
        "'15min', 'D', 'W' or 'MS'.") from None
  return freq


def _check_on_grid(times: np.ndarray, freq: str, label: str, rows,
                   regularize: bool, inferred_from: str = '') -> None:
  """Refuses a `freq` that the timestamps contradict: they must be the
  grid of `freq` from the first time (with `regularize`, on it, gaps
  allowed). `inferred_from`: the series `freq` was inferred from (for a
  series too short to infer its own); empty when `freq` was given."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  grid = pd.date_range(pd.Timestamp(times[0]), pd.Timestamp(times[-1]),
                       freq=freq).to_numpy()
  if not regularize and len(grid) == len(times) and (grid == times).all():
    return
  on_grid = np.isin(times, grid)
  if regularize and on_grid.all():
    return
  if not on_grid.all():
    bad = max(int(np.argmin(on_grid)), 1)
  else:  # Too few grid points: a step longer than freq.
    bad = int(np.argmax(times[1:] != grid[1:len(times)])) + 1
  actual = ''
  if len(times) >= 3:
    inferred = pd.infer_freq(pd.DatetimeIndex(times))
    actual = f' (the data\'s frequency is {inferred})' if inferred else ''
  gap = (f'rows {int(rows[bad - 1])} and {int(rows[bad])} are '
         f'{pd.Timedelta(times[bad] - times[bad - 1])} apart '
         f'({pd.Timestamp(times[bad - 1])} -> {pd.Timestamp(times[bad])})')
  if inferred_from:
    raise errors.DataError(
        f'{label.rstrip(": ") or "The series"} has {len(times)} rows, too '
        f'few to infer its frequency, and they are not on the frequency '
        f'{freq!r} inferred from {inferred_from}: {gap}. Give freq=... if '
        f'{freq!r} is wrong for the data, or fix the times of this '
        'series.')
  raise errors.DataError(
      f'{label}freq={freq!r} contradicts the timestamps{actual}: {gap}. '
      'Give the data\'s frequency, or none to infer it.')


def series_label(id_columns: Sequence[str], key: tuple) -> str:
  """'series {'id': 'a'}' for a long frame, 'the series' for a wide one."""
  return f'series {dict(zip(id_columns, key))}' if key else 'the series'


def to_series(df, timestamp_column: str, id_columns: Sequence[str] = (),
              target_columns: Optional[Sequence[str]] = None,
              control_columns: Sequence[str] = (),
              static_categorical_columns: Sequence[str] = (),
              freq: Optional[str] = None, regularize: bool = False) -> Frame:
  """The checked series of a long (id columns) or wide frame.

  A series too short to infer its frequency (under 3 rows) takes the
  others' (or `freq`). A given `freq` must agree with the timestamps.
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not isinstance(df, pd.DataFrame):
    raise errors.DataError(f'Expected a pandas DataFrame, got '
                           f'{type(df).__name__}.')
  if not len(df):
    raise errors.DataError('The data has no rows.')
  if freq is not None:
    check_freq(freq)
  id_columns, control_columns = list(id_columns), list(control_columns)
  static = list(static_categorical_columns)
  targets = _roles(df, timestamp_column, id_columns, target_columns,
                   control_columns, static)
  for column in id_columns:
    empty = np.flatnonzero(df[column].isna().to_numpy())
    if len(empty):
      raise errors.DataError(
          f'Id column {column!r} is empty (missing) at {_rows(empty + 1)}: '
          'every row needs its series id (rows without one would be '
          'dropped).')
  times = parse_times(df[timestamp_column], timestamp_column)
  values = sources.numeric(df[targets + control_columns],
                           rows=np.arange(len(df)) + 1)
  groups = ([((), np.arange(len(df)))] if not id_columns else
            [(tuple(_plain(v) for v in (k if isinstance(k, tuple) else (k,))),
              np.asarray(v))
             for k, v in df.groupby(id_columns, sort=True).indices.items()])
  checked = []
  for key, rows in groups:
    label = f'Series {dict(zip(id_columns, key))}: ' if key else ''
    order = rows[np.argsort(times[rows], kind='stable')] if id_columns else rows
    keep = _check_times(times[order], order + 1, label, regularize)
    checked.append((key, label, order[keep]))
  found = {}  # Inferred frequencies, by series.
  if freq is None:
    for key, label, order in checked:
      if len(order) >= 3 or len(checked) == 1:
        found[key] = infer_freq(times[order], label, order + 1, regularize)
    if len(set(found.values())) > 1:
      raise errors.DataError(f'The series have different frequencies '
                             f'{sorted(set(found.values()))}; forecast them '
                             'separately or give freq=...')
    if not found:
      raise errors.DataError(
          'Every series has fewer than 3 rows: too few to infer the '
          'frequency (give freq=...).')
  common = freq or next(iter(found.values()))
  origin = '' if freq else series_label(id_columns, next(iter(found)))
  series = []
  for key, label, order in checked:
    stamps, block = times[order], values[order]
    if key not in found and len(order) > 1:
      _check_on_grid(stamps, common, label, order + 1, regularize, origin)
    if regularize:
      stamps, block = _regular_grid(stamps, block, common)
    cats = tuple(df[static].iloc[order[0]]) if static else ()
    series.append(Series(key, stamps, block, cats))
  return Frame(series, id_columns, timestamp_column, targets,
               control_columns, static, common)


def future_timestamps(last, freq: str, horizon: int) -> np.ndarray:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  return pd.date_range(pd.Timestamp(last), periods=horizon + 1,
                       freq=freq)[1:].to_numpy()


def check_controls(frame: Frame, uses_controls: bool, model: str) -> None:
  """Control columns given to a model that reads no controls (a
  channel-independent model without exogenous channels) are refused,
  naming them: the model would ignore them."""
  if frame.control_columns and not uses_controls:
    raise errors.ConfigError(
        f'control_columns {frame.control_columns}: the model {model} reads '
        'no controls (it forecasts each target from its own history, with '
        'no exogenous channels), so they would be ignored. Leave them out, '
        'or use a model that mixes channels (decoder_mode="mix_channel" '
        'with exogenous_channel_indices).')


def future_controls(frame: Frame, future_df, horizon: int
                    ) -> Optional[np.ndarray]:
  """[series, horizon, controls] from `future_df` (id columns, timestamp,
  control columns) at the timestamps after each series' end; None without
  control columns.

  Every problem is one DataError naming the series, column, row or
  timestamp: `future_df` without control columns to read, a missing
  column, a non-numeric or infinite control value (its column and row), a
  timestamp given twice for a series, a forecast step without values.
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not frame.control_columns:
    if future_df is not None:
      raise errors.ConfigError(
          'future_df is given but there are no control_columns: it would '
          'be ignored. Name the controls (control_columns) or leave '
          'future_df out.')
    return None
  if future_df is None:
    raise errors.DataError(
        'This model mixes exogenous channels: give the future values of the '
        f'controls {frame.control_columns} for the {horizon} forecast steps '
        'in future_df (timestamp, id and control columns).')
  if not isinstance(future_df, pd.DataFrame):
    raise errors.DataError(f'future_df must be a pandas DataFrame, got '
                           f'{type(future_df).__name__}.')
  for name in [frame.timestamp_column] + frame.id_columns + list(
      frame.control_columns):
    if name not in future_df.columns:
      raise errors.DataError(f'future_df has no column {name!r}.')
  rows = np.arange(len(future_df)) + 1  # 1-based, as the errors name them.
  times = parse_times(future_df[frame.timestamp_column],
                      frame.timestamp_column, 'future_df: ')
  values = sources.numeric(future_df[list(frame.control_columns)],
                           'future_df', rows)
  out = []
  for series in frame.series:
    mine = np.ones(len(future_df), bool)
    for column, value in zip(frame.id_columns, series.key):
      mine &= (future_df[column] == value).to_numpy()
    at = np.flatnonzero(mine)
    repeated = pd.Index(times[at]).duplicated()
    if repeated.any():
      time = times[at][int(np.argmax(repeated))]
      twice = at[times[at] == time][:2] + 1
      raise errors.DataError(
          f'future_df has {series_label(frame.id_columns, series.key)} at '
          f'{pd.Timestamp(time)} twice (rows {int(twice[0])} and '
          f'{int(twice[1])}): give each forecast step one row.')
    wanted = future_timestamps(series.timestamps[-1], frame.freq, horizon)
    block = pd.DataFrame(values[at], index=pd.DatetimeIndex(times[at]))
    block = block.reindex(pd.DatetimeIndex(wanted))
    missing = block.isna().any(axis=1).to_numpy()
    if missing.any():
      raise errors.DataError(
          f'future_df lacks control values for '
          f'{series_label(frame.id_columns, series.key)} '
          f'at {pd.Timestamp(wanted[np.argmax(missing)])} (and '
          f'{int(missing.sum()) - 1} more of the {horizon} forecast steps).')
    out.append(block.to_numpy(np.float64))
  return np.stack(out)


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
