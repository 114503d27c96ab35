"""Resolution-prefix tokens: the reference's frequency mapping.

`tsfm_public.toolkit.time_series_preprocessor.DEFAULT_FREQUENCY_MAPPING` and
its `get_frequency_token` lookup (direct, then via the pandas offset name;
unknown frequencies get the out-of-vocabulary token 0, with a warning).
"""

from __future__ import annotations

import logging
from typing import Optional

_LOG = logging.getLogger(__name__)

FREQUENCY_TOKENS = {
    'oov': 0, 'min': 1, '2min': 2, '5min': 3, '10min': 4, '15min': 5,
    '30min': 6, 'h': 7, 'H': 7, 'd': 8, 'D': 8, 'W': 9,
}


def frequency_token(freq: Optional[str], warn: bool = True) -> int:
  """The resolution-prefix token of a frequency, as the reference maps it
  (direct lookup, then pandas offset string); unknown -> 0 with a warning."""
  if freq in FREQUENCY_TOKENS:
    return FREQUENCY_TOKENS[freq]
  if freq:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    for convert in (lambda f: pd.tseries.frequencies.to_offset(f).freqstr,
                    lambda f: pd.tseries.frequencies.to_offset(
                        pd.Timedelta(f)).freqstr):
      try:
        name = convert(freq)
      except (ValueError, TypeError):
        continue
      for candidate in (name, name.lstrip('1')):
        if candidate in FREQUENCY_TOKENS:
          return FREQUENCY_TOKENS[candidate]
  if warn:
    _LOG.warning(
        'Frequency %r is not in the resolution-prefix mapping %s: using the '
        'out-of-vocabulary token 0. A model trained with resolution prefix '
        'tuning will forecast poorly (granite-tsfm issue #259).', freq,
        sorted(FREQUENCY_TOKENS))
  return 0
