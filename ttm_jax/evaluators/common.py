"""What every evaluator shares: the forecaster it scores, the data it reads,
and the registry that builds evaluators from `config.evals`.

An experiment declares its evaluations by name, as big_vision does:

  config.evals = dict(
      val=dict(type='windows', split='valid', every_steps=0),
      test=dict(type='windows', split='test', compare=('seasonal_naive',),
                final=True),
      test_conformal=dict(type='conformal', calibrate='valid', score='test',
                          final=True),
  )

Each entry names a registered type (`@register('windows')`), and the type
declares its own fields (`FIELDS`) beside the common ones below, each with
its default, doc and check, so a misspelt field or a bad value fails at
start-up naming the evaluation. An evaluator is built once with the
forecaster it scores (a model, a baseline, a fine-tuned model: one
`Predictor`) and the data (`Context`); `run(variables)` returns its named
metrics (`ttm_jax.metrics`). Adding an evaluator touches neither the loop
nor the sweep tables: its results are keyed by the evaluation's name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Sequence, Tuple

import ml_collections

from ttm_jax import baselines
from ttm_jax import checks
from ttm_jax import compilation
from ttm_jax import errors
from ttm_jax import metrics as metrics_lib
from ttm_jax import fields

# Fields every evaluation has (the type adds its own).
COMMON_FIELDS = {
    'type': fields.Field('windows', 'The registered evaluator type.'),
    'every_steps': fields.Field(
        -1, 'During training: -1 never; 0 at the validation cadence '
        '(config.eval_every_steps, default every epoch); N every N steps.',
        checks.at_least(-1)),
    'final': fields.Field(False, 'Run on the tested model after training '
                          '(its record goes to results.json).'),
    'metrics': fields.Field((), 'Metrics (ttm_jax.metrics.METRICS); empty: '
                            "the forecaster's defaults (mse, mae, mase; "
                            'with quantiles also wql, msis, coverage).',
                            checks.each(checks.one_of(
                                *metrics_lib.METRICS))),
}


@dataclasses.dataclass(frozen=True)
class Predictor:
  """A forecaster as the evaluators see it.

  Attributes:
    name: what the records call it ('model', 'seasonal_naive', ...).
    forecast: `(variables, batch) -> point [b, h, c']` or `(point,
      quantiles [b, h, c', q] or None)`; traced inside jitted steps.
    horizon: steps forecast.
    config: the TTMConfig that aligns targets with the forecast (horizon
      filter, forecast channels); None: targets as given.
    levels: the quantile levels of its quantiles, or at which a point
      forecast is scored.
    has_quantiles: True when `forecast` returns quantiles.
    default_metrics: what an evaluation that names none computes.
    quantile_metrics_ok: False for a point model, whose quantile metrics
      would only restate the point forecast (a baseline is scored as
      GluonTS scores a point forecast: every quantile is the point).
    precision: the model's compute dtype, 'float32' or 'bfloat16' (which
      XLA options its programs get: `compilation.options`).
  """
  name: str
  forecast: Callable
  horizon: int
  config: Any = None
  levels: Tuple[float, ...] = metrics_lib.DEFAULT_LEVELS
  has_quantiles: bool = False
  default_metrics: Tuple[str, ...] = metrics_lib.POINT_METRICS
  quantile_metrics_ok: bool = False
  precision: str = 'float32'

  def metric_names(self, asked: Sequence[str]) -> Tuple[str, ...]:
    """The metrics to compute: `asked`, or the defaults; a point model
    asked for quantile metrics is a ConfigError."""
    names = tuple(asked) or self.default_metrics
    if not self.quantile_metrics_ok:
      metrics_lib.check_quantile_metrics(names, self.has_quantiles)
    return names


def model_predictor(model) -> Predictor:
  """A TTM (`factory.Model`) as a predictor."""
  # Imported here: evaluators of baselines need no model code.
  from ttm_jax.models import ttm  # pylint: disable=g-import-not-at-top
  config = model.config

  def forecast(variables, batch):
    out = model.module.apply(variables, **ttm.model_inputs(batch, config))
    return out.prediction_outputs, out.quantile_outputs

  quantiles = bool(config.multi_quantile_head)
  return Predictor(
      'model', forecast, config.output_length, config,
      tuple(config.quantile_levels) if quantiles else
      metrics_lib.DEFAULT_LEVELS, quantiles,
      metrics_lib.default_names(quantiles), quantiles,
      compilation.precision_of(model.module))


def baseline_predictor(name: str, horizon: int, season: int) -> Predictor:
  """A naive forecaster (`ttm_jax.baselines`) as a predictor; its
  variables are `{}`."""
  forecast = baselines.forecaster(name, horizon, season)
  return Predictor(name, lambda variables, batch: forecast(batch), horizon,
                   default_metrics=metrics_lib.default_names(True),
                   quantile_metrics_ok=True)


@dataclasses.dataclass
class Context:
  """The data an evaluator reads and how.

  Attributes:
    data: the experiment's window sources (`data.builders.Data`).
    mesh: the data mesh.
    batch_size: global evaluation batch (windows).
    season: of MASE, MSIS and seasonal naive.
    num_threads: grain reader threads.
  """
  data: Any
  mesh: Any
  batch_size: int
  season: int = 1
  num_threads: int = 0

  def source(self, split: str):
    """The window source of `split`."""
    return {'train': self.data.train, 'valid': self.data.valid,
            'test': self.data.test}[split]


class Evaluator:
  """One evaluation: built once, run whenever its schedule says.

  Subclasses set `FIELDS` (their own fields) and implement `run`;
  `splits_of` names the splits they read (the data builder makes sure
  they exist).
  """
  FIELDS: Mapping[str, fields.Field] = {}

  def __init__(self, name: str, spec: Mapping[str, Any],
               predictor: Predictor, context: Context):
    self.name, self.spec = name, dict(spec)
    self.predictor, self.context = predictor, context

  @classmethod
  def splits_of(cls, spec: Mapping[str, Any]) -> Tuple[str, ...]:
    """The splits an evaluation of this type with `spec` reads."""
    del spec
    return ()

  @property
  def every_steps(self) -> int:
    return self.spec['every_steps']

  @property
  def final(self) -> bool:
    return self.spec['final']

  def run(self, variables, progress: str = '') -> Dict[str, Any]:
    """Metric values (and what the record should say of them)."""
    raise NotImplementedError


TYPES: Dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
  """Class decorator: makes an evaluator type available to `config.evals`
  under `name`."""
  def wrap(cls):
    TYPES[name] = cls
    return cls
  return wrap


def _type_of(name: str, spec: Mapping[str, Any]) -> type:
  kind = spec.get('type', COMMON_FIELDS['type'].default)
  if kind not in TYPES:
    raise errors.ConfigError(
        f'config.evals.{name}.type={kind!r} is not a registered evaluator '
        f'(known: {sorted(TYPES)}).')
  return TYPES[kind]


def resolve_spec(name: str, spec: Mapping[str, Any]) -> Dict[str, Any]:
  """`spec` with its type's defaults filled in, every field checked."""
  if isinstance(spec, ml_collections.ConfigDict):
    spec = spec.to_dict()
  if not isinstance(spec, Mapping):
    raise errors.ConfigError(f'config.evals.{name}={spec!r} must be a dict '
                             "of fields (type='windows', ...).")
  cls = _type_of(name, spec)
  return fields.merge({**COMMON_FIELDS, **cls.FIELDS}, spec,
                      f'evals.{name}.')


def from_config(evals: Mapping[str, Mapping[str, Any]], predictor: Predictor,
                context: Context) -> Dict[str, Evaluator]:
  """Every evaluation of `config.evals`, built for `predictor`."""
  return {name: _type_of(name, spec)(name, resolve_spec(name, spec),
                                     predictor, context)
          for name, spec in evals.items()}


def splits_read(evals: Mapping[str, Mapping[str, Any]]) -> Tuple[str, ...]:
  """The splits the evaluations read (without building them)."""
  out = []
  for name, spec in evals.items():
    spec = resolve_spec(name, spec)
    for split in _type_of(name, spec).splits_of(spec):
      if split not in out:
        out.append(split)
  return tuple(out)


def compared(names: Sequence[str], horizon: int, season: int
             ) -> Dict[str, Callable]:
  """Baselines scored beside a forecaster: `batch -> point` each."""
  return {name: baselines.forecaster(name, horizon, season)
          for name in names}

