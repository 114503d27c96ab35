"""The model of an experiment config: loaded from a checkpoint or new.

`create_model(config)` returns a `Model`: the `TTMConfig`, the Linen module
and its variables. A checkpoint is loaded with `config.model.overrides` (as
the reference's `from_pretrained(**kwargs)`); a horizon shorter than the
checkpoint's is served by `prediction_filter_length`, as the reference's
`get_model` does. A new model is `config.model.preset` updated with
`config.model.arch`, at the experiment's context and horizon.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import flax.linen as nn

from ttm_jax import compilation
from ttm_jax import errors
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import presets
from ttm_jax.models import modules

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Model:
  """A TTM ready to run.

  Attributes:
    config: its `TTMConfig`.
    module: the Linen module (compute dtype set).
    variables: {'params': ..., and 'batch_stats'/'buffers' when it has
      them}.
    new_weights: reference names of weights initialised here (absent from
      the checkpoint).
  """
  config: config_lib.TTMConfig
  module: nn.Module
  variables: Dict[str, Any]
  new_weights: List[str] = dataclasses.field(default_factory=list)


def _horizon_overrides(config, overrides: Dict[str, Any],
                       stored: Optional[config_lib.TTMConfig] = None
                       ) -> Dict[str, Any]:
  """Serves a shorter horizon with `prediction_filter_length`; refuses a
  longer one with advice that works. `stored`: the model's config (default
  the checkpoint's)."""
  if stored is None:
    path = checkpoint.resolve(config.checkpoint, config.revision or None)
    stored = config_lib.TTMConfig.from_json_file(
        f'{path}/{checkpoint.CONFIG_NAME}', **overrides)
  wanted = config.prediction_length
  if wanted > stored.prediction_length:
    raise errors.ConfigError(
        f'config.prediction_length={wanted} is longer than the '
        f'{stored.prediction_length} steps checkpoint {config.checkpoint} '
        'forecasts: use a checkpoint made for that horizon (e.g. an IBM r2 '
        'release with prediction_length >= '
        f'{wanted}, see ttm_jax.models.zoo), or forecast rolling '
        '(ttm_jax.forecast(..., horizon=...) feeds its forecasts back).')
  if (wanted != stored.output_length
      and 'prediction_filter_length' not in overrides):
    _LOG.info('Forecasting %d of the checkpoint\'s %d steps '
              '(prediction_filter_length).', wanted,
              stored.prediction_length)
    overrides = dict(overrides, prediction_filter_length=wanted)
  return overrides


def _check_matches(config, ttm_config: config_lib.TTMConfig) -> None:
  if ttm_config.context_length != config.context_length:
    raise errors.ConfigError(
        f'config.context_length={config.context_length} but the model\'s is '
        f'{ttm_config.context_length} (its weights fix it): set '
        f'config.context_length={ttm_config.context_length}.')
  if ttm_config.output_length != config.prediction_length:
    raise errors.ConfigError(
        f'config.prediction_length={config.prediction_length} but the model '
        f'forecasts {ttm_config.output_length} steps (prediction_length '
        f'{ttm_config.prediction_length}, prediction_filter_length '
        f'{ttm_config.prediction_filter_length}): set them equal.')


def new_model(ttm_config: config_lib.TTMConfig, rng: jax.Array,
              dtype=None) -> Model:
  """A new model of `ttm_config`, initialised as the reference does."""
  return Model(ttm_config, modules.build_module(ttm_config, dtype=dtype),
               checkpoint.init_variables(ttm_config, rng))


def compute_dtype(name: str):
  """The module dtype of a config's `compute_dtype` (the precision policy):
  'float32' -> None (every matmul an exact float32 product, on every
  backend: layers.FLOAT32_PRECISION), 'bfloat16' -> jnp.bfloat16 (every
  Linear's products in bfloat16 with float32 accumulation; parameters,
  norms, GELU, softmax, loss and optimiser in float32)."""
  if name not in compilation.PRECISIONS:
    raise ValueError(f'compute_dtype must be one of {compilation.PRECISIONS}, '
                     f'got {name!r}.')
  return jnp.bfloat16 if name == 'bfloat16' else None


def create_model(config) -> Model:
  """The experiment's model: `config.checkpoint` loaded, or a new one."""
  rng = jax.random.key(config.seed)
  dtype = compute_dtype(config.compute_dtype)
  if not config.checkpoint:
    arch = presets.arch(config.model.preset) if config.model.preset else {}
    arch.update(context_length=config.context_length,
                prediction_length=config.prediction_length)
    arch.update(config.model.arch)
    model = new_model(config_lib.TTMConfig(**arch), rng, dtype)
    _check_matches(config, model.config)
    return model
  overrides = _horizon_overrides(config, dict(config.model.overrides))
  ttm_config, _, variables, report = checkpoint.load_pretrained(
      config.checkpoint, revision=config.revision or None, rng=rng,
      return_report=True, **overrides)
  _check_matches(config, ttm_config)
  return Model(ttm_config, modules.build_module(ttm_config, dtype=dtype),
               _new_residuals(config, variables, report.new), report.new)


def derive(model: Model, config) -> Model:
  """The experiment's model from one already in memory (a fine-tune of a
  loaded model): `config.model.overrides` and the horizon applied as
  `create_model` applies them to a checkpoint (new weights initialised as
  the reference does, the new residual branches' outputs zero with
  `config.model.zero_new_residuals`), the variables carried over."""
  overrides = _horizon_overrides(
      config, dict(config.model.overrides),
      config_lib.TTMConfig.from_dict(model.config.to_dict(),
                                     **config.model.overrides))
  stored = model.config.to_dict()
  ttm_config = config_lib.TTMConfig.from_dict(stored, **overrides)
  variables, report = checkpoint.convert_state_dict(
      checkpoint.to_state_dict(jax.device_get(model.variables)), ttm_config,
      jax.random.key(config.seed), provenance=(stored, overrides))
  _check_matches(config, ttm_config)
  return Model(ttm_config, modules.build_module(
      ttm_config, dtype=compute_dtype(config.compute_dtype)),
               _new_residuals(config, variables, report.new), report.new)


def _new_residuals(config, variables, new: List[str]):
  """`variables` with the new residual branches' outputs zeroed when
  `config.model.zero_new_residuals` (`checkpoint.zero_new_residuals`)."""
  if not config.model.get('zero_new_residuals', False):
    return variables
  variables, zeroed = checkpoint.zero_new_residuals(variables, new)
  if zeroed:
    _LOG.info('Zero-initialised %d new residual output weights: %s',
              len(zeroed), ', '.join(zeroed))
  return variables
