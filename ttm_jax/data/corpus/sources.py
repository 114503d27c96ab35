"""Corpus sources: a spec ('kind:rest') read series by series.

  monash:GLOB                    .tsf files (the Monash archive's format)
  csv:PATH[,timestamp=COL,id=COL,value=COL,freq=F]
                                 a wide CSV (a series per column) or, with
                                 id=, a long one (rows of a series together)
  synthetic:num_series=N,length=L[,seed=S]
                                 the embedded generator

Evaluation data never enters pretraining: a source naming a registered
benchmark's file is refused.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Dict, Iterator, Sequence, Tuple

import numpy as np

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import pretrain
from ttm_jax.data import sources as benchmarks
from ttm_jax.data import synthetic


@dataclasses.dataclass
class Series:
  """One univariate series from a source, before it is written."""
  values: np.ndarray
  freq: str
  series_id: str
  start: str = ''


def read(spec: str) -> Iterator[Tuple[str, Series]]:
  """(source name, series) of every series of `spec`, one in memory at a
  time; DataError for a bad spec or a registered benchmark's file."""
  kind, options = parse_source(spec)
  refuse_benchmark(kind, options)
  if kind == 'monash':
    return monash_series(options['glob'])
  if kind == 'csv':
    return csv_series(options)
  return synthetic_series(options)


def parse_source(spec: str) -> Tuple[str, Dict[str, str]]:
  """'kind:rest' -> (kind, options). monash:GLOB; csv:PATH[,key=value...];
  synthetic:num_series=N,length=L,seed=S."""
  kind, _, rest = spec.partition(':')
  if kind == 'monash':
    return kind, {'glob': rest}
  if kind == 'csv':
    path, *pairs = rest.split(',')
    options = {'path': path}
    options.update(_pairs(pairs, spec, ('timestamp', 'id', 'value', 'freq')))
    return kind, options
  if kind == 'synthetic':
    options = _pairs(rest.split(','), spec, ('num_series', 'length', 'seed'))
    for key, low in (('num_series', 1), ('length', 1), ('seed', 0)):
      if key not in options and key != 'seed':
        raise errors.DataError(f'Source {spec!r}: {key}= is required '
                               '(synthetic:num_series=N,length=L[,seed=S]).')
      complaint = checks.integer_text(low)(options.get(key, 0))
      if complaint:
        raise errors.DataError(f'Source {spec!r}: {key}={options[key]!r} '
                               f'{complaint}.')
    return kind, options
  raise errors.DataError(
      f'Source {spec!r}: expected monash:GLOB, csv:PATH[,timestamp=COL,'
      'id=COL,value=COL,freq=F] or synthetic:num_series=N,length=L,seed=S.')


def _pairs(items: Sequence[str], spec: str,
           known: Sequence[str]) -> Dict[str, str]:
  out = {}
  for item in items:
    if not item:
      continue
    key, sep, value = item.partition('=')
    if not sep:
      raise errors.DataError(f'Source {spec!r}: {item!r} is not key=value.')
    if key not in known:
      raise errors.DataError(f'Source {spec!r}: unknown option {key!r} '
                             f'(known: {", ".join(known)}).')
    out[key] = value
  return out


def refuse_benchmark(kind: str, options: Dict[str, str]) -> None:
  """DataError if a source names a registered benchmark's file."""
  paths = (sorted(glob.glob(options['glob'])) if kind == 'monash'
           else [options.get('path', '')])
  known = {spec.file.lower(): name
           for name, spec in benchmarks.REGISTRY.items()}
  for path in paths:
    name = os.path.basename(path).lower()
    if name in known:
      raise errors.DataError(
          f'{path} is the registered benchmark {known[name]!r}: evaluation '
          'data must never be used for pretraining. Remove it from the '
          'sources.')


def monash_series(pattern: str) -> Iterator[Tuple[str, Series]]:
  """(file stem, series) of every .tsf file matching `pattern`, one series
  in memory at a time; values parsed by NumPy's C parser ('?' -> NaN)."""
  paths = sorted(glob.glob(pattern))
  if not paths:
    raise errors.DataError(f'Source monash:{pattern} matches no file.')
  for path in paths:
    stem = os.path.basename(path).split('.')[0]
    for values, attributes, freq in pretrain.iter_tsf(path):
      yield stem, Series(values, freq, attributes.get('series_name', ''),
                         attributes.get('start_timestamp', ''))


def _finite(values: np.ndarray, path: str, series: str,
            first_row: int = 1) -> np.ndarray:
  """`values`, or DataError naming the file, series and row of an inf."""
  bad = np.flatnonzero(np.isinf(values))
  if len(bad):
    raise errors.DataError(
        f'{path}: series {series!r} has {values[bad[0]]} at row '
        f'{int(bad[0]) + first_row}; values must be finite (leave a missing '
        'value empty).')
  return values


def _non_numeric(path: str, frame, column: str, what: str = 'column'):
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


def _timestamp_column(path: str, options: Dict[str, str],
                      header: Sequence[str]) -> None:
  """DataError when a wide CSV has a column of timestamps that the source
  does not name with timestamp=COL (it would be read as a series)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  head = pd.read_csv(path, nrows=5, dtype=str)
  for column in header:
    if column == options.get('timestamp') or not head[column].notna().any():
      continue
    first = head[column].dropna().iloc[0]
    try:
      float(first)
      continue
    except ValueError:
      pass
    try:
      pd.Timestamp(first)
    except (ValueError, TypeError):
      continue  # Not a timestamp: named with its row when read.
    raise errors.DataError(
        f'{path}: column {column!r} holds timestamps ({first!r}) but the '
        f'source has no timestamp option: write csv:{path},'
        f'timestamp={column}.')


def csv_series(options: Dict[str, str]) -> Iterator[Tuple[str, Series]]:
  """Series of a CSV: long (id= and value= columns, rows of a series
  contiguous) read in chunks; wide (a series per column) read a few columns
  at a time, so memory stays bounded whatever the file's size."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  path = options['path']
  if not os.path.exists(path):
    raise errors.DataError(f'Source csv:{path}: no such file.')
  stem = os.path.basename(path).split('.')[0]
  freq = options.get('freq', '')
  header = list(pd.read_csv(path, nrows=0).columns)
  for key in ('timestamp', 'id', 'value'):
    if key in options and options[key] not in header:
      raise errors.DataError(f'{path}: no column {options[key]!r} (columns: '
                             f'{header[:20]}).')
  if 'id' in options:
    yield from _long_csv(path, stem, freq, options)
    return
  columns = [c for c in header if c != options.get('timestamp')]
  _timestamp_column(path, options, columns)
  rows = sum(1 for _ in open(path, 'rb')) - 1
  per_pass = max(1, (4 << 20) // max(rows, 1))  # ~4M values in memory.
  for first in range(0, len(columns), per_pass):
    names = columns[first:first + per_pass]
    try:
      block = pd.read_csv(path, usecols=names, dtype='float64')
    except ValueError:
      block = pd.read_csv(path, usecols=names, dtype=str)
      for name in names:
        error = _non_numeric(path, block, name)
        if error:
          raise error from None
      raise
    for name in names:
      yield stem, Series(_finite(block[name].to_numpy(np.float64), path,
                                 str(name)), freq, str(name))


def _long_csv(path, stem, freq, options) -> Iterator[Tuple[str, Series]]:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  id_column, value_column = options['id'], options.get('value', 'value')
  seen, current, parts, start = set(), None, [], 1
  for chunk in pd.read_csv(path, usecols=[id_column, value_column],
                           chunksize=1 << 20):
    missing = chunk.index[chunk[id_column].isna().to_numpy()]
    if len(missing):
      rows = [int(r) + 1 for r in missing[:5]]
      raise errors.DataError(
          f'{path}: {len(missing)} row(s) have no {id_column!r} (rows '
          f'{rows}{", ..." if len(missing) > 5 else ""}); every row needs '
          'the id of its series.')
    error = _non_numeric(path, chunk, value_column)
    if error:
      raise error
    for key, group in chunk.groupby(id_column, sort=False):
      if key != current:
        if current is not None:
          seen.add(current)
          yield stem, Series(_finite(np.concatenate(parts), path,
                                     str(current), start), freq, str(current))
        if key in seen:
          raise errors.DataError(
              f'{path}: rows of series {key!r} are not contiguous; sort the '
              f'file by {id_column!r} (a series is read as one block).')
        current, parts, start = key, [], int(group.index[0]) + 1
      parts.append(pd.to_numeric(group[value_column]).to_numpy(np.float64))
  if current is not None:
    yield stem, Series(_finite(np.concatenate(parts), path, str(current),
                               start), freq, str(current))


def synthetic_series(options: Dict[str, str]) -> Iterator[Tuple[str, Series]]:
  """The embedded generator (ttm_jax.data.synthetic), series by series."""
  count, length = int(options['num_series']), int(options['length'])
  seed = int(options.get('seed', 0))  # Checked by parse_source.
  rng = np.random.default_rng(seed)
  freqs = list(synthetic.RESOLUTIONS)
  for i in range(count):
    freq = freqs[i % len(freqs)]
    series = synthetic.make_series(rng, length, freq,
                                   f'synthetic_{i:06d}_{freq}')
    yield f'synthetic_{freq}', Series(series.values, freq, series.name)
