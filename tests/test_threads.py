"""Threads: ``set_num_threads`` / ``get_num_threads`` round trip; results do not depend on the thread count."""

import pytest

import rnnkit as rk
from conftest import GRU, LSTM, RNN_TANH, assert_close, rk_backward, rk_forward

T, I = 5, 4
EXACT = (1e-12, 1e-12)
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


def test_num_threads_round_trip():
    original = rk.get_num_threads()
    assert isinstance(original, int) and original >= 1
    try:
        for n in (1, 2, 1):
            rk.set_num_threads(n)
            assert rk.get_num_threads() == n
    finally:
        rk.set_num_threads(original)
    assert rk.get_num_threads() == original


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_results_do_not_depend_on_thread_count(kind, rng):
    Bn, Hn = 16, 24
    layer = kind.make_layer(rk, I, Hn, 2, bidirectional=True, seed=6, dtype="float64")
    x = rng.standard_normal((T, Bn, I))
    dy = rng.standard_normal((T, Bn, 2 * Hn))
    lengths = rng.integers(1, T + 1, Bn)
    original = rk.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            rk.set_num_threads(n)
            layer.zero_grad()
            y, st = rk_forward(kind, layer, x, lengths=lengths)
            dx, dst = rk_backward(kind, layer, dy)
            results.append((y, st, dx, dst, {k: v.copy() for k, v in layer.grads.items()}))
    finally:
        rk.set_num_threads(original)
    (y1, st1, dx1, dst1, g1), (y2, st2, dx2, dst2, g2) = results
    assert_close(y2, y1, *EXACT, "y")
    assert_close(dx2, dx1, *EXACT, "dx")
    for a, b in zip(st1 + dst1, st2 + dst2):
        assert_close(b, a, *EXACT, "states")
    for name in g1:
        assert_close(g2[name], g1[name], *EXACT, f"grad {name}")
