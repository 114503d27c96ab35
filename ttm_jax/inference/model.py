"""A TTM ready to forecast: its checkpoint loaded (or variables given, as a
fine-tune returns them), the jitted inference function, and what the
forecasting path needs to know of it (context, horizon, channels,
quantile head, categorical vocabulary).

`make_predict_fn` is the one jitted inference function: the forecasting
path, the benchmarks and the accelerator check call it; the config
evaluators score the same `apply` inside their own jitted steps.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import jax
import numpy as np

from ttm_jax import compilation
from ttm_jax import errors
from ttm_jax import sharding
from ttm_jax.data import categoricals
from ttm_jax.models import factory
from ttm_jax.models import frequency
from ttm_jax.models import ttm


def apply(module, config, variables, batch):
  """`TTMOutput` of the model on a batch (a dict that may hold more than
  the model reads)."""
  return module.apply(variables, **ttm.model_inputs(batch, config))


def make_predict_fn(model: factory.Model, mesh,
                    variables=None) -> Callable:
  """`predict(batch) -> TTMOutput` for inference with `variables` (default
  the model's), jitted with the inference options. A batch of at least one
  window per device is split over the mesh (padded to a multiple of the
  devices, then cut back); a smaller one runs on one device."""
  module, config = model.module, model.config
  variables = model.variables if variables is None else variables
  devices = mesh.devices.size

  def run(v, batch):
    return apply(module, config, v, batch)

  precision = compilation.precision_of(module)
  single = compilation.jit(run, 'infer', precision)
  spread = compilation.jit(run, 'infer', precision,
                           out_shardings=sharding.replicated(mesh))
  on_one = jax.device_put(variables, mesh.devices.flat[0])
  on_all = sharding.replicate(variables, mesh)

  def predict(batch):
    ttm.warn_if_nan(batch.get('past_values'))
    size = len(next(iter(batch.values())))
    if size < devices:
      return single(on_one, batch)
    padded = sharding.round_to_devices(size, mesh)
    if padded != size:
      batch = {k: np.concatenate([v, np.repeat(v[:1], padded - size, 0)])
               for k, v in batch.items()}
    out = spread(on_all, sharding.shard_batch(batch, mesh))
    return jax.tree.map(lambda x: x[:size] if x.ndim else x, out)

  return predict


class Model:
  """A loaded TTM with the inference function.

  Args:
    checkpoint: a folder, a hub id or a bundled name (what the rows and
      records call it).
    revision: the hub revision.
    model: an already built `factory.Model` (skips loading).
    vocabulary: the static categoricals' codes (default: the checkpoint
      folder's, when it has one).
  """

  def __init__(self, checkpoint: str, revision: str = '',
               model: Optional[factory.Model] = None,
               vocabulary: Optional[categoricals.Vocabulary] = None):
    from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
    if model is None:
      config, module, variables = checkpoint_lib.load_pretrained(
          checkpoint, revision=revision or None)
      model = factory.Model(config, module, variables)
    self.model, self.config = model, model.config
    self.source, self.revision = checkpoint, revision
    if vocabulary is None and os.path.isdir(checkpoint):
      vocabulary = categoricals.Vocabulary.load(checkpoint)
    # The static categoricals' codes in training (None: not saved).
    self.vocabulary = vocabulary
    self.predict = make_predict_fn(model, sharding.make_mesh())

  def with_variables(self, variables: Dict, source: str) -> 'Model':
    """The same model with other variables (a fine-tune's), in memory."""
    import dataclasses  # pylint: disable=g-import-not-at-top
    return Model(source, model=dataclasses.replace(self.model,
                                                   variables=variables),
                 vocabulary=self.vocabulary)

  @property
  def variables(self):
    return self.model.variables

  @property
  def context_length(self) -> int:
    return self.config.context_length

  @property
  def horizon(self) -> int:
    return self.config.output_length

  @property
  def uses_controls(self) -> bool:
    """Whether it reads control channels beside the targets."""
    return bool(self.config.exogenous_channel_indices) or (
        self.config.needs_fixed_channels)

  def check_channels(self, num_targets: int, num_controls: int) -> None:
    config = self.config
    if config.needs_fixed_channels and (
        config.num_input_channels != num_targets + num_controls):
      raise errors.ConfigError(
          f'This model mixes channels with weights for '
          f'{config.num_input_channels} channels, but the data has '
          f'{num_targets} target(s) and {num_controls} control(s).')
    if config.exogenous_channel_indices and not num_controls:
      raise errors.DataError(
          'This model mixes exogenous (control) channels: name them '
          '(control_columns) and give their future values (future_df).')

  def prediction_channels(self, num_targets: int) -> Sequence[int]:
    """The input channels its forecast channels are (the targets)."""
    return list(self.config.prediction_channel_indices
                or range(num_targets))

  @property
  def quantile_levels(self) -> Tuple[float, ...]:
    """The levels of the model's quantile head; () for a point model."""
    if not self.config.multi_quantile_head:
      return ()
    return tuple(self.config.quantile_levels)

  def check_quantiles(self, levels: Sequence[float], horizon: int) -> None:
    """`levels` must be levels of the model's quantile head, within its
    horizon; a point model has none (use conformal intervals)."""
    if not self.quantile_levels:
      raise errors.ConfigError(
          f'{self.source} is a point model (no multi-quantile head): it has '
          "no quantile forecasts. Use intervals='conformal' (split-conformal "
          'bands from each history, ttm_jax.inference.conformal), or a model '
          'trained with a quantile head (configs/few_shot.py:...,'
          'quantiles=0.1:0.9).')
    missing = [q for q in levels if not any(
        abs(q - m) < 1e-9 for m in self.quantile_levels)]
    if missing:
      raise errors.ConfigError(
          f'quantiles {missing} are not levels of this model\'s quantile '
          f'head {list(self.quantile_levels)}: ask for those, or use '
          "intervals='conformal'.")
    if horizon > self.horizon:
      raise errors.ConfigError(
          f'The quantile head forecasts {self.horizon} steps; {horizon} '
          "needs rolling, which has no quantiles: use intervals='conformal' "
          'or a model with a longer horizon.')

  def frequency_token(self, freq: str) -> Optional[int]:
    """The resolution token it reads for data of `freq` (None without
    resolution prefix tuning); one ConfigError when its embedding has no
    row for it (`frequency.checked_token`)."""
    if not self.config.resolution_prefix_tuning:
      return None
    return frequency.checked_token(freq,
                                   self.config.frequency_token_vocab_size)

  def run(self, values: np.ndarray, mask: np.ndarray, freq: str,
          futures: Optional[np.ndarray] = None,
          static_categoricals: Optional[np.ndarray] = None,
          batch: int = 256, with_quantiles: bool = False):
    """One model horizon for each prepared context: values [n, L, c]
    float32 and their observed mask -> [n, h, targets] (with
    `with_quantiles`, also the head's [n, h, targets, q]), in the inputs'
    units."""
    out, quantiles = [], []
    token = self.frequency_token(freq)
    for first in range(0, len(values), batch):
      chunk = {'past_values': values[first:first + batch],
               'past_observed_mask': mask[first:first + batch].astype(
                   np.float32)}
      size = len(chunk['past_values'])
      if self.config.resolution_prefix_tuning:
        chunk['freq_token'] = np.full((size,), token, np.int32)
      if futures is not None:
        chunk['future_values'] = futures[first:first + batch]
      if static_categoricals is not None:
        chunk['static_categorical_values'] = static_categoricals[
            first:first + batch]
      result = self.predict(chunk)
      out.append(np.asarray(result.prediction_outputs, np.float64))
      if with_quantiles:
        quantiles.append(np.asarray(result.quantile_outputs, np.float64))
    if with_quantiles:
      return np.concatenate(out), np.concatenate(quantiles)
    return np.concatenate(out)
