"""Shared helpers for configs: `parse_arg`, the base config and presets.

Every field and its default is defined once, in `ttm_jax.schema` (each with
a one-line doc: `python -c "from ttm_jax import schema;
print(schema.describe())"`); configs set only what differs. Defaults serve a
user outside this project: IBM's hub ids and $TTM_DATA_DIR.
"""

import ml_collections as mlc

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax import recipes
from ttm_jax import schema

R2_CHECKPOINT = recipes.R2_CHECKPOINT
BATCH_SIZES = recipes.BATCH_SIZES
EVAL_BATCH_SIZE = recipes.EVAL_BATCH_SIZE
EVAL_BATCH_SIZES = recipes.EVAL_BATCH_SIZES
ETT = recipes.ETT


def parse_arg(arg, **defaults):
  """'a=1,b=x' -> ConfigDict over `defaults` (types follow the defaults:
  booleans are true/false/1/0/yes/no, numbers are checked); ConfigError
  naming the key otherwise."""
  out = mlc.ConfigDict(defaults)
  if not arg:
    return out
  for item in arg.split(','):
    if not item:
      continue
    key, _, value = item.partition('=')
    if key not in defaults:
      raise errors.ConfigError(f'Unknown config argument {key!r}; known: '
                               f'{sorted(defaults)}')
    check = checks.text_check(defaults[key])
    complaint = check(value) if check else None
    if complaint:
      raise errors.ConfigError(f'config argument {key}={value!r} '
                               f'{complaint}.')
    out[key] = checks.from_text(value, defaults[key])
  return out


def quantile_levels(spec: str):
  """'0.1:0.9' -> (0.1, 0.2, ..., 0.9); 'lo:hi:step' for another step;
  empty -> None (a point model). The model's config checks the levels (odd
  count, symmetric, 0.5 included, inside (0, 1))."""
  if not spec:
    return None
  parts = spec.split(':')
  if len(parts) not in (2, 3) or any(checks.number_text()(p) for p in parts):
    raise errors.ConfigError(f'quantiles={spec!r}: expected lo:hi or lo:hi:step '
                     '(e.g. 0.1:0.9 for 0.1, 0.2, ..., 0.9).')
  parts = [float(p) for p in parts]
  low, high, step = parts if len(parts) == 3 else (*parts, 0.1)
  count = int(round((high - low) / step)) + 1
  if count < 1 or abs(low + (count - 1) * step - high) > 1e-9:
    raise errors.ConfigError(f'quantiles={spec!r}: {high} is not {low} plus a '
                     f'whole number of steps of {step}.')
  return tuple(round(low + k * step, 10) for k in range(count))


def quantile_fields(spec: str):
  """The TTMConfig fields of a multi-quantile head at `spec` levels ({}
  for a point model)."""
  return recipes.quantile_fields(quantile_levels(spec))


def base_config() -> mlc.ConfigDict:
  """Every field at its default (ttm_jax.schema)."""
  return schema.defaults()
