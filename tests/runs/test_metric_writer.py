"""metrics.jsonl (ttm_jax/runs/metric_writer.py): one line per step,
the metrics of a step merged into it whenever they arrive (also after its
line is written, and by a resumed run into its predecessor's last line);
on resuming from step k, the lines after k (and a line cut by the kill)
move to metrics.jsonl.superseded.jsonl, the lines up to k stay as they
were, and the resumed run's lines follow them; nothing non-finite is
written."""

import json
import math

import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.runs import metric_writer


def _lines(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def _writer(tmp_path):
  return metric_writer.MetricWriter(str(tmp_path), tensorboard=False)


def _metrics(tmp_path):
  return tmp_path / 'metrics.jsonl'


def test_a_steps_metrics_share_one_line_written_when_the_run_moves_on(
    tmp_path):
  writer = _writer(tmp_path)
  writer.write(1, {'train/loss': 0.5})
  writer.write(1, {'val/mse': 0.25})
  assert not _metrics(tmp_path).exists()  # Step 1 may still get metrics.
  writer.write(2, {'train/loss': 0.4})
  assert _lines(_metrics(tmp_path)) == [
      {'step': 1, 'train/loss': 0.5, 'val/mse': 0.25}]
  writer.flush()
  writer.write(2, {'test/mse': 0.3})  # After its line: merged into it.
  writer.close()
  assert _lines(_metrics(tmp_path)) == [
      {'step': 1, 'train/loss': 0.5, 'val/mse': 0.25},
      {'step': 2, 'train/loss': 0.4, 'test/mse': 0.3}]


def test_values_are_written_as_floats(tmp_path):
  writer = _writer(tmp_path)
  writer.write(np.int64(3), {'lr': np.float32(0.5), 'grad_norm': 2})
  writer.close()
  assert _lines(_metrics(tmp_path)) == [
      {'step': 3, 'lr': 0.5, 'grad_norm': 2.0}]


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_never_written(tmp_path, bad):
  writer = _writer(tmp_path)
  writer.write(1, {'train/loss': 0.5})
  with pytest.raises(errors.TrainingDiverged, match='at step 2'):
    writer.write(2, {'train/loss': bad, 'lr': 0.1})
  writer.close()
  assert _lines(_metrics(tmp_path)) == [{'step': 1, 'train/loss': 0.5}]


def _first_run(tmp_path, steps, cut=False):
  """A run that logged `steps` (loss = step / 10), evaluated at step 4,
  and was killed, with its last line cut when `cut`."""
  writer = _writer(tmp_path)
  for step in steps:
    writer.write(step, {'train/loss': step / 10})
    if step == 4:
      writer.write(step, {'val/mse': 0.9})
  writer.flush()
  if cut:
    with open(_metrics(tmp_path), 'a') as f:
      f.write('{"step": 9, "train/lo')


def test_resume_keeps_lines_up_to_its_step_and_supersedes_later_ones(
    tmp_path):
  _first_run(tmp_path, range(1, 9), cut=True)
  resumed = _writer(tmp_path)
  resumed.drop_after(5)  # The checkpoint it resumes from.
  assert _lines(_metrics(tmp_path)) == [
      {'step': s, 'train/loss': s / 10, **({'val/mse': 0.9} if s == 4 else
                                           {})}
      for s in range(1, 6)]
  superseded = (tmp_path / 'metrics.jsonl.superseded.jsonl').read_text()
  assert superseded.splitlines() == [
      json.dumps({'step': s, 'train/loss': s / 10}) for s in (6, 7, 8)] + [
          '{"step": 9, "train/lo']
  assert superseded.endswith('\n')
  for step in range(6, 10):  # Recomputed: other values, one line each.
    resumed.write(step, {'train/loss': step / 100})
  resumed.close()
  rows = _lines(_metrics(tmp_path))
  assert [r['step'] for r in rows] == list(range(1, 10))
  assert [r['train/loss'] for r in rows] == (
      [s / 10 for s in range(1, 6)] + [s / 100 for s in range(6, 10)])


def test_resume_merges_into_its_predecessors_last_line(tmp_path):
  _first_run(tmp_path, range(1, 6))
  resumed = _writer(tmp_path)
  resumed.drop_after(5)  # Nothing later: the file is untouched.
  assert not (tmp_path / 'metrics.jsonl.superseded.jsonl').exists()
  resumed.write(5, {'test/mse': 0.7})  # E.g. the final test at step 5.
  resumed.close()
  rows = _lines(_metrics(tmp_path))
  assert len(rows) == 5
  assert rows[-1] == {'step': 5, 'train/loss': 0.5, 'test/mse': 0.7}
  assert rows[3] == {'step': 4, 'train/loss': 0.4, 'val/mse': 0.9}


def test_a_second_resume_appends_to_the_superseded_lines(tmp_path):
  _first_run(tmp_path, range(1, 7))
  second = _writer(tmp_path)
  second.drop_after(4)
  for step in (5, 6, 7):
    second.write(step, {'train/loss': 1.0})
  second.close()
  third = _writer(tmp_path)
  third.drop_after(5)
  third.write(6, {'train/loss': 2.0})
  third.close()
  superseded = [json.loads(line) for line in (
      tmp_path / 'metrics.jsonl.superseded.jsonl').read_text().splitlines()]
  assert superseded == [{'step': 5, 'train/loss': 0.5},
                        {'step': 6, 'train/loss': 0.6},
                        {'step': 6, 'train/loss': 1.0},
                        {'step': 7, 'train/loss': 1.0}]
  rows = _lines(_metrics(tmp_path))
  assert [(r['step'], r['train/loss']) for r in rows] == [
      (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (5, 1.0), (6, 2.0)]


def test_drop_after_without_a_file_does_nothing(tmp_path):
  writer = _writer(tmp_path)
  writer.drop_after(3)
  assert list(tmp_path.iterdir()) == []
