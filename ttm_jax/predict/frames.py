"""A user's DataFrame in, series out, and forecasts back into a DataFrame.

`to_series` checks and splits a long or wide frame into per-series arrays
(targets then controls; the dynamic covariates, known then past-only, in
an array of their own), with the frequency inferred and every problem
named: a missing column (with suggestions), non-numeric or infinite values,
duplicated or irregular timestamps (the first offending rows), too little
history. NaN is missing (masked). `regularize=True` puts irregular series
on their frequency grid (duplicates: the first row; gaps: missing values).

Covariates (`past_covariates`, `known_covariates`, `static_covariates`)
are numeric, or categorical when named in `categorical_covariates` or
when their column is neither numbers nor booleans; a categorical's values
are coded in the order of `Frame.categories` (its values sorted as text;
a value first seen in `future_df` is appended). `read_future` reads the
future values of the controls and known covariates from `future_df`,
refusing a frame that misses a column, a series or a forecast step, or
holds NaN there, or series the data does not have, naming the column and
the first bad rows.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
    covariates: [t, d] float64, the known then the past-only covariates
      (NaN missing; a categorical's codes), or None when there are none.
    static_covariates: the static covariates' values (raw), or empty.
  """
  key: tuple
  timestamps: np.ndarray
  values: np.ndarray
  categoricals: tuple = ()
  covariates: Optional[np.ndarray] = None
  static_covariates: tuple = ()


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
  known_covariates: List[str] = dataclasses.field(default_factory=list)
  past_covariates: List[str] = dataclasses.field(default_factory=list)
  static_covariates: List[str] = dataclasses.field(default_factory=list)
  categorical_covariates: List[str] = dataclasses.field(
      default_factory=list)
  # Each categorical covariate's values, in the order of their codes.
  categories: Dict[str, List[Any]] = dataclasses.field(default_factory=dict)

  @property
  def num_targets(self) -> int:
    return len(self.target_columns)

  @property
  def dynamic_covariates(self) -> List[str]:
    """The columns of `Series.covariates`: known, then past-only."""
    return list(self.known_covariates) + list(self.past_covariates)

  @property
  def has_covariates(self) -> bool:
    return bool(self.dynamic_covariates or self.static_covariates)


def _missing(name: str, columns: Sequence[str], role: str):
  close = difflib.get_close_matches(str(name), [str(c) for c in columns], n=3)
  hint = f' Did you mean {close}?' if close else ''
  raise errors.DataError(f'The {role} column {name!r} is not in the data '
                         f'(columns: {list(columns)[:20]}).{hint}')


def _roles(frame, timestamp_column, id_columns, target_columns,
           control_columns, static_columns, covariates=()):
  """The target columns, after refusing a column given twice, a column in
  two roles, and a column that is not in the data. `covariates`: (name,
  role) pairs."""
  named = ([(timestamp_column, 'timestamp')]
           + [(c, 'id') for c in id_columns]
           + [(c, 'target') for c in target_columns or ()]
           + [(c, 'control') for c in control_columns]
           + [(c, 'static categorical') for c in static_columns]
           + list(covariates))
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
                           'timestamp, an id, a control, a categorical or '
                           'a covariate.')
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


def is_categorical(column) -> bool:
  """Whether a covariate column holds categories: neither numbers nor
  booleans."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  return not (pd.api.types.is_numeric_dtype(column)
              or pd.api.types.is_bool_dtype(column))


def _categories(column) -> List[Any]:
  """A categorical column's values (no missing), sorted as text."""
  values = {_plain(v) for v in column.dropna().unique()}
  return sorted(values, key=lambda v: (str(v), type(v).__name__))


def _codes(column, categories: List[Any]) -> np.ndarray:
  """[rows] the codes of a categorical column's values (their positions in
  `categories`, a new value appended), NaN where missing."""
  index = {v: k for k, v in enumerate(categories)}
  missing = column.isna().to_numpy()
  out = np.full(len(column), np.nan)
  for row, value in enumerate(column.to_numpy(object)):
    if missing[row]:
      continue
    value = _plain(value)
    if value not in index:
      index[value] = len(categories)
      categories.append(value)
    out[row] = index[value]
  return out


def _dynamic(df, names: Sequence[str], categorical, categories, where='',
             rows=None) -> np.ndarray:
  """[rows, names] float64 of dynamic covariate columns: numbers (checked
  as `sources.numeric` checks them), or a categorical's codes."""
  out = np.empty((len(df), len(names)))
  numeric = [n for n in names if n not in categorical]
  if numeric:
    out[:, [list(names).index(n) for n in numeric]] = sources.numeric(
        df[numeric], where, rows)
  for k, name in enumerate(names):
    if name in categorical:
      out[:, k] = _codes(df[name], categories[name])
  return out


def _static_values(df, names: Sequence[str], order, label: str) -> tuple:
  """A series' static covariates: one value per column, or a DataError
  naming the column and the first two rows that differ (or the missing
  row)."""
  out = []
  for name in names:
    column = df[name].iloc[order]
    missing = np.flatnonzero(column.isna().to_numpy())
    where = label.rstrip(': ') or 'the series'
    if len(missing):
      raise errors.DataError(
          f'Static covariate {name!r} is missing for {where[0].lower()}'
          f'{where[1:]} at {_rows(order[missing] + 1)}: a static covariate '
          'needs its one value on every row of the series.')
    values = column.to_numpy(object)
    differ = np.flatnonzero(values != values[0])
    if len(differ):
      raise errors.DataError(
          f'Static covariate {name!r} changes within {where[0].lower()}'
          f'{where[1:]}: {checks.show(_plain(values[0]))} at row '
          f'{int(order[0]) + 1}, {checks.show(_plain(values[differ[0]]))} '
          f'at row {int(order[differ[0]]) + 1}; a static covariate has one '
          'value per series (a changing one is a dynamic covariate).')
    out.append(_plain(values[0]))
  return tuple(out)


def to_series(df, timestamp_column: str, id_columns: Sequence[str] = (),
              target_columns: Optional[Sequence[str]] = None,
              control_columns: Sequence[str] = (),
              static_categorical_columns: Sequence[str] = (),
              freq: Optional[str] = None, regularize: bool = False,
              past_covariates: Sequence[str] = (),
              known_covariates: Sequence[str] = (),
              static_covariates: Sequence[str] = (),
              categorical_covariates: Sequence[str] = ()) -> Frame:
  """The checked series of a long (id columns) or wide frame.

  A series too short to infer its frequency (under 3 rows) takes the
  others' (or `freq`). A given `freq` must agree with the timestamps.
  Covariates: see the module docstring; a static covariate must keep one
  value within each series.
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
  known, past = list(known_covariates), list(past_covariates)
  static_covariates = list(static_covariates)
  dynamic = known + past
  targets = _roles(df, timestamp_column, id_columns, target_columns,
                   control_columns, static,
                   [(c, 'known covariate') for c in known]
                   + [(c, 'past covariate') for c in past]
                   + [(c, 'static covariate') for c in static_covariates])
  stray = [c for c in categorical_covariates
           if c not in dynamic + static_covariates]
  if stray:
    raise errors.ConfigError(
        f'categorical_covariates {stray} are not covariates: name them in '
        'known_covariates, past_covariates or static_covariates too.')
  categorical = [c for c in dynamic + static_covariates
                 if c in categorical_covariates or is_categorical(df[c])]
  categories = {c: _categories(df[c]) for c in categorical if c in dynamic}
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
  covariates = (_dynamic(df, dynamic, categorical, categories,
                         rows=np.arange(len(df)) + 1) if dynamic else None)
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
    extra = None if covariates is None else covariates[order]
    if regularize:
      both = block if extra is None else np.concatenate([block, extra], 1)
      stamps, both = _regular_grid(stamps, both, common)
      block, extra = both[:, :block.shape[1]], (
          None if extra is None else both[:, block.shape[1]:])
    cats = tuple(df[static].iloc[order[0]]) if static else ()
    series.append(Series(key, stamps, block, cats, extra, _static_values(
        df, static_covariates, order, label)))
  return Frame(series, id_columns, timestamp_column, targets,
               control_columns, static, common, known, past,
               static_covariates, categorical, categories)


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


def check_covariates(frame: Frame, uses_controls: bool, model: str) -> None:
  """Covariates given to a model that has an exogenous mixer are refused,
  naming them: such a model reads its exogenous channels as
  `control_columns` (covariates are for a model without one, through
  in-context regression, or for `finetune=`, which trains one)."""
  named = (frame.known_covariates + frame.past_covariates
           + frame.static_covariates)
  if named and uses_controls:
    raise errors.ConfigError(
        f'covariates {named}: the model {model} has an exogenous mixer '
        '(or mixes channels), which reads its channels as control_columns '
        '(their future values in future_df). Give them as control_columns '
        'in its channel order, or use a model without an exogenous mixer '
        '(covariates enter by in-context regression, or train one with '
        'finetune=).')


@dataclasses.dataclass
class Futures:
  """Future values read from `future_df` at each series' forecast steps.

  Attributes:
    controls: [series, horizon, controls], or None without controls.
    known: [series, horizon, known covariates] (a categorical's codes), or
      None without known covariates.
  """
  controls: Optional[np.ndarray] = None
  known: Optional[np.ndarray] = None


def _check_ids(frame: Frame, future_df) -> None:
  """Refuses future_df rows whose ids are no series of the data, naming
  the ids and the first such rows."""
  if not frame.id_columns:
    return
  keys = {s.key for s in frame.series}
  found = [tuple(_plain(v) for v in row) for row in future_df[
      frame.id_columns].itertuples(index=False, name=None)]
  stray = [r for r, key in enumerate(found) if key not in keys]
  if stray:
    key = found[stray[0]]
    shown = [series_label(frame.id_columns, s.key) for s in frame.series[:3]]
    raise errors.DataError(
        f'future_df has {series_label(frame.id_columns, key)} at '
        f'{_rows(np.asarray(stray) + 1)}, which is not a series of the data '
        f'({len(frame.series)} series, e.g. {", ".join(shown)}): give '
        'future rows for the data\'s series only, with the same ids (and '
        'id types).')


def read_future(frame: Frame, future_df, horizon: int) -> Futures:
  """The controls' and known covariates' values in `future_df` (id
  columns, timestamp, those columns) at the `horizon` timestamps after
  each series' end. Rows at other times are ignored.

  Every problem is one error naming the column, series and first rows:
  `future_df` with nothing to read in it, or missing when needed; a
  missing column; a non-numeric or infinite value; ids of no series of
  the data; a series without rows, or a timestamp given twice for one; a
  forecast step without a row (the frame does not cover the horizon); a
  missing (NaN) value at a forecast step.
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  controls, known = list(frame.control_columns), list(frame.known_covariates)
  if not controls and not known:
    if future_df is not None:
      raise errors.ConfigError(
          'future_df is given but there are no control_columns or '
          'known_covariates: it would be ignored. Name the controls '
          '(control_columns) or the known covariates (known_covariates), or '
          'leave future_df out.')
    return Futures()
  if future_df is None:
    needed = ([f'the controls {controls}'] if controls else []) + (
        [f'the known covariates {known}'] if known else [])
    raise errors.DataError(
        f'Give the future values of {" and ".join(needed)} for the '
        f'{horizon} forecast steps in future_df (timestamp, id and those '
        'columns)' + ('; this model mixes exogenous channels.' if controls
                      else '.'))
  if not isinstance(future_df, pd.DataFrame):
    raise errors.DataError(f'future_df must be a pandas DataFrame, got '
                           f'{type(future_df).__name__}.')
  roles = ([(frame.timestamp_column, 'the timestamp')]
           + [(c, 'an id') for c in frame.id_columns]
           + [(c, 'a control') for c in controls]
           + [(c, 'a known covariate') for c in known])
  for name, role in roles:
    if name not in future_df.columns:
      raise errors.DataError(f'future_df has no column {name!r} ({role} '
                             'column).')
  rows = np.arange(len(future_df)) + 1  # 1-based, as the errors name them.
  times = parse_times(future_df[frame.timestamp_column],
                      frame.timestamp_column, 'future_df: ')
  columns = controls + known
  values = np.concatenate([
      sources.numeric(future_df[controls], 'future_df', rows) if controls
      else np.zeros((len(future_df), 0)),
      _dynamic(future_df, known, frame.categorical_covariates,
               frame.categories, 'future_df', rows) if known
      else np.zeros((len(future_df), 0))], axis=1)
  _check_ids(frame, future_df)
  out = []
  for series in frame.series:
    label = series_label(frame.id_columns, series.key)
    mine = np.ones(len(future_df), bool)
    for column, value in zip(frame.id_columns, series.key):
      mine &= (future_df[column] == value).to_numpy()
    at = np.flatnonzero(mine)
    if not len(at):
      raise errors.DataError(
          f'future_df has no rows for {label}: give its {horizon} forecast '
          f'steps ({", ".join(columns)}).')
    repeated = pd.Index(times[at]).duplicated()
    if repeated.any():
      time = times[at][int(np.argmax(repeated))]
      twice = at[times[at] == time][:2] + 1
      raise errors.DataError(
          f'future_df has {label} at {pd.Timestamp(time)} twice (rows '
          f'{int(twice[0])} and {int(twice[1])}): give each forecast step '
          'one row.')
    wanted = future_timestamps(series.timestamps[-1], frame.freq, horizon)
    index = pd.Series(np.arange(len(at)), index=pd.DatetimeIndex(times[at]))
    where = index.reindex(pd.DatetimeIndex(wanted)).to_numpy()
    absent = np.isnan(where)
    if absent.any():
      last = at[np.argmax(times[at])]
      what = ' and '.join((['control'] if controls else [])
                          + (['known covariate'] if known else []))
      raise errors.DataError(
          f'future_df lacks {what} values for {label} at '
          f'{pd.Timestamp(wanted[np.argmax(absent)])} (and '
          f'{int(absent.sum()) - 1} more of the {horizon} forecast steps): '
          f'it does not cover the horizon; its rows for this series end at '
          f'row {int(last) + 1} ({pd.Timestamp(times[last])}).')
    picked = at[where.astype(int)]
    block = values[picked]
    for k, name in enumerate(columns):
      empty = np.flatnonzero(np.isnan(block[:, k]))
      if len(empty):
        role = 'control' if k < len(controls) else 'known covariate'
        raise errors.DataError(
            f'future_df: {role} {name!r} is missing (NaN) for {label} at '
            f'{_rows(picked[empty] + 1)} ({pd.Timestamp(wanted[empty[0]])}'
            f'{" ..." if len(empty) > 1 else ""}): every forecast step '
            'needs its value.')
    out.append(block)
  out = np.stack(out)
  return Futures(out[..., :len(controls)] if controls else None,
                 out[..., len(controls):] if known else None)


@dataclasses.dataclass(frozen=True)
class Channels:
  """The covariates as channels of a model with an exogenous mixer (a
  fine-tune's): the known covariates' channels, then the past-only ones',
  a numeric covariate one channel, a categorical one a 0/1 channel per
  value its history holds (a value first seen later is all zero; a missing
  one is missing).

  Attributes:
    sources: per channel, (the covariate's column in `Series.covariates`,
      the category code it marks, or None for a number).
    names: per channel, the covariate or 'covariate=value'.
    num_known: how many channels (the first) are known covariates'.
    static: the static covariates that become static categoricals (the
      categorical ones; a numeric static covariate is no channel).
  """
  sources: Tuple[Tuple[int, Optional[int]], ...]
  names: Tuple[str, ...]
  num_known: int
  static: Tuple[str, ...]


def covariate_channels(frame: Frame) -> Channels:
  """The channels of `frame`'s covariates, from the values of its
  history (call it before `future_df` adds categories)."""
  sources, names, num_known = [], [], 0
  for column, name in enumerate(frame.dynamic_covariates):
    if name in frame.categorical_covariates:
      seen = sorted({int(v) for s in frame.series if s.covariates is not None
                     for v in s.covariates[:, column] if not np.isnan(v)})
      sources += [(column, code) for code in seen]
      names += [f'{name}={frame.categories[name][code]}' for code in seen]
    else:
      sources.append((column, None))
      names.append(name)
    if name in frame.known_covariates:
      num_known = len(sources)
  static = tuple(c for c in frame.static_covariates
                 if c in frame.categorical_covariates)
  return Channels(tuple(sources), tuple(names), num_known, static)


def with_channels(frame: Frame, channels: Channels) -> Frame:
  """`frame` with its covariates as control channels (after the targets,
  in `channels`' order) and its categorical static covariates as static
  categorical columns, for a model whose exogenous mixer reads them."""
  series = []
  for item in frame.series:
    found = item.covariates
    block = np.empty((len(item.values), len(channels.sources)))
    for k, (column, code) in enumerate(channels.sources):
      values = found[:, column]
      block[:, k] = values if code is None else np.where(
          np.isnan(values), np.nan, (values == code).astype(np.float64))
    picked = tuple(v for c, v in zip(frame.static_covariates,
                                     item.static_covariates)
                   if c in channels.static)
    series.append(dataclasses.replace(
        item, values=np.concatenate([item.values[:, :frame.num_targets],
                                     block], axis=1),
        categoricals=tuple(item.categoricals) + picked, covariates=None,
        static_covariates=()))
  return dataclasses.replace(
      frame, series=series, control_columns=list(channels.names),
      static_categorical_columns=(list(frame.static_categorical_columns)
                                  + list(channels.static)),
      known_covariates=[], past_covariates=[], static_covariates=[],
      categorical_covariates=[], categories={})


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
