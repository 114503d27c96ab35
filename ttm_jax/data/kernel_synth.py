"""KernelSynth-style synthetic series: samples of Gaussian processes whose
kernels are random compositions from a bank (the idea of Chronos'
KernelSynth, Ansari et al. 2024, Sec. 4.2; an independent implementation).

A series: J ~ U{1, ..., max_kernels} kernels drawn from the bank (drawn
again when all are constant: a flat series), combined left to right, each
step by + or * with probability 1/2, then sampled.

The bank (tau: a lag in steps; for the length-relative kernels, x = t / (L -
1) in [0, 1] as KernelSynth's, so their shapes do not depend on L):

  kernel              k                                 parameters   share
  periodic            exp(-2 sin^2(pi tau / P) / l^2)   P: PERIODS[freq],
                                                        l in 0.5, 1, 2  0.40
  RBF                 exp(-dx^2 / 2 l^2)                l in 0.1, 1, 10  0.15
  rational quadratic  (1 + dx^2 / 2 a)^-a               a in 0.1, 1, 10  0.10
  linear              s^2 + x x'                        s in 0, 1, 10   0.15
  white noise         v [tau = 0]                       v in 0.1, 1     0.10
  constant            1                                                0.10

The periods match the frequency (PERIODS: a day and a week for sub-daily
data, a week and a year for daily data, a year for weekly, monthly and
quarterly). Yearly data has no seasonal period: its kernels are drawn from
the rest of the bank, the shares renormalised.

Sampling, cheap whatever the length (KernelSynth draws exact samples of
1024 points with a Cholesky factor; a series of 100k steps cannot):
  - periodic: exact, through the kernel's Fourier series,
    exp(-2 sin^2(pi tau / P) / l^2) = sum_k c_k cos(2 pi k tau / P),
    c_0 = e^-z I_0(z), c_k = 2 e^-z I_k(z), z = 1 / l^2 (I_k: modified
    Bessel functions), so f(t) = sum_k sqrt(c_k) (a_k cos(2 pi k t / P) +
    b_k sin(2 pi k t / P)) with a, b ~ N(0, 1), harmonics up to a remaining
    weight of 1e-6: O(L K) for any P, even 365.25 (a whole P: one cycle
    computed, then tiled).
  - RBF, rational quadratic: exact on a grid of at most 1024 points (the
    resolution KernelSynth samples them at; Cholesky factor cached per
    kernel and grid), linearly interpolated between them.
  - linear, white noise, constant: exact.
  - +: independent samples added (exact: the covariance of the sum kernel).
    *: independent samples multiplied: the covariance of the product
    kernel (second-order exact), but not Gaussian; an exact sample would
    need a factor of the whole L x L covariance.

Series i of a seed draws from `np.random.default_rng((seed, i))`: it is the
same whatever the number of series asked for, and a source streams them
one at a time.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Tuple

import numpy as np

from ttm_jax import errors

# Seasonal periods (in steps) per frequency: daily and weekly cycles below a
# day, weekly and yearly for days, yearly above.
PERIODS = {
    'min': (1440, 10080),
    '5min': (288, 2016),
    '10min': (144, 1008),
    '15min': (96, 672),
    '30min': (48, 336),
    'h': (24, 168),
    'D': (7, 365.25),
    'W': (52.1775,),
    'MS': (12,),
    'QS': (4,),
    'YS': (),
}
ALIASES = {'H': 'h', 'd': 'D', 'T': 'min', '1h': 'h', '1D': 'D', 'M': 'MS',
           'ME': 'MS', 'Q': 'QS', 'QE': 'QS', 'Y': 'YS', 'YE': 'YS',
           'A': 'YS', 'AS': 'YS'}
KINDS = ('periodic', 'rbf', 'rational_quadratic', 'linear', 'white',
         'constant')
SHARES = (0.40, 0.15, 0.10, 0.15, 0.10, 0.10)
PARAMETERS = {
    'periodic': (0.5, 1.0, 2.0),  # Length scale l.
    'rbf': (0.1, 1.0, 10.0),  # Length scale, in units of the series.
    'rational_quadratic': (0.1, 1.0, 10.0),  # alpha (length scale 1).
    'linear': (0.0, 1.0, 10.0),  # sigma_0.
    'white': (0.1, 1.0),  # Noise variance.
    'constant': (1.0,),
}
GRID_POINTS = 1024
MAX_HARMONICS = 64  # Enough for l >= 0.5 (z = 4 needs 14).
MAX_KERNELS = 5
# The most a series may ask for: it is made whole in memory (about 64
# bytes a step at the peak, 640 MB at the limit), and each of its kernels
# is a pass over it.
LENGTH_LIMIT = 10_000_000
KERNELS_LIMIT = 64


def check_request(length: int, max_kernels: int = MAX_KERNELS) -> None:
  """DataError naming a length or kernel count past the limits
  (LENGTH_LIMIT, KERNELS_LIMIT), before any work."""
  if length > LENGTH_LIMIT:
    raise errors.DataError(
        f'length={length:,} is over the limit of {LENGTH_LIMIT:,} steps a '
        'series (a series is made whole in memory, about 64 bytes a step: '
        f'{64 * length / 2**30:,.0f} GiB here); ask for shorter series '
        '(more of them).')
  if max_kernels > KERNELS_LIMIT:
    raise errors.DataError(
        f'max_kernels={max_kernels:,} is over the limit of {KERNELS_LIMIT} '
        '(each kernel is a pass over the series; KernelSynth uses 5).')


@dataclasses.dataclass(frozen=True)
class Kernel:
  """One kernel of the bank: its kind, parameter and (periodic) period."""
  kind: str
  parameter: float
  period: float = 0.0

  @property
  def name(self) -> str:
    if self.kind == 'periodic':
      return f'Per(P={self.period:g},l={self.parameter:g})'
    short = dict(rbf='RBF', rational_quadratic='RQ', linear='Lin',
                 white='WN', constant='C')[self.kind]
    return short if self.kind == 'constant' else f'{short}({self.parameter:g})'


def canonical(freq: str) -> str:
  """The PERIODS key of a frequency string; KeyError if none."""
  freq = ALIASES.get(freq, freq)
  if freq not in PERIODS:
    raise KeyError(freq)
  return freq


def draw_kernel(rng: np.random.Generator, freq: str) -> Kernel:
  """A kernel of the bank: its kind by SHARES, then its parameter and
  period uniformly."""
  periods = PERIODS[canonical(freq)]
  shares = np.asarray(SHARES)
  if not periods:  # No seasonal period (yearly): the rest of the bank.
    shares = np.where(np.asarray(KINDS) == 'periodic', 0.0, shares)
    shares = shares / shares.sum()
  kind = KINDS[rng.choice(len(KINDS), p=shares)]
  options = PARAMETERS[kind]
  parameter = float(options[rng.integers(len(options))])
  if kind != 'periodic':
    return Kernel(kind, parameter)
  return Kernel(kind, parameter, float(periods[rng.integers(len(periods))]))


def periodic_weights(length_scale: float, period: float) -> np.ndarray:
  """c_k, k = 0..K, of the periodic kernel's Fourier series (they sum to
  1), K where the remaining weight falls under 1e-6. Harmonics above P / 2
  are kept: sampled at whole steps they alias onto lower ones, as the
  kernel's own values at whole lags do."""
  from scipy import special  # pylint: disable=g-import-not-at-top
  z = 1.0 / length_scale**2
  weights = special.ive(np.arange(MAX_HARMONICS + 1), z)
  weights[1:] *= 2
  return weights[:int(np.searchsorted(np.cumsum(weights), 1 - 1e-6)) + 1]


def _sample_periodic(kernel: Kernel, rng, length: int) -> np.ndarray:
  weights = periodic_weights(kernel.parameter, kernel.period)
  a, b = rng.standard_normal((2, len(weights)))
  whole = float(kernel.period).is_integer()  # Then one cycle, tiled.
  t = np.arange(min(length, int(kernel.period)) if whole else length,
                dtype=np.float64)
  out = np.full(len(t), np.sqrt(weights[0]) * a[0])
  for k in range(1, len(weights)):
    angle = 2 * np.pi * k * t / kernel.period
    out += np.sqrt(weights[k]) * (a[k] * np.cos(angle) + b[k] * np.sin(angle))
  return np.resize(out, length)


@functools.lru_cache(maxsize=16)  # 8 MB each at 1024 points.
def _factor(kind: str, parameter: float, points: int) -> np.ndarray:
  """Cholesky factor of a length-relative smooth kernel on `points` points
  of [0, 1] (with the smallest jitter that makes it positive definite)."""
  x = np.linspace(0.0, 1.0, points)
  gap = (x[:, None] - x[None, :])**2
  if kind == 'rbf':
    cov = np.exp(-gap / (2 * parameter**2))
  else:
    cov = (1 + gap / (2 * parameter))**(-parameter)
  for jitter in (1e-8, 1e-6, 1e-4, 1e-2):
    try:
      return np.linalg.cholesky(cov + jitter * np.eye(points))
    except np.linalg.LinAlgError:
      continue
  raise RuntimeError(f'{kind}({parameter}) is not positive definite.')


def sample(kernel: Kernel, rng: np.random.Generator,
           length: int) -> np.ndarray:
  """[length] float64: one draw of the zero-mean GP of `kernel`."""
  if kernel.kind == 'periodic':
    return _sample_periodic(kernel, rng, length)
  if kernel.kind in ('rbf', 'rational_quadratic'):
    points = min(length, GRID_POINTS)
    coarse = _factor(kernel.kind, kernel.parameter, points) @ (
        rng.standard_normal(points))
    if points == length:
      return coarse
    return np.interp(np.linspace(0, 1, length), np.linspace(0, 1, points),
                     coarse)
  if kernel.kind == 'linear':
    x = np.arange(length) / max(length - 1, 1)
    a, b = rng.standard_normal(2)
    return kernel.parameter * a + b * x
  if kernel.kind == 'white':
    return np.sqrt(kernel.parameter) * rng.standard_normal(length)
  return np.full(length, rng.standard_normal())


def make_series(seed: int, index: int, length: int, freq: str,
                max_kernels: int = MAX_KERNELS) -> Tuple[np.ndarray, str]:
  """([length] float64 values, the kernel expression) of series `index`
  of `seed`: it depends on (seed, index, length, freq, max_kernels)
  only. DataError for a length or max_kernels past the limits
  (`check_request`)."""
  check_request(length, max_kernels)
  rng = np.random.default_rng((seed, index))
  kernels = [Kernel('constant', 1.0)]
  while all(k.kind == 'constant' for k in kernels):  # A flat line: again.
    count = int(rng.integers(1, max_kernels + 1))
    kernels = [draw_kernel(rng, freq) for _ in range(count)]
  values, text = sample(kernels[0], rng, length), kernels[0].name
  for kernel in kernels[1:]:
    plus = rng.random() < 0.5
    other = sample(kernel, rng, length)
    values = values + other if plus else values * other
    text = f'({text} {"+" if plus else "*"} {kernel.name})'
  return values, text

