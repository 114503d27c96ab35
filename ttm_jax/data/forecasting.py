"""Forecasting datasets under IBM's protocol: a window is an index.

`make_splits` applies TTM_SPEC.md section 5 to a `sources.Table`: split
(valid/test start CL rows early), standard-scale per column with train
statistics, optional few-shot selection from the start of train (after the
scaler is fitted, as the reference does), then every stride-1 window of
CL + FL rows. `WindowSource` maps an index to one window's arrays.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.models import frequency

_LOG = logging.getLogger(__name__)

@dataclasses.dataclass
class WindowSource:
  """Random access to every window of a split (grain-compatible source).

  Attributes:
    values: per series, [t, c] float32 scaled values (NaN where missing).
    series_index, starts: series and start row of each window.
    context_length, prediction_length: window shape.
    freq_tokens: per series resolution-prefix token.
    static_categoricals: per series [k] int32 codes, or None.
    relative: each window divided by its context's mean absolute value
      (`windows.relative_window`).
    transform: a function of each window (`take_window`'s dict) applied
      last, e.g. the forecasting path's standardisation of its context
      (`train.finetune.Standardized`); None: none.
  """
  values: List[np.ndarray]
  series_index: np.ndarray
  starts: np.ndarray
  context_length: int
  prediction_length: int
  freq_tokens: np.ndarray
  static_categoricals: Optional[List[np.ndarray]] = None
  relative: bool = False
  transform: Optional[Callable[[Dict[str, np.ndarray]],
                               Dict[str, np.ndarray]]] = None

  def __len__(self) -> int:
    return int(len(self.starts))

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f'window {index} out of range [0, {len(self)})')
    series = int(self.series_index[index])
    item = windows.take_window(self.values[series], int(self.starts[index]),
                               self.context_length, self.prediction_length)
    if self.relative:
      item = windows.relative_window(item)
    if self.transform is not None:
      item = self.transform(item)
    item['freq_token'] = np.asarray(self.freq_tokens[series], np.int32)
    if self.static_categoricals is not None:
      item['static_categorical_values'] = np.asarray(
          self.static_categoricals[series], np.int32)
    return item

  @property
  def num_channels(self) -> int:
    return int(self.values[0].shape[1])


@dataclasses.dataclass
class Splits:
  train: WindowSource
  valid: WindowSource
  test: WindowSource
  scalers: List[windows.Scaler]  # Per series id.
  columns: List[str]
  notes: List[str] = dataclasses.field(default_factory=list)

  def __getitem__(self, name: str) -> WindowSource:
    return {'train': self.train, 'valid': self.valid, 'test': self.test}[name]


def _fit_scaler(train: np.ndarray, key: str, columns: Sequence[str],
                notes: List[str]) -> windows.Scaler:
  """The standard scaler of a series' train rows; columns with fewer than
  two observed train values stay unscaled, and `notes` says so."""
  observed = np.sum(~np.isnan(train), axis=0) if len(train) else np.zeros(
      len(columns), int)
  short = observed < 2
  if not short.any():
    return windows.Scaler.fit(train)
  if short.all():
    scaler = windows.Scaler.identity(len(columns))
  else:
    fitted = windows.Scaler.fit(train)
    scaler = windows.Scaler(np.where(short, 0.0, fitted.mean),
                            np.where(short, 1.0, fitted.scale))
  notes.append(
      f'{"series " + repr(key) + ": " if key else ""}the train split has '
      f'{int(observed.min())} observed rows in {[c for c, s in zip(columns, short) if s]}'
      ', too few to fit the standard scaler: those columns are left '
      "unscaled (their metrics are in the data's own units).")
  return scaler


def make_splits(table: sources.Table, context_length: int,
                prediction_length: int, rule: windows.SplitRule,
                fewshot_fraction: Optional[float] = None,
                fewshot_location: str = 'first', scale: bool = True,
                stride: int = 1,
                required: Sequence[str] = ('train', 'valid', 'test'),
                transform: Optional[Callable] = None) -> Splits:
  """The three window sources of `table` under the protocol.

  Args:
    required: the splits that must have windows (zero-shot needs only the
      test split; the others may then be empty).
    transform: applied to every window last (`WindowSource.transform`).

  Raises:
    sources.DataError: when a required split has no window.
  """
  pieces = {'train': [], 'valid': [], 'test': []}
  scalers, notes = [], []
  for key, values in zip(table.ids, table.values):
    ranges = windows.split_ranges(len(values), rule, context_length)
    train = values[slice(*ranges['train'])]
    scaler = (_fit_scaler(train, key, table.columns, notes) if scale else
              windows.Scaler.identity(values.shape[1]))
    scalers.append(scaler)
    for name, (start, end) in ranges.items():
      part = values[start:end]
      if name == 'train' and fewshot_fraction is not None:
        first, last = windows.fewshot_rows(len(part), fewshot_fraction,
                                           context_length, fewshot_location)
        part = part[first:last]
      pieces[name].append(scaler.transform(part))
    del key
  token = frequency.frequency_token(table.freq)
  out = {}
  for name, parts in pieces.items():
    lengths = [len(p) for p in parts]
    series, starts = windows.window_starts(lengths, context_length,
                                           prediction_length, stride)
    if len(starts) == 0 and name in required:
      raise sources.DataError(
          f'The {name} split has no window of {context_length} + '
          f'{prediction_length} steps (its series have {lengths} rows). Use '
          'a shorter context or horizon'
          + (' or a larger few-shot fraction' if name == 'train'
             and fewshot_fraction else '') + '.')
    out[name] = WindowSource(
        values=parts, series_index=series, starts=starts,
        context_length=context_length, prediction_length=prediction_length,
        freq_tokens=np.full(len(parts), token, np.int32),
        static_categoricals=table.static_categoricals, transform=transform)
  for note in notes:
    _LOG.warning('%s', note)
  return Splits(scalers=scalers, columns=list(table.columns), notes=notes,
                **out)


def load_benchmark(name: str, context_length: int, prediction_length: int,
                   data_dir: Optional[str] = None,
                   fewshot_fraction: Optional[float] = None,
                   required: Sequence[str] = ('train', 'valid', 'test'),
                   target_columns: Optional[Sequence[str]] = None,
                   control_columns: Sequence[str] = ()) -> Splits:
  """A registered benchmark (ETTh1, weather, ...) under IBM's protocol."""
  table = sources.read_registered(name, data_dir, target_columns,
                                  control_columns)
  spec = sources.REGISTRY[name.lower()]
  return make_splits(table, context_length, prediction_length, spec.split,
                     fewshot_fraction=fewshot_fraction, required=required)


def save_histories(path: str, histories: Sequence[np.ndarray],
                   freq: str = '') -> None:
  """Univariate histories (ragged, NaN missing) to the .npz that data kind
  'series' reads."""
  np.savez(path, values=np.concatenate(
      [np.asarray(h, np.float64) for h in histories] or [np.zeros(0)]),
           lengths=np.array([len(h) for h in histories], np.int64),
           freq=np.array(freq))


def load_histories(path: str) -> Tuple[List[np.ndarray], str]:
  """(histories, freq) of a `save_histories` file."""
  with np.load(path) as found:
    ends = np.cumsum(found['lengths'])
    return (np.split(found['values'], ends[:-1]) if len(ends) else [],
            str(found['freq']))


def padding(length: int, context_length: int, prediction_length: int,
            min_context_mult: int) -> int:
  """Steps padded in front of a training part of `length` steps (IBM's
  GIFT rule, gluonts_data_wrapper): a part shorter than context +
  horizon keeps `min_context_mult` horizons of observed context in every
  window when it has one more horizon than that, else it becomes one
  window."""
  span = context_length + prediction_length
  if length >= span:
    return 0
  if length >= (min_context_mult + 1) * prediction_length:
    return max(context_length - min_context_mult * prediction_length, 0)
  return span - length


def series_splits(histories: Sequence[np.ndarray], context_length: int,
                  prediction_length: int, min_context_mult: int = 4,
                  freq: str = '', transform: Optional[Callable] = None
                  ) -> Splits:
  """Training and validation windows of histories ([t] univariate, or
  [t, c]: the target first, then channels a model mixes).

  Validation is each history's last window (its last `prediction_length`
  steps); training every stride-1 window of the rest, which is padded in
  front (NaN: masked, 0) by `padding`, as the benchmark runner pads a
  context; each window is divided by its context's mean absolute value
  (`relative`), which keeps the padding 0, or, with `transform`, given
  to it instead (`WindowSource.transform`). The histories are kept in
  their own units (no shift: it would move the padding). Histories with
  no observed training step (target) are left out. The test split is the
  validation one.
  """
  horizon, parts = prediction_length, []
  for history in histories:
    values = np.asarray(history, np.float64)
    values = values[:, None] if values.ndim == 1 else values
    train = values[:-horizon]
    if not np.any(~np.isnan(train[:, 0])):
      continue
    pad = padding(len(train), context_length, horizon, min_context_mult)
    parts.append(np.concatenate([np.full((pad, values.shape[1]), np.nan),
                                 values]).astype(np.float32))
  token = np.full(len(parts), frequency.frequency_token(freq), np.int32)
  train_parts = [p[:-horizon] for p in parts]  # Views, no copies.
  series, starts = windows.window_starts(
      [len(p) for p in train_parts], context_length, horizon)
  relative = transform is None
  train = WindowSource(train_parts, series, starts, context_length, horizon,
                       token, relative=relative, transform=transform)
  lengths = np.array([len(p) for p in parts], np.int64)
  keep = np.flatnonzero(lengths >= context_length + horizon)
  valid = WindowSource(parts, keep, lengths[keep] - context_length - horizon,
                       context_length, horizon, token, relative=relative,
                       transform=transform)
  channels = parts[0].shape[1] if parts else 1
  return Splits(train, valid, valid,
                [windows.Scaler.identity(channels)] * len(parts),
                ['target'] + [f'channel_{k}' for k in range(1, channels)])


class ConcatSource:
  """Several window sources as one (index ranges laid end to end)."""

  def __init__(self, parts: Sequence[WindowSource]):
    self.parts = list(parts)
    self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

  def __len__(self) -> int:
    return int(self.offsets[-1])

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f'window {index} out of range [0, {len(self)})')
    part = int(np.searchsorted(self.offsets, index, side='right')) - 1
    return self.parts[part][index - int(self.offsets[part])]


def window_count(splits: Splits) -> Dict[str, int]:
  return {name: len(splits[name]) for name in ('train', 'valid', 'test')}
