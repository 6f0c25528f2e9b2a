"""The forecasts a forecaster must beat, and the errors that compare them (M4 competition conventions).

Every baseline forecasts `horizon` steps from each origin e (the first unseen index) using only series[:e]:
  persistence       the last value:                         s[e-1]
  seasonal naive    the value one season earlier:           s[e + k - m * (k // m + 1)]            (k = 0..h-1)
  drift             the last value plus the mean change:    s[e-1] + (k + 1) (s[e-1] - s[0]) / (e - 1)
  linear AR         least squares on the training windows:  w_k . s[e-L:e] + b_k (direct, one fit per k)
  ETS               Holt-Winters (additive trend and season) with parameters fitted once on the training part,
                    filtered up to each origin (statsmodels; None when it is not installed)
Errors: RMSE, MAE, and MASE = MAE / (mean |s[t] - s[t-m]| over the training part), the M4 competition's scaled
error (m = the season; 1 when there is none).
"""
from __future__ import annotations

import importlib

import numpy as np

__all__ = ["persistence", "seasonal_naive", "drift", "LinearAR", "ets", "rmse", "mae", "mase", "mase_scale"]


def _origins(starts):
    starts = np.asarray(starts, dtype=np.int64)
    if starts.ndim != 1 or starts.size == 0 or starts.min() < 1:
        raise ValueError(f"starts: expected a non-empty 1-D array of origins >= 1, got {starts!r}")
    return starts


def persistence(series, starts, horizon):
    """(len(starts), horizon): the last value before each origin, repeated."""
    starts = _origins(starts)
    return np.repeat(np.asarray(series, dtype=np.float64)[starts - 1][:, None], horizon, axis=1)


def seasonal_naive(series, starts, horizon, season):
    """(len(starts), horizon): for each origin e, s[e + k - season * (k // season + 1)]: the same point of the
    last season seen."""
    starts = _origins(starts)
    if starts.min() < season:
        raise ValueError(f"season: {season} steps reach before the start of the series at origin {starts.min()}")
    k = np.arange(horizon)
    lag = season * ((k // season) + 1)
    return np.asarray(series, dtype=np.float64)[starts[:, None] + k[None, :] - lag[None, :]]


def drift(series, starts, horizon):
    """(len(starts), horizon): the last value plus k+1 times the mean change over the whole history."""
    starts = _origins(starts)
    if starts.min() < 2:
        raise ValueError("starts: drift needs at least two values before each origin")
    s = np.asarray(series, dtype=np.float64)
    last = s[starts - 1]
    slope = (last - s[0]) / (starts - 1)
    return last[:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


class LinearAR:
    """A linear autoregressive model of order `lookback` with an intercept, fitted by ordinary least squares on the
    training windows, one regression per step ahead (direct multi-step): s[e+k] = w_k . s[e-lookback:e] + b_k.
    (Unconstrained levels: on the series tried this was the stronger baseline than the same regression on
    changes relative to the last value, e.g. RMSE 0.70 against 0.76 on the CO2 demo at horizon 52.)"""

    def __init__(self, lookback: int, horizon: int):
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.coef = None  # (lookback + 1, horizon): weights, then intercepts

    @staticmethod
    def _design(windows):
        windows = np.asarray(windows, dtype=np.float64)
        return np.hstack([windows, np.ones((len(windows), 1))])

    def fit(self, series) -> "LinearAR":
        s = np.asarray(series, dtype=np.float64)
        n = len(s) - self.lookback - self.horizon + 1
        if n < self.lookback + 2:
            raise ValueError(f"series: {len(s)} values are too few to fit a linear AR({self.lookback}) at horizon "
                             f"{self.horizon}")
        idx = np.arange(n)[:, None]
        X = self._design(s[idx + np.arange(self.lookback)])
        Y = s[idx + self.lookback + np.arange(self.horizon)]
        self.coef = np.linalg.lstsq(X, Y, rcond=None)[0]
        return self

    def predict(self, series, starts):
        """(len(starts), horizon) forecasts from the `lookback` values before each origin."""
        if self.coef is None:
            raise ValueError("LinearAR: fit it first")
        starts = _origins(starts)
        if starts.min() < self.lookback:
            raise ValueError(f"starts: origins need {self.lookback} values before them")
        s = np.asarray(series, dtype=np.float64)
        return self._design(s[starts[:, None] - self.lookback + np.arange(self.lookback)]) @ self.coef


def ets(series, train_end, starts, horizon, season):
    """Holt-Winters forecasts (additive trend; additive season when season > 1) with smoothing parameters and
    initial states fitted on series[:train_end], from every origin e using series[:e] only. None without
    statsmodels. The filter runs once over the whole series with the fitted parameters (it is causal: its states
    at e - 1 have seen series[:e]); from each origin, y(e-1+h) = level + h trend + season(e-1+h-m(k+1)),
    k = (h-1) // m: what statsmodels forecasts when refitted on series[:e] with the same parameters
    (tests/test_forecast.py checks both ways)."""
    try:
        holt = importlib.import_module("statsmodels.tsa.holtwinters")
    except ImportError:
        return None
    s = np.asarray(series, dtype=np.float64)
    starts = _origins(starts)
    m = int(season) if season > 1 else 0
    kw = dict(trend="add", seasonal="add" if m else None, seasonal_periods=m or None)
    fitted = holt.ExponentialSmoothing(s[:train_end], initialization_method="estimated", **kw).fit()
    params = {k: fitted.params[k] for k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal")
              if fitted.params.get(k) is not None and np.isfinite(fitted.params[k])}
    init = dict(initialization_method="known", initial_level=fitted.params["initial_level"],
                initial_trend=fitted.params["initial_trend"])
    if m:
        init["initial_seasonal"] = fitted.params["initial_seasons"]
    full = holt.ExponentialSmoothing(s, **kw, **init).fit(optimized=False, **params)
    level, trend = np.asarray(full.level), np.asarray(full.trend)
    h = np.arange(1, horizon + 1)[None, :]
    t = (starts - 1)[:, None]
    out = level[t] + h * trend[t]
    if m:
        out = out + np.asarray(full.season)[t + h - m * ((h - 1) // m + 1)]
    return out


def rmse(pred, actual, axis=None):
    return np.sqrt(np.mean((np.asarray(pred) - np.asarray(actual)) ** 2, axis=axis))


def mae(pred, actual, axis=None):
    return np.mean(np.abs(np.asarray(pred) - np.asarray(actual)), axis=axis)


def mase_scale(train, season=1) -> float:
    """The in-sample mean absolute error of the seasonal-naive one-step forecast: mean |s[t] - s[t-m]|."""
    train = np.asarray(train, dtype=np.float64)
    m = max(1, int(season))
    if len(train) <= m:
        raise ValueError(f"train: {len(train)} values are too few for a MASE scale with season {m}")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    if scale == 0.0:
        raise ValueError("train: constant at lag {m}; MASE is undefined")
    return scale


def mase(pred, actual, train, season=1, axis=None):
    """Mean absolute scaled error (M4): MAE / mase_scale(train, season)."""
    return mae(pred, actual, axis=axis) / mase_scale(train, season)
