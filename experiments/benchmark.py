r"""Scores a checkpoint (or seasonal naive) on the field's benchmarks: fev's
Chronos Benchmark II (`chronos_ii`) and fev-bench (`fev_bench`), and
GIFT-Eval (`gift_eval`), each task as its suite defines and scores it, with
seasonal naive beside on the same windows.

  .venv/bin/python -m experiments.benchmark --suite chronos_ii \
      --checkpoint ibm-granite/granite-timeseries-ttm-r2 \
      --data_dir "$TTM_DATA_DIR/benchmarks" --workdir W [--tasks a,b]

Data: each task reads its dataset from --data_dir as the suite publishes it
(the Hugging Face layout, saved locally), or for Chronos Benchmark II's
Monash tasks the Monash .tsf file it was built from; a missing dataset is
listed (W/missing.json) with the id to fetch it by, and skipped. A rerun
skips finished tasks. Outputs: W/summary.csv (fev's format), W/relative.csv
and .md (over seasonal naive; geometric means), W/relative.png, and for
GIFT-Eval W/all_results.csv and W/config.json.
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


@common.main_wrapper
def main(argv):
  del argv
  common.setup()
  from ttm_jax import errors  # pylint: disable=g-import-not-at-top
  from ttm_jax.evaluators import benchmark  # pylint: disable=g-import-not-at-top
  if bool(_CHECKPOINT.value) == bool(_BASELINE.value):
    raise errors.ConfigError('Give exactly one of --checkpoint and '
                             '--baseline.')
  if not _DATA_DIR.value or not os.path.isdir(_DATA_DIR.value):
    raise errors.DataError(f'--data_dir={_DATA_DIR.value!r} is not a folder '
                           '(or set $TTM_DATA_DIR).')
  forecaster = (benchmark.baseline_forecaster() if _BASELINE.value else
                benchmark.model_forecaster(_CHECKPOINT.value,
                                           _REVISION.value,
                                           _QUANTILES.value,
                                           _PRETRAINED_ON.value))
  os.makedirs(_WORKDIR.value, exist_ok=True)
  records = benchmark.run(_SUITE.value, _DATA_DIR.value, _WORKDIR.value,
                          forecaster, _TASKS.value)
  print(f'{len(records)} task(s) scored; wrote {_WORKDIR.value}/summary.csv '
        'and relative.md.', flush=True)


if __name__ == '__main__':
  common.run(main)
