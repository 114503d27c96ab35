r"""The commands written in README.md and docs/ are checked against the code.

Every `python -m experiments.<name> ...` in README.md or docs/**/*.md
(fenced code blocks and inline code) must:

  (a) name an entry point that exists, `experiments/<name>.py`;
  (b) use only flags that entry point defines (absl; `--noflag` for a
      boolean);
  (c) for `--config FILE[:ARGS]`, name a config file that exists and whose
      `get_config` accepts every key of ARGS (`configs/common.py
      parse_arg` refuses unknown keys);
  (d) with a config-file `--config` flag, name in every
      `--config.<dotted.path>=...` override a field of that config (a key
      of the built config, a TTMConfig field under `model.arch` and
      `model.overrides`, an evaluator field under `evals.<name>`).

  (e) for a benchmark config (`configs/benchmarks/*.py`), build a config
      that `ttm_jax.suites.config.resolve` accepts: its arguments
      together (a baseline with a fine-tune is refused), with the free
      text of paths, ids and task names (BENCHMARK_FREE_TEXT) not judged.

A renamed flag, config argument or field then fails here, naming the doc,
its line and the bad word, not a reader. A dated result note is a record of
what was run that day and is never edited (a new note supersedes it): its
commands of an entry point whose interface changed after it
(INTERFACE_CHANGED) are not checked.

The notation the docs use: `\` continuations; `[optional]` parts (kept);
`{a,b}` alternatives (each checked); `a|b` values (the first is used to
build the config); `...` (skipped); shell variables set earlier in the same
block (`RUN=".venv/bin/python -m experiments.benchmark ..."`, then `$RUN
--adapt`); other `$VARS` and capitalised placeholders (W, C, CORPUS) as
values; `<name>` placeholders in paths (not checked past them).

The checks run in one subprocess (`python -m tests.test_docs`, which
prints every doc's problems as JSON): it imports the heavy libraries once
and forks a child per entry point, so each entry point's flags are its
own; the configs are built in the subprocess itself.
"""

import collections
import dataclasses
import difflib
import glob
import json
import os
import re
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = re.compile(r'(?:^|\s)-m\s+experiments\.([A-Za-z_]\w*)')
FENCE = re.compile(r'^\s*(```|~~~)')
INLINE = re.compile(r'`([^`]+)`')
VARIABLE = re.compile(r'\$\{(\w+)\}|\$(\w+)')
BRACES = re.compile(r'\{([^{}\s]*,[^{}\s]*)\}')
SEPARATORS = ('&&', '||', ';', '|', '>', '>>', '<', '2>', '&')
CONFIG_SPEC = re.compile(r'^(?P<file>[^:]+?\.py)(?::(?P<arg>.*))?$')
PLACEHOLDER = re.compile(r'^[A-Z][A-Z0-9_]*$')
# Entry point -> the day its interface changed (the benchmark runner's
# flags became config files on 2026-12-07): result notes dated before it
# give its commands as they were run then.
INTERFACE_CHANGED = {'benchmark': '2026-12-07'}
NOTE = re.compile(r'^docs/results/(\d{4}-\d{2}-\d{2})-')
# Benchmark config arguments whose values are free text (paths, hub ids,
# task and dataset names, links): not judged when the config is resolved.
BENCHMARK_FREE_TEXT = {'checkpoint': 'C', 'revision': '', 'data_dir': 'D',
                       'tasks': '', 'pretrained_on': '', 'org': '',
                       'code_link': '', 'model_link': ''}


def doc_files() -> List[str]:
  """README.md and every Markdown file under docs/, relative to ROOT."""
  found = [os.path.relpath(p, ROOT) for p in glob.glob(
      os.path.join(ROOT, 'docs', '**', '*.md'), recursive=True)]
  return ['README.md'] + sorted(found)


def is_record(command: 'Command') -> bool:
  """Whether `command` is in a result note dated before its entry point's
  interface changed (INTERFACE_CHANGED): a record of what was run then,
  not checked."""
  found = NOTE.match(command.doc.replace(os.sep, '/'))
  changed = INTERFACE_CHANGED.get(command.entry)
  return bool(found and changed) and found.group(1) < changed


# --------------------------------------------------------------- reading
@dataclasses.dataclass
class Command:
  """One `python -m experiments.<entry>` command of a doc."""
  doc: str
  line: int
  entry: str
  tokens: List[str]  # After the entry point's name.

  def where(self) -> str:
    return f'{self.doc}:{self.line}: experiments.{self.entry}'


def _expand_braces(text: str) -> List[str]:
  """'a {x,y} b' -> ['a x b', 'a y b'] (as bash; at most 32 variants)."""
  found = BRACES.search(text)
  if not found:
    return [text]
  out = []
  for choice in found.group(1).split(','):
    out += _expand_braces(text[:found.start()] + choice + text[found.end():])
  return out[:32]


def _strip_comment(text: str) -> str:
  return re.split(r'(?:^|\s)#', text, maxsplit=1)[0]


def _substitute(text: str, env: Dict[str, str]) -> str:
  return VARIABLE.sub(
      lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def _tokens(text: str) -> List[str]:
  """Shell words, tolerant of the docs' notation (unbalanced quotes of a
  command quoted across lines, `[optional]` brackets)."""
  text = re.sub(r'(?<=\S)\[[^\]\s]*\]', '', text)  # X.py[:args] -> X.py
  try:
    words = shlex.split(text)
  except ValueError:
    words = [w.strip('"\'') for w in text.split()]
  words = [w.lstrip('[').rstrip(']') for w in words]
  return [w for w in words if w]


def _commands_in(text: str, doc: str, line: int) -> List[Command]:
  """The experiments commands of one shell statement (with alternatives)."""
  out = []
  for variant in _expand_braces(text):
    words = _tokens(variant)
    for k, word in enumerate(words[:-1]):
      found = re.fullmatch(r'experiments\.([A-Za-z_]\w*)', words[k + 1])
      if word == '-m' and found:
        rest = []
        for w in words[k + 2:]:
          if w in SEPARATORS:
            break
          rest.append(w)
        out.append(Command(doc, line, found.group(1), rest))
  return out


def _logical_lines(lines: List[Tuple[int, str]]):
  """(first line number, text) with `\` continuations joined."""
  pending, start = '', None
  for number, text in lines:
    if start is None:
      start = number
    if text.rstrip().endswith('\\'):
      pending += text.rstrip()[:-1] + ' '
      continue
    yield start, pending + text
    pending, start = '', None
  if pending:
    yield start, pending


def _block_commands(doc: str, lines: List[Tuple[int, str]]) -> List[Command]:
  """A fenced block as a shell script: assignments, then commands."""
  env, out = {}, []
  for number, text in _logical_lines(lines):
    for statement in _strip_comment(text).split(';'):
      statement = _substitute(statement, env).strip()
      if not statement:
        continue
      assignment = re.match(r'^(\w+)=', statement)
      if assignment:
        words = _tokens(statement)
        if len(words) == 1:  # NAME=value (not an env prefix of a command).
          env[assignment.group(1)] = words[0].split('=', 1)[1]
          continue
      if COMMAND.search(statement):
        out += _commands_in(statement, doc, number)
  return out


def read_commands(doc: str) -> List[Command]:
  """Every experiments command of `doc`, fenced or inline."""
  with open(os.path.join(ROOT, doc)) as f:
    lines = f.read().splitlines()
  out, block, prose = [], None, []

  def flush_prose():
    text = '\n'.join(t for _, t in prose)
    for span in INLINE.finditer(text):
      if COMMAND.search(span.group(1)):
        number = prose[0][0] + text[:span.start()].count('\n')
        out.extend(_commands_in(span.group(1).replace('\n', ' '), doc,
                                number))
    prose.clear()

  for number, text in enumerate(lines, 1):
    if FENCE.match(text):
      if block is None:
        flush_prose()
        block = []
      else:
        out.extend(_block_commands(doc, block))
        block = None
    elif block is not None:
      block.append((number, text))
    elif text.strip():
      prose.append((number, text))
    else:
      flush_prose()
  flush_prose()
  return out


# ------------------------------------------------------------- analysing
@dataclasses.dataclass
class Parsed:
  """What one command asks of its entry point and config."""
  flags: List[str]
  config: Optional[str]  # The --config value, if any.
  overrides: List[str]  # Dotted paths after --config.
  elided: bool  # Holds `...`: flags may be missing.


def parse(command: Command, flags: Dict[str, Dict[str, bool]]) -> Parsed:
  """Splits the words after the entry point into flags, the config spec
  and the config overrides (`flags`: the entry point's, name -> info)."""
  parsed = Parsed([], None, [], False)
  words, k = command.tokens, 0
  while k < len(words):
    word = words[k]
    k += 1
    if word == '...':
      parsed.elided = True
      continue
    if not word.startswith('--') or word == '--':
      continue
    name, equals, value = word[2:].partition('=')
    if name == 'config' and 'config' in flags:
      if not equals and k < len(words):
        value, k = words[k], k + 1
      parsed.config = value
    elif name.startswith('config.') and flags.get('config', {}).get(
        'config_file'):
      parsed.overrides.append(name[len('config.'):])
    else:
      parsed.flags.append(name)
      info = flags.get(name) or {}
      if not equals and not info.get('bool') and k < len(words) and (
          not words[k].startswith('--')):
        k += 1  # `--flag value`.
  return parsed


def flag_problems(parsed: Parsed, flags) -> List[str]:
  out = []
  for name in parsed.flags:
    if name in flags:
      continue
    if name.startswith('no') and flags.get(name[2:], {}).get('bool'):
      continue
    close = difflib.get_close_matches(name, list(flags), n=2)
    hint = f' (did you mean {", ".join("--" + c for c in close)}?)' if (
        close) else ''
    out.append(f'--{name} is not a flag of this entry point{hint}')
  return out


def config_request(parsed: Parsed) -> Tuple[Optional[dict], List[str]]:
  """The config check to run (None when there is nothing to check), and
  the problems found without building the config."""
  if parsed.config is None:
    if parsed.overrides and not parsed.elided:
      return None, ['--config.<field> overrides without --config']
    return None, []
  spec = CONFIG_SPEC.match(parsed.config)
  if not spec:
    return None, [f'--config {parsed.config!r} is not FILE.py[:ARGS]']
  path = spec.group('file')
  stem = os.path.basename(path)[:-3]
  if '<' in path or '$' in path or PLACEHOLDER.match(stem):
    return None, []  # A placeholder file: nothing to check.
  if not os.path.isfile(os.path.join(ROOT, path)):
    return None, [f'--config {path}: no such file']
  items = []
  for item in (spec.group('arg') or '').split(','):
    key, equals, value = item.partition('=')
    if equals and key and '$' not in key:
      items.append([key, value.split('|')[0]])
  return dict(file=path, items=items, overrides=parsed.overrides), []


def _literal(value: str) -> bool:
  return not ('$' in value or '<' in value or '...' in value
              or PLACEHOLDER.match(value))


# ------------------------------------------------- the helper subprocess
def _entry_flags(entry: str) -> dict:
  """The flags `experiments.<entry>` defines (run in a forked child)."""
  import importlib  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  importlib.import_module(f'experiments.{entry}')
  return {name: dict(bool=bool(flags.FLAGS[name].boolean),
                     config_file=type(flags.FLAGS[name]).__name__ ==
                     '_ConfigFlag')
          for name in flags.FLAGS}


def _in_child(function, *args):
  """`function(*args)` in a forked child: its JSON result, or an error."""
  read, write = os.pipe()
  pid = os.fork()
  if pid == 0:  # The child.
    os.close(read)
    try:
      out = dict(value=function(*args))
    except BaseException as e:  # pylint: disable=broad-except
      out = dict(error=f'{type(e).__name__}: {e}')
    with os.fdopen(write, 'w') as f:
      json.dump(out, f)
    os._exit(0)  # pylint: disable=protected-access
  os.close(write)
  with os.fdopen(read) as f:
    text = f.read()
  os.waitpid(pid, 0)
  return json.loads(text) if text else dict(error='the child died')


def _path_problem(config, path: str) -> Optional[str]:
  """None when `config.<path>` names a field of `config`, else why not."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from ttm_jax import evaluators  # pylint: disable=g-import-not-at-top
  from ttm_jax.models import config as config_lib  # pylint: disable=g-import-not-at-top
  parts, node = path.split('.'), config
  for k, part in enumerate(parts):
    if '<' in part or '$' in part:
      return None  # A placeholder: nothing past it to check.
    if isinstance(node, (dict, ml_collections.ConfigDict)) and part in node:
      node = node[part]
      continue
    prefix, rest = '.'.join(parts[:k]), parts[k:]
    known = list(node.keys()) if isinstance(
        node, (dict, ml_collections.ConfigDict)) else []
    if prefix in ('model.arch', 'model.overrides') and len(rest) == 1:
      known = config_lib.TTMConfig.field_names()
    elif len(parts) == 3 and k == 2 and parts[0] == 'evals':
      known = evaluators.resolve_spec(parts[1], node)
    if len(rest) == 1 and part in known:
      return None
    close = difflib.get_close_matches(part, list(known), n=2)
    hint = f' (did you mean {close}?)' if close else ''
    return (f'--config.{path}: config.{prefix or "<root>"} has no field '
            f'{part!r}{hint}')
  return None


def _config_problems(request: dict) -> List[str]:
  """Builds the config of one request, checking its arguments and
  overrides (in the helper process)."""
  import importlib  # pylint: disable=g-import-not-at-top
  from configs import common  # pylint: disable=g-import-not-at-top
  module = importlib.import_module(
      request['file'][:-3].replace(os.sep, '.').replace('/', '.'))
  keys, parse_arg = [], common.parse_arg

  def spy(arg, **defaults):
    keys.append(sorted(defaults))
    return parse_arg(arg, **defaults)

  def build(items):
    del keys[:]
    return module.get_config(','.join(f'{k}={v}' for k, v in items) or None)

  items, problems, config, error = request['items'], [], None, None
  common.parse_arg = spy
  try:
    try:
      config = build(items)
    except Exception as e:  # pylint: disable=broad-except
      error = f'{type(e).__name__}: {e}'
    known = keys[0] if keys else None
    for key, _ in items:
      if known is not None and key not in known:
        close = difflib.get_close_matches(key, known, n=2)
        hint = f' (did you mean {close}?)' if close else ''
        problems.append(f'{request["file"]}: unknown config argument '
                        f'{key!r}{hint}')
    if error and not problems and all(_literal(v) for _, v in items):
      problems.append(f'get_config({request["file"]}) refuses the '
                      f'arguments: {error}')
    if config is None:  # Placeholder values: build with the literal ones.
      for subset in ([(k, v) for k, v in items if _literal(v)
                      and (known is None or k in known)], []):
        try:
          config = build(subset)
          break
        except Exception as e:  # pylint: disable=broad-except
          error = f'{type(e).__name__}: {e}'
      else:
        problems.append(f'get_config({request["file"]}) fails: {error}')
  finally:
    common.parse_arg = parse_arg
  if config is not None:
    for path in request['overrides']:
      problem = _path_problem(config, path)
      if problem:
        problems.append(problem)
  if config is not None and not problems and request['file'].startswith(
      'configs/benchmarks/'):
    problems += _benchmark_problems(module, items)
  return problems


def _benchmark_problems(module, items) -> List[str]:
  """(e): the benchmark config of `items` resolved (free-text values
  replaced; not judged when another value is a placeholder)."""
  from ttm_jax import errors  # pylint: disable=g-import-not-at-top
  from ttm_jax.suites import config as suites_config  # pylint: disable=g-import-not-at-top
  given = [(k, BENCHMARK_FREE_TEXT.get(k, v)) for k, v in items]
  if not all(_literal(v) or k in BENCHMARK_FREE_TEXT for k, v in given):
    return []
  try:
    suites_config.resolve(module.get_config(
        ','.join(f'{k}={v}' for k, v in given) or None))
  except errors.ConfigError as e:
    return [f'the benchmark config is refused: {e}']
  return []


def check(commands: Dict[str, List[Command]]) -> Dict[str, List[str]]:
  """The problems of every doc's commands (in the helper process)."""
  entries = sorted({c.entry for cs in commands.values() for c in cs
                    if os.path.isfile(os.path.join(
                        ROOT, 'experiments', f'{c.entry}.py'))})
  flags = {entry: _in_child(_entry_flags, entry) for entry in entries}
  problems, answers = collections.defaultdict(list), {}
  for doc, found in commands.items():
    for command in found:
      where = command.where()
      if command.entry not in flags:
        problems[doc].append(f'{where}: no experiments/{command.entry}.py')
        continue
      if 'error' in flags[command.entry]:
        problems[doc].append(f'{where}: experiments/{command.entry}.py does '
                             f'not import: {flags[command.entry]["error"]}')
        continue
      entry_flags = flags[command.entry]['value']
      parsed = parse(command, entry_flags)
      request, early = config_request(parsed)
      found_now = flag_problems(parsed, entry_flags) + early
      if request is not None:
        key = json.dumps(request, sort_keys=True)
        if key not in answers:
          answers[key] = _config_problems(request)
        found_now += answers[key]
      problems[doc] += [f'{where}: {p}' for p in found_now]
  return dict(problems)


def _helper():
  """Checks every doc's commands; writes {doc: [problem, ...]} as JSON."""
  sys.path.insert(0, ROOT)
  os.chdir(ROOT)
  # The heavy libraries once, before the forks (importing starts no
  # backend); each child imports its entry point (and experiments.common).
  import jax  # pylint: disable=g-import-not-at-top,unused-import
  import ml_collections  # pylint: disable=g-import-not-at-top,unused-import
  import ttm_jax  # pylint: disable=g-import-not-at-top,unused-import
  from ttm_jax import train  # pylint: disable=g-import-not-at-top,unused-import
  commands = {doc: [c for c in read_commands(doc) if not is_record(c)]
              for doc in doc_files()}
  json.dump(check(commands), sys.stdout)


# ----------------------------------------------------------------- tests
@pytest.fixture(scope='module')
def problems():
  """Every doc's problems, from one helper process (`python -m
  tests.test_docs`)."""
  out = subprocess.run([sys.executable, '-m', 'tests.test_docs'],
                       capture_output=True, text=True, cwd=ROOT,
                       timeout=300, check=False)
  if out.returncode:
    pytest.fail(f'the docs helper failed:\n{out.stderr[-3000:]}')
  return json.loads(out.stdout)


def test_the_docs_hold_commands():
  """The reader finds the commands (a broken reader would pass anything)."""
  commands = {doc: read_commands(doc) for doc in doc_files()}
  count = collections.Counter(c.entry for cs in commands.values() for c in cs)
  assert sum(count.values()) >= 50, count
  for entry in ('train', 'evaluate', 'forecast', 'benchmark', 'sweep',
                'prepare_corpus', 'paper_table', 'export'):
    assert count[entry], f'no experiments.{entry} command read: {count}'


@pytest.mark.parametrize('doc', doc_files())
def test_commands_in_doc(problems, doc):
  """Each command of `doc`: entry point, flags, config arguments and
  overrides as the code defines them."""
  if problems.get(doc):
    pytest.fail('\n'.join(problems[doc]), pytrace=False)


def test_reader_notation():
  """Continuations, variables, brackets, alternatives and inline spans."""
  lines = ['RUN=".venv/bin/python -m experiments.benchmark --suite x"',
           '$RUN --adapt [--recipe backtest_select] \\',
           '    --select_mode {select,blend} --workdir W  # a comment',
           'A=x=1; .venv/bin/python -m experiments.train --config c.py:$A']
  found = _block_commands('doc.md', list(enumerate(lines, 1)))
  assert [(c.line, c.entry) for c in found] == [
      (2, 'benchmark'), (2, 'benchmark'), (4, 'train')]
  assert found[0].tokens == ['--suite', 'x', '--adapt', '--recipe',
                             'backtest_select', '--select_mode', 'select',
                             '--workdir', 'W']
  assert found[1].tokens[6] == 'blend'
  assert found[2].tokens == ['--config', 'c.py:x=1']
  spans = _commands_in('python -m experiments.sweep --config X.py[:args]',
                       'doc.md', 1)
  assert spans[0].tokens == ['--config', 'X.py']
  flags = dict(config=dict(bool=False, config_file=True),
               finetune=dict(bool=True, config_file=False),
               workdir=dict(bool=False, config_file=False))
  parsed = parse(Command('d', 1, 'train', [
      '--config', 'configs/few_shot.py:data=etth1', '--nofinetune',
      '--config.seed=4', '--workdir', 'W', '--wrokdir=V', '...']), flags)
  assert parsed.config == 'configs/few_shot.py:data=etth1'
  assert parsed.overrides == ['seed'] and parsed.elided
  assert flag_problems(parsed, flags) == [
      '--wrokdir is not a flag of this entry point (did you mean '
      '--workdir?)']



def test_benchmark_configs_and_records():
  """(e): a benchmark config's arguments are resolved together (free text
  and placeholders aside); an old note's benchmark command is a record,
  its train command is not."""
  def request(**items):
    return dict(file='configs/benchmarks/chronos_ii.py', overrides=[],
                items=[[k, v] for k, v in items.items()])
  assert _config_problems(request(checkpoint='C', data_dir='D',
                                  tasks='a+b', quantiles='point')) == []
  [problem] = _config_problems(request(baseline='seasonal_naive',
                                       finetune='true'))
  assert "config.baseline='seasonal_naive' scores a baseline alone" in (
      problem)
  assert _config_problems(request(checkpoint='C', recipe='R')) == []
  old = 'docs/results/2026-12-02-x.md'
  assert is_record(Command(old, 1, 'benchmark', []))
  assert not is_record(Command(old, 1, 'train', []))
  assert not is_record(Command('docs/results/2026-12-07-x.md', 1,
                               'benchmark', []))
  assert not is_record(Command('docs/benchmarks.md', 1, 'benchmark', []))


if __name__ == '__main__':
  _helper()
