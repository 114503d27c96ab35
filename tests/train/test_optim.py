"""Optimiser: torch OneCycleLR/AdamW equivalence, freezing, LR finder rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tests import conftest
from ttm_jax import optim

torch = conftest.require_module('torch')


def test_one_cycle_matches_torch_lr_and_beta1():
  total, max_lr = 50, 3e-3
  param = torch.nn.Parameter(torch.zeros(2))
  opt = torch.optim.AdamW([param], lr=max_lr)
  sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr,
                                              total_steps=total)
  lr_fn = optim.one_cycle(total, max_lr)
  b1_fn = optim.one_cycle_momentum(total)
  for step in range(total):
    group = opt.param_groups[0]
    np.testing.assert_allclose(float(lr_fn(step)), group['lr'], rtol=1e-5)
    np.testing.assert_allclose(float(b1_fn(step)), group['betas'][0],
                               rtol=1e-5)
    opt.step()
    sched.step()


def test_adamw_steps_match_torch():
  """Same gradients -> same parameters as torch AdamW + OneCycleLR."""
  total = 12
  rng = np.random.RandomState(0)
  init = rng.randn(5).astype(np.float32)
  grads = [rng.randn(5).astype(np.float32) for _ in range(total)]
  param = torch.nn.Parameter(torch.tensor(init))
  opt = torch.optim.AdamW([param], lr=1e-2, weight_decay=0.01)
  sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2,
                                              total_steps=total)
  tx = optim.make_optimizer(total, 1e-2)
  params = {'w': jnp.asarray(init)}
  state = tx.init(params)
  for g in grads:
    param.grad = torch.tensor(g)
    opt.step()
    sched.step()
    updates, state = tx.update({'w': jnp.asarray(g)}, state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(np.asarray(params['w']), param.detach().numpy(),
                             rtol=1e-5, atol=1e-6)


def test_frozen_paths_get_no_update_and_no_decay():
  params = {'backbone': {'w': jnp.ones(3)}, 'head': {'w': jnp.ones(3)}}
  tx = optim.make_optimizer(10, 1e-1, frozen=('backbone/.*',),
                            params=params)
  state = tx.init(params)
  grads = jax.tree_util.tree_map(jnp.ones_like, params)
  updates, _ = tx.update(grads, state, params)
  new = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(new['backbone']['w'], params['backbone']['w'])
  assert not np.allclose(new['head']['w'], params['head']['w'])
  assert optim.current_learning_rate(state) is not None


def test_valley_matches_reference():
  lr_finder = conftest.require_module('tsfm_public.toolkit.lr_finder')
  rng = np.random.RandomState(3)
  rates = [optim.lr_finder_rates()(k) for k in range(101)]
  for _ in range(5):
    losses = optim.smoothed(list(np.exp(-np.linspace(0, 3, 101))
                                 + rng.rand(101) * 0.3))
    assert optim.valley(rates, losses) == lr_finder.valley(rates, losses)
