"""A sweep's tables and plot from its points' results.json files.

  results.csv / results.md   one row per point: swept fields, seed,
                             parameters, training steps, wall time, and
                             every stage's metrics ('<stage>/<metric>': the
                             table results the registered metrics declare,
                             metrics.table_results(); a stage's later final
                             evaluations '<stage>/<evaluation>/<metric>')
  summary                    per group (the swept fields but the seed):
                             mean ± std and n, and the change in percent
                             against the baseline group of its block
  plot.png                   bars with error bars per metric, by group
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Dict, List, Sequence

import pandas

from ttm_jax import metrics as metrics_lib
from ttm_jax.workbench import sweeps


def _read(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def collect(workdir: str, points: Sequence[sweeps.Point]) -> List[Dict]:
  """One row per finished point."""
  rows = []
  for point in points:
    folder = os.path.join(workdir, point.name)
    if sweeps.status(folder) != 'done':
      continue
    row = dict(point=point.name, group=point.group,
               baseline=point.baseline, **({'block': point.block}
                                           if point.block else {}), **{
                   k: sweeps.cell_text(v) for k, v in point.swept.items()})
    wall = 0.0
    for item in point.stages:
      stage_dir = os.path.join(folder, item['name'])
      records = _read(os.path.join(stage_dir, 'results.json')) or []
      wall += (_read(os.path.join(stage_dir, 'wall.json')) or {}).get(
          'wall_seconds', 0.0)
      for k, record in enumerate(records):
        # The first evaluation's metrics are '<stage>/<metric>'; another
        # one's '<stage>/<evaluation>/<metric>'.
        prefix = item['name'] if k == 0 else (
            f'{item["name"]}/{record.get("evaluation", k)}')
        if 'parameters' in record:
          row.setdefault('parameters', record['parameters'])
        training = record.get('training')
        if training:
          row.setdefault('steps', training['steps'])
        for result in metrics_lib.table_results():
          if result in record:
            row[f'{prefix}/{result}'] = record[result]
    row['seed'] = point.stages[0]['config']['seed']
    row['wall_seconds'] = round(wall, 1)
    rows.append(row)
  return rows


def metric_columns(rows: Sequence[Dict]) -> List[str]:
  """The '<stage>/<metric>' columns, in order of first appearance."""
  return [c for c in pandas.DataFrame(list(rows)).columns if '/' in c]


def summarize(rows: Sequence[Dict]) -> List[Dict[str, Any]]:
  """Per group: (mean, std) of every metric (std ddof 1; 0 for one value)
  and n; the change in percent against the mean of the baseline group of
  the group's block (the first group of the block holding a baseline
  point)."""
  if not rows:
    return []
  columns = metric_columns(rows)
  frame = pandas.DataFrame(list(rows))
  frame['block'] = frame.get('block', '')
  frame['block'] = frame['block'].fillna('')
  groups = frame.groupby('group', sort=False)
  blocks = groups['block'].first()
  has_baseline = groups['baseline'].any()
  bases = blocks[has_baseline].drop_duplicates()  # group -> its block.
  base_of = pandas.Series(bases.index, index=bases.values)  # block -> group.
  means, counts = groups[columns].mean(), groups[columns].count()
  stds = groups[columns].std(ddof=1).where(counts > 1, 0.0)
  reference = means.reindex(blocks.map(base_of)).set_axis(means.index)
  change = 100.0 * (means - reference) / reference.where(reference != 0)
  out = []
  for name, size in groups.size().items():
    entry = {'group': name, 'n': int(size),
             'baseline': base_of.get(blocks[name]) == name}
    for column in columns:
      if counts.loc[name, column]:
        entry[column] = (float(means.loc[name, column]),
                         float(stds.loc[name, column]))
    if blocks[name] in base_of:
      entry['change_%'] = {c: float(v) for c, v in change.loc[name].items()
                           if not math.isnan(v)}
    out.append(entry)
  return out


def write(workdir: str, rows: Sequence[Dict], title: str = '') -> str:
  """results.csv, results.md and plot.png; returns the markdown."""
  columns = list(pandas.DataFrame(list(rows)).columns)
  with open(os.path.join(workdir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  summary = summarize(rows)
  text = _markdown(rows, columns, summary, title)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(text)
  if rows:
    plot(os.path.join(workdir, 'plot.png'), summary, metric_columns(rows),
         title)
  return text


def _cell(value) -> str:
  if isinstance(value, float):
    return f'{value:.4f}' if abs(value) < 1000 else f'{value:,.0f}'
  return str(value)


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> List[str]:
  return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + [
      '| ' + ' | '.join(cells) + ' |' for cells in body]


def _summary_cell(entry: Dict[str, Any], metric: str) -> str:
  if metric not in entry:
    return ''
  mean, std = entry[metric]
  change = entry.get('change_%', {}).get(metric)
  suffix = (' (baseline)' if entry['baseline'] else
            f' ({change:+.1f}%)' if change is not None else '')
  return f'{mean:.4f} ± {std:.4f}{suffix}'


def _markdown(rows, columns, summary, title) -> str:
  metrics = metric_columns(rows)
  lines = [f'# {title}', ''] if title else []
  lines += _table(columns, [[_cell(row.get(c, '')) for c in columns]
                            for row in rows])
  lines += ['', '## Summary (mean ± std over seeds)', '']
  lines += _table(['group', 'n'] + metrics, [
      [str(e['group']), str(e['n'])] + [_summary_cell(e, m) for m in metrics]
      for e in summary])
  return '\n'.join(lines) + '\n'


def plot(path: str, summary: Sequence[Dict], metrics: Sequence[str],
         title: str = '') -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  count = max(len(metrics), 1)
  fig, axes = plt.subplots(1, count, figsize=(4 * count, 3.6), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    entries = [e for e in summary if metric in e]
    means = [e[metric][0] for e in entries]
    errors = [e[metric][1] for e in entries]
    colors = ['0.6' if e['baseline'] else 'C0' for e in entries]
    ax.bar(range(len(entries)), means, yerr=errors, color=colors, capsize=4)
    ax.set_xticks(range(len(entries)))
    ax.set_xticklabels([e['group'] for e in entries], rotation=30,
                       ha='right', fontsize=7)
    ax.set_title(metric, fontsize=9)
    low = min(m - e for m, e in zip(means, errors)) if means else 0
    high = max(m + e for m, e in zip(means, errors)) if means else 1
    if math.isfinite(low) and high > low:
      ax.set_ylim(max(0.0, low - 0.2 * (high - low)), high + 0.1 * (high - low))
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
