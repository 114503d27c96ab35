"""`ttm_jax.forecast` and `ttm_jax.backtest`: a DataFrame in, forecasts (and
a backtest report) out, with IBM's pretrained TTMs or any checkpoint.

  forecasts = ttm_jax.forecast(df, timestamp_column='date', horizon=96,
                               checkpoint='auto', quantiles=[0.1, 0.9])

Arguments: every argument is checked before any work (type, range, column
roles), each refusal one `ConfigError`/`DataError` line naming it.

Context: the last `context_length` rows of each series; NaN is missing. A
shorter history, however short (one row), is padded in front and masked,
said in one warning per call (`short_history='error'` refuses it instead,
naming the series); a target with no observed value in its context is
refused, naming the series and column. Each context is standardised per
channel in float64 before the model and the forecast mapped back, so an
offset of 1e9 or a scale of 1e-9 gives the same forecast, shifted or
scaled back. How histories become the model's inputs (pads, gaps,
standardisation) is `inputs` (`ttm_jax.inference.inputs`: 'default',
chosen on validation data, or 'reference', exactly IBM's pipeline), the
same option the benchmark runner takes. Horizon: shorter than
the model's, its first steps; longer, rolling (forecasts fed back; models
that mix exogenous channels take the controls' future values from
`future_df`). Intervals: the model's quantile heads when it has them, else
split-conformal from the series' own history; a level needs enough
calibration windows (about 1/alpha - 1 for miscoverage alpha = 2q: 4 for
0.1/0.9, 49 for 0.01/0.99), else it is refused saying how many. `finetune=F`
head-probes the model on the first F of each history (the engine's recipe,
validation on the rest) before forecasting from the end, in memory (its
checkpoints and metrics in `finetune_dir` when given).

Covariates: `past_covariates` (known up to each forecast origin),
`known_covariates` (their future values in `future_df`) and
`static_covariates` (one value per series), numeric or categorical. A
model without an exogenous mixer reads them by in-context ridge regression
fitted per series on its context (`regression`, `inference.covariates`);
`finetune=F` with covariates trains the model's exogenous mixer on them
instead (each series' history alone; the forecast then reads the known
covariates' future from `future_df`). `control_columns` stay the
channels of a model that already has an exogenous mixer (covariates are
refused for one). Misaligned covariates
(`future_df` short of the horizon, missing a column, a series, or a value;
ids of no series; a covariate that is also a target) are refused naming
the column and the first bad rows.

Timestamps must be dates or times; numbers (epoch seconds, ...) are
refused: convert them with `pd.to_datetime(..., unit=...)` first. A given
`freq` must agree with the timestamps. Backtest metrics that are undefined
(MASE of a constant history) are None with a `<metric>_undefined` reason.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ttm_jax import baselines
from ttm_jax import errors
from ttm_jax.data import categoricals
from ttm_jax.evaluators import backtest as backtest_lib
from ttm_jax.inference import choice
from ttm_jax.inference import covariates as covariates_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib
from ttm_jax.predict import arguments
from ttm_jax.inference import conformal
from ttm_jax.predict import finetune as finetune_lib
from ttm_jax.predict import frames
from ttm_jax.predict import rolling

_LOG = logging.getLogger(__name__)


def _load(checkpoint, revision, frame, horizon, checkpoints_dir,
          allow_download, categorical_vocab=None) -> model_lib.Model:
  release = choice.release_of(checkpoint)
  if checkpoint == 'auto' or release:
    history = min(len(s.values) for s in frame.series)
    checkpoint, revision = choice.choose_checkpoint(
        history, horizon, frame.freq, checkpoints_dir, allow_download,
        release)
  forecaster = model_lib.Model(checkpoint, revision)
  frames.check_controls(frame, forecaster.uses_controls, forecaster.source)
  frames.check_covariates(frame, forecaster.uses_controls, forecaster.source)
  forecaster.vocabulary = categoricals.for_forecast(
      forecaster.vocabulary, categorical_vocab,
      frame.static_categorical_columns, [s.categoricals for s in frame.series],
      forecaster.config.categorical_vocab_size_list, forecaster.source)
  forecaster.check_channels(
      frame.num_targets, len(frame.control_columns)
      if forecaster.uses_controls else 0)
  return forecaster


def _quantile_bands(forecaster, frame, point, horizon, levels, windows,
                    inputs, regression):
  """Per series {level: [h, targets]}: conformal from each history."""
  needed = conformal.windows_needed(levels)
  out = []
  for index, series in enumerate(frame.series):
    residuals = rolling.calibration(forecaster, frame, index,
                                    len(series.values), horizon, windows,
                                    needed, inputs, regression)
    out.append(conformal.bands(point[index], residuals, levels))
  return out


def _use_head(forecaster, intervals: str, levels, horizon: int,
              calibration_windows: int) -> bool:
  """Whether the intervals come from the model's quantile head ('model',
  or 'auto' with a head) rather than conformal calibration; refuses levels
  the head lacks, or that need more calibration windows than
  `calibration_windows`."""
  if not levels:
    return False
  if intervals == 'model' or (intervals == 'auto'
                              and forecaster.quantile_levels):
    forecaster.check_quantiles(levels, horizon)
    return True
  needed = conformal.windows_needed(levels)
  if needed > calibration_windows:
    extreme = min(levels, key=lambda q: min(q, 1 - q))
    raise errors.ConfigError(
        f'quantiles: the level {extreme:g} needs at least {needed} '
        f'calibration windows for a finite conformal bound, but '
        f'calibration_windows={calibration_windows}: raise '
        'calibration_windows (and give that much history), or ask for less '
        'extreme levels.')
  return False


def _head_bands(forecaster, quantiles, levels):
  """Per window {level: [h, targets]} from the head's [n, h, targets, q]."""
  index = {q: min(range(len(forecaster.quantile_levels)), key=lambda k: abs(
      forecaster.quantile_levels[k] - q)) for q in levels}
  return [{q: window[..., index[q]] for q in levels} for window in quantiles]


def _prepare(df, timestamp_column, id_columns, target_columns,
             control_columns, static_categorical_columns, freq, regularize,
             past_covariates=(), known_covariates=(), static_covariates=(),
             categorical_covariates=()):
  return frames.to_series(df, timestamp_column, id_columns, target_columns,
                          control_columns, static_categorical_columns, freq,
                          regularize, past_covariates, known_covariates,
                          static_covariates, categorical_covariates)


def _regression(frame: frames.Frame, regression, finetune) -> (
    covariates_lib.Regression):
  """The regression options; refuses them where a fine-tune trains an
  exogenous mixer on the covariates instead; says once that static
  covariates change no zero-shot forecast (a per-series regression's
  intercept absorbs them), or that numeric ones are no part of a
  fine-tune."""
  dynamic = frame.dynamic_covariates
  if finetune and dynamic and regression is not None:
    raise errors.ConfigError(
        f'regression={regression!r} is for zero-shot covariates (in-context '
        'regression); with finetune= the covariates train the model\'s '
        'exogenous mixer instead. Leave regression out, or finetune.')
  numeric = [c for c in frame.static_covariates
             if c not in frame.categorical_covariates]
  if finetune and numeric:
    _LOG.warning(
        'static_covariates %s are numeric: a fine-tune reads static '
        'covariates through the model\'s static categorical embeddings, '
        'so it does not use them (name them in categorical_covariates to '
        'embed their values).', numeric)
  if frame.static_covariates and not finetune:
    _LOG.warning(
        'static_covariates %s are constant within each series: the '
        'per-series in-context regression\'s intercept absorbs them, so '
        'they change no zero-shot forecast (a fine-tune, finetune=, reads '
        'categorical ones through the model\'s static categorical '
        'embeddings).', frame.static_covariates)
  return covariates_lib.of(regression)


def _last(frame: frames.Frame, context: Optional[int]) -> frames.Frame:
  """At most the last `context` rows of each series (all without)."""
  if not context:
    return frame
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(frame, series=[
      dataclasses.replace(s, values=s.values[-context:],
                          timestamps=s.timestamps[-context:],
                          covariates=None if s.covariates is None
                          else s.covariates[-context:])
      for s in frame.series])


def forecast(df, *, timestamp_column: str, horizon: int, checkpoint: str,
             id_columns: Sequence[str] = (),
             target_columns: Optional[Sequence[str]] = None,
             control_columns: Sequence[str] = (),
             static_categorical_columns: Sequence[str] = (),
             future_df=None, quantiles: Optional[Sequence[float]] = None,
             context: Optional[int] = None, finetune: Optional[float] = None,
             revision: str = '', freq: Optional[str] = None,
             regularize: bool = False, checkpoints_dir: Optional[str] = None,
             allow_download: bool = False,
             calibration_windows: int = arguments.CALIBRATION_WINDOWS,
             intervals: str = 'auto', short_history: str = 'pad',
             finetune_dir: Optional[str] = None, inputs='default',
             categorical_vocab=None, past_covariates: Sequence[str] = (),
             known_covariates: Sequence[str] = (),
             static_covariates: Sequence[str] = (),
             categorical_covariates: Sequence[str] = (), regression=None):
  """Forecasts `horizon` steps after the end of every series of `df`.

  Args:
    df: long (with `id_columns`) or wide frame.
    timestamp_column: its time column (dates or times, not numbers).
    horizon: steps to forecast (an integer >= 1).
    checkpoint: a folder, a hub id, a bundled name, 'auto' (the
      reference's get_model rule among `checkpoints_dir` /
      $TTM_CHECKPOINTS, then IBM's r2 on the hub if `allow_download`), or
      'auto:<hub id>' (that release's rule, e.g. 'auto:ibm-research/ttm-r3'
      for r3, decomposed or not; needs `allow_download`).
    id_columns, target_columns, control_columns, static_categorical_columns:
      column roles, lists of names, each column in one role (targets
      default to every other column).
    future_df: the future values of the controls (for models that mix
      them) and of the known covariates: id columns, `timestamp_column`
      and those columns, a row per series and forecast step (rows at
      other times are ignored).
    quantiles: unique levels in (0, 1) for `<target>_q<level>` columns.
    context: use at most this many last rows of history (>= 1).
    finetune: head-probe on the first `finetune` (in (0, 1)) of each
      history first; with covariates, the model gets an exogenous mixer
      over them first (`recipes.exogenous_fields`), trained with the head.
    revision, freq, regularize, checkpoints_dir, allow_download,
    calibration_windows: see the module docstring (`freq` must agree with
      the data).
    intervals: where the quantiles come from: 'model' (the model's
      multi-quantile head; an error for a point model), 'conformal'
      (split-conformal from each history), or 'auto' (the head when the
      model has one, else conformal).
    short_history: 'pad' (a history shorter than the model's context is
      padded in front and masked, however short; one warning per call) or
      'error' (refused, naming the series).
    finetune_dir: a new or empty folder to keep the fine-tuning run's
      checkpoints and metrics in (default: none, in memory).
    inputs: how histories become the model's inputs: 'default', 'reference'
      (exactly what IBM's pipeline feeds), 'legacy_api', a dict of
      `inference.inputs.Inputs` options, or an `Inputs`.
    categorical_vocab: the static categoricals' codes in training, for a
      model saved without them: a categorical_vocab.json (the training
      run's), a folder holding one, or a dict in its format
      (`ttm_jax.data.categoricals`). Without it such a model forecasts
      only series holding every value it embeds (a subset is refused).
    past_covariates: columns of `df` known only up to each forecast origin
      (the regression reads them lagged by the horizon).
    known_covariates: columns of `df` known in the future too, their
      future values in `future_df`.
    static_covariates: columns of `df` with one value per series.
    categorical_covariates: covariates to one-hot encode although they
      hold numbers (columns that are neither numbers nor booleans are
      categorical anyway).
    regression: how covariates enter a model without an exogenous mixer
      (zero-shot): a dict of `inference.covariates.Regression` options
      (order 'xreg+ttm' or 'ttm+xreg', ridge, time_features) or a
      `Regression`; default: `Regression()`, chosen on validation
      (docs/forecasting.md). Refused with `finetune` and covariates: the
      fine-tune trains the model's exogenous mixer on them instead.

  Returns:
    A DataFrame: id columns, `timestamp_column`, one column per target, and
    the quantile columns.

  Raises:
    errors.ConfigError, errors.DataError: one line naming the argument,
      column or series (every argument is checked before any work).
  """
  arguments.check_arguments(**{k: v for k, v in locals().items()
                               if k in arguments.ARGUMENTS})
  horizon = int(horizon)
  inputs = inputs_lib.of(inputs)
  levels = conformal.check_levels(quantiles or ())
  whole = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, past_covariates, known_covariates,
                   static_covariates, categorical_covariates)
  regression = _regression(whole, regression, finetune)
  if finetune and whole.dynamic_covariates:
    inputs_lib.check_for_mixer(inputs)  # Before any work.
  frame = _last(whole, context and int(context))
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download, categorical_vocab)
  head = _use_head(forecaster, intervals, levels, horizon,
                   int(calibration_windows))
  ends = [(i, len(s.values)) for i, s in enumerate(frame.series)]
  rolling.check_histories(forecaster, frame, ends, short_history)
  futures = frames.read_future(frame, future_df, horizon)
  ahead = _with_futures(frame, futures)
  if finetune:
    channels = frames.covariate_channels(whole)
    if channels.names or channels.static:
      # The covariates become the channels of the exogenous mixer the
      # fine-tune trains (docs/forecasting.md).
      whole, frame, ahead = (frames.with_channels(f, channels)
                             for f in (whole, frame, ahead))
    else:
      channels = None
    forecaster = finetune_lib.finetuned(forecaster, whole, float(finetune),
                                        finetune_dir, channels, inputs)
  predicted = rolling.forecast_at(forecaster, ahead, ends, horizon, inputs,
                                  with_quantiles=head, regression=regression)
  if head:
    point, quantiles = predicted
    return frames.to_frame(frame, point, levels,
                           _head_bands(forecaster, quantiles, levels))
  bands = (_quantile_bands(forecaster, frame, predicted, horizon, levels,
                           int(calibration_windows), inputs, regression)
           if levels else None)
  return frames.to_frame(frame, predicted, levels, bands)


def _with_futures(frame: frames.Frame,
                  futures: frames.Futures) -> frames.Frame:
  """The frame with the future values of the controls and known
  covariates (`future_df`) appended to each series as rows after its end
  (targets and past-only covariates missing there), so forecasts from its
  end read them as known futures."""
  if futures.controls is None and futures.known is None:
    return frame
  import dataclasses  # pylint: disable=g-import-not-at-top
  out = []
  for k, series in enumerate(frame.series):
    horizon = len((futures.controls if futures.controls is not None
                   else futures.known)[k])
    rows = np.full((horizon, series.values.shape[1]), np.nan)
    if futures.controls is not None:
      rows[:, frame.num_targets:] = futures.controls[k]
    changes = dict(values=np.concatenate([series.values, rows]))
    if series.covariates is not None:
      extra = np.full((horizon, series.covariates.shape[1]), np.nan)
      if futures.known is not None:
        extra[:, :futures.known.shape[2]] = futures.known[k]
      changes['covariates'] = np.concatenate([series.covariates, extra])
    out.append(dataclasses.replace(series, **changes))
  return dataclasses.replace(frame, series=out)


def backtest(df, *, timestamp_column: str, horizon: int, checkpoint: str,
             windows: int = 5, quantiles: Sequence[float] = (0.1, 0.9),
             id_columns: Sequence[str] = (),
             target_columns: Optional[Sequence[str]] = None,
             control_columns: Sequence[str] = (),
             static_categorical_columns: Sequence[str] = (),
             revision: str = '', freq: Optional[str] = None,
             regularize: bool = False, checkpoints_dir: Optional[str] = None,
             allow_download: bool = False,
             calibration_windows: int = arguments.CALIBRATION_WINDOWS,
             intervals: str = 'auto',
             short_history: str = 'pad', inputs='default',
             categorical_vocab=None, past_covariates: Sequence[str] = (),
             known_covariates: Sequence[str] = (),
             static_covariates: Sequence[str] = (),
             categorical_covariates: Sequence[str] = (),
             regression=None) -> Dict[str, Any]:
  """Rolling-origin evaluation over the last `windows` forecast windows of
  every series (origins `horizon` apart, ending at the series' end), by
  the backtest evaluator (`ttm_jax.evaluators.backtest`): MSE, MAE and
  MASE of the model, of seasonal naive and of repeat-last on the same
  windows, and the coverage of each central interval (from the model's
  quantile head, or conformal from the history before each origin:
  `intervals` as in `forecast`).

  Arguments are checked as in `forecast` (`categorical_vocab` and the
  covariates too: the known covariates' values after each origin are
  read from `df`, the past-only ones only before it). An
  origin needs one row of history before it (shorter than the context:
  padded, or refused with short_history='error'), and with conformal
  intervals enough history for the calibration windows its levels need.
  A metric that is undefined (MASE when a window's history is constant)
  is None, with the reason in `<metric>_undefined`; the report is strict
  JSON."""
  arguments.check_arguments(**{k: v for k, v in locals().items()
                               if k in arguments.ARGUMENTS})
  horizon, windows = int(horizon), int(windows)
  inputs = inputs_lib.of(inputs)
  levels = conformal.check_levels(quantiles or ())
  frame = _prepare(df, timestamp_column, id_columns, target_columns,
                   control_columns, static_categorical_columns, freq,
                   regularize, past_covariates, known_covariates,
                   static_covariates, categorical_covariates)
  regression = _regression(frame, regression, None)
  forecaster = _load(checkpoint, revision, frame, horizon, checkpoints_dir,
                     allow_download, categorical_vocab)
  head = _use_head(forecaster, intervals, levels, horizon,
                   int(calibration_windows))
  season = baselines.season_length(frame.freq)
  needed = (max(2, conformal.windows_needed(levels))
            if levels and not head else 0)
  min_history = (forecaster.config.patch_length + horizon + needed - 1
                 if needed else 1)
  requests = backtest_lib.origins(
      [len(s.values) for s in frame.series], horizon, windows, min_history,
      [rolling.describe(frame, i) for i in range(len(frame.series))])
  rolling.check_histories(forecaster, frame, requests, short_history,
                          'backtest')
  predicted = rolling.forecast_at(forecaster, frame, requests, horizon,
                                  inputs, head, regression)
  if head:
    predicted, quantiles = predicted
    bands = _head_bands(forecaster, quantiles, levels)
  else:
    bands = [conformal.bands(predicted[k], rolling.calibration(
        forecaster, frame, i, origin, horizon, int(calibration_windows),
        needed, inputs, regression), levels)
             for k, (i, origin) in enumerate(requests)] if levels else None
  t = frame.num_targets
  windows_ = backtest_lib.Windows.of([s.values[:, :t] for s in frame.series],
                                     requests, horizon, season)
  report = dict(windows=windows, horizon=horizon, season=season,
                series=len(frame.series), checkpoint=forecaster.source)
  report.update(backtest_lib.run(
      windows_, predicted, horizon,
      backtest_lib.collect_bands(bands) if bands else None))
  report['intervals'] = 'model' if head else 'conformal'
  report['inputs'] = inputs.name
  if frame.has_covariates:
    report['covariates'] = dict(
        known=frame.known_covariates, past=frame.past_covariates,
        static=frame.static_covariates,
        categorical=frame.categorical_covariates,
        regression=regression.as_dict())
  return report
