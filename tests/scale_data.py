"""The model and data the distributed tests share (tests/test_scale.py and tests/mpi_fit.py)."""
import numpy as np

import rnnkit as rk


def make_data(n=21, T=7, features=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, n, features)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=0).astype(np.float32) * 0.3  # per-step targets
    lengths = rng.integers(1, T + 1, size=n).astype(np.int32)
    return x, y, lengths


def make_model():
    return rk.Sequential([rk.LSTM(3, 8, num_layers=2, seed=1, l2=1e-4), rk.Dense(8, 1, seed=2)])
