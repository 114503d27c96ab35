"""`TTMConfig`: the reference `TinyTimeMixerConfig`, field for field.

The field names, defaults and derived fields are those of
`tsfm_public.models.tinytimemixer.TinyTimeMixerConfig` (granite-tsfm 0.3.11),
so that a reference `config.json` maps onto this dataclass one key to one
field. Derived fields (`num_patches`, `masked_context_length`) are read from a
checkpoint's `config.json` when present and only computed when absent, as the
reference does: a checkpoint's weights fix them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Mapping, Optional, Tuple, Union

from ttm_jax import errors
from ttm_jax.models import config_rules

_LOG = logging.getLogger(__name__)

MODEL_TYPE = 'tinytimemixer'

# Keys a reference config.json carries that the reference model never reads.
UNUSED_KEYS = frozenset({
    'd_model_scale', 'decoder_d_model_scale', 'stride_ratio', 'torch_dtype',
    'dtype', 'transformers_version', 'architectures', 'model_type',
    '_name_or_path', 'patch_last', 'init_processing',
    # What a model pretrained here was pretrained on (the benchmark runner
    # flags overlaps with the names; the datasets' files and counts).
    'pretraining_data', 'pretraining_datasets',
    # Generic `transformers.PretrainedConfig` keys (no effect on TTM).
    'return_dict', 'output_hidden_states', 'output_attentions', 'torchscript',
    'use_bfloat16', 'tf_legacy_loss', 'pruned_heads', 'tie_word_embeddings',
    'chunk_size_feed_forward', 'is_encoder_decoder', 'is_decoder',
    'cross_attention_hidden_size', 'add_cross_attention',
    'tie_encoder_decoder', 'problem_type', 'id2label', 'label2id',
    'num_labels', 'task_specific_params', 'finetuning_task', 'tokenizer_class',
    'prefix', 'bos_token_id', 'pad_token_id', 'eos_token_id',
    'sep_token_id', 'decoder_start_token_id', '_attn_implementation',
    '_attn_implementation_autoset', '_commit_hash', 'use_cache',
})

# Options the r3 branch's modelling code reads with `getattr(config, name,
# default)` but that are not `TinyTimeMixerConfig` arguments (they reach a
# config only as extra keys), with that default. All but
# `use_register_context_gating` are TTMConfig fields; `to_dict` writes them
# only when not at this default (as the branch's config.json has them only
# when set), so a default model's config.json is granite-tsfm 0.3.11's.
# `use_register_context_gating=True` is refused wherever a gate exists
# (`config_rules.check_hidden_options`: the branch cannot run it).
R3_HIDDEN_DEFAULTS: Mapping[str, Any] = {
    'gate_mode': 'softmax',
    'gate_groups': 8,
    'use_register_context_gating': False,
    'get_one_freq_emb': False,
    'fft_ignore_dc': False,
    'fft_d_freq_min': 4,
    'fft_d_freq_max': 64,
}
# The decomposed model's trend-branch fields, each naming the field it
# replaces there (`trend_head_d_model` names one no code reads).
TREND_FIELDS = ('trend_patch_length', 'trend_patch_stride', 'trend_d_model',
                'trend_decoder_d_model', 'trend_num_layers',
                'trend_decoder_num_layers', 'trend_register_tokens',
                'trend_fft_length', 'trend_multi_scale',
                'trend_adaptive_patching_levels')
DECOMPOSED_ARCHITECTURE = 'TinyTimeMixerForDecomposedPrediction'
PREDICTION_ARCHITECTURE = 'TinyTimeMixerForPrediction'


ConfigError = errors.ConfigError


def compute_num_patches(sequence_length: int, patch_length: int,
                        patch_stride: int) -> int:
  """Patches that `TinyTimeMixerPatchify` cuts from `sequence_length` steps."""
  return (max(sequence_length, patch_length) - patch_length) // patch_stride + 1


def multi_scale_num_patches(context_length: int, patch_length: int) -> int:
  """Patches of r3's multi-scale patching: `context_length // 2**i //
  patch_length` summed over the scales with at least `patch_length` steps
  (`compute_total_num_patches_multiscale`)."""
  total, factor = 0, 1
  while context_length // factor >= patch_length:
    total += context_length // factor // patch_length
    factor *= 2
  return total


def adaptive_patch_factor(d_model: int, level_index: int) -> int:
  """Factor `f` of adaptive level `level_index` (2**i, forced to 1 if tiny)."""
  factor = 2**level_index
  if d_model // factor <= 4:
    _LOG.warning(
        'Disabling adaptive patching at level %d (d_model %d // %d <= 4), '
        'as the reference does.', level_index, d_model, factor)
    factor = 1
  return factor


def _field(default, architecture: bool = False, shape: bool = False):
  """A TTMConfig field and what it is, declared with it.

  Args:
    default: the reference's default.
    architecture: recorded in results.json's `architecture` and the sweep
      tables (ARCHITECTURE_FIELDS).
    shape: its value changes weight shapes; named when a checkpoint's
      weights do not fit the configuration (SHAPE_FIELDS).
  """
  return dataclasses.field(default=default, metadata=dict(
      architecture=architecture, shape=shape))


def _as_tuple(value):
  if value is None:
    return None
  return tuple(int(v) for v in value)


@dataclasses.dataclass(frozen=True)
class TTMConfig:
  """Configuration of TinyTimeMixer (names and defaults of the reference).

  Attributes:
    context_length: L, steps of history the model reads (the last L are used).
    patch_length: P, steps per patch.
    num_input_channels: C; fixes weights only for mix_channel, FCM, categoricals.
    prediction_length: F, steps the head forecasts.
    patch_stride: S, step between patches (the reference requires S == P).
    prediction_channel_indices: channels to output (sorted), None for all.
    exogenous_channel_indices: channels with known future values (FCM).
    d_model: D, backbone width.
    expansion_factor: MLP hidden multiplier.
    num_layers: mixer layers per block (per adaptive level when APL > 0).
    dropout: backbone MLP and self-attention dropout.
    mode: backbone channel mode, 'common_channel' or 'mix_channel'.
    gated_attn: softmax gating in the mixers.
    norm_mlp: 'LayerNorm', or any string containing 'batch' for BatchNorm.
    self_attn: tiny self-attention over patches in each patch mixer.
    self_attn_heads: heads of that attention.
    use_positional_encoding: add a positional table to the patches.
    positional_encoding_type: 'sincos' (fixed) or 'random' (trained).
    scaling: 'std' or True (std scaler), 'mean' (mean scaler), else none.
    loss: 'mse', 'mae', 'pinball', 'huber' or None.
    init_std: std of the 'normal' init (only with post_init).
    post_init: apply `init_linear` / `init_embed` instead of torch defaults.
    norm_eps: LayerNorm / BatchNorm epsilon.
    adaptive_patching_levels: APL; <= 0 disables adaptive patching.
    resolution_prefix_tuning: prepend a frequency-token embedding (RPT).
    frequency_token_vocab_size: vocabulary of the RPT embedding.
    head_dropout: head dropout, and all dropout in the decoder and FCM mixer.
    distribution_output: kept for config fidelity; distribution heads are
      disabled in the reference.
    num_parallel_samples: kept for config fidelity (sampling is disabled).
    decoder_num_layers: decoder mixer layers.
    decoder_d_model: Dd, decoder width.
    decoder_adaptive_patching_levels: APL inside the decoder.
    decoder_raw_residual: add Linear(P -> Dd) of the scaled patches.
    decoder_mode: decoder channel mode ('mix_channel' for channel mixing).
    use_decoder: without it the head reads the backbone output.
    enable_forecast_channel_mixing: enable the exogenous mixer (FCM).
    fcm_gated_attn: gating in FCM and inside its mixer.
    fcm_context_length: l, neighbour steps each side (window 2l + 1).
    fcm_use_mixer: embed windows to 2w and run the `exog_mixer` block.
    fcm_mix_layers: layers of `exog_mixer`.
    fcm_prepend_past: fill the left border with the last l context values.
    fcm_prepend_past_offset: skip the last o context steps when prepending.
    categorical_vocab_size_list: vocabularies of static categoricals.
    prediction_filter_length: F' <= F, outputs and targets truncated to it.
    init_linear: Linear init scheme with post_init ('normal', 'uniform',
      'xavier_uniform', else torch default).
    init_embed: Embedding init scheme with post_init.
    quantile: q of the pinball loss.
    huber_delta: delta of the huber loss.
    mask_value: fill of the masked steps (masked prediction).
    num_patches: N, patches including the RPT prefix; derived once and then
      always read from config.json.
    masked_context_length: L + A for the masked-prediction variant, else None.
    multi_quantile_head: add IBM's multi-quantile head (granite-tsfm
      0.3.11 and the r3 branch; `models/heads.py:MultiQuantileHead`); the
      point forecast becomes its median and the loss the pinball loss
      averaged over `quantile_levels`.
    quantile_levels: the head's levels: an odd count, symmetric about and
      including 0.5, in (0, 1).
    point_extra_weight: weight of an extra L1 loss on the median.
    mq_hidden: hidden channels of the quantile head.
    mq_kernel_size: odd kernel of its temporal convolution.
    mq_eps: minimum gap between neighbouring quantiles (scaled units).
    mq_use_decoder_pool: condition the head on the decoder output: a
      projection of it (per series) is added to, or concatenated with, the
      head's hidden features before `pw2`.
    mq_q50_type: 'median' (the point forecast plus a learned bias) or
      'mean' (the point forecast itself) as the central quantile.
    mq_cond_path: 'pool' (mean over patches, Linear(Dd -> mq_hidden),
      `dec_proj`) or 'flatten' (Linear(Dd -> mq_decoder_d_model) per patch,
      flattened, Linear(n * mq_decoder_d_model -> mq_hidden)).
    mq_cond_mode: 'add' or 'concat' (then `pw2` reads 2 * mq_hidden).
    mq_decoder_d_model: per-patch width of the 'flatten' path.
    penalize_large_width_ratio: weight of the interval-width penalty added
      to the pinball loss (0: none).
    width_penalty_mode: 'boundary' (mean width of the outermost interval) or
      'wis' (mean over the k symmetric intervals of their mean width).
    multi_scale: r3's multi-scale patching: the patch embedding becomes one
      Linear(P -> D) per scale 2**i of the average-pooled context (every
      scale with at least P steps), coarsest scale first; N counts the
      patches of every scale; turns on `base_norm`.
    register_tokens: R learned tokens [R, D] prepended to the patches
      (N += R).
    fft_length: k tokens prepended from the indices of the k largest rFFT
      magnitudes of the scaled context (N += k).
    use_fft_embedding: those indices through an Embedding(L // 2 + 1, D),
      else through Linear(1 -> D), ReLU, Linear(D -> D) of index / (L//2+1).
    enable_base_norm_always: LayerNorm over each series' flattened N x D
      tokens before the mixers (`base_norm`), also without multi_scale.
    light_mode: the outputs keep only the forecasts, quantiles and loss
      (hidden states, loc, scale and the decomposed model's parts None).
    decompose: the decomposed model (`TinyTimeMixerForDecomposedPrediction`,
      also chosen by config.json's `architectures`): a trend and a residual
      TTM on a robust-LOWESS split of the scaled context.
    residual_context_length: context of the residual branch (its last
      steps), None for the whole context.
    trend_patch_length, trend_patch_stride, trend_d_model,
      trend_decoder_d_model, trend_num_layers, trend_decoder_num_layers,
      trend_register_tokens, trend_fft_length, trend_multi_scale,
      trend_adaptive_patching_levels: the trend branch's values of those
      fields (None: the model's own).
    trend_head_d_model: written by the branch onto the trend branch's
      config as `head_d_model`, which no code reads (no effect).
    trend_loss_weight, residual_loss_weight, joint_loss_weight: weights of
      the decomposed model's three losses.
    forecast_loss_type: stored by the branch (`set_stage`) but read by none
      of its losses (no effect): the loss is always the weighted sum.
    combine_quantiles_via_variance: the decomposed model's quantiles as the
      summed medians plus +-sqrt(trend width**2 + residual width**2 + 1e-8)
      instead of the summed quantiles.
    mq_use_positional: a branch field no code reads (no effect).
    gate_mode: r3's gate of every gating block (`gated_attn`,
      `fcm_gated_attn`): 'softmax' (x * softmax(Linear(x)), r2's),
      'sigmoid' (x * sigmoid(Linear(x))), 'glu' (a * sigmoid(b) with
      [a, b] = Linear(C -> 2C)(x), the gate's output not a multiple of x)
      or 'group_sigmoid' (x * sigmoid of the logits' mean over each of G
      groups of C / G consecutive features).
    gate_groups: G requested for 'group_sigmoid'; each gate uses the
      largest divisor of its width C that is <= min(G, C) (G <= 1: one
      group), as the branch's `pick_gate_groups`.
    get_one_freq_emb: the FFT tokens become one token: each of the k
      indices embedded to d_freq = clamp(D // k, fft_d_freq_min,
      fft_d_freq_max) (floored at 1 before clamping), concatenated and
      projected by Linear(k * d_freq -> D) (`freq_concat_proj`); N gains 1,
      not k, and k is capped at the L // 2 + 1 rFFT bins.
    fft_ignore_dc: the zero-frequency magnitude is set to 0 before the
      top-k (the mean level is never picked unless k exceeds the other
      bins).
    fft_d_freq_min, fft_d_freq_max: bounds of d_freq (only with
      get_one_freq_emb).
  """

  context_length: int = _field(64, architecture=True, shape=True)
  patch_length: int = _field(8, architecture=True, shape=True)
  num_input_channels: int = _field(1, architecture=True, shape=True)
  prediction_length: int = _field(16, architecture=True, shape=True)
  patch_stride: int = 8
  prediction_channel_indices: Optional[Tuple[int, ...]] = _field(
      None, shape=True)
  exogenous_channel_indices: Optional[Tuple[int, ...]] = _field(
      None, shape=True)
  d_model: int = _field(16, architecture=True, shape=True)
  expansion_factor: int = _field(2, shape=True)
  num_layers: int = _field(3, architecture=True)
  dropout: float = 0.2
  mode: str = _field('common_channel', architecture=True)
  gated_attn: bool = True
  norm_mlp: str = 'LayerNorm'
  self_attn: bool = False
  self_attn_heads: int = 1
  use_positional_encoding: bool = False
  positional_encoding_type: str = 'sincos'
  scaling: Union[str, bool, None] = 'std'
  loss: Optional[str] = 'mse'
  init_std: float = 0.02
  post_init: bool = False
  norm_eps: float = 1e-5
  adaptive_patching_levels: int = _field(0, architecture=True)
  resolution_prefix_tuning: bool = _field(False, architecture=True)
  frequency_token_vocab_size: int = _field(5, shape=True)
  head_dropout: float = 0.2
  distribution_output: str = 'student_t'
  num_parallel_samples: int = 100
  decoder_num_layers: int = _field(8, architecture=True)
  decoder_d_model: int = _field(8, architecture=True, shape=True)
  decoder_adaptive_patching_levels: int = 0
  decoder_raw_residual: bool = False
  decoder_mode: str = _field('common_channel', architecture=True)
  use_decoder: bool = True
  enable_forecast_channel_mixing: bool = _field(False, architecture=True)
  fcm_gated_attn: bool = True
  fcm_context_length: int = _field(1, shape=True)
  fcm_use_mixer: bool = False
  fcm_mix_layers: int = 2
  fcm_prepend_past: bool = True
  fcm_prepend_past_offset: Optional[int] = None
  categorical_vocab_size_list: Optional[Tuple[int, ...]] = _field(
      None, shape=True)
  prediction_filter_length: Optional[int] = _field(
      None, architecture=True, shape=True)
  init_linear: str = 'pytorch'
  init_embed: str = 'pytorch'
  quantile: float = 0.5
  huber_delta: float = 1.0
  mask_value: float = 0
  num_patches: Optional[int] = None
  masked_context_length: Optional[int] = None
  multi_quantile_head: bool = False
  quantile_levels: Tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                        0.8, 0.9)
  point_extra_weight: float = 0
  mq_hidden: int = 8
  mq_kernel_size: int = 3
  mq_eps: float = 1e-6
  mq_use_decoder_pool: bool = False
  mq_q50_type: str = 'median'
  mq_cond_path: str = 'pool'
  mq_cond_mode: str = 'add'
  mq_decoder_d_model: int = 8
  penalize_large_width_ratio: float = 0.0
  width_penalty_mode: str = 'boundary'
  # r3 (granite-tsfm branch ttm-r3-release-mq2-merge).
  multi_scale: bool = _field(False, architecture=True, shape=True)
  register_tokens: int = _field(0, architecture=True, shape=True)
  fft_length: int = _field(0, architecture=True, shape=True)
  use_fft_embedding: bool = _field(True, shape=True)
  enable_base_norm_always: bool = _field(False, architecture=True,
                                         shape=True)
  light_mode: bool = False
  decompose: bool = _field(False, architecture=True, shape=True)
  residual_context_length: Optional[int] = _field(None, architecture=True,
                                                  shape=True)
  trend_patch_length: Optional[int] = _field(None, shape=True)
  trend_patch_stride: Optional[int] = None
  trend_d_model: Optional[int] = _field(None, shape=True)
  trend_decoder_d_model: Optional[int] = _field(None, shape=True)
  trend_num_layers: Optional[int] = None
  trend_decoder_num_layers: Optional[int] = None
  trend_register_tokens: Optional[int] = _field(None, shape=True)
  trend_fft_length: Optional[int] = _field(None, shape=True)
  trend_multi_scale: Optional[bool] = _field(None, shape=True)
  trend_adaptive_patching_levels: Optional[int] = None
  trend_head_d_model: Optional[int] = None
  trend_loss_weight: float = 1
  residual_loss_weight: float = 1
  joint_loss_weight: float = 1
  forecast_loss_type: str = 'joint'
  combine_quantiles_via_variance: bool = False
  mq_use_positional: bool = False
  # r3 options the branch reads with getattr (R3_HIDDEN_DEFAULTS).
  gate_mode: str = _field('softmax', shape=True)
  gate_groups: int = 8
  get_one_freq_emb: bool = _field(False, shape=True)
  fft_ignore_dc: bool = False
  fft_d_freq_min: int = _field(4, shape=True)
  fft_d_freq_max: int = _field(64, shape=True)

  def __post_init__(self):
    config_rules.check_fields({name: getattr(self, name)
                               for name in self.field_names()})
    setter = lambda name, value: object.__setattr__(self, name, value)
    setter('quantile_levels', tuple(float(q) for q in self.quantile_levels))
    for name in ('prediction_channel_indices', 'exogenous_channel_indices',
                 'categorical_vocab_size_list'):
      value = _as_tuple(getattr(self, name))
      if value is not None and name != 'categorical_vocab_size_list':
        value = tuple(sorted(value))
      setter(name, value)
    # As `check_and_init_preprocessing`: eci alone makes pci its complement.
    if (self.exogenous_channel_indices is not None
        and self.prediction_channel_indices is None):
      setter('prediction_channel_indices', tuple(sorted(
          set(range(self.num_input_channels))
          - set(self.exogenous_channel_indices))))
    expected = self._expected_num_patches()
    if self.num_patches is None:
      setter('num_patches', expected)
    config_rules.check_combinations(self, expected)

  # ---------------------------------------------------------------- derived
  @property
  def sequence_length(self) -> int:
    """Steps the model reads: `masked_context_length` or `context_length`."""
    if self.masked_context_length is not None:
      return self.masked_context_length
    return self.context_length

  @property
  def num_base_patches(self) -> int:
    """Patches cut from the input (without the RPT prefix)."""
    return compute_num_patches(self.sequence_length, self.patch_length,
                               self.patch_stride)

  @property
  def output_length(self) -> int:
    """F': `prediction_filter_length` if set, else `prediction_length`."""
    return self.prediction_filter_length or self.prediction_length

  @property
  def num_output_channels(self) -> Optional[int]:
    """C' if `prediction_channel_indices` is set, else None (all channels)."""
    if self.prediction_channel_indices is None:
      return None
    return len(self.prediction_channel_indices)

  @property
  def scaler_type(self) -> str:
    if self.scaling == 'mean':
      return 'mean'
    if self.scaling == 'std' or self.scaling is True:
      return 'std'
    return 'none'

  @property
  def needs_fixed_channels(self) -> bool:
    """Whether weights depend on `num_input_channels`."""
    return (self.mode == 'mix_channel' or self.decoder_mode == 'mix_channel'
            and self.use_decoder or self.enable_forecast_channel_mixing)

  @property
  def num_embedded_patches(self) -> int:
    """Patches the patch embedding makes: `num_base_patches`, or with
    multi_scale those of every scale."""
    if self.multi_scale:
      return multi_scale_num_patches(self.context_length, self.patch_length)
    return self.num_base_patches

  def _expected_num_patches(self) -> int:
    if self.decompose:
      # The reference's residual branch is a copy of this config (with
      # its context): a saved num_patches is that branch's.
      context = self.residual_context_length or self.context_length
      if self.multi_scale:
        base = multi_scale_num_patches(context, self.patch_length)
      else:
        base = compute_num_patches(context, self.patch_length,
                                   self.patch_stride)
    else:
      base = self.num_embedded_patches
    return (base + int(bool(self.resolution_prefix_tuning))
            + self.register_tokens + self.num_fft_tokens)

  @property
  def num_fft_tokens(self) -> int:
    """Tokens the FFT embedding prepends: `fft_length`, or one with
    `get_one_freq_emb` (the branch's num_patches counts these)."""
    if self.fft_length > 0 and self.get_one_freq_emb:
      return 1
    return self.fft_length

  @property
  def fft_count(self) -> int:
    """k: rFFT indices the FFT embedding takes (`fft_length` capped at the
    `context_length // 2 + 1` bins)."""
    return min(self.fft_length, self.context_length // 2 + 1)

  @property
  def fft_d_freq(self) -> int:
    """Width of each index's embedding with `get_one_freq_emb`."""
    raw = max(1, self.d_model // max(1, self.fft_count))
    return max(self.fft_d_freq_min, min(self.fft_d_freq_max, raw))

  # ----------------------------------------------- the decomposed model
  def trend_config(self) -> 'TTMConfig':
    """The trend branch's config, as the reference's `_init_decomposed`
    derives it: the `trend_*` values that are set, no scaler."""
    changes = {name[len('trend_'):]: getattr(self, name)
               for name in TREND_FIELDS if getattr(self, name) is not None}
    return self._branch_config(**changes)

  def residual_config(self) -> 'TTMConfig':
    """The residual branch's config: `residual_context_length`, no
    scaler."""
    changes = {}
    if self.residual_context_length is not None:
      changes['context_length'] = self.residual_context_length
    return self._branch_config(**changes)

  def _branch_config(self, **changes) -> 'TTMConfig':
    values = {name: getattr(self, name) for name in self.field_names()}
    values.update(changes, scaling=None, num_patches=None, decompose=False,
                  residual_context_length=None)
    values.update({name: None for name in TREND_FIELDS})
    return TTMConfig(**values)

  # --------------------------------------------------------- serialisation
  @classmethod
  def field_names(cls) -> Tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))

  @classmethod
  def from_dict(cls, values: Mapping[str, Any], **overrides) -> 'TTMConfig':
    """Builds a config from a reference config dict plus overrides.

    Overrides behave as the reference's `from_pretrained(path, **kwargs)`:
    they replace the file's values, while derived fields saved in the file
    (`num_patches`) are kept, never recomputed.

    Raises:
      ConfigError: for r3 keys, unknown override names, contradictions.
    """
    names = set(cls.field_names())
    bad_overrides = sorted(set(overrides) - names)
    if bad_overrides:
      raise ConfigError(f'Unknown TTMConfig fields in overrides: '
                        f'{bad_overrides}. Valid fields: {sorted(names)}.')
    merged = dict(values)
    merged.update(overrides)
    if merged.get('model_type', MODEL_TYPE) != MODEL_TYPE:
      raise ConfigError(f'config.json has model_type='
                        f'{merged["model_type"]!r}, not {MODEL_TYPE!r}.')
    config_rules.check_hidden_options(merged)
    architectures = values.get('architectures') or ()
    if 'decompose' not in overrides:
      if DECOMPOSED_ARCHITECTURE in architectures:
        merged['decompose'] = True
      elif PREDICTION_ARCHITECTURE in architectures and merged.get(
          'decompose'):
        # Saved by TinyTimeMixerForPrediction: its weights are a plain TTM.
        _LOG.warning('config.json says decompose=true but was saved by %s: '
                     'loading a plain TTM, as its weights are.',
                     PREDICTION_ARCHITECTURE)
        merged['decompose'] = False
    unknown = sorted(
        set(merged) - names - UNUSED_KEYS - set(R3_HIDDEN_DEFAULTS))
    if unknown:
      _LOG.warning('Ignoring config keys that TinyTimeMixer does not use: %s',
                   unknown)
    return cls(**{k: merged[k] for k in names if k in merged})

  def replace(self, **changes) -> 'TTMConfig':
    """A copy with `changes`; derived `num_patches` kept unless given."""
    return TTMConfig.from_dict(self.to_dict(), **changes)

  def to_dict(self) -> dict:
    """The reference's config.json content (loads in `from_pretrained`)."""
    out = {}
    for name in self.field_names():
      value = getattr(self, name)
      if isinstance(value, tuple):
        value = list(value)
      out[name] = value
    for name, default in R3_HIDDEN_DEFAULTS.items():
      if name in out and out[name] == default:
        del out[name]  # The branch's config.json has them only when set.
    out.update(model_type=MODEL_TYPE,
               architectures=[PREDICTION_ARCHITECTURE],
               init_processing=True, patch_last=True)
    if self.decompose:
      # As the reference's decomposed model saves itself: its config was
      # never preprocessed (each branch derives its own num_patches).
      out.update(architectures=[DECOMPOSED_ARCHITECTURE],
                 init_processing=False)
      del out['num_patches']
    return out

  @classmethod
  def from_json_file(cls, path: Union[str, os.PathLike],
                     **overrides) -> 'TTMConfig':
    with open(path, encoding='utf-8') as f:
      try:
        values = json.load(f)
      except json.JSONDecodeError as e:
        raise ConfigError(f'{path} is not valid JSON: {e}') from e
    if not isinstance(values, dict):
      raise ConfigError(f'{path} must hold a JSON object of config fields, '
                        f'not {type(values).__name__}.')
    try:
      return cls.from_dict(values, **overrides)
    except ConfigError as e:
      given = f' (with overrides {overrides})' if overrides else ''
      raise ConfigError(f'{path}{given}: {e}') from e

  def to_json_file(self, path: Union[str, os.PathLike]) -> None:
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(self.to_dict(), f, indent=2, sort_keys=True)
      f.write('\n')


def _marked(key: str) -> Tuple[str, ...]:
  return tuple(f.name for f in dataclasses.fields(TTMConfig)
               if f.metadata.get(key))


# Fields declared with `architecture=True` / `shape=True` (see `_field`).
ARCHITECTURE_FIELDS = _marked('architecture')
SHAPE_FIELDS = _marked('shape')
