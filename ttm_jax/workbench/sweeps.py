"""Sweeps: declared grids of ordinary runs, run by one command.

A sweep file (`configs/sweeps/<name>.py`) has `get_config(arg)`, the base
experiment, and `get_sweep(arg)`, the points: dicts of overrides (dotted
config fields) built with `product` and `zip_points`. A point may chain
stages with the key `stages`: a list of `stage(name, [base], **overrides)`,
e.g. pretrain (the sweep's base with the point's overrides), then zero-shot
on two benchmarks (their own base configs); a later stage starts from an
earlier one's exported model with `checkpoint=FROM_STAGE + 'pretrain'`.
Keys starting with '_' are metadata: `_name` (the point's folder, default
from its swept values), `_group` (summary grouping), `_baseline` (marks the
point of reference for relative changes) and `_block` (the comparison block:
a group's change is against the baseline group of its own block, e.g. one
block per dataset; one block by default).

`plan(module, arg)` expands, names and validates every point before anything
runs: an unknown field or a value of the wrong type fails naming the point
and the field, and two points that would share a folder are refused.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import itertools
import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence

import ml_collections

from ttm_jax import errors
from ttm_jax import schema

FROM_STAGE = '@stage:'  # checkpoint=FROM_STAGE + name: that stage's export.
META = ('_name', '_group', '_baseline', '_block')


def product(**axes: Sequence[Any]) -> List[Dict[str, Any]]:
  """Every combination: product(a=[1, 2], b=[3]) -> [{a:1,b:3}, {a:2,b:3}]."""
  names = list(axes)
  return [dict(zip(names, values))
          for values in itertools.product(*(axes[n] for n in names))]


def zip_points(**axes: Sequence[Any]) -> List[Dict[str, Any]]:
  """Aligned values: zip_points(a=[1, 2], b=[3, 4]) -> [{a:1,b:3}, ...]."""
  lengths = {len(v) for v in axes.values()}
  if len(lengths) != 1:
    raise errors.ConfigError(f'zip_points needs equal lengths, got '
                             f'{ {k: len(v) for k, v in axes.items()} }.')
  return [dict(zip(axes, values)) for values in zip(*axes.values())]


def cross(*groups: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Every combination of several point lists, merged."""
  out = [{}]
  for group in groups:
    out = [dict(a, **b) for a in out for b in group]
  return out


def stage(name: str, base: Optional[ml_collections.ConfigDict] = None,
          **overrides) -> Dict[str, Any]:
  """A stage of a point: the sweep's base config with the point's swept
  overrides and these (default), or its own `base` with only these."""
  return {'name': name, 'base': base, 'overrides': overrides}


@dataclasses.dataclass
class Point:
  """One run (or chain of runs) of a sweep."""
  name: str
  swept: Dict[str, Any]  # The point's own overrides (for the tables).
  stages: List[Dict[str, Any]]  # [{'name', 'config': resolved dict}]
  group: str = ''  # Summary group: `_group`, else the swept values but seed.
  baseline: bool = False
  block: str = ''


def load(path: str):
  """The sweep module at `path`."""
  spec = importlib.util.spec_from_file_location('ttm_sweep', path)
  if spec is None:
    raise errors.ConfigError(f'{path}: not a Python file.')
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except FileNotFoundError:
    raise errors.ConfigError(f'Sweep file {path} does not exist.') from None
  except errors.TTMError as e:
    raise errors.ConfigError(f'Sweep file {path}: {e}') from None
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConfigError(
        f'Sweep file {path} could not be loaded ({_describe(e)}).') from e
  for name in ('get_config', 'get_sweep'):
    if not hasattr(module, name):
      raise errors.ConfigError(f'{path} has no {name}(arg).')
  return module


def _describe(error: BaseException) -> str:
  if isinstance(error, SyntaxError) and error.lineno:
    return f'SyntaxError: {error.msg} (line {error.lineno})'
  return f'{type(error).__name__}: {" ".join(str(error).split())[:300]}'


def _call(module, name: str, arg):
  """`module.name(arg)`, a failure named by the sweep file."""
  try:
    return getattr(module, name)(arg)
  except errors.TTMError as e:
    raise type(e)(f'{module.__file__}: {e}') from None
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ConfigError(f'{module.__file__}: {name}({arg!r}) failed '
                             f'({_describe(e)}).') from e


def _set(config: Dict[str, Any], dotted: str, value, where: str) -> None:
  """config[a][b] = value for 'a.b' (a plain dict: the schema then checks
  the field and the value's type, naming the point)."""
  *parents, leaf = dotted.split('.')
  node = config
  for part in parents:
    if not isinstance(node.get(part), dict):
      raise errors.ConfigError(f'{where}: config.{dotted} is not a field '
                               f'(no group {part!r}).')
    node = node[part]
  node[leaf] = value


def _value_text(value) -> str:
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, (list, tuple)):
    return '-'.join(map(_value_text, value))
  return re.sub(r'[^A-Za-z0-9.]+', '', str(value))[:24]


def cell_text(value):
  """A swept value as a table cell: scalars as they are, others as JSON."""
  return value if isinstance(value, (int, float, str, bool)) else json.dumps(
      value)


def group_name(own: Dict[str, Any]) -> str:
  """The summary group of a point without `_group`: its swept values but
  the seed."""
  return ', '.join(f'{k.split(".")[-1]}={cell_text(v)}'
                   for k, v in own.items() if k != 'seed') or 'all'


def point_name(swept: Dict[str, Any]) -> str:
  """A folder name from the swept values ('adaptive_patching_levels=3,
  seed=1' -> 'adaptive_patching_levels3_seed1'), or from the group
  ('AP 3' -> 'AP3_seed1')."""
  if swept.get('_group'):
    parts = [_value_text(swept['_group'])]
  else:
    parts = [f'{key.split(".")[-1]}{_value_text(value)}'
             for key, value in swept.items()
             if key not in META and not key.endswith('seed')]
  if 'seed' in swept:
    parts.append(f'seed{swept["seed"]}')
  return '_'.join(parts) or 'base'


def _resolve(base, overrides: Dict[str, Any], where: str) -> Dict[str, Any]:
  config = copy.deepcopy(base.to_dict())
  for key, value in overrides.items():
    _set(config, key, value, where)
  try:
    return schema.resolve(config).to_dict()
  except errors.ConfigError as e:
    raise errors.ConfigError(f'{where}: {e}') from None


def plan(module, arg: Optional[str] = None) -> List[Point]:
  """The sweep's points, every stage's config resolved and validated."""
  base = _call(module, 'get_config', arg)
  points, names = [], {}
  for raw in _call(module, 'get_sweep', arg):
    swept = {k: v for k, v in raw.items() if k != 'stages'}
    name = raw.get('_name') or point_name(swept)
    own = {k: v for k, v in swept.items() if k not in META}
    stages = raw.get('stages') or [stage('run')]
    resolved = []
    for item in stages:
      where = f'point {name!r}, stage {item["name"]!r}'
      own_base = item.get('base') is not None
      overrides = dict({} if own_base else own, **item['overrides'])
      checkpoint = overrides.get('checkpoint', '')
      if isinstance(checkpoint, str) and checkpoint.startswith(FROM_STAGE):
        earlier = checkpoint[len(FROM_STAGE):]
        if earlier not in [s['name'] for s in resolved]:
          raise errors.ConfigError(f'{where}: checkpoint refers to stage '
                                   f'{earlier!r}, which does not run before '
                                   'it.')
      resolved.append(dict(name=item['name'], config=_resolve(
          item['base'] if own_base else base, overrides, where)))
    if name in names:
      raise errors.ConfigError(
          f'Points {names[name]} and {swept} would both write to {name!r}: '
          'give them distinct _name values.')
    names[name] = swept
    points.append(Point(name, own, resolved,
                        raw.get('_group') or group_name(own),
                        bool(raw.get('_baseline')), str(raw.get('_block', ''))))
  if not points:
    raise errors.ConfigError('The sweep has no points.')
  _check_baselines(points)
  return points


def _check_baselines(points: Sequence[Point]) -> None:
  """At most one baseline group per comparison block."""
  found: Dict[str, set] = {}
  for point in points:
    if point.baseline:
      found.setdefault(point.block, set()).add(point.group)
  for block, groups in found.items():
    if len(groups) > 1:
      where = f'block {block!r}' if block else 'the sweep'
      raise errors.ConfigError(
          f'{where} has {len(groups)} baseline groups {sorted(groups)}: give '
          'each its own _block (e.g. the dataset) or mark one _baseline.')


# ------------------------------------------------------------------ running
DONE, FAILED = 'done.json', 'failed.json'


def status(point_dir: str) -> str:
  """'done', 'failed', 'partial' (started: resumes) or 'new'."""
  if os.path.exists(os.path.join(point_dir, DONE)):
    return 'done'
  if os.path.exists(os.path.join(point_dir, FAILED)):
    return 'failed'
  return 'partial' if os.path.isdir(point_dir) else 'new'


def stage_outputs(config: Dict[str, Any]) -> List[str]:
  """What a finished stage holds: results.json, and export/ (complete: it
  is renamed into place) when its config exports."""
  return ['results.json'] + (['export'] if config.get('export') else [])


def _stage_done(stage_dir: str, config: Dict[str, Any]) -> bool:
  """A stage finished with this config: config.json records it, and every
  output exists (a stage killed between results.json and export/ runs
  again: it resumes from its last checkpoint)."""
  try:
    with open(os.path.join(stage_dir, 'config.json')) as f:
      recorded = json.load(f)
  except (OSError, ValueError):
    return False
  return recorded == json.loads(json.dumps(config)) and all(
      os.path.exists(os.path.join(stage_dir, name))
      for name in stage_outputs(config))


def run_point(point_dir: str, stages: List[Dict[str, Any]]) -> Dict[str, Any]:
  """Runs a point's stages in order (each an ordinary run in
  point_dir/<stage>; finished stages are skipped, interrupted ones resume
  from their checkpoints) and writes point_dir/done.json."""
  from ttm_jax import compilation  # pylint: disable=g-import-not-at-top
  compilation.use_cpu_cores()  # Before JAX starts (a fresh job process).
  compilation.enable_persistent_cache()
  from ttm_jax import train  # pylint: disable=g-import-not-at-top
  os.makedirs(point_dir, exist_ok=True)
  if os.path.exists(os.path.join(point_dir, FAILED)):
    os.remove(os.path.join(point_dir, FAILED))
  timings = {}
  try:
    for item in stages:
      config = copy.deepcopy(item['config'])
      checkpoint = config.get('checkpoint', '')
      if checkpoint.startswith(FROM_STAGE):
        config['checkpoint'] = os.path.join(
            point_dir, checkpoint[len(FROM_STAGE):], 'export')
      stage_dir = os.path.join(point_dir, item['name'])
      if _stage_done(stage_dir, config):
        continue
      start = time.time()
      train.train_and_evaluate(ml_collections.ConfigDict(config), stage_dir,
                               argv=['sweep', point_dir, item['name']])
      timings[item['name']] = round(time.time() - start, 1)
      with open(os.path.join(stage_dir, 'wall.json'), 'w') as f:
        json.dump({'wall_seconds': timings[item['name']]}, f)
  except BaseException as e:
    with open(os.path.join(point_dir, FAILED), 'w') as f:
      json.dump({'error': f'{type(e).__name__}: {e}'[:2000]}, f)
    raise
  with open(os.path.join(point_dir, DONE), 'w') as f:
    json.dump({'wall_seconds': timings}, f)
  return timings


class PointJob:
  """The job a sweep submits for a point (submitit requeues it after a
  SLURM preemption or timeout: the stages resume from their checkpoints)."""

  def __call__(self, point_dir: str, stages: List[Dict[str, Any]]):
    return run_point(point_dir, stages)

  def checkpoint(self, point_dir: str, stages: List[Dict[str, Any]]):
    import submitit  # pylint: disable=g-import-not-at-top
    return submitit.helpers.DelayedSubmission(PointJob(), point_dir, stages)
