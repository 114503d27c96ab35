"""The Linen module of a `TTMConfig`: the plain, masked or decomposed
(r3) TTM. Its own module, above `ttm` and `decomposed`, which builds on
`ttm`."""

from __future__ import annotations

import flax.linen as nn

from ttm_jax.models import decomposed
from ttm_jax.models import ttm
from ttm_jax.models.config import TTMConfig


def build_module(config: TTMConfig, **module_kwargs) -> nn.Module:
  """The Linen module for `config` (the decomposed or masked variant if
  configured so)."""
  if config.decompose:
    return decomposed.TinyTimeMixerForDecomposedPrediction(
        config, **module_kwargs)
  if config.masked_context_length is not None:
    return ttm.TinyTimeMixerForMaskedPrediction(config, **module_kwargs)
  return ttm.TinyTimeMixerForPrediction(config, **module_kwargs)
