"""Every field of an experiment config, defined once: default, check, doc.

`defaults()` is the base config (configs/common.base_config returns it);
`resolve(config)` fills a (possibly partial) config with the defaults and
validates every field against its type, range and allowed values, naming
the field, the value and what is accepted. An unknown field fails at
start-up. The engine reads `config.field` directly from the resolved config.

This module imports no JAX, so configs stay cheap to build.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import ml_collections

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax import fields

TASKS = ('pretrain', 'finetune', 'zero_shot')
DATA_KINDS = ('benchmark', 'csv', 'pretrain', 'corpus', 'series')
SPLITS = ('train', 'valid', 'test')


# ------------------------------------------------------------------ checks
def _fewshot(v) -> Optional[str]:
  return None if 0.0 <= v < 1.0 else ('must be in [0, 1) (0 trains on every '
                                      'window)')


def _profile_steps(v) -> Optional[str]:
  """Empty, or (start, stop) with 1 <= start < stop."""
  if not v:
    return None
  if len(v) != 2 or not all(checks.integer()(s) is None for s in v):
    return ('must be (start, stop), two integers (steps start to stop - 1 '
            'are traced), or empty (no trace)')
  start, stop = v
  if start < 1:
    return ('must start at step 1 or later (steps are numbered from 1, as '
            'in metrics.jsonl)')
  if stop <= start:
    return ('must stop after it starts: steps start to stop - 1 are '
            'traced, so stop > start')
  return None


# ------------------------------------------------------------------ fields
# Validation (selection, early stopping) during training; test, with
# seasonal naive beside, on the tested model. Written out in full so that
# command-line overrides (--config.evals.test.every_steps=0) find their
# fields; ttm_jax.evaluators checks each entry against its type.
DEFAULT_EVALS = {
    'val': dict(type='windows', split='valid', every_steps=0, final=False,
                metrics=(), compare=()),
    'test': dict(type='windows', split='test', every_steps=-1, final=True,
                 metrics=(), compare=('seasonal_naive',)),
}

CORPUS = {
    'kind': fields.Field('synthetic', "'synthetic' (embedded generator) or 'tsf' "
                  '(a Monash .tsf file).', checks.one_of('synthetic', 'tsf')),
    'path': fields.Field('', 'The .tsf file (kind tsf).'),
    'num_series': fields.Field(64, 'Series generated (kind synthetic).',
                        checks.positive()),
    'seed': fields.Field(0, 'Generator seed (kind synthetic).'),
    'drs_factors': fields.Field({}, 'Diverse resolution sampling: downsampling '
                         'factors per frequency, e.g. {"h": [24]}.',
                         checks.values_of(checks.each(checks.integer(2)))),
    'drs_method': fields.Field('mean', "'mean' of blocks or 'decimate'.",
                        checks.one_of('mean', 'decimate')),
}

SCHEMA: Dict[str, Any] = {
    'seed': fields.Field(42, 'Seed of new weights and dropout.', resume=True),
    'task': fields.Field('finetune', "'pretrain', 'finetune' or 'zero_shot' "
                  '(evaluate only).', checks.one_of(*TASKS), resume=True),
    'context_length': fields.Field(512, "Steps of history per window (the model's "
                            'context).', checks.positive(), resume=True),
    'prediction_length': fields.Field(96, 'Steps forecast per window (the model\'s '
                               'horizon or prediction_filter_length).',
                               checks.positive(), resume=True),
    'checkpoint': fields.Field('', 'Folder or hub id of the weights to start from; '
                        'empty: a new model (model.preset, model.arch).',
                        resume=True),
    'revision': fields.Field('', 'Hub revision (branch) of `checkpoint`; empty: '
                      'main.', resume=True),
    'data_dir': fields.Field('', 'Folder of registered benchmark files; empty: '
                      '$TTM_DATA_DIR.'),
    'baseline': fields.Field('', "Evaluate a naive forecaster instead of a model "
                      "(task zero_shot): 'repeat_last', 'seasonal_naive' or "
                      "'context_mean'.",
                      checks.one_of('', 'repeat_last', 'seasonal_naive',
                                    'context_mean')),
    'season_length': fields.Field(0, 'Season of seasonal naive (and MASE); 0: from '
                           "the data's frequency (hourly 24, 15-minute 96, "
                           '...).', checks.at_least(0)),
    'compute_dtype': fields.Field('float32', "Matmul dtype, 'float32' or "
                           "'bfloat16' (parameters, norms, softmax and the "
                           'optimiser stay float32).',
                           checks.one_of('float32', 'bfloat16'), resume=True),
    'model': {
        'preset': fields.Field('', 'Architecture preset of a new model '
                        "(ttm_jax.models.presets: 'tiny', 'r2_512', "
                        "'r2_1024'); empty: TTMConfig defaults.", resume=True),
        'arch': fields.Field({}, 'TTMConfig fields of a new model, over the '
                      'preset.', resume=True),
        'overrides': fields.Field({}, 'TTMConfig fields changed when loading '
                           '`checkpoint` (as from_pretrained(**kwargs)).',
                           resume=True),
        'zero_new_residuals': fields.Field(
            False, 'Start the residual branches the overrides add to '
            "`checkpoint` (a mix_channel decoder's channel mixers, the "
            "exogenous mixer) with zero output layers, so the model "
            "forecasts as the checkpoint until trained; False: as the "
            'reference initialises them (random).', resume=True),
    },
    'data': {
        'kind': fields.Field('benchmark', "'benchmark' (registered file), 'csv' "
                      "(a file of yours), 'pretrain' (corpora in memory), "
                      "'corpus' (a prepared corpus folder, streamed) or "
                      "'series' (univariate histories in an .npz: "
                      'data.path, short ones padded).',
                      checks.one_of(*DATA_KINDS), resume=True),
        'name': fields.Field('etth1', 'Registered benchmark (kind benchmark), else '
                      'the label of the results.', resume=True),
        'fewshot_fraction': fields.Field(0.0, "Fraction of the train split kept, "
                                  "IBM's few-shot rule; 0: all of it.",
                                  _fewshot, only_for=('benchmark', 'csv'),
                                  resume=True),
        'batch_size': fields.Field(64, 'Global training batch (windows).',
                            checks.positive(), resume=True),
        'eval_batch_size': fields.Field(0, 'Global evaluation batch (windows); 0: '
                                 'batch_size.', checks.at_least(0)),
        'num_threads': fields.Field(0, 'grain reader threads; 0 reads in the main '
                             'thread.', checks.at_least(0)),
        'seed': fields.Field(42, 'Shuffling seed.', resume=True),
        'drop_remainder': fields.Field(True, "Drop each epoch's partial batch "
                                "(False pads it, as HF's Trainer keeps "
                                'it).', resume=True),
        'path': fields.Field('', 'The CSV or Parquet file (kind csv), the .npz '
                      'of histories (kind series: ttm_jax.data.forecasting.'
                      'save_histories).', only_for=('csv', 'series'),
                      resume=True),
        'min_context_mult': fields.Field(
            4, 'Kind series: a history shorter than the context is padded '
            'in front so its windows keep this many horizons of observed '
            'context (IBM\'s GIFT rule); one window when it has fewer.',
            checks.positive(), only_for=('series',), resume=True),
        'train_windows': fields.Field(0, 'Kind series: a fixed seeded sample of '
                               'this many training windows; 0: all.',
                               checks.at_least(0), only_for=('series',),
                               resume=True),
        'timestamp_column': fields.Field('date', 'Time column (kind csv); empty: '
                                  'none.', only_for=('csv',)),
        'target_columns': fields.Field((), 'Forecast targets (kinds csv, '
                                'benchmark), first in channel order; empty: '
                                'every other column.',
                                checks.each(checks.string()),
                                only_for=('csv', 'benchmark'), resume=True),
        'control_columns': fields.Field((), 'Exogenous columns with known future '
                                 'values, after the targets (kinds csv, '
                                 'benchmark).', checks.each(checks.string()),
                                 only_for=('csv', 'benchmark'), resume=True),
        'static_categorical_columns': fields.Field(
            (), 'Per-series categorical columns (kind csv).',
            checks.each(checks.string()), only_for=('csv',)),
        'id_columns': fields.Field((), 'Series id columns of a long file (kind '
                            'csv).', checks.each(checks.string()),
                            only_for=('csv',), resume=True),
        'freq': fields.Field('', 'Frequency (kind csv); empty: inferred.',
                      only_for=('csv',)),
        'duplicates': fields.Field('error', "Repeated timestamps (kind csv): "
                            "'error', 'first' (keep the first row) or "
                            "'keep'.", checks.one_of('error', 'first', 'keep'),
                            only_for=('csv',)),
        'train_fraction': fields.Field(0.7, 'Rows of the train split (kind csv).',
                                checks.in_range(0.0, 1.0), only_for=('csv',)),
        'test_fraction': fields.Field(0.2, 'Rows of the test split (kind csv).',
                               checks.in_range(0.0, 1.0), only_for=('csv',)),
        'corpora': fields.Field((), 'Pretraining corpora (kind pretrain), each a '
                         'dict of the CORPUS fields.',
                         only_for=('pretrain',), resume=True),
        'corpus_dir': fields.Field('', 'A corpus made by experiments.'
                            'prepare_corpus (kind corpus).',
                            only_for=('corpus',)),
        'corpus_sources': fields.Field((), 'Its sources to use (kind corpus); '
                                'empty: all.', checks.each(checks.string()),
                                only_for=('corpus',)),
        'corpus_weights': fields.Field({}, 'Mixture weight per source (kind '
                                'corpus); unnamed sources weigh their '
                                'window count ** mixture_power.',
                                only_for=('corpus',)),
        'corpus_drs': fields.Field(True, 'Use the diverse-resolution copies '
                            '(kind corpus); False: only the sources as '
                            'given.', only_for=('corpus',)),
        'short_history': fields.Field(0.0, 'Fraction of the training windows '
                               'cut to a short history (kind corpus): '
                               'their context keeps its last L steps, L '
                               'uniform in [short_history_min, context], '
                               'the rest padded and masked as the '
                               'forecasting API pads a short series.',
                               checks.in_range(0.0, 1.0),
                               only_for=('corpus',), resume=True),
        'short_history_min': fields.Field(1, 'Fewest observed context steps of a '
                                   'short-history window (kind corpus).',
                                   checks.at_least(1),
                                   only_for=('corpus',), resume=True),
        'mixture_power': fields.Field(1.0, 'Unnamed sources weigh (window count) '
                               '** this: 1 proportional, 0 uniform, 0.5 '
                               'tempered (kind corpus).',
                               checks.in_range(0.0, 1.0),
                               only_for=('corpus',)),
        'eval_max_windows': fields.Field(20000, 'Validation and test windows '
                                  'evaluated (kinds corpus, series): a fixed '
                                  'seeded subset; 0: every window.',
                                  checks.at_least(0),
                                  only_for=('corpus', 'series')),
    },
    'optim': {
        'lr': fields.Field(1e-3, 'Peak learning rate (unless the LR finder runs).',
                    checks.positive()),
        'weight_decay': fields.Field(0.01, 'AdamW decoupled weight decay.',
                              checks.at_least(0)),
        'schedule': fields.Field('onecycle', "'onecycle' (torch OneCycleLR with "
                          "beta1 cycling) or 'constant'.",
                          checks.one_of('onecycle', 'constant'), resume=True),
        'pct_start': fields.Field(0.3, 'Fraction of steps the one-cycle LR rises.',
                           checks.in_range(0.0, 1.0)),
        'cycle_momentum': fields.Field(True, 'Cycle beta1 0.95 -> 0.85 -> 0.95.',
                                resume=True),
        'clip_norm': fields.Field(0.0, 'Global gradient-norm clip; 0: none (HF '
                           "Trainer's default is 1).", checks.at_least(0),
                           resume=True),
        'lr_finder': {
            'enabled': fields.Field(False, "Pick the LR with the reference's "
                             'finder.'),
            'start_lr': fields.Field(1e-7, 'First rate of the sweep.',
                              checks.positive()),
            'end_lr': fields.Field(10.0, 'Last rate of the sweep.', checks.positive()),
            'num_iter': fields.Field(100, 'Steps of the sweep.', checks.at_least(2)),
            'beta': fields.Field(0.98, 'EMA smoothing of the loss.',
                          checks.in_range(0.0, 0.999999)),
        },
    },
    'frozen': fields.Field((), 'Regexes over parameter paths kept fixed (e.g. '
                    "'backbone/.*' for head probing).",
                    checks.each(checks.regex()), resume=True),
    'num_epochs': fields.Field(50, 'Epochs (when num_steps is 0).', checks.positive()),
    'num_steps': fields.Field(0, 'Training steps; 0: num_epochs x steps_per_epoch.',
                       checks.at_least(0)),
    'steps_per_epoch': fields.Field(0, 'Steps per epoch; 0: windows / batch '
                             '(pretraining needs it set).', checks.at_least(0)),
    'early_stopping_patience': fields.Field(10, 'Evaluations without a better '
                                     'validation loss before stopping; 0: '
                                     'never stop.', checks.at_least(0)),
    'eval_every_steps': fields.Field(0, 'Validation cadence; 0: every epoch.',
                              checks.at_least(0)),
    'log_every_steps': fields.Field(50, 'Training-metric cadence.', checks.positive()),
    'checkpoint_every_steps': fields.Field(0, 'Checkpoint cadence; 0: at every '
                                    'validation.', checks.at_least(0)),
    'keep_checkpoints': fields.Field(3, 'Latest checkpoints kept.', checks.positive()),
    'checkpoint_dir': fields.Field('', 'Where checkpoints go (a shared filesystem '
                            'or a bucket path orbax writes, gs://...); '
                            'empty: the workdir.'),
    'evals': fields.Field(DEFAULT_EVALS, 'Evaluations by name, each a dict with '
                   "its registered `type` (ttm_jax.evaluators: 'windows', "
                   "'conformal'), its schedule (`every_steps` during "
                   'training, `final` after it) and its own fields.'),
    'selection': {
        'eval': fields.Field('val', 'The evaluation whose metric picks the best '
                      'model and stops early; it must run during '
                      'training (every_steps >= 0).', resume=True),
        'metric': fields.Field('', 'Its metric (lower is better); empty: wql for '
                        'a quantile head, else mse.',
                        checks.one_of('', 'mse', 'mae', 'mase', 'wql',
                                      'msis'), resume=True),
    },
    'test_best': fields.Field(True, 'Test the best validation model (else the '
                       'final one).'),
    'export': fields.Field(True, "Write the tested model in the reference's format "
                    'to export/.'),
    'plot': fields.Field(False, 'Plot test forecasts to forecast.png.'),
    'tensorboard': fields.Field(True, 'Mirror metrics.jsonl to TensorBoard.'),
    'profile': {
        'steps': fields.Field((), 'Training steps traced with jax.profiler into '
                       '<workdir>/profile/ by process 0 (XProf, '
                       'TensorBoard, Perfetto: benchmarks/PROFILING.md): '
                       '(start, stop) traces steps start to stop - 1, '
                       'numbered from 1 as in metrics.jsonl; empty: none.',
                       _profile_steps),
        'perfetto': fields.Field(False, 'Also write perfetto_trace.json.gz beside '
                          'the trace (ui.perfetto.dev opens it).'),
    },
}


def _paths(schema: Mapping[str, Any], keep: Callable[[fields.Field], bool],
           prefix: str = '') -> Tuple[str, ...]:
  """The dotted paths of the fields that `keep` selects, in order."""
  out = ()
  for key, spec in schema.items():
    if isinstance(spec, dict):
      out += _paths(spec, keep, f'{prefix}{key}.')
    elif keep(spec):
      out += (prefix + key,)
  return out


# The fields marked `resume`: a resume must agree on all of them.
RESUME_FIELDS = _paths(SCHEMA, lambda field: field.resume)


# ------------------------------------------------------------------- build
def defaults() -> ml_collections.ConfigDict:
  """The base config: every field at its default."""
  return ml_collections.ConfigDict(fields.defaults_tree(SCHEMA))


def _plain(config) -> Dict[str, Any]:
  if isinstance(config, ml_collections.ConfigDict):
    return config.to_dict()
  return dict(config)


def _check_kind_fields(resolved: Dict[str, Any]) -> None:
  """Fields read only by some data kinds must stay at their defaults under
  the others: nothing set is silently ignored."""
  kind = resolved['data']['kind']
  for name, field in SCHEMA['data'].items():
    if field.only_for and kind not in field.only_for:
      if resolved['data'][name] != fields.default_value(field):
        raise errors.ConfigError(
            f'config.data.{name}={resolved["data"][name]!r} is read only '
            f'when data.kind is one of {list(field.only_for)}, but data.kind '
            f'is {kind!r}: remove it or change data.kind.')


def _check_corpora(resolved: Dict[str, Any]) -> None:
  corpora = []
  for k, corpus in enumerate(resolved['data']['corpora']):
    if not isinstance(corpus, Mapping):
      fields.fail(f'data.corpora[{k}]', corpus, 'must be a dict of '
            f'{sorted(CORPUS)}')
    corpora.append(fields.merge(CORPUS, corpus, f'data.corpora[{k}].'))
    if corpora[-1]['kind'] == 'tsf' and not corpora[-1]['path']:
      fields.fail(f'data.corpora[{k}].path', '', 'must name a .tsf file '
            '(kind tsf)')
  resolved['data']['corpora'] = tuple(corpora)
  if resolved['data']['kind'] == 'pretrain' and not corpora:
    fields.fail('data.corpora', (), 'must list at least one corpus for '
          "data.kind='pretrain'")


def _check_model(resolved: Dict[str, Any]) -> None:
  # Imported here: the model config pulls in no JAX, but keep this module's
  # import graph minimal for configs.
  from ttm_jax.models import config as config_lib  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import config_rules  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import presets  # pylint: disable=g-import-not-at-top
  names = set(config_lib.TTMConfig.field_names())
  model = resolved['model']
  for group in ('arch', 'overrides'):
    for key, value in model[group].items():
      if key not in names:
        close = difflib.get_close_matches(key, sorted(names), n=3)
        raise errors.ConfigError(
            f'config.model.{group}.{key} is not a TTMConfig field.'
            + (f' Did you mean {close}?' if close else ''))
      try:
        config_rules.check_field(key, value)
      except errors.ConfigError as e:
        raise errors.ConfigError(f'config.model.{group}.{e}') from None
  if model['preset'] and model['preset'] not in presets.ARCHS:
    fields.fail('model.preset', model['preset'],
          f'must be one of {sorted(presets.ARCHS)} (or empty)')
  if resolved['checkpoint'] and (model['arch'] or model['preset']):
    raise errors.ConfigError(
        f'config.checkpoint={resolved["checkpoint"]!r} loads an existing '
        'model, so config.model.preset and config.model.arch (for a new '
        'model) would be ignored: use config.model.overrides to change '
        'the loaded configuration, or clear checkpoint.')
  if not resolved['checkpoint'] and model['overrides']:
    raise errors.ConfigError(
        'config.model.overrides change a loaded checkpoint, but '
        'config.checkpoint is empty: put the fields in config.model.arch.')
  if not resolved['checkpoint']:  # A new model: build its config now.
    arch = presets.arch(model['preset']) if model['preset'] else {}
    arch.update(context_length=resolved['context_length'],
                prediction_length=resolved['prediction_length'])
    arch.update(model['arch'])
    try:
      config_lib.TTMConfig(**arch)
    except errors.ConfigError as e:
      raise errors.ConfigError(f'The new model (config.model): {e}') from None


def _check_evals(resolved: Dict[str, Any]) -> None:
  """Each evaluation against its registered type; the selection names one
  that runs during training."""
  from ttm_jax import evaluators  # pylint: disable=g-import-not-at-top
  evals = {name: evaluators.resolve_spec(name, spec)
           for name, spec in resolved['evals'].items()}
  resolved['evals'] = evals
  chosen = resolved['selection']['eval']
  if resolved['task'] != 'zero_shot' and (
      chosen not in evals or evals[chosen]['every_steps'] < 0):
    periodic = [n for n, s in evals.items() if s['every_steps'] >= 0]
    fields.fail('selection.eval', chosen, 'must name an evaluation that runs '
          f'during training (every_steps >= 0); those are {periodic}')


def _check_profile(resolved: Dict[str, Any]) -> None:
  """A trace needs training steps; perfetto needs a trace."""
  profile = resolved['profile']
  if profile['steps'] and resolved['task'] == 'zero_shot':
    fields.fail('profile.steps', profile['steps'], "traces training steps, but "
          "task='zero_shot' trains none: remove it")
  if profile['perfetto'] and not profile['steps']:
    fields.fail('profile.perfetto', True, 'writes beside a trace, but '
          'config.profile.steps is empty: set the steps to trace')


def resolve(config, in_memory: bool = False) -> ml_collections.ConfigDict:
  """The config with every default filled in, validated; `in_memory`: a
  recipe whose data is given in memory (`train.fit_model`), so no data
  file is named.

  Raises:
    errors.ConfigError: naming the first unknown or invalid field.
  """
  resolved = fields.merge(SCHEMA, _plain(config))
  _check_kind_fields(resolved)
  _check_corpora(resolved)
  _check_model(resolved)
  if resolved['baseline']:
    if resolved['task'] != 'zero_shot' or resolved['checkpoint']:
      fields.fail('baseline', resolved['baseline'], "evaluates without a model: "
            "use task='zero_shot' and no checkpoint")
  elif resolved['task'] == 'zero_shot' and not resolved['checkpoint']:
    fields.fail('checkpoint', '', "must name a checkpoint for task='zero_shot' "
          '(there is nothing to evaluate), or set config.baseline')
  if resolved['data']['kind'] in ('csv', 'series') and not resolved[
      'data']['path'] and not in_memory:
    fields.fail('data.path', '', 'must name the file when data.kind='
          f"{resolved['data']['kind']!r}")
  if resolved['data']['kind'] == 'corpus' and not resolved['data'][
      'corpus_dir']:
    fields.fail('data.corpus_dir', '', "must name the corpus folder when "
          "data.kind='corpus'")
  _check_evals(resolved)
  _check_profile(resolved)
  return ml_collections.ConfigDict(resolved)


def describe(schema: Mapping[str, Any] = None, prefix: str = '') -> str:
  """Every field with its default and doc, one per line (for --help-like
  listings and docs/training.md)."""
  return fields.describe(SCHEMA if schema is None else schema, prefix)
