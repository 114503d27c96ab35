r"""Model throughput through the engine's default path, beside the reference.

Forward (inference) at batch 64 x 7 channels and 1 x 7, and a training step
(forward + backward + AdamW with the one-cycle schedule, dropout on) at
64 x 7, in channel-series per second, for IBM r2 512-96. ttm-jax runs what
`experiments.train` / `experiments.evaluate` run: one CPU device per core
on the data mesh, the engine's train step (`steps.make_train_step`) and
inference function (`steps.make_predict_fn`) with their XLA options. The
reference is granite-tsfm on torch with one thread per core. Rounds are
interleaved (the host is noisy); each figure is a median.

  .venv/bin/python -m benchmarks.bench_model \
      [--checkpoint ../shared/checkpoints/fraware__ChronoAPI__root] \
      [--rounds 5] [--ours_only] [--json] [--out bench.json]

With --ours_only only the runtime requirements are needed, and with
--json the last line printed is one JSON object:
{"forward_b64": series/s, "forward_b1": ..., "train_b64": ...}.
"""

import argparse
import json
import os
import statistics
import time

from ttm_jax import compilation

compilation.use_cpu_cores()  # Before JAX starts, as the entry points do.

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from benchmarks import common  # pylint: disable=g-import-not-at-top
from ttm_jax import optim  # pylint: disable=g-import-not-at-top
from ttm_jax import sharding  # pylint: disable=g-import-not-at-top
from ttm_jax.models import checkpoint  # pylint: disable=g-import-not-at-top
from ttm_jax.models import factory  # pylint: disable=g-import-not-at-top
from ttm_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
from ttm_jax.train import steps  # pylint: disable=g-import-not-at-top

CHANNELS = 7


def sgemm_rate(n=2048, repeats=10):
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def _batch(size, config, seed=0):
  rng = np.random.default_rng(seed)
  past = rng.normal(size=(size, config.context_length, CHANNELS))
  future = rng.normal(size=(size, config.prediction_length, CHANNELS))
  return {'past_values': past.astype(np.float32),
          'past_observed_mask': np.ones(past.shape, np.float32),
          'future_values': future.astype(np.float32),
          'future_observed_mask': np.ones(future.shape, np.float32)}


def ours(path):
  """{name: (callable, series per call, XLA FLOPs per series)}."""
  config, module, variables = checkpoint.load_pretrained(path)
  model = factory.Model(config, module, variables)
  mesh = sharding.make_mesh()
  predict = steps.make_predict_fn(model, mesh)
  runners = {}
  for size in (64, 1):
    batch = {k: v for k, v in _batch(size, config).items()
             if k.startswith('past')}
    runners[f'forward_b{size}'] = (
        lambda b=batch: jax.block_until_ready(
            predict(b).prediction_outputs), size * CHANNELS)
  optimizer = optim.make_optimizer(10_000, 1e-3)
  train_state = [state_lib.create_train_state(0, variables, optimizer, mesh)]
  train_step = steps.make_train_step(model, optimizer, mesh)
  batch = sharding.shard_batch(_batch(64, config), mesh)

  def train():
    train_state[0], metrics = train_step(train_state[0], batch)
    jax.block_until_ready(metrics['train/loss'])

  runners['train_b64'] = (train, 64 * CHANNELS)
  flops = {'forward_b64': _flops(module, variables, config, 64),
           'train_b64': _train_flops(train_step, train_state[0], batch)
                        * mesh.size}  # Cost analysis counts one device.
  return runners, flops, mesh.devices.size


def _flops(module, variables, config, size):
  inputs = {k: jnp.asarray(v) for k, v in _batch(size, config).items()
            if k.startswith('past')}
  cost = jax.jit(lambda v, i: module.apply(v, **i).prediction_outputs).lower(
      variables, inputs).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return cost['flops'] / (size * CHANNELS)


def _train_flops(train_step, state, batch):
  cost = train_step.lower(state, batch).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return cost['flops'] / (64 * CHANNELS)


def reference(path):
  """The reference's runners, same shapes, torch with a thread per core."""
  import torch  # pylint: disable=g-import-not-at-top
  from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(compilation.usable_cores())
  ref = TinyTimeMixerForPrediction.from_pretrained(path)
  opt = torch.optim.AdamW(ref.parameters(), lr=1e-4, weight_decay=0.01)
  runners = {}
  for size in (64, 1):
    past = torch.tensor(_batch(size, ref.config)['past_values'])

    def forward(x=past):
      ref.eval()
      with torch.no_grad():
        ref(past_values=x)

    runners[f'forward_b{size}'] = (forward, size * CHANNELS)
  data = {k: torch.tensor(v) for k, v in _batch(64, ref.config).items()}

  def train():
    ref.train()
    opt.zero_grad()
    ref(past_values=data['past_values'],
        future_values=data['future_values']).loss.backward()
    opt.step()

  runners['train_b64'] = (train, 64 * CHANNELS)
  return runners


def _times(fn, calls):
  out = []
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    out.append(time.perf_counter() - start)
  return out


def measure(sides, rounds, calls):
  """Interleaved rounds: {side: {name: series/s (median)}}."""
  times = {side: {name: [] for name in runners}
           for side, runners in sides.items()}
  for side, runners in sides.items():  # Warm-up (and compilation).
    for fn, _ in runners.values():
      for _ in range(3):
        fn()
  for _ in range(rounds):
    for name in next(iter(sides.values())):
      for side, runners in sides.items():
        fn, _ = runners[name]
        times[side][name] += _times(fn, calls * (5 if 'b1' in name else 1))
  return {side: {name: sides[side][name][1] / statistics.median(ts)
                 for name, ts in by_name.items()}
          for side, by_name in times.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--checkpoint', default=common.R2_CHECKPOINT)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--calls', type=int, default=5)
  parser.add_argument('--ours_only', action='store_true')
  parser.add_argument('--json', action='store_true')
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  runners, flops, devices = ours(args.checkpoint)
  sides = {'ttm-jax': runners}
  if not args.ours_only:
    sides['reference'] = reference(args.checkpoint)
  rates = measure(sides, args.rounds, args.calls)
  peak = sgemm_rate()
  print(f'{jax.default_backend()}: {devices} device(s); sgemm '
        f'{peak / 1e9:.0f} GFLOP/s; XLA MFLOP/series: forward '
        f'{flops["forward_b64"] / 1e6:.1f}, train {flops["train_b64"] / 1e6:.1f}')
  print('| what | ttm-jax series/s | reference series/s | ratio | '
        'fraction of sgemm bound |')
  print('|---|---|---|---|---|')
  for name, ours_rate in rates['ttm-jax'].items():
    per_series = flops['train_b64' if 'train' in name else 'forward_b64']
    ref = rates.get('reference', {}).get(name)
    print(f'| {name} | {ours_rate:,.0f} | '
          + (f'{ref:,.0f} | {ours_rate / ref:.2f}x' if ref else '- | -')
          + f' | {ours_rate * per_series / peak:.0%} |')
  record = dict(rates=rates, flops_per_series=flops, sgemm_flops=peak,
                devices=devices, backend=jax.default_backend())
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(record, f, indent=2)
  if args.json:
    print(json.dumps({k: round(v, 1) for k, v in rates['ttm-jax'].items()}))


if __name__ == '__main__':
  main()
