"""Input layouts and array handling.

* ``batch_first=True`` is exactly the transposed ``batch_first=False`` layer.
* Non-contiguous arrays and nested lists are accepted and give the results
  of the contiguous arrays; lengths may be lists, tuples or integer arrays;
  inputs are not modified; returned arrays are not overwritten by later calls.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import (ALL_KINDS, GRU, LSTM, LSTM_PEEPHOLE, RNN_RELU, RNN_TANH, assert_close, cell_forward,
                      copy_weights, rk_backward, rk_forward)

T, B, I, H = 5, 3, 4, 6
EXACT = (1e-12, 1e-12)
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


def rand_state(rng, kind, n, batch=B, dtype=np.float64):
    return [rng.standard_normal((n, batch, H)).astype(dtype) for _ in range(kind.n_states)]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_batch_first_is_transposed_layout(kind, rng):
    L = 2
    tbi = kind.make_layer(rk, I, H, L, bidirectional=True, dtype="float64")
    bti = kind.make_layer(rk, I, H, L, bidirectional=True, batch_first=True, dtype="float64")
    copy_weights(tbi, bti)
    x = rng.standard_normal((T, B, I))
    dy = rng.standard_normal((T, B, 2 * H))
    state = rand_state(rng, kind, 2 * L)  # states are never batch-first
    dstate = rand_state(rng, kind, 2 * L)
    lengths = [T, 2, 4]

    y1, st1 = rk_forward(kind, tbi, x, state, lengths=lengths)
    dx1, dst1 = rk_backward(kind, tbi, dy, dstate)
    y2, st2 = rk_forward(kind, bti, np.ascontiguousarray(x.transpose(1, 0, 2)), state,
                         lengths=lengths)
    dx2, dst2 = rk_backward(kind, bti, np.ascontiguousarray(dy.transpose(1, 0, 2)), dstate)

    assert y2.shape == (B, T, 2 * H) and dx2.shape == (B, T, I)
    assert_close(y2.transpose(1, 0, 2), y1, *EXACT, "y")
    assert_close(dx2.transpose(1, 0, 2), dx1, *EXACT, "dx")
    for a, b in zip(st1 + dst1, st2 + dst2):
        assert b.shape == (2 * L, B, H)
        assert_close(b, a, *EXACT, "states")
    for name in tbi.grads:
        assert_close(bti.grads[name], tbi.grads[name], *EXACT, f"grad {name}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_non_contiguous_inputs(kind, dtype, rng):
    L, D = 2, 2
    layer = kind.make_layer(rk, I, H, L, bidirectional=True, dtype=dtype, seed=10)
    # Strided views: every other batch entry, a transposed array, Fortran order.
    x_big = rng.standard_normal((T, 2 * B, I)).astype(dtype)
    x_nc = x_big[:, ::2]
    assert not x_nc.flags.c_contiguous
    state_nc = [np.asfortranarray(s) for s in rand_state(rng, kind, L * D, dtype=dtype)]
    dy_nc = rng.standard_normal((B, T, D * H)).astype(dtype).transpose(1, 0, 2)
    lengths_nc = np.array([T, 9, 2, 9, 4, 9])[::2]
    x_copy, dy_copy = x_nc.copy(), dy_nc.copy()

    y1, st1 = rk_forward(kind, layer, x_nc, state_nc, lengths=lengths_nc)
    dx1, dst1 = rk_backward(kind, layer, dy_nc, state_nc)  # Fortran-order dstate
    g1 = {k: v.copy() for k, v in layer.grads.items()}
    layer.zero_grad()
    y2, st2 = rk_forward(kind, layer, np.ascontiguousarray(x_nc),
                         [np.ascontiguousarray(s) for s in state_nc],
                         lengths=np.ascontiguousarray(lengths_nc))
    dx2, dst2 = rk_backward(kind, layer, np.ascontiguousarray(dy_nc),
                            [np.ascontiguousarray(s) for s in state_nc])

    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    for a, b in zip(st1 + dst1, st2 + dst2):
        np.testing.assert_array_equal(a, b)
    for n in g1:
        np.testing.assert_array_equal(g1[n], layer.grads[n], err_msg=n)
    # Inputs are never written to.
    np.testing.assert_array_equal(x_nc, x_copy)
    np.testing.assert_array_equal(dy_nc, dy_copy)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_cell_non_contiguous_inputs(kind, rng):
    cell = kind.make_cell(rk, I, H, dtype="float64", seed=11)
    x_nc = rng.standard_normal((I, B)).T
    st_nc = [rng.standard_normal((H, B)).T for _ in range(kind.n_states)]
    a = cell_forward(kind, cell, x_nc, st_nc, training=False)
    b = cell_forward(kind, cell, np.ascontiguousarray(x_nc),
                     [np.ascontiguousarray(s) for s in st_nc], training=False)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_nested_lists_are_converted(kind, dtype, rng):
    layer = kind.make_layer(rk, I, H, 1, dtype=dtype, seed=12)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    y_list, st_list = rk_forward(kind, layer, x.tolist(), training=False)
    y_arr, st_arr = rk_forward(kind, layer, x, training=False)
    assert y_list.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y_list, y_arr)
    for a, b in zip(st_list, st_arr):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_lengths_accept_lists_and_integer_arrays(kind, rng):
    layer = kind.make_layer(rk, I, H, 1, bidirectional=True, dtype="float64", seed=13)
    x = rng.standard_normal((T, B, I))
    ref, _ = rk_forward(kind, layer, x, lengths=np.array([3, T, 1], np.int64), training=False)
    for lengths in ([3, T, 1], (3, T, 1), np.array([3, T, 1], np.int32)):
        y, _ = rk_forward(kind, layer, x, lengths=lengths, training=False)
        np.testing.assert_array_equal(y, ref)
    # Lengths do matter (guards against lengths being ignored).
    full, _ = rk_forward(kind, layer, x, training=False)
    assert np.max(np.abs(full - ref)) > 1e-6


@pytest.mark.parametrize("kind", [LSTM, GRU, RNN_TANH, RNN_RELU, LSTM_PEEPHOLE], ids=str)
def test_returned_arrays_are_not_overwritten(kind, rng):
    """Results of one call must survive later forward/backward calls."""
    layer = kind.make_layer(rk, I, H, 2, dtype="float64", seed=14)
    x1, x2 = rng.standard_normal((2, T, B, I))
    dy1, dy2 = rng.standard_normal((2, T, B, H))
    y1, st1 = rk_forward(kind, layer, x1)
    dx1, dst1 = rk_backward(kind, layer, dy1)
    saved = [a.copy() for a in [y1, dx1] + st1 + dst1]
    rk_forward(kind, layer, x2)
    rk_backward(kind, layer, dy2)
    for a, b in zip([y1, dx1] + st1 + dst1, saved):
        np.testing.assert_array_equal(a, b)
