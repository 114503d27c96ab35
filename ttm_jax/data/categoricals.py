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
model saved without the table (before it existed) gets the codes of the
values in the call, sorted, with a warning: right only for the training
series themselves.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors

_LOG = logging.getLogger(__name__)
FILE_NAME = 'categorical_vocab.json'


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
    try:
      with open(path, encoding='utf-8') as f:
        values = json.load(f)
      columns = [str(c) for c in values['static_categorical_columns']]
      categories = [tuple(c) for c in values['categories']]
    except (ValueError, KeyError, TypeError) as e:
      raise errors.CheckpointError(
          f'{path} is not a categorical vocabulary ({type(e).__name__}: '
          f'{e}); expected {{"static_categorical_columns": [...], '
          '"categories": [[...], ...]}.') from None
    if len(columns) != len(categories):
      raise errors.CheckpointError(
          f'{path}: {len(columns)} columns but {len(categories)} lists of '
          'categories.')
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


def codes(vocabulary: Optional[Vocabulary], columns: Sequence[str], rows,
          where: str = '') -> np.ndarray:
  """Codes [n, k] of `rows` through `vocabulary` (the model's); without
  one, the sorted values of `rows` themselves, with a warning."""
  if vocabulary is None:
    _LOG.warning(
        'The model has no %s: the static categorical codes are the sorted '
        'values of the series given, which matches the training codes only '
        'for the very series it was trained on.', FILE_NAME)
    vocabulary = Vocabulary.fit(columns, rows)
  return vocabulary.encode(columns, rows, where)
