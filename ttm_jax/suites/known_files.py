"""Data files by their bytes: each file's size and sha256 (a benchmark
record names the files it was made from), and the suites' files whose
bytes are known (`files/known_files.json`: the Monash `.tsf` files of
Chronos Benchmark II's Monash tasks, the GIFT-Eval configurations held
here), refused when a copy matches none of the versions listed.

  found = known_files.digest(path)    # {'bytes': ..., 'sha256': ...}
  known_files.check(path, 'monash/m1_yearly_dataset.tsf')

A file's key is its path below the task's dataset id (GIFT-Eval:
'Salesforce/GiftEval/<config>/<file>'; fev: 'autogluon/.../<config>/
<file>'), or 'monash/<file>' for a Monash `.tsf`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any, Dict, List, Tuple

from ttm_jax import errors

PATH = os.path.join(os.path.dirname(__file__), 'files', 'known_files.json')
_CHUNK = 1 << 22
# (real path, size, mtime) -> sha256: a file is hashed once per process.
_DIGESTS: Dict[Tuple[str, int, int], str] = {}


@functools.lru_cache(maxsize=None)
def known() -> Dict[str, List[Dict[str, Any]]]:
  """Key -> the versions of that file whose bytes are known."""
  with open(PATH) as f:
    return json.load(f)['files']


def digest(path: str) -> Dict[str, Any]:
  """{'bytes': size, 'sha256': hex digest} of the file at `path`."""
  stat = os.stat(path)
  key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
  if key not in _DIGESTS:
    sha = hashlib.sha256()
    with open(path, 'rb') as f:
      for block in iter(lambda: f.read(_CHUNK), b''):
        sha.update(block)
    _DIGESTS[key] = sha.hexdigest()
  return dict(bytes=stat.st_size, sha256=_DIGESTS[key])


def check(path: str, key: str) -> Dict[str, Any]:
  """The digest of `path`; a DataError giving the expected and found size
  and sha256 when `key` is a known file and the bytes match none of its
  versions (a truncated or other copy)."""
  found = digest(path)
  versions = known().get(key)
  if not versions or any(v['bytes'] == found['bytes']
                         and v['sha256'] == found['sha256']
                         for v in versions):
    return found
  expected = ' or '.join(f'{v["bytes"]:,} bytes, sha256 {v["sha256"][:16]}'
                         for v in versions)
  raise errors.DataError(
      f'{path}: {found["bytes"]:,} bytes, sha256 {found["sha256"][:16]}; '
      f'the known copy of {key} is {expected} '
      '(ttm_jax/suites/files/known_files.json): a truncated or different '
      'file. Fetch it again, or set config.verify_files=false to score it '
      'anyway.')
