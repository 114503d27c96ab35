"""Entry-point runs for the price of their own work, not of their imports.

`run(args)` and `run_batch([args, ...])` run each command
(`['experiments.train', '--config', ...]`, as `python -m` would) as its own
process, as a user's shell would see it: its own `__main__` and flags, its
exit status, stdout and stderr. Each is forked from one server process,
started once per test session, that has already imported the heavy
libraries (jax, flax, optax, orbax, pandas, grain, ttm_jax), so a case
costs its own work and not ~3 s of imports. The server only imports:
nothing in JAX is initialised before the fork, and each child starts
JAX's backend itself, as a fresh process does. Children inherit the
server's environment (the test session's, without XLA_FLAGS); commands
that need other environment variables start their own process.

The server is this file run as `python -m tests.entry_points`: it reads
one JSON request per line ([id, args]) and writes one JSON line per
finished command ([id, status, stdout, stderr]).
"""

import atexit
import json
import os
import runpy
import select
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRELOAD = ('jax', 'jax.numpy', 'flax.linen', 'optax', 'orbax.checkpoint',
           'ml_collections', 'absl.app', 'pandas', 'grain', 'ttm_jax',
           'ttm_jax.train', 'ttm_jax.predict', 'ttm_jax.workbench.sweeps',
           'experiments.common')
WORKERS = 2  # Commands at a time (this project's machines have 2 cores).
TIMEOUT = 900  # Seconds without any command ending: the server is killed.


# ------------------------------------------------------------- the server
def _child(args, out_path, err_path):
  """One command in a forked child: `python -m args[0] args[1:]`."""
  for fd, path in ((1, out_path), (2, err_path)):
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(handle, fd)
    os.close(handle)
  sys.stdout = open(1, 'w', closefd=False, buffering=1)  # pylint: disable=consider-using-with
  sys.stderr = open(2, 'w', closefd=False, buffering=1)  # pylint: disable=consider-using-with
  sys.argv = list(args)
  code = 0
  try:
    runpy.run_module(args[0], run_name='__main__', alter_sys=True)
  except SystemExit as exit_:
    code = exit_.code if isinstance(exit_.code, int) else (
        0 if exit_.code is None else 1)
    if not isinstance(exit_.code, (int, type(None))):
      print(exit_.code, file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # Without the atexit handlers of the server's libraries.


def _read(path):
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.read()


def _serve():
  """Runs the requests read from stdin, WORKERS at a time."""
  import multiprocessing  # pylint: disable=g-import-not-at-top
  from multiprocessing import connection  # pylint: disable=g-import-not-at-top
  context = multiprocessing.get_context('forkserver')
  context.set_forkserver_preload(list(PRELOAD))
  folder = tempfile.mkdtemp(prefix='entry_points_')
  queue, running, reading, pending = [], {}, True, b''
  while reading or queue or running:
    while queue and len(running) < WORKERS:
      key, args = queue.pop(0)
      paths = (os.path.join(folder, f'{key}.out'),
               os.path.join(folder, f'{key}.err'))
      process = context.Process(target=_child, args=(args, *paths))
      process.start()
      running[process.sentinel] = (key, process, paths)
    waiting = list(running) + ([0] if reading else [])
    for ready in connection.wait(waiting):
      if ready == 0:  # Requests: whole lines (read unbuffered).
        chunk = os.read(0, 1 << 16)
        reading = bool(chunk)
        *lines, pending = (pending + chunk).split(b'\n')
        queue.extend(json.loads(line) for line in lines if line.strip())
        continue
      key, process, paths = running.pop(ready)
      process.join()
      print(json.dumps([key, process.exitcode] + [_read(p) for p in paths]),
            flush=True)
      for path in paths:
        os.remove(path)


# ------------------------------------------------------------- the client
class _Client:
  """The test session's connection to its server (started on first use)."""

  def __init__(self):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('XLA_FLAGS', None)
    self._process = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, '-m', 'tests.entry_points'], cwd=ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    self._lock = threading.Lock()
    self._pending = b''
    self._next = 0
    atexit.register(self.close)

  def run_batch(self, commands):
    with self._lock:
      keys = list(range(self._next, self._next + len(commands)))
      self._next += len(commands)
      for key, args in zip(keys, commands):
        self._process.stdin.write(json.dumps(
            [key, list(map(str, args))]).encode() + b'\n')
      self._process.stdin.flush()
      results = {}
      while len(results) < len(keys):
        key, *result = json.loads(self._line())
        results[key] = tuple(result)
    return [results[k] for k in keys]

  def _line(self):
    """The server's next line, within TIMEOUT seconds."""
    out = self._process.stdout
    while b'\n' not in self._pending:
      if not select.select([out], [], [], TIMEOUT)[0]:
        self._process.kill()
        raise TimeoutError(f'no entry-point run ended in {TIMEOUT} s')
      chunk = os.read(out.fileno(), 1 << 16)
      if not chunk:
        raise RuntimeError('the entry-point server stopped (status '
                           f'{self._process.wait()})')
      self._pending += chunk
    line, self._pending = self._pending.split(b'\n', 1)
    return line

  def close(self):
    if self._process.poll() is None:
      self._process.stdin.close()
      self._process.wait(timeout=60)


_CLIENT = []


def run_batch(commands):
  """[(status, stdout, stderr)] of each command, WORKERS at a time."""
  if not _CLIENT:
    _CLIENT.append(_Client())
  return _CLIENT[0].run_batch(commands)


def run(args):
  """(status, stdout, stderr) of one command."""
  return run_batch([args])[0]


def assert_refused_first(base, cases, tmp_path):
  """Each case's command (`base + args + --workdir tmp_path/wK`) exits
  with one `error: ` line holding its words, no traceback, and writes no
  workdir: refused before anything is read or written."""
  outcomes = run_batch(
      [base + args + ['--workdir', str(tmp_path / f'w{k}')]
       for k, (args, _) in enumerate(cases)])
  for k, ((_, words), (rc, out, err)) in enumerate(zip(cases, outcomes)):
    assert rc != 0 and 'Traceback' not in out + err, (out + err)[-2000:]
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1 and words in lines[0], err[-2000:]
    assert not (tmp_path / f'w{k}').exists()


if __name__ == '__main__':
  _serve()
