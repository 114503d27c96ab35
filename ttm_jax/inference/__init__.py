"""The one forecasting path: histories in, forecasts out, for every caller
(the forecasting API, `ttm_jax.backtest`, the benchmark runner, the
recipes).

  model.py       a loaded TTM and the jitted inference function
  choice.py      which checkpoint 'auto' means (the reference's get_model)
  inputs.py      how histories become model inputs (pads, gaps,
                 standardisation): `Inputs`, `DEFAULT`, `REFERENCE`
  adapt.py       short, low-frequency pasts deseasonalised and upsampled
  forecast.py    `forecast(model, histories, horizon, freq, inputs)`:
                 inputs built, the model run and rolled, outputs mapped back
  backtests.py   rolling-origin backtest windows inside histories
  forecaster.py  the one forecaster type (a model, a baseline, ...)
  select.py      a choice or blend of forecasters by backtest
"""
