"""Config fields, the machinery under every config of the engine: a field's
default, doc and check (`Field`), and `merge`, which lays given values over
a tree of fields, typing and checking each, with one ConfigError naming
the first bad one. The experiment schema (`ttm_jax.schema`) and each
evaluator's own fields (`evaluators.common`) are trees of these."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
from typing import Any, Dict, Mapping, Optional, Sequence

from ttm_jax import checks
from ttm_jax import errors


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: its default, what it means, and its check.

  Attributes:
    default: the value when a config does not set it (its type is the
      field's type; an empty tuple holds any sequence).
    doc: one line for the reader.
    check: extra validation beyond the type (range, allowed set).
    only_for: the `data.kind` values that read this field; setting it away
      from its default under another kind is an error, never ignored.
    resume: the field shapes the train state or the data stream a
      checkpoint was written with: a run resumes from a workdir's
      checkpoints only when its config agrees on it (schema.RESUME_FIELDS).
  """
  default: Any
  doc: str
  check: Optional[checks.Check] = None
  only_for: Sequence[str] = ()
  resume: bool = False


def default_value(field: Field):
  value = field.default
  return copy.deepcopy(value) if isinstance(value, dict) else value


def defaults_tree(schema: Mapping[str, Any]) -> Dict[str, Any]:
  return {k: (defaults_tree(v) if isinstance(v, dict) else default_value(v))
          for k, v in schema.items()}


def fail(path: str, value, complaint: str):
  raise errors.ConfigError(f'config.{path}={value!r} {complaint}.')


def _typed(path: str, field: Field, value):
  """`value` converted to the field's type, or a ConfigError."""
  default = field.default
  if isinstance(default, bool):
    if not isinstance(value, bool):
      fail(path, value, 'must be true or false')
  elif isinstance(default, int):
    if isinstance(value, bool) or not isinstance(value, int):
      if isinstance(value, float) and value.is_integer():
        return int(value)
      fail(path, value, 'must be an integer')
  elif isinstance(default, float):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      fail(path, value, 'must be a number')
    value = float(value)
    if not math.isfinite(value):
      fail(path, value, 'must be finite')
  elif isinstance(default, str):
    if not isinstance(value, str):
      fail(path, value, 'must be a string')
  elif isinstance(default, tuple):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
      fail(path, value, 'must be a list')
    value = tuple(value)
  elif isinstance(default, dict):
    if not isinstance(value, Mapping):
      fail(path, value, 'must be a dict')
    value = dict(value)
  return value


def _unknown(path: str, key: str, known: Sequence[str]):
  close = difflib.get_close_matches(key, list(known), n=3)
  hint = f' Did you mean {close}?' if close else ''
  raise errors.ConfigError(
      f'config.{path}{key} is not a field of the engine (known at '
      f'config.{path or ""}: {sorted(known)}).{hint}')


def merge(schema: Mapping[str, Any], given: Mapping[str, Any],
          prefix: str = '') -> Dict[str, Any]:
  """`given` over the defaults of `schema`, every field typed and
  checked; ConfigError naming `prefix`+field for the first bad one."""
  out = defaults_tree(schema)
  for key, value in given.items():
    if key not in schema:
      _unknown(prefix, key, list(schema))
    spec = schema[key]
    path = prefix + key
    if isinstance(spec, dict):
      if not isinstance(value, Mapping):
        fail(path, value, 'must be a group of fields')
      out[key] = merge(spec, value, path + '.')
      continue
    value = _typed(path, spec, value)
    complaint = spec.check(value) if spec.check is not None else None
    if complaint:
      fail(path, value, complaint)
    out[key] = value
  return out


def describe(tree: Mapping[str, Any], prefix: str = '') -> str:
  """Every field of `tree` with its default and doc, one per line."""
  lines = []
  for key, spec in tree.items():
    if isinstance(spec, dict):
      lines.append(describe(spec, f'{prefix}{key}.'))
    else:
      lines.append(f'{prefix}{key} = {spec.default!r}  # {spec.doc}')
  return '\n'.join(lines)
