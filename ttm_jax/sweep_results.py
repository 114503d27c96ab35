"""A sweep's tables and plot from its points' results.json files.

  results.csv / results.md   one row per point: swept fields, seed,
                             parameters, training steps, wall time, and
                             every metric of every stage ('<stage>/<metric>')
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

import numpy as np

from ttm_jax import sweeps

METRICS = ('mse', 'mae', 'wql', 'mase', 'msis', 'coverage_80')


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
      for record in records:
        if 'parameters' in record:
          row.setdefault('parameters', record['parameters'])
        training = record.get('training')
        if training:
          row.setdefault('steps', training['steps'])
        for metric in METRICS:
          if metric in record:
            row[f'{item["name"]}/{metric}'] = record[metric]
    row['seed'] = point.stages[0]['config']['seed']
    row['wall_seconds'] = round(wall, 1)
    rows.append(row)
  return rows


def metric_columns(rows: Sequence[Dict]) -> List[str]:
  columns = []
  for row in rows:
    for key in row:
      if '/' in key and key not in columns:
        columns.append(key)
  return columns


def summarize(rows: Sequence[Dict]) -> List[Dict[str, Any]]:
  """Per group: mean, std (ddof 1) and n of every metric; the change in
  percent against the mean of the baseline group of the group's block."""
  columns = metric_columns(rows)
  groups: Dict[str, List[Dict]] = {}
  for row in rows:
    groups.setdefault(row['group'], []).append(row)
  blocks = {name: members[0].get('block', '')
            for name, members in groups.items()}
  bases = {}
  for name, members in groups.items():
    if any(m['baseline'] for m in members):
      bases.setdefault(blocks[name], name)
  out = []
  for name, members in groups.items():
    entry = {'group': name, 'n': len(members),
             'baseline': bases.get(blocks[name]) == name}
    for column in columns:
      values = np.array([m[column] for m in members if column in m], float)
      if not len(values):
        continue
      entry[column] = (float(values.mean()), float(values.std(ddof=1))
                       if len(values) > 1 else 0.0)
    out.append(entry)
  by_group = {e['group']: e for e in out}
  for entry in out:
    base = bases.get(blocks[entry['group']])
    if base is None:
      continue
    reference = by_group[base]
    entry['change_%'] = {
        c: 100.0 * (entry[c][0] - reference[c][0]) / reference[c][0]
        for c in columns if c in entry and c in reference and reference[c][0]}
  return out


def write(workdir: str, rows: Sequence[Dict], title: str = '') -> str:
  """results.csv, results.md and plot.png; returns the markdown."""
  columns = []
  for row in rows:
    columns += [k for k in row if k not in columns]
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


def _markdown(rows, columns, summary, title) -> str:
  lines = [f'# {title}', ''] if title else []
  lines += ['| ' + ' | '.join(columns) + ' |',
            '|' + '---|' * len(columns)]
  for row in rows:
    lines.append('| ' + ' | '.join(_cell(row.get(c, '')) for c in columns)
                 + ' |')
  metrics = metric_columns(rows)
  lines += ['', '## Summary (mean ± std over seeds)', '',
            '| group | n | ' + ' | '.join(metrics) + ' |',
            '|' + '---|' * (len(metrics) + 2)]
  for entry in summary:
    cells = []
    for metric in metrics:
      if metric not in entry:
        cells.append('')
        continue
      mean, std = entry[metric]
      change = entry.get('change_%', {}).get(metric)
      suffix = (' (baseline)' if entry['baseline'] else
                f' ({change:+.1f}%)' if change is not None else '')
      cells.append(f'{mean:.4f} ± {std:.4f}{suffix}')
    lines.append(f"| {entry['group']} | {entry['n']} | " + ' | '.join(cells)
                 + ' |')
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
