"""Every field of a benchmark run's config, defined once: default, check,
doc (`experiments.benchmark --config configs/benchmarks/<suite>.py:...`).

`benchmark(suite, ...)` builds a config (the files in
configs/benchmarks/ call it with their arguments); `resolve(config)` fills
in the defaults and checks every field, then the fields against each other
(a baseline scores alone; a fine-tune needs a checkpoint; settings of a
part that is off are refused, not ignored), each problem one ConfigError
naming `config.<field>`, before any work. `describe()` lists the fields.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

import ml_collections

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax import fields
from ttm_jax import recipes as model_recipes
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.suites import recipes as recipes_lib
from ttm_jax.suites import tasks as tasks_lib

DATA_ENV = 'TTM_DATA_DIR'
# GIFT-Eval's config.json: the kinds of model it lists (its README).
MODEL_TYPES = ('statistical', 'deep-learning', 'agentic', 'pretrained',
               'zero-shot', 'fine-tuned')
AUTO = 'auto'


def _fraction(value) -> Optional[str]:
  return None if 0.0 < value <= 1.0 else 'must be in (0, 1]'


FINETUNE = {
    'enabled': fields.Field(
        False, "Fine-tune the checkpoint per task on the task's pasts "
        "before its windows (IBM's GIFT recipe, in memory: "
        'train/finetune.py histories).'),
    'fraction': fields.Field(
        0.2, "IBM's few-shot fraction of the training windows (0.9 when "
        'that leaves under 200).', _fraction),
    'max_windows': fields.Field(
        4000, 'At most this many training windows per task (CPU time).',
        checks.at_least(1)),
    'lr': fields.Field(
        1e-4, "The peak learning rate; 0: the LR finder's (IBM's default, "
        'which picked 1.5e-7 on M1 yearly: no change from zero-shot; '
        'docs/results/2026-12-02-chronos-ii-finetune-backtest.md).',
        checks.at_least(0)),
    'zero_residuals': fields.Field(
        model_recipes.EXOGENOUS_ZERO_RESIDUALS,
        "covariates='use': the exogenous mixer and the decoder's channel "
        'mixers start with zero output layers (the model forecasts as the '
        'checkpoint until trained); False: random, as the reference '
        'initialises them (ttm_jax/recipes.py EXOGENOUS_ZERO_RESIDUALS, '
        'chosen on validation).'),
    'quick': fields.Field(False, 'A few steps, no LR finder (tests).'),
}

ADAPT = {
    'enabled': fields.Field(
        False, "The checkpoint zero-shot on adapted pasts: M4's "
        'multiplicative seasonal adjustment when seasonal, linear '
        'upsampling, left pads (inference/adapt.py; docs/benchmarks.md).'),
    'upsample': fields.Field(
        8, 'The upsampling factor of a season-1 task (season m: max(1, '
        'this // m)); 1: none.', checks.at_least(1)),
    'pad': fields.Field('edge', "Left pads of the first observed value "
                        "('edge'), or zeros ('zero', the reference's).",
                        checks.one_of('edge', 'zero')),
    'deseasonalize': fields.Field(True, 'Seasonally adjust seasonal '
                                  'pasts.'),
}

REGRESSION = {
    'order': fields.Field(
        covariates_lib.DEFAULT_ORDER, "covariates='use' zero-shot: "
        "'xreg+ttm' (regress, TTM on the residuals) or 'ttm+xreg' (TTM, "
        'then its in-context errors regressed; inference/covariates.py).',
        checks.one_of(*covariates_lib.ORDERS)),
    'ridge': fields.Field(covariates_lib.DEFAULT_RIDGE,
                          'The ridge penalty (standardised regressors).',
                          checks.at_least(0)),
    'windows': fields.Field(
        covariates_lib.DEFAULT_WINDOWS, 'In-context windows the regression '
        "fits on (0: the model's context).", checks.integer(0)),
    'known': fields.Field(
        covariates_lib.DEFAULT_KNOWN, "Known covariates by 'value', or "
        "'surprise' (their deviation from TTM's forecast of them; "
        'ttm+xreg).', checks.one_of(*covariates_lib.KNOWN)),
    'gate': fields.Field(
        covariates_lib.DEFAULT_GATE, "Backtest windows of each series' "
        "weight on the covariates' term (0: none).", checks.integer(0)),
    'time_features': fields.Field(
        (), 'Calendar fields added as known categorical covariates.',
        checks.each(checks.one_of(*covariates_lib.TIME_FEATURES))),
}

SUBMISSION = {
    'org': fields.Field('', "GIFT-Eval's config.json: the organisation "
                        'submitting.'),
    'code_link': fields.Field('', "GIFT-Eval's config.json: a public link "
                              'to the replication code.'),
    'model_link': fields.Field('', "GIFT-Eval's config.json: a public link "
                               'to the model; empty: the hub page of a hub '
                               'checkpoint, else the checkpoint as given.'),
    'model_type': fields.Field(
        '', "GIFT-Eval's config.json: one of " + ', '.join(MODEL_TYPES)
        + '; empty: statistical for a baseline, fine-tuned for a '
        'fine-tune, else pretrained.', checks.one_of('', *MODEL_TYPES)),
    'testdata_leakage': fields.Field(
        '', "GIFT-Eval's config.json: 'Yes' or 'No'; empty: decided from "
        "what the checkpoint was pretrained on (its config.json's "
        'pretraining_data, IBM\'s model card, or config.pretrained_on) '
        "against every GIFT-Eval dataset; refused when it cannot be.",
        checks.one_of('', 'Yes', 'No')),
}

FIELDS: Dict[str, Any] = {
    'suite': fields.Field(
        '', "The benchmark: 'chronos_ii' (fev's Chronos Benchmark II, 27 "
        "tasks), 'fev_bench' (100) or 'gift_eval' (97 configurations).",
        checks.one_of('', *tasks_lib.SUITES)),
    'checkpoint': fields.Field(
        '', "A checkpoint folder, hub id or bundled name; 'auto': per task "
        "the zoo's rule by its shortest past, horizon and frequency "
        '(inference/choice.py) over checkpoints_dir or $TTM_CHECKPOINTS, '
        "then IBM r2 on the hub if allow_download; 'auto:<hub id>': that "
        'release\'s rule. Empty with a baseline or a recipe of '
        'baselines.'),
    'revision': fields.Field('', 'Hub revision of the checkpoint.'),
    'checkpoints_dir': fields.Field(
        '', "checkpoint='auto': a folder of checkpoint folders; empty: "
        '$TTM_CHECKPOINTS.'),
    'allow_download': fields.Field(
        False, "checkpoint='auto' (or 'auto:<hub id>'): may choose, and "
        'fetch, releases on the Hugging Face hub.'),
    'baseline': fields.Field(
        '', "Score a baseline alone: 'seasonal_naive', or "
        "'covariate_regression' (each series' target regressed on its "
        "covariates alone, ridge 1; with covariates='use').",
        checks.one_of('', 'seasonal_naive', 'covariate_regression')),
    'covariates': fields.Field(
        'ignore', "A task's covariates (fev's known_dynamic_columns, "
        "past_dynamic_columns, static_columns): 'use' hands them to the "
        'checkpoint (zero-shot: in-context regression as '
        'config.regression says; fine-tuned: an exogenous mixer over them) '
        "or to baseline='covariate_regression'; 'ignore' lists them as "
        'ignored (rows without covariates, to compare).',
        checks.one_of('ignore', 'use')),
    'regression': REGRESSION,
    'quantiles': fields.Field(
        'auto', "Where a model's quantiles come from: its head ('head'), "
        "the point forecast at every level ('point', fev's TTM wrapper), "
        'normal around the point scaled by its errors on each past '
        "('insample'); 'auto': the head if any, else insample.",
        checks.one_of(AUTO, *forecaster_lib.QUANTILE_SOURCES)),
    'inputs': fields.Field(
        '', "How histories become the model's inputs "
        '(ttm_jax/inference/inputs.py): ' + ', '.join(
            repr(n) for n in inputs_lib.PRESETS)
        + "; empty: 'default', or 'reference' for a fine-tune (its "
        'training windows are padded as the reference pads).',
        checks.one_of('', *inputs_lib.PRESETS)),
    'pretrained_on': fields.Field(
        (), 'What the checkpoint was pretrained on, when it does not say '
        "(config.json's pretraining_data): dataset names, or "
        "'ibm-granite/granite-timeseries-ttm-r2' for its model card's "
        'list. Every row flags an overlap (trained_on_this_dataset).',
        checks.each(checks.string())),
    'tasks': fields.Field((), 'Only these tasks, names as the suite spells '
                          'them; empty: all.', checks.each(checks.string())),
    'split': fields.Field(
        'test', "'test': the suite's windows; 'validation': each series "
        'cut at its first test cutoff and the same windows moved back '
        'before it (for choosing options without the test windows), '
        'outputs in <workdir>/validation/.', checks.one_of(*tasks_lib.SPLITS)),
    'data_dir': fields.Field(
        '', "Where the datasets are, in the suites' published layouts "
        f'(docs/benchmarks.md); empty: ${DATA_ENV}/benchmarks.'),
    'verify_files': fields.Field(
        True, "Refuse a data file whose bytes the suite's list knows "
        '(ttm_jax/suites/files/known_files.json) when its size or sha256 '
        'differ (a truncated or other copy); false scores it anyway.'),
    'rerun': fields.Field(
        False, 'Recompute a task whose record in the workdir was made by '
        'another run (checkpoint content, options, data files or metrics '
        'version differ) or is damaged; false: such a record is refused, '
        'naming the difference.'),
    'recipe': fields.Field(
        '', 'How the forecaster is made: ' + '; '.join(
            f'{name!r}: {recipe.doc}' for name, recipe in
            recipes_lib.RECIPES.items()),
        checks.one_of(*recipes_lib.RECIPES)),
    'finetune': FINETUNE,
    'adapt': ADAPT,
    **recipes_lib.group_fields(),
    'submission': SUBMISSION,
}


# ------------------------------------------------------------------ build
def defaults() -> ml_collections.ConfigDict:
  """Every field at its default."""
  return ml_collections.ConfigDict(fields.defaults_tree(FIELDS))


# The arguments of configs/benchmarks/<suite>.py (`file.py:key=value,...`)
# and their defaults; the other fields through --config.<field>=...
ARGS = dict(checkpoint='', revision='', baseline='', data_dir='', tasks='',
            recipe='', quantiles=AUTO, inputs='', split='test',
            finetune=False, adapt=False, pretrained_on='', rerun=False,
            covariates='ignore')
# GIFT-Eval's also take its config.json fields (config.submission).
GIFT_ARGS = dict(ARGS, org='', code_link='', model_link='', model_type='',
                 testdata_leakage='')


def _names(text: str):
  """'a+b' -> ('a', 'b')."""
  return tuple(name for name in text.split('+') if name)


def benchmark(suite: str, *, checkpoint: str = '', revision: str = '',
              baseline: str = '', data_dir: str = '', tasks: str = '',
              recipe: str = '', quantiles: str = AUTO, inputs: str = '',
              split: str = 'test', finetune: bool = False,
              adapt: bool = False, pretrained_on: str = '',
              rerun: bool = False, covariates: str = 'ignore',
              **submission) -> ml_collections.ConfigDict:
  """The config of a benchmark run of `suite` (every field present, for
  `--config.<field>` overrides; `resolve` checks them).

  Args:
    suite: 'chronos_ii', 'fev_bench' or 'gift_eval'.
    checkpoint, revision, baseline, data_dir, recipe, quantiles, inputs,
      split, rerun, covariates: the fields of those names.
    tasks: task names joined by '+'.
    finetune, adapt: finetune.enabled, adapt.enabled.
    pretrained_on: dataset names (or a model card's hub id) joined by '+'.
    **submission: fields of config.submission (GIFT-Eval's config.json).
  """
  config = defaults()
  config.suite = suite
  config.checkpoint, config.revision = checkpoint, revision
  config.baseline, config.data_dir = baseline, data_dir
  config.tasks, config.recipe = _names(tasks), recipe
  config.quantiles, config.inputs, config.split = quantiles, inputs, split
  config.finetune.enabled, config.adapt.enabled = finetune, adapt
  config.pretrained_on, config.rerun = _names(pretrained_on), rerun
  config.covariates = covariates
  for key, value in submission.items():
    if key not in SUBMISSION:
      raise errors.ConfigError(f'config.submission has no field {key!r}; '
                               f'known: {sorted(SUBMISSION)}.')
    config.submission[key] = value
  return config


# ---------------------------------------------------------------- resolve
def _plain(config) -> Dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    return config.to_dict()
  return dict(config)


def _changed(resolved, group: str):
  """(name, value) of the first field of `group` away from its default,
  or None."""
  spec = FIELDS[group]
  for name, field in spec.items():
    if name != 'enabled' and resolved[group][name] != fields.default_value(
        field):
      return name, resolved[group][name]
  return None


def _only_with(resolved, paths, condition: bool, needs: str) -> None:
  """Fields read only when `condition` must stay at their defaults."""
  if condition:
    return
  for path in paths:
    group, _, name = path.rpartition('.')
    spec = FIELDS[group][name] if group else FIELDS[name]
    value = resolved[group][name] if group else resolved[name]
    if value != fields.default_value(spec):
      fields.fail(path, value, f'is read only {needs}: remove it')


def _check_tasks(resolved) -> None:
  names = resolved['tasks']
  known = {t.name for t in tasks_lib.load_suite(resolved['suite'])}
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    fields.fail('tasks', list(names), f'names {twice} twice (each task is '
                'scored once)')
  unknown = [n for n in names if n not in known]
  if unknown:
    close = sorted(known)[:8]
    fields.fail('tasks', list(names), f'has {unknown}, not tasks of suite '
                f'{resolved["suite"]!r} (its {len(known)} tasks include '
                f'{close}...: tasks.py load_suite)')


def _check_parts(resolved) -> None:
  """The fields against each other (the old flags' conflict table)."""
  checkpoint, baseline = resolved['checkpoint'], resolved['baseline']
  finetune, adapt = resolved['finetune'], resolved['adapt']
  if baseline and (checkpoint or resolved['recipe'] or finetune['enabled']
                   or adapt['enabled']):
    fields.fail('baseline', baseline, 'scores a baseline alone: clear '
                'config.checkpoint, config.recipe, config.finetune.enabled '
                'and config.adapt.enabled')
  if not (checkpoint or baseline or resolved['recipe']):
    fields.fail('checkpoint', '', "must name a checkpoint (or 'auto'), or "
                'set config.baseline or config.recipe')
  if finetune['enabled'] and not checkpoint:
    fields.fail('finetune.enabled', True, 'fine-tunes config.checkpoint: '
                'give one')
  if adapt['enabled'] and (finetune['enabled'] or not checkpoint):
    fields.fail('adapt.enabled', True, 'adapts the pasts config.checkpoint '
                'forecasts zero-shot: give one, without '
                'config.finetune.enabled (the fine-tune trains on the pasts '
                'as they are)')
  use = resolved['covariates'] == 'use'
  if (finetune['enabled'] and not use and resolved['inputs'] and
      inputs_lib.of(resolved['inputs']).adaptation is not None):
    # Measured: r2 fine-tuned on M1 yearly's pasts as they are, then fed
    # adapted ones, scored MASE 12.5 (docs/results/
    # 2026-12-07-one-path-remeasured.md).
    fields.fail('inputs', resolved['inputs'], 'adapts short pasts, which '
                'the fine-tune (config.finetune.enabled) does not train '
                "on: leave it empty (the reference's inputs) or give one "
                'without an adaptation')
  if baseline == 'covariate_regression' and not use:
    fields.fail('baseline', baseline, "reads the tasks' covariates: set "
                "config.covariates='use'")
  if use and (resolved['recipe'] or adapt['enabled']):
    fields.fail('covariates', 'use', 'is read by the checkpoint zero-shot '
                'or fine-tuned, or the covariate_regression baseline: not '
                'with config.recipe or config.adapt.enabled')
  if use and finetune['enabled'] and resolved['inputs'] and not (
      inputs_lib.of(resolved['inputs']).standardize):
    fields.fail('inputs', resolved['inputs'], "does not standardise each "
                'context, so the exogenous mixer a fine-tune with '
                "covariates='use' trains would read their future values "
                'raw: leave it empty (the default inputs)')
  changed = _changed(resolved, 'regression')
  if changed and not (use and checkpoint and not finetune['enabled']):
    fields.fail(f'regression.{changed[0]}', changed[1], 'is read only with '
                "config.covariates='use' and a checkpoint zero-shot (a "
                'fine-tune reads covariates through its exogenous mixer)')
  try:
    covariates_lib.of(dict(resolved['regression'])).check()
  except errors.ConfigError as e:
    fields.fail('regression', dict(resolved['regression']), f'({e})')
  for group, part in (('finetune', finetune), ('adapt', adapt)):
    changed = _changed(resolved, group)
    if changed and not part['enabled']:
      fields.fail(f'{group}.{changed[0]}', changed[1], 'is read only when '
                  f'config.{group}.enabled is true: remove it or enable '
                  f'{group}')
  for name, recipe in recipes_lib.RECIPES.items():
    for group in recipe.fields:
      changed = _changed(resolved, group)
      if changed and resolved['recipe'] != name:
        fields.fail(f'{group}.{changed[0]}', changed[1], 'is read only with '
                    f'config.recipe={name!r}')
  _only_with(resolved, ('revision', 'quantiles', 'inputs', 'pretrained_on'),
             bool(checkpoint), 'with config.checkpoint')
  auto = checkpoint == AUTO or checkpoint.startswith(AUTO + ':')
  _only_with(resolved, ('checkpoints_dir', 'allow_download'), auto,
             "with config.checkpoint='auto'")
  if auto and resolved['revision']:
    fields.fail('revision', resolved['revision'], "is chosen per task by "
                "config.checkpoint='auto': remove it")


def _check_submission(resolved) -> None:
  submission = resolved['submission']
  _only_with(resolved, tuple(f'submission.{k}' for k in SUBMISSION),
             resolved['suite'] == 'gift_eval',
             "when config.suite is 'gift_eval' (its config.json)")
  if submission['model_type'] == 'zero-shot' and (
      resolved['finetune']['enabled']
      or submission['testdata_leakage'] == 'Yes'):
    fields.fail('submission.model_type', 'zero-shot', "is GIFT-Eval's kind "
                'for a model that neither leaks test data nor trains on '
                'its datasets: not with a fine-tune or testdata_leakage '
                "'Yes'")


def resolve(config) -> ml_collections.ConfigDict:
  """The config with every default filled in, every field checked, then
  the fields against each other.

  Raises:
    errors.ConfigError: naming the first unknown or invalid field.
  """
  resolved = fields.merge(FIELDS, _plain(config))
  if not resolved['suite']:
    fields.fail('suite', '', f'must name the benchmark: one of '
                f'{list(tasks_lib.SUITES)}')
  _check_parts(resolved)
  recipe = recipes_lib.RECIPES[resolved['recipe']]
  if recipe.check is not None:
    recipe.check(resolved)
  _check_tasks(resolved)
  _check_submission(resolved)
  return ml_collections.ConfigDict(resolved)


# Fields that do not change what a record holds: where things are, which
# tasks, how to report (the checkpoint counts by its files, the split with
# the task: `benchmark.identity`).
NOT_IDENTITY = ('suite', 'checkpoint', 'revision', 'checkpoints_dir',
                'allow_download', 'tasks', 'split', 'data_dir',
                'verify_files', 'rerun', 'submission')


def settings(config) -> Dict[str, Any]:
  """{'dotted.field': value} of the fields of a resolved config that are
  away from their defaults, but NOT_IDENTITY's (so a field added later
  with its default changes no record's identity)."""
  out = {}

  def walk(schema, values, prefix):
    for key, spec in schema.items():
      if (prefix + key) in NOT_IDENTITY or key not in values:
        continue
      if isinstance(spec, dict):
        walk(spec, values[key], f'{prefix}{key}.')
      elif values[key] != fields.default_value(spec):
        value = values[key]
        out[prefix + key] = list(value) if isinstance(value, tuple) else value
  walk(FIELDS, _plain(config), '')
  return out


def data_folder(config) -> str:
  """The folder the datasets are read from: config.data_dir, else
  $TTM_DATA_DIR/benchmarks; a DataError naming the field when it is not
  a folder."""
  folder = config.data_dir
  if not folder:
    root = os.environ.get(DATA_ENV, '')
    if not root:
      fields.fail('data_dir', '', f'must name the data folder (or set '
                  f'${DATA_ENV}: its benchmarks/ folder is the default)')
    folder = os.path.join(root, 'benchmarks')
  if not os.path.isdir(folder):
    raise errors.DataError(f'config.data_dir={folder!r} is not a folder '
                           "(the datasets in the suites' layouts: "
                           'docs/benchmarks.md).')
  return folder


def describe(schema: Mapping[str, Any] = None, prefix: str = '') -> str:
  """Every field with its default and doc, one per line."""
  return fields.describe(FIELDS if schema is None else schema, prefix)
