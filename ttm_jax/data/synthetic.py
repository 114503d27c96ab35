"""An embedded synthetic corpus: deterministic, diverse univariate series.

Trends, several seasonalities, noise, level and slope regime changes, at
several resolutions (each series carries a pandas-style frequency string), so
that demos and tests run on a fresh machine with nothing downloaded.
"""

from __future__ import annotations

import dataclasses
from typing import List

import numpy as np

# Resolutions with their natural seasonal periods (in steps).
RESOLUTIONS = {
    '10min': (144, 1008),   # daily, weekly
    '15min': (96, 672),
    'h': (24, 168),
    'd': (7, 365),
    'W': (52,),
}


@dataclasses.dataclass(frozen=True)
class Series:
  """One univariate series with its frequency."""
  values: np.ndarray  # [t] float32
  freq: str
  name: str


def make_series(rng: np.random.Generator, length: int, freq: str,
                name: str) -> Series:
  """One series: trend + seasonalities + AR noise + regime changes."""
  t = np.arange(length, dtype=np.float64)
  level = rng.normal(0, 5)
  slope = rng.normal(0, 0.01) * rng.choice([0, 1, 1])
  values = level + slope * t
  for period in RESOLUTIONS[freq]:
    if rng.random() < 0.85:
      amplitude = rng.lognormal(0, 0.6)
      harmonics = rng.integers(1, 4)
      for k in range(1, harmonics + 1):
        phase = rng.uniform(0, 2 * np.pi)
        values += amplitude / k * np.sin(2 * np.pi * k * t / period + phase)
  # AR(1) noise.
  phi, sigma = rng.uniform(0.0, 0.9), rng.lognormal(-1.2, 0.5)
  eps = rng.normal(0, sigma, size=length)
  noise = np.zeros(length)
  for i in range(1, length):
    noise[i] = phi * noise[i - 1] + eps[i]
  values += noise
  # Regime changes: level shifts and slope changes at random points.
  for _ in range(rng.poisson(1.0)):
    start = rng.integers(length // 4, length)
    values[start:] += rng.normal(0, 2)
    if rng.random() < 0.3:
      values[start:] += rng.normal(0, 0.01) * (t[start:] - start)
  scale = rng.lognormal(0, 1)
  return Series((values * scale).astype(np.float32), freq, name)


def make_corpus(num_series: int = 64, min_length: int = 1200,
                max_length: int = 4000, seed: int = 0) -> List[Series]:
  """`num_series` diverse series, the same for the same arguments."""
  rng = np.random.default_rng(seed)
  freqs = list(RESOLUTIONS)
  corpus = []
  for i in range(num_series):
    freq = freqs[i % len(freqs)]
    length = int(rng.integers(min_length, max_length + 1))
    corpus.append(make_series(rng, length, freq, f'synthetic_{i:04d}_{freq}'))
  return corpus
