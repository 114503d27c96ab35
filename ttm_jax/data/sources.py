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
  import pandas as pd  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise DataError(f'Data file {path} does not exist.')
  if path.endswith(('.parquet', '.pq')):
    return pd.read_parquet(path)
  return pd.read_csv(path)


def read_table(path: str, *, timestamp_column: Optional[str] = 'date',
               target_columns: Optional[Sequence[str]] = None,
               control_columns: Sequence[str] = (),
               static_categorical_columns: Sequence[str] = (),
               id_columns: Sequence[str] = (), freq: Optional[str] = None
               ) -> Table:
  """Reads a wide (one column per channel) or long (id column) file.

  Args:
    path: CSV or Parquet file.
    timestamp_column: time column (checked: monotonic, no duplicates), or
      None for none.
    target_columns: forecast targets; default every column that is not
      time, id, control or categorical.
    control_columns: exogenous columns (known future values).
    static_categorical_columns: per-series categoricals (constant per id).
    id_columns: columns identifying series in a long file.
    freq: frequency; inferred from the timestamps when None.
  """
  frame = read_frame(path)
  columns = list(frame.columns)
  needed = [c for c in ([timestamp_column] if timestamp_column else [])
            + list(control_columns) + list(static_categorical_columns)
            + list(id_columns) + list(target_columns or [])]
  for name in needed:
    if name not in columns:
      _missing_column(name, columns, path)
  reserved = set(id_columns) | set(control_columns) | set(
      static_categorical_columns) | {timestamp_column}
  if target_columns is None:
    target_columns = [c for c in columns if c not in reserved]
  if not target_columns:
    raise DataError(f'{path}: no target columns.')
  groups = ([('', frame)] if not id_columns else
            [('/'.join(map(str, k if isinstance(k, tuple) else (k,))), g)
             for k, g in frame.groupby(list(id_columns), sort=True)])
  value_columns = list(target_columns) + list(control_columns)
  values, stamps, statics, ids = [], [], [], []
  for key, group in groups:
    if timestamp_column:
      import pandas as pd  # pylint: disable=g-import-not-at-top
      time = pd.to_datetime(group[timestamp_column])
      if time.duplicated().any():
        raise DataError(f'{path}: duplicated timestamps in series {key!r} '
                        f'(first: {time[time.duplicated()].iloc[0]}).')
      if not time.is_monotonic_increasing:
        bad = int(np.argmax(np.diff(time.values.astype('int64')) < 0))
        raise DataError(f'{path}: timestamps of series {key!r} are not '
                        f'increasing (row {bad + 1}: {time.iloc[bad]} then '
                        f'{time.iloc[bad + 1]}).')
      stamps.append(time.values)
    block = group[value_columns].apply(_to_numeric, path=path).to_numpy(
        np.float64)
    values.append(block)
    ids.append(key)
    if static_categorical_columns:
      statics.append(group[list(static_categorical_columns)].iloc[0].to_numpy())
  all_values = np.concatenate(values, axis=0)
  empty = [c for c, col in zip(value_columns, all_values.T)
           if np.isnan(col).all()]
  if empty:
    raise DataError(f'{path}: column(s) {empty} have no value (all NaN).')
  if freq is None and stamps and len(stamps[0]) > 2:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    freq = pd.infer_freq(pd.DatetimeIndex(stamps[0][:1000])) or ''
  codes = None
  if static_categorical_columns:
    codes = _encode_categoricals(statics)
  return Table(values=values, columns=value_columns,
               target_columns=list(target_columns),
               control_columns=list(control_columns), ids=ids,
               freq=freq or '', timestamps=stamps or None,
               static_categoricals=codes,
               static_categorical_columns=list(static_categorical_columns)
               or None)


def _to_numeric(column, path):
  import pandas as pd  # pylint: disable=g-import-not-at-top
  converted = pd.to_numeric(column, errors='coerce')
  bad = converted.isna() & column.notna()
  if bad.any():
    raise DataError(f'{path}: column {column.name!r} has non-numeric values '
                    f'(e.g. {column[bad].iloc[0]!r}).')
  return converted


def _encode_categoricals(rows: List[np.ndarray]) -> List[np.ndarray]:
  table = np.stack(rows).astype(str)
  codes = np.zeros(table.shape, np.int32)
  for k in range(table.shape[1]):
    _, codes[:, k] = np.unique(table[:, k], return_inverse=True)
  return list(codes)


def read_registered(name: str, directory: Optional[str] = None) -> Table:
  """A registered benchmark as a `Table`."""
  key = name.lower()
  if key not in REGISTRY:
    close = difflib.get_close_matches(key, list(REGISTRY), n=3)
    raise DataError(f'Unknown dataset {name!r}; registered: '
                    f'{sorted(REGISTRY)}.' + (f' Did you mean {close}?'
                                              if close else ''))
  spec = REGISTRY[key]
  table = read_table(locate(spec, directory),
                     timestamp_column=spec.timestamp_column, freq=spec.freq)
  return table
