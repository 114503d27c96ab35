"""Reads a PyTorch `pytorch_model.bin` state dict without torch and without
unpickling arbitrary objects.

A torch zip checkpoint is a pickle (`*/data.pkl`) that references raw tensor
storages (`*/data/<key>`). The unpickler here resolves only the handful of
globals a plain state dict needs (tensor rebuild functions, storage types,
OrderedDict); anything else is refused with an error, so a malicious file
cannot run code. Legacy (pre-1.6, non-zip) files are refused.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Dict

import numpy as np

_STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}


class UnsafeCheckpointError(ValueError):
  """The pickle needs objects beyond a plain tensor state dict."""


class _StorageType:

  def __init__(self, name):
    self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused
  if not size:
    return np.array(storage[offset], copy=True)
  itemsize = storage.dtype.itemsize
  return np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size),
      strides=tuple(s * itemsize for s in stride)).copy()


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
  del requires_grad, backward_hooks, unused
  return data


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, archive, prefix):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix

  def find_class(self, module, name):
    if module == 'collections' and name == 'OrderedDict':
      return collections.OrderedDict
    if module == 'torch._utils' and name == '_rebuild_tensor_v2':
      return _rebuild_tensor
    if module == 'torch._utils' and name == '_rebuild_parameter':
      return _rebuild_parameter
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafeCheckpointError(
        f'pytorch_model.bin needs {module}.{name}, which a plain tensor '
        'state dict does not: refusing to unpickle it. Convert it to '
        'model.safetensors with the reference code instead.')

  def persistent_load(self, pid):
    kind, storage_type, key, _, numel = pid
    if kind != 'storage' or not isinstance(storage_type, _StorageType):
      raise UnsafeCheckpointError(f'Unexpected persistent id {pid!r}.')
    raw = self._archive.read(f'{self._prefix}/data/{key}')
    return np.frombuffer(raw, dtype=storage_type.dtype, count=numel)


def load_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Tensors of a torch zip checkpoint as NumPy arrays, by key."""
  if not zipfile.is_zipfile(path):
    raise UnsafeCheckpointError(
        f'{path} is a legacy (non-zip) torch file, which cannot be read '
        'without unpickling arbitrary objects; convert it to '
        'model.safetensors.')
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
    if len(pickles) != 1:
      raise UnsafeCheckpointError(f'{path}: expected one data.pkl.')
    prefix = pickles[0][:-len('/data.pkl')]
    with archive.open(pickles[0]) as f:
      state = _Unpickler(f, archive, prefix).load()
  if not isinstance(state, dict):
    raise UnsafeCheckpointError(f'{path} does not hold a state dict.')
  return {k: np.asarray(v) for k, v in state.items()}
