"""The corpus format: record codec, manifest and index names, split rule.

A record is one series or chunk: a 4-byte magic, a little-endian uint32
header length, the JSON header (padded with spaces so that the values start
4-byte aligned) and the float32 values.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from ttm_jax import errors

FORMAT = 'ttm-jax corpus 1'
MANIFEST = 'corpus.json'
INDEX = 'index.npz'
MAGIC = b'TTMS'
INDEX_FIELDS = ('source', 'record', 'series', 'length', 'offset', 'size',
                'mean', 'std', 'token')
INDEX_TYPES = dict(source=np.int32, record=np.int64, series=np.int64,
                   length=np.int64, offset=np.int64, size=np.int64,
                   mean=np.float64, std=np.float64, token=np.int32)


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


Lengths = Union[int, np.ndarray]


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """Per-series split in time: the last `test_fraction` of the rows are test,
  the `valid_fraction` before them valid, the rest train."""
  valid_fraction: float = 0.1
  test_fraction: float = 0.1

  def borders(self, length: Lengths) -> Tuple[Lengths, Lengths]:
    """(end of train, end of valid) rows of a series of `length` rows, or
    arrays of them for an array of lengths."""
    lengths = np.asarray(length, np.int64)
    test = (lengths * self.test_fraction).astype(np.int64)
    valid = (lengths * self.valid_fraction).astype(np.int64)
    ends = lengths - valid - test, lengths - test
    return ends if lengths.ndim else (int(ends[0]), int(ends[1]))

  def rows(self, lengths: np.ndarray, split: str, context_length: int
           ) -> Tuple[np.ndarray, np.ndarray]:
    """Row ranges [start, end) of `split` in series of `lengths` rows (valid
    and test start one context early, as the benchmark protocol)."""
    train_end, valid_end = self.borders(lengths)
    if split == 'train':
      return np.zeros_like(lengths), train_end
    if split == 'valid':
      return np.maximum(train_end - context_length, 0), valid_end
    return np.maximum(valid_end - context_length, 0), lengths


def chunk_starts(length: int, chunk_length: int, max_window: int
                 ) -> List[int]:
  """Offsets of the chunks of a series: stride chunk_length - (max_window -
  1), so every window of up to max_window steps lies inside a chunk."""
  if length <= chunk_length:
    return [0]
  stride = chunk_length - (max_window - 1)
  return list(range(0, length - max_window + 1, stride))
