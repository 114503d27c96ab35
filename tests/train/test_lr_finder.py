"""The learning-rate finder against granite-tsfm's `LRFinder` fed the same
losses: the rates of the sweep, the smoothed losses, where it stops, and the
suggested rate.

The reference is driven through its own `fit` / `after_batch_train` /
`after_fit` with each batch's loss given instead of computed, so its
scheduler, smoothing, stopping rule and valley run unchanged. Ours:
`optim.lr_finder_rates` and `optim.smoothed` are pure; the stopping rule
has no pure entry point (it is inline in `find_learning_rate`), so
`find_learning_rate` runs with its train step replaced by one that returns
the given losses."""

import itertools
import warnings

import jax
import ml_collections
import numpy as np
import pytest

from tests import conftest
from ttm_jax import optim
from ttm_jax import sharding
from ttm_jax.models import config as config_lib
from ttm_jax.models import factory
from ttm_jax.train import lr_finder

torch = conftest.require_module('torch')
reference = conftest.require_module('tsfm_public.toolkit.lr_finder')

SMALL = dict(context_length=32, prediction_length=8, patch_length=8,
             patch_stride=8, d_model=16, decoder_d_model=8, num_layers=1,
             decoder_num_layers=1)


def _losses(kind, count, seed=0):
  """Losses of an LR sweep: falling, then flat, then (some) exploding."""
  rng = np.random.default_rng(seed)
  t = np.linspace(0, 1, count)
  base = 1.0 + 0.5 * np.cos(np.pi * t)
  noisy = base * (1 + 0.05 * rng.normal(size=count))
  if kind == 'falls':  # Never 4x the best: runs every step.
    return list(noisy)
  if kind == 'explodes':  # Stopped at 4x the best smoothed loss.
    return list(noisy * np.where(t > 0.6, np.exp(40 * (t - 0.6)), 1.0))
  if kind == 'nan':  # The loss turns NaN (an overflow) partway.
    out = list(noisy)
    out[count // 2:] = [float('nan')] * (count - count // 2)
    return out
  if kind == 'inf':
    out = list(noisy)
    out[count // 3] = float('inf')
    return out
  raise ValueError(kind)


def _run_reference(losses, start_lr, end_lr, num_iter, beta):
  """(rates, smoothed losses, suggestion) of the reference's LRFinder."""
  net = torch.nn.Linear(1, 1)
  finder = reference.LRFinder(net, torch.optim.AdamW(net.parameters()),
                              'cpu', start_lr, end_lr, num_iter, 'exp',
                              beta=beta)
  finder.before_fit()
  first_rate = finder.opt.param_groups[0]['lr']

  def train_batch(loss):  # The loss of this batch, as computed.
    finder.loss = torch.tensor(loss, dtype=torch.float64)

  finder.train_batch = train_batch
  with warnings.catch_warnings():  # scheduler.step() before optimizer.step().
    warnings.simplefilter('ignore')
    finder.fit(1, losses)
    finder.after_fit()
  return first_rate, finder.lrs, finder.losses, finder.suggested_lr


def _run_ours(losses, start_lr, end_lr, num_iter, beta, monkeypatch):
  config = ml_collections.ConfigDict(dict(
      seed=0, frozen=(), optim=dict(weight_decay=0.01, lr_finder=dict(
          start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, beta=beta))))
  model = factory.new_model(config_lib.TTMConfig(**SMALL), jax.random.key(0))
  mesh = sharding.make_mesh(jax.devices()[:1])
  given = iter(losses)
  steps_taken = []

  def make_train_step(*unused_args, **unused_kwargs):
    def step(state, batch):
      steps_taken.append(batch)
      return state, {'train/loss': next(given)}
    return step

  monkeypatch.setattr(lr_finder.steps, 'make_train_step', make_train_step)
  batch = {'past_values': np.zeros((1, 32, 1), np.float32)}
  # An endless stream, as the engine's finder_batches (grain, no epoch
  # limit): find_learning_rate takes next() of one iterator per step.
  suggestion = lr_finder.find_learning_rate(config, model,
                                            itertools.repeat(batch), mesh)
  return suggestion, len(steps_taken)


def _close(ours, theirs):
  np.testing.assert_allclose(np.asarray(ours, np.float64),
                             np.asarray(theirs, np.float64), rtol=1e-6,
                             atol=0)


@pytest.mark.parametrize('kind', ['falls', 'explodes', 'nan', 'inf'])
@pytest.mark.parametrize('start_lr, end_lr, num_iter, beta', [
    (1e-7, 10.0, 100, 0.98), (1e-5, 1.0, 30, 0.9)])
def test_same_losses_same_rates_smoothing_stop_and_suggestion(
    kind, start_lr, end_lr, num_iter, beta, monkeypatch):
  losses = _losses(kind, num_iter + 1, seed=num_iter)
  first, ref_rates, ref_smoothed, ref_lr = _run_reference(
      losses, start_lr, end_lr, num_iter, beta)
  used = len(ref_rates)  # Steps the reference took before it stopped.
  if kind == 'explodes':
    assert used < num_iter + 1  # The case does reach the stopping rule.

  rates = optim.lr_finder_rates(start_lr, end_lr, num_iter)
  # Step k runs at rates(k); the rate recorded with step k's loss is the
  # scheduler's next one, rates(k + 1), as the reference records it.
  _close(rates(0), first)
  _close([rates(k + 1) for k in range(used)], ref_rates)
  _close(optim.smoothed(losses[:used], beta), ref_smoothed)
  _close(optim.valley([rates(k + 1) for k in range(used)],
                      optim.smoothed(losses[:used], beta)), ref_lr)

  suggestion, steps_taken = _run_ours(losses, start_lr, end_lr, num_iter,
                                      beta, monkeypatch)
  _close(suggestion, ref_lr)
  if kind == 'nan':
    # Ours stops at the first NaN; the reference runs on through them (NaN
    # is never 4x the best) to the last step. The suggestion is the same:
    # a NaN is in no decreasing run.
    assert steps_taken == np.flatnonzero(np.isnan(losses))[0] + 1
    assert used == num_iter + 1
  else:
    assert steps_taken == used


def test_default_sweep_matches_the_reference_scheduler():
  """optim.lr_finder_rates' defaults are optimal_lr_finder's (1e-7 to 10
  over 100 steps): the torch ExponentialLR's rate at each step."""
  net = torch.nn.Linear(1, 1)
  opt = torch.optim.AdamW(net.parameters(), lr=1e-7)
  scheduler = reference.ExponentialLR(opt, 10.0, 100)
  rates = optim.lr_finder_rates()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    for k in range(101):
      _close(rates(k), opt.param_groups[0]['lr'])
      opt.step()
      scheduler.step()
