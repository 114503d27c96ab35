"""Checks of config values: one language for the engine's config
(`schema.py`) and the model's (`models/config_rules.py`).

A check takes a value and returns a complaint ('must be one of [...]'), or
None when the value is valid; the caller names the field and raises. This
module imports nothing heavy, so configs stay cheap to build.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import sys
from typing import Any, Callable, Optional

Check = Callable[[Any], Optional[str]]  # A complaint, or None when valid.


def _is_integer(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def one_of(*allowed) -> Check:
  """One of `allowed`, of the same type (True is not 1)."""
  def check(value):
    if any(value is a or (type(value) is type(a) and value == a)
           for a in allowed):
      return None
    return f'must be one of {list(allowed)}'
  return check


def at_least(low, exclusive: bool = False) -> Check:
  """A finite number >= low (> low if `exclusive`); for values already of
  a numeric type."""
  def check(value):
    ok = value > low if exclusive else value >= low
    return None if ok and math.isfinite(value) else (
        f'must be {">" if exclusive else ">="} {low}')
  return check


def positive() -> Check:
  return at_least(0, exclusive=True)


def in_range(low, high) -> Check:
  """low <= value <= high; for values already of a numeric type."""
  return lambda v: None if low <= v <= high else f'must be in [{low}, {high}]'


def integer(low: Optional[int] = None) -> Check:
  """An integer (not a bool), >= low when given."""
  def check(value):
    if _is_integer(value) and (low is None or value >= low):
      return None
    return 'must be an integer' + ('' if low is None else f' >= {low}')
  return check


def number(low: float, high: float, closed_high: bool = False) -> Check:
  """A finite number in [low, high) ([low, high] if `closed_high`)."""
  def check(value):
    if _is_number(value) and low <= value and (
        value <= high if closed_high else value < high):
      return None
    return (f'must be a number in [{low}, {high}'
            f'{"]" if closed_high else ")"}')
  return check


def positive_number() -> Check:
  return lambda v: None if _is_number(v) and v > 0 else (
      'must be a positive number')


def boolean() -> Check:
  return lambda v: None if isinstance(v, bool) else 'must be true or false'


def string() -> Check:
  return lambda v: None if isinstance(v, str) else 'must be a string'


def regex() -> Check:
  def check(value):
    try:
      re.compile(value)
    except (re.error, TypeError) as e:
      return f'is not a regular expression ({e})'
    return None
  return check


def optional(check: Check) -> Check:
  """None, or a value that passes `check`."""
  return lambda v: None if v is None else check(v)


def each(check: Check) -> Check:
  """Every entry of a sequence passes `check`."""
  def run(values):
    for value in values:
      complaint = check(value)
      if complaint:
        return f'entry {value!r} {complaint}'
    return None
  return run


def _is_real(value) -> bool:
  """A finite real number, Python's or NumPy's (not a bool)."""
  return (isinstance(value, numbers.Real)
          and not isinstance(value, (bool, np_bool()))
          and math.isfinite(value))


def np_bool():
  """NumPy's bool type, or bool when NumPy is not loaded (so this module
  stays light to import)."""
  numpy = sys.modules.get('numpy')
  return numpy.bool_ if numpy is not None else bool


def _is_list(value) -> bool:
  """A list-like of values: not a string, a mapping or a scalar."""
  return (not isinstance(value, (str, bytes, dict))
          and hasattr(value, '__len__') and hasattr(value, '__iter__')
          and getattr(value, 'ndim', 1) == 1)


def count(low: int = 1) -> Check:
  """A whole number >= low: Python's or NumPy's int, not a bool, not 2.0
  (for user-facing arguments, where NumPy integers are common)."""
  def check(value):
    if (isinstance(value, numbers.Integral)
        and not isinstance(value, (bool, np_bool())) and value >= low):
      return None
    return f'must be an integer >= {low}'
  return check


def open_fraction() -> Check:
  """A number strictly between 0 and 1."""
  return lambda v: None if _is_real(v) and 0.0 < v < 1.0 else (
      'must be a number in (0, 1)')


def levels() -> Check:
  """A list of unique numbers in (0, 1) (quantile levels); a scalar or a
  string is refused."""
  def check(value):
    if not _is_list(value):
      return 'must be a list of numbers in (0, 1), e.g. [0.1, 0.9]'
    seen = set()
    for level in value:
      if not (_is_real(level) and 0.0 < level < 1.0):
        return f'has {show(level)}: levels must be numbers in (0, 1)'
      if float(level) in seen:
        return f'has {show(level)} twice: levels must be unique'
      seen.add(float(level))
    return None
  return check


def names() -> Check:
  """A list of unique column names (strings or integers), not a string."""
  def check(value):
    if not _is_list(value):
      hint = f' (write [{value!r}])' if isinstance(value, str) else ''
      return f'must be a list of column names{hint}'
    seen = set()
    for name in value:
      if not isinstance(name, (str, numbers.Integral)) or isinstance(
          name, bool):
        return f'has {show(name)}: column names are strings'
      if name in seen:
        return f'names {show(name)} twice'
      seen.add(name)
    return None
  return check


def instance(kind, what: str) -> Check:
  """An instance of `kind` (a type or tuple of types), described as
  `what` in the complaint."""
  return lambda v: None if isinstance(v, kind) and not (
      isinstance(v, bool) and kind is not bool) else f'must be {what}'


def show(value, limit: int = 60) -> str:
  """`value` for a message: NumPy scalars as plain Python (5, not
  np.int64(5)), long reprs cut."""
  if hasattr(value, 'item') and getattr(value, 'ndim', None) == 0:
    value = value.item()
  text = repr(value)
  return text if len(text) <= limit else text[:limit - 3] + '...'


def values_of(check: Check) -> Check:
  """A mapping whose every value passes `check`."""
  def run(mapping):
    if not hasattr(mapping, 'items'):
      return 'must be a mapping'
    for key, value in mapping.items():
      complaint = check(value)
      if complaint:
        return f'[{key!r}] {complaint}'
    return None
  return run


# ------------------------------------------------ values written as text
# Command-line values (`file.py:key=value`, corpus source options, flags)
# arrive as text: a check of the text, then `from_text` converts it.
BOOLEAN_WORDS = {'true': True, '1': True, 'yes': True,
                 'false': False, '0': False, 'no': False}


def boolean_text() -> Check:
  """One of true/false/1/0/yes/no (any case)."""
  return lambda v: None if str(v).strip().lower() in BOOLEAN_WORDS else (
      'must be one of true/false/1/0/yes/no')


def integer_text(low: Optional[int] = None) -> Check:
  """The text of an integer (>= low when given)."""
  def check(value):
    try:
      number_value = int(str(value).strip())
    except ValueError:
      number_value = None
    if number_value is not None and (low is None or number_value >= low):
      return None
    return 'must be an integer' + ('' if low is None else f' >= {low}')
  return check


def number_text() -> Check:
  """The text of a finite number."""
  def check(value):
    try:
      return None if math.isfinite(float(str(value).strip())) else (
          'must be a finite number')
    except ValueError:
      return 'must be a number'
  return check


def text_check(like) -> Optional[Check]:
  """The check of text standing for a value of `like`'s type (None for a
  string, which any text is)."""
  if isinstance(like, bool):
    return boolean_text()
  if isinstance(like, int):
    return integer_text()
  if isinstance(like, float):
    return number_text()
  return None


def from_text(text: str, like):
  """`text` as a value of `like`'s type; `text_check(like)` passed."""
  text = str(text).strip() if not isinstance(like, str) else text
  if isinstance(like, bool):
    return BOOLEAN_WORDS[text.lower()]
  if isinstance(like, int):
    return int(text)
  if isinstance(like, float):
    return float(text)
  return text


def unknown_options(cls, options: dict) -> Optional[str]:
  """A complaint naming the keys of `options` that are not fields of the
  dataclass `cls` (and the fields it has), or None."""
  names = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(options) - names)
  if unknown:
    return f'unknown option(s) {unknown}; expected some of {sorted(names)}'
  return None
