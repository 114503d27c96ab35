r"""Runs a sweep: every point as an ordinary run in W/<point>/, then the
tables and the plot.

  .venv/bin/python -m experiments.sweep \
      --config configs/sweeps/ap.py[:args] --workdir W \
      [--executor local|slurm] [--parallel N] [--dry_run]

Points are submitted with submitit: `local` runs each point in a subprocess
(at most --parallel at a time), `slurm` as one job array (at most
--parallel running; preempted or timed-out points are requeued and resume
from their checkpoints). Rerunning the same command skips finished points,
resumes interrupted ones and retries failed ones, and says which. Every
point is validated before any runs. With `--executor slurm --dry_run` the
job script is printed and nothing is submitted.
"""

import concurrent.futures
import os
import sys

from absl import flags

from experiments import common
from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.workbench import sweep_tables
from ttm_jax.workbench import sweeps
from ttm_jax.runs import workdir as workdir_lib

_CONFIG = flags.DEFINE_string('config', None, 'Sweep file[:args].',
                              required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep folder.',
                               required=True)
_EXECUTOR = flags.DEFINE_enum('executor', 'local', ['local', 'slurm'],
                              'Where points run.')
_PARALLEL = flags.DEFINE_integer('parallel', 1, 'Points running at once.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print what would be '
                             'submitted (SLURM: the job script); run nothing.')
_TIMEOUT = flags.DEFINE_integer('timeout_min', 24 * 60, 'Time limit of a '
                                'point, minutes.')
_SLURM = flags.DEFINE_multi_string(
    'slurm', [], 'SLURM job parameter key=value (partition=gpu, nodes=2, '
    'tasks_per_node=8, gpus_per_node=8, cpus_per_task=12, mem_gb=64).')


def _slurm_parameters():
  out = {}
  for item in _SLURM.value:
    key, sep, value = item.partition('=')
    if not sep:
      raise errors.ConfigError(f'--slurm {item!r}: expected key=value.')
    out[key] = int(value) if value.isdigit() else value
  return out


def _executor(folder: str):
  import submitit  # pylint: disable=g-import-not-at-top
  if _EXECUTOR.value == 'local':
    executor = submitit.LocalExecutor(folder)
    executor.update_parameters(timeout_min=_TIMEOUT.value)
    return executor
  executor = submitit.SlurmExecutor(folder)
  executor.update_parameters(time=_TIMEOUT.value,
                             array_parallelism=_PARALLEL.value,
                             signal_delay_s=120, **_slurm_parameters())
  return executor


def slurm_script(folder: str, count: int) -> str:
  """The sbatch script the SLURM executor would submit for `count` points
  (submitit's own template; one srun task per process, so JAX finds the
  cluster from SLURM's variables)."""
  from submitit.slurm import slurm  # pylint: disable=g-import-not-at-top
  parameters = dict(job_name='ttm-sweep', time=_TIMEOUT.value,
                    signal_delay_s=120, array_parallelism=_PARALLEL.value,
                    map_count=count)
  parameters.update(_slurm_parameters())
  command = f'{sys.executable} -u -m submitit.core._submit {folder}'
  return slurm._make_sbatch_string(command=command, folder=folder,  # pylint: disable=protected-access
                                   **parameters)


def _report(points, workdir):
  states = {p.name: sweeps.status(os.path.join(workdir, p.name))
            for p in points}
  words = {'done': 'skipped (finished)', 'partial': 'resumed',
           'failed': 'retried', 'new': 'new'}
  for state, word in words.items():
    names = [n for n, s in states.items() if s == state]
    if names:
      print(f'{word}: {len(names)}: {", ".join(names)}', flush=True)
  return [p for p in points if states[p.name] != 'done']


def _run_local(pending, workdir, folder):
  executor = _executor(folder)

  def one(point):
    job = executor.submit(sweeps.PointJob(), os.path.join(workdir, point.name),
                          point.stages)
    print(f'{point.name}: started (job {job.job_id})', flush=True)
    try:
      job.result()
      return point.name, None
    except Exception as e:  # pylint: disable=broad-except
      return point.name, str(e).strip().splitlines()[-1][:300]

  with concurrent.futures.ThreadPoolExecutor(max(_PARALLEL.value, 1)) as pool:
    for name, error in pool.map(one, pending):
      print(f'{name}: ' + ('finished' if error is None else
                           f'failed: {error}'), flush=True)


def _run_slurm(pending, workdir, folder):
  executor = _executor(folder)
  jobs = executor.map_array(
      sweeps.PointJob(), [os.path.join(workdir, p.name) for p in pending],
      [p.stages for p in pending])
  print(f'Submitted job array {jobs[0].job_id.split("_")[0]} ({len(jobs)} '
        f'points); logs in {folder}.', flush=True)
  for job, point in zip(jobs, pending):
    try:
      job.result()
      print(f'{point.name}: finished', flush=True)
    except Exception as e:  # pylint: disable=broad-except
      print(f'{point.name}: failed: {str(e).splitlines()[-1][:300]}',
            flush=True)


def _check_flags() -> None:
  for flag, check in ((_PARALLEL, checks.integer(1)),
                      (_TIMEOUT, checks.integer(1))):
    complaint = check(flag.value)
    if complaint:
      raise errors.ConfigError(f'--{flag.name}={flag.value} {complaint}.')


@common.main_wrapper
def main(argv):
  del argv
  _check_flags()
  path, _, arg = _CONFIG.value.partition(':')
  module = sweeps.load(path)
  points = sweeps.plan(module, arg or None)  # Validates every point first.
  workdir = os.path.abspath(_WORKDIR.value)
  folder = os.path.join(workdir, '_jobs', '%j')
  title = f'{os.path.basename(path)} {arg}'.strip()
  if _DRY_RUN.value:
    print(f'{len(points)} points: ' + ', '.join(p.name for p in points))
    if _EXECUTOR.value == 'slurm':
      print(slurm_script(folder, len(points)))
    return
  workdir_lib.check_writable(workdir, 'sweep folder')
  # One sweep per folder, as one run per workdir (the points' own runs
  # lock their stage folders).
  with workdir_lib.Lock(workdir, user='sweep'):
    _run_all(points, workdir, folder, title)


def _run_all(points, workdir, folder, title):
  pending = _report(points, workdir)
  # Job processes import this checkout.
  os.environ['PYTHONPATH'] = os.pathsep.join(
      filter(None, [os.getcwd(), os.environ.get('PYTHONPATH', '')]))
  if pending:
    (_run_local if _EXECUTOR.value == 'local' else _run_slurm)(
        pending, workdir, folder)
  rows = sweep_tables.collect(workdir, points)
  print(sweep_tables.write(workdir, rows, title))
  failed = [p.name for p in points
            if sweeps.status(os.path.join(workdir, p.name)) != 'done']
  if failed:
    raise errors.TTMError(f'{len(failed)} point(s) did not finish: '
                          f'{", ".join(failed)}; rerun the same command to '
                          'retry them (see W/<point>/failed.json).')


if __name__ == '__main__':
  common.run(main)
