"""IBM's evaluation protocol in pure NumPy: splits, scaling, few-shot
selection and window indexing (TTM_SPEC.md section 5).

Everything here is a function of arrays and plain parameters; the scaler's
statistics come from the train split and are passed in.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

Split = Tuple[int, int]  # [start, end) row indices.


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """How a dataset is split: index borders (ETT) or train/test fractions.

  Attributes:
    borders: {'train': (0, 8640), 'valid': (8640, 11520), 'test': (...)}
      before the context shift, or None.
    train_fraction: fraction of rows for train (fraction rule).
    test_fraction: fraction of rows for test (fraction rule).
  """
  borders: Optional[Dict[str, Split]] = None
  train_fraction: float = 0.7
  test_fraction: float = 0.2


def split_ranges(num_rows: int, rule: SplitRule,
                 context_length: int) -> Dict[str, Split]:
  """Row ranges of train/valid/test; valid and test start CL rows early.

  As `tsfm_public.toolkit.time_series_preprocessor.prepare_data_splits`:
  index borders are shifted by `context_length` for valid and test; the
  fraction rule is `train_test_split(..., valid_test_offset=context_length)`.
  """
  if rule.borders is not None:
    out = {}
    for name, (start, end) in rule.borders.items():
      start = start - context_length if name != 'train' else start
      out[name] = (min(max(start, 0), num_rows), min(end, num_rows))
    return out
  train_size = int(num_rows * rule.train_fraction)
  test_size = int(num_rows * rule.test_fraction)
  valid_size = num_rows - train_size - test_size
  return {
      'train': (0, train_size),
      'valid': (max(train_size - context_length, 0),
                train_size + valid_size),
      'test': (max(train_size + valid_size - context_length, 0), num_rows),
  }


def fewshot_rows(num_rows: int, fraction: float, context_length: int,
                 location: str = 'first') -> Split:
  """Rows of the train split kept for few-shot training (before windowing).

  As the reference's `select_by_fixed_fraction(minimum_size=CL)`:
  int(fraction * (n - CL)) + CL rows from the start ('first') or end.
  """
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f'Few-shot fraction must be in (0, 1], got {fraction}.')
  size = int(fraction * (num_rows - context_length)) + context_length
  if location == 'first':
    return 0, size
  if location == 'last':
    return num_rows - size, num_rows
  raise ValueError(f"location must be 'first' or 'last', got {location!r}.")


@dataclasses.dataclass(frozen=True)
class Scaler:
  """Per-column standard scaler (sklearn StandardScaler: population std)."""
  mean: np.ndarray  # [c]
  scale: np.ndarray  # [c]

  @classmethod
  def fit(cls, values: np.ndarray) -> 'Scaler':
    """Fits on [t, c] values, ignoring NaNs (as sklearn does)."""
    values = np.asarray(values, np.float64)
    mean = np.nanmean(values, axis=0)
    std = np.nanstd(values, axis=0)
    # sklearn replaces (near) zero scales by 1.
    std = np.where(std < 10 * np.finfo(np.float64).eps * np.maximum(
        np.abs(mean), 1.0), 1.0, std)
    return cls(mean=mean, scale=std)

  @classmethod
  def identity(cls, num_columns: int) -> 'Scaler':
    return cls(np.zeros(num_columns), np.ones(num_columns))

  def transform(self, values: np.ndarray) -> np.ndarray:
    return ((np.asarray(values, np.float64) - self.mean) / self.scale).astype(
        np.float32)

  def inverse(self, values: np.ndarray) -> np.ndarray:
    return (np.asarray(values, np.float64) * self.scale + self.mean).astype(
        np.float32)


def num_windows(num_rows: int, context_length: int, prediction_length: int,
                stride: int = 1) -> int:
  """Windows of CL + FL steps at `stride`, no padding."""
  span = context_length + prediction_length
  if num_rows < span:
    return 0
  return (num_rows - span) // stride + 1


def window_starts(lengths: Sequence[int], context_length: int,
                  prediction_length: int,
                  stride: int = 1) -> Tuple[np.ndarray, np.ndarray]:
  """(series index, start row) of every window of every series."""
  series, starts = [], []
  for i, length in enumerate(lengths):
    count = num_windows(length, context_length, prediction_length, stride)
    series.append(np.full(count, i, np.int64))
    starts.append(np.arange(count, dtype=np.int64) * stride)
  if not series:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  return np.concatenate(series), np.concatenate(starts)


def take_window(values: np.ndarray, start: int, context_length: int,
                prediction_length: int) -> Dict[str, np.ndarray]:
  """One window of [t, c] values: NaN -> 0 with observed masks."""
  window = values[start:start + context_length + prediction_length]
  observed = ~np.isnan(window)
  window = np.where(observed, window, 0.0).astype(np.float32)
  return {
      'past_values': window[:context_length],
      'future_values': window[context_length:],
      'past_observed_mask': observed[:context_length],
      'future_observed_mask': observed[context_length:],
  }


def relative_window(item: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """A window (`take_window`'s) divided, channel by channel, by its
  context's mean absolute observed value (1 when 0): missing and padded
  steps stay 0. A TTM's std scaler makes its forecast scale with its
  input, so a model trained on such windows learns what it is asked at
  inference, where contexts are padded with zeros (the benchmark runner,
  as fev's TTM wrapper), while every window weighs alike in the loss."""
  past = item['past_values'].astype(np.float64)
  observed = item['past_observed_mask'].astype(bool)
  count = np.maximum(observed.sum(axis=0), 1)
  size = np.abs(np.where(observed, past, 0.0)).sum(axis=0) / count
  size = np.where(size > 0, size, 1.0)
  return dict(item, past_values=(past / size).astype(np.float32),
              future_values=(item['future_values'] / size).astype(
                  np.float32))


def downsample(values: np.ndarray, factor: int, method: str = 'mean'
               ) -> np.ndarray:
  """Lower resolution by `factor`: 'mean' of non-overlapping blocks (a
  trailing partial block dropped), or 'decimate' (every factor-th point)."""
  values = np.asarray(values)
  if factor < 1:
    raise ValueError(f'Downsampling factor must be >= 1, got {factor}.')
  if factor == 1:
    return values
  if method == 'decimate':
    return values[::factor]
  if method == 'mean':
    usable = (len(values) // factor) * factor
    blocks = values[:usable].reshape(-1, factor, *values.shape[1:])
    if not np.isnan(blocks).any():
      return blocks.mean(axis=1)
    with warnings.catch_warnings():  # An all-missing block stays missing.
      warnings.simplefilter('ignore', RuntimeWarning)
      return np.nanmean(blocks, axis=1)
  raise ValueError(f"method must be 'mean' or 'decimate', got {method!r}.")


def frequency_multiple(freq: str, factor: int) -> str:
  """The frequency of a series downsampled by `factor`, named as the
  resolution-prefix mapping names it where it can ('h' x 24 -> 'D',
  '10min' x 6 -> 'h', 'D' x 7 -> 'W')."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)) * factor
  except (ValueError, TypeError):  # Calendar offsets (months, years).
    return (pd.tseries.frequencies.to_offset(freq) * factor).freqstr
  for unit, name in ((pd.Timedelta(weeks=1), 'W'), (pd.Timedelta(days=1), 'D'),
                     (pd.Timedelta(hours=1), 'h'),
                     (pd.Timedelta(minutes=1), 'min'),
                     (pd.Timedelta(seconds=1), 's')):
    if step % unit == pd.Timedelta(0):
      count = step // unit
      return name if count == 1 else f'{count}{name}'
  return pd.tseries.frequencies.to_offset(step).freqstr
