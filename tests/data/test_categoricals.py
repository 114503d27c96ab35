"""Static categorical vocabularies travel with the model: a model trained
with a categorical forecasts one series, a subset or all of them with the
training codes, refuses a value it never saw, and stores the codes the
reference's preprocessor would assign."""

import json
import re

import jax
import numpy as np
import pandas as pd
import pytest

import ttm_jax
from tests import conftest
from ttm_jax import errors
from ttm_jax import recipes
from ttm_jax import train
from ttm_jax.data import categoricals
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib

# Series s0, s1, s2 of kinds z, x, y: sorted, the kinds are codes 2, 0, 1,
# so any one series alone (or two) sorts differently from the three.
KINDS = {'s0': 'z', 's1': 'x', 's2': 'y'}
ARCH = dict(context_length=64, prediction_length=16, patch_length=8,
            patch_stride=8, d_model=32, decoder_d_model=16, num_layers=1,
            decoder_num_layers=1, adaptive_patching_levels=1,
            num_input_channels=1, decoder_mode='mix_channel',
            categorical_vocab_size_list=(3,))


def _long_frame(rows=240):
  rng = np.random.default_rng(0)
  t = np.arange(rows)
  time = pd.date_range('2024-01-01', periods=rows, freq='h')
  return pd.concat([pd.DataFrame({
      'id': name, 'kind': kind, 'time': time,
      'y': np.sin(2 * np.pi * t / 24 + k) + 0.2 * rng.normal(size=rows)})
                    for k, (name, kind) in enumerate(KINDS.items())],
                   ignore_index=True)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A mix-channel model with one categorical of three values, trained a
  few steps by the engine on the three series: its export folder."""
  root = tmp_path_factory.mktemp('categoricals')
  ttm_config = config_lib.TTMConfig(**ARCH)
  checkpoint.save_pretrained(str(root / 'init'), ttm_config,
                             checkpoint.init_variables(ttm_config,
                                                       jax.random.key(3)))
  _long_frame().to_csv(root / 'data.csv', index=False)
  cfg = recipes.few_shot(str(root / 'init'), data='mine', fraction=1.0,
                         context=64, horizon=16, quick=True)
  cfg.frozen = ()  # The embeddings (in the decoder) train too.
  cfg.data.update(kind='csv', path=str(root / 'data.csv'),
                  timestamp_column='time', id_columns=['id'],
                  static_categorical_columns=['kind'], batch_size=8)
  cfg.plot = cfg.tensorboard = False
  train.train_and_evaluate(cfg, str(root / 'run'))
  return root / 'run'


def _forecast(export, df):
  return ttm_jax.forecast(df, timestamp_column='time', horizon=16,
                          checkpoint=str(export), id_columns=['id'],
                          static_categorical_columns=['kind'])


def test_one_series_alone_forecasts_as_with_the_others(trained):
  export = trained / 'export'
  df = _long_frame()
  together = _forecast(export, df)
  _, model, variables = ttm_jax.load_pretrained(str(export))
  for name, code in (('s0', 2), ('s1', 0), ('s2', 1)):
    alone = _forecast(export, df[df.id == name])
    ours = together[together.id == name]['y'].to_numpy()
    np.testing.assert_allclose(alone['y'].to_numpy(), ours, atol=1e-6,
                               err_msg=name)
    # And the code is the training one: the model applied by hand.
    past = df[df.id == name]['y'].to_numpy()[-64:]
    out = model.apply(variables, past.astype(np.float32)[None, :, None],
                      static_categorical_values=np.array([[code]]))
    np.testing.assert_allclose(ours, np.asarray(
        out.prediction_outputs)[0, :, 0], atol=1e-5, err_msg=name)
  pair = _forecast(export, df[df.id.isin(['s0', 's2'])])
  np.testing.assert_allclose(pair[pair.id == 's2']['y'].to_numpy(),
                             together[together.id == 's2']['y'].to_numpy(),
                             atol=1e-6)


def test_the_vocabulary_is_saved_with_the_export_and_the_run(trained,
                                                            tmp_path):
  expected = {'static_categorical_columns': ['kind'],
              'categories': [['x', 'y', 'z']]}
  for folder in (trained, trained / 'export'):
    with open(folder / categoricals.FILE_NAME) as f:
      assert json.load(f) == expected
  # experiments.export of any step carries it too.
  from ttm_jax.train import snapshots  # pylint: disable=g-import-not-at-top
  snapshots.export_run(str(trained), 'latest', str(tmp_path / 'latest'))
  with open(tmp_path / 'latest' / categoricals.FILE_NAME) as f:
    assert json.load(f) == expected


def test_a_new_series_of_a_known_kind_and_an_unknown_kind(trained):
  export = trained / 'export'
  df = _long_frame()
  one = df[df.id == 's1'].copy()
  new = one.assign(id='s9')  # Another series, of kind x (code 0).
  np.testing.assert_allclose(_forecast(export, new)['y'].to_numpy(),
                             _forecast(export, one)['y'].to_numpy(),
                             atol=1e-6)
  with pytest.raises(errors.DataError, match=r"'kind' has the value 'w'"):
    _forecast(export, one.assign(kind='w'))


def test_finetuning_keeps_the_models_codes(trained, tmp_path):
  """Training from a checkpoint with a vocabulary encodes through it, even
  on data of one kind (which alone would be code 0)."""
  only = _long_frame()
  only = only[only.id == 's0']
  only.to_csv(tmp_path / 'one.csv', index=False)
  cfg = recipes.few_shot(str(trained / 'export'), data='one', fraction=1.0,
                         context=64, horizon=16, quick=True)
  cfg.data.update(kind='csv', path=str(tmp_path / 'one.csv'),
                  timestamp_column='time', id_columns=['id'],
                  static_categorical_columns=['kind'], batch_size=8)
  cfg.evals = dict(val=dict(type='windows', split='valid', every_steps=0))
  cfg.num_steps, cfg.plot, cfg.tensorboard = 1, False, False
  from ttm_jax.data import builders  # pylint: disable=g-import-not-at-top
  from ttm_jax import schema  # pylint: disable=g-import-not-at-top
  data = builders.build_data(schema.resolve(cfg))
  assert data.categorical_vocab.categories == (('x', 'y', 'z'),)
  assert data.train[0]['static_categorical_values'].tolist() == [2]


@pytest.mark.parametrize('values', [['b', 'c', 'a', 'b'], [10, 2, 7, 2]])
def test_codes_are_the_reference_preprocessors(values):
  """The stored order is the reference's OrdinalEncoder's (numbers by
  value, so 10 after 7), and so are the codes."""
  conftest.require_module('tsfm_public')
  from tsfm_public.toolkit import time_series_preprocessor as tsp  # pylint: disable=g-import-not-at-top
  df = pd.DataFrame({
      'id': np.repeat(np.arange(len(values)), 5),
      'kind': np.repeat(values, 5),
      'time': np.tile(pd.date_range('2024-01-01', periods=5, freq='h'),
                      len(values)),
      'y': np.arange(5 * len(values), dtype=float)})
  processor = tsp.TimeSeriesPreprocessor(
      timestamp_column='time', id_columns=['id'], target_columns=['y'],
      static_categorical_columns=['kind'], scaling=False,
      context_length=2, prediction_length=1)
  processor.train(df)
  reference = processor.categorical_encoder
  ours = categoricals.Vocabulary.fit(['kind'], [[v] for v in values])
  assert list(ours.categories[0]) == list(reference.categories_[0])
  assert processor.categorical_vocab_size_list == list(ours.sizes)
  expected = reference.transform(pd.DataFrame({'kind': values}))
  np.testing.assert_array_equal(
      ours.encode(['kind'], [[v] for v in values])[:, 0], expected[:, 0])


def test_the_model_must_embed_every_value():
  vocabulary = categoricals.Vocabulary(('kind', 'size'),
                                       (('a', 'b', 'c'), (1, 2)))
  vocabulary.check_model((3, 2))
  vocabulary.check_model((5, 4))
  with pytest.raises(errors.ConfigError, match=r"'kind' has 3 values"):
    vocabulary.check_model((2, 2))
  with pytest.raises(errors.ConfigError, match='2 static categorical'):
    vocabulary.check_model((3,))
  with pytest.raises(errors.ConfigError, match='no categorical embeddings'):
    vocabulary.check_model(None)


def test_a_model_without_a_vocabulary_codes_only_every_value(caplog):
  """Without a vocabulary: sorted codes (with a warning) only for series
  holding as many values as the model embeds; a subset is refused."""
  with caplog.at_level('WARNING'):
    vocabulary = categoricals.for_forecast(
        None, None, ['kind'], [['z'], ['x'], ['y']], (3,), 'm')
  assert vocabulary.encode(['kind'], [['z'], ['x']])[:, 0].tolist() == [2, 0]
  assert categoricals.FILE_NAME in caplog.text
  with pytest.raises(errors.ConfigError, match=r"The model m has no "
                     r"categorical_vocab.json, and the series given hold 2 "
                     r"of the 3 values of 'kind' it embeds"):
    categoricals.for_forecast(None, None, ['kind'], [['z'], ['x']], (3,),
                              'm')
  with pytest.raises(errors.ConfigError, match='Pass categorical_vocab='):
    categoricals.codes(None, ['kind'], [['z'], ['x']])


def _without_vocabulary(trained, tmp_path):
  """The export as a model saved before vocabularies were."""
  import shutil  # pylint: disable=g-import-not-at-top
  folder = tmp_path / 'old_export'
  shutil.copytree(trained / 'export', folder)
  (folder / categoricals.FILE_NAME).unlink()
  return folder


def test_a_subset_without_a_vocabulary_is_refused_or_given_one(trained,
                                                             tmp_path):
  old = _without_vocabulary(trained, tmp_path)
  df = _long_frame()
  together = _forecast(trained / 'export', df)
  # Every training series: the sorted codes are the training codes.
  np.testing.assert_allclose(_forecast(old, df)['y'].to_numpy(),
                             together['y'].to_numpy(), atol=1e-6)
  one = df[df.id == 's0']
  words = (f'The model {old} has no categorical_vocab.json, and the series '
           "given hold 1 of the 3 values of 'kind' it embeds")
  with pytest.raises(errors.ConfigError, match=re.escape(words)):
    _forecast(old, one)
  with pytest.raises(errors.ConfigError, match=re.escape(words)):
    ttm_jax.backtest(one, timestamp_column='time', horizon=16,
                     checkpoint=str(old), id_columns=['id'],
                     static_categorical_columns=['kind'], windows=1,
                     quantiles=())
  # Given the training run's file (or its folder, or a dict): the codes of
  # training, as with the vocabulary saved.
  expected = together[together.id == 's0']['y'].to_numpy()
  vocab = trained / categoricals.FILE_NAME
  for given in (str(vocab), str(trained), json.loads(vocab.read_text())):
    out = ttm_jax.forecast(one, timestamp_column='time', horizon=16,
                           checkpoint=str(old), id_columns=['id'],
                           static_categorical_columns=['kind'],
                           categorical_vocab=given)
    np.testing.assert_allclose(out['y'].to_numpy(), expected, atol=1e-6)


@pytest.mark.parametrize('value, words', [
    ('/no/such/vocab.json', "categorical_vocab='/no/such/vocab.json': no "
     'such file'),
    ({'categories': [['a']]}, "categorical_vocab={'categories': [['a']]}: "
     "the dict is not a categorical vocabulary (KeyError: "
     "'static_categorical_columns')"),
    (3, 'categorical_vocab=3: must be a path to a categorical_vocab.json'),
    ({'static_categorical_columns': ['kind'],
      'categories': [['w', 'x', 'y', 'z']]},
     "Static categorical column 'kind' has 4 values ['w', 'x', 'y', 'z'] "
     'but the model embeds 3'),
])
def test_a_bad_categorical_vocab_is_named(trained, tmp_path, value, words):
  old = _without_vocabulary(trained, tmp_path)
  with pytest.raises(errors.ConfigError) as raised:
    ttm_jax.forecast(_long_frame(), timestamp_column='time', horizon=16,
                     checkpoint=str(old), id_columns=['id'],
                     static_categorical_columns=['kind'],
                     categorical_vocab=value)
  assert words in str(raised.value)


def test_a_categorical_vocab_that_is_ignored_or_contradicts_is_refused(
    trained):
  export = trained / 'export'
  other = {'static_categorical_columns': ['kind'],
           'categories': [['z', 'y', 'x']]}
  with pytest.raises(errors.ConfigError, match='categorical_vocab differs '
                     'from the categorical_vocab.json saved with the model'):
    ttm_jax.forecast(_long_frame(), timestamp_column='time', horizon=16,
                     checkpoint=str(export), id_columns=['id'],
                     static_categorical_columns=['kind'],
                     categorical_vocab=other)
  with pytest.raises(errors.ConfigError, match='categorical_vocab is given '
                     'but there are no static_categorical_columns'):
    ttm_jax.forecast(_long_frame(), timestamp_column='time', horizon=16,
                     checkpoint=str(export), id_columns=['id'],
                     target_columns=['y'],
                     categorical_vocab=trained / categoricals.FILE_NAME)


def test_a_damaged_vocabulary_file_is_named(tmp_path):
  (tmp_path / categoricals.FILE_NAME).write_text('{"categories": [[1]]}')
  with pytest.raises(errors.CheckpointError, match=categoricals.FILE_NAME):
    categoricals.Vocabulary.load(str(tmp_path))
  assert categoricals.Vocabulary.load(str(tmp_path / 'none')) is None
