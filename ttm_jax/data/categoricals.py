"""Static categorical vocabularies: the value -> code table learned from the
training series, saved with the model so that forecasting any subset of
the series (one, or new ones of known categories) looks up the embedding
rows the model was trained with.

The table is `categorical_vocab.json`, beside the export's config.json
(and in the run's workdir, for `experiments.export`):

  {"static_categorical_columns": ["store", "region"],
   "categories": [["a", "b", "c"], [1, 2]]}

A value's code is its index in its column's list. The lists are the
training series' values sorted as scikit-learn's `OrdinalEncoder` sorts
them, i.e. the reference preprocessor's `categorical_encoder.categories_`
(tsfm_public's TimeSeriesPreprocessor with encode_categorical=True, fitted
on the same series), so the reference can use the table as it is:

  encoder = OrdinalEncoder(categories=[np.array(c) for c in
                                       vocab['categories']])
  preprocessor.categorical_encoder = encoder.fit(
      df[vocab['static_categorical_columns']])

A value outside the table is an error naming the column and the value (the
model has no embedding row for it), as the reference's encoder raises. A
model saved without the table (before it existed) takes one in this format
from the caller (`forecast(..., categorical_vocab=<file, folder or
dict>)`, `for_forecast`); without one, a call whose series hold as many
values per column as the model embeds gets their sorted codes, with a
warning (right for the training series themselves), and any other call
(a subset of the series, whose sorted codes would differ from training)
is refused naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import checks
from ttm_jax import errors

_LOG = logging.getLogger(__name__)
FILE_NAME = 'categorical_vocab.json'
FORMAT = ('{"static_categorical_columns": [...], "categories": [[...], '
          '...]}')


def _plain(value: Any) -> Any:
  """A JSON value: NumPy scalars as Python ones, other objects as text."""
  if isinstance(value, np.generic):
    value = value.item()
  return value if isinstance(value, (str, int, float, bool)) else str(value)


def _key(value: Any) -> str:
  """What a value is looked up by: its text, with 3.0 read as 3 (a column
  of ids that pandas read as floats, beside the same ids as integers)."""
  value = _plain(value)
  if isinstance(value, float) and value.is_integer():
    value = int(value)
  return str(value)


def _sorted(values) -> Tuple[Any, ...]:
  try:
    return tuple(sorted(values))  # As OrdinalEncoder: numbers by value.
  except TypeError:  # A column of mixed types.
    return tuple(sorted(values, key=str))


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Per static categorical column, its values in code order."""
  columns: Tuple[str, ...]
  categories: Tuple[Tuple[Any, ...], ...]

  @classmethod
  def fit(cls, columns: Sequence[str], rows) -> 'Vocabulary':
    """The vocabulary of `rows` (per series, its [k] values)."""
    table = [[_plain(v) for v in row] for row in rows]
    return cls(tuple(columns), tuple(
        _sorted({row[k] for row in table}) for k in range(len(columns))))

  @property
  def sizes(self) -> Tuple[int, ...]:
    return tuple(len(c) for c in self.categories)

  def encode(self, columns: Sequence[str], rows, where: str = ''
             ) -> np.ndarray:
    """Codes [n, k] int32 of `rows` (per series, its [k] values of
    `columns`); a value outside the vocabulary is a DataError."""
    if list(columns) != list(self.columns):
      raise errors.DataError(
          f'Static categorical columns {list(columns)} differ from the '
          f"model's {list(self.columns)} (in that order).")
    lookup = [{_key(v): i for i, v in enumerate(c)} for c in self.categories]
    codes = np.zeros((len(rows), len(columns)), np.int32)
    for n, row in enumerate(rows):
      for k, value in enumerate(row):
        code = lookup[k].get(_key(value))
        if code is None:
          raise errors.DataError(
              f'{where + ": " if where else ""}static categorical column '
              f'{columns[k]!r} has the value {_plain(value)!r}, which the '
              f'model never saw in training (its values: '
              f'{list(self.categories[k])}); it has no embedding for it.')
        codes[n, k] = code
    return codes

  def save(self, folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, FILE_NAME), 'w', encoding='utf-8') as f:
      json.dump({'static_categorical_columns': list(self.columns),
                 'categories': [list(c) for c in self.categories]}, f,
                indent=2)

  @classmethod
  def load(cls, folder: str) -> Optional['Vocabulary']:
    """The vocabulary saved in `folder`, or None without one."""
    path = os.path.join(folder, FILE_NAME)
    if not os.path.isfile(path):
      return None
    return cls.read(path)

  @classmethod
  def read(cls, path: str, error=errors.CheckpointError) -> 'Vocabulary':
    """The vocabulary of a categorical_vocab.json file; `error` (naming
    the file) when it is not one."""
    try:
      with open(path, encoding='utf-8') as f:
        values = json.load(f)
    except ValueError as e:
      raise error(f'{path} is not a categorical vocabulary (not JSON: '
                  f'{e}); expected {FORMAT}.') from None
    return cls.of_dict(values, path, error)

  @classmethod
  def of_dict(cls, values, where: str, error=errors.CheckpointError
              ) -> 'Vocabulary':
    """The vocabulary of a dict in the file's format; `error` naming
    `where` when it is not one."""
    try:
      columns = [str(c) for c in values['static_categorical_columns']]
      categories = [tuple(c) for c in values['categories']]
    except (KeyError, TypeError) as e:
      raise error(f'{where} is not a categorical vocabulary '
                  f'({type(e).__name__}: {e}); expected {FORMAT}.') from None
    if len(columns) != len(categories):
      raise error(f'{where}: {len(columns)} columns but {len(categories)} '
                  'lists of categories.')
    return cls(tuple(columns), tuple(categories))

  def check_model(self, sizes: Optional[Sequence[int]]) -> None:
    """The model's embedding tables (`categorical_vocab_size_list`) must
    have a row for every value (JAX would clamp a code past the end)."""
    if sizes is None:
      raise errors.ConfigError(
          f'The data has static categorical columns {list(self.columns)} '
          'but the model has no categorical embeddings: set its '
          f'categorical_vocab_size_list (e.g. {list(self.sizes)}), or drop '
          'the columns.')
    if len(sizes) != len(self.columns):
      raise errors.ConfigError(
          f'categorical_vocab_size_list={list(sizes)} has {len(sizes)} '
          f'entries for {len(self.columns)} static categorical columns '
          f'{list(self.columns)}.')
    for column, size, values in zip(self.columns, sizes, self.categories):
      if size < len(values):
        raise errors.ConfigError(
            f'Static categorical column {column!r} has {len(values)} values '
            f'{list(values)[:10]} but the model embeds {size} '
            '(categorical_vocab_size_list): make it at least '
            f'{len(values)}.')


def _given(value) -> Tuple[Optional[Vocabulary], Optional[str]]:
  """(the vocabulary of a caller's value, None) or (None, what is wrong)."""
  if value is None or isinstance(value, Vocabulary):
    return value, None
  if isinstance(value, dict):
    where = 'the dict'
    read = lambda: Vocabulary.of_dict(value, where, errors.ConfigError)
  elif isinstance(value, (str, os.PathLike)):
    path = os.fspath(value)
    if os.path.isdir(path):
      path = os.path.join(path, FILE_NAME)
    if not os.path.isfile(path):
      return None, (f'no such file (expected a {FILE_NAME}, or a folder '
                    'holding one)')
    read = lambda: Vocabulary.read(path, errors.ConfigError)
  else:
    return None, (f'must be a path to a {FILE_NAME}, a folder holding one, '
                  f'or a dict {FORMAT}')
  try:
    return read(), None
  except errors.ConfigError as e:
    return None, str(e).rstrip('.')


def check_given(value) -> Optional[str]:
  """What is wrong with a caller's `categorical_vocab` (None if nothing):
  the argument check of `forecast` (`predict/arguments.py`)."""
  return _given(value)[1]


def given(value) -> Optional[Vocabulary]:
  """The vocabulary a caller gives (`forecast(categorical_vocab=...)`): a
  categorical_vocab.json file, a folder holding one (a model or run
  folder), a dict in its format, or a `Vocabulary`; None for None.
  ConfigError naming the value when it is none of them."""
  vocabulary, complaint = _given(value)
  if complaint:
    raise errors.ConfigError(
        f'categorical_vocab={checks.show(value)}: {complaint}.')
  return vocabulary


def for_forecast(saved: Optional[Vocabulary], value, columns: Sequence[str],
                 rows, sizes: Optional[Sequence[int]], model: str = 'model'
                 ) -> Optional[Vocabulary]:
  """The vocabulary to code a forecast's static categoricals with: the
  model's (`saved`) or the caller's (`value`, see `given`; it must agree
  with a saved one), checked against the model's embedding tables
  (`sizes`). Without either, the sorted values of `rows` (per series, its
  [k] values), with a warning, only when they are as many per column as
  the model embeds; otherwise (a subset of the training series: its sorted
  codes would differ) ConfigError naming the file to give."""
  mine = given(value)
  if not columns:
    if mine is not None:
      raise errors.ConfigError(
          'categorical_vocab is given but there are no '
          'static_categorical_columns: it would be ignored.')
    return saved
  if mine is not None and saved is not None and mine != saved:
    raise errors.ConfigError(
        f'categorical_vocab differs from the {FILE_NAME} saved with the '
        f'model {model} ({list(mine.columns)}: {_shown(mine)} vs '
        f'{list(saved.columns)}: {_shown(saved)}); leave it out to use '
        "the model's.")
  vocabulary = mine or saved
  if vocabulary is None:
    fitted = Vocabulary.fit(columns, rows)
    fitted.check_model(sizes)
    short = [(c, n, size) for c, n, size in zip(columns, fitted.sizes,
                                                 sizes) if n != size]
    if short:
      column, count, size = short[0]
      raise errors.ConfigError(
          f'The model {model} has no {FILE_NAME}, and the series given hold '
          f'{count} of the {size} values of {column!r} it embeds: their '
          'codes, re-derived from these series, would differ from the '
          f'training codes. Pass categorical_vocab= the training run\'s '
          f'{FILE_NAME} (or a dict {FORMAT}), or forecast every training '
          'series in one call.')
    _LOG.warning(
        'The model %s has no %s: the static categorical codes are the '
        'sorted values of the series given (as many as the model embeds), '
        'the training codes only if these are the training series\' '
        'values; pass categorical_vocab= to be sure.', model, FILE_NAME)
    return fitted
  vocabulary.check_model(sizes)
  return vocabulary


def _shown(vocabulary: Vocabulary) -> str:
  return str([list(c)[:5] for c in vocabulary.categories])[:80]


def codes(vocabulary: Optional[Vocabulary], columns: Sequence[str], rows,
          where: str = '') -> np.ndarray:
  """Codes [n, k] of `rows` through `vocabulary` (the model's, or the one
  `for_forecast` chose); without one, ConfigError naming the file."""
  if vocabulary is None:
    raise errors.ConfigError(
        f'The model has no {FILE_NAME}: its static categorical codes are '
        f'unknown. Pass categorical_vocab= the training run\'s {FILE_NAME} '
        f'(or a dict {FORMAT}).')
  return vocabulary.encode(columns, rows, where)
