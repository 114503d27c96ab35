"""The library's floors (docs/architecture.md) hold on the code: every
import inside ttm_jax/, function-level ones included, goes to a module of
the same package or of a lower floor, and no two modules import each other
through any chain."""

import ast
import os
import re

from tests import conftest

ARCHITECTURE = os.path.join(conftest.ROOT, 'docs', 'architecture.md')
# Floor of each top-level module or package of ttm_jax/, lowest first: a
# module may import its own package and lower floors only. The same table
# is drawn in docs/architecture.md (checked below).
FLOORS = {
    'errors': 0,
    'checks': 1,
    'fields': 2, 'compilation': 2, 'sharding': 2, 'losses': 2,
    'metrics': 2, 'baselines': 2, 'optim': 2, 'runs': 2,
    'models': 3,
    'data': 4,
    'inference': 5,
    'evaluators': 6,
    'schema': 7,
    'recipes': 8,
    'train': 9,
    'predict': 10, 'suites': 10,
    'workbench': 11,
}


def _modules(root: str = conftest.ROOT):
  """{dotted module name: path} of every module of root/ttm_jax/."""
  out = {}
  for folder, _, files in os.walk(os.path.join(root, 'ttm_jax')):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        dotted = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
        out[dotted[:-len('.__init__')] if dotted.endswith('__init__')
            else dotted] = path
  return out


def _imports(modules):
  """{module: set of ttm_jax modules it imports}, at any depth of its
  code."""
  edges = {}
  for module, path in modules.items():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read())
    package = module if path.endswith('__init__.py') else module.rpartition(
        '.')[0]
    found = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        found.update(a.name for a in node.names
                     if a.name.startswith('ttm_jax'))
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parts = package.split('.')
          base = '.'.join(parts[:len(parts) - node.level + 1] +
                          ([base] if base else []))
        if not base.startswith('ttm_jax'):
          continue
        for alias in node.names:
          name = f'{base}.{alias.name}'
          found.add(name if name in modules else base)
    edges[module] = {m for m in found if m in modules and m != module}
  return edges


def _part(module: str) -> str:
  """The top-level module or package of ttm_jax a module belongs to."""
  return module.split('.')[1] if module != 'ttm_jax' else ''


def test_every_part_has_a_floor():
  parts = {_part(m) for m in _modules()} - {''}
  assert parts <= set(FLOORS), sorted(parts - set(FLOORS))


def test_imports_go_down_or_sideways():
  modules = _modules()
  upward = []
  for module, targets in _imports(modules).items():
    if module == 'ttm_jax':  # The package face re-exports the public API.
      continue
    here = FLOORS[_part(module)]
    for target in targets:
      part = _part(target)
      if part != _part(module) and FLOORS[part] >= here:
        upward.append(f'{module} -> {target} (floor {here} -> '
                      f'{FLOORS[part]})')
  assert not upward, '\n'.join(sorted(upward))


def test_no_import_cycle():
  """No module reaches itself through imports (Tarjan's components)."""
  edges = _imports(_modules())
  edges.pop('ttm_jax')
  for targets in edges.values():
    targets.discard('ttm_jax')
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in edges.get(node, ()):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      component = []
      while True:
        top = stack.pop()
        on_stack.discard(top)
        component.append(top)
        if top == node:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for node in list(edges):
    if node not in index:
      visit(node)
  assert not cycles, cycles


def test_the_docs_draw_the_same_floors():
  """docs/architecture.md's table of floors names each part at the floor
  this test enforces."""
  with open(ARCHITECTURE, encoding='utf-8') as f:
    text = f.read()
  drawn = {}
  for line in text.splitlines():
    match = re.match(r'\|\s*(\d+)\s*\|(.*)\|', line)
    if match:
      for name in re.findall(r'`([a-z_]+)/?`', match.group(2)):
        drawn[name] = int(match.group(1))
  assert drawn == FLOORS


def test_the_checker_sees_a_function_level_import(tmp_path):
  """The checker can fail: an import inside a function counts."""
  fake = tmp_path / 'ttm_jax'
  (fake / 'models').mkdir(parents=True)
  (fake / '__init__.py').write_text('')
  (fake / 'models' / '__init__.py').write_text('')
  (fake / 'models' / 'x.py').write_text(
      'def f():\n  from ttm_jax.train import loop\n')
  (fake / 'train').mkdir()
  (fake / 'train' / '__init__.py').write_text('')
  (fake / 'train' / 'loop.py').write_text('from ttm_jax.models import x\n')
  edges = _imports(_modules(str(tmp_path)))
  assert 'ttm_jax.train.loop' in edges['ttm_jax.models.x']
  assert 'ttm_jax.models.x' in edges['ttm_jax.train.loop']
