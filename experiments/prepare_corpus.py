r"""Converts time series sources into a pretraining corpus on disk.

  .venv/bin/python -m experiments.prepare_corpus --out DIR \
      --source 'monash:../shared/data/monash/*.tsf' \
      --source csv:../shared/data/libcity/los_speed.csv,freq=5min \
      --source synthetic:num_series=1000,length=5000,seed=0 \
      [--drs 'h=24;10min=3,6'] [--valid_fraction 0.1] [--test_fraction 0.1]

Sources: `monash:GLOB` (.tsf files), `csv:PATH[,timestamp=COL][,id=COL,
value=COL][,freq=F]` (wide: a series per column; long: id and value
columns, rows of a series contiguous), `synthetic:num_series=N,length=L,
seed=S` (the embedded generator). Each series is one record (long ones are
cut into overlapping chunks) in sharded ArrayRecord files; diverse
resolution sampling writes each lower-resolution copy as records of its own
source, named with its frequency (`kdd_cup_2018...@D`). DIR/corpus.json
lists the sources with their counts, frequencies and the split rule.
Memory is bounded by one series (a few columns of a wide CSV); registered
evaluation benchmarks are refused.
"""

import time

from absl import flags

from experiments import common
from ttm_jax import errors
from ttm_jax.data.corpus import format
from ttm_jax.data.corpus import sources
from ttm_jax.data.corpus import writing

_OUT = flags.DEFINE_string('out', None, 'Corpus folder (new).', required=True)
_SOURCES = flags.DEFINE_multi_string('source', [], 'A source (repeatable).')
_DRS = flags.DEFINE_string(
    'drs', 'min=2,5,10;5min=2,3,6,12;10min=3,6;15min=2,4;30min=2;h=24;D=7',
    'Diverse resolution sampling: downsampling factors per frequency, '
    "'freq=f1,f2;...' (empty: none). The defaults reach frequencies the "
    'resolution-prefix vocabulary knows.')
_VALID = flags.DEFINE_float('valid_fraction', 0.1, 'Per series, validation '
                            'rows (before the test rows).')
_TEST = flags.DEFINE_float('test_fraction', 0.1, 'Per series, test rows (at '
                           'the end).')
_CHUNK = flags.DEFINE_integer('chunk_length', 16384, 'Longest record.')
_MAX_WINDOW = flags.DEFINE_integer('max_window', 2560, 'Longest window '
                                   '(context + horizon) the corpus serves.')
_SHARD_MB = flags.DEFINE_integer('shard_mb', 64, 'Shard size, MB.')


def parse_drs(text: str):
  out = {}
  for item in filter(None, text.split(';')):
    freq, sep, factors = item.partition('=')
    try:
      if not sep:
        raise ValueError(item)
      out[freq.strip()] = [int(f) for f in factors.split(',') if f]
    except ValueError:
      raise errors.ConfigError(f'--drs {text!r}: expected freq=f1,f2;...; '
                               f'got {item!r}.') from None
  try:
    writing.check_drs(out)
  except errors.ConfigError as e:
    raise errors.ConfigError(f'--drs {text!r}: {e}') from None
  return out


@common.main_wrapper
def main(argv):
  del argv
  if not _SOURCES.value:
    raise errors.ConfigError('Give at least one --source.')
  start = time.time()
  rule = format.SplitRule(_VALID.value, _TEST.value)
  try:
    writing.check_split(rule)
  except errors.ConfigError as e:
    raise errors.ConfigError(f'--{e}') from None
  drs = parse_drs(_DRS.value)
  for spec in _SOURCES.value:  # Every option checked before any write.
    kind, options = sources.parse_source(spec)
    sources.refuse_benchmark(kind, options)
  preparer = writing.Preparer(
      _OUT.value, rule, drs, _CHUNK.value, _MAX_WINDOW.value,
      shard_bytes=_SHARD_MB.value << 20)
  for spec in _SOURCES.value:
    preparer.add_spec(spec)
  manifest = preparer.close()
  for source in manifest['sources']:
    print(f"{source['name']}: {source['num_series']} series, "
          f"{source['num_values']:,} values, freq {source['freq'] or '?'}, "
          f"{len(source['shards'])} shard(s)"
          + (f", {source['dropped']} dropped (too short)"
             if source['dropped'] else ''))
  print(f"Wrote {_OUT.value}: {manifest['num_series']} series, "
        f"{manifest['num_values']:,} values in {time.time() - start:.1f} s.")


if __name__ == '__main__':
  common.run(main)
