"""KernelSynth-style series: reproducible from (seed, index), streamed,
with the documented periods per frequency, and periodic samples whose
covariance is the periodic kernel's and whose cycle is the period."""

import inspect

import numpy as np
import pytest

from ttm_jax import errors
from ttm_jax.data import kernel_synth
from ttm_jax.data.corpus import sources


def _spec(**options):
  text = ','.join(f'{k}={v}' for k, v in options.items())
  return [s for _, s in sources.read(f'synthetic-kernels:{text}')]


def test_same_seed_same_series_whatever_the_count():
  three = _spec(num_series=3, length=500, freq='h', seed=7)
  again = _spec(num_series=3, length=500, freq='h', seed=7)
  five = _spec(num_series=5, length=500, freq='h', seed=7)
  other = _spec(num_series=3, length=500, freq='h', seed=8)
  for a, b, c, d in zip(three, again, five, other):
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.values, c.values)
    assert a.series_id == c.series_id and a.freq == 'h'
    assert not np.array_equal(a.values, d.values)
  assert len(five) == 5 and all(len(s.values) == 500 for s in five)
  values, text = kernel_synth.make_series(7, 2, 500, 'h')
  np.testing.assert_array_equal(values, three[2].values)
  assert three[2].series_id == f'kernelsynth_000002 {text}'


def test_series_are_streamed_one_at_a_time(monkeypatch):
  made = []
  make = kernel_synth.make_series
  monkeypatch.setattr(kernel_synth, 'make_series',
                      lambda *a, **k: made.append(a) or make(*a, **k))
  stream = sources.read('synthetic-kernels:num_series=1000000,length=64')
  assert inspect.isgenerator(stream)
  name, first = next(stream)
  assert len(made) == 1 and name == 'kernelsynth_h'
  assert first.dataset == 'synthetic/kernelsynth'


def test_frequencies_cycle_and_name_their_sources():
  found = list(sources.read(
      'synthetic-kernels:num_series=4,length=300,freq=15min+D,seed=1,'
      'name=ks'))
  assert [(n, s.freq) for n, s in found] == [
      ('ks_15min', '15min'), ('ks_D', 'D'), ('ks_15min', '15min'),
      ('ks_D', 'D')]


def test_the_periods_of_each_frequency_are_the_documented_ones():
  assert kernel_synth.PERIODS['h'] == (24, 168)
  assert kernel_synth.PERIODS['15min'] == (96, 672)
  assert kernel_synth.PERIODS['D'] == (7, 365.25)
  assert kernel_synth.PERIODS['QS'] == (4,)
  assert kernel_synth.PERIODS['YS'] == ()  # Yearly: no seasonal kernel.
  for freq, periods in kernel_synth.PERIODS.items():
    rng = np.random.default_rng(0)
    drawn = {kernel.period for kernel in (
        kernel_synth.draw_kernel(rng, freq) for _ in range(400))
             if kernel.kind == 'periodic'}
    assert drawn == set(periods), freq


@pytest.mark.parametrize('scale', [0.5, 1.0, 2.0])
def test_periodic_samples_have_the_kernels_covariance(scale):
  kernel = kernel_synth.Kernel('periodic', scale, 12.0)
  weights = kernel_synth.periodic_weights(scale, 12.0)
  assert abs(weights.sum() - 1) < 1e-5
  rng = np.random.default_rng(0)
  draws = np.stack([kernel_synth.sample(kernel, rng, 30)
                    for _ in range(4000)])
  lags = np.arange(30)
  expected = np.exp(-2 * np.sin(np.pi * lags / 12.0)**2 / scale**2)
  found = (draws[:, :1] * draws).mean(axis=0)
  np.testing.assert_allclose(found, expected, atol=0.06)


def _acf(values, lag):
  centred = values - values.mean()
  return (centred[lag:] * centred[:-lag]).sum() / (centred**2).sum()


@pytest.mark.parametrize('period', [24, 96, 365.25])
def test_a_periodic_series_peaks_at_its_period(period):
  kernel = kernel_synth.Kernel('periodic', 1.0, period)
  length = int(round(period * 16))
  values = kernel_synth.sample(kernel, np.random.default_rng(3), length)
  lags = np.arange(int(period // 2), int(period * 1.5))
  best = lags[np.argmax([_acf(values, lag) for lag in lags])]
  assert abs(best - period) <= 0.5
  # Its spectrum lies on the period's harmonics (bins multiple of 16).
  power = np.abs(np.fft.rfft(values - values.mean()))**2
  bins = np.arange(len(power))
  near = np.abs(bins / 16 - np.round(bins / 16)) * 16 <= 1
  assert power[near].sum() > 0.99 * power.sum()


def test_smooth_kernels_and_compositions():
  rng = np.random.default_rng(0)
  for kind in ('rbf', 'rational_quadratic'):
    for parameter in kernel_synth.PARAMETERS[kind]:
      kernel = kernel_synth.Kernel(kind, parameter)
      long = kernel_synth.sample(kernel, rng, 5000)  # Grid, interpolated.
      assert long.shape == (5000,) and np.isfinite(long).all()
  draws = np.stack([kernel_synth.sample(kernel_synth.Kernel('rbf', 0.1), rng,
                                        64) for _ in range(2000)])
  x = np.linspace(0, 1, 64)
  np.testing.assert_allclose((draws[:, :1] * draws).mean(axis=0),
                             np.exp(-x**2 / (2 * 0.01)), atol=0.08)
  texts = {kernel_synth.make_series(0, i, 200, 'D')[1] for i in range(50)}
  assert any('+' in t for t in texts) and any('*' in t for t in texts)
  assert any('Per(P=365.25' in t for t in texts)
  # Constant-only compositions are drawn again: no flat series.
  assert all(kernel_synth.make_series(1, i, 50, 'h')[0].std() > 0
             for i in range(200))


@pytest.mark.parametrize('alias,freq', [('Q', 'QS'), ('QE', 'QS'),
                                        ('Y', 'YS'), ('A', 'YS'),
                                        ('M', 'MS')])
def test_low_frequency_aliases(alias, freq):
  assert kernel_synth.canonical(alias) == freq


def test_yearly_series_have_no_cycle_and_quarterly_a_yearly_one():
  """Yearly kernels never include a periodic one, and those series are
  not flat; a quarterly periodic kernel repeats every 4 steps."""
  for i in range(50):
    values, text = kernel_synth.make_series(0, i, 60, 'YS')
    assert 'Per(' not in text and np.std(values) > 0, text
  rng = np.random.default_rng(1)
  values = kernel_synth.sample(kernel_synth.Kernel('periodic', 1.0, 4.0),
                               rng, 40)
  np.testing.assert_allclose(values[4:], values[:-4], atol=1e-12)


def test_existing_frequencies_draw_as_before():
  """Adding the low frequencies left the hourly bank's draws unchanged
  (a corpus made before is made again bit for bit): the kinds follow
  SHARES exactly as rng.choice(p=SHARES) draws them."""
  rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
  for _ in range(200):
    kernel = kernel_synth.draw_kernel(rng_a, 'h')
    kind = kernel_synth.KINDS[rng_b.choice(len(kernel_synth.KINDS),
                                           p=kernel_synth.SHARES)]
    options = kernel_synth.PARAMETERS[kind]
    parameter = float(options[rng_b.integers(len(options))])
    if kind == 'periodic':
      period = (24, 168)[rng_b.integers(2)]
      assert kernel == kernel_synth.Kernel(kind, parameter, float(period))
    else:
      assert kernel == kernel_synth.Kernel(kind, parameter)


def test_a_series_past_the_limits_is_refused_before_any_work():
  with pytest.raises(errors.DataError, match=r'length=10,000,001 is over '
                     r'the limit of 10,000,000 steps'):
    kernel_synth.make_series(0, 0, kernel_synth.LENGTH_LIMIT + 1, 'h')
  with pytest.raises(errors.DataError, match=r'max_kernels=65 is over the '
                     'limit of 64'):
    kernel_synth.make_series(0, 0, 100, 'h', max_kernels=65)
  values, _ = kernel_synth.make_series(0, 0, 100, 'h', max_kernels=64)
  assert values.shape == (100,) and np.isfinite(values).all()
