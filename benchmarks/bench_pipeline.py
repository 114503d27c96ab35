r"""Input-pipeline throughput vs the training step that consumes it.

Batches per second of the grain training pipeline for r2-shaped windows
(context 512 + horizon 96, batch 64), with 0 (main thread) and 4 reader
threads, beside the steps per second of an r2 512-96 training step
(fwd + bwd + AdamW) on the same batches. Univariate (pretraining-style)
windows from the synthetic corpus, and ETTh1's 7-channel windows when the
file is present.

  .venv/bin/python -m benchmarks.bench_pipeline [--data_dir ../shared/data/ltsf]
"""

import argparse
import os
import time

import jax
import numpy as np

from benchmarks import common
from ttm_jax import optim
from ttm_jax import sharding
from ttm_jax.data import forecasting
from ttm_jax.data import pipeline
from ttm_jax.data import pretrain
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.models import presets
from ttm_jax.models import modules
from ttm_jax.train import state as state_lib


def pipeline_rate(source, threads, batches=60):
  it = iter(pipeline.train_dataset(source, 64, seed=0, num_threads=threads))
  next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches / (time.perf_counter() - start)


def step_rate(source, steps=8):
  config = config_lib.TTMConfig(**presets.R2_512_96)
  model = factory.Model(config, modules.build_module(config),
                        checkpoint.init_variables(config, jax.random.key(0)))
  mesh = sharding.make_mesh()
  optimizer = optim.make_optimizer(100, 1e-3)
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  step = steps.make_train_step(model, optimizer, mesh)
  it = iter(pipeline.train_dataset(source, 64, seed=0))
  batch = sharding.shard_batch(next(it), mesh)
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return steps / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--data_dir', default=common.LTSF_DIR)
  args = parser.parse_args()
  sources = {}
  corpus = pretrain.synthetic_corpora(48, seed=0, min_length=2000,
                                      max_length=6000)
  sources['synthetic univariate (pretraining)'] = forecasting.ConcatSource(
      [pretrain.corpus_windows(c, 512, 96) for c in corpus])
  if os.path.exists(os.path.join(args.data_dir, 'ETTh1.csv')):
    sources['ETTh1, 7 channels (fine-tuning)'] = forecasting.load_benchmark(
        'etth1', 512, 96, data_dir=args.data_dir).train
  print('| windows | pipeline batches/s (0 threads) | (4 threads) | '
        'r2 train steps/s | pipeline / step |')
  print('|---|---|---|---|---|')
  for name, source in sources.items():
    rate0 = pipeline_rate(source, 0)
    rate4 = pipeline_rate(source, 4)
    steps = step_rate(source)
    print(f'| {name} | {rate0:,.0f} | {rate4:,.0f} | {steps:.2f} | '
          f'{max(rate0, rate4) / steps:,.0f}x |', flush=True)


if __name__ == '__main__':
  np.set_printoptions(precision=3)
  main()
