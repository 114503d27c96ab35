"""The data of an experiment config: window sources and training batches.

`build_data(config)` reads `config.data` (a registered benchmark, a file of
the user's, or pretraining corpora) into train/valid/test window sources;
`train_batches` makes the shuffled, host-sharded training stream.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import grain
import numpy as np

from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.data import forecasting
from ttm_jax.data import pipeline
from ttm_jax.data import pretrain
from ttm_jax.data import sources
from ttm_jax.data import windows
from ttm_jax.data.corpus import provenance
from ttm_jax.data.corpus import reading


@dataclasses.dataclass
class Data:
  """Window sources of an experiment.

  Attributes:
    train: a window source, or for pretraining one per corpus (mixed by
      `weights`).
    valid, test: window sources.
    name: label of the results.
    scalers: per series, the standard scaler fitted on train (benchmarks and
      files), else None.
    weights: mixture weights of the pretraining corpora, else None.
    categorical_vocab: the static categoricals' value -> code table (kind
      csv with static_categorical_columns), saved with the model.
    pretraining: the datasets a prepared corpus feeds the run (its
      manifest's entries, `provenance.used`), carried by the exported
      model; None for other data.
  """
  train: Any
  valid: Any
  test: Any
  name: str
  scalers: Optional[List[windows.Scaler]] = None
  weights: Optional[List[float]] = None
  notes: List[str] = dataclasses.field(default_factory=list)
  freq: str = ''  # Frequency of the data ('' when mixed).
  categorical_vocab: Optional[categoricals.Vocabulary] = None
  pretraining: Optional[List[Dict[str, Any]]] = None

  @property
  def is_mixture(self) -> bool:
    return self.weights is not None

  @property
  def num_train_windows(self) -> int:
    if self.is_mixture:
      return int(sum(len(t) for t in self.train))
    return len(self.train)


def _fewshot(data) -> Optional[float]:
  return data.fewshot_fraction or None


def _benchmark(config, required: Tuple[str, ...]) -> Data:
  data = config.data
  splits = forecasting.load_benchmark(
      data.name, config.context_length, config.prediction_length,
      data_dir=config.data_dir or None, fewshot_fraction=_fewshot(data),
      required=required,
      target_columns=list(data.target_columns) or None,
      control_columns=list(data.control_columns))
  return Data(splits.train, splits.valid, splits.test, data.name,
              splits.scalers, notes=splits.notes,
              freq=sources.REGISTRY[data.name.lower()].freq)


def _csv(config, required: Tuple[str, ...]) -> Data:
  data = config.data
  # A fine-tuned model keeps the codes its embeddings were trained with.
  start = (categoricals.Vocabulary.load(config.checkpoint) if
           config.checkpoint and os.path.isdir(config.checkpoint) else None)
  table = sources.read_table(
      data.path, timestamp_column=data.timestamp_column or None,
      target_columns=list(data.target_columns) or None,
      control_columns=list(data.control_columns),
      static_categorical_columns=list(data.static_categorical_columns),
      id_columns=list(data.id_columns), freq=data.freq or None,
      duplicates=data.duplicates, vocabulary=start)
  return table_data(table, config.context_length, config.prediction_length,
                    windows.SplitRule(train_fraction=data.train_fraction,
                                      test_fraction=data.test_fraction),
                    data.name, _fewshot(data), required)


def table_data(table: sources.Table, context_length: int,
               prediction_length: int, rule: windows.SplitRule, name: str,
               fewshot_fraction: Optional[float] = None,
               required: Tuple[str, ...] = ('train', 'valid'),
               transform=None) -> Data:
  """The window sources of a table in memory (a user's file as read, or
  the forecasting API's frame), split by `rule` (IBM's protocol); each
  window through `transform` when given."""
  splits = forecasting.make_splits(table, context_length, prediction_length,
                                   rule, fewshot_fraction=fewshot_fraction,
                                   required=required, transform=transform)
  return Data(splits.train, splits.valid, splits.test, name,
              splits.scalers, notes=splits.notes, freq=table.freq,
              categorical_vocab=table.categorical_vocab)


def _corpora(corpus_cfg) -> List[pretrain.UnivariateCorpus]:
  if corpus_cfg['kind'] == 'synthetic':
    found = pretrain.synthetic_corpora(corpus_cfg['num_series'],
                                       seed=corpus_cfg['seed'])
  else:
    found = [pretrain.tsf_corpus(corpus_cfg['path'])]
  out = []
  for corpus in found:
    # DRS factors per frequency of the corpus.
    factors = corpus_cfg['drs_factors'].get(corpus.freq, ())
    out.extend(pretrain.diverse_resolutions(corpus, factors,
                                            corpus_cfg['drs_method']))
  return out


def _pretrain(config, required: Tuple[str, ...]) -> Data:
  del required  # Every corpus split has windows, or none is used.
  corpora = [c for cfg in config.data.corpora for c in _corpora(cfg)]
  splits = [pretrain.corpus_splits(c, config.context_length,
                                   config.prediction_length) for c in corpora]
  splits = [s for s in splits if s is not None]
  if not splits:
    raise errors.DataError('No pretraining corpus has a series long enough '
                           'for one window.')
  trains = [s['train'] for s in splits]
  return Data(trains, forecasting.ConcatSource([s['valid'] for s in splits]),
              forecasting.ConcatSource([s['test'] for s in splits]),
              config.data.name, weights=[float(len(t)) for t in trains])


class Subset:
  """Some windows of a source, by index (a fixed evaluation sample)."""

  def __init__(self, source, indices: np.ndarray):
    self.source, self.indices = source, indices

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, i: int):
    return self.source[int(self.indices[int(i)])]


def sample(source, count: int, seed: int):
  """`count` windows of `source` drawn without replacement by a seeded lazy
  shuffle (no array of all indices), in source order; all when `count` is 0
  or covers it. The same for the same seed on every host and run."""
  if not count or count >= len(source):
    return source
  shuffled = grain.MapDataset.range(len(source)).shuffle(seed=seed)
  return Subset(source, np.sort([shuffled[i] for i in range(count)]))


def _corpus(config, required: Tuple[str, ...]) -> Data:
  del required
  data = config.data
  found = reading.Corpus(data.corpus_dir)
  names = list(data.corpus_sources) or found.names
  if not data.corpus_drs:  # Only the sources as given, no DRS copies.
    names = [n for n in names if not found.is_drs_copy(n)]
  cl, fl = config.context_length, config.prediction_length
  trains, weights, used = [], [], []
  for name in names:
    windows = found.windows('train', cl, fl, [name], data.short_history,
                            data.short_history_min, data.seed)
    if len(windows):
      trains.append(windows)
      used.append(name)
      weights.append(float(data.corpus_weights.get(
          name, len(windows)**data.mixture_power)))
  unknown = sorted(set(data.corpus_weights) - set(found.names))
  if unknown:
    raise errors.ConfigError(f'config.data.corpus_weights names {unknown}, '
                             f'not sources of {data.corpus_dir} '
                             f'({found.names}).')
  if not trains:
    raise errors.DataError(f'{data.corpus_dir}: no series of {names} is long '
                           f'enough for one window of {cl} + {fl} steps.')
  evaluated = [sample(found.windows(split, cl, fl, used),
                      data.eval_max_windows, data.seed + k)
               for k, split in enumerate(('valid', 'test'))]
  return Data(trains, *evaluated, data.name, weights=weights,
              notes=[f'{len(e)} {s} windows evaluated' for e, s in zip(
                  evaluated, ('valid', 'test'))],
              pretraining=provenance.used(found.manifest, used))


def _series(config, required: Tuple[str, ...]) -> Data:
  """Univariate histories (kind series): padded training windows, a seeded
  sample of `train_windows` of them, and each history's last window for
  validation (`eval_max_windows` of them)."""
  del required  # series_data refuses histories without training windows.
  data = config.data
  histories, freq = forecasting.load_histories(data.path)
  return series_data(histories, freq, config.context_length,
                     config.prediction_length, data.name,
                     min_context_mult=data.min_context_mult,
                     train_windows=data.train_windows,
                     valid_windows=data.eval_max_windows, seed=data.seed,
                     where=data.path)


def series_data(histories, freq: str, context_length: int,
                prediction_length: int, name: str, *,
                min_context_mult: int = 4, train_windows: int = 0,
                valid_windows: int = 0, seed: int = 0,
                where: str = 'The histories', transform=None) -> Data:
  """Univariate histories in memory (or [t, c]: the target, then channels
  a model mixes): padded training windows (IBM's GIFT recipe,
  `forecasting.series_splits`, each window through `transform` when
  given), a seeded sample of `train_windows` of them (0: all), and each
  history's last window for validation (`valid_windows` of them, 0:
  all)."""
  splits = forecasting.series_splits(histories, context_length,
                                     prediction_length, min_context_mult,
                                     freq, transform)
  if not len(splits.train):
    raise errors.DataError(
        f'{where}: no history has a training window of '
        f'{prediction_length} steps before its last {prediction_length}.')
  train = sample(splits.train, train_windows, seed)
  valid = sample(splits.valid, valid_windows, seed + 1)
  return Data(train, valid, valid, name, splits.scalers,
              notes=splits.notes + [f'{len(train)} of {len(splits.train)} '
                                    f'training windows, {len(valid)} '
                                    'validation windows'], freq=freq)


_BUILDERS = {'benchmark': _benchmark, 'csv': _csv, 'pretrain': _pretrain,
             'corpus': _corpus, 'series': _series}


def build_data(config, required: Sequence[str] = ()) -> Data:
  """The window sources `config.data` describes (protocol of TTM_SPEC 5);
  `required`: the splits that must have windows (a run's: those its
  evaluations read, and train when it trains; `train.loop` works them
  out), a clear error naming the split otherwise."""
  return _BUILDERS[config.data.kind](config, tuple(required))


def drop_remainder(config, ttm_config) -> bool:
  """Whether each epoch's partial batch is dropped (`data.drop_remainder`;
  False pads it, as HF's Trainer keeps it). Padding rows would enter
  BatchNorm statistics, so that combination is refused."""
  drop = config.data.drop_remainder
  if not drop and 'batch' in ttm_config.norm_mlp.lower():
    raise errors.ConfigError(
        "config.data.drop_remainder=False pads each epoch's last batch, and "
        "padding rows would enter the statistics of norm_mlp='BatchNorm'; "
        'set config.data.drop_remainder=True for this model.')
  return drop


def train_batches(config, data: Data, drop: bool, seed: int
                  ) -> grain.IterDataset:
  """The training stream: shuffled epochs, or the corpora's mixture."""
  if data.is_mixture:
    return pipeline.mixture_dataset(data.train, data.weights,
                                    config.data.batch_size, seed,
                                    num_threads=config.data.num_threads)
  return pipeline.train_dataset(data.train, config.data.batch_size, seed,
                                drop_remainder=drop,
                                num_threads=config.data.num_threads)


def finder_batches(config, data: Data, drop: bool) -> grain.IterDataset:
  """Shuffled batches for the LR finder, in an order of their own (the
  reference's DataLoader(shuffle=True)); the first corpus when mixing."""
  source = data.train[0] if data.is_mixture else data.train
  return pipeline.train_dataset(source, config.data.batch_size,
                                config.data.seed + 1, drop_remainder=drop)
