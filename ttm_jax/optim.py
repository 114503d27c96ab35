"""Optimisation as the reference does it (TTM_SPEC.md 4.2, 4.3).

torch `AdamW` (betas 0.9/0.999, eps 1e-8, weight decay 0.01) with torch's
`OneCycleLR` (cosine, pct_start 0.3, div_factor 25, final_div_factor 1e4,
Adam's beta1 cycling 0.95 -> 0.85 -> 0.95), optional global-norm clipping,
and freezing by regexes over parameter paths (no update, no decay).
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import optax

from ttm_jax import errors


def _cosine(start, end, pct):
  return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


def _two_phase_cosine(total_steps: int, pct_start: float, start: float,
                      middle: float, end: float):
  """OneCycleLR's shape: cosine from `start` to `middle` over the first
  pct_start of the steps, then cosine from `middle` to `end`."""
  phase_end = float(pct_start * total_steps) - 1
  last = float(total_steps - 1)

  def schedule(count):
    step = jnp.asarray(count, jnp.float32)
    first = _cosine(start, middle, step / phase_end)
    second = _cosine(middle, end, (step - phase_end) / (last - phase_end))
    return jnp.where(step <= phase_end, first, second)

  return schedule


def one_cycle(total_steps: int, max_value: float, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4
              ) -> Callable[[Any], Any]:
  """torch.optim.lr_scheduler.OneCycleLR's learning rate at step `count`."""
  initial = max_value / div_factor
  return _two_phase_cosine(total_steps, pct_start, initial, max_value,
                           initial / final_div_factor)


def one_cycle_momentum(total_steps: int, pct_start: float = 0.3,
                       base: float = 0.85, maximum: float = 0.95):
  """OneCycleLR's cycled beta1: max -> base while the LR rises, back after."""
  return _two_phase_cosine(total_steps, pct_start, maximum, base, maximum)


def path_labels(params, frozen: Sequence[str]):
  """'frozen' for parameters whose '/'-joined path matches a regex.

  Raises:
    errors.ConfigError: for a regex that matches no parameter (it would
      silently train what it was meant to freeze).
  """
  patterns = [re.compile(p) for p in frozen]
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  paths = ['/'.join(path) for path in flat]
  for pattern in patterns:
    if not any(pattern.fullmatch(path) for path in paths):
      raise errors.ConfigError(
          f'config.frozen: {pattern.pattern!r} matches no parameter of this '
          f'model (its paths look like {paths[0]!r}); e.g. '
          "'(.*/)?backbone/.*' freezes the backbone(s).")
  labels = {
      path: ('frozen' if any(p.fullmatch('/'.join(path)) for p in patterns)
             else 'train') for path in flat}
  return flax.traverse_util.unflatten_dict(labels)


class Optimizer(NamedTuple):
  """An optax transformation that knows which parameters it freezes.

  `init` and `update` are the transformation's (so it is used as any
  `optax.GradientTransformation`); `labels` is the 'train'/'frozen' tree of
  the frozen regexes (None when nothing is frozen), which the train step
  reads to make frozen parameters constants to autodiff: the frozen set is
  given once, here.
  """
  init: Callable
  update: Callable
  labels: Optional[Any] = None

  def stop_frozen_gradients(self, params):
    """`params` with the frozen leaves behind `stop_gradient`."""
    if self.labels is None:
      return params
    return jax.tree.map(
        lambda p, label: jax.lax.stop_gradient(p) if label == 'frozen' else p,
        params, self.labels)


def make_optimizer(total_steps: int, learning_rate, *,
                   weight_decay: float = 0.01, schedule: str = 'onecycle',
                   pct_start: float = 0.3, div_factor: float = 25.0,
                   final_div_factor: float = 1e4, cycle_momentum: bool = True,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   clip_norm: float = 0.0, frozen: Sequence[str] = (),
                   params: Optional[Any] = None) -> Optimizer:
  """AdamW with the reference's schedule; frozen paths get no update.

  `learning_rate` is the peak rate ('onecycle') or a rate or schedule
  ('constant', e.g. the LR finder's sweep).
  """
  if schedule == 'onecycle':
    lr = one_cycle(total_steps, learning_rate, pct_start, div_factor,
                   final_div_factor)
    beta1 = (one_cycle_momentum(total_steps, pct_start) if cycle_momentum
             else b1)
  elif schedule == 'constant':
    lr, beta1 = learning_rate, b1
  else:
    raise ValueError(f"schedule must be 'onecycle' or 'constant', got "
                     f'{schedule!r}.')
  tx = optax.inject_hyperparams(optax.adamw)(
      learning_rate=lr, b1=beta1, b2=b2, eps=eps, weight_decay=weight_decay)
  if clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
  labels = None
  if frozen:
    if params is None:
      raise ValueError('freezing needs the parameters to label')
    labels = path_labels(params, frozen)
    tx = optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()},
                               labels)
  return Optimizer(tx.init, tx.update, labels)


def current_learning_rate(opt_state) -> Optional[jnp.ndarray]:
  """The injected learning rate inside (possibly wrapped) optimizer state
  (the `hyperparams` value, not the schedule's own state of that name)."""
  return optax.tree_utils.tree_get(
      opt_state, 'learning_rate',
      filtering=lambda path, value: isinstance(value, jax.Array))


def valley(learning_rates: Sequence[float], losses: Sequence[float]) -> float:
  """The reference LR finder's suggestion: a rate partway into the longest
  decreasing run of the smoothed loss."""
  n = len(losses)
  max_start, max_end = 0, 0
  lds = [1] * n
  for i in range(1, n):
    for j in range(0, i):
      if losses[i] < losses[j] and lds[i] < lds[j] + 1:
        lds[i] = lds[j] + 1
      if lds[max_end] < lds[i]:
        max_end = i
        max_start = max_end - lds[max_end]
  sections = (max_end - max_start) / 3
  index = max_start + int(sections) + int(sections / 2)
  return float(learning_rates[index])


def lr_finder_rates(start: float = 1e-7, end: float = 10.0,
                    num_iter: int = 100) -> Callable[[int], float]:
  """The reference's exponential sweep: the rate of (0-based) step k."""
  def rate(k):
    return start * (end / start)**((k + 1) / (num_iter - 1))
  return rate


def smoothed(losses: Sequence[float], beta: float = 0.98):
  """EMA-smoothed, bias-corrected losses (as the reference's finder)."""
  average, out = 0.0, []
  for i, loss in enumerate(losses, 1):
    average = beta * average + (1 - beta) * loss
    out.append(average / (1 - beta**i))
  return out


__all__ = ['Optimizer', 'make_optimizer', 'current_learning_rate', 'one_cycle', 'one_cycle_momentum', 'valley',
           'lr_finder_rates', 'smoothed', 'path_labels']
