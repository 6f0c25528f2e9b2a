"""The command line: `rnnkit demo`, `rnnkit train` and `rnnkit predict` run end to end (short), and bad
arguments give one clear error line and exit code 2."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import forecast


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture
def seasonal_csv(tmp_path):
    t = np.arange(240)
    values = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.2, t.size)
    path = tmp_path / "series.csv"
    lines = ["month,sales"] + [f"{i},{v:.4f}" if i != 17 else f"{i}," for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path, values


def test_demo_forecasts_52_weeks_and_prints_every_baseline_per_horizon(tmp_path):
    result = run("demo", "--epochs", "2", "--verbose", "0", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rows = {line.strip().split("  ")[0]: line for line in out.splitlines() if line.startswith("    ")}
    for method in ("LSTM", "persistence", "seasonal naive", "drift", "linear AR"):
        assert any(key.startswith(method) for key in rows), (method, out)
    assert "t+1" in out and "t+52" in out and "MASE" in out
    lstm = float(out.split("LSTM RMSE")[1].split()[0])
    persistence = float(next(v for k, v in rows.items() if k.startswith("persistence")).split()[-3])
    assert lstm < persistence  # two epochs already learn the season that persistence misses
    # the verdict is stated either way, naming the baselines that win
    assert "beats every baseline" in out or "does NOT beat every baseline" in out
    model_file = tmp_path / "out" / "co2_lstm.safetensors"
    model = rk.forecast.Forecaster.load(model_file)
    assert model.lookback == 52 and model.horizon == 52
    assert (tmp_path / "out" / "co2_forecast.png").stat().st_size > 1000  # matplotlib is in the test extra


def test_console_script_is_installed():
    exe = shutil.which("rnnkit")
    assert exe is not None, "the `rnnkit` console script is not on PATH"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "demo" in result.stdout


def test_train_then_predict_on_a_csv(tmp_path, seasonal_csv):
    path, values = seasonal_csv
    out = tmp_path / "m.safetensors"
    result = run("train", "--csv", str(path), "--column", "sales", "--lookback", "24", "--horizon", "3",
                 "--epochs", "3", "--verbose", "0", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LSTM RMSE" in result.stdout and out.exists()
    result = run("predict", "--model", str(out), "--csv", str(path), "--column", "sales")
    assert result.returncode == 0, result.stderr
    printed = [float(line.split(":")[1]) for line in result.stdout.splitlines() if line.strip().startswith("t+")]
    assert len(printed) == 3
    model = forecast.Forecaster.load(out)
    series = forecast.read_series(path, "sales")
    expected = model.predict_windows(series[None, -24:])[0]
    np.testing.assert_allclose(printed, expected, rtol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--csv", "missing.csv", "--column", "x"], "no such file"),
    (["--column", "nope"], "'nope' is not in"),
    (["--column", "sales", "--lookback", "200"], "too few"),
])
def test_train_errors_are_clear(tmp_path, seasonal_csv, args, message):
    path, _ = seasonal_csv
    if "--csv" not in args:
        args = ["--csv", str(path)] + args
    result = run("train", *args, "--epochs", "1", "--verbose", "0", "--out", str(tmp_path / "m.safetensors"),
                 cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_predict_rejects_a_model_that_is_not_a_forecaster(tmp_path, seasonal_csv):
    path, _ = seasonal_csv
    model_path = tmp_path / "plain.safetensors"
    rk.Sequential([rk.LSTM(1, 4), rk.LastStep(), rk.Dense(4, 1)]).save(model_path)
    result = run("predict", "--model", str(model_path), "--csv", str(path), "--column", "sales")
    assert result.returncode == 2 and "not a forecaster" in result.stderr


def test_read_series_interpolates_missing_values(seasonal_csv):
    path, values = seasonal_csv
    series = forecast.read_series(path, "sales")
    assert series.shape == values.shape
    assert series[17] == pytest.approx((float(f"{values[16]:.4f}") + float(f"{values[18]:.4f}")) / 2)
