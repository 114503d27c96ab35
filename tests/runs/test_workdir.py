"""The run folder (ttm_jax/runs/workdir.py): its lock admits one
holder, refuses a second with a WorkdirError naming the holder, is
released on exit (also after an error) and never by a process that does
not hold it, and a dead holder's lock on this host is taken over while
another host's or a live process's is not; a Workdir records each start,
refuses a resume whose config differs in a field that shapes the state,
and keeps earlier outputs in history/."""

import json
import os
import socket
import subprocess
import sys

import ml_collections
import pytest

from ttm_jax import errors
from ttm_jax import schema
from ttm_jax.runs import workdir as workdir_lib


def _holder(path):
  with open(os.path.join(path, workdir_lib.LOCK)) as f:
    return json.load(f)


def _write_lock(path, **holder):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, workdir_lib.LOCK), 'w') as f:
    json.dump(holder, f)


def _dead_pid():
  """The pid of a process that has exited (and been reaped)."""
  process = subprocess.Popen([sys.executable, '-c', 'pass'])
  process.wait()
  return process.pid


# ------------------------------------------------------------------ lock
def test_lock_records_its_holder_and_release_removes_it(tmp_path):
  lock = workdir_lib.Lock(str(tmp_path / 'run'), argv=['train', '--x'])
  lock.acquire()
  assert lock.held
  holder = _holder(tmp_path / 'run')  # The folder is made.
  assert (holder['host'], holder['pid'], holder['argv']) == (
      socket.gethostname(), os.getpid(), ['train', '--x'])
  lock.release()
  assert not lock.held
  assert not os.path.exists(lock.file())
  lock.release()  # Twice is harmless.


def test_second_holder_is_refused_naming_the_first(tmp_path):
  path = str(tmp_path)
  with workdir_lib.Lock(path, argv=['python', '-m', 'first']):
    second = workdir_lib.Lock(path, argv=['second'])
    with pytest.raises(errors.WorkdirError) as raised:
      second.acquire()
    message = str(raised.value)
    assert message.startswith(f'{os.path.abspath(path)} is in use by '
                              f'another run: pid {os.getpid()} on host '
                              f'{socket.gethostname()}')
    assert '(python -m first)' in message
    assert 'use another workdir' in message
    assert os.path.join(os.path.abspath(path), 'lock') in message
    assert not second.held
    second.release()  # Not its lock: the holder's stays.
    assert _holder(path)['argv'] == ['python', '-m', 'first']
  assert not os.path.exists(os.path.join(path, 'lock'))
  with workdir_lib.Lock(path):  # Free again.
    pass


def test_a_sweep_lock_says_folder(tmp_path):
  with workdir_lib.Lock(str(tmp_path), user='sweep'):
    with pytest.raises(errors.WorkdirError,
                       match='in use by another sweep.*use another folder'):
      workdir_lib.Lock(str(tmp_path), user='sweep').acquire()


def test_released_on_exit_after_an_error(tmp_path):
  with pytest.raises(ValueError):
    with workdir_lib.Lock(str(tmp_path)):
      raise ValueError('the run failed')
  assert not os.path.exists(os.path.join(tmp_path, 'lock'))


def test_a_dead_holders_lock_on_this_host_is_taken_over(tmp_path, capsys):
  pid = _dead_pid()
  _write_lock(tmp_path, host=socket.gethostname(), pid=pid,
              started='2026-01-01T00:00:00', argv=['old'])
  with workdir_lib.Lock(str(tmp_path), argv=['new']) as lock:
    assert lock.held
    assert _holder(tmp_path)['pid'] == os.getpid()
    assert _holder(tmp_path)['argv'] == ['new']
  assert f'Taking over the lock of a dead run (pid {pid}' in (
      capsys.readouterr().out)


def test_a_live_holder_on_this_host_is_not_taken_over(tmp_path):
  process = subprocess.Popen([sys.executable, '-c',
                              'import time; time.sleep(60)'])
  try:
    _write_lock(tmp_path, host=socket.gethostname(), pid=process.pid,
                argv=['other'])
    with pytest.raises(errors.WorkdirError, match=f'pid {process.pid} '):
      workdir_lib.Lock(str(tmp_path)).acquire()
  finally:
    process.kill()
    process.wait()
  assert _holder(tmp_path)['pid'] == process.pid


def test_another_hosts_lock_is_never_taken_over(tmp_path):
  # Its pid means nothing here, even one that does not exist on this host.
  _write_lock(tmp_path, host=socket.gethostname() + '-elsewhere',
              pid=_dead_pid(), argv=['other'])
  with pytest.raises(errors.WorkdirError, match='-elsewhere'):
    workdir_lib.Lock(str(tmp_path)).acquire()


def test_an_unreadable_lock_is_refused_not_taken(tmp_path):
  with open(tmp_path / 'lock', 'w') as f:
    f.write('{"host": "cut by a k')
  with pytest.raises(errors.WorkdirError, match=r'pid \? on host \?'):
    workdir_lib.Lock(str(tmp_path)).acquire()
  assert (tmp_path / 'lock').read_text() == '{"host": "cut by a k'


# --------------------------------------------------------------- workdir
def _config(**changes):
  return ml_collections.ConfigDict(dict(dict(seed=0, plot=False,
                                             checkpoint_dir=''), **changes))


def _with_checkpoint(path):
  os.makedirs(os.path.join(path, 'checkpoints', '10'))


def test_workdir_locks_records_each_start_and_unlocks(tmp_path):
  path = str(tmp_path / 'run')
  with workdir_lib.Workdir(path, _config(), argv=['a']) as folder:
    assert folder.file('lock') == os.path.join(os.path.abspath(path), 'lock')
    assert os.path.exists(folder.file('lock'))
    with pytest.raises(errors.WorkdirError, match='in use by another run'):
      with workdir_lib.Workdir(path, _config(), argv=['b']):
        pass
  assert not os.path.exists(os.path.join(path, 'lock'))
  with workdir_lib.Workdir(path, _config(plot=True), argv=['c']):
    pass
  with open(os.path.join(path, 'runs.jsonl')) as f:
    starts = [json.loads(line) for line in f]
  # The refused start wrote nothing; the others one line each.
  assert [s['argv'] for s in starts] == [['a'], ['c']]
  assert [s['config']['plot'] for s in starts] == [False, True]
  with open(os.path.join(path, 'config.json')) as f:
    assert json.load(f)['plot'] is True  # The latest start's.


def test_resume_with_a_different_state_shaping_field_is_refused(tmp_path):
  path = str(tmp_path)
  with workdir_lib.Workdir(path, _config(seed=0)):
    pass
  with workdir_lib.Workdir(path, _config(seed=1)):  # No checkpoint yet.
    pass
  _with_checkpoint(path)
  with pytest.raises(errors.WorkdirError,
                     match=r'differs in fields .*: seed: 1 -> 2\. '):
    with workdir_lib.Workdir(path, _config(seed=2),
                             resume_fields=schema.RESUME_FIELDS):
      pass
  assert not os.path.exists(os.path.join(path, 'lock'))  # Unlocked.
  with open(os.path.join(path, 'runs.jsonl')) as f:
    assert len(f.readlines()) == 2  # The refused start is not recorded.
  # `plot` does not shape the state: a resume may change it.
  with workdir_lib.Workdir(path, _config(seed=1, plot=True),
                           resume_fields=schema.RESUME_FIELDS):
    pass


def test_keep_previous_moves_an_output_into_history(tmp_path):
  with workdir_lib.Workdir(str(tmp_path), _config()) as folder:
    folder.keep_previous('results.json')  # Nothing there: nothing moves.
    assert not os.path.exists(folder.file('history'))
    with open(folder.file('results.json'), 'w') as f:
      f.write('first')
    folder.keep_previous('results.json')
  assert not os.path.exists(tmp_path / 'results.json')
  kept = os.listdir(tmp_path / 'history')
  assert len(kept) == 1 and kept[0].endswith('-results.json')
  assert (tmp_path / 'history' / kept[0]).read_text() == 'first'


def test_check_writable_refuses_a_file_where_a_folder_goes(tmp_path):
  (tmp_path / 'afile').write_text('x')
  with pytest.raises(errors.WorkdirError, match='is a file, not a folder'):
    workdir_lib.check_writable(str(tmp_path / 'afile'))
  with pytest.raises(errors.WorkdirError, match='afile is a file'):
    workdir_lib.check_writable(str(tmp_path / 'afile' / 'run'))
  workdir_lib.check_writable(str(tmp_path / 'new' / 'run'))
  assert not os.path.exists(tmp_path / 'new')  # Creates nothing.
