"""The evaluator registry (ttm_jax/evaluators/common.py): an unknown type
is a ConfigError naming the evaluation; a misspelt field or a bad value
fails naming `config.evals.<name>.<field>`; defaults are filled per type;
the schedule fields (`every_steps` -1/0/N, `final`) and how the loop reads
them; `splits_read`; and a type added with `register` is built by
`from_config` with its own fields. No data is read and nothing compiles."""

import functools

import ml_collections
import pytest

from configs import demo
from ttm_jax import errors
from ttm_jax import evaluators
from ttm_jax import fields
from ttm_jax import schema
from ttm_jax import sharding
from ttm_jax.evaluators import common
from ttm_jax.evaluators import conformal
from ttm_jax.evaluators import windows
from ttm_jax.train import loop

PREDICTOR = common.Predictor('model', lambda variables, batch: None,
                             horizon=4)


@functools.cache
def _context():
  # Made on first use: the mesh starts the backend, after conftest's setup.
  return common.Context(data=None, mesh=sharding.make_mesh(), batch_size=8)


@pytest.fixture
def registry(monkeypatch):
  """A copy of the registry for a test to add to."""
  monkeypatch.setattr(common, 'TYPES', dict(common.TYPES))
  return common.TYPES


def _refused(name, spec):
  with pytest.raises(errors.ConfigError) as raised:
    common.resolve_spec(name, spec)
  return str(raised.value)


# ----------------------------------------------------------------- types
def test_the_shipped_types_are_registered():
  assert common.TYPES['windows'] is windows.WindowsEvaluator
  assert common.TYPES['conformal'] is conformal.ConformalEvaluator


def test_unknown_type_names_the_evaluation_and_the_known_types():
  message = _refused('holdout', {'type': 'window', 'split': 'test'})
  assert message.startswith("config.evals.holdout.type='window' is not a "
                            'registered evaluator')
  assert "'conformal'" in message and "'windows'" in message
  for call in (lambda evals: common.from_config(evals, PREDICTOR, _context()),
               common.splits_read):
    with pytest.raises(errors.ConfigError, match=r'config\.evals\.holdout'):
      call({'val': {'split': 'valid'}, 'holdout': {'type': 'window'}})


def test_a_spec_that_is_not_a_dict_is_refused():
  message = _refused('val', 'valid')
  assert message.startswith("config.evals.val='valid' must be a dict")


# ---------------------------------------------------------------- fields
@pytest.mark.parametrize('spec, starts, says', [
    ({'splt': 'valid'}, 'config.evals.val.splt is not a field',
     "Did you mean ['split']"),
    ({'split': 'train'}, "config.evals.val.split='train' ",
     "must be one of ['valid', 'test']"),
    ({'every_steps': -2}, 'config.evals.val.every_steps=-2 ', '>= -1'),
    ({'every_steps': 'often'}, "config.evals.val.every_steps='often' ",
     'must be an integer'),
    ({'final': 'yes'}, "config.evals.val.final='yes' ", 'true or false'),
    ({'metrics': ('mse', 'msee')}, 'config.evals.val.metrics=', "'msee'"),
    ({'compare': ('seasonal',)}, 'config.evals.val.compare=', "'seasonal'"),
    # A conformal field under a windows evaluation is not its field.
    ({'calibrate': 'valid'}, 'config.evals.val.calibrate is not a field',
     ''),
    ({'type': 'conformal', 'windows': 0}, 'config.evals.val.windows=0 ',
     '> 0'),
    ({'type': 'conformal', 'calibrate': 'train'},
     "config.evals.val.calibrate='train' ", 'must be one of'),
])
def test_bad_fields_fail_naming_the_field(spec, starts, says):
  message = _refused('val', spec)
  assert message.startswith(starts), message
  assert says in message


def test_a_bad_field_fails_through_the_engine_config_too():
  config = demo.get_config('quick=true')
  config.evals.val.split = 'validation'
  with pytest.raises(errors.ConfigError,
                     match=r"^config\.evals\.val\.split='validation' "):
    schema.resolve(config)


def test_defaults_are_filled_per_type():
  assert common.resolve_spec('t', {}) == dict(
      type='windows', every_steps=-1, final=False, metrics=(),
      split='test', compare=())
  assert common.resolve_spec('c', {'type': 'conformal', 'score': 'valid',
                                   'every_steps': 5}) == dict(
      type='conformal', every_steps=5, final=False, metrics=(),
      calibrate='valid', score='valid', windows=5000, compare=())


def test_a_config_dict_and_lists_are_accepted():
  spec = ml_collections.ConfigDict(dict(split='valid', metrics=['mse'],
                                        final=True))
  resolved = common.resolve_spec('val', spec)
  assert resolved['metrics'] == ('mse',) and resolved['final'] is True


# ------------------------------------------------------------- schedules
def test_schedules_as_the_loop_reads_them():
  plan = loop.Plan(steps_per_epoch=7, total_steps=70, eval_every=7,
                   log_every=1, checkpoint_every=7)
  built = common.from_config({
      'never': dict(every_steps=-1, final=True),
      'cadence': dict(every_steps=0, split='valid'),
      'every_5': dict(every_steps=5, split='valid', final=True),
  }, PREDICTOR, _context())
  schedule = {name: (e.every_steps, e.final) for name, e in built.items()}
  assert schedule == {'never': (-1, True), 'cadence': (0, False),
                      'every_5': (5, True)}
  # -1: never during training; 0: the validation cadence; N: every N.
  during = {name: plan.cadence(e.every_steps) for name, e in built.items()
            if e.every_steps >= 0}
  assert during == {'cadence': 7, 'every_5': 5}


def test_selection_must_name_an_evaluation_that_runs_in_training():
  config = demo.get_config('quick=true')
  config.evals = {'val': dict(split='valid', every_steps=-1),
                  'test': dict(split='test', final=True)}
  with pytest.raises(errors.ConfigError,
                     match=r"^config\.selection\.eval='val' .*\[\]"):
    schema.resolve(config)
  config.evals.val.every_steps = 0
  assert schema.resolve(config).evals.val.every_steps == 0


# ----------------------------------------------------------------- splits
def test_splits_read_in_first_use_order_without_repeats():
  assert common.splits_read({}) == ()
  assert common.splits_read({'t': {}}) == ('test',)  # windows' default.
  assert common.splits_read({
      'test': dict(split='test'),
      'val': dict(split='valid'),
      'again': dict(split='test'),
  }) == ('test', 'valid')
  # Conformal reads its calibration split, then its scored one.
  assert common.splits_read({
      'conf': dict(type='conformal', calibrate='test', score='valid'),
  }) == ('test', 'valid')
  assert common.splits_read({
      'conf': dict(type='conformal', calibrate='test', score='test'),
  }) == ('test',)


# --------------------------------------------------------------- register
def test_register_adds_a_type_that_from_config_builds(registry):

  @common.register('echo')
  class Echo(common.Evaluator):
    FIELDS = {'value': fields.Field(1.0, 'What run returns.',
                                    lambda v: None if v >= 0 else
                                    'must be >= 0'),
              'reads': fields.Field('valid', 'The split it reads.')}

    @classmethod
    def splits_of(cls, spec):
      return (spec['reads'],)

    def run(self, variables, progress=''):
      return {'value': self.spec['value'], 'variables': variables}

  assert registry['echo'] is Echo
  built = evaluators.from_config(
      {'e': dict(type='echo', value=2.5, every_steps=3),
       'w': dict(split='valid')}, PREDICTOR, _context())
  echo = built['e']
  assert type(echo) is Echo and echo.name == 'e'
  assert echo.predictor is PREDICTOR and echo.context is _context()
  assert echo.spec == dict(type='echo', every_steps=3, final=False,
                           metrics=(), value=2.5, reads='valid')
  assert echo.run('v') == {'value': 2.5, 'variables': 'v'}
  assert type(built['w']) is windows.WindowsEvaluator
  assert common.splits_read({'e': dict(type='echo', reads='train')}) == (
      'train',)
  # Its own fields are checked like the shipped types'.
  assert _refused('e', dict(type='echo', value=-1.0)).startswith(
      'config.evals.e.value=-1.0 must be >= 0')
  assert _refused('e', dict(type='echo', split='valid')).startswith(
      'config.evals.e.split is not a field')


def test_the_base_evaluator_reads_no_split_and_must_be_implemented():
  assert common.Evaluator.splits_of({}) == ()
  base = common.Evaluator('x', common.resolve_spec('x', {}), PREDICTOR,
                          _context())
  assert (base.every_steps, base.final) == (-1, False)
  with pytest.raises(NotImplementedError):
    base.run({})
