"""The profiler option (config.profile): bad step windows are refused at
config time naming the field; a traced quick run leaves an XPlane trace of
the train step under <workdir>/profile/ holding exactly the chosen steps,
and a run without the option leaves no trace anywhere in its workdir."""

import glob
import gzip
import json
import os

import pytest

from configs import demo
from ttm_jax import errors
from ttm_jax import schema
from ttm_jax import train


def _config(**profile):
  config = demo.get_config('quick=true')
  config.profile.update(profile)
  return config


@pytest.mark.parametrize('steps, says', [
    ((3, 3), 'stop > start'),
    ((5, 2), 'stop > start'),
    ((0, 2), 'step 1 or later'),
    ((-2, 4), 'step 1 or later'),
    ((2,), 'two integers'),
    ((1, 2, 3), 'two integers'),
    ((1.5, 3), 'two integers'),
])
def test_bad_steps_are_refused_naming_the_field(steps, says):
  with pytest.raises(errors.ConfigError) as raised:
    schema.resolve(_config(steps=steps))
  message = str(raised.value)
  assert message.startswith(f'config.profile.steps={steps!r} ')
  assert says in message


def test_good_steps_resolve_and_default_is_off():
  assert schema.resolve(_config()).profile.steps == ()
  resolved = schema.resolve(_config(steps=[2, 5], perfetto=True))
  assert resolved.profile.steps == (2, 5)  # A list becomes a tuple.
  assert resolved.profile.perfetto is True


def test_settings_that_would_trace_nothing_are_refused():
  with pytest.raises(errors.ConfigError, match=r'^config\.profile\.perfetto'):
    schema.resolve(_config(perfetto=True))
  config = _config(steps=(1, 2))
  config.task = 'zero_shot'
  config.baseline = 'seasonal_naive'
  config.model.preset = ''
  config.model.arch = {}
  with pytest.raises(errors.ConfigError,
                     match=r"^config\.profile\.steps=\(1, 2\) .*zero_shot"):
    schema.resolve(config)


def _run(workdir, num_steps, **profile):
  config = _config(**profile)
  config.num_steps = num_steps
  config.export = config.plot = config.tensorboard = False
  config.evals.test.final = False
  train.train_and_evaluate(config, str(workdir), argv=[])


def _traces(workdir):
  return glob.glob(os.path.join(workdir, '**', '*.xplane.pb'),
                   recursive=True)


def test_traced_run_leaves_a_trace_and_an_untraced_one_none(tmp_path):
  traced = tmp_path / 'traced'
  _run(traced, 3, steps=(2, 3))
  found = _traces(traced)
  assert len(found) == 1, found
  assert found[0].startswith(str(traced / 'profile' / 'plugins' / 'profile'))
  with open(found[0], 'rb') as f:
    # The train step (steps.make_train_step's `step`) ran inside the trace.
    assert b'jit_step' in f.read()
  # The trace JSON written beside it: the loop's step markers show that
  # step 2 was traced, and neither step 1 nor step 3.
  (events,) = glob.glob(os.path.join(os.path.dirname(found[0]),
                                     '*.trace.json.gz'))
  with gzip.open(events) as f:
    marked = [e['args']['step_num'] for e in json.load(f)['traceEvents']
              if e.get('name') == 'train' and 'step_num' in e.get('args', {})]
  assert marked == ['2']
  assert not glob.glob(str(traced / '**' / 'perfetto_trace.json.gz'),
                       recursive=True)  # Only when asked for.

  plain = tmp_path / 'plain'
  _run(plain, 1)
  assert (plain / 'results.json').exists()
  assert not _traces(plain)
  assert not (plain / 'profile').exists()
