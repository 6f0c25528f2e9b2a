"""Time-series forecasting with a stacked LSTM: the engine behind `rnnkit demo`, `train` and `predict`.

Windows of `lookback` values predict the next `horizon` values. Each window is expressed relative to its last
value and divided by a scale (the standard deviation of one-step changes in the training part), so the model
learns the shape of the next steps and extrapolates trends it never saw in absolute terms.
"""
from __future__ import annotations

import csv
import math
import os
import time

import numpy as np

from . import baselines
from .io import load, load_metadata
from .layers import LSTM
from .model import EarlyStopping, Sequential
from .nn import Dense, LastStep
from .optim import Adam

__all__ = ["read_series", "make_windows", "Forecaster", "seasonal_naive", "rmse", "evaluate", "detect_season"]


def read_series(path, column) -> np.ndarray:
    """The numeric column `column` of a CSV file with a header row; empty cells are filled by linear
    interpolation. Raises ValueError with a clear message for a missing file or column, or a non-numeric cell."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"csv: no such file {path!r}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(f"csv: {path!r} is empty")
        header = [h.strip() for h in header]
        if column not in header:
            raise ValueError(f"column: {column!r} is not in {path!r}; its columns are {header}")
        k = header.index(column)
        values = []
        for line, row in enumerate(reader, start=2):
            cell = row[k].strip() if k < len(row) else ""
            if cell == "":
                values.append(math.nan)
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise ValueError(f"csv: {path!r} line {line}: column {column!r} holds {cell!r}, not a number") from None
    series = np.array(values, dtype=np.float64)
    known = np.flatnonzero(np.isfinite(series))
    if known.size < 2:
        raise ValueError(f"column: {column!r} in {path!r} has {known.size} numeric values; need a longer series")
    series = np.interp(np.arange(series.size), known, series[known])[known[0]:known[-1] + 1]
    return series


def make_windows(series, lookback, horizon):
    """x: (N, lookback) windows and y: (N, horizon) the values that follow each."""
    n = len(series) - lookback - horizon + 1
    if n < 1:
        raise ValueError(f"series: {len(series)} values are too few for lookback {lookback} + horizon {horizon}")
    idx = np.arange(n)[:, None]
    return series[idx + np.arange(lookback)], series[idx + lookback + np.arange(horizon)]


seasonal_naive = baselines.seasonal_naive


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


class Forecaster:
    """A stacked-LSTM forecaster with its preprocessing; save/load keeps both in one .safetensors file."""

    def __init__(self, lookback=52, horizon=1, hidden_size=32, num_layers=2, dropout=0.1, seed=0, scale=1.0):
        self.lookback, self.horizon, self.scale, self.seed = int(lookback), int(horizon), float(scale), seed
        if self.lookback < 2 or self.horizon < 1:
            raise ValueError(f"lookback/horizon: expected lookback >= 2 and horizon >= 1, got {lookback}, {horizon}")
        self.model = Sequential([
            LSTM(1, hidden_size, num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0, batch_first=True,
                 seed=seed, forget_bias=1.0),
            LastStep(),
            Dense(hidden_size, self.horizon, seed=seed),
        ])

    def _inputs(self, windows):
        last = windows[:, -1:]
        return ((windows - last) / self.scale)[:, :, None].astype(np.float32), last

    def fit(self, series, epochs=30, batch_size=64, lr=3e-3, validation_fraction=0.1, verbose=1, distributed=False):
        """Train on `series` (the caller keeps the test part out); the last windows validate, with early stopping.
        distributed: data parallel over the MPI ranks (run under mpiexec; see rnnkit.distributed)."""
        series = np.asarray(series, dtype=np.float64)
        self.scale = float(np.std(np.diff(series))) or 1.0
        x, y = make_windows(series, self.lookback, self.horizon)
        xin, last = self._inputs(x)
        target = ((y - last) / self.scale).astype(np.float32)
        n_val = max(1, int(len(xin) * validation_fraction))
        stop = EarlyStopping(patience=8, restore_best_weights=True)
        return self.model.fit(xin[:-n_val], target[:-n_val], epochs=epochs, batch_size=batch_size, loss="mse",
                              optimizer=Adam(self.model, lr=lr), validation_data=(xin[-n_val:], target[-n_val:]),
                              clip_norm=1.0, callbacks=[stop], verbose=verbose, seed=self.seed,
                              distributed=distributed)

    def predict_windows(self, windows) -> np.ndarray:
        """(N, lookback) windows -> (N, horizon) forecasts in the series' units."""
        xin, last = self._inputs(np.asarray(windows, dtype=np.float64))
        return last + self.model.predict(xin).astype(np.float64) * self.scale

    def save(self, path, column=None) -> None:
        self.model.save(path, metadata={"forecaster": {"lookback": self.lookback, "horizon": self.horizon,
                                                       "scale": self.scale, "column": column}})

    @classmethod
    def load(cls, path) -> "Forecaster":
        meta = load_metadata(path).get("forecaster")
        if not meta:
            raise ValueError(f"model: {os.fspath(path)!r} is an rnnkit model but not a forecaster (no preprocessing "
                             "metadata); train it with `rnnkit train`")
        self = cls.__new__(cls)
        self.lookback, self.horizon, self.scale, self.seed = meta["lookback"], meta["horizon"], meta["scale"], None
        self.model = load(path)
        return self


def detect_season(series, max_lag=None) -> int:
    """The lag (>= 2) at which the series' one-step changes correlate most with themselves, if that correlation is
    clearly positive (> 0.3); else 1 (no season)."""
    d = np.diff(np.asarray(series, dtype=np.float64))
    d = d - d.mean()
    max_lag = min(len(d) // 3, max_lag or 400)
    if max_lag < 2 or not np.any(d):
        return 1
    spectrum = np.fft.rfft(d, 2 * len(d))
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:max_lag + 1]
    acf = acf / acf[0]
    lag = int(np.argmax(acf[2:])) + 2
    return lag if acf[lag] > 0.3 else 1


def _method_scores(pred, actual, scale):
    """Per-horizon and mean errors of one method: RMSE, MAE, MASE."""
    per_rmse, per_mae = baselines.rmse(pred, actual, axis=0), baselines.mae(pred, actual, axis=0)
    mae_mean = float(baselines.mae(pred, actual))
    return {"rmse": per_rmse.tolist(), "mae": per_mae.tolist(), "mase": (per_mae / scale).tolist(),
            "rmse_mean": float(baselines.rmse(pred, actual)), "mae_mean": mae_mean, "mase_mean": mae_mean / scale}


def evaluate(series, lookback, horizon, season, epochs, test_fraction=0.2, verbose=1, seed=0, hidden_size=32,
             distributed=False, ensemble=1):
    """Train on the first part of `series` and forecast `horizon` steps from every origin of the last
    `test_fraction` (rolling origin), next to the baselines (rnnkit.baselines): persistence, seasonal naive,
    drift, a linear AR fitted by least squares, and ETS when statsmodels is installed. Returns (forecaster, report,
    origins, LSTM forecasts); report["methods"][name] holds per-horizon and mean RMSE, MAE and MASE."""
    n = len(series)
    split = int(n * (1 - test_fraction))
    if split < lookback + horizon + 10 or n - split < horizon + 1:
        raise ValueError(f"series: {n} values are too few to train and test with lookback {lookback} and horizon "
                         f"{horizon}; need at least {int((lookback + horizon + 11) / (1 - test_fraction)) + 1}")
    if season >= split - horizon:
        raise ValueError(f"season: {season} is longer than the training part")
    model = Forecaster(lookback, horizon, hidden_size=hidden_size, seed=seed)
    start_time = time.perf_counter()
    history = model.fit(series[:split], epochs=epochs, verbose=verbose, distributed=distributed)
    train_seconds = time.perf_counter() - start_time
    starts = np.arange(max(split, season, lookback), n - horizon + 1)
    actual = series[starts[:, None] + np.arange(horizon)]
    pred = model.predict_windows(series[starts[:, None] - lookback + np.arange(lookback)])
    forecasts = {"LSTM": pred,
                 "persistence": baselines.persistence(series, starts, horizon),
                 "seasonal naive": baselines.seasonal_naive(series, starts, horizon, season) if season > 1 else None,
                 "drift": baselines.drift(series, starts, horizon),
                 "linear AR": baselines.LinearAR(lookback, horizon).fit(series[:split]).predict(series, starts),
                 "ETS": baselines.ets(series, split, starts, horizon, season)}
    scale = baselines.mase_scale(series[:split], season)
    methods = {name: _method_scores(f, actual, scale) for name, f in forecasts.items() if f is not None}
    report = {"horizon": horizon, "season": season, "test_windows": int(len(starts)),
              "epochs_run": len(history["loss"]), "train_seconds": train_seconds, "methods": methods,
              "rmse": methods["LSTM"]["rmse_mean"],
              "baseline_rmse": methods["seasonal naive" if season > 1 else "persistence"]["rmse_mean"]}
    return model, report, starts, pred


def evaluate_split(series, lookback, horizon, season, epochs, test_fraction=0.2, verbose=1, seed=0, hidden_size=32,
                   distributed=False):
    """evaluate() (kept under its old name)."""
    return evaluate(series, lookback, horizon, season, epochs, test_fraction=test_fraction, verbose=verbose,
                    seed=seed, hidden_size=hidden_size, distributed=distributed)


def plot(series, starts, pred, path, title) -> bool:
    """The test part as a PNG: the actual series, the one-step-ahead forecasts, and (multi-step) the forecast path
    from an origin every horizon/2 steps (a fan against the actual values); False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(10, 4))
    horizon = pred.shape[1]
    lo = max(0, starts[0] - 3 * len(starts) // 2)
    ax.plot(np.arange(lo, len(series)), series[lo:], color="0.3", lw=1, label="actual")
    ax.plot(starts, pred[:, 0], color="tab:red", lw=1, label="LSTM forecast (1 step ahead)")
    if horizon > 1:
        for r in range(0, len(starts), max(1, horizon // 2)):
            ax.plot(starts[r] + np.arange(horizon), pred[r], color="tab:blue", lw=0.8, alpha=0.6,
                    label=f"LSTM forecast paths ({horizon} steps)" if r == 0 else None)
    ax.axvline(starts[0], color="0.6", ls="--", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("time step")
    ax.legend()
    fig.tight_layout()
    tmp = os.fspath(path) + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True
