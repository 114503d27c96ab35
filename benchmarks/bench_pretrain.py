r"""Pretraining throughput: samples per second from the input pipeline
through the engine's train step, univariate windows at context 512 +
horizon 96, IBM's pretraining batch of 3000, for the `tiny` and `r2_512`
shapes (resolution prefix tuning on, dropout on). Each figure is also given
as a fraction of the bound the machine's fp32 matmul rate sets.

  .venv/bin/python -m benchmarks.bench_pretrain [--steps 6] [--threads 0]
"""

import argparse
import json
import time

from ttm_jax import compilation

compilation.use_cpu_cores()  # Before JAX starts, as the entry points do.

import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from benchmarks import bench_model  # pylint: disable=g-import-not-at-top
from ttm_jax import optim  # pylint: disable=g-import-not-at-top
from ttm_jax import sharding  # pylint: disable=g-import-not-at-top
from ttm_jax.data import pipeline  # pylint: disable=g-import-not-at-top
from ttm_jax.data import pretrain  # pylint: disable=g-import-not-at-top
from ttm_jax.models import config as config_lib  # pylint: disable=g-import-not-at-top
from ttm_jax.models import factory  # pylint: disable=g-import-not-at-top
from ttm_jax.models import presets  # pylint: disable=g-import-not-at-top
from ttm_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
from ttm_jax.train import steps as steps_lib  # pylint: disable=g-import-not-at-top

BATCH = 3000


def source():
  corpora = pretrain.synthetic_corpora(64, seed=0, min_length=2000,
                                       max_length=6000)
  return pretrain.corpus_windows(corpora[0], 512, 96)


def run(arch, windows, num_steps, threads):
  config = config_lib.TTMConfig(**presets.arch(
      arch, context_length=512, prediction_length=96,
      resolution_prefix_tuning=True, frequency_token_vocab_size=10))
  model = factory.new_model(config, jax.random.key(0))
  mesh = sharding.make_mesh()
  optimizer = optim.make_optimizer(10_000, 1e-3)
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  step = steps_lib.make_train_step(model, optimizer, mesh)
  batches = iter(pipeline.train_dataset(windows, BATCH, seed=0,
                                        num_threads=threads))
  first = sharding.shard_batch(next(batches), mesh)
  flops = bench_model.cost(step.lower(state, first).compile(), mesh.size)[0]
  for _ in range(2):  # Compile and warm up.
    state, metrics = step(state, sharding.shard_batch(next(batches), mesh))
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(num_steps):
    state, metrics = step(state, sharding.shard_batch(next(batches), mesh))
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / num_steps
  start = time.perf_counter()
  for _ in range(num_steps):  # The pipeline alone.
    next(batches)
  pipeline_seconds = (time.perf_counter() - start) / num_steps
  return dict(arch=arch, parameters=int(sum(
      np.size(x) for x in jax.tree_util.tree_leaves(
          model.variables['params']))), samples_per_s=BATCH / seconds,
              step_seconds=seconds, pipeline_batches_per_s=1 / pipeline_seconds,
              mflop_per_sample=flops / BATCH / 1e6, devices=mesh.size)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=6)
  parser.add_argument('--threads', type=int, default=0)
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  windows = source()
  peak = bench_model.sgemm_rate()
  rows = [run(arch, windows, args.steps, args.threads)
          for arch in ('tiny', 'r2_512')]
  print(f'sgemm {peak / 1e9:.0f} GFLOP/s; {rows[0]["devices"]} device(s); '
        f'batch {BATCH}, context 512 + 96, univariate')
  print('| shape | parameters | samples/s | step | pipeline batches/s | '
        'MFLOP/sample | fraction of sgemm bound |')
  print('|---|---|---|---|---|---|---|')
  for r in rows:
    bound = peak / (r['mflop_per_sample'] * 1e6)
    print(f"| {r['arch']} | {r['parameters']:,} | {r['samples_per_s']:,.0f} "
          f"| {r['step_seconds']:.2f} s | {r['pipeline_batches_per_s']:.1f} | "
          f"{r['mflop_per_sample']:.1f} | {r['samples_per_s'] / bound:.0%} |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(dict(rows=rows, sgemm_flops=peak), f, indent=2)


if __name__ == '__main__':
  main()
