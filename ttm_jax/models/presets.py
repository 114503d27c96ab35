"""Named TTM architectures (TTM_SPEC.md 3.2): `TTMConfig` fields without the
context and horizon, which an experiment sets; r3's released shapes and
its additions, by name.

The released r1/r2 shapes use d_model = 3 P and decoder_d_model = 2 P,
adaptive patching with 3 levels of 2 layers, a 2-layer decoder. The r3
releases' widths and depths are only in their config.json on the hub; what
the branch names (its ttm.yaml) is each one's context, horizon and, for a
decomposed model, its residual branch's context: `r3_shape`.
"""

from __future__ import annotations

from typing import Any, Dict

from ttm_jax import errors
from ttm_jax.models import zoo

ARCHS: Dict[str, Dict[str, Any]] = {
    # A small TTM for demos, tests and CPU ablations.
    'tiny': dict(patch_length=16, patch_stride=16, d_model=48,
                 decoder_d_model=32, num_layers=1, decoder_num_layers=1,
                 adaptive_patching_levels=2, dropout=0.2, head_dropout=0.2),
    # Between tiny and r2_512 (P 32, D 96): the size ablation's middle.
    'small': dict(patch_length=32, patch_stride=32, d_model=96,
                  decoder_d_model=64, num_layers=2, decoder_num_layers=2,
                  adaptive_patching_levels=3, dropout=0.2, head_dropout=0.2),
    # IBM r1/r2 context 512 (TTM-B): P 64, D 192, 805,280 parameters at F 96.
    'r2_512': dict(patch_length=64, patch_stride=64, d_model=192,
                   decoder_d_model=128, num_layers=2, decoder_num_layers=2,
                   adaptive_patching_levels=3, dropout=0.2,
                   head_dropout=0.2),
    # IBM r2 context 1024/1536 (TTM-E/A): P 128, D 384.
    'r2_1024': dict(patch_length=128, patch_stride=128, d_model=384,
                    decoder_d_model=256, num_layers=2, decoder_num_layers=2,
                    adaptive_patching_levels=3, dropout=0.2,
                    head_dropout=0.2),
}

# IBM granite r2 `main`: context 512, horizon 96 (its config.json has head
# dropout 0.7; the other fields as r2_512).
R2_512_96: Dict[str, Any] = dict(ARCHS['r2_512'], context_length=512,
                                 prediction_length=96)


def arch(name: str, **changes) -> Dict[str, Any]:
  """The preset's fields with `changes` (a new dict)."""
  if name not in ARCHS:
    raise KeyError(f'Unknown architecture preset {name!r}; known: '
                   f'{sorted(ARCHS)}.')
  return dict(ARCHS[name], **changes)


# r3's additions to the r2 model, each alone (the r3 ablation's variants;
# `configs/pretrain.py:r3=decompose+register`). Counts as the branch's
# public pretraining script sets them (ttm_pretrain_script_public.sh:
# --register_tokens 2 --fft_length 2, FFT embedding on); the decomposed
# model with the branch's defaults: a trend and a residual TTM of the same
# shape over the whole context.
R3_ADDITIONS: Dict[str, Dict[str, Any]] = {
    'decompose': dict(decompose=True),
    'register': dict(register_tokens=2),
    'multi_scale': dict(multi_scale=True),
    'fft': dict(fft_length=2, use_fft_embedding=True),
}


def r3_additions(spec: str) -> Dict[str, Any]:
  """'decompose+register' -> the TTMConfig fields of those additions."""
  out = {}
  for name in filter(None, spec.split('+')):
    if name not in R3_ADDITIONS:
      raise errors.ConfigError(f'Unknown r3 addition {name!r}; known: '
                               f'{sorted(R3_ADDITIONS)} (joined with +).')
    out.update(R3_ADDITIONS[name])
  return out


def r3_shape(key: str) -> Dict[str, Any]:
  """An r3 release's shape (e.g. '512-96-dec-512-r3'): context, horizon,
  decompose and the residual branch's context, as TTMConfig fields."""
  rows = {r[0]: r for r in zoo.RELEASES if r[1] == 'r3'}
  if key not in rows:
    raise errors.ConfigError(f'Unknown r3 release {key!r}; known: '
                             f'{", ".join(rows)}.')
  residual = zoo.R3_RESIDUAL_CONTEXT.get(key)
  shape = dict(context_length=rows[key][4], prediction_length=rows[key][5],
               decompose=residual is not None)
  if residual is not None:
    shape['residual_context_length'] = residual
  return shape
