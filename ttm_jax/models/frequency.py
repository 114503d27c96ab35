"""Resolution-prefix tokens: the reference's frequency mapping.

`tsfm_public.toolkit.time_series_preprocessor.DEFAULT_FREQUENCY_MAPPING` and
its `get_frequency_token` lookup (direct, then via the pandas offset name;
unknown frequencies get the out-of-vocabulary token 0, with a warning),
after pandas' aliases are normalised to the mapping's spelling
(`resolution`): the old unit letters GIFT-Eval and GluonTS write ('15T',
'5T', '10S', 'H') and pandas' anchored weekly names ('W-SUN', 'W-THU',
what pandas calls 'W'). Monthly, quarterly and yearly data ('M', 'Q-DEC',
'A-DEC') have no token in the mapping: 0, as in the reference (IBM's
GIFT-Eval pipeline feeds them the weekly token 9 instead). A model's
embedding has `frequency_token_vocab_size` rows; `checked_token` refuses a
token beyond them (the embedding would give NaN forecasts).
"""

from __future__ import annotations

import logging
import re
from typing import Iterator, Optional

from ttm_jax import errors

_LOG = logging.getLogger(__name__)

FREQUENCY_TOKENS = {
    'oov': 0, 'min': 1, '2min': 2, '5min': 3, '10min': 4, '15min': 5,
    '30min': 6, 'h': 7, 'H': 7, 'd': 8, 'D': 8, 'W': 9,
}
# pandas' unit aliases before 2.2 and their names since.
_OLD_UNITS = {'T': 'min', 'S': 's', 'H': 'h', 'L': 'ms', 'U': 'us',
              'N': 'ns'}
_ALIAS = re.compile(r'(\d*)([A-Za-z]+)(-[A-Za-z]{3})?')


def resolution(freq: str) -> str:
  """`freq` in the reference mapping's spelling: an old unit alias renamed
  ('15T' -> '15min', '10S' -> '10s', 'H' -> 'h'), a count of 1 dropped
  ('1h' -> 'h'), a weekly anchor dropped ('W-SUN' -> 'W'); anything else
  as given ('M', 'A-DEC', '2W')."""
  match = _ALIAS.fullmatch(freq.strip())
  if not match:
    return freq
  count, unit, anchor = match.groups()
  unit = _OLD_UNITS.get(unit, unit)
  if unit == 'W':
    anchor = ''
  return f'{"" if count == "1" else count}{unit}{anchor or ""}'


def _spellings(freq: str) -> Iterator[str]:
  """The names the lookup tries in turn: as given, normalised, then the
  pandas offset (or Timedelta) name of the normalised one, normalised."""
  yield freq
  yield resolution(freq)
  import pandas as pd  # pylint: disable=g-import-not-at-top
  for convert in (lambda f: pd.tseries.frequencies.to_offset(f).freqstr,
                  lambda f: pd.tseries.frequencies.to_offset(
                      pd.Timedelta(f)).freqstr):
    try:
      name = convert(resolution(freq))
    except (ValueError, TypeError):
      continue
    yield resolution(name)


def frequency_token(freq: Optional[str], warn: bool = True) -> int:
  """The resolution-prefix token of a frequency, as the reference maps it
  once pandas' aliases are normalised (module docstring); unknown -> 0
  with a warning."""
  if freq:
    for name in _spellings(freq):
      if name in FREQUENCY_TOKENS:
        return FREQUENCY_TOKENS[name]
  if warn:
    _LOG.warning(
        'Frequency %r is not in the resolution-prefix mapping %s: using the '
        'out-of-vocabulary token 0. A model trained with resolution prefix '
        'tuning will forecast poorly (granite-tsfm issue #259).', freq,
        sorted(FREQUENCY_TOKENS))
  return 0


def checked_token(freq: Optional[str], vocab_size: int) -> int:
  """`frequency_token(freq)` for a model whose resolution-prefix embedding
  has `vocab_size` rows; a token without a row is one ConfigError naming
  the frequency, the token and the vocabulary size."""
  token = frequency_token(freq)
  if not 0 <= token < vocab_size:
    raise errors.ConfigError(
        f'Frequency {freq!r} has resolution token {token}, but this model '
        f'embeds {vocab_size} resolution tokens (frequency_token_vocab_size'
        f'={vocab_size}, tokens 0..{vocab_size - 1}): its forecasts would '
        'be NaN. Use data of a resolution it knows, or a model trained '
        f'with frequency_token_vocab_size > {token}.')
  return token
