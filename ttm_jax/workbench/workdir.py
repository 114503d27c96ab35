"""A run's workdir: one run at a time, a history that is never overwritten,
and resumes only with a compatible config.

  lock            `lock` holds the running process (host, pid); a second run
                  gets a WorkdirError naming it; a dead holder's lock (same
                  host, no such process) is taken over.
  runs.jsonl      one line per start: time, host, pid, command line and the
                  resolved config. Appended, never rewritten.
  config.json     the resolved config of the latest start.
  history/        earlier results.json files, kept when a rerun writes anew.

A workdir with checkpoints resumes only when the config agrees with the one
that wrote them in every field that shapes the train state or the data
stream (the schema's fields marked `resume`, schema.RESUME_FIELDS);
otherwise nothing is written and the differing fields are listed.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from typing import Any, Dict, List, Optional, Sequence

import jax

from ttm_jax import errors
from ttm_jax import schema

LOCK = 'lock'
RUNS = 'runs.jsonl'
CONFIG = 'config.json'


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec='seconds')


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Exists, owned by someone else.
    return True
  return True


def _lookup(tree: Dict[str, Any], dotted: str):
  for part in dotted.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _differences(field: str, old, new) -> List[str]:
  """'field: old -> new' at the leaves of two (nested) values."""
  if isinstance(old, dict) and isinstance(new, dict):
    out = []
    for key in sorted(set(old) | set(new)):
      if old.get(key) != new.get(key):
        out.extend(_differences(f'{field}.{key}', old.get(key),
                                new.get(key)))
    return out
  return [f'{field}: {old!r} -> {new!r}']


def _jsonable(value):
  return json.loads(json.dumps(value, default=list))


class Workdir:
  """The workdir of one run (`with Workdir(path, config) as w:`).

  Only process 0 writes and locks; every process checks compatibility.
  """

  def __init__(self, path: str, config, argv: Optional[Sequence[str]] = None):
    self.path = os.path.abspath(path)
    self.config = _jsonable(config.to_dict())
    self.argv = list(sys.argv if argv is None else argv)
    self.writer = jax.process_index() == 0
    self._locked = False

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  # ------------------------------------------------------------- locking
  def _holder(self) -> Dict[str, Any]:
    try:
      with open(self.file(LOCK)) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def lock(self) -> None:
    """Takes the workdir, or raises WorkdirError naming the holder."""
    os.makedirs(self.path, exist_ok=True)
    me = dict(host=socket.gethostname(), pid=os.getpid(), started=_now(),
              argv=self.argv)
    for _ in range(2):
      try:
        fd = os.open(self.file(LOCK), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        holder = self._holder()
        if holder.get('host') == me['host'] and holder.get('pid') and (
            not _alive(int(holder['pid']))):
          print(f'Taking over the lock of a dead run (pid {holder["pid"]}, '
                f'started {holder.get("started")}).', flush=True)
          os.remove(self.file(LOCK))
          continue
        raise errors.WorkdirError(
            f'{self.path} is in use by another run: pid '
            f'{holder.get("pid", "?")} on host {holder.get("host", "?")}, '
            f'started {holder.get("started", "?")} '
            f'({" ".join(holder.get("argv", []))[:120]}). Wait for it, use '
            'another workdir, or delete '
            f'{self.file(LOCK)} if that run is dead.') from None
      with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
      self._locked = True
      return

  def unlock(self) -> None:
    if self._locked:
      try:
        os.remove(self.file(LOCK))
      except FileNotFoundError:
        pass
      self._locked = False

  # ------------------------------------------------------------ records
  def previous_config(self) -> Optional[Dict[str, Any]]:
    try:
      with open(self.file(CONFIG)) as f:
        return json.load(f)
    except FileNotFoundError:
      return None
    except ValueError:
      return None

  def has_checkpoints(self) -> bool:
    from etils import epath  # pylint: disable=g-import-not-at-top
    root = self.config.get('checkpoint_dir') or self.path
    folder = epath.Path(root) / 'checkpoints'
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())

  def resume_conflicts(self) -> List[str]:
    """'field: old -> new' for every difference in a resume field
    (schema.RESUME_FIELDS) with the config that wrote this workdir's
    checkpoints."""
    previous = self.previous_config()
    if previous is None or not self.has_checkpoints():
      return []
    out = []
    for field in schema.RESUME_FIELDS:
      old, new = _lookup(previous, field), _lookup(self.config, field)
      if old is not None and old != new:
        out.extend(_differences(field, old, new))
    return out

  def check_resume(self) -> None:
    conflicts = self.resume_conflicts()
    if conflicts:
      raise errors.WorkdirError(
          f'{self.path} holds checkpoints of a run whose config differs in '
          'fields that shape its state or data: ' + '; '.join(conflicts)
          + '. Use a new workdir, or rerun with the recorded config '
          f'({self.file(CONFIG)}).')

  def record(self) -> None:
    """Appends this start to runs.jsonl and writes config.json."""
    if not self.writer:
      return
    line = dict(time=_now(), host=socket.gethostname(), pid=os.getpid(),
                argv=self.argv, config=self.config)
    with open(self.file(RUNS), 'a') as f:
      f.write(json.dumps(line) + '\n')
    _atomic_write(self.file(CONFIG), json.dumps(self.config, indent=2))

  def keep_previous(self, name: str) -> None:
    """Moves an existing output into history/ before it is rewritten."""
    if not self.writer or not os.path.exists(self.file(name)):
      return
    folder = self.file('history')
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
    os.replace(self.file(name), os.path.join(folder, f'{stamp}-{name}'))

  # ------------------------------------------------------------ context
  def __enter__(self) -> 'Workdir':
    os.makedirs(self.path, exist_ok=True)
    if self.writer:
      self.lock()
    try:
      self.check_resume()
      self.record()
    except BaseException:
      self.unlock()
      raise
    return self

  def __exit__(self, *exc):
    self.unlock()
    return False


def _atomic_write(path: str, text: str) -> None:
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)
