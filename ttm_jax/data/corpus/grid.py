"""Timestamps onto a regular grid, and the gap rule: the pure functions
behind timed CSV sources (`timed.py`).

The rules, in order:

  1. Times. A time with an offset ('2012-01-01 00:00+11:00') is converted
     to UTC. A naive time is wall clock as published; with tz=ZONE it is a
     local time of ZONE, converted to UTC: the repeated fall-back hour's
     first occurrence is taken as daylight time and its second as standard
     time, and a time the spring-forward jump skips is moved forward.
  2. Order. Rows are sorted by time (stably: equal times keep file order).
  3. Frequency. Given (freq=), or the most common step between consecutive
     distinct times (over every series of a long file); steps of 28-31
     days are monthly, 89-92 days quarterly, 365-366 days yearly.
  4. Grid. A fixed step's grid is anchored at the series' first time and
     each row goes to the nearest step (jittered samples, e.g. 18:22 and
     18:32 in 5-minute data, land on their steps); calendar steps take the
     row's month, quarter or year. Rows that share a step (the fall-back
     hour of wall-clock data, repeated rows, jitter) are aggregated:
     the mean of their observed values (duplicates=mean), or the first or
     last observed one.
  5. Gaps. A step with no row, or with no observed value, is missing.
     Missing steps before the first and after the last observed value are
     trimmed; an interior run of at most `max_gap` missing steps is filled
     by linear interpolation; a longer run splits the series; pieces
     shorter than `min_length` steps are dropped.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

NAT = np.iinfo(np.int64).min  # numpy's NaT as int64 nanoseconds.
DAY = 86_400 * 10**9
MAX_GAP = 6  # Default: interior runs of up to 6 missing steps are filled.
MIN_LENGTH = 64  # Default: shorter pieces are dropped.
DUPLICATES = ('mean', 'first', 'last')
# Calendar steps, in months, by the letter that starts a pandas alias.
CALENDAR_MONTHS = {'M': 1, 'Q': 3, 'Y': 12, 'A': 12}


@dataclasses.dataclass(frozen=True)
class Step:
  """A grid step: fixed (`nanoseconds`) or calendar (`months`)."""
  freq: str
  nanoseconds: int = 0
  months: int = 0


def freq_name(nanoseconds: int) -> str:
  """The frequency string of a fixed step, as the resolution-prefix
  mapping names it where it can (3600 s -> 'h', 1800 s -> '30min')."""
  for unit, name in ((7 * DAY, 'W'), (DAY, 'D'), (3600 * 10**9, 'h'),
                     (60 * 10**9, 'min'), (10**9, 's')):
    if nanoseconds % unit == 0:
      count = nanoseconds // unit
      return name if count == 1 else f'{count}{name}'
  return f'{nanoseconds}ns'


def parse_step(freq: str) -> Optional[Step]:
  """The Step of a pandas frequency string, or None if it is not one."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  try:
    offset = pd.tseries.frequencies.to_offset(freq)
  except (ValueError, TypeError):
    return None
  name = offset.name
  if name.startswith('W'):
    return Step(freq, nanoseconds=7 * DAY * offset.n)
  if name[:1] in CALENDAR_MONTHS:  # 'MS', 'QE-DEC', 'YS-JAN' ('min': m)
    return Step(freq, months=CALENDAR_MONTHS[name[0]] * offset.n)
  try:
    nanoseconds = pd.Timedelta(offset).value
  except (ValueError, TypeError):
    return None
  return Step(freq, nanoseconds=nanoseconds) if nanoseconds > 0 else None


def infer_step(times: np.ndarray, groups: np.ndarray) -> Tuple[Step, float]:
  """(the most common step between consecutive distinct times of each
  group, the share of such steps equal to it). `times` sorted within each
  group, int64 nanoseconds; `groups` the group code of each row, groups
  contiguous."""
  diffs = np.diff(times)
  diffs = diffs[(groups[1:] == groups[:-1]) & (diffs > 0)]
  if not len(diffs):
    return None, 0.0
  found, counts = np.unique(diffs, return_counts=True)
  best = int(found[np.argmax(counts)])
  share = float(counts.max() / len(diffs))
  days = best / DAY
  for low, high, months, name in ((28, 31, 1, 'MS'), (89, 92, 3, 'QS'),
                                  (365, 366, 12, 'YS')):
    if low <= days <= high:
      near = (diffs >= low * DAY) & (diffs <= high * DAY)
      return Step(name, months=months), float(near.mean())
  return Step(freq_name(best), nanoseconds=best), share


def _months(times: np.ndarray) -> np.ndarray:
  """Months since 1970-01 of int64-nanosecond times."""
  return times.astype('datetime64[ns]').astype('datetime64[M]').astype(
      np.int64)


def grid_steps(times: np.ndarray, step: Step) -> Tuple[np.ndarray, int]:
  """(each time's step on the grid anchored at times[0], the number of
  times off the grid). `times` sorted, int64 nanoseconds."""
  if step.months:
    months = _months(times)
    steps = (months - months[0]) // step.months
    starts = _months(times[:1])[0] + steps * step.months
    on_grid = starts.astype('datetime64[M]').astype('datetime64[ns]').astype(
        np.int64) == times
    return steps, int((~on_grid).sum())
  offsets = times - times[0]
  steps = (offsets + step.nanoseconds // 2) // step.nanoseconds
  return steps, int((offsets % step.nanoseconds != 0).sum())


def step_time(first: int, step: Step, count: int) -> np.datetime64:
  """The time `count` steps after `first` (int64 nanoseconds)."""
  if step.months:
    month = np.datetime64(first, 'ns').astype('datetime64[M]')
    return (month + count * step.months).astype('datetime64[ns]')
  return np.datetime64(first + count * step.nanoseconds, 'ns')


def aggregate(steps: np.ndarray, values: np.ndarray, length: int,
              how: str = 'mean') -> np.ndarray:
  """[length] float64: per step, the mean (or first or last, in row order)
  of the observed `values` of the rows at that step; NaN where none."""
  observed = ~np.isnan(values)
  at, kept = steps[observed], values[observed]
  out = np.full(length, np.nan)
  if how == 'mean':
    counts = np.bincount(at, minlength=length)
    sums = np.bincount(at, kept, minlength=length)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out
  if how == 'last':
    at, kept = at[::-1], kept[::-1]
  found, first = np.unique(at, return_index=True)
  out[found] = kept[first]
  return out


def _runs(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(starts, ends) of the runs of True in `mask` (ends exclusive)."""
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def fill_and_split(values: np.ndarray, max_gap: int = MAX_GAP,
                   min_length: int = MIN_LENGTH
                   ) -> Tuple[List[Tuple[int, np.ndarray]], Dict[str, int]]:
  """The gap rule (rule 5 of the module docstring) on one series.

  Returns:
    pieces: (offset of the piece in `values`, its values).
    stats: trimmed (missing steps at the ends), filled (values
      interpolated in kept pieces), splits (runs longer than max_gap),
      dropped_pieces / dropped_values (pieces under min_length), and
      all_missing (1 when no value is observed).
  """
  stats = dict(trimmed=0, filled=0, splits=0, dropped_pieces=0,
               dropped_values=0, all_missing=0)
  observed = np.flatnonzero(~np.isnan(values))
  if not len(observed):
    stats.update(all_missing=1, trimmed=len(values))
    return [], stats
  first, last = int(observed[0]), int(observed[-1])
  stats['trimmed'] = first + len(values) - 1 - last
  core = values[first:last + 1].copy()
  starts, ends = _runs(np.isnan(core))
  long = ends - starts > max_gap
  stats['splits'] = int(long.sum())
  missing = np.isnan(core)
  core[missing] = np.interp(np.flatnonzero(missing),
                            observed - first, values[observed])
  bounds = ([0] + list(ends[long]), list(starts[long]) + [len(core)])
  pieces = []
  for start, end in zip(*bounds):
    if end - start < min_length:
      stats['dropped_pieces'] += 1
      stats['dropped_values'] += int((~missing[start:end]).sum())
      continue
    stats['filled'] += int(missing[start:end].sum())
    pieces.append((first + int(start), core[start:end]))
  return pieces, stats
