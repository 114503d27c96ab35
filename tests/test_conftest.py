"""The test suite's own rules: what a test needs from outside the repository
(a dev dependency, a file of ../shared) skips on a fresh clone, naming it,
and fails under CI=true; and every test asks for it through conftest."""

import glob
import os
import sys

import pytest

from tests import conftest

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(params=['fresh_clone', 'ci'])
def ci(request, monkeypatch):
  if request.param == 'ci':
    monkeypatch.setenv('CI', 'true')
  else:
    monkeypatch.delenv('CI', raising=False)
  return request.param == 'ci'


def _outcome(ci):
  return pytest.fail.Exception if ci else pytest.skip.Exception


def test_missing_module_skips_or_fails_naming_it(ci):
  with pytest.raises(_outcome(ci)) as info:
    conftest.require_module('no_such_module_for_ttm_tests')
  assert 'no_such_module_for_ttm_tests' in str(info.value)
  assert 'scripts/setup.sh --dev' in str(info.value)


def test_broken_transitive_import_names_the_missing_module(
    ci, tmp_path, monkeypatch):
  """A package installed --no-deps imports fine until it imports what is
  missing: the reason names that module, not only the package."""
  (tmp_path / 'pkg_without_deps').mkdir()
  (tmp_path / 'pkg_without_deps' / '__init__.py').write_text(
      'import absent_dependency_for_ttm_tests\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  with pytest.raises(_outcome(ci)) as info:
    conftest.require_module('pkg_without_deps')
  assert 'pkg_without_deps' in str(info.value)
  assert "it needs 'absent_dependency_for_ttm_tests'" in str(info.value)
  sys.modules.pop('pkg_without_deps', None)


def test_present_module_is_returned(ci):
  assert conftest.require_module('json').dumps([1]) == '[1]'


def test_missing_shared_file_skips_or_fails_naming_it(ci, tmp_path):
  path = str(tmp_path / 'data' / 'ltsf' / 'absent.csv')
  with pytest.raises(_outcome(ci)) as info:
    conftest.require_shared(path, 'download it from the moon')
  assert path in str(info.value)
  assert 'download it from the moon' in str(info.value)
  assert ('CI=true' in str(info.value)) == ci


def test_present_shared_file_is_returned(ci, tmp_path):
  path = tmp_path / 'there.csv'
  path.write_text('x\n')
  assert conftest.require_shared(str(path), 'unused') == str(path)


@pytest.mark.parametrize('value, expected', [
    ('true', True), ('TRUE', True), ('1', True), ('', False),
    ('false', False), ('0', False)])
def test_ci_variable(monkeypatch, value, expected):
  monkeypatch.setenv('CI', value)
  assert conftest.in_ci() == expected


def test_every_optional_dependency_goes_through_conftest():
  """`pytest.importorskip`, `skipif` and `try: import ... except
  ImportError` skip silently under CI; tests use conftest.require_*."""
  offenders = []
  for path in sorted(glob.glob(os.path.join(TESTS, '**', '*.py'),
                               recursive=True)):
    if os.path.basename(path) in ('conftest.py', 'test_conftest.py'):
      continue
    for number, line in enumerate(open(path, encoding='utf-8'), 1):
      if any(word in line for word in ('importorskip', 'skipif(',
                                       'except ImportError',
                                       'except ModuleNotFoundError')):
        offenders.append(f'{os.path.basename(path)}:{number}: '
                         f'{line.strip()}')
  assert not offenders, offenders
