"""What went into a corpus, and into a model pretrained on it.

Each input file (or generator spec) gets a report: its dataset name, file,
sha256, spec, and what the conversion did (rows dropped or merged and why,
the frequency found, values filled, series split or dropped, series and
values written). The corpus folder keeps them all (report.json, report.md);
corpus.json keeps the dataset list (`datasets`); a model pretrained on the
corpus carries the list of the datasets it trained on in its config.json
(`pretraining_data`: names, which the benchmark runner compares with its
tasks' datasets; `pretraining_datasets`: the full entries) and its model
card (README.md).

Dataset names are '<folder>/<file stem>' with the Monash archive's suffixes
dropped ('monash/kdd_cup_2018' for
monash/kdd_cup_2018_dataset_without_missing_values.tsf); generators are
'synthetic/<name>'.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Sequence

REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
SUFFIXES = ('_dataset', '_without_missing_values', '_with_missing_values')
# What corpus.json and a model's config.json keep of each report.
DATASET_FIELDS = ('name', 'source', 'kind', 'spec', 'file', 'sha256', 'freq',
                  'num_series', 'num_values')


def stem(path: str) -> str:
  """A file's name up to its first dot (a corpus source's default name)."""
  return os.path.basename(path).split('.')[0]


def dataset_name(path: str) -> str:
  """'<folder>/<stem>' of a file, the Monash suffixes dropped."""
  name = stem(path)
  for suffix in SUFFIXES:
    name = name.replace(suffix, '')
  folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
  return f'{folder}/{name}'


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def file_report(kind: str, spec: str, source: str, path: str = '',
                name: str = '') -> Dict[str, Any]:
  """A new report of one input: a file (its dataset name and sha256) or,
  without `path`, a generator named `name`."""
  return dict(name=name or dataset_name(path), source=source, kind=kind,
              spec=spec, file=path, sha256=sha256(path) if path else '',
              freq='', series_read=0, num_series=0, num_values=0,
              notes=[])


def datasets(reports: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """The dataset entries (DATASET_FIELDS) of reports, but those of inputs
  skipped as repeats of another's data."""
  return [{k: r.get(k, '') for k in DATASET_FIELDS} for r in reports
          if not r.get('skipped')]


def used(manifest: Dict[str, Any], names: Sequence[str]
         ) -> List[Dict[str, Any]]:
  """The dataset entries of a corpus manifest that feed the sources
  `names` (a DRS copy feeds from its original; a generator's entry names
  its sources joined by '+'). A corpus written before
  datasets were listed gives one entry per source, named as the source."""
  originals = set()
  for source in manifest['sources']:
    if source['name'] in names:
      originals.add(source['drs_of'] or source['name'])
  if 'datasets' not in manifest:
    return [dict(name=s['name'], source=s['name'], kind='', spec=s['spec'],
                 file='', sha256='', freq=s['freq'],
                 num_series=s['num_series'], num_values=s['num_values'])
            for s in manifest['sources'] if s['name'] in originals]
  return [d for d in manifest['datasets']
          if originals & set(d['source'].split('+'))]


def names(entries: Sequence[Dict[str, Any]]) -> List[str]:
  """The sorted, distinct dataset names (config.json `pretraining_data`)."""
  return sorted({e['name'] for e in entries})


def done(report: Dict[str, Any]) -> str:
  """One line: what the conversion did to a file, from its counts."""
  if report.get('skipped'):
    return 'skipped: its data is an earlier source\'s (see the notes)'
  parts = []
  for key, words in (
      ('blank_lines', 'blank lines skipped'),
      ('empty_rows', 'empty rows dropped'),
      ('rows_without_time', 'rows without a time dropped'),
      ('unsorted', 'rows out of time order (sorted)'),
      ('duplicate_times', 'repeated times'),
      ('rows_merged', 'rows merged into a shared step ({duplicates})'),
      ('off_grid', 'times off the grid (moved to the nearest step)'),
      ('missing_steps', 'steps without a row'),
      ('values_trimmed', 'missing steps trimmed at the ends'),
      ('values_filled', 'values interpolated (gaps <= {max_gap} steps)'),
      ('gaps_split', 'longer gaps split a series'),
      ('pieces_dropped', 'pieces under {min_length} steps dropped '
                         '({values_dropped} values)'),
      ('series_all_missing', 'series with no value dropped'),
      ('dropped', 'series too short to write')):
    if report.get(key):
      parts.append(f'{report[key]:,} ' + words.format(**report))
  for key, words in (('columns_text', 'text columns skipped'),
                     ('columns_excluded', 'excluded')):
    if report.get(key):
      parts.append(f'{words}: {", ".join(map(str, report[key]))}')
  return '; '.join(parts) or ('generated' if report['kind'].startswith(
      'synthetic') else 'read as published')


def markdown(reports: Sequence[Dict[str, Any]]) -> str:
  """report.md: a row per input, then the notes."""
  lines = ['| dataset | freq | rows | series in | series written | values '
           'written | what was done |', '|---|---|---|---|---|---|---|']
  for r in reports:
    lines.append(
        f"| {r['name']} | {r['freq'] or '?'} | {r.get('rows', '')} | "
        f"{r.get('series_in', r['series_read'])} | {r['num_series']:,} | "
        f"{r['num_values']:,} | {done(r)} |")
  total = sum(r['num_values'] for r in reports)
  lines.append(f"| **total** | | | | {sum(r['num_series'] for r in reports):,}"
               f' | {total:,} | |')
  notes = [f"- {r['name']}: {note}" for r in reports for note in r['notes']]
  return '\n'.join(lines + ([''] + notes if notes else [])) + '\n'


def write(folder: str, reports: Sequence[Dict[str, Any]]) -> None:
  with open(os.path.join(folder, REPORT_JSON), 'w') as f:
    json.dump(list(reports), f, indent=2)
  with open(os.path.join(folder, REPORT_MD), 'w') as f:
    f.write(markdown(reports))


def model_card(entries: Sequence[Dict[str, Any]],
               title: Optional[str] = None) -> str:
  """The model card's data section: every dataset the model was
  pretrained on, with its file's checksum."""
  lines = [f'# {title}', ''] if title else []
  series = sum(e['num_series'] for e in entries)
  values = sum(e['num_values'] for e in entries)
  lines += ['## Pretraining data', '',
            f'{len(entries)} datasets, {series:,} series, {values:,} values '
            '(before diverse-resolution copies); config.json lists them in '
            '`pretraining_data` (names) and `pretraining_datasets`:', '',
            '| dataset | freq | series | values | file | sha256 |',
            '|---|---|---|---|---|---|']
  for e in entries:
    where = os.path.basename(e['file']) or e['spec']
    lines.append(f"| {e['name']} | {e['freq'] or '?'} | {e['num_series']:,} "
                 f"| {e['num_values']:,} | {where} | {e['sha256'] or '-'} |")
  return '\n'.join(lines) + '\n'
