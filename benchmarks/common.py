"""Where benchmarks find the real files: `../shared` beside the checkout
(override with TTM_SHARED_DIR). Benchmarks, tests and CI point there
explicitly; the library's defaults never do."""

import json
import os

SHARED = os.environ.get(
    'TTM_SHARED_DIR',
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                 'shared'))
R2_CHECKPOINT = os.path.join(SHARED, 'checkpoints', 'fraware__ChronoAPI__root')
LTSF_DIR = os.path.join(SHARED, 'data', 'ltsf')
MONASH_DIR = os.path.join(SHARED, 'data', 'monash')
LIBCITY_DIR = os.path.join(SHARED, 'data', 'libcity')


def report(folder: str, stem: str, text: str, record=None) -> None:
  """Prints a grid's table and writes it to <folder>/<stem>.md, and
  `record` (when given) to <folder>/<stem>.json."""
  print(text, flush=True)
  with open(os.path.join(folder, stem + '.md'), 'w') as f:
    f.write(text + '\n')
  if record is not None:
    with open(os.path.join(folder, stem + '.json'), 'w') as f:
      json.dump(record, f, indent=2)
