"""`ttm_jax.forecast(finetune=F)`: the model head-probed on the first F of
each history with the library's few-shot recipe (`train.finetune.table`:
LR finder, one-cycle, early stopping on the rest), in memory, before
forecasting. With covariates, the fine-tune gives the model an exogenous
mixer over them first (`recipes.exogenous_fields`: the known covariates
as exogenous channels, the past-only ones as channels the decoder mixes,
categorical static ones as embeddings) and trains it with the head, on
each series' history alone, on windows standardised as the forecast's
`inputs` standardise its contexts (`train.finetune.Standardized`), so the
mixer reads the covariates' future values as it will when forecasting."""

from __future__ import annotations

from typing import Optional

from ttm_jax import recipes
from ttm_jax.data import categoricals
from ttm_jax.data import sources
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.predict import frames


def to_table(frame: frames.Frame,
             vocabulary: Optional[categoricals.Vocabulary]) -> sources.Table:
  """The frame's series as the data layer's table (targets then controls),
  its static categoricals coded by `vocabulary` (default: learned from the
  frame's series)."""
  columns = list(frame.static_categorical_columns)
  codes = None
  if columns:
    rows = [s.categoricals for s in frame.series]
    vocabulary = vocabulary or categoricals.Vocabulary.fit(columns, rows)
    codes = list(vocabulary.encode(columns, rows, 'the data'))
  return sources.Table(
      values=[s.values for s in frame.series],
      columns=frame.target_columns + frame.control_columns,
      target_columns=list(frame.target_columns),
      control_columns=list(frame.control_columns),
      ids=[frames.series_label(frame.id_columns, s.key)
           for s in frame.series],
      freq=frame.freq, timestamps=[s.timestamps for s in frame.series],
      static_categoricals=codes,
      static_categorical_columns=columns or None,
      categorical_vocab=vocabulary if codes is not None else None)


def finetuned(model: model_lib.Model, frame: frames.Frame, fraction: float,
              finetune_dir: Optional[str] = None,
              channels: Optional[frames.Channels] = None,
              inputs: Optional[inputs_lib.Inputs] = None
              ) -> model_lib.Model:
  """The model head-probed on the first `fraction` of each history of
  `frame` (`train.finetune.table`), in memory; the run's checkpoints and
  metrics go to `finetune_dir` when given. With `channels` (`frame`'s
  covariates as channels: `frames.with_channels`), the model gets an
  exogenous mixer over them first (`recipes.exogenous_fields`), trained
  on windows standardised as `inputs` (the forecast's) do."""
  from ttm_jax.train import finetune  # pylint: disable=g-import-not-at-top
  table = to_table(frame, model.vocabulary)
  overrides = None
  if channels is not None:
    sizes = (table.categorical_vocab.sizes if channels.static
             else ())
    overrides = recipes.exogenous_fields(
        frame.num_targets, channels.num_known,
        len(channels.names) - channels.num_known, sizes)
  tuned, _ = finetune.table(model.model, model.source, table, fraction,
                            workdir=finetune_dir, overrides=overrides,
                            inputs=inputs)
  return model_lib.Model(model.source, model=tuned,
                         vocabulary=table.categorical_vocab
                         or model.vocabulary)
