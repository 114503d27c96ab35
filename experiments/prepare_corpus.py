r"""Converts time series sources into a pretraining corpus on disk.

  .venv/bin/python -m experiments.prepare_corpus --out DIR \
      --source 'monash:../shared/data/monash/*.tsf' \
      --source csv:../shared/data/libcity/los_speed.csv,freq=5min \
      --source 'csv:../shared/data/extra/pjm_hourly/*.csv,timestamp=Datetime' \
      --source synthetic-kernels:num_series=1000,length=8192,freq=h,seed=0 \
      [--sources_file configs/corpora/public_v2.txt --data_dir ../shared/data] \
      [--drs 'h=24;10min=3,6'] [--valid_fraction 0.1] [--test_fraction 0.1]

Sources (ttm_jax/data/corpus/sources.py has every option): `monash:GLOB`
(.tsf files); `csv:PATH[,key=value...]` (PATH may be a glob; without
timestamp= rows are consecutive steps, wide or long with id=,value=; with
timestamp=COL the times put the rows on a regular grid: time zones,
daylight-saving repeats, unsorted rows, gaps filled or split, text columns
skipped, several id columns, US or spreadsheet dates);
`synthetic:num_series=N,length=L,seed=S` (the embedded generator);
`synthetic-kernels:num_series=N,length=L,freq=F,seed=S` (KernelSynth-style
Gaussian-process series). `--sources_file` reads more sources from a file,
one per line ('#' comments; `{data_dir}` stands for --data_dir);
configs/corpora/public_v2.txt is the v2 public corpus.

Each series is one record (long ones are cut into overlapping chunks) in
sharded ArrayRecord files; diverse resolution sampling writes each
lower-resolution copy as records of its own source, named with its
frequency (`kdd_cup_2018...@D`). DIR/corpus.json lists the sources and the
datasets that went in (file, sha256, series, values, frequency);
DIR/report.md and report.json say per file what the conversion did (it is
printed too). Every source is checked before anything is written (sources that
overlap, reading the same file or content twice, are refused, or read
once with --overlaps=once); memory
is bounded by one series (a few columns of a wide CSV); registered
evaluation benchmarks are refused.
"""

import os
import time
from typing import List

from absl import flags

from experiments import common
from ttm_jax import errors
from ttm_jax.data.corpus import format
from ttm_jax.data.corpus import provenance
from ttm_jax.data.corpus import sources
from ttm_jax.data.corpus import writing

_OUT = flags.DEFINE_string('out', None, 'Corpus folder (new).', required=True)
_SOURCES = flags.DEFINE_multi_string('source', [], 'A source (repeatable).')
_SOURCES_FILE = flags.DEFINE_string(
    'sources_file', '', 'A file of sources, one per line (# comments; '
    '{data_dir} stands for --data_dir), read after --source.')
_DATA_DIR = flags.DEFINE_string('data_dir', '../shared/data', 'What '
                                '{data_dir} stands for in --sources_file.')
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
_OVERLAPS = flags.DEFINE_enum(
    'overlaps', 'error', sources.OVERLAPS,
    'Sources that read the same data (a file given twice, a file and a glob '
    'holding it, a link to it, the same content under another name, the '
    'same generator and seed), found by resolved path and content hash: '
    'error (refused, naming both sources) or once (the repeat is skipped '
    'and reported as such; a partial repeat, some of the same columns, is '
    'still refused).')


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


def read_sources_file(path: str, data_dir: str) -> List[str]:
  """The source specs of a sources file: a spec per line, '#' comments
  and blank lines skipped, {data_dir} replaced."""
  if not os.path.isfile(path):
    raise errors.ConfigError(f'--sources_file {path}: no such file.')
  with open(path) as f:
    lines = [line.split('#', 1)[0].strip() for line in f]
  return [line.replace('{data_dir}', data_dir.rstrip('/'))
          for line in lines if line]


@common.main_wrapper
def main(argv):
  del argv
  specs = list(_SOURCES.value)
  if _SOURCES_FILE.value:
    specs += read_sources_file(_SOURCES_FILE.value, _DATA_DIR.value)
  if not specs:
    raise errors.ConfigError('Give at least one --source or a '
                             '--sources_file.')
  start = time.time()
  rule = format.SplitRule(_VALID.value, _TEST.value)
  try:
    writing.check_split(rule)
  except errors.ConfigError as e:
    raise errors.ConfigError(f'--{e}') from None
  drs = parse_drs(_DRS.value)
  for spec in specs:  # Every source checked before any write.
    sources.check(spec)
  skip = sources.overlaps(specs, _OVERLAPS.value)
  preparer = writing.Preparer(
      _OUT.value, rule, drs, _CHUNK.value, _MAX_WINDOW.value,
      shard_bytes=_SHARD_MB.value << 20)
  for index, spec in enumerate(specs):
    preparer.add_spec(spec, skip.get(index))
  manifest = preparer.close()
  print(provenance.markdown(preparer.reports))
  for source in manifest['sources']:
    print(f"{source['name']}: {source['num_series']} series, "
          f"{source['num_values']:,} values, freq {source['freq'] or '?'}, "
          f"{len(source['shards'])} shard(s)"
          + (f", {source['dropped']} dropped (too short)"
             if source['dropped'] else ''))
  print(f"Per-file report: {_OUT.value}/{provenance.REPORT_MD}.")
  print(f"Wrote {_OUT.value}: {manifest['num_series']} series, "
        f"{manifest['num_values']:,} values in {time.time() - start:.1f} s.")


if __name__ == '__main__':
  common.run(main)
