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
stream (`resume_fields`: the training loop passes the schema's fields
marked `resume`, schema.RESUME_FIELDS); otherwise nothing is written and
the differing fields are listed.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import jax

from ttm_jax import errors

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


def check_writable(path: str, what: str = 'workdir') -> None:
  """WorkdirError naming `path` when it cannot be written: a file where a
  folder should be, or a folder (its nearest existing one) where a file
  cannot be created (read-only, no permission). Creates nothing; a remote
  path (gs://...) is left to its library."""
  if '://' in path:
    return
  path = os.path.abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise errors.WorkdirError(f'{what} {path} is a file, not a folder.')
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise errors.WorkdirError(f'{what} {path}: {existing} is a file, not a '
                              'folder.')
  try:  # A probe: os.access misleads for root and read-only mounts.
    fd, probe = tempfile.mkstemp(prefix='.write-probe-', dir=existing)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise errors.WorkdirError(
        f'{what} {path}: cannot write in {existing} ({e.strerror or e}); '
        'choose a writable folder.') from None


class Lock:
  """`path/lock`, held by one process (host, pid): a second one gets a
  WorkdirError naming the holder; a dead holder's lock (same host, no such
  process) is taken over. A run's workdir and a sweep's folder take it."""

  def __init__(self, path: str, argv: Optional[Sequence[str]] = None,
               user: str = 'run'):
    self.path = os.path.abspath(path)
    self.argv = list(sys.argv if argv is None else argv)
    self.user = user
    self.held = False

  def file(self) -> str:
    return os.path.join(self.path, LOCK)

  def holder(self) -> Dict[str, Any]:
    try:
      with open(self.file()) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def acquire(self) -> None:
    """Takes the folder, or raises WorkdirError naming the holder."""
    os.makedirs(self.path, exist_ok=True)
    me = dict(host=socket.gethostname(), pid=os.getpid(), started=_now(),
              argv=self.argv)
    for _ in range(2):
      try:
        fd = os.open(self.file(), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        holder = self.holder()
        if holder.get('host') == me['host'] and holder.get('pid') and (
            not _alive(int(holder['pid']))):
          print(f'Taking over the lock of a dead {self.user} (pid '
                f'{holder["pid"]}, started {holder.get("started")}).',
                flush=True)
          os.remove(self.file())
          continue
        raise errors.WorkdirError(
            f'{self.path} is in use by another {self.user}: pid '
            f'{holder.get("pid", "?")} on host {holder.get("host", "?")}, '
            f'started {holder.get("started", "?")} '
            f'({" ".join(holder.get("argv", []))[:120]}). Wait for it, use '
            f'another {"workdir" if self.user == "run" else "folder"}, or '
            f'delete {self.file()} if that '
            f'{self.user} is dead.') from None
      with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
      self.held = True
      return

  def release(self) -> None:
    if self.held:
      try:
        os.remove(self.file())
      except FileNotFoundError:
        pass
      self.held = False

  def __enter__(self) -> 'Lock':
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()
    return False


class Workdir:
  """The workdir of one run (`with Workdir(path, config) as w:`).

  Only process 0 writes and locks; every process checks compatibility.
  """

  def __init__(self, path: str, config, argv: Optional[Sequence[str]] = None,
               resume_fields: Sequence[str] = ()):
    self.path = os.path.abspath(path)
    self.resume_fields = tuple(resume_fields)
    self.config = _jsonable(config.to_dict())
    self.argv = list(sys.argv if argv is None else argv)
    self.writer = jax.process_index() == 0
    self._lock = Lock(self.path, self.argv)

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  # ------------------------------------------------------------- locking
  def lock(self) -> None:
    """Takes the workdir, or raises WorkdirError naming the holder."""
    self._lock.acquire()

  def unlock(self) -> None:
    self._lock.release()

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
    (`resume_fields`) with the config that wrote this workdir's
    checkpoints."""
    previous = self.previous_config()
    if previous is None or not self.has_checkpoints():
      return []
    out = []
    for field in self.resume_fields:
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
    check_writable(self.path)
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
