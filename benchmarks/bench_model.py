r"""Model throughput: ttm-jax vs the reference (granite-tsfm), same machine,
same run, same weights.

Forward and training-step (fwd + bwd + AdamW) throughput of TTM r2 512-96 at
batch 64 x 7 channels and 1 x 7, in channel-series per second, interleaved
rounds (the host is noisy), medians. Also XLA's FLOP count per series and the
fraction of this machine's measured sgemm rate that the JAX run reaches.

  .venv/bin/python -m benchmarks.bench_model \
      [--checkpoint ../shared/checkpoints/fraware__ChronoAPI__root] \
      [--rounds 5] [--out bench.json]

Needs the dev dependencies (torch, granite-tsfm): bash scripts/setup.sh --dev.
"""

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import presets
from ttm_jax.models import ttm



def _time(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def sgemm_rate(n=2048, repeats=10):
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = min(_time(lambda: f(a).block_until_ready(), repeats))
  return 2 * n**3 / best


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--checkpoint', default=common.R2_CHECKPOINT)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--calls', type=int, default=5)
  parser.add_argument('--out', default='')
  args = parser.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count() or 2)

  if os.path.isdir(args.checkpoint):
    config, model, variables = checkpoint.load_pretrained(args.checkpoint)
    ref = TinyTimeMixerForPrediction.from_pretrained(args.checkpoint)
    source = args.checkpoint
  else:
    config = config_lib.TTMConfig(**presets.R2_512_96)
    model = ttm.build_module(config)
    variables = checkpoint.init_variables(config, jax.random.key(0))
    from tests import reference  # pylint: disable=g-import-not-at-top
    ref = TinyTimeMixerForPrediction(reference.reference_config(config))
    state = checkpoint.to_state_dict(variables)
    ref.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    source = 'random init (r2 512-96 shapes)'
  params = variables['params']
  print(f'model: {source}; {sum(np.size(x) for x in jax.tree_util.tree_leaves(params)):,} parameters')

  def jax_forward(p, x):
    return model.apply({'params': p}, x).prediction_outputs

  tx = optax.adamw(1e-4, weight_decay=0.01)

  def jax_train_step(p, opt_state, x, y, rng):
    def loss_fn(p):
      return model.apply({'params': p}, x, future_values=y,
                         deterministic=False, rngs={'dropout': rng}).loss
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, opt_state = tx.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss

  forward = jax.jit(jax_forward)
  train_step = jax.jit(jax_train_step, donate_argnums=(0, 1))
  torch_opt = torch.optim.AdamW(ref.parameters(), lr=1e-4, weight_decay=0.01)

  results = []
  peak = sgemm_rate()
  print(f'sgemm (2048^2, fp32, jax): {peak / 1e9:.0f} GFLOP/s')
  for batch in (64, 1):
    rng = np.random.RandomState(0)
    x = rng.randn(batch, config.context_length, 7).astype(np.float32)
    y = rng.randn(batch, config.prediction_length, 7).astype(np.float32)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    xt, yt = torch.tensor(x), torch.tensor(y)
    series = batch * 7
    flops = forward.lower(params, xj).compile().cost_analysis()
    flops = flops[0] if isinstance(flops, list) else flops
    flops_per_series = flops['flops'] / series
    train_flops = train_step.lower(params, tx.init(params), xj, yj,
                                   jax.random.key(0)).compile().cost_analysis()
    train_flops = (train_flops[0] if isinstance(train_flops, list)
                   else train_flops)['flops'] / series

    state = {'p': jax.tree_util.tree_map(jnp.array, params)}
    state['o'] = tx.init(state['p'])
    step_count = [0]

    def run_jax_forward():
      forward(params, xj).block_until_ready()

    def run_jax_train():
      step_count[0] += 1
      state['p'], state['o'], loss = train_step(
          state['p'], state['o'], xj, yj, jax.random.key(step_count[0]))
      loss.block_until_ready()

    def run_torch_forward():
      ref.eval()
      with torch.no_grad():
        ref(past_values=xt)

    def run_torch_train():
      ref.train()
      torch_opt.zero_grad()
      ref(past_values=xt, future_values=yt).loss.backward()
      torch_opt.step()

    runners = {'forward': (run_jax_forward, run_torch_forward),
               'train step': (run_jax_train, run_torch_train)}
    for name, (jax_fn, torch_fn) in runners.items():
      jax_fn()
      torch_fn()  # Warm-up (and compilation).
      jax_times, torch_times = [], []
      for _ in range(args.rounds):  # Interleaved rounds.
        jax_times += _time(jax_fn, args.calls)
        torch_times += _time(torch_fn, args.calls)
      jax_rate = series / statistics.median(jax_times)
      torch_rate = series / statistics.median(torch_times)
      per_series = flops_per_series if name == 'forward' else train_flops
      results.append(dict(
          what=name, batch=f'{batch} x 7', jax_series_per_s=jax_rate,
          reference_series_per_s=torch_rate, ratio=jax_rate / torch_rate,
          mflop_per_series=per_series / 1e6,
          fraction_of_sgemm=jax_rate * per_series / peak))

  header = ('| what | batch | ttm-jax series/s | reference series/s | ratio |'
            ' MFLOP/series (XLA) | fraction of sgemm rate |')
  print(header)
  print('|' + '---|' * 7)
  for r in results:
    print(f"| {r['what']} | {r['batch']} | {r['jax_series_per_s']:,.0f} | "
          f"{r['reference_series_per_s']:,.0f} | {r['ratio']:.2f}x | "
          f"{r['mflop_per_series']:.1f} | {r['fraction_of_sgemm']:.0%} |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(dict(sgemm_flops=peak, results=results, source=source), f,
                indent=2)


if __name__ == '__main__':
  main()
