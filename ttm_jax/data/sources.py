"""Dataset registry and readers (CSV / Parquet, wide or long) returning
NumPy arrays, with named errors for bad data.

The long-term forecasting benchmarks of TTM_SPEC.md section 5 are
registered with IBM's file names, frequencies and split rules. Files are
read from a data directory (config field or the TTM_DATA_DIR environment
variable); a file may sit directly in it or under its usual sub-folder
(`ETT-small/`, `weather/`, ...).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.data import windows

_LOG = logging.getLogger(__name__)
_DATA_DIR_ENV = 'TTM_DATA_DIR'

_ETT_HOURLY = windows.SplitRule(borders={
    'train': (0, 12 * 30 * 24),
    'valid': (12 * 30 * 24, 16 * 30 * 24),
    'test': (16 * 30 * 24, 20 * 30 * 24)})
_ETT_MINUTELY = windows.SplitRule(borders={
    k: (a * 4, b * 4) for k, (a, b) in _ETT_HOURLY.borders.items()})
_FRACTIONS = windows.SplitRule()


DataError = errors.DataError


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """A registered dataset.

  Attributes:
    name: registry key.
    file: file name.
    subdir: usual sub-folder of the data directory.
    freq: pandas frequency string (gives the RPT frequency token).
    split: the split rule.
    timestamp_column: name of the time column.
    source: where to get the file.
  """
  name: str
  file: str
  subdir: str
  freq: str
  split: windows.SplitRule
  timestamp_column: str = 'date'
  source: str = ''


_LTSF_SOURCE = ('the Autoformer/Informer LTSF collection (e.g. '
                'thuml/Autoformer "all_six_datasets"; ETT from '
                'github.com/zhouhaoyi/ETDataset)')
REGISTRY: Dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec('etth1', 'ETTh1.csv', 'ETT-small', '1h', _ETT_HOURLY,
                    source='github.com/zhouhaoyi/ETDataset ETT-small/'),
        DatasetSpec('etth2', 'ETTh2.csv', 'ETT-small', '1h', _ETT_HOURLY,
                    source='github.com/zhouhaoyi/ETDataset ETT-small/'),
        DatasetSpec('ettm1', 'ETTm1.csv', 'ETT-small', '15min', _ETT_MINUTELY,
                    source='github.com/zhouhaoyi/ETDataset ETT-small/'),
        DatasetSpec('ettm2', 'ETTm2.csv', 'ETT-small', '15min', _ETT_MINUTELY,
                    source='github.com/zhouhaoyi/ETDataset ETT-small/'),
        DatasetSpec('weather', 'weather.csv', 'weather', '10min', _FRACTIONS,
                    source=_LTSF_SOURCE),
        DatasetSpec('electricity', 'electricity.csv', 'electricity', '1h',
                    _FRACTIONS, source=_LTSF_SOURCE),
        DatasetSpec('traffic', 'traffic.csv', 'traffic', '1h', _FRACTIONS,
                    source=_LTSF_SOURCE),
        DatasetSpec('exchange', 'exchange_rate.csv', 'exchange_rate', '1d',
                    _FRACTIONS, source=_LTSF_SOURCE),
        DatasetSpec('ili', 'national_illness.csv', 'illness', 'W', _FRACTIONS,
                    source=_LTSF_SOURCE),
    )
}


@dataclasses.dataclass
class Table:
  """Series read from a file: per id, [t, c] values over named columns.

  Attributes:
    values: per series id, [t, c] float64 (NaN where missing).
    columns: names of the c columns (targets first, then exogenous).
    target_columns, control_columns: names.
    static_categoricals: per series id, [k] int codes (or None).
    categorical_vocab: the value -> code table of the static categoricals.
    ids: series ids (one '' for a single wide series).
    timestamps: per series id, the time index (or None).
    freq: frequency string.
  """
  values: List[np.ndarray]
  columns: List[str]
  target_columns: List[str]
  control_columns: List[str]
  ids: List[str]
  freq: str
  timestamps: Optional[List[np.ndarray]] = None
  static_categoricals: Optional[List[np.ndarray]] = None
  static_categorical_columns: Optional[List[str]] = None
  categorical_vocab: Optional[categoricals.Vocabulary] = None


def data_dir(configured: Optional[str] = None) -> str:
  return configured or os.environ.get(_DATA_DIR_ENV, '') or 'data'


def locate(spec: DatasetSpec, directory: Optional[str]) -> str:
  """Path of a registered dataset's file, or a DataError saying where it was
  looked for and how to get it."""
  root = data_dir(directory)
  candidates = [os.path.join(root, spec.file),
                os.path.join(root, spec.subdir, spec.file)]
  for path in candidates:
    if os.path.exists(path):
      return path
  raise DataError(
      f'Dataset {spec.name!r}: {spec.file} not found; looked for '
      f'{" and ".join(candidates)}. Get it from {spec.source} and put it in '
      f'the data directory (config field data_dir or ${_DATA_DIR_ENV}).')


def _missing_column(name: str, available: Sequence[str], path: str):
  close = difflib.get_close_matches(name, list(available), n=3)
  hint = f' Did you mean {close}?' if close else ''
  raise DataError(f'Column {name!r} not in {path} (columns: '
                  f'{list(available)}).{hint}')


def read_frame(path: str):
  """A CSV or Parquet file as a DataFrame, or one clear DataError."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise DataError(f'Data file {path} does not exist.')
  try:
    if path.endswith(('.parquet', '.pq')):
      frame = pd.read_parquet(path)
    else:
      frame = pd.read_csv(path)
  except pd.errors.EmptyDataError:
    raise DataError(f'{path} is empty: expected a header line of column '
                    'names, then one row per time step.') from None
  except (pd.errors.ParserError, UnicodeDecodeError, OSError,
          ValueError) as e:
    raise DataError(f'{path} cannot be read as '
                    f'{"Parquet" if path.endswith((".parquet", ".pq")) else "CSV"}'
                    f': {str(e).splitlines()[0]}') from None
  if not len(frame):
    raise DataError(f'{path} has a header ({list(frame.columns)}) but no '
                    'rows.')
  return frame


def _target_columns(frame, path, timestamp_column, target_columns,
                    control_columns, static_categorical_columns, id_columns):
  """The targets (named, or every other column), after checking that every
  named column exists."""
  columns = list(frame.columns)
  needed = ([timestamp_column] if timestamp_column else []) + list(
      control_columns) + list(static_categorical_columns) + list(
          id_columns) + list(target_columns or [])
  for name in needed:
    if name not in columns:
      _missing_column(name, columns, path)
  reserved = set(id_columns) | set(control_columns) | set(
      static_categorical_columns) | {timestamp_column}
  if target_columns is None:
    target_columns = [c for c in columns if c not in reserved]
  if not target_columns:
    raise DataError(f'{path}: no target columns (columns: {columns}).')
  return list(target_columns)


DUPLICATES = ('error', 'keep', 'first')


def _timestamps(group, path: str, key: str, column: str, duplicates: str,
                published: bool):
  """The group's time index (rows dropped when keeping first duplicates),
  checked: increasing, duplicates as asked. Registered benchmarks keep
  their published rows, with a warning naming duplicates and gaps."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    time = pd.to_datetime(group[column])
  except (ValueError, TypeError) as e:
    raise DataError(f'{path}: column {column!r} is not a time stamp '
                    f'({str(e).splitlines()[0]}).') from None
  series = f' of series {key!r}' if key else ''
  dup = time.duplicated()
  if published:
    _warn_irregular(time, path, series)
    return group, time
  if not time.is_monotonic_increasing:
    bad = int(np.argmax(np.diff(time.values.astype('int64')) < 0))
    raise DataError(f'{path}: timestamps{series} are not increasing (row '
                    f'{time.index[bad] + 1}: {time.iloc[bad]} then '
                    f'{time.iloc[bad + 1]}); sort the file by time.')
  if dup.any() and duplicates == 'error':
    rows = [int(i) + 1 for i in time.index[dup][:3]]
    raise DataError(
        f'{path}: duplicated timestamps{series} (first at rows {rows}: '
        f'{time[dup].iloc[0]}). Remove them, or set duplicates=\'first\' '
        "(keep each time's first row) or 'keep' (keep every row).")
  if dup.any() and duplicates == 'first':
    group, time = group[~dup.values], time[~dup.values]
  return group, time


def _warn_irregular(time, path: str, series: str) -> None:
  dup = time.duplicated()
  steps = np.diff(time.values.astype('int64'))
  if not len(steps):
    return
  usual = np.median(steps)
  gaps = np.flatnonzero(steps > usual)
  if dup.any() or len(gaps):
    _LOG.warning(
        '%s%s: %d duplicated timestamp(s)%s and %d gap(s)%s; kept as '
        'published (the benchmark protocol windows rows by index).', path,
        series, int(dup.sum()),
        f' (first {time[dup].iloc[0]})' if dup.any() else '', len(gaps),
        f' (first after {time.iloc[int(gaps[0])]})' if len(gaps) else '')


def numeric(block, where: str = '', rows=None) -> np.ndarray:
  """The block as float64, refusing non-numeric and infinite values (NaN
  means missing), naming the file (`where`), column and row (`rows`: each
  row's 1-based number; default the index + 1)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  rows = block.index.to_numpy() + 1 if rows is None else np.asarray(rows)
  label = f'{where}: column' if where else 'Column'
  out = np.empty(block.shape, np.float64)
  for k, name in enumerate(block.columns):
    column = block[name]
    converted = pd.to_numeric(column, errors='coerce')
    bad = np.flatnonzero((converted.isna() & column.notna()).to_numpy())
    if len(bad):
      raise DataError(f'{label} {name!r} has a non-numeric value '
                      f'{column.iloc[bad[0]]!r} at row {rows[bad[0]]}; '
                      'numbers (or empty for missing) are accepted.')
    out[:, k] = converted.to_numpy(np.float64)
    infinite = np.flatnonzero(np.isinf(out[:, k]))
    if len(infinite):
      raise DataError(f'{label} {name!r} has {out[infinite[0], k]} at row '
                      f'{rows[infinite[0]]}; values must be finite (leave a '
                      'cell empty or NaN for a missing value).')
  return out


def read_table(path: str, *, timestamp_column: Optional[str] = 'date',
               target_columns: Optional[Sequence[str]] = None,
               control_columns: Sequence[str] = (),
               static_categorical_columns: Sequence[str] = (),
               id_columns: Sequence[str] = (), freq: Optional[str] = None,
               duplicates: str = 'error', published: bool = False,
               vocabulary: Optional[categoricals.Vocabulary] = None
               ) -> Table:
  """Reads a wide (one column per channel) or long (id column) file.

  Args:
    path: CSV or Parquet file.
    timestamp_column: time column (increasing; duplicates as `duplicates`),
      or None for none.
    target_columns: forecast targets; default every column that is not
      time, id, control or categorical.
    control_columns: exogenous columns (known future values).
    static_categorical_columns: per-series categoricals (constant per id).
    id_columns: columns identifying series in a long file.
    freq: frequency; inferred from the timestamps when None.
    duplicates: repeated timestamps are an 'error' (default), or 'first'
      (keep each time's first row) or 'keep' (keep every row).
    published: a registered benchmark: its rows are kept as published
      (IBM's protocol windows rows by index), duplicates and gaps only
      warned about.
    vocabulary: the static categoricals' codes (a fine-tuned model's);
      default: learned from the file's series.

  Raises:
    DataError: naming the file, column and row of the first problem.
  """
  if duplicates not in DUPLICATES:
    raise DataError(f'duplicates={duplicates!r}: expected one of '
                    f'{list(DUPLICATES)}.')
  frame = read_frame(path)
  target_columns = _target_columns(frame, path, timestamp_column,
                                   target_columns, control_columns,
                                   static_categorical_columns, id_columns)
  value_columns = target_columns + list(control_columns)
  groups = ([('', frame)] if not id_columns else
            [('/'.join(map(str, k if isinstance(k, tuple) else (k,))), g)
             for k, g in frame.groupby(list(id_columns), sort=True)])
  values, stamps, statics, ids = [], [], [], []
  for key, group in groups:
    if timestamp_column:
      group, time = _timestamps(group, path, key, timestamp_column,
                                duplicates, published)
      stamps.append(time.values)
    values.append(numeric(group[value_columns], path))
    ids.append(key)
    if static_categorical_columns:
      statics.append(group[list(static_categorical_columns)].iloc[0].to_numpy())
  empty = [c for c, col in zip(value_columns,
                               np.concatenate(values, axis=0).T)
           if np.isnan(col).all()]
  if empty:
    raise DataError(f'{path}: column(s) {empty} have no value (all NaN).')
  if freq is None and stamps and len(stamps[0]) > 2:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    freq = pd.infer_freq(pd.DatetimeIndex(stamps[0][:1000])) or ''
  codes = None
  if static_categorical_columns:
    vocabulary = vocabulary or categoricals.Vocabulary.fit(
        static_categorical_columns, statics)
    codes = list(vocabulary.encode(static_categorical_columns, statics, path))
  return Table(values=values, columns=value_columns,
               target_columns=target_columns,
               control_columns=list(control_columns), ids=ids,
               freq=freq or '', timestamps=stamps or None,
               static_categoricals=codes,
               static_categorical_columns=list(static_categorical_columns)
               or None,
               categorical_vocab=vocabulary if codes is not None else None)


def read_registered(name: str, directory: Optional[str] = None,
                    target_columns: Optional[Sequence[str]] = None,
                    control_columns: Sequence[str] = ()) -> Table:
  """A registered benchmark as a `Table` (every column a target, or the
  named targets then the named controls)."""
  key = name.lower()
  if key not in REGISTRY:
    close = difflib.get_close_matches(key, list(REGISTRY), n=3)
    raise DataError(f'Unknown dataset {name!r}; registered: '
                    f'{sorted(REGISTRY)}.' + (f' Did you mean {close}?'
                                              if close else ''))
  spec = REGISTRY[key]
  return read_table(locate(spec, directory),
                    timestamp_column=spec.timestamp_column, freq=spec.freq,
                    target_columns=target_columns,
                    control_columns=control_columns, published=True)
