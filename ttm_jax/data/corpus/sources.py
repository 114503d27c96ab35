"""Corpus sources: a spec ('kind:rest') read series by series.

  monash:GLOB            .tsf files (the Monash archive's format)
  csv:PATH[,key=value...]
                         CSV files (PATH may be a glob). Without
                         timestamp=, rows are consecutive steps: wide (a
                         series per column) or, with id=COL,value=COL, long
                         (the rows of a series together). With
                         timestamp=COL[+COL...], the times place the rows
                         on a regular grid (`timed.py`: time zones,
                         daylight-saving repeats, unsorted rows, gaps, text
                         columns, long files with several id columns, US
                         or spreadsheet dates).
  synthetic:num_series=N,length=L[,seed=S]
                         the embedded generator (ttm_jax.data.synthetic)
  synthetic-kernels:num_series=N,length=L[,freq=F[+F...]][,seed=S]
                   [,max_kernels=J][,name=NAME]
                         KernelSynth-style Gaussian-process series
                         (ttm_jax.data.kernel_synth); series i takes the
                         i-th frequency of the list, cyclically

CSV options: timestamp, id, value, exclude (columns; several joined by
'+'), freq (given, else inferred), date_format (strftime, excel or unix),
tz (naive times are local times of this zone), duplicates (mean, first or
last), max_gap (longest gap filled, in steps), min_length (shortest piece
kept), name (the corpus source's name; default the file's stem).

Each file (or generator spec) gets a report (`provenance.py`) of what was
read and done. Evaluation data never enters pretraining: a source naming a
registered benchmark's file is refused.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import zoneinfo
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import kernel_synth
from ttm_jax.data import pretrain
from ttm_jax.data import sources as benchmarks
from ttm_jax.data import synthetic
from ttm_jax.data.corpus import grid
from ttm_jax.data.corpus import provenance
from ttm_jax.data.corpus import timed

CSV_OPTIONS = ('timestamp', 'id', 'value', 'exclude', 'freq', 'date_format',
               'tz', 'duplicates', 'max_gap', 'min_length', 'name')
TIMED_OPTIONS = ('date_format', 'tz', 'duplicates', 'max_gap', 'min_length')
KERNEL_OPTIONS = ('num_series', 'length', 'freq', 'seed', 'max_kernels',
                  'name')
USAGE = ('monash:GLOB, csv:PATH[,timestamp=COL,id=COL,value=COL,freq=F,...], '
         'synthetic:num_series=N,length=L,seed=S or synthetic-kernels:'
         'num_series=N,length=L,freq=F,seed=S')
Reports = Optional[List[Dict[str, Any]]]
# What prepare_corpus does with sources that overlap (`overlaps`).
OVERLAPS = ('error', 'once')


@dataclasses.dataclass
class Series:
  """One univariate series from a source, before it is written."""
  values: np.ndarray
  freq: str
  series_id: str
  start: str = ''
  dataset: str = ''  # The name of its input's report.


def read(spec: str, reports: Reports = None,
         skip: Optional[Dict[str, str]] = None
         ) -> Iterator[Tuple[str, Series]]:
  """(source name, series) of every series of `spec`, one in memory at a
  time; appends a report per input file to `reports`. DataError for a bad
  spec or a registered benchmark's file. `skip`: {path: why} of files not
  to read, as their data is read by an earlier source (`overlaps`; ''
  for a whole generator), each reported as skipped."""
  kind, options = parse_source(spec)
  refuse_benchmark(kind, options)
  reports = [] if reports is None else reports
  skip = skip or {}
  if '' in skip:
    _skipped(kind, spec, '', skip[''], reports)
    return iter(())
  if kind == 'monash':
    return monash_series(options['glob'], spec, reports, skip)
  if kind == 'csv':
    return csv_files(options, spec, reports, skip)
  if kind == 'synthetic-kernels':
    return kernel_series(options, spec, reports)
  return synthetic_series(options, spec, reports)


def _skipped(kind: str, spec: str, path: str, why: str,
             reports: List) -> None:
  """The report of an input not read: its data is an earlier source's."""
  report = provenance.file_report(kind, spec, provenance.stem(path), path,
                                  name='' if path else f'skipped/{spec}')
  report['skipped'] = True
  report['notes'].append(f'skipped (--overlaps=once): {why}')
  reports.append(report)


def check(spec: str) -> None:
  """Every check that does not need a whole file, before anything is
  written: the spec, benchmark files, files found, and for timed CSVs the
  columns, times and a numeric column in the first rows."""
  kind, options = parse_source(spec)
  refuse_benchmark(kind, options)
  if kind == 'monash':
    _paths(options['glob'], spec)
  elif kind == 'csv':
    for path in _paths(options['path'], spec):
      with timed.reading(path):
        if options.get('timestamp'):
          timed.check(path, options)
          continue
        header = _untimed_columns(path, options)
        if 'id' not in options:
          _timestamp_column(path, options,
                            timed.value_columns(header, options)[0])


@dataclasses.dataclass
class _Input:
  """One input of a source: a file (and the columns read from it; None:
  all of it) or a generator (its options but name= and num_series=)."""
  index: int  # The source's place in the list.
  spec: str
  path: str = ''
  columns: Optional[frozenset] = None
  generator: Tuple = ()
  num_series: int = 0


def _inputs(index: int, spec: str) -> List[_Input]:
  kind, options = parse_source(spec)
  if kind in ('synthetic', 'synthetic-kernels'):
    key = (kind,) + tuple(sorted((k, v) for k, v in options.items()
                                 if k not in ('name', 'num_series')))
    return [_Input(index, spec, generator=key,
                   num_series=int(options['num_series']))]
  if kind == 'monash':
    return [_Input(index, spec, path) for path in
            _paths(options['glob'], spec)]
  out = []
  for path in _paths(options['path'], spec):
    if 'id' in options and not options.get('timestamp'):
      columns = [options.get('value', 'value')]
    else:
      columns = timed.value_columns(timed.header_of(path), options)[0]
    out.append(_Input(index, spec, path, frozenset(map(str, columns))))
  return out


def _same_file(a: _Input, b: _Input, digests: Dict[str, str]
               ) -> Optional[str]:
  """How two inputs of equal size are the same file: '' (the same path),
  'the same file as A' (a link, another spelling), 'the same content as
  A'; None if they are not."""
  if os.path.samefile(a.path, b.path):
    return ('' if os.path.abspath(a.path) == os.path.abspath(b.path) else
            f'the same file as {a.path}')
  for path in (a.path, b.path):  # Only files of equal size are hashed.
    if path not in digests:
      digests[path] = provenance.sha256(path)
  if digests[a.path] == digests[b.path]:
    return (f'the same content as {a.path} (sha256 '
            f'{digests[a.path][:12]}...)')
  return None


def _twice(first: _Input, second: _Input, what: str) -> str:
  """'Sources A and B both read X' (or 'Source A reads X')."""
  if first.index == second.index:
    return f'Source {first.spec!r} reads {what}'
  return f'Sources {first.spec!r} and {second.spec!r} both read {what}'


def overlaps(specs: Sequence[str], mode: str = 'error'
             ) -> Dict[int, Dict[str, str]]:
  """Inputs that two sources share (a file given twice, a file and a glob
  holding it, a link to it, the same content under another name, the same
  generator and seed), found by resolved path and content hash.

  Args:
    specs: the source specs, in the order they are written.
    mode: 'error' (an overlap is a DataError naming both sources) or
      'once' (a later input that only repeats data already read is
      skipped; one that repeats part of it is still an error).

  Returns:
    {source index: {path of a file to skip ('' for a whole generator):
    what it repeats}}; empty with 'error'.
  """
  if mode not in OVERLAPS:
    raise errors.ConfigError(f'overlaps={mode!r}: expected one of '
                             f'{", ".join(OVERLAPS)}.')
  found = [item for index, spec in enumerate(specs)
           for item in _inputs(index, spec)]
  skip: Dict[int, Dict[str, str]] = {}
  digests: Dict[str, str] = {}
  # Only inputs of the same generator, or files of the same size, can hold
  # the same data: each input is compared with those earlier ones.
  groups = [item.generator or os.path.getsize(item.path) for item in found]
  for k, later in enumerate(found):
    for earlier in [e for e, g in zip(found[:k], groups) if g == groups[k]]:
      if later.generator:
        if mode == 'once' and later.num_series <= earlier.num_series:
          skip.setdefault(later.index, {})[''] = (
              f'the same series as {earlier.spec!r}')
          break
        count = min(later.num_series, earlier.num_series)
        raise errors.DataError(
            _twice(earlier, later, 'the same generator with the same seed')
            + f': its first {count} series would be counted twice. Give '
            'another seed= (or, with --overlaps=once, a first source with '
            'at least as many series).')
      how = _same_file(earlier, later, digests)
      if how is None:
        continue
      if earlier.index in skip and earlier.path in skip[earlier.index]:
        continue  # Skipped itself: its data is counted at its first read.
      read = (None if earlier.columns is None or later.columns is None else
              earlier.columns & later.columns)
      if read is not None and not read:
        continue  # Other columns of the same file.
      what = later.path + (f', {how}' if how else '')
      columns = '' if read is None else (
          f', columns {", ".join(sorted(read)[:5])}'
          f'{", ..." if len(read) > 5 else ""}')
      if mode == 'once' and (read is None or read == later.columns):
        skip.setdefault(later.index, {})[later.path] = (
            f'{how or "the same file"} read by {earlier.spec!r}')
        break
      if mode == 'once':
        raise errors.DataError(
            _twice(earlier, later, what) + f'{columns} (and other columns '
            'too): name the columns that are new with value= or leave the '
            'others out with exclude=.')
      raise errors.DataError(
          _twice(earlier, later, what) + f'{columns}: its series would be '
          'counted twice. Give each file once, or --overlaps=once to read '
          'it once.')
  return skip


def parse_source(spec: str) -> Tuple[str, Dict[str, str]]:
  """'kind:rest' -> (kind, options), every option checked (see the module
  docstring)."""
  kind, _, rest = spec.partition(':')
  if kind == 'monash':
    return kind, {'glob': rest}
  if kind == 'csv':
    path, *pairs = rest.split(',')
    options = {'path': path}
    options.update(_pairs(pairs, spec, CSV_OPTIONS))
    _check_csv(spec, options)
    return kind, options
  if kind == 'synthetic':
    options = _pairs(rest.split(','), spec, ('num_series', 'length', 'seed'))
    _integers(spec, options, (('num_series', 1, True), ('length', 1, True),
                              ('seed', 0, False)))
    _check_size(spec, options)
    return kind, options
  if kind == 'synthetic-kernels':
    options = _pairs(rest.split(','), spec, KERNEL_OPTIONS)
    _integers(spec, options, (('num_series', 1, True), ('length', 2, True),
                              ('seed', 0, False), ('max_kernels', 1, False)))
    _check_size(spec, options)
    for freq in timed.columns(options.get('freq', 'h')):
      try:
        kernel_synth.canonical(freq)
      except KeyError:
        raise errors.DataError(
            f'Source {spec!r}: freq={freq!r} has no periods; known: '
            f'{", ".join(kernel_synth.PERIODS)}.') from None
    return kind, options
  raise errors.DataError(f'Source {spec!r}: expected {USAGE}.')


def _check_size(spec: str, options: Dict[str, str]) -> None:
  """DataError naming a generator's length (or max_kernels) past what a
  series may ask for (`kernel_synth.check_request`: the embedded generator
  makes its series whole in memory too), before any work."""
  try:
    kernel_synth.check_request(int(options['length']), int(options.get(
        'max_kernels', kernel_synth.MAX_KERNELS)))
  except errors.DataError as e:
    raise errors.DataError(f'Source {spec!r}: {e}') from None


def _integers(spec: str, options: Dict[str, str],
              rules: Sequence[Tuple[str, int, bool]]) -> None:
  """DataError for a required option missing or an integer option below
  its low bound."""
  usage = spec.partition(':')[0] + ':num_series=N,length=L[,seed=S]'
  for key, low, required in rules:
    if key not in options:
      if required:
        raise errors.DataError(f'Source {spec!r}: {key}= is required '
                               f'({usage}).')
      continue
    complaint = checks.integer_text(low)(options[key])
    if complaint:
      raise errors.DataError(f'Source {spec!r}: {key}={options[key]!r} '
                             f'{complaint}.')


def _check_csv(spec: str, options: Dict[str, str]) -> None:
  """DataError for a CSV option of the wrong form."""
  def fail(text):
    raise errors.DataError(f'Source {spec!r}: {text}')
  if not options.get('timestamp'):
    given = [k for k in TIMED_OPTIONS if k in options]
    if given:
      fail(f'{", ".join(given)}= need timestamp=COL (the time column).')
    if 'id' in options and ('+' in options['id'] or '+' in options.get(
        'value', '')):
      fail('several id or value columns of a long file need timestamp=COL.')
  _integers(spec, options, (('max_gap', 0, False), ('min_length', 2, False)))
  if options.get('duplicates', 'mean') not in grid.DUPLICATES:
    fail(f"duplicates={options['duplicates']!r}: expected one of "
         f'{", ".join(grid.DUPLICATES)}.')
  if 'freq' in options and grid.parse_step(options['freq']) is None:
    fail(f"freq={options['freq']!r} is not a pandas frequency (e.g. 5min, "
         '30min, h, D, W, MS).')
  fmt = options.get('date_format', '')
  if fmt and fmt not in ('excel', 'unix') and '%' not in fmt:
    fail(f'date_format={fmt!r}: expected a strftime format (e.g. '
         '%m/%d/%y %H:%M), excel or unix.')
  if options.get('tz'):
    try:
      zoneinfo.ZoneInfo(options['tz'])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
      fail(f"tz={options['tz']!r} is not a time zone (e.g. "
           'America/New_York, Australia/Melbourne).')


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


def _paths(pattern: str, spec: str) -> List[str]:
  """The files a source's path or glob names; DataError if none."""
  paths = sorted(glob.glob(pattern))
  if not paths:
    kind = spec.partition(':')[0]
    raise errors.DataError(
        f'Source {kind}:{pattern} matches no file.' if glob.has_magic(
            pattern) else f'Source {kind}:{pattern}: no such file.')
  return paths


def refuse_benchmark(kind: str, options: Dict[str, str]) -> None:
  """DataError if a source names a registered benchmark's file."""
  pattern = options.get('glob', options.get('path', ''))
  paths = sorted(glob.glob(pattern)) or [pattern]
  known = {spec.file.lower(): name
           for name, spec in benchmarks.REGISTRY.items()}
  for path in paths:
    name = os.path.basename(path).lower()
    if name in known:
      raise errors.DataError(
          f'{path} is the registered benchmark {known[name]!r}: evaluation '
          'data must never be used for pretraining. Remove it from the '
          'sources.')


def monash_series(pattern: str, spec: str = '', reports: Reports = None,
                  skip: Optional[Dict[str, str]] = None
                  ) -> Iterator[Tuple[str, Series]]:
  """(file stem, series) of every .tsf file matching `pattern` but `skip`,
  one series in memory at a time; values parsed by NumPy's C parser ('?'
  -> NaN)."""
  reports, skip = [] if reports is None else reports, skip or {}
  for path in _paths(pattern, f'monash:{pattern}'):
    if path in skip:
      _skipped('monash', spec, path, skip[path], reports)
      continue
    source = provenance.stem(path)
    report = provenance.file_report('monash', spec, source, path)
    reports.append(report)
    for values, attributes, freq in pretrain.iter_tsf(path):
      report['freq'] = freq
      report['series_read'] += 1
      yield source, Series(values, freq, attributes.get('series_name', ''),
                           attributes.get('start_timestamp', ''),
                           report['name'])


def _timestamp_column(path: str, options: Dict[str, str],
                      header: Sequence[str]) -> None:
  """DataError when a wide CSV has a column of timestamps that the source
  does not name with timestamp=COL (it would be read as a series)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  head = pd.read_csv(path, nrows=5, dtype=str)
  for column in header:
    if not head[column].notna().any():
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


def _untimed_columns(path: str, options: Dict[str, str]) -> List[str]:
  """The header of an untimed CSV, its option columns checked."""
  header = timed.header_of(path)
  timed.check_columns(path, header, options)
  return header


def csv_files(options: Dict[str, str], spec: str, reports: Reports = None,
              skip: Optional[Dict[str, str]] = None
              ) -> Iterator[Tuple[str, Series]]:
  """(source name, series) of every file of a CSV source but `skip`, one
  series in memory at a time, with a report per file."""
  reports, skip = [] if reports is None else reports, skip or {}
  for path in _paths(options['path'], spec):
    if path in skip:
      _skipped('csv', spec, path, skip[path], reports)
      continue
    with timed.reading(path):
      yield from _csv_file(path, options, spec, reports)


def _csv_file(path: str, options: Dict[str, str], spec: str,
              reports: List) -> Iterator[Tuple[str, Series]]:
  source = options.get('name') or provenance.stem(path)
  report = provenance.file_report('csv', spec, source, path)
  reports.append(report)
  if options.get('timestamp'):
    report.update(timed.new_report(), duplicates=options.get(
        'duplicates', 'mean'), max_gap=int(options.get(
            'max_gap', grid.MAX_GAP)), min_length=int(options.get(
                'min_length', grid.MIN_LENGTH)))
    for series_id, values, start in timed.read(path, options, report):
      report['series_read'] += 1
      yield source, Series(values, report['freq'], series_id, start,
                           report['name'])
  else:
    report['freq'] = options.get('freq', '')
    report['notes'].append('no timestamp=: rows read as consecutive steps')
    for series in csv_series(dict(options, path=path)):
      report['series_read'] += 1
      series.dataset = report['name']
      yield source, series


def csv_series(options: Dict[str, str]) -> Iterator[Series]:
  """Series of an untimed CSV: long (id= and value= columns, rows of a
  series contiguous) read in chunks; wide (a series per column) read a few
  columns at a time, so memory stays bounded whatever the file's size."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  path = options['path']
  header = _untimed_columns(path, options)
  freq = options.get('freq', '')
  if 'id' in options:
    yield from _long_csv(path, freq, options)
    return
  columns, _ = timed.value_columns(header, options)
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
        error = timed.non_numeric(path, block, name)
        if error:
          raise error from None
      raise
    for name in names:
      yield Series(timed.finite(block[name].to_numpy(np.float64), path,
                                str(name)), freq, str(name))


def _long_csv(path, freq, options) -> Iterator[Series]:
  import pandas as pd  # pylint: disable=g-import-not-at-top
  id_column, value_column = options['id'], options.get('value', 'value')
  seen, current, parts, start = set(), None, [], 0
  for chunk in pd.read_csv(path, usecols=[id_column, value_column],
                           chunksize=1 << 20):
    missing = chunk.index[chunk[id_column].isna().to_numpy()]
    if len(missing):
      rows = [int(r) + 1 for r in missing[:5]]
      raise errors.DataError(
          f'{path}: {len(missing)} row(s) have no {id_column!r} (rows '
          f'{rows}{", ..." if len(missing) > 5 else ""}); every row needs '
          'the id of its series.')
    error = timed.non_numeric(path, chunk, value_column)
    if error:
      raise error
    for key, group in chunk.groupby(id_column, sort=False):
      if key != current:
        if current is not None:
          seen.add(current)
          yield _long_series(path, parts, current, start, freq)
        if key in seen:
          raise errors.DataError(
              f'{path}: rows of series {key!r} are not contiguous; sort the '
              f'file by {id_column!r} (a series is read as one block), or '
              'give timestamp=COL.')
        current, parts, start = key, [], int(group.index[0])
      parts.append(pd.to_numeric(group[value_column]).to_numpy(np.float64))
  if current is not None:
    yield _long_series(path, parts, current, start, freq)


def _long_series(path, parts, key, start, freq) -> Series:
  values = np.concatenate(parts)
  rows = start + np.arange(len(values))
  return Series(timed.finite(values, path, str(key), rows), freq, str(key))


def synthetic_series(options: Dict[str, str], spec: str = '',
                     reports: Reports = None) -> Iterator[Tuple[str, Series]]:
  """The embedded generator (ttm_jax.data.synthetic), series by series."""
  count, length = int(options['num_series']), int(options['length'])
  seed = int(options.get('seed', 0))  # Checked by parse_source.
  freqs = list(synthetic.RESOLUTIONS)
  report = provenance.file_report(
      'synthetic', spec, '+'.join(f'synthetic_{f}' for f in freqs[:count]),
      name=f'synthetic/embedded_seed{seed}')
  report['notes'].append('ttm_jax.data.synthetic: trend, seasonalities, AR '
                         'noise, regime changes')
  (reports if reports is not None else []).append(report)
  rng = np.random.default_rng(seed)
  for i in range(count):
    freq = freqs[i % len(freqs)]
    series = synthetic.make_series(rng, length, freq,
                                   f'synthetic_{i:06d}_{freq}')
    report['series_read'] += 1
    yield f'synthetic_{freq}', Series(series.values, freq, series.name,
                                      dataset=report['name'])


def kernel_series(options: Dict[str, str], spec: str = '',
                  reports: Reports = None) -> Iterator[Tuple[str, Series]]:
  """KernelSynth-style series (ttm_jax.data.kernel_synth), one at a time;
  series i depends only on (seed, i) and its frequency and length."""
  count, length = int(options['num_series']), int(options['length'])
  seed = int(options.get('seed', 0))  # Checked by parse_source.
  max_kernels = int(options.get('max_kernels', kernel_synth.MAX_KERNELS))
  name = options.get('name', 'kernelsynth')
  freqs = [kernel_synth.canonical(f)
           for f in timed.columns(options.get('freq', 'h'))]
  report = provenance.file_report(
      'synthetic-kernels', spec, '+'.join(
          dict.fromkeys(f'{name}_{f}' for f in freqs[:count])),
      name=f'synthetic/{name}')
  report.update(freq='+'.join(freqs), periods={
      f: list(kernel_synth.PERIODS[f]) for f in freqs})
  (reports if reports is not None else []).append(report)
  for i in range(count):
    freq = freqs[i % len(freqs)]
    values, text = kernel_synth.make_series(seed, i, length, freq,
                                            max_kernels)
    report['series_read'] += 1
    yield f'{name}_{freq}', Series(values, freq, f'{name}_{i:06d} {text}',
                                   dataset=report['name'])
