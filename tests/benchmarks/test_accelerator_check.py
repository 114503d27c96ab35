"""benchmarks/accelerator_check.py in its quick mode, as CI runs it, so the
one-command proof of the accelerator path cannot rot: on this CPU its
parity against the stored reference outputs, its 1-against-N-devices check
and its pretraining through the real pipeline must hold."""

import json
import os

import numpy as np

from tests import conftest
from tests import entry_points

CHECKPOINT = 'fraware__ChronoAPI__root'  # IBM r2 512-96.


def test_quick_mode_checks_parity_devices_and_pretraining():
  path = conftest.require_checkpoint(CHECKPOINT)
  code, out, err = entry_points.run(
      ['benchmarks.accelerator_check', '--quick', '--checkpoint', path])
  assert code == 0, err[-3000:]
  result = json.loads(out.strip().splitlines()[-1])
  assert result['backend'] == 'cpu' and result['quick']
  assert len(result['devices']) == len(os.sched_getaffinity(0))
  # float32 is the reference's computation; bfloat16 visibly is not (its
  # products really are bfloat16), yet stays close.
  assert result['parity_max_rel_diff'] < 1e-5
  assert 1e-4 < result['parity_max_rel_diff_bfloat16'] < 5e-2
  if len(result['devices']) > 1:
    diffs = result['devices_max_rel_diff']
    assert max(diffs.values()) < 1e-5, diffs
  for precision in ('float32', 'bfloat16'):
    figures = result[precision]
    for kind in ('forward', 'train'):
      assert figures[f'{kind}_b64'] > 0
      assert figures[f'{kind}_best_batch'] == 64  # Quick: one size.
      # On the CPU the roofline is the measured matmul rate.
      assert figures[f'{kind}_b64'] < figures[f'{kind}_b64_roofline']
    assert set(figures['compile_s']) == {'forward_b64', 'train_b64'}
  pretrain = result['float32']['pretrain']
  assert pretrain['steps_per_s'] > 0 and np.isfinite(pretrain['loss'])
  assert result['pretrain_steps_per_s'] == pretrain['steps_per_s']
  assert isinstance(result['pipeline_keeps_up'], bool)


def test_a_different_checkpoint_is_refused(tmp_path):
  """Parity against the fixture is only meaningful for its own weights."""
  other = conftest.require_checkpoint('ErickParra__797_TTM_1__root')
  code, out, err = entry_points.run(
      ['benchmarks.accelerator_check', '--quick', '--checkpoint', other])
  assert code != 0
  assert 'not the ones the reference outputs were made with' in err + out
