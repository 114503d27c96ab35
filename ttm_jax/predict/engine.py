"""A TTM ready to forecast arbitrary histories: checkpoint selection
('auto' among local folders, then the hub if allowed), context windows
(padded with a mask when short), horizons longer than the model's by
rolling its forecasts back in, float64 standardisation of each context, and
batching through the engine's inference function."""

from __future__ import annotations

import json
import logging
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.models import frequency
from ttm_jax.models import zoo

_LOG = logging.getLogger(__name__)
CHECKPOINTS_ENV = 'TTM_CHECKPOINTS'
HUB_R2 = 'ibm-granite/granite-timeseries-ttm-r2'


def _local_candidates(folders: Sequence[str]) -> List[Tuple[str, int, int]]:
  """(folder, context, horizon) of every checkpoint folder found (a folder
  with config.json, or the folders directly inside one)."""
  out = []
  for root in folders:
    if not root or not os.path.isdir(root):
      continue
    inner = [os.path.join(root, n) for n in sorted(os.listdir(root))]
    for folder in [root] + [p for p in inner if os.path.isdir(p)]:
      path = os.path.join(folder, 'config.json')
      if os.path.exists(path):
        try:
          with open(path) as f:
            values = json.load(f)
          out.append((folder, int(values['context_length']),
                      int(values['prediction_length'])))
        except (ValueError, KeyError, TypeError):
          _LOG.warning('Skipping %s: unreadable config.json.', folder)
  return out


def release_of(checkpoint: str) -> Optional[str]:
  """The hub id an 'auto' checkpoint chooses among: None for 'auto' (local
  folders first, then IBM's r2), the id after 'auto:' (e.g.
  'auto:ibm-research/ttm-r3'), or None when it is not 'auto' at all."""
  if checkpoint == 'auto' or not checkpoint.startswith('auto:'):
    return None
  return checkpoint[len('auto:'):]


def choose_checkpoint(history: int, horizon: int, freq: str,
                      checkpoints_dir: Optional[str] = None,
                      allow_download: bool = False,
                      hub_id: Optional[str] = None) -> Tuple[str, str]:
  """(path or hub id, revision) for 'auto', by the reference's `get_model`
  rule (the longest context that fits, then the shortest horizon that
  covers; rolling when none does): local folders first, the hub only when
  allowed. With `hub_id` (a release of `zoo.HUB_IDS`, 'auto:<hub id>'),
  that release's rule alone (r3's for 'ibm-research/ttm-r3')."""
  if hub_id is not None:
    return _choose_release(hub_id, history, horizon, freq, allow_download)
  roots = [checkpoints_dir, os.environ.get(CHECKPOINTS_ENV, '')]
  found = _local_candidates(roots)
  if found:
    fits = [c for c in found if c[1] <= history] or [
        min(found, key=lambda c: c[1])]  # Zero-pad to the shortest.
    longest = max(c[1] for c in fits)
    fits = [c for c in fits if c[1] == longest]
    covers = sorted([c for c in fits if c[2] >= horizon], key=lambda c: c[2])
    choice = covers[0] if covers else max(fits, key=lambda c: c[2])
    return choice[0], ''
  if not allow_download:
    raise errors.CheckpointError(
        "checkpoint='auto' found no checkpoint folder in "
        f'{[r for r in roots if r] or "(none given)"}: pass checkpoints_dir '
        f'or set ${CHECKPOINTS_ENV} to a folder of checkpoints, or allow '
        'downloads from the Hugging Face hub (allow_download=True).')
  return _choose_release(HUB_R2, history, horizon, freq, allow_download)


def _choose_release(hub_id: str, history: int, horizon: int, freq: str,
                    allow_download: bool) -> Tuple[str, str]:
  """The release's `get_model` choice for a history (at least the
  release's shortest context: shorter ones are padded) and a horizon
  (longer than the release's: rolled)."""
  if not allow_download:
    raise errors.CheckpointError(
        f"checkpoint='auto:{hub_id}' downloads from the Hugging Face hub: "
        'pass allow_download=True (with HF_HUB_OFFLINE=1 it reads the local '
        'hub cache).')
  shortest = min(r[4] for r in zoo.RELEASES if r[2] == hub_id)
  selection = zoo.select_checkpoint(
      hub_id, max(history, shortest), horizon, freq=freq,
      force_return='rolling' if horizon > 720 else 'zeropad')
  return selection.hub_id, selection.revision


class Forecaster:
  """A loaded TTM with the engine's inference function."""

  def __init__(self, checkpoint: str, revision: str = '', model=None):
    from ttm_jax import sharding  # pylint: disable=g-import-not-at-top
    from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
    from ttm_jax.models import factory  # pylint: disable=g-import-not-at-top
    from ttm_jax.train import steps  # pylint: disable=g-import-not-at-top
    if model is None:
      config, module, variables = checkpoint_lib.load_pretrained(
          checkpoint, revision=revision or None)
      model = factory.Model(config, module, variables)
    self.model, self.config = model, model.config
    self.source = checkpoint
    # The static categoricals' codes in training (None: not saved).
    self.vocabulary = (categoricals.Vocabulary.load(checkpoint)
                       if os.path.isdir(checkpoint) else None)
    self.predict = steps.make_predict_fn(model, sharding.make_mesh())

  @property
  def context_length(self) -> int:
    return self.config.context_length

  @property
  def horizon(self) -> int:
    return self.config.output_length

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

  @property
  def uses_controls(self) -> bool:
    return bool(self.config.exogenous_channel_indices) or (
        self.config.needs_fixed_channels)

  def window(self, values: np.ndarray) -> np.ndarray:
    """The model's context [L, c] float64 from the end of `values` [t, c]:
    the last L rows, a shorter history padded in front with NaN (missing,
    so masked), however short."""
    length = self.context_length
    past = np.asarray(values[-length:], np.float64)
    if len(past) < length:
      pad = np.full((length - len(past), past.shape[1]), np.nan)
      past = np.concatenate([pad, past])
    return past

  def standardize(self, pasts: np.ndarray):
    """(inputs [n, L, c] float32 with NaN as 0, observed mask [n, L, c],
    loc [n, 1, c], scale [n, 1, c]) from contexts [n, L, c] float64.

    Each context is standardised per channel in float64 over its observed
    values (the std scaler's statistics; the mean scaler's scale only; none
    for a model without a scaler) before the cast to float32, so a series
    with a large offset or a tiny scale reaches the model as well
    conditioned as any other; `forecast * scale + loc` undoes it. Missing
    and padded steps are 0 there (the context's mean), masked. A
    constant channel gets scale 1, a channel with no observed value loc 0
    and scale 1."""
    observed = ~np.isnan(pasts)
    count = observed.sum(axis=1, keepdims=True)
    filled = np.where(observed, pasts, 0.0)
    loc = np.zeros(count.shape)
    scale = np.ones(count.shape)
    kind = self.config.scaler_type
    with np.errstate(invalid='ignore', divide='ignore'):
      if kind == 'std':
        loc = filled.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        spread = np.sqrt((np.where(observed, pasts - loc, 0.0)**2).sum(
            axis=1, keepdims=True) / np.maximum(count, 1))
        scale = np.where(spread > 0, spread, 1.0)
      elif kind == 'mean':
        size = np.abs(filled).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        scale = np.where(size > 0, size, 1.0)
    # Missing and padded steps are zero (masked) in standardised units, as
    # the reference's pipeline pads its scaled data: a raw zero would be
    # -loc/scale, a step of 1e9 for a series at 1e9.
    inputs = np.where(observed, (filled - loc) / scale, 0.0)
    return inputs.astype(np.float32), observed, loc, scale

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
          'bands from each history, ttm_jax.predict.conformal), or a model '
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

  def forecast_windows(self, pasts: np.ndarray, masks: np.ndarray,
                       freq: str, futures: Optional[np.ndarray] = None,
                       categoricals: Optional[np.ndarray] = None,
                       batch: int = 256, with_quantiles: bool = False):
    """One model horizon for each context: [n, L, c] -> [n, h, targets]
    (with `with_quantiles`, also the head's [n, h, targets, q])."""
    if with_quantiles:
      self.check_quantiles((), 0)
    out, quantiles = [], []
    token = (frequency.frequency_token(freq)
             if self.config.resolution_prefix_tuning else None)
    for first in range(0, len(pasts), batch):
      chunk = {'past_values': pasts[first:first + batch],
               'past_observed_mask': masks[first:first + batch].astype(
                   np.float32)}
      size = len(chunk['past_values'])
      if self.config.resolution_prefix_tuning:
        chunk['freq_token'] = np.full((size,), token, np.int32)
      if futures is not None:
        chunk['future_values'] = futures[first:first + batch]
      if categoricals is not None:
        chunk['static_categorical_values'] = categoricals[first:first + batch]
      result = self.predict(chunk)
      out.append(np.asarray(result.prediction_outputs, np.float64))
      if with_quantiles:
        quantiles.append(np.asarray(result.quantile_outputs, np.float64))
    if with_quantiles:
      return np.concatenate(out), np.concatenate(quantiles)
    return np.concatenate(out)
