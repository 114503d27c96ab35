"""Where benchmarks find the real files: `../shared` beside the checkout
(override with TTM_SHARED_DIR). Benchmarks, tests and CI point there
explicitly; the library's defaults never do."""

import os

SHARED = os.environ.get(
    'TTM_SHARED_DIR',
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                 'shared'))
R2_CHECKPOINT = os.path.join(SHARED, 'checkpoints', 'fraware__ChronoAPI__root')
LTSF_DIR = os.path.join(SHARED, 'data', 'ltsf')
MONASH_DIR = os.path.join(SHARED, 'data', 'monash')
LIBCITY_DIR = os.path.join(SHARED, 'data', 'libcity')
