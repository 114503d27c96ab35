"""Covariates for a model without an exogenous mixer: in-context ridge
regression, fitted per series on its context alone, in either order of
TimesFM 2.5's `forecast_with_covariates` (its `xreg_mode`):

  'xreg+ttm'  regress the targets on the covariates over the context,
              forecast the residuals with TTM, and add the regression's
              values at the forecast steps ("xreg + timesfm");
  'ttm+xreg'  forecast with TTM, regress TTM's in-context errors on the
              covariates, and add the regression's forecast of the error
              ("timesfm + xreg"). The in-context errors are those of
              forecasts from backtest origins inside the context
              (`backtests.origins`: the last max(1, context // horizon)
              windows of `horizon` steps, each forecast from everything
              before its origin by the one path, with at least one patch
              of history), so each error has the lead times of the
              forecast it corrects.

Both are a thin layer over the one forecasting path (`forecast.forecast`):
TTM sees a target-only history (the residuals, or the targets), and the
regression only adds to its outputs (the point forecast and each quantile
of a quantile head alike).

Options (`Regression`) beyond the order and the ridge penalty:

  windows     'ttm+xreg' fits on this many in-context windows (0: those
              inside the model's context, as above; more lets the
              regression see further back than TTM does); 'xreg+ttm' on
              the last windows x horizon rows (0: the context).
  known       'value': a known covariate enters by its value;
              'surprise' ('ttm+xreg' only): a numeric known covariate
              enters by its deviation from TTM's own forecast of it from
              the same origin (its value minus what its past foretold),
              so TTM's error is explained by what the covariate did that
              its history did not foretell, and a daily cycle that the
              target and the covariate share is not credited to the
              covariate. Categorical ones and time features enter by
              value.
  gate        0: the regression's term is added as fitted. k > 0: per
              series and target, the term is scaled by a weight in
              [0, 1] fitted on the last k backtest windows of the
              history (each forecast with and without the covariates
              from everything before its origin): the least-squares
              weight of the covariates' change to the forecast against
              the errors of the forecast without them, so covariates
              that did not help in-context are turned down or off for
              that series.

The regressors of a forecast step or context row (`design`):

  known covariates  their value at that step (the future's from the
                    caller, e.g. `future_df`);
  past covariates   their value `horizon` steps earlier (lagged by the
                    horizon, so every forecast step has a value that was
                    observed before the forecast origin);
  numeric           standardised by their mean and deviation over the
                    fitted rows (a column constant there is all zero, so
                    it gets no weight), and at other rows clipped to the
                    range they took over the fitted rows (no
                    extrapolation: one outlier at a forecast step, as
                    metro's rain_1h of 9,831 mm, would otherwise move the
                    forecast without bound); a missing value is the mean
                    (0);
  categorical       one-hot, one column per value seen in the fitted rows
                    (an unseen value, or a missing one, is all zero);
  intercept         a column of ones, not penalised.

Static covariates are constant within a series, so a per-series
regression's intercept absorbs them: they change no forecast here (the
forecasting API says so; a fine-tune uses categorical ones). Time
features (`time_features`: calendar fields of each step's timestamp) are
known categorical covariates the caller adds.

The defaults (`Regression()`) were chosen on the covariate suite's
validation split (benchmarks/covariate_order.py; docs/results/
2026-12-07-covariate-suite.md).

A regression-only baseline (`regression_only`: the targets regressed on
the covariates alone over each history, no TTM) measures what the
covariates explain by themselves.

The fit is ridge: beta minimises |y - X beta|^2 + ridge |beta[1:]|^2 over
the rows where the target (or TTM's error) is observed, by least squares
on the augmented system (the minimum-norm solution where columns are
collinear, e.g. ridge 0 with every value of a categorical present), each
target column on its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from ttm_jax import checks
from ttm_jax import errors
from ttm_jax.inference import backtests
from ttm_jax.inference import forecast as forecast_lib
from ttm_jax.inference import inputs as inputs_lib
from ttm_jax.inference import model as model_lib

ORDERS = ('xreg+ttm', 'ttm+xreg')
KNOWN = ('value', 'surprise')
# Calendar fields a time feature may be (pandas DatetimeIndex attributes),
# each a known categorical covariate.
TIME_FEATURES = ('minute', 'hour', 'dayofweek', 'day', 'month', 'quarter',
                 'weekofyear')
# The defaults were chosen on the covariate suite's validation split by a
# rule fixed before the grid ran (benchmarks/covariate_order.py stage 3;
# docs/results/2026-12-07-covariate-suite.md): among the 36 settings that
# hurt no task by more than 2%, the lowest geometric mean of MASE over no
# covariates (0.929: Beijing's weather -34%, the others within 2%).
DEFAULT_ORDER = 'ttm+xreg'
DEFAULT_RIDGE = 100.0
DEFAULT_WINDOWS = 40
DEFAULT_KNOWN = 'surprise'
DEFAULT_GATE = 5


@dataclasses.dataclass(frozen=True)
class Regression:
  """How covariates enter a model without an exogenous mixer (module
  docstring).

  Attributes:
    order: 'xreg+ttm' (regress, then forecast the residuals) or 'ttm+xreg'
      (forecast, then regress the in-context errors).
    ridge: the penalty on every coefficient but the intercept, in units of
      the standardised regressors (>= 0; 0 is least squares).
    time_features: calendar fields of the timestamps added as known
      categorical covariates (`TIME_FEATURES`), e.g. ('hour', 'dayofweek').
    windows: the in-context windows the regression fits on (0: the
      model's context; module docstring).
    known: how known covariates enter: 'value', or 'surprise' (their
      deviation from TTM's forecast of them; 'ttm+xreg' only: a dict
      that sets order 'xreg+ttm' alone gets 'value').
    gate: backtest windows of the per-series weight on the covariates'
      term (0: none; module docstring).
  """
  order: str = DEFAULT_ORDER
  ridge: float = DEFAULT_RIDGE
  time_features: Tuple[str, ...] = ()
  windows: int = DEFAULT_WINDOWS
  known: str = DEFAULT_KNOWN
  gate: int = DEFAULT_GATE

  def check(self) -> 'Regression':
    """Itself, or one ConfigError naming the bad option."""
    if self.order not in ORDERS:
      raise errors.ConfigError(f'regression order={self.order!r}: expected '
                               f'one of {ORDERS}.')
    if (isinstance(self.ridge, bool)
        or not isinstance(self.ridge, (int, float, np.floating))
        or not np.isfinite(self.ridge) or self.ridge < 0):
      raise errors.ConfigError(f'regression ridge={self.ridge!r}: expected '
                               'a finite number >= 0.')
    for name in ('windows', 'gate'):
      value = getattr(self, name)
      if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
          or value < 0):
        raise errors.ConfigError(f'regression {name}={value!r}: expected '
                                 'an integer >= 0.')
    if self.known not in KNOWN:
      raise errors.ConfigError(f'regression known={self.known!r}: expected '
                               f'one of {KNOWN}.')
    if self.known == 'surprise' and self.order != 'ttm+xreg':
      raise errors.ConfigError(
          "regression known='surprise' regresses TTM's in-context errors "
          "on the covariates' own forecast errors: it needs "
          f"order='ttm+xreg' (not {self.order!r}), or give known='value'.")
    features = self.time_features
    if isinstance(features, str) or not isinstance(features, (list, tuple)):
      raise errors.ConfigError(
          f'regression time_features={features!r}: expected a list of '
          f'names among {TIME_FEATURES}.')
    unknown = [f for f in features if f not in TIME_FEATURES]
    if unknown or len(set(features)) != len(features):
      raise errors.ConfigError(
          f'regression time_features={list(features)!r}: '
          + (f'unknown {unknown}' if unknown else 'a name given twice')
          + f'; expected distinct names among {TIME_FEATURES}.')
    return self

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)


def of(value) -> Regression:
  """A `Regression` from itself, None (the default) or a dict of its
  fields."""
  if value is None:
    return Regression()
  if isinstance(value, Regression):
    return value.check()
  if isinstance(value, dict):
    complaint = checks.unknown_options(Regression, value)
    if complaint:
      raise errors.ConfigError(f'regression: {complaint}.')
    value = dict(value)
    if value.get('order') == 'xreg+ttm' and 'known' not in value:
      value['known'] = 'value'  # The default 'surprise' is ttm+xreg's.
    if 'time_features' in value and isinstance(value['time_features'],
                                               list):
      value['time_features'] = tuple(value['time_features'])
    return Regression(**value).check()
  raise errors.ConfigError(f'regression={value!r}: expected a dict of '
                           'options (order, ridge, time_features, windows, '
                           'known, gate) or a Regression.')


@dataclasses.dataclass(frozen=True)
class Layout:
  """The covariate columns of a call.

  Attributes:
    past: names of the past-only covariates (columns of `Covariates.past`).
    known: names of the known covariates (columns of `Covariates.known`).
    categorical: the names whose values are category codes.
  """
  past: Tuple[str, ...] = ()
  known: Tuple[str, ...] = ()
  categorical: FrozenSet[str] = frozenset()

  def __bool__(self) -> bool:
    return bool(self.past or self.known)


@dataclasses.dataclass
class Covariates:
  """One history's covariates (NaN missing; a categorical's values are its
  codes, as floats).

  Attributes:
    past: [t, p] the past-only covariates over the history's t rows.
    known: [t + h, k] the known covariates over the history and the h
      forecast steps.
  """
  past: np.ndarray
  known: np.ndarray


def time_features(timestamps, names: Sequence[str]) -> np.ndarray:
  """[t, f] the calendar fields `names` (`TIME_FEATURES`) of timestamps,
  as category codes (the field's value)."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  index = pd.DatetimeIndex(timestamps)
  columns = []
  for name in names:
    if name == 'weekofyear':
      columns.append(index.isocalendar().week.to_numpy(np.float64))
    else:
      columns.append(np.asarray(getattr(index, name), np.float64))
  return (np.stack(columns, axis=1) if columns
          else np.zeros((len(index), 0)))


def _raw(covariates: Covariates, layout: Layout, rows: np.ndarray,
         horizon: int) -> List[Tuple[str, np.ndarray]]:
  """(name, values at `rows`) of every covariate: a known one at the row,
  a past one `horizon` rows earlier (NaN where that is before the
  history or past its end)."""
  out = []
  for k, name in enumerate(layout.known):
    out.append((name, covariates.known[rows, k]))
  past = covariates.past
  for k, name in enumerate(layout.past):
    lagged = rows - horizon
    inside = (lagged >= 0) & (lagged < len(past))
    values = np.full(len(rows), np.nan)
    values[inside] = past[lagged[inside], k]
    out.append((name, values))
  return out


def design(covariates: Covariates, layout: Layout, horizon: int,
           fit_rows: np.ndarray, other_rows: Sequence[np.ndarray] = ()
           ) -> Tuple[np.ndarray, List[np.ndarray]]:
  """The regressors (module docstring) at `fit_rows` and at each of
  `other_rows` (row r of the history, r >= t the forecast steps), with
  their encoding (standardisation, categories) taken from `fit_rows`.

  Returns:
    (X [len(fit_rows), m], [X [len(rows), m] for rows in other_rows]), the
    intercept first.
  """
  fit_rows = np.asarray(fit_rows)
  other_rows = [np.asarray(r) for r in other_rows]
  fit_raw = _raw(covariates, layout, fit_rows, horizon)
  other_raw = [_raw(covariates, layout, r, horizon) for r in other_rows]
  fit_parts = [np.ones((len(fit_rows), 1))]
  other_parts = [[np.ones((len(r), 1))] for r in other_rows]
  for k, (name, values) in enumerate(fit_raw):
    others = [raw[k][1] for raw in other_raw]
    if name in layout.categorical:
      seen = np.unique(values[~np.isnan(values)])
      fit_parts.append(values[:, None] == seen[None, :])
      for parts, v in zip(other_parts, others):
        parts.append(v[:, None] == seen[None, :])
      continue
    observed = values[~np.isnan(values)]
    mean = observed.mean() if len(observed) else 0.0
    spread = observed.std() if len(observed) else 0.0
    scale = spread if spread > 1e-12 * max(1.0, abs(mean)) else np.inf
    fitted = np.nan_to_num((values - mean) / scale)
    fit_parts.append(fitted[:, None])
    low, high = (fitted.min(), fitted.max()) if len(fitted) else (0.0, 0.0)
    for parts, v in zip(other_parts, others):  # No extrapolation.
      parts.append(np.clip(np.nan_to_num((v - mean) / scale), low,
                           high)[:, None])
  fit_x = np.concatenate(fit_parts, axis=1).astype(np.float64)
  return fit_x, [np.concatenate(p, axis=1).astype(np.float64)
                 for p in other_parts]


def ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
  """beta [m] minimising |y - x beta|^2 + penalty |beta[1:]|^2 (column 0,
  the intercept, unpenalised): least squares on the augmented system,
  the minimum-norm solution where columns are collinear."""
  m = x.shape[1]
  augmented = np.concatenate([x, np.sqrt(penalty) * np.eye(m)[1:]])
  target = np.concatenate([y, np.zeros(m - 1)])
  return np.linalg.lstsq(augmented, target, rcond=None)[0]


def regress(targets: np.ndarray, covariates: Covariates, layout: Layout,
            horizon: int, rows: np.ndarray, future_rows: np.ndarray,
            penalty: float) -> Tuple[np.ndarray, np.ndarray]:
  """Each column of `targets` [r, c] (its values at history `rows`, NaN
  missing) regressed on the covariates over the rows where it is
  observed.

  Returns:
    (fitted [r, c] at `rows`, forecast [len(future_rows), c] at
    `future_rows`); a column with nothing observed gets zeros.
  """
  fitted = np.zeros(targets.shape)
  future = np.zeros((len(future_rows), targets.shape[1]))
  for c in range(targets.shape[1]):
    observed = ~np.isnan(targets[:, c])
    if not observed.any():
      continue
    x_fit, (x_rows, x_future) = design(
        covariates, layout, horizon, rows[observed], (rows, future_rows))
    beta = ridge(x_fit, targets[observed, c], penalty)
    fitted[:, c] = x_rows @ beta
    future[:, c] = x_future @ beta
  return fitted, future


def _check(histories, covariates, layout, horizon) -> None:
  if len(covariates) != len(histories):
    raise ValueError(f'{len(covariates)} covariates for {len(histories)} '
                     'histories.')
  for i, (history, found) in enumerate(zip(histories, covariates)):
    t = len(history)
    if found.past.shape != (t, len(layout.past)) or found.known.shape != (
        t + horizon, len(layout.known)):
      raise ValueError(
          f'History {i}: covariates past {found.past.shape}, known '
          f'{found.known.shape}; expected ({t}, {len(layout.past)}) and '
          f'({t + horizon}, {len(layout.known)}).')


def in_context_windows(context_length: int, horizon: int,
                       windows: int = 0) -> int:
  """How many backtest windows inside the history 'ttm+xreg' fits on:
  `windows`, or (0) those inside the context."""
  return windows or max(1, context_length // horizon)


def cut(found: Covariates, origin: int, horizon: int) -> Covariates:
  """The covariates of the history before `origin`: the past-only ones
  before it, the known ones up to `horizon` steps after it."""
  return Covariates(past=found.past[:origin],
                    known=found.known[:origin + horizon])


@dataclasses.dataclass
class Given:
  """Covariates handed to a forecaster with its histories (`forecaster.
  Forecaster`): their layout and one `Covariates` per history."""
  layout: Layout
  values: List[Covariates]

  def at(self, requests, horizon: int) -> 'Given':
    """Those of the histories cut at (history, origin) `requests`."""
    return Given(self.layout, [cut(self.values[i], o, horizon)
                               for i, o in requests])


@dataclasses.dataclass(frozen=True)
class Channels:
  """Covariates as the channels after the targets of a model with an
  exogenous mixer (a fine-tune's: `recipes.exogenous_fields`): the known
  covariates first (its exogenous channels, read with their future
  values), then the past-only ones; a numeric covariate one channel, a
  categorical one a 0/1 channel per value seen (`of`).

  Attributes:
    sources: per channel, ('known' or 'past', the column, the category's
      code or None for a number).
    names: per channel, the column (a category's as 'column=code').
    num_known: how many of the channels are known covariates.
  """
  sources: Tuple[Tuple[str, int, Optional[float]], ...]
  names: Tuple[str, ...]
  num_known: int

  @classmethod
  def of(cls, layout: Layout, covariates: Sequence[Covariates]
         ) -> 'Channels':
    """The channels of `layout`'s covariates, a categorical's values those
    its histories hold (`Covariates.past`'s rows)."""
    sources, names, num_known = [], [], 0
    for part, columns in (('known', layout.known), ('past', layout.past)):
      for k, name in enumerate(columns):
        if name in layout.categorical:
          seen = sorted({float(v) for f in covariates
                         for v in getattr(f, part)[:len(f.past), k]
                         if not np.isnan(v)})
          sources += [(part, k, code) for code in seen]
          names += [f'{name}={code:g}' for code in seen]
        else:
          sources.append((part, k, None))
          names.append(name)
      if part == 'known':
        num_known = len(sources)
    return cls(tuple(sources), tuple(names), num_known)

  def apply(self, histories: Sequence[np.ndarray],
            covariates: Sequence[Covariates], horizon: int
            ) -> Tuple[List[np.ndarray], np.ndarray]:
    """(each history [t] as [t, 1 + channels], the channels' known future
    [n, horizon, channels], NaN for past-only ones)."""
    values, futures = [], []
    for history, found in zip(histories, covariates):
      t = len(history)
      rows = np.full((t + horizon, len(self.sources)), np.nan)
      for j, (part, k, code) in enumerate(self.sources):
        column = getattr(found, part)[:, k]
        column = column if code is None else np.where(
            np.isnan(column), np.nan, (column == code).astype(np.float64))
        end = t + horizon if part == 'known' else t
        rows[:min(end, len(column)), j] = column[:end]
      values.append(np.concatenate(
          [np.asarray(history, np.float64).reshape(t, -1)[:, :1],
           rows[:t]], axis=1))
      futures.append(rows[t:])
    return values, np.stack(futures)


def _surprises(model, histories, covariates, layout, horizon, freq, inputs,
               season, origins) -> List[Covariates]:
  """Each history's covariates with its numeric known ones replaced, over
  the `horizon` rows after each of its `origins` (ascending, `horizon`
  apart or more), by their deviation from TTM's forecast of them from
  that origin (`known='surprise'`)."""
  numeric = [k for k, name in enumerate(layout.known)
             if name not in layout.categorical]
  out = [Covariates(f.past, f.known.copy()) for f in covariates]
  if not numeric:
    return out
  jobs = [(i, o, k) for i, mine in enumerate(origins) for o in mine
          for k in numeric]
  if not jobs:
    return out
  pasts = [covariates[i].known[:o, k] for i, o, k in jobs]
  predicted, _ = forecast_lib.forecast(model, pasts, horizon, freq, inputs,
                                       season)
  for (i, o, k), values in zip(jobs, predicted[:, :, 0]):
    out[i].known[o:o + horizon, k] -= values
  return out


def _xreg_ttm(model, histories, covariates, layout, horizon, freq, inputs,
              regression, season, with_quantiles):
  """'xreg+ttm': (point, head, terms) (module docstring)."""
  rows_kept = (regression.windows * horizon if regression.windows
               else model.context_length)
  residuals, terms = [], []
  for history, found in zip(histories, covariates):
    t = len(history)
    rows = np.arange(max(0, t - rows_kept), t)
    fitted, term = regress(history[rows], found, layout, horizon, rows,
                           np.arange(t, t + horizon), regression.ridge)
    residuals.append(history[rows] - fitted)
    terms.append(term)
  point, head = forecast_lib.forecast(
      model, residuals, horizon, freq, inputs, season,
      with_quantiles=with_quantiles)
  return point, head, np.stack(terms)


def _ttm_xreg(model, histories, covariates, layout, horizon, freq, inputs,
              regression, season, with_quantiles):
  """'ttm+xreg': (point, head, terms) (module docstring)."""
  point, head = forecast_lib.forecast(
      model, histories, horizon, freq, inputs, season,
      with_quantiles=with_quantiles)
  requests = backtests.origins(
      [len(h) for h in histories], horizon,
      in_context_windows(model.context_length, horizon, regression.windows),
      min_history=model.config.patch_length)
  inside = None
  if requests:
    _, pasts = backtests.cut(histories, requests, horizon)
    inside, _ = forecast_lib.forecast(model, pasts, horizon, freq, inputs,
                                      season)
  if regression.known == 'surprise':
    covariates = _surprises(
        model, histories, covariates, layout, horizon, freq, inputs, season,
        [[o for j, o in requests if j == i] + [len(h)]
         for i, h in enumerate(histories)])
  terms = []
  for i, (history, found) in enumerate(zip(histories, covariates)):
    t = len(history)
    mine = [k for k, (j, _) in enumerate(requests) if j == i]
    rows = np.concatenate([np.arange(requests[k][1],
                                     requests[k][1] + horizon)
                           for k in mine]).astype(int) if mine else (
                               np.zeros(0, int))
    error = (history[rows] - np.concatenate([inside[k] for k in mine])
             if mine else np.zeros((0, history.shape[1])))
    _, term = regress(error, found, layout, horizon, rows,
                      np.arange(t, t + horizon), regression.ridge)
    terms.append(term)
  return point, head, np.stack(terms)


def _with_and_without(model, histories, covariates, layout, horizon, freq,
                      inputs, regression, season, with_quantiles,
                      without: bool):
  """((point, head) with the covariates' term, ungated; (point, head) of
  TTM alone, when `without`, else (None, None)). 'ttm+xreg' forecasts
  TTM alone under the term; 'xreg+ttm' forecasts the residuals, so TTM
  alone is a further call."""
  run = _xreg_ttm if regression.order == 'xreg+ttm' else _ttm_xreg
  base, base_head, terms = run(model, histories, covariates, layout,
                               horizon, freq, inputs, regression, season,
                               with_quantiles)
  with_ = (base + terms, None if base_head is None
           else base_head + terms[:, :base_head.shape[1], :, None])
  if not without:
    return with_, (None, None)
  if regression.order == 'ttm+xreg':
    return with_, (base, base_head)
  return with_, forecast_lib.forecast(model, histories, horizon, freq,
                                      inputs, season,
                                      with_quantiles=with_quantiles)


def gate_weights(model, histories, covariates, layout, horizon, freq,
                 inputs, regression, season) -> np.ndarray:
  """[n, c]: each history's weight in [0, 1] on its covariates' term
  (`gate` > 0; module docstring): over its last `gate` backtest windows
  (origins `horizon` apart, ending at its end), the least-squares w of
  its errors without covariates on (with - without); 0 where it has no
  window or the covariates change nothing there."""
  weights = np.zeros((len(histories), histories[0].shape[1]))
  requests = backtests.origins([len(h) for h in histories], horizon,
                               regression.gate,
                               min_history=model.config.patch_length)
  if not requests:
    return weights
  truth, pasts = backtests.cut(histories, requests, horizon)
  found = [cut(covariates[i], o, horizon) for i, o in requests]
  (with_, _), (without, _) = _with_and_without(
      model, pasts, found, layout, horizon, freq, inputs, regression,
      season, False, True)
  change = with_ - without
  error = np.where(np.isnan(truth), 0.0, truth - without)
  change = np.where(np.isnan(truth), 0.0, change)
  series = np.array([i for i, _ in requests])
  for i in range(len(histories)):
    mine = series == i
    if not mine.any():
      continue
    top = (error[mine] * change[mine]).sum(axis=(0, 1))
    bottom = (change[mine] ** 2).sum(axis=(0, 1))
    with np.errstate(invalid='ignore', divide='ignore'):
      weights[i] = np.where(bottom > 0, np.clip(top / bottom, 0.0, 1.0),
                            0.0)
  return weights


def forecast(model: model_lib.Model, histories: Sequence[np.ndarray],
             covariates: Sequence[Covariates], layout: Layout, horizon: int,
             freq: str, inputs: inputs_lib.Inputs = inputs_lib.DEFAULT,
             regression: Regression = Regression(), season: int = 1,
             with_quantiles: bool = False
             ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Forecasts of `horizon` steps after each history, with its covariates
  by in-context regression (module docstring).

  Args:
    model: the TTM (`model.Model`), read through `forecast.forecast`.
    histories: n arrays [t_i, c] (or [t_i]) of targets, NaN missing.
    covariates: n `Covariates`, aligned with the histories.
    layout: their columns.
    horizon, freq, inputs, season, with_quantiles: as `forecast.forecast`.
    regression: the order, ridge penalty, windows, known and gate.

  Returns:
    (point [n, horizon, c], the head's quantiles [n, h', c, q] or None),
    the regression's part added to both (scaled by the gate's weight).
  """
  histories = [np.asarray(h, np.float64) for h in histories]
  histories = [h[:, None] if h.ndim == 1 else h for h in histories]
  _check(histories, covariates, layout, horizon)
  (point, head), (plain, plain_head) = _with_and_without(
      model, histories, covariates, layout, horizon, freq, inputs,
      regression, season, with_quantiles, bool(regression.gate))
  if not regression.gate:
    return point, head
  weights = gate_weights(model, histories, covariates, layout, horizon,
                         freq, inputs, regression, season)
  point = plain + weights[:, None, :] * (point - plain)
  if head is not None:
    head = plain_head + weights[:, None, :, None] * (head - plain_head)
  return point, head


def regression_only(histories: Sequence[np.ndarray],
                    covariates: Sequence[Covariates], layout: Layout,
                    horizon: int, penalty: float = 1.0) -> np.ndarray:
  """[n, horizon, c]: each history's targets regressed on its covariates
  alone (the regressors of `design`, intercept included) over all its
  rows, and the regression's values at the next `horizon` steps: the
  regression-only baseline (no TTM)."""
  histories = [np.asarray(h, np.float64) for h in histories]
  histories = [h[:, None] if h.ndim == 1 else h for h in histories]
  _check(histories, covariates, layout, horizon)
  out = []
  for history, found in zip(histories, covariates):
    t = len(history)
    _, future = regress(history, found, layout, horizon, np.arange(t),
                        np.arange(t, t + horizon), penalty)
    out.append(future)
  return np.stack(out)
