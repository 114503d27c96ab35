"""How histories become a TTM's inputs: the one place padding, missing
values and standardisation are decided, for every caller (the forecasting
API, `ttm_jax.backtest`, the benchmark runner, the recipes).

A history is `[t, c]` (or `[t]`), NaN where a value is missing, of any
length. Its model context is its last `context_length` rows; what comes
before its first observed value there (the pads of a short history, and
leading missing values) and the missing values after it (gaps) are filled
as `Inputs` says, and masked (observed mask 0) unless filled from the data
as observed values (`gaps='last'`, as IBM's pipelines do):

  pad   'zero'  raw 0 (IBM's pipeline, fev's TTM wrapper)
        'mean'  the context's mean (0 once standardised)
        'edge'  the first observed value of the context
  gaps  'last'  the last observed value before it, counted as observed
                (GluonTS's LastValueImputation over the whole history, as
                fev's TTM wrapper and IBM's GIFT-Eval pipeline)
        'zero'  raw 0, masked
        'mean'  the context's mean, masked
  standardize   each context divided by its own statistics in float64
                before the float32 cast (the std scaler's mean and
                deviation over its observed values; the mean scaler's
                mean absolute value; nothing for a model without a
                scaler), the forecast mapped back: an offset of 1e9 or a
                scale of 1e-9 reaches the model as well conditioned as any
                other series

  adaptation    a univariate history shorter than the model's context is
                seasonally adjusted (M4's test and multiplicative
                indices, at the data's season) and linearly upsampled
                (max(1, 8 // season) times finer) first, and the forecast
                mapped back (`adapt`)

`REFERENCE` feeds exactly what IBM's pipeline (and fev's published TTM
rows) feed: raw float32, zero pads, last-value gaps. `DEFAULT` is what the
API and the runner use unless told otherwise: edge pads, last-value gaps,
standardised, short histories adapted. It was chosen on validation data
only (22 tasks: the validation splits of Chronos Benchmark II's five
Monash tasks and of 15 GIFT-Eval configurations, and real gaps in 12
Beijing stations' NO2 and O3), by a rule fixed before the grid ran: the
lowest geometric mean of MASE over the reference's among the settings no
worse than the reference on any task (docs/forecasting.md, "Short and
gappy histories"; docs/results/2026-12-07-default-inputs.md). A dict of
options overrides the default's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np

from ttm_jax import baselines
from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.inference import adapt

PADS = ('zero', 'mean', 'edge')
GAPS = ('last', 'zero', 'mean')


@dataclasses.dataclass(frozen=True)
class Inputs:
  """How histories become model inputs (module docstring).

  Attributes:
    pad: what precedes the first observed value of a context: 'zero',
      'mean' or 'edge'.
    gaps: missing values after it: 'last', 'zero' or 'mean'.
    standardize: each context standardised in float64 first.
    adaptation: short, low-frequency pasts deseasonalised and upsampled
      first (`adapt.Adaptation`); None: as given.
  """
  pad: str = 'edge'
  gaps: str = 'last'
  standardize: bool = True
  adaptation: Optional[adapt.Adaptation] = None

  def check(self) -> 'Inputs':
    """Itself, or one ConfigError naming the bad option."""
    if self.pad not in PADS:
      raise errors.ConfigError(f'inputs pad={self.pad!r}: expected one of '
                               f'{PADS}.')
    if self.gaps not in GAPS:
      raise errors.ConfigError(f'inputs gaps={self.gaps!r}: expected one '
                               f'of {GAPS}.')
    if not isinstance(self.standardize, (bool, np.bool_)):
      raise errors.ConfigError(f'inputs standardize={self.standardize!r}: '
                               'expected True or False.')
    if self.adaptation is not None:
      self.adaptation.check()
    return self

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @property
  def name(self) -> str:
    """'reference', 'default', or the options spelt out."""
    for name, preset in PRESETS.items():
      if self == preset:
        return name
    return ','.join(f'{k}={v}' for k, v in self.as_dict().items())


REFERENCE = Inputs(pad='zero', gaps='last', standardize=False)
# Chosen on the validation splits (module docstring).
DEFAULT = Inputs(pad='edge', gaps='last', standardize=True,
                 adaptation=adapt.Adaptation(
                     deseasonalize=True, upsample=8, scope='short',
                     seasonality='multiplicative'))
# The forecasting API's inputs before the one path (kept to compare).
LEGACY_API = Inputs(pad='mean', gaps='mean', standardize=True)
PRESETS = {'reference': REFERENCE, 'default': DEFAULT,
           'legacy_api': LEGACY_API}


def check_for_mixer(inputs: Inputs) -> None:
  """Refuses `inputs` that do not standardise each context for a model
  with an exogenous mixer (a fine-tune with covariates): the mixer reads
  the known covariates' future values scaled by the context's statistics,
  and would read them raw."""
  if not inputs.standardize:
    raise errors.ConfigError(
        f'inputs={inputs.name!r} do not standardise each context, so an '
        "exogenous mixer would read its covariates' future values raw: "
        'fine-tune with covariates with standardised inputs (the '
        'default).')


def of(value) -> Inputs:
  """An `Inputs` from itself, a preset's name or a dict of its fields
  (over `DEFAULT`'s: {'pad': 'mean'} changes the pads alone; an
  'adaptation' of None turns it off, a dict gives its fields)."""
  if isinstance(value, Inputs):
    return value.check()
  if isinstance(value, str):
    if value not in PRESETS:
      raise errors.ConfigError(f'inputs={value!r}: expected one of '
                               f'{sorted(PRESETS)} or a dict of options.')
    return PRESETS[value]
  if isinstance(value, dict):
    complaint = checks.unknown_options(Inputs, value)
    if complaint:
      raise errors.ConfigError(f'inputs: {complaint}.')
    value = dict(value)
    if isinstance(value.get('adaptation'), dict):
      value['adaptation'] = adapt.Adaptation(**value['adaptation'])
    return dataclasses.replace(DEFAULT, **value).check()
  raise errors.ConfigError(f'inputs={value!r}: expected a preset name, a '
                           'dict of options or an Inputs.')


class Prepared(NamedTuple):
  """Model inputs: values [n, L, c] float32, observed mask [n, L, c]
  bool, and the statistics [n, 1, c] that map a forecast back."""
  values: np.ndarray
  mask: np.ndarray
  loc: np.ndarray
  scale: np.ndarray


def contexts(histories: Sequence[np.ndarray], length: int,
             gaps: str = 'zero') -> np.ndarray:
  """[n, length, c] float64: each history's last `length` rows (NaN
  before a short history), its gaps imputed first with gaps='last'."""
  arrays = [np.asarray(h, np.float64) for h in histories]
  arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
  if gaps == 'last':
    arrays = [baselines.impute_last_value(a) if np.isnan(a).any() else a
              for a in arrays]
  channels = arrays[0].shape[1]
  out = np.full((len(arrays), length, channels), np.nan)
  for i, a in enumerate(arrays):
    tail = a[-length:]
    out[i, length - len(tail):] = tail
  return out


def statistics(values: np.ndarray, observed: np.ndarray, scaler: str):
  """(loc, scale) [n, 1, c] of each context over its observed values: the
  std scaler's mean and deviation, the mean scaler's mean absolute value
  (loc 0), none (0, 1) for another; a constant channel gets scale 1, a
  channel with nothing observed loc 0 and scale 1."""
  count = observed.sum(axis=1, keepdims=True)
  filled = np.where(observed, values, 0.0)
  loc = np.zeros(count.shape)
  scale = np.ones(count.shape)
  with np.errstate(invalid='ignore', divide='ignore'):
    if scaler == 'std':
      loc = filled.sum(axis=1, keepdims=True) / np.maximum(count, 1)
      spread = np.sqrt((np.where(observed, values - loc, 0.0)**2).sum(
          axis=1, keepdims=True) / np.maximum(count, 1))
      scale = np.where(spread > 0, spread, 1.0)
    elif scaler == 'mean':
      size = np.abs(filled).sum(axis=1, keepdims=True) / np.maximum(count, 1)
      scale = np.where(size > 0, size, 1.0)
  return loc, scale


def prepare(histories: Sequence[np.ndarray], length: int, inputs: Inputs,
            scaler: str = 'std') -> Prepared:
  """The model inputs of `histories` ([t_i, c] or [t_i], NaN missing) for
  a context of `length` steps, as `inputs` says (module docstring);
  `scaler` the model's scaler type (what standardising divides by)."""
  values = contexts(histories, length, inputs.gaps)
  observed = ~np.isnan(values)
  if inputs.standardize:
    loc, scale = statistics(values, observed, scaler)
  else:
    loc = np.zeros((len(values), 1, values.shape[2]))
    scale = np.ones_like(loc)
  steps = np.arange(length)[None, :, None]
  first = np.where(observed.any(axis=1, keepdims=True),
                   np.argmax(observed, axis=1)[:, None, :], length)
  leading = steps < first
  fills = {'zero': np.zeros_like(loc), 'mean': loc}
  if inputs.pad == 'edge':
    edge = np.take_along_axis(np.nan_to_num(values),
                              np.minimum(first, length - 1), axis=1)
    fills['edge'] = np.where(first < length, edge, loc)
  filled = np.where(observed, values,
                    np.where(leading, fills[inputs.pad],
                             fills.get(inputs.gaps, fills['zero'])))
  with np.errstate(invalid='ignore', over='ignore'):
    standardized = ((filled - loc) / scale).astype(np.float32)
  return Prepared(standardized, observed, loc, scale)
