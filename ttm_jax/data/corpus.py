"""A pretraining corpus on disk: sharded ArrayRecord files of univariate
series, a manifest, and window sources that read only what they need.

Layout of a corpus folder:

  corpus.json              the manifest: format, split rule, chunking, and
                           per source its spec, frequency, counts, DRS
                           copies and shard files (with record counts)
  index.npz                one row per record (O(series), not O(windows)):
                           source, series length, chunk offset, train
                           mean/std, frequency token
  <source>/<name>-00000.array_record ...

A record is one series (or one chunk of a long one): `encode` writes a
4-byte magic, a length-prefixed JSON header (id, source, freq, start, chunk
offset, series length) and the float32 values. Long series are cut into
chunks of at most `chunk_length` values overlapping by `max_window - 1`,
and each window start belongs to exactly one chunk, so a window read is one
small record, and no window is read twice.

A window's position comes from arithmetic on per-record window counts
(`np.searchsorted` over their cumulative sums); nothing per window is ever
stored. Each series is split in time (train, then valid and test, each
later split starting a context early), and standard-scaled with the mean
and std of its train part (computed once, at conversion).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax.models import frequency

FORMAT = 'ttm-jax corpus 1'
MANIFEST = 'corpus.json'
INDEX = 'index.npz'
MAGIC = b'TTMS'
SPLITS = ('train', 'valid', 'test')


# ------------------------------------------------------------------ records
def encode(values: np.ndarray, header: Dict[str, Any]) -> bytes:
  """One record: magic, header length, JSON header, float32 values."""
  head = json.dumps(header, separators=(',', ':')).encode()
  head += b' ' * (-(8 + len(head)) % 4)  # Values start 4-byte aligned.
  return (MAGIC + struct.pack('<I', len(head)) + head
          + np.ascontiguousarray(values, '<f4').tobytes())


def decode(record: bytes, where: str = '') -> Tuple[np.ndarray, Dict]:
  """(float32 values, header) of a record; DataError if it is not one."""
  if record[:4] != MAGIC or len(record) < 8:
    raise errors.DataError(f'{where}: not a ttm-jax series record (bad '
                           'magic); the shard is corrupt or of another kind.')
  (size,) = struct.unpack_from('<I', record, 4)
  try:
    header = json.loads(record[8:8 + size])
  except ValueError as e:
    raise errors.DataError(f'{where}: corrupt record header ({e}).') from None
  values = np.frombuffer(record, '<f4', offset=8 + size)
  if len(values) != header.get('length', len(values)):
    raise errors.DataError(f'{where}: record holds {len(values)} values, its '
                           f'header says {header.get("length")}.')
  return values, header


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """Per-series split in time: the last `test_fraction` of the rows are test,
  the `valid_fraction` before them valid, the rest train."""
  valid_fraction: float = 0.1
  test_fraction: float = 0.1

  def borders(self, length: int) -> Tuple[int, int]:
    """(end of train, end of valid) rows."""
    test = int(length * self.test_fraction)
    valid = int(length * self.valid_fraction)
    return length - valid - test, length - test


def chunk_starts(length: int, chunk_length: int, max_window: int
                 ) -> List[int]:
  """Offsets of the chunks of a series: stride chunk_length - (max_window -
  1), so every window of up to max_window steps lies inside a chunk."""
  if length <= chunk_length:
    return [0]
  stride = chunk_length - (max_window - 1)
  return list(range(0, length - max_window + 1, stride))


# ------------------------------------------------------------------ writing
class ShardWriter:
  """Writes one source's records into shards of about `shard_bytes`."""

  def __init__(self, folder: str, name: str, shard_bytes: int = 64 << 20):
    os.makedirs(folder, exist_ok=True)
    self.folder, self.name, self.shard_bytes = folder, name, shard_bytes
    self.shards: List[Dict[str, Any]] = []
    self._writer, self._bytes, self._count, self._hash = None, 0, 0, None

  def _open(self):
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.folder,
                        f'{self.name}-{len(self.shards):05d}.array_record')
    self._path = path
    self._writer = array_record_module.ArrayRecordWriter(
        path + '.tmp', 'group_size:1')
    self._bytes, self._count = 0, 0
    self._hash = hashlib.sha256()

  def write(self, record: bytes) -> None:
    if self._writer is None:
      self._open()
    self._writer.write(record)
    self._hash.update(record)
    self._bytes += len(record)
    self._count += 1
    if self._bytes >= self.shard_bytes:
      self._close_shard()

  def _close_shard(self):
    self._writer.close()
    os.replace(self._path + '.tmp', self._path)
    self.shards.append(dict(file=os.path.relpath(self._path, os.path.dirname(
        self.folder)), num_records=self._count, bytes=self._bytes,
                            sha256=self._hash.hexdigest()))
    self._writer = None

  def close(self) -> List[Dict[str, Any]]:
    if self._writer is not None:
      self._close_shard()
    return self.shards


# ------------------------------------------------------------------ sources
@dataclasses.dataclass
class Series:
  """One univariate series from a source, before it is written."""
  values: np.ndarray
  freq: str
  series_id: str
  start: str = ''


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


def monash_series(pattern: str) -> Iterator[Tuple[str, Series]]:
  """(file stem, series) of every .tsf file matching `pattern`, one series
  in memory at a time; values parsed by NumPy's C parser ('?' -> NaN)."""
  import glob  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import pretrain  # pylint: disable=g-import-not-at-top
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
  from ttm_jax.data import synthetic  # pylint: disable=g-import-not-at-top
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


SOURCES = {'monash': lambda o: monash_series(o['glob']), 'csv': csv_series,
           'synthetic': synthetic_series}


# ---------------------------------------------------------------- prepare
INDEX_FIELDS = ('source', 'record', 'series', 'length', 'offset', 'size',
                'mean', 'std', 'token')


def _benchmark_files() -> Dict[str, str]:
  from ttm_jax.data import sources  # pylint: disable=g-import-not-at-top
  return {spec.file.lower(): name for name, spec in sources.REGISTRY.items()}


def _refuse_benchmark(kind: str, options: Dict[str, str]) -> None:
  """Evaluation data never enters pretraining: a source naming a registered
  benchmark's file is refused."""
  import glob  # pylint: disable=g-import-not-at-top
  paths = (sorted(glob.glob(options['glob'])) if kind == 'monash'
           else [options.get('path', '')])
  known = _benchmark_files()
  for path in paths:
    name = os.path.basename(path).lower()
    if name in known:
      raise errors.DataError(
          f'{path} is the registered benchmark {known[name]!r}: evaluation '
          'data must never be used for pretraining. Remove it from the '
          'sources.')


class _Index:
  """Per-record rows, accumulated while writing (O(records))."""

  def __init__(self):
    self.rows = {name: [] for name in INDEX_FIELDS}

  def add(self, **row):
    for name in INDEX_FIELDS:
      self.rows[name].append(row[name])

  def save(self, path: str) -> None:
    types = dict(source=np.int32, record=np.int64, series=np.int64,
                 length=np.int64, offset=np.int64, size=np.int64,
                 mean=np.float64, std=np.float64, token=np.int32)
    np.savez(path, **{k: np.asarray(v, types[k]) for k, v in self.rows.items()})


@dataclasses.dataclass
class _SourceState:
  spec: str
  freq: str
  writer: ShardWriter
  drs_of: Optional[str] = None
  num_series: int = 0
  num_values: int = 0
  num_records: int = 0
  dropped: int = 0


class Preparer:
  """Converts sources into a corpus folder, one series in memory at a
  time."""

  def __init__(self, out: str, rule: SplitRule = SplitRule(),
               drs: Optional[Dict[str, Sequence[int]]] = None,
               chunk_length: int = 16384, max_window: int = 2560,
               min_length: int = 2, shard_bytes: int = 64 << 20):
    if chunk_length < 2 * max_window:
      raise errors.ConfigError('chunk_length must be at least twice '
                               'max_window.')
    if os.path.exists(os.path.join(out, MANIFEST)):
      raise errors.DataError(f'{out} already holds a corpus ({MANIFEST}); '
                             'choose an empty folder.')
    os.makedirs(out, exist_ok=True)
    self.out, self.rule, self.drs = out, rule, dict(drs or {})
    self.chunk_length, self.max_window = chunk_length, max_window
    self.min_length, self.shard_bytes = min_length, shard_bytes
    self.sources: Dict[str, _SourceState] = {}
    self.index = _Index()
    self.series_count = 0

  def _source(self, name: str, spec: str, freq: str,
              drs_of: Optional[str] = None) -> _SourceState:
    if name not in self.sources:
      folder = os.path.join(self.out, name.replace('@', '_at_'))
      self.sources[name] = _SourceState(
          spec, freq, ShardWriter(folder, name.replace('@', '_at_'),
                                  self.shard_bytes), drs_of)
    return self.sources[name]

  def add_spec(self, spec: str) -> None:
    kind, options = parse_source(spec)
    _refuse_benchmark(kind, options)
    for name, series in SOURCES[kind](options):
      self.add(name, spec, series)

  def add(self, name: str, spec: str, series: Series,
          drs_of: Optional[str] = None) -> None:
    """Writes one series (and its DRS copies)."""
    state = self._source(name, spec, series.freq, drs_of)
    values = np.asarray(series.values, np.float64)
    if len(values) < self.min_length or np.isnan(values).all():
      state.dropped += 1
      return
    train_end, _ = self.rule.borders(len(values))
    train = values[:train_end]
    observed = train[~np.isnan(train)]
    mean = float(observed.mean()) if len(observed) else 0.0
    std = float(observed.std()) if len(observed) > 1 else 1.0
    std = std if std > 10 * np.finfo(np.float64).eps * max(abs(mean),
                                                           1.0) else 1.0
    token = frequency.frequency_token(series.freq, warn=False)
    for offset in chunk_starts(len(values), self.chunk_length,
                               self.max_window):
      part = values[offset:offset + self.chunk_length]
      state.writer.write(encode(part, dict(
          id=series.series_id, source=name, freq=series.freq,
          start=series.start, offset=offset, series_length=len(values),
          length=len(part))))
      self.index.add(source=list(self.sources).index(name),
                     record=state.num_records, series=self.series_count,
                     length=len(values), offset=offset, size=len(part),
                     mean=mean, std=std, token=token)
      state.num_records += 1
    state.num_series += 1
    state.num_values += len(values)
    self.series_count += 1
    if drs_of is None:
      self._add_drs(name, spec, series, values)

  def _add_drs(self, name: str, spec: str, series: Series,
               values: np.ndarray) -> None:
    from ttm_jax.data import windows  # pylint: disable=g-import-not-at-top
    for factor in self.drs.get(series.freq, ()):
      freq = windows.frequency_multiple(series.freq, int(factor))
      copy = windows.downsample(values, int(factor), 'mean')
      self.add(f'{name}@{freq}', spec, Series(copy, freq, series.series_id,
                                               series.start), drs_of=name)

  def close(self) -> Dict[str, Any]:
    """Closes the shards; writes index.npz and corpus.json (last, so a
    folder with a manifest is complete)."""
    entries = []
    for name, state in self.sources.items():
      shards = state.writer.close()
      entries.append(dict(
          name=name, spec=state.spec, freq=state.freq, drs_of=state.drs_of,
          num_series=state.num_series, num_values=state.num_values,
          num_records=state.num_records, dropped=state.dropped,
          shards=shards))
    self.index.save(os.path.join(self.out, INDEX))
    manifest = dict(
        format=FORMAT, split=dataclasses.asdict(self.rule),
        split_rule=('per series in time: train = the first rows, then valid '
                    'and test fractions at the end; valid and test windows '
                    'start one context earlier; each series scaled by its '
                    'train mean/std'),
        chunk_length=self.chunk_length, max_window=self.max_window,
        drs=self.drs, num_series=self.series_count,
        num_values=int(sum(s.num_values for s in self.sources.values())),
        sources=entries)
    with open(os.path.join(self.out, MANIFEST), 'w') as f:
      json.dump(manifest, f, indent=2)
    return manifest


# ----------------------------------------------------------------- reading
class Corpus:
  """A prepared corpus: manifest, per-record index and the records."""

  def __init__(self, folder: str):
    self.folder = folder
    path = os.path.join(folder, MANIFEST)
    if not os.path.exists(path):
      raise errors.DataError(
          f'{folder} is not a prepared corpus (no {MANIFEST}); make one with '
          'python -m experiments.prepare_corpus --out DIR --source ...')
    try:
      with open(path) as f:
        self.manifest = json.load(f)
    except ValueError as e:
      raise errors.DataError(f'{path} is not valid JSON ({e}).') from None
    if self.manifest.get('format') != FORMAT:
      raise errors.DataError(f'{path}: format {self.manifest.get("format")!r}'
                             f', expected {FORMAT!r}.')
    self.rule = SplitRule(**self.manifest['split'])
    self.names = [s['name'] for s in self.manifest['sources']]
    self._check_shards()
    with np.load(os.path.join(folder, INDEX)) as index:
      self.index = {k: index[k] for k in INDEX_FIELDS}
    self._check_index()
    self._data = None

  def is_drs_copy(self, name: str) -> bool:
    """Whether source `name` is a diverse-resolution copy of another."""
    return bool(self.manifest['sources'][self.names.index(name)]['drs_of'])

  def _paths(self) -> List[str]:
    return [os.path.join(self.folder, shard['file'])
            for source in self.manifest['sources'] for shard in source['shards']]

  def _check_shards(self) -> None:
    """Every shard exists, reads, and holds the records the manifest says."""
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    for source in self.manifest['sources']:
      for shard in source['shards']:
        path = os.path.join(self.folder, shard['file'])
        if not os.path.exists(path):
          raise errors.DataError(f'{path}: shard listed in the manifest is '
                                 'missing.')
        reader = array_record_module.ArrayRecordReader(path)
        count = reader.num_records() if reader.ok() else -1
        try:
          reader.close()
        except RuntimeError:
          count = -1
        if count < 0:
          raise errors.DataError(f'{path}: corrupt shard (ArrayRecord cannot '
                                 'read its index); re-prepare the corpus.')
        if count != shard['num_records']:
          raise errors.DataError(
              f'{path} holds {count} records but the manifest says '
              f'{shard["num_records"]}: the manifest does not match its '
              'shards.')

  def _check_index(self) -> None:
    counts = np.bincount(self.index['source'], minlength=len(self.names))
    for name, source, count in zip(self.names, self.manifest['sources'],
                                   counts):
      if count != source['num_records']:
        raise errors.DataError(
            f'{os.path.join(self.folder, INDEX)} lists {count} records of '
            f'{name!r}, the manifest {source["num_records"]}.')

  @property
  def data(self):
    """Random access to every record, in manifest order (opened lazily)."""
    if self._data is None:
      import grain  # pylint: disable=g-import-not-at-top
      self._data = grain.sources.ArrayRecordDataSource(self._paths())
    return self._data

  def record_ids(self) -> np.ndarray:
    """Global record number of each index row."""
    starts = np.cumsum([0] + [s['num_records']
                              for s in self.manifest['sources']])[:-1]
    return starts[self.index['source']] + self.index['record']

  def windows(self, split: str, context_length: int, prediction_length: int,
              sources: Optional[Sequence[str]] = None) -> 'CorpusWindows':
    """The `split` windows of the named sources (default all)."""
    return CorpusWindows(self, split, context_length, prediction_length,
                         sources)


def _split_rows(lengths: np.ndarray, rule: SplitRule, split: str,
                context_length: int) -> Tuple[np.ndarray, np.ndarray]:
  """Row ranges [start, end) of `split` in each series (valid and test start
  one context early, as the benchmark protocol)."""
  test = (lengths * rule.test_fraction).astype(np.int64)
  valid = (lengths * rule.valid_fraction).astype(np.int64)
  train_end, valid_end = lengths - valid - test, lengths - test
  if split == 'train':
    return np.zeros_like(lengths), train_end
  if split == 'valid':
    return np.maximum(train_end - context_length, 0), valid_end
  return np.maximum(valid_end - context_length, 0), lengths


class CorpusWindows:
  """Random access to one split's windows of a corpus (grain source).

  Window i lies in the record found by a search over cumulative per-record
  window counts; its start is the record's first owned start plus the
  remainder. Memory: a few arrays of one entry per record.
  """

  def __init__(self, corpus: Corpus, split: str, context_length: int,
               prediction_length: int,
               sources: Optional[Sequence[str]] = None):
    span = context_length + prediction_length
    if span > corpus.manifest['max_window']:
      raise errors.ConfigError(
          f'context {context_length} + horizon {prediction_length} exceeds '
          f'the corpus max_window {corpus.manifest["max_window"]}: prepare '
          'it with a larger --max_window.')
    index = corpus.index
    keep = np.ones(len(index['source']), bool)
    if sources is not None:
      unknown = sorted(set(sources) - set(corpus.names))
      if unknown:
        raise errors.DataError(f'No source {unknown} in {corpus.folder} '
                               f'(sources: {corpus.names}).')
      keep = np.isin(index['source'], [corpus.names.index(s)
                                       for s in sources])
    self.corpus, self.split = corpus, split
    self.context_length, self.prediction_length = context_length, prediction_length
    lo, hi = self._owned(index, keep, span)
    first, last = _split_rows(index['length'], corpus.rule, split,
                              context_length)
    lo, hi = np.maximum(lo, first), np.minimum(hi, last - span + 1)
    counts = np.where(keep, np.maximum(hi - lo, 0), 0)
    self.rows = np.flatnonzero(counts)
    self.first_start = lo[self.rows]
    self.cumulative = np.cumsum(counts[self.rows])
    self.records = corpus.record_ids()[self.rows]

  @staticmethod
  def _owned(index, keep, span) -> Tuple[np.ndarray, np.ndarray]:
    """Window starts each record owns (in series rows): from its offset to
    the next chunk's offset, or to the last start for a series' last
    chunk."""
    offset, length = index['offset'], index['length']
    series = index['series']
    next_offset = np.append(offset[1:], 0)
    same = np.append(series[1:] == series[:-1], False)
    hi = np.where(same, next_offset, length - span + 1)
    del keep
    return offset, hi

  def __len__(self) -> int:
    return int(self.cumulative[-1]) if len(self.cumulative) else 0

  def __getitem__(self, i: int) -> Dict[str, np.ndarray]:
    i = int(i)
    if not 0 <= i < len(self):
      raise IndexError(f'window {i} out of range [0, {len(self)})')
    k = int(np.searchsorted(self.cumulative, i, side='right'))
    row = self.rows[k]
    start = int(self.first_start[k]) + i - (int(self.cumulative[k - 1])
                                            if k else 0)
    index = self.corpus.index
    where = f'{self.corpus.folder} record {int(self.records[k])}'
    values, _ = decode(self.corpus.data[int(self.records[k])], where)
    local = start - int(index['offset'][row])
    span = self.context_length + self.prediction_length
    window = (values[local:local + span].astype(np.float64)
              - index['mean'][row]) / index['std'][row]
    observed = ~np.isnan(window)
    window = np.where(observed, window, 0.0).astype(np.float32)[:, None]
    observed = observed[:, None]
    c = self.context_length
    return {'past_values': window[:c], 'future_values': window[c:],
            'past_observed_mask': observed[:c],
            'future_observed_mask': observed[c:],
            'freq_token': np.asarray(index['token'][row], np.int32)}

  def source_of(self, i: int) -> str:
    k = int(np.searchsorted(self.cumulative, int(i), side='right'))
    return self.corpus.names[int(self.corpus.index['source'][self.rows[k]])]
