"""A benchmark task's series, read from a local folder (`--data_dir`).

Where a task's data is looked for, in order:

  fev (Chronos Benchmark II, fev-bench): the dataset as the suite publishes
    it, saved locally in the Hugging Face layout: the parquet or arrow
    files under `<data_dir>/<dataset_path>/<dataset_config>/` (e.g.
    `autogluon/chronos_datasets/m4_yearly/train-00000-of-00001.parquet`)
    or under `<data_dir>/<dataset_config>/`; one row per series with
    sequence columns (`id`, `timestamp`, the target(s), dynamic
    covariates) and scalar static columns, or fev's long format (one row
    per step: `id`, `timestamp`, ...). Chronos Benchmark II's
    Monash tasks also read the Monash `.tsf` file they were built from
    (`<data_dir>/<file>.tsf`: MONASH_FILES).
  GIFT-Eval: `datasets.save_to_disk` folders of Salesforce/GiftEval under
    `<data_dir>/<name>/` (arrow files; `item_id`, `start`, `freq`,
    `target`, multivariate targets split into one series per variate).

A missing dataset is `Missing(id, looked_in)`: the runner lists it with
the id to fetch it by and skips the task.

A fev task's covariates are read with its targets (`Series.covariates`:
per series the known dynamic columns then the past ones, as float64,
NaN missing; a column holding text is categorical, its values coded by
their sorted order over the table, `Series.categories`; the static
columns' values per series, `Series.statics`). The runner hands them to
a forecaster that reads them (`suites.config` covariates='use').

Checked where it enters, each problem one DataError naming the file:
a file of the suites' whose bytes are known (`known_files`) and differ (a
truncated `.tsf`); a parquet or arrow file that cannot be read; text in
a target (the column, series and step); an infinite value (the series and
step: its forecast would be NaN and drop out of the metrics while it
counts as a forecast). NaN is a missing value.
"""

from __future__ import annotations

import dataclasses
import glob
import numbers
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ttm_jax import errors
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.suites import known_files
from ttm_jax.suites import tasks as tasks_lib

# Chronos Benchmark II's Monash tasks and the Monash archive files they
# come from (same series, same values, same horizon: docs/
# benchmark_suites.md section 5).
MONASH_FILES = {
    'm4_yearly': 'm4_yearly_dataset.tsf',
    'monash_tourism_monthly': 'tourism_monthly_dataset.tsf',
    'monash_tourism_quarterly': 'tourism_quarterly_dataset.tsf',
    'monash_tourism_yearly': 'tourism_yearly_dataset.tsf',
    'monash_m1_yearly': 'm1_yearly_dataset.tsf',
}


@dataclasses.dataclass
class Series:
  """A task's series: ids, values (float64, NaN missing) and frequency.

  A multivariate task has one series per item and target column, `dims`
  giving each series' column (an index into the task's target_columns);
  `timestamps` (datetime64, one array per series) come with tables that
  have them.
  """
  ids: List[str]
  values: List[np.ndarray]
  freq: str
  source: str  # The file(s) read.
  timestamps: Optional[List[np.ndarray]] = None
  dims: Optional[np.ndarray] = None
  # The files read: {'path' (below the data folder), 'bytes', 'sha256'}.
  files: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
  # Per series [t, k]: the task's known then past dynamic covariates
  # (categorical ones as codes), or None (no dynamic covariates).
  covariates: Optional[List[np.ndarray]] = None
  # A categorical covariate's values by code (its sorted values).
  categories: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  # Per series, the static columns' values, or None.
  statics: Optional[List[Dict[str, Any]]] = None

  def layout(self, task: tasks_lib.Task) -> covariates_lib.Layout:
    """The covariate columns of `covariates` (`inference.covariates`)."""
    return covariates_lib.Layout(
        past=tuple(task.past_dynamic), known=tuple(task.known_dynamic),
        categorical=frozenset(self.categories))


@dataclasses.dataclass
class Missing:
  dataset_id: str
  looked_in: List[str]


@dataclasses.dataclass
class Located:
  """Where a task's data is: its files (a table's parquet or arrow files,
  or one Monash `.tsf`), each with its key in `known_files`."""
  files: List[str]
  keys: List[str]
  source: str  # The folder read, or the .tsf file.
  tsf: bool = False


def _files(folder: str) -> List[str]:
  found = []
  for pattern in ('*.parquet', '*.arrow', '**/*.parquet'):
    found = sorted(glob.glob(os.path.join(folder, pattern), recursive=True))
    if found:
      return found
  return []


def _one_line(error: BaseException) -> str:
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:300]}'


def _read_file(path: str):
  """One parquet or arrow file as a pyarrow table; a DataError naming it
  when it cannot be read (damaged, truncated, not that format)."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  kind = 'parquet' if path.endswith('.parquet') else 'arrow'
  try:
    if kind == 'parquet':
      return pq.read_table(path)
    with pa.memory_map(path) as source:  # save_to_disk writes streams.
      try:
        return pa.ipc.open_stream(source).read_all()
      except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source).read_all()
  except (pa.ArrowException, OSError, ValueError) as e:
    raise errors.DataError(f'{path}: not a readable {kind} file '
                           f'({_one_line(e)}).') from None


def _read_table(files: Sequence[str]):
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  tables = [_read_file(path) for path in files]
  try:
    return pa.concat_tables(tables).to_pandas()
  except (pa.ArrowException, ValueError) as e:
    names = [os.path.basename(f) for f in files]
    raise errors.DataError(f'{os.path.dirname(files[0])}: its files {names} '
                           f'do not make one table ({_one_line(e)}).'
                           ) from None


def _numeric(value, where: str) -> np.ndarray:
  """`value` (a sequence, or a sequence of sequences) as float64; a
  DataError naming `where` and the step of the first value that is not a
  number (text in a target). None is missing (NaN)."""
  array = np.asarray(value)
  if array.dtype.kind in 'fiub':
    return array.astype(np.float64)
  if array.dtype == object and array.ndim == 1 and len(array) and all(
      isinstance(v, (list, tuple, np.ndarray)) for v in array):
    return np.stack([_numeric(v, f'{where}, variate {k}')
                     for k, v in enumerate(array)])
  flat = array.ravel()
  out = np.empty(len(flat))
  for k, item in enumerate(flat):
    if item is None:
      out[k] = np.nan
    elif isinstance(item, numbers.Real) and not isinstance(item, str):
      out[k] = float(item)
    else:
      raise errors.DataError(f'{where}, step {k}: {item!r} is '
                             f'{type(item).__name__}, not a number.')
  return out.reshape(array.shape)


def _freq_of(timestamps) -> str:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    return pd.infer_freq(pd.DatetimeIndex(timestamps)) or ''
  except (TypeError, ValueError):
    return ''


def _wide(frame, static: Sequence[str]):
  """fev's long format (one row per step) as one row per series, each
  column a sequence but the task's static columns (their first value), as
  fev's `convert_long_table_to_hf_dataset`."""
  if 'timestamp' not in frame or not len(frame) or isinstance(
      frame['timestamp'].iloc[0], (list, np.ndarray)):
    return frame
  import pandas as pd  # pylint: disable=g-import-not-at-top
  rows = []
  for key, group in frame.sort_values(['id', 'timestamp']).groupby(
      'id', sort=False):
    rows.append({column: (group[column].iloc[0] if column in static
                          else group[column].to_numpy())
                 for column in group.columns.drop('id')} | {'id': key})
  return pd.DataFrame(rows)


def _check_columns(task: tasks_lib.Task, frame, source: str) -> None:
  """Every column the task names is in the table (one error naming the
  missing ones, before any work)."""
  roles = {'id': ['id'], 'target': [] if task.univariate_from else
           task.target_columns, 'known_dynamic_columns': task.known_dynamic,
           'past_dynamic_columns': task.past_dynamic,
           'static_columns': task.static}
  if isinstance(task.univariate_from, (list, tuple)):
    roles['generate_univariate_targets_from'] = task.univariate_from
  missing = [f'{c!r} ({role})' for role, columns in roles.items()
             for c in columns if c not in frame.columns]
  if missing:
    raise errors.DataError(
        f'Task {task.name}: {source} has no column {", ".join(missing)}; '
        f'its columns are {sorted(frame.columns)}.')


def _fev_series(task: tasks_lib.Task, frame, source: str) -> Series:
  """fev's preprocessing: ids as strings, rows sorted by id; with
  `univariate_from`, each named sequence column a series of its own
  ('<id>_<column>'); with several targets, one series per item and target
  ('<id>/<column>', `dims` its column)."""
  frame = _wide(frame, task.static)
  _check_columns(task, frame, source)
  frame = frame.assign(id=frame['id'].astype(str)).sort_values('id')
  columns = task.univariate_from
  if columns == '__ALL__':
    columns = [c for c in frame.columns if c not in ('id', 'timestamp')
               and isinstance(frame[c].iloc[0], (list, np.ndarray))]
  targets = list(columns or task.target_columns)
  ids, values, dims, stamps = [], [], [], []
  multivariate = len(task.target_columns) > 1
  for _, row in frame.iterrows():
    for k, column in enumerate(targets):
      ids.append(f'{row["id"]}/{column}' if multivariate else
                 f'{row["id"]}_{column}' if columns else row['id'])
      values.append(_numeric(row[column], f'{source}: column {column!r}, '
                             f'series {row["id"]!r}'))
      dims.append(k if multivariate else 0)
      if 'timestamp' in frame:
        stamps.append(np.asarray(row['timestamp'], 'datetime64[ns]'))
  freq = _freq_of(frame['timestamp'].iloc[0]) if 'timestamp' in frame else ''
  series = Series(ids, values, freq, source, stamps or None,
                  np.asarray(dims) if multivariate else None)
  if not columns:  # Generated univariate targets take no covariates.
    _read_covariates(task, frame, len(targets), series, source)
  return series


def _is_text(value) -> bool:
  array = np.asarray(value)
  return array.dtype.kind in 'OSU' and any(
      isinstance(v, str) for v in array.ravel())


def _absent(value) -> bool:
  """A missing value of a categorical covariate (None or a float NaN)."""
  return value is None or (isinstance(value, float) and np.isnan(value))


def _read_covariates(task: tasks_lib.Task, frame, per_item: int,
                     series: Series, source: str) -> None:
  """The task's covariates into `series` (module docstring), each item's
  repeated for its `per_item` target series."""
  dynamic = list(task.known_dynamic) + list(task.past_dynamic)
  if task.static:
    series.statics = [{c: row[c] for c in task.static}
                      for _, row in frame.iterrows() for _ in range(per_item)]
  if not dynamic:
    return
  codes = {}
  for column in dynamic:
    if any(_is_text(v) for v in frame[column]):
      seen = sorted({str(v) for value in frame[column]
                     for v in np.asarray(value).ravel() if not _absent(v)})
      codes[column] = {v: float(k) for k, v in enumerate(seen)}
      series.categories[column] = seen
  out = []
  for _, row in frame.iterrows():
    parts = []
    for column in dynamic:
      value = row[column]
      if column in codes:
        parts.append(np.array([
            np.nan if _absent(v) else codes[column][str(v)]
            for v in np.asarray(value).ravel()]))
      else:
        parts.append(_numeric(value, f'{source}: column {column!r}, series '
                              f'{row["id"]!r}'))
    block = np.stack(parts, axis=1)
    block[np.isinf(block)] = np.nan  # A covariate's inf: missing.
    out += [block] * per_item
  for k, (values, block) in enumerate(zip(series.values, out)):
    if len(values) != len(block):
      raise errors.DataError(
          f'Task {task.name}: {source}: series {series.ids[k]!r} has '
          f'{len(values)} target values but {len(block)} of its covariates '
          f'{dynamic}.')
  series.covariates = out


def _tsf_series(path: str) -> Series:
  from ttm_jax.data import pretrain  # pylint: disable=g-import-not-at-top
  found = pretrain.read_tsf(path)
  ids = [a.get('series_name', str(k)) for k, a in enumerate(found.attributes)]
  return Series(ids, [np.asarray(v, np.float64) for v in found.series],
                found.freq or '', path)


def _gift_series(task: tasks_lib.Task, frame, source: str) -> Series:
  missing = [c for c in ('item_id', 'target') if c not in frame.columns]
  if missing:
    raise errors.DataError(
        f'Task {task.name}: {source} has no column {missing} (GIFT-Eval\'s '
        f'layout: item_id, start, freq, target); its columns are '
        f'{sorted(frame.columns)}.')
  ids, values = [], []
  for _, row in frame.iterrows():
    target = _numeric(row['target'], f'{source}: column \'target\', item '
                      f'{row["item_id"]!r}')
    rows = list(target) if target.ndim == 2 else [target]
    for k, variate in enumerate(rows):
      ids.append(f'{row["item_id"]}_dim{k}' if len(rows) > 1
                 else str(row['item_id']))
      values.append(variate)
  freq = str(frame['freq'].iloc[0]) if 'freq' in frame else ''
  del task
  return Series(ids, values, freq, source)


def locate(task: tasks_lib.Task, data_dir: str) -> Union[Located, Missing]:
  """Where the data of `task` is under `data_dir` (nothing read), or
  where it was looked for."""
  folders = [os.path.join(data_dir, task.dataset_path, task.dataset_config),
             os.path.join(data_dir, task.dataset_config)]
  for folder in folders:
    files = _files(folder) if os.path.isdir(folder) else []
    if files:
      keys = [f'{task.dataset_id}/{os.path.relpath(f, folder)}'
              for f in files]
      return Located(files, keys, files[0] if len(files) == 1 else folder)
  monash: Optional[str] = MONASH_FILES.get(task.dataset_config)
  if monash and task.suite == 'chronos_ii':
    path = os.path.join(data_dir, monash)
    if os.path.isfile(path):
      return Located([path], [f'monash/{monash}'], path, tsf=True)
    folders.append(path)
  return Missing(task.dataset_id, folders)


def digests(located: Located, data_dir: str,
            verify: bool = True) -> List[Dict[str, Any]]:
  """Each file's {'path' (below `data_dir`), 'bytes', 'sha256'}; with
  `verify`, a known file whose bytes differ is refused
  (`known_files.check`)."""
  out = []
  for path, key in zip(located.files, located.keys):
    found = (known_files.check(path, key) if verify
             else known_files.digest(path))
    out.append(dict(path=os.path.relpath(path, data_dir), **found))
  return out


def _check_finite(task: tasks_lib.Task, series: Series) -> None:
  """No infinite value: its past's forecast would be NaN, dropped by the
  metrics while counted as a forecast (NaN is missing, allowed)."""
  for k, values in enumerate(series.values):
    bad = np.flatnonzero(np.isinf(values))
    if len(bad):
      when = '' if series.timestamps is None else (
          f' ({str(series.timestamps[k][bad[0]])[:19]})')
      raise errors.DataError(
          f'Task {task.name}: {series.source}: series {series.ids[k]!r} '
          f'holds {len(bad)} infinite value(s), the first at step '
          f'{bad[0]}{when}: remove them or mark them missing (NaN).')


def read(task: tasks_lib.Task, data_dir: str, verify: bool = True,
         located: Optional[Located] = None) -> Union[Series, Missing]:
  """The series of `task` under `data_dir` (at `located`, default
  `locate`'s), or where they were looked for; `verify` checks known
  files' bytes first (`digests`)."""
  located = locate(task, data_dir) if located is None else located
  if isinstance(located, Missing):
    return located
  files = digests(located, data_dir, verify)
  if located.tsf:
    series = _tsf_series(located.source)
  else:
    frame = _read_table(located.files)
    series = (_gift_series if task.suite == 'gift_eval' else _fev_series)(
        task, frame, located.source)
  _check_finite(task, series)
  series.files = files
  return series
