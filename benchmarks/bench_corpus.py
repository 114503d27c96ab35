r"""The pretraining corpus at scale: write, start, memory, throughput.

Builds a synthetic corpus (default 40,000 series x 5,000 points = 200M
values; at context 512 + horizon 96 about 176M training windows) with
`experiments.prepare_corpus`, then pretrains on it with
`experiments.train` in a child process and measures:

- the time to write the corpus (and the writer's peak RSS);
- the time from the training process's start to its first step;
- the training process's RSS, sampled every 0.2 s: peak (the final
  evaluation included), and from step 100 to the last training step
  logged before the final evaluation (flat: within +-10% of step 100's);
- the pipeline's batches per second (the same `train_batches` stream the
  run reads, measured alone afterwards) against the run's steps per second.

  .venv/bin/python -m benchmarks.bench_corpus --workdir /tmp/bench_corpus

Run it alone (2 cores here); it needs about 1 GB of disk per 200M values.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

from configs import pretrain as pretrain_config
from ttm_jax import schema
from ttm_jax.data import builders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_corpus(out, num_series, length):
  """Writes the corpus; (seconds, values, writer peak RSS in MB)."""
  command = [sys.executable, '-m', 'experiments.prepare_corpus',
             f'--out={out}', '--drs=',
             f'--source=synthetic:num_series={num_series},length={length},'
             'seed=0']
  start = time.perf_counter()
  subprocess.run(command, cwd=ROOT, check=True)
  seconds = time.perf_counter() - start
  peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  with open(os.path.join(out, 'corpus.json')) as f:
    manifest = json.load(f)
  return seconds, manifest['num_values'], peak_mb


def config_arg(args, corpus):
  return (f'corpus={corpus},arch={args.arch},steps={args.steps},'
          f'batch={args.batch},rpt=false,eval_every={args.steps},'
          f'eval_windows=2000')


def _rss_mb(pid):
  with open(f'/proc/{pid}/status') as f:
    for line in f:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) / 1024
  return float('nan')


def _logged_steps(path, seen):
  """Steps newly logged in metrics.jsonl."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.readlines()
  out = []
  for line in lines[seen:]:
    if line.endswith('\n'):
      out.append(json.loads(line)['step'])
  return out


def train_and_watch(args, corpus, workdir):
  """Runs the pretraining; samples (time, rss) and (step, time)."""
  command = [sys.executable, '-m', 'experiments.train',
             f'--config=configs/pretrain.py:{config_arg(args, corpus)}',
             f'--config.log_every_steps={args.log_every}',
             '--config.early_stopping_patience=0', '--config.plot=false',
             '--config.tensorboard=false', f'--workdir={workdir}']
  metrics = os.path.join(workdir, 'metrics.jsonl')
  start = time.perf_counter()
  process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  rss, steps, seen = [], {}, 0
  while process.poll() is None:
    now = time.perf_counter() - start
    try:
      rss.append((now, _rss_mb(process.pid)))
    except OSError:
      break
    new = _logged_steps(metrics, seen)
    seen += len(new)
    for step in new:
      steps.setdefault(step, now)
    time.sleep(0.2)
  rss = [(t, r) for t, r in rss if np.isfinite(r)]  # Not after it ended.
  if process.returncode:
    raise SystemExit(f'training exited with {process.returncode}; rerun '
                     f'the command above by hand to see why.')
  return np.array(rss), steps


def pipeline_rate(args, corpus, batches=300):
  """Batches per second of the run's training stream, alone."""
  config = schema.resolve(pretrain_config.get_config(config_arg(args,
                                                                corpus)))
  data = builders.build_data(config)
  it = iter(builders.train_batches(config, data, drop=True, seed=0))
  for _ in range(20):
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches / (time.perf_counter() - start), data.num_train_windows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', default='/tmp/bench_corpus')
  parser.add_argument('--num_series', type=int, default=40000)
  parser.add_argument('--length', type=int, default=5000)
  parser.add_argument('--arch', default='tiny')
  parser.add_argument('--steps', type=int, default=2000)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--log_every', type=int, default=50)
  parser.add_argument('--keep', action='store_true',
                      help='Keep the corpus (reused when present).')
  args = parser.parse_args()
  corpus = os.path.join(args.workdir, 'corpus')
  workdir = os.path.join(args.workdir, 'train')
  shutil.rmtree(workdir, ignore_errors=True)
  if os.path.exists(os.path.join(corpus, 'corpus.json')) and args.keep:
    write = None
  else:
    shutil.rmtree(corpus, ignore_errors=True)
    write = write_corpus(corpus, args.num_series, args.length)
  rss, steps = train_and_watch(args, corpus, workdir)
  first = min(steps)
  # The last step's line is written after the final evaluation and test:
  # the training window ends at the line before it.
  last = sorted(steps)[-2]
  t_first, t100, t_last = steps[first], steps[100], steps[last]
  window = rss[(rss[:, 0] >= t100) & (rss[:, 0] <= t_last), 1]
  rss100 = window[0]
  train_rate = (last - 100) / (t_last - t100)
  rate, windows = pipeline_rate(args, corpus)
  result = dict(
      num_series=args.num_series, length=args.length, arch=args.arch,
      batch=args.batch, steps=max(steps), rss_window_steps=(100, last),
      write_seconds=write and write[0], values=write and write[1],
      writer_peak_rss_mb=write and write[2], train_windows=windows,
      seconds_to_first_step=t_first, first_logged_step=first,
      peak_rss_mb=float(rss[:, 1].max()), rss_step100_mb=float(rss100),
      rss_min_mb=float(window.min()), rss_max_mb=float(window.max()),
      rss_drift=float((window.max() - window.min()) / rss100),
      train_steps_per_s=train_rate, pipeline_batches_per_s=rate,
      pipeline_over_train=rate / train_rate)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  main()
