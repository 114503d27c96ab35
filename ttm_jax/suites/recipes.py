"""The benchmark runner's recipes, by name (`config.recipe`): how a run's
forecaster is made from its model forecaster (the checkpoint zero-shot,
fine-tuned or on adapted pasts; None without a checkpoint) and the run's
config.

A recipe is a `Recipe` registered here: its doc, its `build`, the config
groups only it reads (their `fields.Field`s, which `suites.config` adds to
the benchmark config; set under another recipe they are refused), and a
`check` of its settings against the rest of the config, run before any
work. A new recipe is one `register` call; neither the config module nor
the runner changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional

from ttm_jax import checks
from ttm_jax import fields
from ttm_jax.inference import forecaster as forecaster_lib
from ttm_jax.inference import select
from ttm_jax.suites import finetuned

Build = Callable[[Mapping[str, Any], Optional[forecaster_lib.Forecaster]],
                 forecaster_lib.Forecaster]


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One recipe of the runner.

  Attributes:
    doc: one line for the reader.
    build: `(resolved config, model forecaster or None) -> Forecaster`.
    fields: the config groups only this recipe reads, {group: {name:
      Field}}.
    check: `(resolved config) -> None`, raising a ConfigError that names
      the field, for settings the fields' own checks cannot judge alone.
  """
  doc: str
  build: Build
  fields: Dict[str, Dict[str, fields.Field]] = dataclasses.field(
      default_factory=dict)
  check: Optional[Callable[[Mapping[str, Any]], None]] = None


RECIPES: Dict[str, Recipe] = {}


def register(name: str, recipe: Recipe) -> None:
  RECIPES[name] = recipe


def group_fields() -> Dict[str, Dict[str, fields.Field]]:
  """Every recipe's config groups."""
  return {group: spec for recipe in RECIPES.values()
          for group, spec in recipe.fields.items()}


# ---------------------------------------------------------- the recipes
def _as_is(config, model):
  del config
  return model


register('', Recipe(
    'The forecaster as configured: the checkpoint zero-shot, fine-tuned '
    '(finetune.enabled) or on adapted pasts (adapt.enabled), or the '
    'baseline.', _as_is))


def _candidates_of(known):
  """The check of a candidates field: names of `known`, at least one, none
  twice, a seasonal naive among them (the fallback)."""

  def check(value) -> Optional[str]:
    complaint = checks.each(checks.one_of(*known))(value)
    if complaint:
      return complaint
    if not value:
      return 'must name at least one candidate'
    if len(set(value)) != len(value):
      return 'names a candidate twice'
    if not set(select.FALLBACKS) & set(value):
      return ('must hold seasonal_naive (the series too short to backtest '
              'fall back to it)')
    return None
  return check


SELECT_FIELDS = {
    'candidates': fields.Field(
        select.CANDIDATES, "The candidates: 'ttm' (the checkpoint), "
        "'seasonal_naive', 'naive', 'drift'.",
        _candidates_of(select.CANDIDATES)),
    'per': fields.Field('series', "Choose per 'series' or per 'dataset'.",
                        checks.one_of(*select.PER)),
    'mode': fields.Field('select', "The best candidate ('select') or a "
                         "blend weighted by inverse error ('blend').",
                         checks.one_of(*select.MODES)),
    'windows': fields.Field(3, 'Backtest windows per past.',
                            checks.at_least(1)),
    'pool': fields.Field(1.0, "Per series: the dataset's mean error weighs "
                         "as this many of a series' own backtest windows.",
                         checks.at_least(0)),
}


def _check_select(config) -> None:
  candidates = config['select']['candidates']
  if select.MODEL in candidates and not config['checkpoint']:
    fields.fail('select.candidates', candidates,
                f'lists {select.MODEL!r}, which forecasts with '
                'config.checkpoint: give one, or drop it')


def _backtest_select(config, model):
  options = config['select']
  recipe = select.Recipe(tuple(options['candidates']), options['mode'],
                         options['per'], options['windows'], options['pool'])
  made = select.forecaster(model, recipe)
  # Its options in its config, also over a fine-tune (whose prepared
  # forecaster select wraps later): records name what made them.
  return dataclasses.replace(made, config=dict(
      made.config, recipe=dataclasses.asdict(recipe)))


register('backtest_select', Recipe(
    'Per series (or dataset), the checkpoint and naive baselines scored '
    'on backtest windows inside each past, the best chosen or a blend '
    '(inference/select.py; config.select).', _backtest_select,
    fields={'select': SELECT_FIELDS}, check=_check_select))


# --------------------------------------------------------- the leaderboard
LEADERBOARD_CANDIDATES = ('finetuned', 'zero_shot', 'seasonal_naive',
                          'gift_seasonal_naive', 'naive', 'drift',
                          select.WEEKLY)
LEADERBOARD_FIELDS = {
    'candidates': fields.Field(
        ('finetuned', 'zero_shot', 'seasonal_naive', select.WEEKLY,
         'drift'),
        "The candidates blended or chosen per series by backtest: "
        "'finetuned' (the checkpoint fine-tuned on the task's pasts, IBM's "
        "GIFT recipe in memory), 'zero_shot' (the checkpoint with "
        "config.inputs), and baselines ('seasonal_naive' is GIFT-Eval's own "
        'on gift_eval tasks).',
        _candidates_of(LEADERBOARD_CANDIDATES)),
    'mode': SELECT_FIELDS['mode'],
    'per': SELECT_FIELDS['per'],
    'windows': fields.Field(16, 'Backtest windows inside each past.',
                            checks.at_least(1)),
    'pool': SELECT_FIELDS['pool'],
    'intervals': fields.Field(
        'pooled', "Quantiles around the point: 'pooled' (each series' "
        "backtest error scale times the dataset's pooled standardised "
        "error quantiles per step) or 'normal' with the backtests' mean "
        "absolute error per step (IBM's in-sample intervals).",
        checks.one_of(*select.INTERVALS)),
    'interval_scale': fields.Field(1.0, 'The intervals widened by this '
                                   'factor (the calibration).',
                                   checks.positive()),
    'max_windows': fields.Field(2000, 'At most this many training windows '
                                "per task's fine-tune (CPU time).",
                                checks.at_least(1)),
    'epochs': fields.Field(5, "The fine-tune's epochs (0: IBM's: 20, or 50 "
                           'under 200 windows; early stopping after 5 '
                           'without a better validation MAE).',
                           checks.at_least(0)),
    'lr': fields.Field(1e-4, "The fine-tune's peak learning rate (0: the "
                       "LR finder's).", checks.at_least(0)),
    'quick': fields.Field(False, 'A few fine-tuning steps (tests).'),
}


def _check_leaderboard(config) -> None:
  if not config['checkpoint']:
    fields.fail('checkpoint', '', "must name the model the leaderboard "
                'recipe fine-tunes and forecasts with')
  if config['finetune']['enabled'] or config['adapt']['enabled']:
    fields.fail('recipe', 'leaderboard', 'makes its own fine-tuned and '
                'zero-shot candidates (config.leaderboard): leave '
                'config.finetune.enabled and config.adapt.enabled false')


def _leaderboard(config, model):
  """The zero-shot model (`model`: the checkpoint with config.inputs) and
  the checkpoint fine-tuned per task, with baselines, blended per series
  by backtest inside each past (`inference.select`), with calibrated
  intervals."""
  options = config['leaderboard']
  candidates = tuple(options['candidates'])
  models = {'zero_shot': model}
  if 'finetuned' in candidates:
    models['finetuned'] = finetuned.finetune_forecaster(
        forecaster_lib.load(model.config['checkpoint'],
                            model.config.get('revision', '')),
        quantiles='point', pretrained_on=model.pretraining_data,
        max_windows=options['max_windows'], learning_rate=options['lr'],
        num_epochs=options['epochs'] or None, name=model.name,
        quick=options['quick'])
  gift = config['suite'] == 'gift_eval'
  candidates = tuple('gift_seasonal_naive' if gift and c == 'seasonal_naive'
                     else c for c in candidates)
  recipe = select.Recipe(candidates, options['mode'], options['per'],
                         options['windows'], options['pool'],
                         options['intervals'], options['interval_scale'])
  made = select.forecaster(
      {k: v for k, v in models.items() if k in candidates}, recipe)
  name = f'{model.name}-leaderboard'
  if made.prepare is None:
    return dataclasses.replace(made, name=name)
  prepare = made.prepare
  return dataclasses.replace(made, name=name, prepare=lambda *args: (
      dataclasses.replace(prepare(*args), name=name)))


register('leaderboard', Recipe(
    'The checkpoint zero-shot and fine-tuned per task, with baselines, '
    'blended per series by backtest inside each past, with calibrated '
    'intervals (config.leaderboard; docs/benchmarks.md).', _leaderboard,
    fields={'leaderboard': LEADERBOARD_FIELDS}, check=_check_leaderboard))
