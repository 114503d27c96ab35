"""Bad input at the entry points, round 3: flags, config arguments, config
and sweep files, corpus sources, sweeps, export and crash consistency.

Through the real entry points (processes, two at a time, forked from one
that has the libraries imported: tests/entry_points.py; as
tests/experiments/test_bad_inputs.py): the exit status, exactly one
`error:` line naming the culprit, no traceback, and nothing written. The pure checks
behind them (config arguments, corpus sources) run in-process.
"""

import json
import os
import signal
import subprocess

import numpy as np
import pandas as pd
import pytest

from configs import common as config_common
from tests import entry_points
from tests.experiments.test_bad_inputs import _assert_one_line_error
from tests.experiments.test_bad_inputs import _run
from tests.experiments.test_bad_inputs import _snapshot
from tests.experiments.test_bad_inputs import DEMO
from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.data import pretrain
from ttm_jax.data.corpus import format as corpus_format
from ttm_jax.data.corpus import sources
from ttm_jax.data.corpus import writing
from ttm_jax.workbench import sweeps

QUICK_SWEEP = ('from configs import demo\n'
               'def get_config(arg=None):\n'
               '  config = demo.get_config("quick=true")\n'
               '  config.plot = config.tensorboard = False\n'
               '  return config\n'
               'def get_sweep(arg=None):\n'
               '  return [{"num_steps": 2, "checkpoint_every_steps": 2, '
               '"eval_every_steps": 2, "_name": "p"}]\n')


def _tsf(path, header, data):
  path.write_bytes(header + b'@attribute series_name string\n@data\n' + data)
  return path


# ----------------------------------------------------------------- files
@pytest.fixture(scope='module')
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp('cli')
  (root / 'syntax.py').write_text('def get_config(arg=None:\n  pass\n')
  (root / 'raises.py').write_text('raise RuntimeError("boom at import")\n')
  (root / 'sweep_syntax.py').write_text('def get_sweep(:\n')
  (root / 'sweep_raises.py').write_text(
      QUICK_SWEEP.replace('return [{', 'return {}["missing"] or [{'))
  (root / 'quick_sweep.py').write_text(QUICK_SWEEP)
  (root / 'a_file').write_text('not a folder')
  held = root / 'held'  # Another checkpoint, not to be overwritten.
  held.mkdir()
  (held / 'config.json').write_text('{"d_model": 8}')
  (held / 'model.safetensors').write_bytes(b'weights')
  bad_run = root / 'bad_run'  # A workdir whose config.json is damaged.
  bad_run.mkdir()
  (bad_run / 'config.json').write_text('{not json')
  hourly = b'@frequency hourly\n'
  values = ','.join(str(v) for v in np.sin(np.arange(300) / 7)).encode()
  _tsf(root / 'inf.tsf', hourly, b'T1:' + values + b'\nT2:1,2,inf,4\n')
  _tsf(root / 'no_freq.tsf', b'@frequency\n', b'T1:1,2\n')
  _tsf(root / 'horizon.tsf', b'@horizon 4.5\n', b'T1:1,2\n')
  _tsf(root / 'word.tsf', hourly, b'T1:1,2,abc,4\n')
  _tsf(root / 'bytes.tsf', hourly, b'T1:1,2,\xff\xfe,4\n')
  rows = 400
  frame = pd.DataFrame({
      'date': pd.date_range('2022-01-01', periods=rows, freq='h'),
      'a': np.sin(np.arange(rows) / 5), 'b': np.cos(np.arange(rows) / 5)})
  frame.to_csv(root / 'wide.csv', index=False)
  with_inf = frame.copy()
  with_inf.loc[41, 'b'] = np.inf
  with_inf.to_csv(root / 'wide_inf.csv', index=False)
  frame.assign(a='north', b='south').to_csv(root / 'text.csv', index=False)
  long = pd.DataFrame({'id': np.repeat(['s1', 's2', 's3'], 200),
                       'value': np.arange(600, dtype=float)})
  long.loc[[250, 260], 'id'] = np.nan
  long.to_csv(root / 'long_nan_id.csv', index=False)
  return root


def _corpus(out, *args):
  return ['experiments.prepare_corpus', '--out', str(out)] + list(args)


# Cases that fail at start-up: (name, args(files, out), status, words).
# `out` is the folder the command would write: it must not appear.
CASES = [
    # Config arguments and config files.
    ('bool_argument', lambda f, w: DEMO[:2] + [
        'configs/demo.py:quick=treu', '--workdir', str(w)], 2,
     r"--config configs/demo.py:quick=treu: config argument quick='treu' "
     r'must be one of true/false/1/0/yes/no'),
    ('int_argument', lambda f, w: DEMO[:2] + [
        'configs/demo.py:quick=true,steps=1e3', '--workdir', str(w)], 2,
     r"config argument steps='1e3' must be an integer"),
    ('float_argument', lambda f, w: [
        'experiments.train', '--config',
        'configs/few_shot.py:fraction=half', '--workdir', str(w)], 2,
     r"config argument fraction='half' must be a number"),
    ('unknown_argument', lambda f, w: DEMO[:2] + [
        'configs/demo.py:quikc=true', '--workdir', str(w)], 2,
     r"Unknown config argument 'quikc'"),
    ('config_syntax', lambda f, w: [
        'experiments.train', '--config', str(f / 'syntax.py'),
        '--workdir', str(w)], 2,
     r'syntax.py: the config file could not be loaded \(SyntaxError: '),
    ('config_raises', lambda f, w: [
        'experiments.evaluate', '--config', str(f / 'raises.py'),
        '--workdir', str(w)], 2,
     r'raises.py: the config file could not be loaded \(RuntimeError: boom '
     r'at import\)'),
    ('config_missing', lambda f, w: [
        'experiments.train', '--config', str(f / 'nowhere.py'),
        '--workdir', str(w)], 2,
     r'nowhere.py: the config file could not be loaded \(OSError: '),
    # Flags.
    ('unknown_flag', lambda f, w: DEMO + ['--workdir', str(w), '--bogus=1'],
     2, r"Unknown command line flag 'bogus'"),
    ('missing_flag', lambda f, w: ['experiments.export', '--workdir',
                                   str(w)], 2, r'--out is required'),
    ('parallel_text', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'quick_sweep.py'),
        '--workdir', str(w), '--parallel=abc'], 2,
     r'--parallel=abc: must be an integer'),
    ('parallel_zero', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'quick_sweep.py'),
        '--workdir', str(w), '--parallel', '0'], 2,
     r'--parallel=0 must be an integer >= 1'),
    ('parallel_negative', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'quick_sweep.py'),
        '--workdir', str(w), '--parallel=-1'], 2,
     r'--parallel=-1 must be an integer >= 1'),
    # Sweep files.
    ('sweep_syntax', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'sweep_syntax.py'),
        '--workdir', str(w)], 2,
     r'Sweep file .*sweep_syntax.py could not be loaded \(SyntaxError: '),
    ('sweep_raises', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'sweep_raises.py'),
        '--workdir', str(w)], 2,
     r"sweep_raises.py: get_sweep\(None\) failed \(KeyError: 'missing'\)"),
    # Output and work folders.
    ('workdir_is_a_file', lambda f, w: DEMO + ['--workdir',
                                               str(f / 'a_file')], 2,
     r'workdir .*a_file is a file, not a folder'),
    ('workdir_under_a_file', lambda f, w: DEMO + [
        '--workdir', str(f / 'a_file' / 'run')], 2,
     r'workdir .*a_file/run: .*a_file is a file, not a folder'),
    ('export_out_is_a_file', lambda f, w: [
        'experiments.export', '--workdir', str(w), '--out',
        str(f / 'a_file')], 2, r'--out .*a_file is a file, not a folder'),
    ('export_over_a_checkpoint', lambda f, w: [
        'experiments.export', '--workdir', str(w), '--out', str(f / 'held')],
     2, r'--out .*held already holds a checkpoint \(config.json, '
     r'model.safetensors\).*--overwrite'),
    ('sweep_folder_is_a_file', lambda f, w: [
        'experiments.sweep', '--config', str(f / 'quick_sweep.py'),
        '--workdir', str(f / 'a_file')], 2,
     r'sweep folder .*a_file is a file, not a folder'),
    ('corpus_out_is_a_file', lambda f, w: _corpus(
        f / 'a_file', '--source', 'synthetic:num_series=2,length=300'), 2,
     r'corpus folder .*a_file is a file, not a folder'),
    # A foreign exception: one line, status 1.
    ('foreign_exception', lambda f, w: [
        'experiments.export', '--workdir', str(f / 'bad_run'), '--out',
        str(w)], 1,
     r'the command stopped on an unexpected error \(JSONDecodeError: '
     r'Expecting property name.*rerun with --verbose for the traceback'),
    # Corpus sources.
    ('tsf_inf', lambda f, w: _corpus(w, '--source', f'monash:{f}/inf.tsf'),
     2, r"inf.tsf:5 \(series 'T2'\): value 3 is 'inf'; values must be "
     r'finite'),
    ('tsf_no_frequency', lambda f, w: _corpus(
        w, '--source', f'monash:{f}/no_freq.tsf'), 2,
     r'no_freq.tsf:1: @frequency has no value'),
    ('tsf_horizon', lambda f, w: _corpus(
        w, '--source', f'monash:{f}/horizon.tsf'), 2,
     r"horizon.tsf:1: @horizon '4.5' is not a whole number"),
    ('tsf_word', lambda f, w: _corpus(w, '--source', f'monash:{f}/word.tsf'),
     2, r"word.tsf:4 \(series 'T1'\): value 3 'abc' is not a number"),
    ('tsf_bytes', lambda f, w: _corpus(
        w, '--source', f'monash:{f}/bytes.tsf'), 2,
     r"bytes.tsf:4 \(series 'T1'\): value 3 .* is not a number"),
    ('csv_inf', lambda f, w: _corpus(
        w, '--source', f'csv:{f}/wide_inf.csv,timestamp=date'), 2,
     r"wide_inf.csv: series 'b' has inf at row 42; values must be finite"),
    ('csv_no_timestamp', lambda f, w: _corpus(
        w, '--source', f'csv:{f}/wide.csv'), 2,
     r"wide.csv: column 'date' holds timestamps .* no timestamp option: "
     r'write csv:.*wide.csv,timestamp=date'),
    ('csv_missing_ids', lambda f, w: _corpus(
        w, '--source', f'csv:{f}/long_nan_id.csv,id=id,value=value'), 2,
     r"long_nan_id.csv: 2 row\(s\) have no 'id' \(rows \[251, 261\]\)"),
    ('csv_unknown_option', lambda f, w: _corpus(
        w, '--source', f'csv:{f}/wide.csv,timestmap=date'), 2,
     r"unknown option 'timestmap' \(known: timestamp, id, value, exclude, "
     r'freq, date_format, tz, duplicates, max_gap, min_length, name\)'),
    ('csv_no_numeric_column', lambda f, w: _corpus(
        w, '--source', f'csv:{f}/wide.csv,timestamp=date', '--source',
        f'csv:{f}/text.csv,timestamp=date'), 2,
     r'text.csv: no numeric column to read as a series'),
    ('csv_missing_file', lambda f, w: _corpus(
        w, '--source', 'synthetic-kernels:num_series=2,length=300',
        '--source', f'csv:{f}/absent.csv,timestamp=date'), 2,
     r'Source csv:.*absent.csv: no such file'),
    ('drs_factor_one', lambda f, w: _corpus(
        w, '--source', 'synthetic:num_series=2,length=300', '--drs', 'h=1'),
     2, r"--drs 'h=1': DRS factor 1 of 'h' must be an integer >= 2"),
    ('fractions_sum_to_one', lambda f, w: _corpus(
        w, '--source', 'synthetic:num_series=2,length=300',
        '--valid_fraction=0.5', '--test_fraction=0.5'), 2,
     r'--valid_fraction=0.5 \+ test_fraction=0.5 = 1 leaves no training '
     r'rows'),
]


@pytest.fixture(scope='module')
def results(files, tmp_path_factory):
  root = tmp_path_factory.mktemp('out')
  outcomes = entry_points.run_batch([make(files, root / name)
                                     for name, make, _, _ in CASES])
  return {name: (outcome, root / name)
          for (name, _, _, _), outcome in zip(CASES, outcomes)}


@pytest.mark.parametrize('name, status, words',
                         [(n, s, w) for n, _, s, w in CASES])
def test_fails_at_start_with_one_line(files, results, name, status, words):
  (rc, out, err), out_dir = results[name]
  _assert_one_line_error(rc, out, err, status, words)
  assert not out_dir.exists() or name == 'foreign_exception'
  assert not [p for p in os.listdir(out_dir.parent)
              if p.startswith(f'.{name}.partial')]  # No staged corpus left.


def test_files_given_as_folders_are_unchanged(files, results):
  del results  # After every case ran.
  assert (files / 'a_file').read_text() == 'not a folder'
  assert (files / 'held' / 'model.safetensors').read_bytes() == b'weights'


def test_verbose_shows_the_traceback(files, tmp_path):
  rc, _, err = _run(['experiments.export', '--workdir',
                     str(files / 'bad_run'), '--out', str(tmp_path / 'o'),
                     '--verbose'])
  assert rc != 0 and 'Traceback' in err and 'JSONDecodeError' in err


# ------------------------------------------------------ pure checks
def test_config_arguments_are_checked_by_type():
  parsed = config_common.parse_arg(
      'quick=YES,steps=7,frac=0.5,name=x', quick=False, steps=1, frac=0.1,
      name='')
  assert (parsed.quick, parsed.steps, parsed.frac, parsed.name) == (
      True, 7, 0.5, 'x')
  for word, value in (('true', True), ('1', True), ('No', False),
                      ('FALSE', False), ('0', False)):
    assert config_common.parse_arg(f'q={word}', q=True).q is value
  for arg, words in (('q=treu', r"q='treu' must be one of true/false"),
                     ('q=', r"q='' must be one of true/false"),
                     ('n=2.5', r"n='2.5' must be an integer"),
                     ('x=nan', r"x='nan' must be a finite number"),
                     ('x=big', r"x='big' must be a number")):
    with pytest.raises(errors.ConfigError, match=words):
      config_common.parse_arg(arg, q=False, n=1, x=0.5)
  with pytest.raises(errors.ConfigError, match=r"quantiles='0.1:x'"):
    config_common.quantile_levels('0.1:x')
  assert checks.integer_text(1)('0') == 'must be an integer >= 1'
  assert checks.from_text(' 3 ', 1) == 3


def test_split_and_drs_checks():
  writing.check_split(corpus_format.SplitRule(0.3, 0.6))
  for rule, words in (((0.6, 0.4), r'= 1 leaves no training rows'),
                      ((-0.1, 0.1), r'valid_fraction=-0.1 must be a number'),
                      ((0.1, 1.0), r'test_fraction=1.0 must be a number')):
    with pytest.raises(errors.ConfigError, match=words):
      writing.check_split(corpus_format.SplitRule(*rule))
  writing.check_drs({'h': [2, 24]})
  for drs in ({'h': [1]}, {'h': [0]}, {'h': [-3]}):
    with pytest.raises(errors.ConfigError, match=r'must be an integer >= 2'):
      writing.check_drs(drs)


def test_source_options_are_checked():
  for spec, words in (
      ('synthetic:num_series=0,length=10', r"num_series='0' must be an "
       r'integer >= 1'),
      ('synthetic:length=10', r'num_series= is required'),
      ('synthetic:num_series=2,length=ten', r"length='ten' must be an "
       'integer'),
      ('csv:x.csv,freq=h,bogus=1', r"unknown option 'bogus'")):
    with pytest.raises(errors.DataError, match=words):
      sources.parse_source(spec)


def test_tsf_values_and_headers(tmp_path):
  good = _tsf(tmp_path / 'g.tsf', b'@frequency hourly\n@horizon 4\n',
              b'T1:1,?,3\n')
  tsf = pretrain.read_tsf(str(good))
  assert tsf.horizon == 4 and tsf.freq == 'h'
  np.testing.assert_array_equal(tsf.series[0], [1, np.nan, 3])
  for header, data, words in (
      (b'@horizon\n', b'T1:1\n', r'g2.tsf:1: @horizon has no value'),
      (b'@missing maybe\n', b'T1:1\n', r"@missing 'maybe': expected true"),
      (b'', b'T1:1,-inf\n', r"g2.tsf:3 \(series 'T1'\): value 2 is '-inf'"),
      (b'', b'T1:1,,2\n', r"value 2 '' is not a number"),
      (b'', b'T1:1,1e\n', r"value 2 '1e' is not a number")):
    with pytest.raises(errors.DataError, match=words):
      pretrain.read_tsf(str(_tsf(tmp_path / 'g2.tsf', header, data)))


def test_a_failed_source_writes_nothing(files, tmp_path):
  out = tmp_path / 'corpus'
  out.mkdir()
  (out / 'notes.txt').write_text('mine')
  preparer = writing.Preparer(str(out))
  preparer.add_spec('synthetic:num_series=2,length=300')
  with pytest.raises(errors.DataError, match='inf at row 42'):
    preparer.add_spec(f'csv:{files}/wide_inf.csv,timestamp=date')
  assert os.listdir(out) == ['notes.txt']
  assert os.listdir(tmp_path) == ['corpus']  # No staging folder left.
  preparer = writing.Preparer(str(out))  # A good one lands beside notes.
  preparer.add_spec(f'csv:{files}/wide.csv,timestamp=date')
  manifest = preparer.close()
  assert manifest['num_series'] == 2
  assert sorted(os.listdir(out)) == ['corpus.json', 'index.npz', 'notes.txt',
                                     'report.json', 'report.md', 'wide']


def test_stage_counts_as_done_only_with_all_outputs(tmp_path):
  config = {'export': True, 'num_steps': 2}
  (tmp_path / 'config.json').write_text(json.dumps(config))
  (tmp_path / 'results.json').write_text('[]')
  assert not sweeps._stage_done(str(tmp_path), config)  # pylint: disable=protected-access
  (tmp_path / 'export').mkdir()
  assert sweeps._stage_done(str(tmp_path), config)  # pylint: disable=protected-access
  assert sweeps._stage_done(str(tmp_path / 'x'), config) is False  # pylint: disable=protected-access


# ------------------------------------------------------------- sweeps
def _sweep_args(files, workdir):
  return ['experiments.sweep', '--config', str(files / 'quick_sweep.py'),
          '--workdir', str(workdir)]


def test_second_sweep_in_a_folder_names_the_holder(files, tmp_path):
  workdir = tmp_path / 'sweep'
  workdir.mkdir()
  holder = subprocess.Popen(['sleep', '60'])
  try:
    (workdir / 'lock').write_text(json.dumps(dict(
        host=os.uname().nodename, pid=holder.pid, started='then',
        argv=['experiments.sweep', 'first'])))
    before = _snapshot(workdir)
    rc, out, err = _run(_sweep_args(files, workdir))
    _assert_one_line_error(rc, out, err, 2,
                           f'in use by another sweep: pid {holder.pid} on '
                           r'host .*experiments.sweep first')
    assert _snapshot(workdir) == before
  finally:
    holder.kill()
    holder.wait()


def test_stage_killed_between_results_and_export_runs_again(files, tmp_path):
  """The state a SIGKILL between a stage's results.json and its export/
  leaves (export/ is renamed into place whole, so it is absent or
  complete): the rerun runs the stage again and finishes the point."""
  workdir = tmp_path / 'sweep'
  rc, out, err = _run(_sweep_args(files, workdir))
  assert rc == 0, (out + err)[-3000:]
  point = workdir / 'p'
  stage = point / 'run'
  assert (stage / 'export' / 'model.safetensors').exists()
  assert not (workdir / 'lock').exists()
  # Killed after results.json, before export/ and done.json.
  subprocess.run(['rm', '-r', str(stage / 'export'),
                  str(point / sweeps.DONE)], check=True)
  rc, out, err = _run(_sweep_args(files, workdir))
  assert rc == 0, (out + err)[-3000:]
  assert 'resumed: 1: p' in out
  assert (stage / 'export' / 'model.safetensors').exists()
  assert (point / sweeps.DONE).exists()
  assert len((stage / 'runs.jsonl').read_text().splitlines()) == 2


# --------------------------------------------------- crash consistency
def _mount_tmpfs(folder):
  folder.mkdir()
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs',
                     str(folder)], capture_output=True).returncode:
    pytest.skip('needs permission to mount a small tmpfs')


def test_read_only_checkpoint_folder_fails_at_start(tmp_path):
  mount = tmp_path / 'ro'
  _mount_tmpfs(mount)
  try:
    (mount / 'checkpoints' / '3').mkdir(parents=True)  # A run to resume.
    subprocess.run(['mount', '-o', 'remount,ro', str(mount)], check=True)
    workdir = tmp_path / 'run'
    rc, out, err = _run(DEMO + ['--workdir', str(workdir),
                                f'--config.checkpoint_dir={mount}'],
                        timeout=120)
    _assert_one_line_error(
        rc, out, err, 2, f'checkpoint folder {mount}/checkpoints: cannot '
        f'write in {mount}/checkpoints \\(Read-only file system\\)')
    assert not workdir.exists()
  finally:
    subprocess.run(['umount', str(mount)], check=False)


def test_sigkill_during_final_test_keeps_the_checkpointed_metrics(tmp_path):
  workdir = tmp_path / 'run'
  args = DEMO + ['--workdir', str(workdir), '--config.num_steps=6',
                 '--config.log_every_steps=3']
  process = _run(args, wait=False)
  for line in process.stdout:  # Printed once the last checkpoint is saved.
    if line.startswith('Testing the best model'):
      os.kill(process.pid, signal.SIGKILL)
      break
  process.communicate()
  assert process.returncode == -signal.SIGKILL
  assert not (workdir / 'results.json').exists()  # Killed in the test.
  lines = [json.loads(l) for l in
           (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines] == [1, 3, 6]
  assert 'train/loss' in lines[-1]
  assert 6 in [int(n) for n in os.listdir(workdir / 'checkpoints')
               if n.isdigit()]
  rc, out, err = _run(args)  # Resumes at 6 and only tests.
  assert rc == 0, (out + err)[-3000:]
  lines = [json.loads(l) for l in
           (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [l['step'] for l in lines] == [1, 3, 6]  # One line per step,
  assert 'train/loss' in lines[-1]  # the train metrics kept and
  assert any(k.startswith('test/') for k in lines[-1])  # the test's added.
