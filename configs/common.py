"""Shared helpers for configs: `parse_arg`, the base config and presets.

Every field and its default is defined once, in `ttm_jax.schema` (each with
a one-line doc: `python -c "from ttm_jax import schema;
print(schema.describe())"`); configs set only what differs. Defaults serve a
user outside this project: IBM's hub ids and $TTM_DATA_DIR.
"""

import ml_collections as mlc

from ttm_jax import schema

# IBM granite r2 (context 512, horizon 96 on `main`).
R2_CHECKPOINT = 'ibm-granite/granite-timeseries-ttm-r2'
# IBM's few-shot batch sizes (TTM_SPEC.md 4.3).
BATCH_SIZES = {'traffic': 8, 'electricity': 32}
# Evaluation batches in windows. Each window is `channels` series, and on
# this CPU the r2 forward runs fastest at a few hundred to ~2k series a
# batch (measured: 7 ch x 64 windows 3,300-3,500 series/s, x 256 2,900;
# 321 ch x 4 2,440, x 32 2,020 and 2.2 GB; 862 ch x 2 2,740), so the wide
# sets take few windows a batch. The metric is an exact mean over all
# windows whatever the batch.
EVAL_BATCH_SIZE = 64
EVAL_BATCH_SIZES = {'electricity': 4, 'traffic': 2}
ETT = ('etth1', 'etth2', 'ettm1', 'ettm2')


def parse_arg(arg, **defaults):
  """'a=1,b=x' -> ConfigDict over `defaults` (types follow the defaults)."""
  out = mlc.ConfigDict(defaults)
  if not arg:
    return out
  for item in arg.split(','):
    if not item:
      continue
    key, _, value = item.partition('=')
    if key not in defaults:
      raise ValueError(f'Unknown config argument {key!r}; known: '
                       f'{sorted(defaults)}')
    default = defaults[key]
    if isinstance(default, bool):
      value = value.lower() in ('1', 'true', 'yes')
    elif isinstance(default, int):
      value = int(value)
    elif isinstance(default, float):
      value = float(value)
    out[key] = value
  return out


def quantile_levels(spec: str):
  """'0.1:0.9' -> (0.1, 0.2, ..., 0.9); 'lo:hi:step' for another step;
  empty -> None (a point model). The model's config checks the levels (odd
  count, symmetric, 0.5 included, inside (0, 1))."""
  if not spec:
    return None
  parts = [float(p) for p in spec.split(':')]
  if len(parts) not in (2, 3):
    raise ValueError(f'quantiles={spec!r}: expected lo:hi or lo:hi:step '
                     '(e.g. 0.1:0.9 for 0.1, 0.2, ..., 0.9).')
  low, high, step = parts if len(parts) == 3 else (*parts, 0.1)
  count = int(round((high - low) / step)) + 1
  if count < 1 or abs(low + (count - 1) * step - high) > 1e-9:
    raise ValueError(f'quantiles={spec!r}: {high} is not {low} plus a '
                     f'whole number of steps of {step}.')
  return tuple(round(low + k * step, 10) for k in range(count))


def quantile_fields(spec: str):
  """The TTMConfig fields of a multi-quantile head at `spec` levels ({}
  for a point model)."""
  levels = quantile_levels(spec)
  if levels is None:
    return {}
  return dict(multi_quantile_head=True, quantile_levels=levels)


def base_config() -> mlc.ConfigDict:
  """Every field at its default (ttm_jax.schema)."""
  return schema.defaults()
