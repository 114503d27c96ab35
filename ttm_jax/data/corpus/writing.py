"""Writing a corpus: sources into shards, the index and the manifest, one
series in memory at a time."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import windows
from ttm_jax.data.corpus import format
from ttm_jax.data.corpus import provenance
from ttm_jax.data.corpus import sources
from ttm_jax.models import frequency
# In a staging folder: the process writing it (host, pid, start time).
OWNER = '.prepare_corpus_owner.json'
_STAGING = re.compile(r'^\..+\.partial-\d+$')


def _process(pid: int) -> Tuple[str, str]:
  """(state, start time in clock ticks since boot) of a process, from
  /proc; ('', '') where there is none. With the pid, the start time tells
  a process from a later one that reuses its pid; state 'Z' is a process
  that has ended (a zombie)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      fields = f.read().rsplit(')', 1)[1].split()
    return fields[0], fields[19]
  except (OSError, IndexError):
    return '', ''


def _stale(folder: str) -> str:
  """Why the staging folder `folder` is stale ('' if it is not, or not
  known to be): a prepare_corpus process of this host that no longer runs
  wrote it."""
  from ttm_jax.runs import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  try:
    with open(os.path.join(folder, OWNER)) as f:
      owner = json.load(f)
    host, pid, started = owner['host'], int(owner['pid']), owner['started']
  except (OSError, ValueError, KeyError, TypeError):
    return ''  # Not ours, or its owner has not written the file yet.
  if host != socket.gethostname():
    return ''  # Another host's process: its liveness is unknown here.
  state, now = _process(pid)
  alive = workdir_lib._alive(pid)  # pylint: disable=protected-access
  if not alive or state == 'Z':
    return f'pid {pid} no longer runs'
  if started and now not in ('', started):
    return f'pid {pid} is now another process'
  return ''


def remove_stale_staging(parent: str) -> List[str]:
  """Removes the staging folders (`.<name>.partial-<pid>`) in `parent`
  that killed prepare_corpus runs left: only folders holding the owner
  file (`OWNER`) of a process of this host that no longer runs. Returns
  the folders removed."""
  removed = []
  try:
    names = os.listdir(parent)
  except OSError:
    return removed
  for name in sorted(names):
    folder = os.path.join(parent, name)
    if not _STAGING.match(name) or not os.path.isdir(folder):
      continue
    why = _stale(folder)
    if why:
      shutil.rmtree(folder, ignore_errors=True)
      print(f'Removed {folder}, the staging folder of a prepare_corpus run '
            f'that was killed ({why}).', flush=True)
      removed.append(folder)
  return removed


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


class _Index:
  """Per-record rows, accumulated while writing (O(records))."""

  def __init__(self):
    self.rows = {name: [] for name in format.INDEX_FIELDS}

  def add(self, **row):
    for name in format.INDEX_FIELDS:
      self.rows[name].append(row[name])

  def save(self, path: str) -> None:
    np.savez(path, **{k: np.asarray(v, format.INDEX_TYPES[k])
                      for k, v in self.rows.items()})


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


def _train_scale(train: np.ndarray) -> Tuple[float, float]:
  """(mean, std) of the observed train values; std 1 when it is 0 (up to
  rounding) or undefined."""
  observed = train[~np.isnan(train)]
  mean = float(observed.mean()) if len(observed) else 0.0
  std = float(observed.std()) if len(observed) > 1 else 1.0
  std = std if std > 10 * np.finfo(np.float64).eps * max(abs(mean),
                                                         1.0) else 1.0
  return mean, std


def check_split(rule: format.SplitRule) -> None:
  """ConfigError unless each fraction is in [0, 1) and they sum below 1
  (the train split keeps some rows)."""
  for name in ('valid_fraction', 'test_fraction'):
    value = getattr(rule, name)
    complaint = checks.number(0.0, 1.0)(value)
    if complaint:
      raise errors.ConfigError(f'{name}={value!r} {complaint}.')
  total = rule.valid_fraction + rule.test_fraction
  if total >= 1:
    raise errors.ConfigError(
        f'valid_fraction={rule.valid_fraction} + test_fraction='
        f'{rule.test_fraction} = {total:g} leaves no training rows: the two '
        'must sum below 1.')


def check_drs(drs: Dict[str, Sequence[int]]) -> None:
  """ConfigError unless every DRS factor is an integer >= 2 of a known
  frequency."""
  for freq, factors in drs.items():
    for factor in factors:
      complaint = checks.integer(2)(factor)
      if complaint:
        raise errors.ConfigError(
            f'DRS factor {factor!r} of {freq!r} {complaint} (a factor of 1 '
            'copies the series; below 1 there is nothing to average).')
      try:
        windows.frequency_multiple(freq, int(factor))
      except Exception as e:  # pylint: disable=broad-except
        raise errors.ConfigError(f'DRS frequency {freq!r}: {e}') from None


class Preparer:
  """Converts sources into a corpus folder, one series in memory at a
  time. Everything is written to a staging folder beside `out` and moved
  into `out` by `close`; a failure (`abort`) leaves `out` as it was."""

  def __init__(self, out: str, rule: format.SplitRule = format.SplitRule(),
               drs: Optional[Dict[str, Sequence[int]]] = None,
               chunk_length: int = 16384, max_window: int = 2560,
               min_length: int = 2, shard_bytes: int = 64 << 20):
    if chunk_length < 2 * max_window:
      raise errors.ConfigError('chunk_length must be at least twice '
                               'max_window.')
    check_split(rule)
    check_drs(dict(drs or {}))
    from ttm_jax.runs import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    workdir_lib.check_writable(out, 'corpus folder')
    if os.path.exists(os.path.join(out, format.MANIFEST)):
      raise errors.DataError(f'{out} already holds a corpus '
                             f'({format.MANIFEST}); choose an empty folder.')
    self.final = os.path.abspath(out)
    self.removed = remove_stale_staging(os.path.dirname(self.final))
    out = os.path.join(os.path.dirname(self.final),
                       f'.{os.path.basename(self.final)}.partial-{os.getpid()}')
    shutil.rmtree(out, ignore_errors=True)  # This pid's: not a live one's.
    os.makedirs(out)
    with open(os.path.join(out, OWNER), 'w') as f:
      json.dump(dict(host=socket.gethostname(), pid=os.getpid(),
                     started=_process(os.getpid())[1]), f)
    self.out, self.rule, self.drs = out, rule, dict(drs or {})
    self.chunk_length, self.max_window = chunk_length, max_window
    self.min_length, self.shard_bytes = min_length, shard_bytes
    self.sources: Dict[str, _SourceState] = {}
    self.index = _Index()
    self.series_count = 0
    self.reports: List[Dict[str, Any]] = []  # One per input (provenance).
    # Per dataset (report name): [series written, values, series dropped].
    self.written: Dict[str, List[int]] = {}

  def _source(self, name: str, spec: str, freq: str,
              drs_of: Optional[str] = None) -> _SourceState:
    if name not in self.sources:
      folder = os.path.join(self.out, name.replace('@', '_at_'))
      self.sources[name] = _SourceState(
          spec, freq, ShardWriter(folder, name.replace('@', '_at_'),
                                  self.shard_bytes), drs_of)
    return self.sources[name]

  def add_spec(self, spec: str,
               skip: Optional[Dict[str, str]] = None) -> None:
    """Writes every series of a source spec (see `sources.read`; `skip`:
    its inputs that repeat an earlier source's, `sources.overlaps`); on a
    failure nothing stays written (`abort`)."""
    try:
      for name, series in sources.read(spec, self.reports, skip):
        self.add(name, spec, series)
    except BaseException:
      self.abort()
      raise

  def abort(self) -> None:
    """Removes the staging folder: `out` stays as it was."""
    for state in self.sources.values():
      if state.writer._writer is not None:  # pylint: disable=protected-access
        state.writer._writer.close()  # pylint: disable=protected-access
        state.writer._writer = None  # pylint: disable=protected-access
    shutil.rmtree(self.out, ignore_errors=True)

  def add(self, name: str, spec: str, series: sources.Series,
          drs_of: Optional[str] = None) -> None:
    """Writes one series (and its DRS copies)."""
    state = self._source(name, spec, series.freq, drs_of)
    values = np.asarray(series.values, np.float64)
    counts = self.written.setdefault(series.dataset, [0, 0, 0]) if (
        drs_of is None) else [0, 0, 0]
    if len(values) < self.min_length or np.isnan(values).all():
      state.dropped += 1
      counts[2] += 1
      return
    counts[0] += 1
    counts[1] += len(values)
    train_end, _ = self.rule.borders(len(values))
    mean, std = _train_scale(values[:train_end])
    token = frequency.frequency_token(series.freq, warn=False)
    for offset in format.chunk_starts(len(values), self.chunk_length,
                                      self.max_window):
      part = values[offset:offset + self.chunk_length]
      state.writer.write(format.encode(part, dict(
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

  def _add_drs(self, name: str, spec: str, series: sources.Series,
               values: np.ndarray) -> None:
    for factor in self.drs.get(series.freq, ()):
      freq = windows.frequency_multiple(series.freq, int(factor))
      copy = windows.downsample(values, int(factor), 'mean')
      self.add(f'{name}@{freq}', spec, sources.Series(
          copy, freq, series.series_id, series.start), drs_of=name)

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
    self.index.save(os.path.join(self.out, format.INDEX))
    for report in self.reports:
      if report.get('skipped'):  # Its data was counted at its first read.
        continue
      report['num_series'], report['num_values'], report['dropped'] = (
          self.written.get(report['name'], [0, 0, 0]))
    if not self.series_count:
      self.abort()
      raise errors.DataError(
          'No series to write: every series of the sources was dropped ('
          + '; '.join(f"{r['file'] or r['spec']}: {provenance.done(r)}"
                      for r in self.reports[:5])
          + '); see the sources\' min_length=, max_gap= and freq= options.')
    provenance.write(self.out, self.reports)
    manifest = dict(
        format=format.FORMAT, split=dataclasses.asdict(self.rule),
        split_rule=('per series in time: train = the first rows, then valid '
                    'and test fractions at the end; valid and test windows '
                    'start one context earlier; each series scaled by its '
                    'train mean/std'),
        chunk_length=self.chunk_length, max_window=self.max_window,
        drs=self.drs, num_series=self.series_count,
        num_values=int(sum(s.num_values for s in self.sources.values())),
        sources=entries, datasets=provenance.datasets(self.reports))
    with open(os.path.join(self.out, format.MANIFEST), 'w') as f:
      json.dump(manifest, f, indent=2)
    self._move_into_place()
    return manifest

  def _move_into_place(self) -> None:
    """Moves the staged corpus into `final`, the manifest last (a folder
    with a manifest is complete)."""
    os.makedirs(self.final, exist_ok=True)
    names = sorted((n for n in os.listdir(self.out) if n != OWNER),
                   key=lambda n: n == format.MANIFEST)
    taken = [n for n in names if os.path.exists(os.path.join(self.final, n))]
    if taken:
      self.abort()
      raise errors.DataError(f'{self.final} already holds {taken}: choose an '
                             'empty folder.')
    for name in names:
      os.rename(os.path.join(self.out, name), os.path.join(self.final, name))
    os.remove(os.path.join(self.out, OWNER))
    os.rmdir(self.out)
    self.out = self.final
