r"""Scores a checkpoint (or seasonal naive) on the field's benchmarks: fev's
Chronos Benchmark II (`chronos_ii`) and fev-bench (`fev_bench`), and
GIFT-Eval (`gift_eval`), each task as its suite defines and scores it, with
seasonal naive beside on the same windows.

  .venv/bin/python -m experiments.benchmark --suite chronos_ii \
      --checkpoint ibm-granite/granite-timeseries-ttm-r2 \
      --data_dir "$TTM_DATA_DIR/benchmarks" --workdir W [--tasks a,b] \
      [--adapt] [--recipe backtest_select]

--adapt forecasts each past zero-shot after adapting it to the model's
long context (seasonally adjusted, upsampled, edge-padded:
`ttm_jax/inference/adapt.py`). --finetune fine-tunes the checkpoint per
task on the task's pasts first (IBM's GIFT recipe). --recipe
backtest_select chooses, per series, among the checkpoint and naive
baselines by their errors on backtest windows inside each past
(`ttm_jax/inference/select.py`). --holdout validation scores
the validation split instead: each series cut at its first test cutoff
(nothing at or after it is used) and the task's windows moved back before
it, the last ending there (`tasks.validation`); its outputs go to
W/validation/, every row labelled `split`.

Data: each task reads its dataset from --data_dir as the suite publishes it
(the Hugging Face layout, saved locally), or for Chronos Benchmark II's
Monash tasks the Monash .tsf file it was built from; a missing dataset is
listed (W/missing.json) with the id to fetch it by, and skipped. A rerun
skips finished tasks. Outputs: W/summary.csv (fev's format), W/relative.csv
and .md (over seasonal naive; geometric means), W/relative.png, and for
GIFT-Eval W/all_results.csv and W/config.json. --inputs says how
histories become the model's inputs, as `ttm_jax.forecast`'s `inputs`:
'default' (the API's), 'reference' (exactly IBM's pipeline and fev's TTM
wrapper: fev's published TTM rows) or 'legacy_api'.
"""

import os

from absl import flags

from experiments import common

_SUITE = flags.DEFINE_enum('suite', None, ['chronos_ii', 'fev_bench',
                                           'gift_eval'], 'The benchmark.',
                           required=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'A folder or hub id; '
                                  'empty with --baseline.')
_REVISION = flags.DEFINE_string('revision', '', 'Hub revision.')
_BASELINE = flags.DEFINE_enum('baseline', '', ['', 'seasonal_naive'],
                              'Score a baseline instead of a checkpoint.')
_QUANTILES = flags.DEFINE_enum(
    'quantiles', 'auto', ['auto', 'head', 'point', 'insample'],
    "Where a model's quantiles come from: its head, the point forecast at "
    'every level (fev\'s TTM wrapper), normal around the point scaled by '
    'its errors on each past (insample); auto: head if any, else insample.')
_DATA_DIR = flags.DEFINE_string('data_dir', os.environ.get('TTM_DATA_DIR',
                                                           ''),
                                'Where the datasets are (default '
                                '$TTM_DATA_DIR).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder.',
                               required=True)
_PRETRAINED_ON = flags.DEFINE_list(
    'pretrained_on', [], 'What the checkpoint was pretrained on, when it does '
    'not say (config.json `pretraining_data`): dataset names, or '
    "'ibm-granite/granite-timeseries-ttm-r2' for its model card's list. "
    'Every row flags an overlap (trained_on_this_dataset).')
_TASKS = flags.DEFINE_list('tasks', [], 'Only these tasks (names as the '
                           'suite spells them).')
_FINETUNE = flags.DEFINE_bool(
    'finetune', False, "Fine-tune the checkpoint per task on the task's "
    "pasts before its test windows (IBM's GIFT recipe, in memory: "
    'train/finetune.py histories).')
_FINETUNE_FRACTION = flags.DEFINE_float(
    'finetune_fraction', 0.2, "IBM's few-shot fraction of the training "
    'windows (0.9 when that leaves under 200).')
_FINETUNE_MAX_WINDOWS = flags.DEFINE_integer(
    'finetune_max_windows', 4000, 'At most this many training windows per '
    'task (CPU time).')
_FINETUNE_LR = flags.DEFINE_float(
    'finetune_lr', 1e-4, "The fine-tune's peak learning rate; 0: the LR "
    "finder's (IBM's default, which picked 1.5e-7 on M1 yearly: no "
    'change from zero-shot; docs/results/'
    '2026-12-02-chronos-ii-finetune-backtest.md).')
_HOLDOUT = flags.DEFINE_enum(
    'holdout', 'test', ['test', 'validation'],
    "test: the suite's windows. validation: each series cut at its first "
    'test cutoff and the same windows moved back before it (for choosing '
    'options without the test windows); outputs in W/validation/.')
_ADAPT = flags.DEFINE_bool(
    'adapt', False, "The checkpoint zero-shot on adapted pasts: M4's "
    'multiplicative seasonal adjustment when seasonal, linear upsampling '
    'by --adapt_upsample // season, left pads of the first value '
    '(inference/adapt.py; docs/benchmarks.md).')
_ADAPT_UPSAMPLE = flags.DEFINE_integer(
    'adapt_upsample', 8, '--adapt: the upsampling factor of a season-1 '
    'task (season m: max(1, this // m)); 1: none.')
_ADAPT_PAD = flags.DEFINE_enum('adapt_pad', 'edge', ['edge', 'zero'],
                               '--adapt: left pads of the first observed '
                               "value, or zeros (the reference's).")
_ADAPT_DESEASONALIZE = flags.DEFINE_bool(
    'adapt_deseasonalize', True, '--adapt: seasonally adjust seasonal '
    'pasts.')
_RECIPE = flags.DEFINE_enum(
    'recipe', '', ['', 'backtest_select'],
    'backtest_select: per series (or dataset), the checkpoint and naive '
    'baselines scored on backtest windows inside each past, the best '
    'chosen (or a blend); inference/select.py.')
_SELECT_CANDIDATES = flags.DEFINE_list(
    'select_candidates', ['ttm', 'seasonal_naive', 'naive', 'drift'],
    "backtest_select's candidates: ttm (the checkpoint), seasonal_naive, "
    'naive, drift.')
_SELECT_PER = flags.DEFINE_enum('select_per', 'series', ['series', 'dataset'],
                                'backtest_select: choose per series or per '
                                'dataset.')
_SELECT_MODE = flags.DEFINE_enum('select_mode', 'select', ['select', 'blend'],
                                 'backtest_select: the best candidate, or a '
                                 'blend weighted by inverse error.')
_SELECT_WINDOWS = flags.DEFINE_integer('select_windows', 3, 'backtest_select:'
                                       ' backtest windows per past.')
_SELECT_POOL = flags.DEFINE_float(
    'select_pool', 1.0, "backtest_select (per series): the dataset's mean "
    "error weighs as this many of a series' own backtest windows.")


_INPUTS = flags.DEFINE_enum(
    'inputs', 'default', ['default', 'reference', 'legacy_api'],
    "How histories become the model's inputs (pads, gaps, standardisation; "
    'ttm_jax/inference/inputs.py, docs/forecasting.md): the API\'s '
    "default, or 'reference' (IBM's pipeline; fev's published TTM rows).")


def _check_flags(errors) -> None:
  """One error naming the flags in conflict, before any work."""
  if _BASELINE.value and (_CHECKPOINT.value or _RECIPE.value
                          or _FINETUNE.value or _ADAPT.value):
    raise errors.ConfigError('--baseline scores a baseline alone: drop '
                             '--checkpoint, --finetune, --recipe and '
                             '--adapt.')
  if not (_CHECKPOINT.value or _BASELINE.value or _RECIPE.value):
    raise errors.ConfigError('Give --checkpoint, --baseline or --recipe.')
  if _ADAPT.value and (_FINETUNE.value or not _CHECKPOINT.value):
    raise errors.ConfigError(
        '--adapt adapts the pasts a --checkpoint forecasts zero-shot: give '
        'one, without --finetune (the fine-tune trains on the pasts as '
        'they are).')
  if _FINETUNE.value and not _CHECKPOINT.value:
    raise errors.ConfigError('--finetune fine-tunes a --checkpoint: give '
                             'one.')
  if not 0.0 < _FINETUNE_FRACTION.value <= 1.0 or (
      _FINETUNE_MAX_WINDOWS.value < 1) or _FINETUNE_LR.value < 0:
    raise errors.ConfigError(
        f'--finetune_fraction={_FINETUNE_FRACTION.value} must be in (0, 1] '
        f'and --finetune_max_windows={_FINETUNE_MAX_WINDOWS.value} at '
        f'least 1, --finetune_lr={_FINETUNE_LR.value} at least 0.')


def _recipe():
  """The backtest_select recipe of the flags (checked), or None."""
  if not _RECIPE.value:
    return None
  from ttm_jax.inference import select  # pylint: disable=g-import-not-at-top
  recipe = select.Recipe(
      tuple(_SELECT_CANDIDATES.value), _SELECT_MODE.value, _SELECT_PER.value,
      _SELECT_WINDOWS.value, _SELECT_POOL.value)
  recipe.check(bool(_CHECKPOINT.value))
  return recipe


@common.main_wrapper
def main(argv):
  del argv
  common.setup()
  from ttm_jax import errors  # pylint: disable=g-import-not-at-top
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import benchmark  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import adapt  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import forecaster as forecaster_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.inference import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  _check_flags(errors)
  if not _DATA_DIR.value or not os.path.isdir(_DATA_DIR.value):
    raise errors.DataError(f'--data_dir={_DATA_DIR.value!r} is not a folder '
                           '(or set $TTM_DATA_DIR).')
  recipe = _recipe()
  workdir = benchmark.split_workdir(_WORKDIR.value, _HOLDOUT.value)
  inputs = inputs_lib.of(_INPUTS.value)
  if _ADAPT.value:  # Checked where the inputs are used.
    inputs = dataclasses.replace(
        inputs, pad=_ADAPT_PAD.value, adaptation=adapt.Adaptation(
            _ADAPT_DESEASONALIZE.value, _ADAPT_UPSAMPLE.value))
  if _BASELINE.value:
    forecaster = forecaster_lib.baseline()
  elif _FINETUNE.value:
    forecaster = benchmark.finetune_forecaster(
        _CHECKPOINT.value, _REVISION.value, _QUANTILES.value,
        _PRETRAINED_ON.value, _FINETUNE_FRACTION.value,
        _FINETUNE_MAX_WINDOWS.value, _FINETUNE_LR.value)
  else:
    forecaster = forecaster_lib.model_forecaster(
        _CHECKPOINT.value, _REVISION.value, _QUANTILES.value,
        _PRETRAINED_ON.value, inputs) if _CHECKPOINT.value else None
  if recipe is not None:
    from ttm_jax.inference import select  # pylint: disable=g-import-not-at-top
    forecaster = select.forecaster(forecaster, recipe)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  records = benchmark.run(_SUITE.value, _DATA_DIR.value, _WORKDIR.value,
                          forecaster, _TASKS.value, split=_HOLDOUT.value)
  print(f'{len(records)} task(s) scored ({_HOLDOUT.value} split); wrote '
        f'{workdir}/summary.csv and relative.md.', flush=True)


if __name__ == '__main__':
  common.run(main)
