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
    # flags overlaps with it).
    'pretraining_data',
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

# Keys of the unreleased "r3" TTM (multi-quantile head, decomposition, register
# tokens, FFT embedding, multi-scale, other gates), with the value that leaves
# the model as released. granite-tsfm 0.3.11 writes all of them, at these
# values, into every config.json it saves; any other value is a model this
# port does not implement and is rejected.
R3_INERT_VALUES: Mapping[str, Any] = {
    'multi_scale': False,
    'register_tokens': 0,
    'fft_length': 0,
    'use_fft_embedding': True,
    'residual_context_length': None,
    'trend_patch_length': None,
    'trend_patch_stride': None,
    'trend_d_model': None,
    'trend_decoder_d_model': None,
    'trend_num_layers': None,
    'trend_decoder_num_layers': None,
    'trend_register_tokens': None,
    'trend_fft_length': None,
    'trend_multi_scale': None,
    'trend_adaptive_patching_levels': None,
    'trend_head_d_model': None,
    'trend_loss_weight': 1,
    'residual_loss_weight': 1,
    'joint_loss_weight': 1,
    'forecast_loss_type': 'joint',
    'decompose': False,
    'light_mode': False,
    'mq_use_positional': False,
    'combine_quantiles_via_variance': False,
    'enable_base_norm_always': False,
    'gate_mode': 'softmax',
    'use_register_context_gating': False,
    'get_one_freq_emb': False,
}
# Read by the reference only in r3 code paths; any value is inert for TTM.
R3_IGNORED_KEYS = frozenset({'gate_groups'})


ConfigError = errors.ConfigError


def compute_num_patches(sequence_length: int, patch_length: int,
                        patch_stride: int) -> int:
  """Patches that `TinyTimeMixerPatchify` cuts from `sequence_length` steps."""
  return (max(sequence_length, patch_length) - patch_length) // patch_stride + 1


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
    mq_use_decoder_pool: condition the head on the decoder state (r3; not
      implemented here: refused).
    mq_q50_type: 'median' (the point forecast plus a learned bias) or
      'mean' (the point forecast itself) as the central quantile.
    mq_cond_path, mq_cond_mode, mq_decoder_d_model: r3's conditioning
      options (only read with mq_use_decoder_pool).
    penalize_large_width_ratio: r3's interval-width penalty (must be 0 here).
    width_penalty_mode: r3's width penalty form ('boundary' or 'wis').
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

  def _expected_num_patches(self) -> int:
    return self.num_base_patches + int(bool(self.resolution_prefix_tuning))

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
    r3 = sorted(
        k for k, inert in R3_INERT_VALUES.items()
        if k in merged and merged[k] != inert)
    if r3:
      raise ConfigError(
          'This config uses the unreleased TTM "r3" branch (non-default '
          f'{r3}: {[merged[k] for k in r3]}), which ttm-jax does not '
          'implement (see TTM_SPEC.md section 0).')
    unknown = sorted(
        set(merged) - names - UNUSED_KEYS - set(R3_INERT_VALUES)
        - R3_IGNORED_KEYS)
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
    out.update(model_type=MODEL_TYPE,
               architectures=['TinyTimeMixerForPrediction'],
               init_processing=True, patch_last=True)
    out.update({k: v for k, v in R3_INERT_VALUES.items()
                if k not in ('gate_mode', 'use_register_context_gating',
                             'get_one_freq_emb')})
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
