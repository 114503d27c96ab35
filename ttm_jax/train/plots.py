"""Plots of a model's forecasts."""

from __future__ import annotations

import jax
import numpy as np

from ttm_jax.models import ttm


def plot_forecasts(path: str, module, variables, source, ttm_config,
                   title: str = '', num: int = 4) -> None:
  """Forecast vs truth for `num` windows spread over `source` (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  picks = np.linspace(0, len(source) - 1, num).astype(int)
  items = [source[int(i)] for i in picks]
  batch = {k: np.stack([it[k] for it in items]) for k in items[0]}
  inputs = ttm.model_inputs(batch, ttm_config)
  pred = np.asarray(jax.jit(module.apply)(jax.device_get(variables),
                                          **inputs).prediction_outputs)
  pci = list(ttm_config.prediction_channel_indices or [0])
  channel = 0
  fig, axes = plt.subplots(num, 1, figsize=(10, 2.2 * num))
  tail = min(ttm_config.context_length, 3 * ttm_config.output_length)
  for ax, i in zip(np.atleast_1d(axes), range(num)):
    past = batch['past_values'][i, -tail:, pci[channel]]
    future = batch['future_values'][i, :ttm_config.output_length,
                                    pci[channel]]
    t_past = np.arange(-tail, 0)
    t_future = np.arange(len(future))
    ax.plot(t_past, past, color='0.3', lw=1, label='context')
    ax.plot(t_future, future, color='C0', lw=1, label='truth')
    ax.plot(t_future, pred[i, :, channel], color='C3', lw=1.2,
            label='forecast')
    ax.set_title(f'window {int(picks[i])}', fontsize=8)
  np.atleast_1d(axes)[0].legend(fontsize=7, loc='upper left')
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
