r"""One command that proves the accelerator path, on whatever backend JAX sees.

  .venv/bin/python -m benchmarks.accelerator_check [--quick] \
      [--checkpoint DIR_OR_HUB_ID] [--out check.json]

It checks and measures, for IBM r2 512-96 through the engine's own path
(`inference.model.make_predict_fn`, `steps.make_train_step`, the data mesh over every
device):

  - parity: float32 outputs against the reference's (granite-tsfm 0.3.11,
    torch, float32) stored in benchmarks/fixtures/r2_reference_outputs.npz,
    so no torch is needed here; bfloat16's distance from them too;
  - devices: one device against all of them, the same global batch
    (forward outputs, and the loss and parameters after one train step);
  - throughput, float32 and bfloat16: forward and train step at batch 64 x 7
    channel-series and the best of a few batch sizes, against the roofline
    of benchmarks/GPU.md (XLA's own FLOP and byte counts for the compiled
    program over the device's peak rate and bandwidth), with compile time;
  - pretraining: steps/s from a small KernelSynth corpus written to disk
    and read back through the real pipeline (`experiments.prepare_corpus`'s
    writer, `configs/pretrain.py`, `builders.train_batches`), and whether
    the pipeline keeps up with the step.

The last line printed is one JSON object with every figure. --quick is the
CPU smoke mode (a test runs it in CI, about a minute): batch 64 only, the
device check on the forward only, a `tiny` pretraining shape, few timed
calls. The full mode takes a few
minutes on an accelerator; on a 2-core CPU about ten.

The checkpoint defaults to ../shared/checkpoints/fraware__ChronoAPI__root
(IBM r2 512-96) when that folder exists, else to the hub id
ibm-granite/granite-timeseries-ttm-r2 (revision main); the fixture records
the checkpoint's sha256, and a different one is refused.
"""

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time

from ttm_jax import compilation

compilation.use_cpu_cores()  # Before JAX starts, as the entry points do.

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from benchmarks import bench_model  # pylint: disable=g-import-not-at-top
from benchmarks import common  # pylint: disable=g-import-not-at-top
from ttm_jax import optim  # pylint: disable=g-import-not-at-top
from ttm_jax import sharding  # pylint: disable=g-import-not-at-top
from ttm_jax.models import checkpoint  # pylint: disable=g-import-not-at-top
from ttm_jax.models import factory  # pylint: disable=g-import-not-at-top
from ttm_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
from ttm_jax.inference import model as inference_model
from ttm_jax.train import steps  # pylint: disable=g-import-not-at-top

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'fixtures', 'r2_reference_outputs.npz')
HUB_ID = 'ibm-granite/granite-timeseries-ttm-r2'
CHANNELS = 7
PRECISIONS = ('float32', 'bfloat16')

# Peak dense rates (FLOP/s; float32 without TF32, bfloat16 on the matrix
# units) and memory bandwidth (B/s), from the vendors' data sheets, by a
# substring of `device.device_kind`. The roofline of GPU.md: series/s <=
# min(peak / FLOPs per series, bandwidth / bytes per series). A CPU's peak
# is its measured matmul rate, and its bandwidth is not bounded here.
PEAKS = {
    'H200': dict(float32=67e12, bfloat16=989e12, bandwidth=4.8e12),
    'H100': dict(float32=67e12, bfloat16=989e12, bandwidth=3.35e12),
    'A100': dict(float32=19.5e12, bfloat16=312e12, bandwidth=2.0e12),
    'L4': dict(float32=30e12, bfloat16=121e12, bandwidth=0.3e12),
    'TPU v5 lite': dict(float32=197e12 / 6, bfloat16=197e12,
                        bandwidth=819e9),
    'TPU v4': dict(float32=275e12 / 6, bfloat16=275e12, bandwidth=1.2e12),
}


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _weights_file(folder):
  for name in ('model.safetensors', 'pytorch_model.bin'):
    if os.path.exists(os.path.join(folder, name)):
      return os.path.join(folder, name)
  return None


def default_checkpoint():
  return (common.R2_CHECKPOINT if os.path.isdir(common.R2_CHECKPOINT)
          else HUB_ID)


def load_fixture(path=FIXTURE):
  if not os.path.exists(path):
    sys.exit(f'{path} is missing: it is part of the repository (made by '
             'scripts/make_accelerator_fixture.py).')
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def load_model(path, fixture):
  """(config, variables), refusing a checkpoint other than the fixture's."""
  if os.path.isdir(path):
    weights = _weights_file(path)
    expected = str(fixture['weights_sha256'])
    if weights is None or _sha256(weights) != expected:
      sys.exit(f'--checkpoint {path}: its weights are not the ones the '
               f'reference outputs were made with (sha256 {expected}, IBM '
               f'r2 512-96, {HUB_ID} revision main).')
  config, _, variables = checkpoint.load_pretrained(path)
  if (config.context_length, config.prediction_length) != (512, 96):
    sys.exit(f'--checkpoint {path}: context {config.context_length}, '
             f'horizon {config.prediction_length}; the fixture is r2 '
             '512-96.')
  return config, variables


def rel_diff(a, b):
  """max |a - b| / max |b|."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def parity(config, variables, fixture, mesh):
  out = {}
  for precision in PRECISIONS:
    predict = inference_model.make_predict_fn(bench_model.model_of(config, variables, precision),
                                    mesh)
    got = predict({'past_values': fixture['past_values']}).prediction_outputs
    out[precision] = rel_diff(got, fixture['prediction_outputs'])
  return out


def devices_diff(config, variables, train=True):
  """1 device against every device, forward and (with `train`) one train
  step, float32 (None with a single device)."""
  if jax.device_count() < 2:
    return None
  model = bench_model.model_of(config, variables, 'float32')
  meshes = [sharding.make_mesh(jax.devices()[:1]), sharding.make_mesh()]
  size = 8 * jax.device_count()
  batch = bench_model.batch(size, config, seed=1)
  forward = [inference_model.make_predict_fn(model, mesh)(
      {k: v for k, v in batch.items() if k.startswith('past')}
  ).prediction_outputs for mesh in meshes]
  out = dict(forward=rel_diff(forward[1], forward[0]))
  if not train:
    return out
  after = []
  for mesh in meshes:
    optimizer = optim.make_optimizer(100, 1e-3)
    state = state_lib.create_train_state(0, variables, optimizer, mesh)
    step = steps.make_train_step(model, optimizer, mesh)
    state, metrics = step(state, sharding.shard_batch(batch, mesh))
    after.append((jax.device_get(state.params),
                  float(metrics['train/loss'])))
  params = max(rel_diff(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(after[1][0]),
      jax.tree_util.tree_leaves(after[0][0])))
  return dict(out, loss=abs(after[1][1] - after[0][1]) / abs(after[0][1]),
              params_after_step=params)


def _peaks(precision, cpu_rates):
  kind = jax.devices()[0].device_kind
  for key, peaks in PEAKS.items():
    if key.lower() in kind.lower():
      return peaks[precision], peaks['bandwidth']
  if jax.default_backend() == 'cpu':
    return cpu_rates[precision], None
  return None, None


def _roofline(flops, nbytes, series, precision, cpu_rates):
  peak, bandwidth = _peaks(precision, cpu_rates)
  if not peak or not flops:
    return None
  bound = peak / (flops / series)
  if bandwidth and nbytes:
    bound = min(bound, bandwidth / (nbytes / series))
  return bound


def throughput(config, variables, precision, mesh, sizes, calls, cpu_rates):
  """Forward and train rates at each batch size (windows of 7 channels)."""
  model = bench_model.model_of(config, variables, precision)
  out = {'forward': {}, 'train': {}, 'compile_s': {}}
  predict = inference_model.make_predict_fn(model, mesh)
  optimizer = optim.make_optimizer(10_000, 1e-3)
  train_step = steps.make_train_step(model, optimizer, mesh)
  for size in sizes['forward']:
    batch = {k: v for k, v in bench_model.batch(size, config, seed=1).items()
             if k.startswith('past')}
    run = lambda b=batch: jax.block_until_ready(predict(b).prediction_outputs)
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    seconds = statistics.median(bench_model.times(run, calls))
    flops, nbytes = bench_model.forward_cost(model.module, variables, batch)
    series = size * CHANNELS
    out['forward'][size] = dict(
        series_per_s=series / seconds,
        roofline=_roofline(flops, nbytes, series, precision, cpu_rates))
    out['compile_s'][f'forward_b{size}'] = max(first - seconds, 0.0)
  for size in sizes['train']:
    state = state_lib.create_train_state(0, variables, optimizer, mesh)
    batch = sharding.shard_batch(bench_model.batch(size, config, seed=1), mesh)
    start = time.perf_counter()
    # Timed through this compiled program (the jitted step's own cache
    # would compile it again).
    compiled = train_step.lower(state, batch).compile()
    out['compile_s'][f'train_b{size}'] = time.perf_counter() - start
    flops, nbytes = bench_model.cost(compiled, mesh.devices.size)
    box = [state]

    def step(b=batch, compiled=compiled):
      box[0], metrics = compiled(box[0], b)
      jax.block_until_ready(metrics['train/loss'])

    step()
    seconds = statistics.median(bench_model.times(step, calls))
    series = size * CHANNELS
    out['train'][size] = dict(
        series_per_s=series / seconds,
        roofline=_roofline(flops, nbytes, series, precision, cpu_rates))
  return out


def pretraining(precision, quick, workdir):
  """Steps/s from a KernelSynth corpus on disk through the real pipeline,
  and the pipeline's own batches/s."""
  from configs import pretrain as pretrain_config  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import builders  # pylint: disable=g-import-not-at-top
  from ttm_jax.data.corpus import writing  # pylint: disable=g-import-not-at-top
  corpus = os.path.join(workdir, 'corpus')
  if not os.path.exists(corpus):
    preparer = writing.Preparer(corpus)
    preparer.add_spec('synthetic-kernels:num_series=64,length=4096,freq=h,'
                      'seed=0')
    preparer.close()
  arch, batch, count = ('tiny', 256, 4) if quick else ('r2_512', 3000
                                                       if jax.default_backend()
                                                       != 'cpu' else 512, 20)
  batch -= batch % jax.device_count()
  config = pretrain_config.get_config(
      f'corpus={corpus},arch={arch},batch={batch},steps=1000,'
      'eval_windows=64')
  config.compute_dtype = precision
  config.data.num_threads = 4
  mesh = sharding.make_mesh()
  model = factory.create_model(config)
  data = builders.build_data(config)
  batches = iter(builders.train_batches(config, data, True, config.seed))
  optimizer = optim.make_optimizer(1000, config.optim.lr)
  state = state_lib.create_train_state(0, model.variables, optimizer, mesh)
  step = steps.make_train_step(model, optimizer, mesh)
  start = time.perf_counter()
  for _ in range(2):  # Compile and warm up.
    state, metrics = step(state, sharding.shard_batch(next(batches), mesh))
  jax.block_until_ready(metrics)
  warmup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(count):
    state, metrics = step(state, sharding.shard_batch(next(batches), mesh))
  jax.block_until_ready(metrics)
  steps_per_s = count / (time.perf_counter() - start)
  # The pipeline alone, from a fresh iterator (the first one's prefetch
  # buffer is full by now).
  batches = iter(builders.train_batches(config, data, True, config.seed + 1))
  next(batches)
  start = time.perf_counter()
  for _ in range(4 * count):
    next(batches)
  pipeline_per_s = 4 * count / (time.perf_counter() - start)
  return dict(arch=arch, batch=batch, precision=precision,
              steps_per_s=steps_per_s,
              samples_per_s=steps_per_s * batch,
              pipeline_batches_per_s=pipeline_per_s,
              pipeline_keeps_up=bool(pipeline_per_s >= steps_per_s),
              first_two_steps_s=warmup,
              loss=float(metrics['train/loss']))


def _best(rates):
  size = max(rates, key=lambda s: rates[s]['series_per_s'])
  return size, rates[size]


def run(args):
  started = time.perf_counter()
  fixture = load_fixture()
  checkpoint_path = args.checkpoint or default_checkpoint()
  config, variables = load_model(checkpoint_path, fixture)
  mesh = sharding.make_mesh()
  backend = jax.default_backend()
  cpu_rates = ({p: bench_model.sgemm_rate(
      n=1024 if args.quick else 2048, repeats=3 if args.quick else 10,
      dtype=factory.compute_dtype(p) or jnp.float32) for p in PRECISIONS}
               if backend == 'cpu' else {})
  result = dict(backend=backend,
                devices=[f'{d.platform}:{d.device_kind}'
                         for d in jax.devices()],
                jax=jax.__version__, quick=bool(args.quick),
                checkpoint=checkpoint_path)
  diffs = parity(config, variables, fixture, mesh)
  result['parity_max_rel_diff'] = diffs['float32']
  result['parity_max_rel_diff_bfloat16'] = diffs['bfloat16']
  result['devices_max_rel_diff'] = devices_diff(config, variables,
                                                train=not args.quick)
  accelerator = backend != 'cpu'
  sizes = (dict(forward=[64], train=[64]) if args.quick else
           dict(forward=[64, 256, 1024, 4096] if accelerator
                else [64, 256, 1024],
                train=[64, 256, 1024] if accelerator else [64, 256]))
  calls = 3 if args.quick else 10
  with tempfile.TemporaryDirectory() as workdir:
    for precision in PRECISIONS:
      rates = throughput(config, variables, precision, mesh, sizes, calls,
                         cpu_rates)
      figures = {}
      for kind in ('forward', 'train'):
        size, best = _best(rates[kind])
        b64 = rates[kind][64]
        figures[f'{kind}_b64'] = b64['series_per_s']
        figures[f'{kind}_b64_roofline'] = b64['roofline']
        figures[f'{kind}_best_batch'] = size
        figures[f'{kind}_best'] = best['series_per_s']
        figures[f'{kind}_best_fraction_of_roofline'] = (
            best['series_per_s'] / best['roofline'] if best['roofline']
            else None)
      figures['by_batch'] = {k: rates[k] for k in ('forward', 'train')}
      figures['compile_s'] = rates['compile_s']
      figures['pretrain'] = (pretraining(precision, args.quick, workdir)
                             if precision == 'float32' or not args.quick
                             else None)
      result[precision] = figures
  result['forward_b64'] = result['float32']['forward_b64']
  result['train_b64'] = result['float32']['train_b64']
  result['pretrain_steps_per_s'] = result['float32']['pretrain'][
      'steps_per_s']
  result['pipeline_keeps_up'] = result['float32']['pretrain'][
      'pipeline_keeps_up']
  result['cpu_matmul_flops'] = cpu_rates or None
  result['seconds'] = time.perf_counter() - started
  return result


def _summary(result):
  lines = [f"{result['backend']}: {len(result['devices'])} x "
           f"{result['devices'][0]}; parity (float32) "
           f"{result['parity_max_rel_diff']:.1e}, bfloat16 "
           f"{result['parity_max_rel_diff_bfloat16']:.1e}; 1 vs N devices "
           f"{result['devices_max_rel_diff']}"]
  for precision in PRECISIONS:
    r = result[precision]
    lines.append(
        f"{precision}: forward b64 {r['forward_b64']:,.0f} series/s (best "
        f"{r['forward_best']:,.0f} at batch {r['forward_best_batch']}), "
        f"train b64 {r['train_b64']:,.0f} (best {r['train_best']:,.0f} at "
        f"{r['train_best_batch']}); compile "
        + ', '.join(f'{k} {v:.1f} s' for k, v in r['compile_s'].items())
        + (f"; pretrain {r['pretrain']['arch']} batch "
           f"{r['pretrain']['batch']}: {r['pretrain']['steps_per_s']:.2f} "
           f"steps/s, pipeline {r['pretrain']['pipeline_batches_per_s']:.1f}"
           f" batches/s" if r['pretrain'] else ''))
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true',
                      help='CPU smoke mode (about a minute)')
  parser.add_argument('--checkpoint', default='',
                      help=f'IBM r2 512-96 folder or hub id (default: '
                      f'{common.R2_CHECKPOINT} if present, else {HUB_ID})')
  parser.add_argument('--out', default='', help='also write the JSON here')
  args = parser.parse_args()
  result = run(args)
  print(_summary(result))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)
  print(json.dumps(result, default=float))


if __name__ == '__main__':
  main()
