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
    options.update(_pairs(pairs, spec))
    return kind, options
  if kind == 'synthetic':
    return kind, _pairs(rest.split(','), spec)
  raise errors.DataError(
      f'Source {spec!r}: expected monash:GLOB, csv:PATH[,timestamp=COL,'
      'id=COL,value=COL,freq=F] or synthetic:num_series=N,length=L,seed=S.')


def _pairs(items: Sequence[str], spec: str) -> Dict[str, str]:
  out = {}
  for item in items:
    if not item:
      continue
    key, sep, value = item.partition('=')
    if not sep:
      raise errors.DataError(f'Source {spec!r}: {item!r} is not key=value.')
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
  rows = sum(1 for _ in open(path, 'rb')) - 1
  per_pass = max(1, (4 << 20) // max(rows, 1))  # ~4M values in memory.
  for first in range(0, len(columns), per_pass):
    names = columns[first:first + per_pass]
    block = pd.read_csv(path, usecols=names, dtype='float64')
    for name in names:
      yield stem, Series(block[name].to_numpy(np.float64), freq, str(name))


def _long_csv(path, stem, freq, options) -> Iterator[Tuple[str, Series]]:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  id_column, value_column = options['id'], options.get('value', 'value')
  seen, current, parts = set(), None, []
  for chunk in pd.read_csv(path, usecols=[id_column, value_column],
                           chunksize=1 << 20):
    for key, group in chunk.groupby(id_column, sort=False):
      if key != current:
        if current is not None:
          seen.add(current)
          yield stem, Series(np.concatenate(parts), freq, str(current))
        if key in seen:
          raise errors.DataError(
              f'{path}: rows of series {key!r} are not contiguous; sort the '
              f'file by {id_column!r} (a series is read as one block).')
        current, parts = key, []
      parts.append(group[value_column].to_numpy(np.float64))
  if current is not None:
    yield stem, Series(np.concatenate(parts), freq, str(current))


def synthetic_series(options: Dict[str, str]) -> Iterator[Tuple[str, Series]]:
  """The embedded generator (ttm_jax.data.synthetic), series by series."""
  try:
    count, length = int(options['num_series']), int(options['length'])
    seed = int(options.get('seed', 0))
  except (KeyError, ValueError):
    raise errors.DataError(
        'synthetic source needs num_series=N,length=L[,seed=S], got '
        f'{options}.') from None
  rng = np.random.default_rng(seed)
  freqs = list(synthetic.RESOLUTIONS)
  for i in range(count):
    freq = freqs[i % len(freqs)]
    series = synthetic.make_series(rng, length, freq,
                                   f'synthetic_{i:06d}_{freq}')
    yield f'synthetic_{freq}', Series(series.values, freq, series.name)
