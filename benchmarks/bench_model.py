r"""Model throughput through the engine's path, against the best PyTorch peer.

Forward (inference) at batch 64 x 7 channels and 1 x 7, and a training step
(forward + backward + AdamW with the one-cycle schedule, dropout on) at
64 x 7, in channel-series per second, for IBM r2 512-96, at float32 and at
bfloat16. ttm-jax runs what `experiments.train` / `experiments.evaluate`
run: one CPU device per core on the data mesh, the engine's train step
(`steps.make_train_step`) and inference function (`inference.model.make_predict_fn`)
with their XLA options, the model built with the config's `compute_dtype`.

The reference (granite-tsfm on torch, one thread per core) runs as each of
its peers: eager and `torch.compile`, each in float32 and under
`torch.autocast('cpu', bfloat16)`. ttm-jax is compared with the fastest peer
at the same precision (float32 with float32, bfloat16 with bfloat16).
Rounds are interleaved (the host is noisy); each figure is a median.

  .venv/bin/python -m benchmarks.bench_model \
      [--checkpoint ../shared/checkpoints/fraware__ChronoAPI__root] \
      [--precisions float32,bfloat16] [--peers eager,compile] \
      [--rounds 5] [--ours_only] [--json] [--out bench.json]

With --ours_only only the runtime requirements are needed, and with --json
the last line printed is one JSON object: {"float32": {"forward_b64":
series/s, "forward_b1": ..., "train_b64": ...}, "bfloat16": {...}}.
"""

import argparse
import json
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
from ttm_jax.models import modules
from ttm_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
from ttm_jax.inference import model as inference_model
from ttm_jax.train import steps  # pylint: disable=g-import-not-at-top

CHANNELS = 7
MEASURES = ('forward_b64', 'forward_b1', 'train_b64')
PRECISIONS = ('float32', 'bfloat16')


def sgemm_rate(n=2048, repeats=10, dtype=jnp.float32):
  """The best rate of an n x n matrix product (float32 accumulation)."""
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: jnp.matmul(x, x, preferred_element_type=jnp.float32))
  f(a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def batch(size, config, seed=0):
  """Random windows of `config`'s shapes, CHANNELS channels, all observed."""
  rng = np.random.default_rng(seed)
  past = rng.normal(size=(size, config.context_length, CHANNELS))
  future = rng.normal(size=(size, config.prediction_length, CHANNELS))
  return {'past_values': past.astype(np.float32),
          'past_observed_mask': np.ones(past.shape, np.float32),
          'future_values': future.astype(np.float32),
          'future_observed_mask': np.ones(future.shape, np.float32)}


def model_of(config, variables, precision='float32'):
  """The model of `variables` computing in `precision` (compute_dtype)."""
  module = modules.build_module(config, dtype=factory.compute_dtype(precision))
  return factory.Model(config, module, variables)


def cost(compiled, devices=1):
  """(FLOPs, bytes accessed) of a compiled program over `devices` (XLA's
  cost analysis counts one device's share of a sharded program)."""
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, list) else analysis
  return (analysis.get('flops', 0.0) * devices,
          analysis.get('bytes accessed', 0.0) * devices)


def forward_cost(module, variables, inputs):
  """(FLOPs, bytes) of one forward of `module` on `inputs` (the past_*
  arrays), compiled on its own."""
  inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
  return cost(jax.jit(lambda v, i: module.apply(v, **i).prediction_outputs)
              .lower(variables, inputs).compile())


def ours(path, precision='float32'):
  """{measure: (callable, series per call)}, and XLA FLOPs per series."""
  config, _, variables = checkpoint.load_pretrained(path)
  model = model_of(config, variables, precision)
  mesh = sharding.make_mesh()
  predict = inference_model.make_predict_fn(model, mesh)
  runners = {}
  for size in (64, 1):
    past = {k: v for k, v in batch(size, config).items()
            if k.startswith('past')}
    runners[f'forward_b{size}'] = (
        lambda b=past: jax.block_until_ready(
            predict(b).prediction_outputs), size * CHANNELS)
  optimizer = optim.make_optimizer(10_000, 1e-3)
  train_state = [state_lib.create_train_state(0, variables, optimizer, mesh)]
  train_step = steps.make_train_step(model, optimizer, mesh)
  train_batch = sharding.shard_batch(batch(64, config), mesh)

  def train():
    train_state[0], metrics = train_step(train_state[0], train_batch)
    jax.block_until_ready(metrics['train/loss'])

  runners['train_b64'] = (train, 64 * CHANNELS)
  past = {k: v for k, v in batch(64, config).items() if k.startswith('past')}
  flops = {'forward_b64': forward_cost(model.module, variables, past)[0]
                          / (64 * CHANNELS),
           'train_b64': cost(train_step.lower(train_state[0], train_batch)
                             .compile(), mesh.size)[0] / (64 * CHANNELS)}
  return runners, flops, mesh.devices.size


def reference(path, peer='eager', precision='float32'):
  """The reference's runners as one peer: `peer` 'eager' or 'compile'
  (`torch.compile`, default mode), `precision` 'float32' or 'bfloat16'
  (`torch.autocast('cpu', torch.bfloat16)` around forward and loss)."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(compilation.usable_cores())
  ref = TinyTimeMixerForPrediction.from_pretrained(path)
  call = torch.compile(ref) if peer == 'compile' else ref
  autocast = ((lambda: torch.autocast('cpu', dtype=torch.bfloat16))
              if precision == 'bfloat16' else contextlib.nullcontext)
  opt = torch.optim.AdamW(ref.parameters(), lr=1e-4, weight_decay=0.01)
  runners = {}
  for size in (64, 1):
    past = torch.tensor(batch(size, ref.config)['past_values'])

    def forward(x=past):
      ref.eval()
      with torch.no_grad(), autocast():
        call(past_values=x)

    runners[f'forward_b{size}'] = (forward, size * CHANNELS)
  data = {k: torch.tensor(v) for k, v in batch(64, ref.config).items()}

  def train():
    ref.train()
    opt.zero_grad()
    with autocast():
      loss = call(past_values=data['past_values'],
                  future_values=data['future_values']).loss
    loss.backward()
    opt.step()

  runners['train_b64'] = (train, 64 * CHANNELS)
  return runners


def times(fn, calls):
  """The seconds of each of `calls` calls of `fn`."""
  out = []
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    out.append(time.perf_counter() - start)
  return out


def measure(sides, rounds, calls):
  """Interleaved rounds: {side: {name: series/s (median)}}."""
  seconds = {side: {name: [] for name in runners}
              for side, runners in sides.items()}
  for side, runners in sides.items():  # Warm-up (and compilation).
    for fn, _ in runners.values():
      for _ in range(3):
        fn()
  for _ in range(rounds):
    for name in next(iter(sides.values())):
      for side, runners in sides.items():
        fn, _ = runners[name]
        seconds[side][name] += times(fn, calls * (5 if 'b1' in name else 1))
  return {side: {name: sides[side][name][1] / statistics.median(ts)
                 for name, ts in by_name.items()}
          for side, by_name in seconds.items()}


def best_peers(rates, precision):
  """{measure: (peer name, series/s)}: the fastest reference peer at
  `precision` for each measure."""
  peers = {side: r for side, r in rates.items()
           if side.startswith('reference') and side.endswith(precision)}
  return {name: max(((side, r[name]) for side, r in peers.items()),
                    key=lambda x: x[1])
          for name in MEASURES if peers}


def table(rates, flops, peaks, precisions):
  """The markdown table: each measure at each precision, ttm-jax against
  every peer and the fastest one."""
  peer_names = sorted({side.split(':')[1] for side in rates
                       if side.startswith('reference')})
  lines = ['| measure | precision | ttm-jax series/s | '
           + ''.join(f'{p} | ' for p in peer_names)
           + 'best peer | ttm-jax / best | fraction of the matmul bound |',
           '|---|---|---|' + '---|' * len(peer_names) + '---|---|---|']
  for precision in precisions:
    best = best_peers(rates, precision)
    for name in MEASURES:
      ours_rate = rates[f'ttm-jax:{precision}'][name]
      per_series = flops[precision][
          'train_b64' if 'train' in name else 'forward_b64']
      cells = [f'{rates[side][name]:,.0f}' if side in rates else '-'
               for side in (f'reference:{p}:{precision}'
                            for p in peer_names)]
      if name in best:
        side, rate = best[name]
        vs = f'{side.split(":")[1]} | **{ours_rate / rate:.2f}×**'
      else:
        vs = '- | -'
      lines.append(f'| {name} | {precision} | {ours_rate:,.0f} | '
                   + ''.join(c + ' | ' for c in cells) + vs
                   + f' | {ours_rate * per_series / peaks[precision]:.0%} |')
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--checkpoint', default=common.R2_CHECKPOINT)
  parser.add_argument('--precisions', default=','.join(PRECISIONS))
  parser.add_argument('--peers', default='eager,compile',
                      help="reference peers: 'eager', 'compile' (each at "
                           'every precision asked)')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--calls', type=int, default=5)
  parser.add_argument('--ours_only', action='store_true')
  parser.add_argument('--json', action='store_true')
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  precisions = [p for p in args.precisions.split(',') if p]
  peers = [p for p in args.peers.split(',') if p]
  for value, allowed, flag in ((precisions, PRECISIONS, '--precisions'),
                               (peers, ('eager', 'compile'), '--peers')):
    unknown = sorted(set(value) - set(allowed))
    if unknown or not value:
      parser.error(f'{flag}: {unknown or "nothing"} not among {allowed}')
  sides, flops = {}, {}
  for precision in precisions:
    runners, flops[precision], devices = ours(args.checkpoint, precision)
    sides[f'ttm-jax:{precision}'] = runners
    if not args.ours_only:
      for peer in peers:
        sides[f'reference:{peer}:{precision}'] = reference(
            args.checkpoint, peer, precision)
  rates = measure(sides, args.rounds, args.calls)
  peaks = {p: sgemm_rate(dtype=factory.compute_dtype(p) or jnp.float32)
           for p in precisions}
  print(f'{jax.default_backend()}: {devices} device(s); matmul bound '
        + ', '.join(f'{p} {peaks[p] / 1e9:.0f} GFLOP/s' for p in precisions)
        + '; XLA MFLOP/series: '
        + ', '.join(f'{p} forward {flops[p]["forward_b64"] / 1e6:.1f} train '
                    f'{flops[p]["train_b64"] / 1e6:.1f}' for p in precisions))
  print(table(rates, flops, peaks, precisions))
  record = dict(rates=rates, flops_per_series=flops, matmul_flops=peaks,
                devices=devices, backend=jax.default_backend(),
                best_peers={p: best_peers(rates, p) for p in precisions})
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(record, f, indent=2)
  if args.json:
    print(json.dumps({p: {k: round(v, 1)
                          for k, v in rates[f'ttm-jax:{p}'].items()}
                      for p in precisions}))


if __name__ == '__main__':
  main()
