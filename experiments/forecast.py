r"""Zero-shot forecast with a TTM checkpoint (or a random init) on the
embedded synthetic corpus: forecasts, a metrics line and a plot.

  .venv/bin/python -m experiments.forecast --workdir /tmp/ttm_forecast \
      [--checkpoint ../shared/checkpoints/fraware__ChronoAPI__root]

Without --checkpoint the model is randomly initialised with r2 512-96 shapes
(the forecast is then meaningless; it shows the machinery).
"""

import json
import os

from absl import app
from absl import flags
import jax
import numpy as np

from ttm_jax.data import synthetic
from ttm_jax.models import checkpoint
from ttm_jax.models import config as config_lib
from ttm_jax.models import presets
from ttm_jax.models import ttm

_WORKDIR = flags.DEFINE_string('workdir', '/tmp/ttm_forecast', 'Output dir.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', '', 'Folder or hub id.')
_NUM_SERIES = flags.DEFINE_integer('num_series', 8, 'Series to forecast.')

def main(argv):
  del argv
  os.makedirs(_WORKDIR.value, exist_ok=True)
  if _CHECKPOINT.value:
    config, model, variables = checkpoint.load_pretrained(_CHECKPOINT.value)
    source = _CHECKPOINT.value
  else:
    config = config_lib.TTMConfig(**presets.R2_512_96)
    model = ttm.build_module(config)
    variables = checkpoint.init_variables(config, jax.random.key(0))
    source = 'random init (r2 512-96 shapes)'
  window = config.context_length + config.prediction_length
  corpus = [s for s in synthetic.make_corpus(4 * _NUM_SERIES.value, seed=1)
            if len(s.values) >= window][:_NUM_SERIES.value]
  windows = np.stack([s.values[-window:] for s in corpus])[:, :, None]
  past, future = windows[:, :config.context_length], windows[:,
                                                             config.context_length:]
  out = jax.jit(model.apply)(variables, past, future_values=future)
  forecast = np.asarray(out.prediction_outputs)
  np.save(os.path.join(_WORKDIR.value, 'forecasts.npy'), forecast)
  # MSE in per-window standardised units (context mean/std), as a summary.
  loc, scale = np.asarray(out.loc), np.asarray(out.scale)
  mse = float(np.mean(((forecast - future) / scale)**2))
  summary = dict(source=source, num_series=len(corpus), mse_scaled=mse,
                 loss=float(out.loss))
  with open(os.path.join(_WORKDIR.value, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(2, 2, figsize=(12, 6))
  for ax, i in zip(axes.flat, range(len(corpus))):
    t = np.arange(window)
    ax.plot(t[-3 * config.prediction_length:], windows[i, -3 * config.prediction_length:, 0], label='truth', lw=1)
    ax.plot(t[config.context_length:], forecast[i, :, 0], label='forecast', lw=1)
    ax.set_title(corpus[i].name, fontsize=8)
  axes.flat[0].legend()
  fig.tight_layout()
  fig.savefig(os.path.join(_WORKDIR.value, 'forecast.png'), dpi=100)
  print(f'{source}: scaled MSE {mse:.4f} on {len(corpus)} synthetic series; '
        f'wrote forecasts.npy, summary.json, forecast.png to '
        f'{_WORKDIR.value}')


if __name__ == '__main__':
  app.run(main)
