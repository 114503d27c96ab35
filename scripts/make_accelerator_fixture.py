"""Writes benchmarks/fixtures/r2_reference_outputs.npz for the accelerator
check: IBM r2 512-96's float32 forecasts by the reference (granite-tsfm
0.3.11 on CPU torch), so that `benchmarks/accelerator_check.py` checks
parity on a machine without torch.

  .venv/bin/python scripts/make_accelerator_fixture.py \
      [../shared/checkpoints/fraware__ChronoAPI__root]

Inputs: 8 windows of 512 steps x 7 channels, each channel a daily and a
weekly sine of its own phase and scale plus seeded Gaussian noise and a
trend (so the scaler, patches and mixers see varied levels); stored with
the outputs and the checkpoint's weight-file sha256.
"""

import hashlib
import os
import sys

import numpy as np
import torch
from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'benchmarks', 'fixtures',
                   'r2_reference_outputs.npz')


def inputs(batch=8, length=512, channels=7, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length)[None, :, None]
  phase = rng.uniform(0, 2 * np.pi, size=(batch, 1, channels))
  scale = rng.uniform(0.5, 20.0, size=(batch, 1, channels))
  level = rng.normal(0, 50, size=(batch, 1, channels))
  trend = rng.normal(0, 0.01, size=(batch, 1, channels))
  x = (np.sin(2 * np.pi * t / 24 + phase)
       + 0.5 * np.sin(2 * np.pi * t / 168 + 2 * phase)
       + 0.3 * rng.normal(size=(batch, length, channels)))
  return (level + scale * x + trend * t).astype(np.float32)


def main():
  path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
      HERE, '..', '..', 'shared', 'checkpoints', 'fraware__ChronoAPI__root')
  weights = os.path.join(path, 'model.safetensors')
  with open(weights, 'rb') as f:
    sha = hashlib.sha256(f.read()).hexdigest()
  model = TinyTimeMixerForPrediction.from_pretrained(path).eval()
  past = inputs()
  with torch.no_grad():
    out = model(past_values=torch.tensor(past)).prediction_outputs.numpy()
  np.savez_compressed(OUT, past_values=past, prediction_outputs=out,
                      weights_sha256=np.array(sha))
  print(f'{OUT}: outputs {out.shape}, weights sha256 {sha}')


if __name__ == '__main__':
  main()
