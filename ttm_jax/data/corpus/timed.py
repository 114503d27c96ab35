"""Timed CSV sources: a CSV with a time column (or columns) read onto a
regular grid by the rules of `grid.py`, with a report of what was done.

  csv:PATH,timestamp=COL[+COL...][,id=COL[+COL...]][,value=COL[+COL...]]
      [,exclude=COL[+COL...]][,freq=F][,date_format=FMT|excel|unix]
      [,tz=ZONE][,duplicates=mean|first|last][,max_gap=N][,min_length=N]

Wide (no id=): each value column is a series. Long (id=): the rows of each
id (one column, or several joined by '+') make a series per value column,
in any row order. Value columns: those value= names, else every column but
the time, id and excluded ones; then a column without one numeric cell
(text, True/False) is skipped and reported, and one that mixes numbers
and text is an error naming its first text cell.

Times: one column parsed by pandas (its format inferred from the first
time, or date_format=: a strftime format such as %m/%d/%y %H:%M for US
dates, 'excel' for spreadsheet day serials counted from 1899-12-30, 'unix'
for seconds since 1970), or several columns named year, month, day[, hour,
minute, second] (timestamp=year+month+day+hour). A row with no time (an
empty line such as ',,,,,,') is dropped and counted; a time that does not
parse is an error naming its row.

The times and ids are read once, the values a few columns at a time, so
memory is bounded by ~4M values whatever the file's width.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax.data.corpus import grid

EXCEL_EPOCH = '1899-12-30'
# A time that carries its UTC offset ('...12:00:00+10:00', '...Z').
_OFFSET = re.compile(r'\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d:?\d\d)$')
COUNTS = ('rows', 'blank_lines', 'empty_rows', 'rows_without_time',
          'unsorted', 'duplicate_times', 'rows_merged', 'off_grid',
          'missing_steps', 'series_in', 'series_all_missing', 'pieces',
          'gaps_split', 'pieces_dropped', 'values_dropped', 'values_filled',
          'values_trimmed')
# The first bytes of files that are not CSV text, and what they are.
_NOT_CSV = ((b'PAR1', 'a Parquet file', 'pandas.read_parquet(path)'),
            (b'ARROW1', 'an Arrow file', 'pandas.read_feather(path)'),
            (b'\xff\xff\xff\xff', 'an Arrow stream',
             'pyarrow.ipc.open_stream(path).read_pandas()'))


def header_of(path: str, rows: bool = True) -> List[str]:
  """The column names of a CSV file; DataError naming the file when it is
  empty, has a header but (with `rows`) no row, or is not CSV text (a
  Parquet or Arrow file, binary data)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise errors.DataError(f'Source csv:{path}: no such file.')
  with open(path, 'rb') as f:
    start = f.read(8)
  for magic, what, reader in _NOT_CSV:
    if start.startswith(magic):
      raise errors.DataError(
          f'{path} is {what}, not a CSV file: csv: sources read text; '
          f'convert it first ({reader}.to_csv(...)).')
  with reading(path):
    try:
      first = pd.read_csv(path, nrows=1 if rows else 0)
      names = list(first.columns)
      if rows and not len(first):
        raise errors.DataError(
            f'{path} has a header ({names[:20]}) but no rows: there is no '
            'series to read.')
    except pd.errors.EmptyDataError:
      raise errors.DataError(
          f'{path} is empty: expected a header line of column names, then '
          'one row per time step.') from None
  return names


@contextlib.contextmanager
def reading(path: str):
  """Turns pandas' and the codec's errors while reading `path` into one
  DataError naming the file."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    yield
  except UnicodeDecodeError as e:
    byte = e.object[e.start:e.start + 1]
    raise errors.DataError(
        f'{path} is not UTF-8 text ({e.reason} {byte!r}): not a CSV file, '
        'or saved in another encoding (re-save it as UTF-8).') from None
  except pd.errors.ParserError as e:
    raise errors.DataError(f'{path} cannot be read as CSV: '
                           f'{str(e).strip().splitlines()[0]}') from None


def columns(text: str) -> List[str]:
  """The columns of an option: 'a+b' -> ['a', 'b']; '' -> []."""
  return [c for c in text.split('+') if c] if text else []


def finite(values: np.ndarray, path: str, series: str,
           rows: np.ndarray = None) -> np.ndarray:
  """`values`, or DataError naming the file, series and row (1-based data
  rows; `rows` maps positions to rows) of an inf."""
  bad = np.flatnonzero(np.isinf(values))
  if len(bad):
    row = int(rows[bad[0]]) if rows is not None else int(bad[0])
    raise errors.DataError(
        f'{path}: series {series!r} has {values[bad[0]]} at row {row + 1}; '
        'values must be finite (leave a missing value empty).')
  return values


def non_numeric(path: str, frame, column: str, what: str = 'column'):
  """DataError naming the first non-numeric cell of `frame[column]` (rows
  1-based, as a spreadsheet's data rows), or None if there is none."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  cells = frame[column]
  numbers = pd.to_numeric(cells, errors='coerce')
  bad = np.flatnonzero(numbers.isna().to_numpy() & cells.notna().to_numpy())
  if not len(bad):
    return None
  value = cells.iloc[bad[0]]
  return errors.DataError(
      f'{path}: {what} {column!r} has a non-numeric value {str(value)[:40]!r} '
      f'at row {int(frame.index[bad[0]]) + 1}.')


def numeric(path: str, frame, column: str, named: bool):
  """The column as float64, or None for a text column (no numeric cell)
  that `named` (value=) did not ask for; DataError for a column mixing
  numbers and text, or a named text column."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  cells = frame[column]
  if cells.dtype.kind in 'fiu':
    return cells.to_numpy(np.float64)
  numbers = pd.to_numeric(cells.astype(object).where(cells.notna()),
                          errors='coerce') if cells.dtype.kind != 'b' else (
                              pd.Series(np.nan, index=cells.index))
  if numbers.notna().any():
    raise non_numeric(path, frame, column)
  if named:
    raise errors.DataError(
        f'{path}: column {column!r} (named by value=) holds no number '
        f'(first cell {str(cells.dropna().iloc[0])[:40]!r}); name numeric '
        'columns only.')
  return None


def _refuse_mixed_offsets(path: str, name: str, column) -> None:
  """DataError when a time column mixes times with a UTC offset and times
  without one, naming the first row of the fewer kind (pandas would parse
  whichever kind its first row has and blame the other)."""
  given = column.notna().to_numpy()
  if not given.any():
    return
  marked = column.astype(str).str.contains(_OFFSET).to_numpy() & given
  counts = {True: int(marked.sum()), False: int((given & ~marked).sum())}
  if not counts[True] or not counts[False]:
    return
  fewer = counts[True] <= counts[False]
  at = int(np.flatnonzero(marked if fewer else given & ~marked)[0])
  kinds = {True: 'with a UTC offset', False: 'without one'}
  raise errors.DataError(
      f'{path}: column {name!r} mixes times with a UTC offset '
      f'({counts[True]:,} rows) and times without one ({counts[False]:,} '
      f'rows); the first {kinds[fewer].replace("one", "an offset")} is row '
      f'{int(column.index[at]) + 1} ({str(column.iloc[at])[:40]!r}). Write '
      'every time with its offset, or none (tz= then names their zone).')


def parse_times(cells, options: Dict[str, str], path: str,
                groups: np.ndarray) -> Tuple[np.ndarray, str]:
  """(int64 nanoseconds per row, NAT where a row has no time; how times
  were read). `cells`: the time column(s) as text; `groups`: each row's
  series code (for the order of a repeated fall-back hour)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  names = list(cells.columns)
  empty = cells.isna().all(axis=1).to_numpy()
  fmt, zone = options.get('date_format', ''), options.get('tz', '')
  how = 'wall clock as published'
  if len(names) > 1:
    parts = cells.apply(pd.to_numeric, errors='coerce')
    parts.columns = [n.lower() for n in names]
    try:
      parsed = pd.to_datetime(parts, errors='coerce')
    except (ValueError, TypeError) as e:
      raise errors.DataError(
          f'{path}: timestamp={"+".join(names)}: {e}; several time columns '
          'must be named year, month, day[, hour, minute, second].') from None
  else:
    column = cells[names[0]]
    if fmt in ('excel', 'unix'):
      numbers = pd.to_numeric(column, errors='coerce')
      parsed = (pd.Timestamp(EXCEL_EPOCH) + pd.to_timedelta(
          numbers, unit='D').dt.round('s')) if fmt == 'excel' else (
              pd.to_datetime(numbers, unit='s'))
    else:
      _refuse_mixed_offsets(path, names[0], column)
      offsets = column.dropna().astype(str).str.contains(_OFFSET).any()
      parsed = pd.to_datetime(column, format=fmt or None, errors='coerce',
                              utc=bool(offsets))
      if offsets:
        parsed, how = parsed.dt.tz_localize(None), 'UTC (offsets in the file)'
  bad = np.flatnonzero(parsed.isna().to_numpy() & ~empty)
  if len(bad):
    value = ' '.join(str(v) for v in cells.iloc[bad[0]].tolist())
    raise errors.DataError(
        f'{path}: row {int(cells.index[bad[0]]) + 1}: time {value[:40]!r} '
        f'does not parse{f" with date_format={fmt}" if fmt else ""}; give '
        'date_format= a strftime format (e.g. %m/%d/%y %H:%M), excel or '
        'unix.')
  if zone and how.startswith('wall'):
    parsed, how = _localize(parsed, zone, groups), f'local {zone} -> UTC'
  return (parsed.dt.as_unit('ns').to_numpy('datetime64[ns]').view(np.int64),
          how)


def _localize(naive, zone: str, groups: np.ndarray):
  """Naive local times of `zone` as naive UTC: per series, a wall time's
  first occurrence is daylight time, a repeat standard time; a time the
  spring-forward jump skips moves forward."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  repeat = pd.DataFrame({'g': groups, 't': naive}).duplicated().to_numpy()
  local = naive.dt.tz_localize(zone, ambiguous=~repeat,
                               nonexistent='shift_forward')
  return local.dt.tz_convert('UTC').dt.tz_localize(None)


def _refuse_one_time(path: str, ordered: np.ndarray, group_of: np.ndarray,
                     options: Dict[str, str]) -> None:
  """DataError for a file in which no series has two distinct times."""
  rows = len(ordered)
  series = len(np.unique(group_of))
  first = str(np.datetime64(int(ordered[0]), 'ns').astype('datetime64[s]'))
  if rows > series:
    where = (f'all {rows:,} rows share' if series == 1 else
             f'the rows of each of its {series:,} series share')
    raise errors.DataError(
        f'{path}: {where} one time (first {first}): '
        'the times do not advance, so there is no series to read. Is '
        f"timestamp={options['timestamp']} the time column?")
  raise errors.DataError(
      f'{path}: every series has a single row ({series:,} series): too '
      'short to read.')


def _refuse_coarse(path: str, freq: str, found: grid.Step,
                   ordered: np.ndarray, group_of: np.ndarray,
                   groups: Sequence[Tuple]) -> None:
  """DataError when a given freq is coarser than the data: more than a
  tenth of the distinct times (of a series) share their grid step with
  another, so that they would be averaged. (Repeated times, and jitter
  around the right step, share none.)"""
  new = np.concatenate([[True], (np.diff(ordered) != 0)
                        | (group_of[1:] != group_of[:-1])])
  distinct = int(new.sum())
  steps = sum(len(np.unique(g[2])) for g in groups)
  if distinct - steps <= 0.1 * distinct:
    return
  raise errors.DataError(
      f'{path}: freq={freq} is coarser than the data: {distinct - steps:,} '
      f'of its {distinct:,} distinct times share a step with an earlier '
      "one, so their values would be averaged. The data's commonest step "
      f'is {found.freq}: give freq={found.freq}, or leave freq= out '
      "(coarser copies are prepare_corpus's --drs).")


class Layout:
  """Where each row goes: per series group (an id, or the whole file), its
  rows in time order, their grid steps, the grid's length and first time.

  Attributes:
    step: the grid step; share: the share of consecutive distinct times
      one step apart; given: whether freq= gave it.
    groups: (name, rows, steps, length, first time in int64 ns).
  """

  def __init__(self, times: np.ndarray, codes: np.ndarray,
               names: Sequence[str], options: Dict[str, str], path: str,
               report: Dict[str, Any]):
    rows = np.flatnonzero(times != grid.NAT)
    if not len(rows):
      raise errors.DataError(f'{path}: no row has a time '
                             f'(timestamp={options["timestamp"]}).')
    rows = rows[np.lexsort((times[rows], codes[rows]))]  # Stable.
    ordered, group_of = times[rows], codes[rows]
    self.given = bool(options.get('freq'))
    found, share = grid.infer_step(ordered, group_of)
    if found is None:
      _refuse_one_time(path, ordered, group_of, options)
    self.step, self.share = found, share
    if self.given:
      self.step, self.share = grid.parse_step(options['freq']), 1.0
    same = group_of[1:] == group_of[:-1]
    report['duplicate_times'] += int((same & (np.diff(ordered) == 0)).sum())
    self.groups = []
    bounds = np.flatnonzero(np.diff(group_of)) + 1
    for first, last in zip([0, *bounds], [*bounds, len(rows)]):
      steps, off_grid = grid.grid_steps(ordered[first:last], self.step)
      length = int(steps[-1]) + 1
      report['off_grid'] += off_grid
      report['rows_merged'] += int(last - first - len(np.unique(steps)))
      report['missing_steps'] += int(length - len(np.unique(steps)))
      self.groups.append((names[group_of[first]], rows[first:last], steps,
                          length, int(ordered[first])))
    if self.given:
      _refuse_coarse(path, options['freq'], found, ordered, group_of,
                     self.groups)
    total = sum(g[3] for g in self.groups)
    if total > 100 * len(rows) + 10_000:
      raise errors.DataError(
          f'{path}: freq={self.step.freq} makes a grid of {total:,} steps '
          f'for {len(rows):,} rows; is the frequency right?')


def _unsorted(times: np.ndarray, codes: np.ndarray) -> int:
  """Rows earlier than the row before them (same series, file order)."""
  kept = times != grid.NAT
  times, codes = times[kept], codes[kept]
  return int(((codes[1:] == codes[:-1]) & (np.diff(times) < 0)).sum())


def _keys(path: str, options: Dict[str, str], report: Dict[str, Any]):
  """(times, series codes, series names, how times were read) of every
  row; rows with a time but no id are an error."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  time_columns, id_columns = (columns(options['timestamp']),
                              columns(options.get('id', '')))
  cells = pd.read_csv(path, usecols=time_columns + id_columns, dtype=str)
  report['rows'] = len(cells)
  if id_columns:
    ids = cells[id_columns]
    codes, names = pd.factorize(pd.MultiIndex.from_frame(ids.fillna('')))
    names = ['/'.join(str(p) for p in name) for name in names]
  else:
    codes, names = np.zeros(len(cells), np.int64), ['']
  times, how = parse_times(cells[time_columns], options, path, codes)
  if id_columns:
    no_id = ids.isna().any(axis=1).to_numpy() & (times != grid.NAT)
    if no_id.any():
      rows = [int(r) + 1 for r in np.flatnonzero(no_id)[:5]]
      raise errors.DataError(
          f'{path}: {int(no_id.sum())} row(s) with a time have no '
          f'{"+".join(id_columns)!r} (rows {rows}); every row needs the id '
          'of its series.')
  report['unsorted'] = _unsorted(times, codes)
  return times, np.asarray(codes, np.int64), names, how


def new_report() -> Dict[str, Any]:
  """The counts and column lists `read` fills (see `COUNTS`)."""
  return dict({name: 0 for name in COUNTS}, columns_series=[],
              columns_text=[], columns_excluded=[])


def value_columns(header: Sequence[str], options: Dict[str, str]
                  ) -> Tuple[List[str], bool]:
  """(the value columns to read, whether value= named them)."""
  if options.get('value'):
    return columns(options['value']), True
  used = set(columns(options.get('timestamp', '')) + columns(
      options.get('id', '')) + columns(options.get('exclude', '')))
  return [c for c in header if c not in used], False


def check_columns(path: str, header: Sequence[str],
                  options: Dict[str, str]) -> None:
  """DataError naming an option's column that the file lacks."""
  for key in ('timestamp', 'id', 'value', 'exclude'):
    for column in columns(options.get(key, '')):
      if column not in header:
        raise errors.DataError(
            f'{path}: no column {column!r} ({key}=; columns: '
            f'{list(header)[:20]}).')


def check(path: str, options: Dict[str, str]) -> None:
  """The checks that need the file, on its header and first rows, before
  anything is written: columns exist, times parse, and some value column
  is numeric."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  header = header_of(path)
  check_columns(path, header, options)
  keys = pd.read_csv(path, usecols=columns(options['timestamp']), dtype=str,
                     nrows=2000)
  parse_times(keys, options, path, np.zeros(len(keys), np.int64))
  wanted, named = value_columns(header, options)
  sample = pd.read_csv(path, usecols=wanted, nrows=2000)
  if not [c for c in wanted if numeric(path, sample, c, named) is not None]:
    raise errors.DataError(
        f'{path}: no numeric column to read as a series (columns: '
        f'{list(header)[:20]}; time and id columns and exclude= are not '
        'series, text columns are skipped).')


def read(path: str, options: Dict[str, str], report: Dict[str, Any]
         ) -> Iterator[Tuple[str, np.ndarray, str]]:
  """(series id, values, start time) of every piece of every series of a
  timed CSV, one series in memory at a time; fills `report` (`new_report`)
  with what was done."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  header = header_of(path)
  check_columns(path, header, options)
  times, codes, names, how = _keys(path, options, report)
  layout = Layout(times, codes, names, options, path, report)
  report.update(freq=layout.step.freq, freq_given=layout.given,
                freq_share=round(layout.share, 4), times=how,
                num_ids=len(names) if options.get('id') else 0)
  wanted, named = value_columns(header, options)
  report['columns_excluded'] = columns(options.get('exclude', ''))
  has_value = np.zeros(len(times), bool)
  per_pass = max(1, (4 << 20) // max(len(times), 1))  # ~4M values.
  for first in range(0, len(wanted), per_pass):
    block = pd.read_csv(path, usecols=wanted[first:first + per_pass])
    for column in wanted[first:first + per_pass]:
      values = numeric(path, block, column, named)
      if values is None:
        report['columns_text'].append(column)
        continue
      report['columns_series'].append(column)
      has_value |= ~np.isnan(values)
      yield from _series(path, column, values, layout, options, report)
  no_time = times == grid.NAT
  report['empty_rows'] = int((no_time & ~has_value).sum())
  report['rows_without_time'] = int((no_time & has_value).sum())
  with open(path, 'rb') as f:
    report['blank_lines'] = max(0, sum(1 for _ in f) - 1 - len(times))


def _series(path: str, column: str, values: np.ndarray, layout: Layout,
            options: Dict[str, str], report: Dict[str, Any]
            ) -> Iterator[Tuple[str, np.ndarray, str]]:
  """The pieces of one value column's series (one per id)."""
  how = options.get('duplicates', 'mean')
  max_gap = int(options.get('max_gap', grid.MAX_GAP))
  min_length = int(options.get('min_length', grid.MIN_LENGTH))
  for name, rows, steps, length, first in layout.groups:
    label = f'{name}/{column}' if name else str(column)
    on_grid = grid.aggregate(steps, finite(values[rows], path, label, rows),
                             length, how)
    pieces, stats = grid.fill_and_split(on_grid, max_gap, min_length)
    report['series_in'] += 1
    report['pieces'] += len(pieces)
    for key, count in (('series_all_missing', 'all_missing'),
                       ('gaps_split', 'splits'),
                       ('pieces_dropped', 'dropped_pieces'),
                       ('values_dropped', 'dropped_values'),
                       ('values_filled', 'filled'),
                       ('values_trimmed', 'trimmed')):
      report[key] += stats[count]
    for k, (offset, piece) in enumerate(pieces):
      start = grid.step_time(first, layout.step, offset)
      yield (f'{label}#{k}' if len(pieces) > 1 else label, piece,
             str(start.astype('datetime64[s]')))
