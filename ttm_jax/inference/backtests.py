"""Rolling-origin backtests inside histories: the last `windows` forecast
origins of each history, `horizon` apart and ending at its end, each
forecast from everything before it. The forecasting API's
`ttm_jax.backtest` (`evaluators.backtest`), the in-sample intervals
(`forecaster.insample_scale`) and the backtest choice (`select`) cut
their windows here."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import errors

Request = Tuple[int, int]  # (series, origin): forecast from values[:origin].
SHORT = ('skip', 'error')


def origins(lengths: Sequence[int], horizon: int, windows: int,
            min_history: int = 1, short: str = 'skip',
            names: Optional[Sequence[str]] = None) -> List[Request]:
  """(series, origin) of the last `windows` windows of each series, oldest
  first. An origin leaving fewer than `min_history` values before it is
  left out (short='skip'), or an error naming the first such series
  (short='error'; by `names`, else position)."""
  if short not in SHORT:
    raise ValueError(f'short={short!r}: one of {SHORT}.')
  requests = []
  for i, length in enumerate(lengths):
    for k in range(windows, 0, -1):
      origin = length - horizon * k
      if origin >= min_history:
        requests.append((i, origin))
      elif short == 'error':
        name = str(names[i]) if names is not None else f'series {i}'
        raise errors.DataError(
            f'{name[:1].upper() + name[1:]} is too short for {windows} '
            f'backtest windows of {horizon} steps ({length} rows; needs at '
            f'least {min_history + horizon * windows}).')
  return requests


def cut(series: Sequence[np.ndarray], requests: Sequence[Request],
        horizon: int) -> Tuple[np.ndarray, List[np.ndarray]]:
  """(truth [r, h, ...], histories) of the requests: each window's values
  and everything before its origin."""
  return (np.stack([series[i][o:o + horizon] for i, o in requests]),
          [series[i][:o] for i, o in requests])
