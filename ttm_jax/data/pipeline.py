"""grain input pipelines: shuffled training batches, per-host sharding,
checkpointable iterator state, and exhaustive padded evaluation batches.

A window source maps an index to one window's dict of arrays
(`forecasting.WindowSource`); grain does the shuffling, host slicing,
batching and (optionally) multi-threaded reading.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Iterator, Optional, Sequence

import grain
import numpy as np

from ttm_jax import errors


def _host(process_index: Optional[int], process_count: Optional[int]):
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    return jax.process_index(), jax.process_count()
  return process_index, process_count


def _read_options(num_threads: int) -> grain.ReadOptions:
  """`num_threads` reader threads with a buffer of 4 per thread; 0 reads in
  the main thread with no buffer. (grain's own default, used when no options
  are given, is 16 threads and 500 buffered elements: for batches of wide
  windows that is gigabytes of memory and threads contending with XLA.)"""
  if num_threads <= 0:
    return grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
  return grain.ReadOptions(num_threads=num_threads,
                           prefetch_buffer_size=4 * num_threads)


def train_dataset(source: Sequence[Dict[str, np.ndarray]], global_batch_size:
                  int, seed: int, *, num_epochs: Optional[int] = None,
                  drop_remainder: bool = True,
                  process_index: Optional[int] = None,
                  process_count: Optional[int] = None,
                  num_threads: int = 0) -> grain.IterDataset:
  """Shuffled, host-sharded, batched training windows.

  Each epoch is a fresh permutation of all windows (seeded by `seed` and the
  epoch) in global batches; this host takes its contiguous block of
  `global_batch_size / process_count` rows of each global batch, so every
  host runs the same number of steps and a global batch is the same
  whatever the process count.

  With `drop_remainder` the windows left over after the last whole batch of
  an epoch are dropped. Without it (HF Trainer's default, which the
  reference's fine-tuning uses) they form a last batch, padded to full size
  with rows whose `future_observed_mask` is zero and `weight` is 0: every
  TTM loss is a mean over observed future entries only, so the padded batch
  gives the loss (and gradient) of the short batch the Trainer would run,
  with one compiled shape. Every item carries `weight` (1 real, 0 padding).

  Args:
    source: random-access windows.
    global_batch_size: batch over all hosts.
    seed: shuffle seed.
    num_epochs: epochs (None: repeat forever).
    drop_remainder: drop the partial batch of each epoch (else pad it).
    process_index, process_count: this host (default: jax's).
    num_threads: grain reader threads (0: read in the main thread).
  """
  process_index, process_count = _host(process_index, process_count)
  if global_batch_size % process_count:
    raise errors.ConfigError(
        f'config.data.batch_size={global_batch_size} is not divisible by '
        f'the {process_count} processes.')
  per_host = global_batch_size // process_count
  if not len(source) or (drop_remainder and len(source) < global_batch_size):
    raise errors.DataError(f'{len(source)} training windows are fewer than '
                           f'one batch of {global_batch_size}.')
  dataset = _per_epoch(source, seed, num_epochs, global_batch_size,
                       pad=not drop_remainder)
  dataset = _host_block(dataset, global_batch_size, process_index,
                        process_count)
  dataset = dataset.batch(per_host, drop_remainder=True)
  return dataset.to_iter_dataset(_read_options(num_threads))


def _host_block(stream, global_batch_size: int, process_index: int,
                process_count: int):
  """This host's rows: block `process_index` of every global batch, so a
  global batch holds the same windows in the same order (hence the same
  dropout masks) whatever the number of processes."""
  per_host = global_batch_size // process_count
  count = (len(stream) // global_batch_size) * per_host

  def item(j):
    batch, row = divmod(int(j), per_host)
    return stream[batch * global_batch_size + process_index * per_host + row]

  return grain.MapDataset.range(count).map(item)


class _Permutations:
  """Per-epoch permutations of range(size), computed lazily (grain's index
  shuffle: a keyed bijection, no array of `size` indices), so a shuffle of
  a billion windows costs no memory.

  Not grain's `shuffle(s).repeat(reseed_each_epoch=True)`: grain 0.2.18
  shuffles epoch e with seed `(s + e) % 2**32`, ours with
  `SeedSequence([seed, e])`, so only epoch 0 could match and the order (and
  few-shot figures) would change; with grain's, seed s's epoch e+1 is also
  seed s+1's epoch e, so runs of consecutive seeds would share orders."""

  def __init__(self, size: int, seed: int):
    self.size, self.seed = size, seed
    self.epochs = functools.lru_cache(maxsize=4)(self._epoch)

  def _epoch(self, epoch: int) -> grain.MapDataset:
    mixed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
    return grain.MapDataset.range(self.size).shuffle(seed=mixed)

  def __call__(self, epoch: int, position: int) -> int:
    return int(self.epochs(epoch)[position])


def _per_epoch(source, seed: int, num_epochs: Optional[int],
               multiple: int = 1, pad: bool = False):
  """Concatenated epochs, each a permutation of the source by its own seed,
  cut (or, with `pad`, padded) to a multiple of `multiple` windows (whole
  global batches, so hosts run equal steps and no batch straddles two
  epochs). A MapDataset: random access, so iterator state is a position."""
  size = len(source)
  usable = (-(-size // multiple) if pad else size // multiple) * multiple
  permutations = _Permutations(size, seed)

  def window(index):
    epoch, position = divmod(index, usable)
    if position >= size:
      return _padding(source[permutations(epoch, 0)])
    item = source[permutations(epoch, position)]
    return {**item, 'weight': np.float32(1.0)} if pad else item

  count = usable * num_epochs if num_epochs else usable * (2**40 // usable)
  return grain.MapDataset.range(count).map(window)


def _padding(item: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """A row that counts for nothing in the loss: no observed future."""
  if 'future_observed_mask' not in item:
    raise ValueError('padding a partial batch needs future_observed_mask in '
                     'the windows (the loss ignores unobserved entries).')
  return {**item,
          'future_observed_mask': np.zeros_like(item['future_observed_mask']),
          'weight': np.float32(0.0)}


def steps_per_epoch(num_windows: int, global_batch_size: int,
                    drop_remainder: bool = True) -> int:
  """Steps of one epoch: whole global batches, plus the padded partial one
  unless `drop_remainder`."""
  if drop_remainder:
    return num_windows // global_batch_size
  return -(-num_windows // global_batch_size)


class EvalBatches:
  """Every window exactly once, in order, in fixed-size padded batches.

  Global batch k holds windows [k*B, (k+1)*B); this host takes its slice of
  `B / process_count`. The last batch is padded with copies of window 0 and a
  `weight` of 0, so metrics weighted by `weight` count each window once and
  every host runs the same number of batches.
  """

  def __init__(self, source, global_batch_size: int, *,
               process_index: Optional[int] = None,
               process_count: Optional[int] = None, num_threads: int = 0):
    self.source = source
    self.process_index, self.process_count = _host(process_index,
                                                   process_count)
    if global_batch_size % self.process_count:
      raise ValueError(f'global batch {global_batch_size} is not divisible '
                       f'by {self.process_count} processes.')
    self.global_batch_size = global_batch_size
    self.per_host = global_batch_size // self.process_count
    self.num_batches = math.ceil(len(source) / global_batch_size)
    self.num_threads = num_threads

  def __len__(self) -> int:
    return self.num_batches

  def _batch(self, k: int) -> Dict[str, Any]:
    first = k * self.global_batch_size + self.process_index * self.per_host
    indices = np.arange(first, first + self.per_host)
    valid = indices < len(self.source)
    items = [self.source[int(i) if ok else 0] for i, ok in zip(indices, valid)]
    batch = {key: np.stack([item[key] for item in items])
             for key in items[0]}
    batch['weight'] = valid.astype(np.float32)
    return batch

  def __iter__(self) -> Iterator[Dict[str, Any]]:
    dataset = grain.MapDataset.range(self.num_batches).map(self._batch)
    return iter(dataset.to_iter_dataset(_read_options(self.num_threads)))


def mixture_dataset(sources: Sequence[Any], weights: Sequence[float],
                    global_batch_size: int, seed: int, *,
                    process_index: Optional[int] = None,
                    process_count: Optional[int] = None,
                    num_threads: int = 0) -> grain.IterDataset:
  """An endless weighted mixture of window sources (pretraining).

  Each source is shuffled per epoch and repeated; `MapDataset.mix` draws
  from them in proportion to `weights`.
  """
  if len(sources) != len(weights) or not sources:
    raise ValueError('need one weight per source')
  process_index, process_count = _host(process_index, process_count)
  per_host = global_batch_size // process_count
  parts = [_per_epoch(s, seed + 7919 * i, None)
           for i, s in enumerate(sources)]
  total = float(sum(weights))
  mixed = grain.MapDataset.mix(parts, [w / total for w in weights])
  mixed = _host_block(mixed, global_batch_size, process_index,
                      process_count).batch(per_host, drop_remainder=True)
  return mixed.to_iter_dataset(_read_options(num_threads))
