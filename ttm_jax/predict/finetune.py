"""`ttm_jax.forecast(finetune=F)`: the model head-probed on the first F of
each history with the library's few-shot recipe (`recipes.few_shot`: LR
finder, one-cycle, early stopping on the rest), before forecasting."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

from ttm_jax import errors
from ttm_jax.predict import engine

_LOG = logging.getLogger(__name__)


def training_windows(df, frame, fraction, context, horizon) -> int:
  """The fine-tuning run's training windows: those of the first
  `fraction` of each series of `df` (as the engine splits it)."""
  from ttm_jax.data import windows  # pylint: disable=g-import-not-at-top
  lengths = (list(df.groupby(frame.id_columns).size()) if frame.id_columns
             else [len(df)])
  rule = windows.SplitRule(train_fraction=fraction, test_fraction=0.0)
  return sum(windows.num_windows(
      windows.split_ranges(n, rule, context)['train'][1], context, horizon)
             for n in lengths)


def finetuned(forecaster, df, frame, fraction, timestamp_column,
               finetune_dir=None):
  """The model head-probed on the first `fraction` of each history with the
  engine's recipe (LR finder, one-cycle, early stopping on the rest), its
  batch at most the number of training windows. The run goes to
  `finetune_dir` (kept) or a temporary folder (removed)."""
  from ttm_jax import recipes  # pylint: disable=g-import-not-at-top
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  count = training_windows(df, frame, fraction, forecaster.context_length,
                           forecaster.horizon)
  if count < 1:
    raise errors.DataError(
        f'finetune={fraction:g}: the first {fraction:g} of each history has '
        f'no training window of {forecaster.context_length} + '
        f'{forecaster.horizon} rows: give more history or a larger '
        'fraction.')
  if finetune_dir:
    os.makedirs(finetune_dir, exist_ok=True)
    workdir = finetune_dir
  else:
    workdir = tempfile.mkdtemp(prefix='ttm_finetune_')
  try:
    path = os.path.join(workdir, 'data.csv')
    df.to_csv(path, index=False)
    source = os.path.join(workdir, 'start')
    checkpoint_lib.save_pretrained(source, forecaster.config,
                                   forecaster.model.variables)
    if forecaster.vocabulary is not None:  # Trained with the same codes.
      forecaster.vocabulary.save(source)
    config = recipes.few_shot(source, context=forecaster.context_length,
                              horizon=forecaster.horizon)
    config.data.update(
        kind='csv', name='finetune', path=path, fewshot_fraction=0.0,
        timestamp_column=timestamp_column, id_columns=frame.id_columns,
        target_columns=frame.target_columns,
        control_columns=frame.control_columns,
        static_categorical_columns=frame.static_categorical_columns,
        train_fraction=fraction, test_fraction=0.0, freq=frame.freq)
    if config.data.batch_size > count:  # Not padded up to a full batch.
      _LOG.warning('finetune: %d training windows, fewer than the batch of '
                   '%d: the batch is %d.', count, config.data.batch_size,
                   count)
      config.data.batch_size = count
    # Validation (the rest of each history) selects and stops early; there
    # is no test split.
    config.evals = dict(val=dict(type='windows', split='valid',
                                 every_steps=0, final=True))
    config.tensorboard = False
    train.train_and_evaluate(config, os.path.join(workdir, 'run'),
                             argv=['ttm_jax.forecast(finetune=...)'])
    return engine.Forecaster(os.path.join(workdir, 'run', 'export'))
  finally:
    if not finetune_dir:
      shutil.rmtree(workdir, ignore_errors=True)



def series_windows(lengths, context: int, horizon: int,
                   min_context_mult: int = 4) -> int:
  """The training windows of histories of `lengths` under the series
  recipe (`data.forecasting.series_splits`: the last horizon held out for
  validation, short histories padded)."""
  from ttm_jax.data import forecasting  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import windows  # pylint: disable=g-import-not-at-top
  total = 0
  for length in lengths:
    train = length - horizon
    if train > 0:
      total += windows.num_windows(
          train + forecasting.padding(train, context, horizon,
                                      min_context_mult), context, horizon)
  return total


def finetune_histories(checkpoint: str, histories, horizon: int, freq: str,
                       workdir: str, *, revision: str = '',
                       fraction: float = 0.2, max_windows: int = 4000,
                       min_windows: int = 10, learning_rate: float = 1e-4,
                       quick: bool = False):
  """IBM's GIFT fine-tune recipe (`recipes.series_finetune`) of
  `checkpoint` on univariate histories, in `workdir` (kept; a rerun
  resumes it).

  As IBM's: `fraction` of the training windows (0.9, and 50 epochs, when
  that is under 200), zero-shot when there are `min_windows` or fewer;
  here also at most `max_windows` (CPU time). `learning_rate` 0: the
  LR finder's.

  Returns:
    (the fine-tuned model's folder, or None for zero-shot; what was done).
  """
  from ttm_jax import recipes  # pylint: disable=g-import-not-at-top
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  from ttm_jax.data import forecasting  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  done = os.path.join(workdir, 'finetune.json')
  if os.path.exists(done):  # Fine-tuned by an earlier, interrupted run.
    with open(done) as f:
      notes = json.load(f)
    return notes.pop('model', None), notes
  source = checkpoint_lib.resolve(checkpoint, revision or None)
  config, _, _ = checkpoint_lib.load_pretrained(source)
  count = series_windows([len(h) for h in histories],
                         config.context_length, horizon)
  if count <= min_windows:
    return None, dict(finetuned=False, training_windows=count,
                      reason=f'{count} training windows (<= {min_windows}): '
                      'zero-shot, as IBM\'s recipe')
  if int(fraction * count) < 200:
    fraction = 0.9
  used = min(max(int(fraction * count), 1), max_windows)
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, 'histories.npz')
  forecasting.save_histories(path, histories, freq)
  run_config = recipes.series_finetune(
      source, path=path, context=config.context_length, horizon=horizon,
      num_windows=used, train_windows=used if used < count else 0,
      learning_rate=learning_rate, quick=quick)
  records = train.train_and_evaluate(
      run_config, os.path.join(workdir, 'run'),
      argv=['benchmark --finetune'])
  # The export is what forecasts; the orbax checkpoints only resume.
  shutil.rmtree(os.path.join(workdir, 'run', 'checkpoints'),
                ignore_errors=True)
  summary = records[0].get('training', {}) if records else {}
  notes = dict(finetuned=True, training_windows=count, used_windows=used,
               epochs=run_config.num_epochs, **summary)
  folder = os.path.join(workdir, 'run', 'export')
  with open(done, 'w') as f:
    json.dump(dict(notes, model=folder), f, indent=2)
  return folder, notes
