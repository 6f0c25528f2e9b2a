"""Use from C++: build examples/cpp against the installed package (find_package(rnnkit CONFIG)), run it on
a model saved by Python, and compare its streamed forecasts with Python's predictions.

With RNNKIT_CMAKE_PREFIX set (e.g. the prefix of a plain `cmake --install`, as .ci/run does) every example
test also runs with the example built against that prefix."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import forecast

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cpp"


def test_cmake_dir_points_at_the_installed_package():
    prefix = rk.cmake_dir()
    assert (Path(prefix) / "lib" / "cmake" / "rnnkit" / "rnnkitConfig.cmake").is_file()
    assert (Path(prefix) / "include" / "rnnkit" / "rnnkit.hpp").is_file()
    result = subprocess.run([sys.executable, "-m", "rnnkit", "--cmake-dir"], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == prefix


# Where the example finds rnnkit's CMake package: the installed Python package, and optionally another prefix.
PREFIXES = ["package"] + (["RNNKIT_CMAKE_PREFIX"] if os.environ.get("RNNKIT_CMAKE_PREFIX") else [])


@pytest.fixture(scope="module", params=PREFIXES)
def example_binary(request, tmp_path_factory):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed to build the C++ example (pip install cmake)"
    prefix = rk.cmake_dir() if request.param == "package" else os.environ["RNNKIT_CMAKE_PREFIX"]
    build = tmp_path_factory.mktemp("example-build")
    configure = subprocess.run([cmake, "-S", str(EXAMPLE), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                                "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run([cmake, "--build", str(build)], capture_output=True, text=True)
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    exe = build / "forecast_stream"
    assert exe.is_file()
    return exe


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    t = np.arange(300)
    values = 50 + 0.1 * t + 4 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(3).normal(0, 0.3, t.size)
    path = tmp_path_factory.mktemp("data") / "series.csv"
    path.write_text("t,value\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(values)))
    return path


@pytest.mark.parametrize("horizon", [1, 3])
def test_embedded_example_matches_python_predictions(tmp_path, example_binary, series_csv, horizon):
    series = forecast.read_series(series_csv, "value")
    model = forecast.Forecaster(lookback=24, horizon=horizon, hidden_size=16, seed=1)
    model.fit(series[:200], epochs=2, verbose=0)
    model_path = tmp_path / "forecaster.safetensors"
    model.save(model_path, column="value")

    result = subprocess.run([str(example_binary), str(model_path), str(series_csv), "value"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = np.array([[float(v) for v in line.split(",")] for line in result.stdout.split()])
    ends = rows[:, 0].astype(int)
    assert ends[0] == 23 and ends[-1] == len(series) - 1 and rows.shape[1] == 1 + horizon
    windows = series[ends[:, None] - 23 + np.arange(24)]
    expected = model.predict_windows(windows)
    np.testing.assert_allclose(rows[:, 1:], expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_embedded_example_streams_the_last_windows(tmp_path, example_binary, series_csv):
    """--last N forecasts only the windows ending at the last N values."""
    series = forecast.read_series(series_csv, "value")
    model = forecast.Forecaster(lookback=26, horizon=2, hidden_size=8, seed=0)
    model.fit(series[:200], epochs=1, verbose=0)
    model_path = tmp_path / "m.safetensors"
    model.save(model_path)
    result = subprocess.run([str(example_binary), str(model_path), str(series_csv), "value", "--last", "5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = np.array([[float(v) for v in line.split(",")] for line in result.stdout.split()])
    ends = rows[:, 0].astype(int)
    np.testing.assert_array_equal(ends, np.arange(len(series) - 5, len(series)))
    expected = model.predict_windows(series[ends[:, None] - 25 + np.arange(26)])
    np.testing.assert_allclose(rows[:, 1:], expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_embedded_example_rejects_a_corrupted_model(tmp_path, example_binary, series_csv):
    model = forecast.Forecaster(lookback=8, horizon=1, hidden_size=4, seed=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) - 5] ^= 0x10  # inside the tensor data: only the checksum can tell
    path.write_bytes(bytes(data))
    result = subprocess.run([str(example_binary), str(path), str(series_csv), "value"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "checksum" in result.stderr and str(path) in result.stderr, result.stderr
    assert os.path.getsize(path) == len(data)


@pytest.mark.parametrize("beam", [1, 3])
def test_embedded_seq2seq_decodes_like_python(tmp_path, example_binary, beam):
    """examples/cpp/seq2seq_decode loads a Seq2Seq saved by Python and decodes (greedy, beam) exactly as Python."""
    model = rk.Seq2Seq(9, 8, 6, 10, attention="luong_concat", seed=4)
    path = tmp_path / "s2s.safetensors"
    model.save(path)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 7, 6)
    src = np.zeros((6, 6), np.int64)
    for b, n in enumerate(lengths):
        src[b, :n] = rng.integers(3, 9, n)
    lines = "\n".join(" ".join(str(t) for t in src[b, :n]) for b, n in enumerate(lengths)) + "\n"
    exe = example_binary.parent / "seq2seq_decode"
    out = subprocess.run([str(exe), str(path), "--beam", str(beam), "--alpha", "0.6"], input=lines,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seqs, scores = model.predict(src, method="greedy" if beam == 1 else "beam", beam_width=beam,
                                 length_penalty=0.6, return_scores=True)
    got = [line.split("|") for line in out.stdout.strip().split("\n")]
    assert [[int(t) for t in g[0].split()] for g in got] == seqs
    np.testing.assert_allclose([float(g[1]) for g in got], scores, rtol=1e-6)
