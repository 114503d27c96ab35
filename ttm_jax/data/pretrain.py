"""Pretraining data: Monash `.tsf` files, channel-independent univariate
series, diverse resolution sampling (DRS, TTM_SPEC.md 4.1) and mixtures.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax.data import forecasting
from ttm_jax.data import sources
from ttm_jax.data import synthetic
from ttm_jax.data import windows
from ttm_jax.models import frequency

_LOG = logging.getLogger(__name__)

# Monash frequency names -> pandas frequency strings.
MONASH_FREQUENCIES = {
    '4_seconds': '4s', 'minutely': 'min', '5_minutes': '5min',
    '10_minutes': '10min',
    'half_hourly': '30min', 'hourly': 'h', 'daily': 'D', 'weekly': 'W',
    'monthly': 'MS', 'quarterly': 'QS', 'yearly': 'YS',
}


@dataclasses.dataclass
class TsfFile:
  """A parsed `.tsf` file.

  Attributes:
    series: per series, float64 values (NaN for '?').
    attributes: per series, {attribute name: value} from the series line.
    frequency: Monash frequency name ('hourly', ...) or None.
    freq: pandas frequency string, or '' if unknown.
    horizon: forecast horizon, or None.
    missing: whether the file declares missing values.
    equal_length: whether series have equal length.
  """
  series: List[np.ndarray]
  attributes: List[Dict[str, str]]
  frequency: Optional[str]
  freq: str
  horizon: Optional[int]
  missing: bool
  equal_length: bool


# Characters of comma-separated numbers ('?' and nan: missing); anything
# else (inf, words, undecodable bytes) is located and named first.
_NUMERIC = re.compile(r'[0-9eE+\-.,?nNaA \t]*')


def _parse_values(text: str, path: str, number: int,
                  series: str = '') -> np.ndarray:
  """A series' comma-separated values, parsed by NumPy's C parser ('?' is
  missing) once they are known to be numbers; DataError naming the file,
  line, series and position of a value that is not a finite number."""
  if _NUMERIC.fullmatch(text):
    with warnings.catch_warnings():  # NumPy warns or raises by version.
      warnings.simplefilter('ignore', DeprecationWarning)
      try:
        values = np.fromstring(text.replace('?', 'nan'), sep=',')  # pylint: disable=deprecated-method
      except ValueError:
        values = None
    if values is not None and len(values) == text.count(',') + 1 and (
        not np.isinf(values).any()):
      return values
  raise _bad_value(text, path, number, series)


def _bad_value(text: str, path: str, number: int,
               series: str) -> sources.DataError:
  where = f'{path}:{number}' + (f' (series {series!r})' if series else '')
  for position, token in enumerate(text.split(','), 1):
    token = token.strip()
    if token == '?':
      continue
    try:
      value = float(token)
    except ValueError:
      return sources.DataError(
          f'{where}: value {position} {token[:40]!r} is not a number (write '
          '? for a missing value).')
    if math.isinf(value):
      return sources.DataError(
          f'{where}: value {position} is {token!r}; values must be finite '
          '(write ? for a missing value).')
  return sources.DataError(f'{where}: a value is not a number (in '
                           f'{text[:60]!r}...).')


def iter_tsf(path: str, encoding: str = 'cp1252', header: Optional[Dict[
    str, Any]] = None) -> Iterator[Tuple[np.ndarray, Dict[str, str], str]]:
  """(values, attributes, pandas freq) of each series of a Monash `.tsf`
  file, one at a time (memory: one series). `header`, when given, receives
  the file's @frequency, @horizon, @missing and @equallength.

  Header lines: `@attribute <name> <type>`, `@frequency`, `@horizon`,
  `@missing`, `@equallength`, then `@data`; each data line is the series'
  attribute values then its comma-separated values, separated by ':'. '?'
  is a missing value.
  """
  header = {} if header is None else header
  names, in_data = [], False
  with open(path, encoding=encoding, errors='replace') as f:
    for number, raw in enumerate(f, 1):
      line = raw.strip()
      if not line or line.startswith('#'):
        continue
      if not in_data:
        in_data = _header_line(line, path, number, names, header)
        continue
      fields = line.split(':')
      if len(fields) != len(names) + 1:
        raise sources.DataError(
            f'{path}:{number}: expected {len(names)} attributes and the '
            f'values, got {len(fields)} ":"-separated fields.')
      values = _parse_values(fields[-1], path, number,
                             fields[0] if names else '')
      if np.isnan(values).any() and not header.get('missing'):
        _LOG.warning('%s:%d: missing values although @missing is false.',
                     path, number)
      yield values, dict(zip(names, fields[:-1])), header['freq']
  if not in_data:
    raise sources.DataError(f'{path}: no @data section.')


def _header_line(line: str, path: str, number: int, names: List[str],
                 header: Dict[str, Any]) -> bool:
  """Reads one header line into `names`/`header`; True at @data."""
  if not line.startswith('@'):
    raise sources.DataError(f'{path}:{number}: expected a header line (@...) '
                            f'before @data, got {line[:40]!r}.')
  parts = line.split()
  key = parts[0].lower()
  if key in ('@frequency', '@horizon', '@missing', '@equallength') and (
      len(parts) < 2):
    raise sources.DataError(f'{path}:{number}: {parts[0]} has no value.')
  if key == '@attribute':
    if len(parts) != 3:
      raise sources.DataError(f'{path}:{number}: bad @attribute line.')
    names.append(parts[1])
  elif key == '@frequency':
    header['frequency'] = parts[1]
  elif key == '@horizon':
    if not re.fullmatch(r'\d+', parts[1]):
      raise sources.DataError(f'{path}:{number}: @horizon {parts[1]!r} is '
                              'not a whole number of steps.')
    header['horizon'] = int(parts[1])
  elif key in ('@missing', '@equallength'):
    if parts[1].lower() not in ('true', 'false'):
      raise sources.DataError(f'{path}:{number}: {parts[0]} {parts[1]!r}: '
                              'expected true or false.')
    header['missing' if key == '@missing' else 'equal_length'] = (
        parts[1].lower() == 'true')
  elif key == '@data':
    header['freq'] = MONASH_FREQUENCIES.get(  # '5-minutes' in some copies.
        (header.get('frequency') or '').replace('-', '_'), '')
    return True
  return False


def read_tsf(path: str, encoding: str = 'cp1252') -> TsfFile:
  """A whole Monash `.tsf` file (see `iter_tsf` for the format)."""
  header: Dict[str, Any] = {}
  series, attributes = [], []
  for values, attrs, _ in iter_tsf(path, encoding, header):
    series.append(values)
    attributes.append(attrs)
  return TsfFile(series=series, attributes=attributes,
                 frequency=header.get('frequency'), freq=header['freq'],
                 horizon=header.get('horizon'),
                 missing=header.get('missing', False),
                 equal_length=header.get('equal_length', False))


@dataclasses.dataclass
class UnivariateCorpus:
  """Named univariate series sharing one frequency."""
  name: str
  series: List[np.ndarray]
  freq: str


def diverse_resolutions(corpus: UnivariateCorpus, factors: Sequence[int],
                        method: str = 'mean') -> List[UnivariateCorpus]:
  """DRS: the corpus plus one lower-resolution copy per factor.

  Each copy averages non-overlapping blocks of `factor` points ('mean') or
  keeps every `factor`-th point ('decimate'), and carries the frequency
  `factor` times coarser (so its own resolution-prefix token).
  """
  out = [corpus]
  for factor in factors:
    if factor <= 1:
      continue
    freq = (windows.frequency_multiple(corpus.freq, factor)
            if corpus.freq else '')
    out.append(UnivariateCorpus(
        name=f'{corpus.name}@{method}{factor}',
        series=[windows.downsample(s, factor, method) for s in corpus.series],
        freq=freq))
  return out


def corpus_windows(corpus: UnivariateCorpus, context_length: int,
                   prediction_length: int,
                   train_fraction: float = 1.0) -> forecasting.WindowSource:
  """Training windows of every series long enough for one window, each
  series standard-scaled by its own (train part) statistics. Shorter series
  are dropped and counted in the log."""
  span = context_length + prediction_length
  kept, dropped = [], 0
  for values in corpus.series:
    values = np.asarray(values, np.float64)
    usable = values[:max(int(len(values) * train_fraction), 0)]
    if len(usable) < span or np.isnan(usable).all():
      dropped += 1
      continue
    kept.append(windows.Scaler.fit(usable[:, None]).transform(usable[:, None]))
  _LOG.info('%s: %d series kept, %d dropped as shorter than one window of %d '
            'steps.', corpus.name, len(kept), dropped, span)
  if not kept:
    raise sources.DataError(
        f'{corpus.name}: no series has {span} steps (context '
        f'{context_length} + horizon {prediction_length}); {dropped} dropped.')
  series, starts = windows.window_starts([len(v) for v in kept],
                                         context_length, prediction_length)
  token = frequency.frequency_token(corpus.freq)
  return forecasting.WindowSource(
      values=kept, series_index=series, starts=starts,
      context_length=context_length, prediction_length=prediction_length,
      freq_tokens=np.full(len(kept), token, np.int32))


def corpus_splits(corpus: UnivariateCorpus, context_length: int,
                  prediction_length: int,
                  rule: windows.SplitRule = windows.SplitRule()
                  ) -> Optional[Dict[str, forecasting.WindowSource]]:
  """Train/valid/test windows of a corpus, each series split in time by
  `rule` (valid/test start CL early) and scaled by its train statistics.
  Series too short for a window in every split are dropped and counted;
  None when none is left."""
  table = sources.Table(
      values=[np.asarray(s, np.float64)[:, None] for s in corpus.series],
      columns=['value'], target_columns=['value'], control_columns=[],
      ids=[str(i) for i in range(len(corpus.series))], freq=corpus.freq)
  span = context_length + prediction_length
  keep = []
  for i, values in enumerate(table.values):
    ranges = windows.split_ranges(len(values), rule, context_length)
    if all(b - a >= span for a, b in ranges.values()) and not np.isnan(
        values[slice(*ranges['train'])]).all():
      keep.append(i)
  dropped = len(table.values) - len(keep)
  _LOG.info('%s: %d series kept, %d dropped as too short for a window of %d '
            'steps in each split.', corpus.name, len(keep), dropped, span)
  if not keep:
    return None
  table.values = [table.values[i] for i in keep]
  table.ids = [table.ids[i] for i in keep]
  splits = forecasting.make_splits(table, context_length, prediction_length,
                                   rule)
  return {'train': splits.train, 'valid': splits.valid, 'test': splits.test}


def synthetic_corpora(num_series: int = 64, seed: int = 0,
                      min_length: int = 1200, max_length: int = 4000
                      ) -> List[UnivariateCorpus]:
  """The embedded synthetic corpus, one `UnivariateCorpus` per resolution."""
  by_freq: Dict[str, List[np.ndarray]] = {}
  for s in synthetic.make_corpus(num_series, min_length, max_length, seed):
    by_freq.setdefault(s.freq, []).append(s.values)
  return [UnivariateCorpus(f'synthetic_{freq}', series, freq)
          for freq, series in by_freq.items()]


def tsf_corpus(path: str, name: Optional[str] = None) -> UnivariateCorpus:
  tsf = read_tsf(path)
  return UnivariateCorpus(name or path.rsplit('/', 1)[-1].split('.')[0],
                          tsf.series, tsf.freq)
