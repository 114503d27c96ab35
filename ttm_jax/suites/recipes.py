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


def _candidates(value) -> Optional[str]:
  complaint = checks.each(checks.one_of(*select.CANDIDATES))(value)
  if complaint:
    return complaint
  if not value:
    return 'must name at least one candidate'
  if len(set(value)) != len(value):
    return 'names a candidate twice'
  if 'seasonal_naive' not in value:
    return ('must hold seasonal_naive (the series too short to backtest '
            'fall back to it)')
  return None


SELECT_FIELDS = {
    'candidates': fields.Field(
        select.CANDIDATES, "The candidates: 'ttm' (the checkpoint), "
        "'seasonal_naive', 'naive', 'drift'.", _candidates),
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
