"""Reading a corpus: the manifest and index checked at open, and one
split's windows as a random-access (grain) source."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax.data.corpus import format


class Corpus:
  """A prepared corpus: manifest, per-record index and the records."""

  def __init__(self, folder: str):
    self.folder = folder
    self.manifest = _load_manifest(folder)
    self.rule = format.SplitRule(**self.manifest['split'])
    self.names = [s['name'] for s in self.manifest['sources']]
    self._check_shards()
    with np.load(os.path.join(folder, format.INDEX)) as index:
      self.index = {k: index[k] for k in format.INDEX_FIELDS}
    self._check_index()
    self._data = None
    # Global record number of each index row (records are in manifest
    # order, index rows in writing order).
    starts = np.cumsum([0] + [s['num_records']
                              for s in self.manifest['sources']])[:-1]
    self._records = starts[self.index['source']] + self.index['record']
    # Byte offset of each record's values, from its header, parsed on the
    # record's first read (-1: not read yet). One entry per record.
    self._values_at = np.full(len(self._records), -1, np.int64)

  def is_drs_copy(self, name: str) -> bool:
    """Whether source `name` is a diverse-resolution copy of another."""
    return bool(self.manifest['sources'][self.names.index(name)]['drs_of'])

  def _paths(self) -> List[str]:
    return [os.path.join(self.folder, shard['file'])
            for source in self.manifest['sources']
            for shard in source['shards']]

  def _check_shards(self) -> None:
    """Every shard exists, reads, and holds the records the manifest says."""
    for source in self.manifest['sources']:
      for shard in source['shards']:
        path = os.path.join(self.folder, shard['file'])
        if not os.path.exists(path):
          raise errors.DataError(f'{path}: shard listed in the manifest is '
                                 'missing.')
        count = _count_records(path)
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
            f'{os.path.join(self.folder, format.INDEX)} lists {count} records '
            f'of {name!r}, the manifest {source["num_records"]}.')

  @property
  def data(self):
    """Random access to every record, in manifest order (opened lazily)."""
    if self._data is None:
      import grain  # pylint: disable=g-import-not-at-top
      self._data = grain.sources.ArrayRecordDataSource(self._paths())
    return self._data

  def values(self, row: int) -> np.ndarray:
    """The float32 values of the record of index row `row`. Its header is
    checked and parsed on the record's first read only; later reads use the
    values' byte offset found then."""
    record = self.data[int(self._records[row])]
    at = int(self._values_at[row])
    if at < 0:
      where = f'{self.folder} record {int(self._records[row])}'
      values, _ = format.decode(record, where)
      at = len(record) - values.nbytes
      self._values_at[row] = at
    return np.frombuffer(record, '<f4', offset=at)

  def windows(self, split: str, context_length: int, prediction_length: int,
              sources: Optional[Sequence[str]] = None,
              short_history: float = 0.0, short_history_min: int = 1,
              seed: int = 0) -> 'CorpusWindows':
    """The `split` windows of the named sources (default all); see
    `CorpusWindows` for the short-history options."""
    return CorpusWindows(self, split, context_length, prediction_length,
                         sources, short_history, short_history_min, seed)


def _load_manifest(folder: str) -> Dict:
  path = os.path.join(folder, format.MANIFEST)
  if not os.path.exists(path):
    raise errors.DataError(
        f'{folder} is not a prepared corpus (no {format.MANIFEST}); make one '
        'with python -m experiments.prepare_corpus --out DIR --source ...')
  try:
    with open(path) as f:
      manifest = json.load(f)
  except ValueError as e:
    raise errors.DataError(f'{path} is not valid JSON ({e}).') from None
  if manifest.get('format') != format.FORMAT:
    raise errors.DataError(f'{path}: format {manifest.get("format")!r}, '
                           f'expected {format.FORMAT!r}.')
  return manifest


def _count_records(path: str) -> int:
  """Records of an ArrayRecord shard; -1 when its index cannot be read."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  reader = array_record_module.ArrayRecordReader(path)
  count = reader.num_records() if reader.ok() else -1
  try:
    reader.close()
  except RuntimeError:
    count = -1
  return count


def _owned_starts(index: Dict[str, np.ndarray], span: int
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """Window starts [lo, hi) each record owns (in series rows): from its
  offset to the next chunk's offset, or to the last start for a series'
  last chunk."""
  offset, length, series = index['offset'], index['length'], index['series']
  next_offset = np.append(offset[1:], 0)
  same = np.append(series[1:] == series[:-1], False)
  return offset, np.where(same, next_offset, length - span + 1)


class CorpusWindows:
  """Random access to one split's windows of a corpus (grain source).

  Window i lies in the record found by a search over cumulative per-record
  window counts; its start is the record's first owned start plus the
  remainder. Memory: a few arrays of one entry per record.

  Short histories (`short_history` > 0, for training): that fraction of
  the windows keeps only the last L steps of its context, L uniform in
  [`short_history_min`, context], the steps before them a raw 0 with
  `past_observed_mask` 0: the input a model gets for a series shorter than
  its context from the forecasting API and the benchmark runner (NaN
  padding -> 0, masked). Window i's draw depends only on (seed, i), so it
  is the same on every host and after a resume.
  """

  def __init__(self, corpus: Corpus, split: str, context_length: int,
               prediction_length: int,
               sources: Optional[Sequence[str]] = None,
               short_history: float = 0.0, short_history_min: int = 1,
               seed: int = 0):
    if not 0.0 <= short_history <= 1.0:
      raise errors.ConfigError(
          f'short_history={short_history}: a fraction of the windows, in '
          '[0, 1].')
    if not 1 <= short_history_min <= context_length:
      raise errors.ConfigError(
          f'short_history_min={short_history_min}: observed steps kept, in '
          f'[1, context {context_length}].')
    self.short_history, self.short_history_min = short_history, \
        short_history_min
    self.seed = seed
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
    self.context_length = context_length
    self.prediction_length = prediction_length
    lo, hi = _owned_starts(index, span)
    first, last = corpus.rule.rows(index['length'], split, context_length)
    lo, hi = np.maximum(lo, first), np.minimum(hi, last - span + 1)
    counts = np.where(keep, np.maximum(hi - lo, 0), 0)
    self.rows = np.flatnonzero(counts)
    self.first_start = lo[self.rows]
    self.cumulative = np.cumsum(counts[self.rows])

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
    local = start - int(index['offset'][row])
    span = self.context_length + self.prediction_length
    values = self.corpus.values(row)
    window = (values[local:local + span].astype(np.float64)
              - index['mean'][row]) / index['std'][row]
    observed = ~np.isnan(window)
    window = np.where(observed, window, 0.0).astype(np.float32)[:, None]
    observed = observed[:, None]
    c = self.context_length
    if self.short_history:
      rng = np.random.default_rng((self.seed, i))
      if rng.random() < self.short_history:
        pad = c - int(rng.integers(self.short_history_min, c + 1))
        window[:pad] = -index['mean'][row] / index['std'][row]  # A raw 0.
        observed[:pad] = False
    return {'past_values': window[:c], 'future_values': window[c:],
            'past_observed_mask': observed[:c],
            'future_observed_mask': observed[c:],
            'freq_token': np.asarray(index['token'][row], np.int32)}
