"""Behaviour that is not a numerical formula: dropout, threads, layouts, API shape.

* Dropout (between layers only): ignored with ``training=False`` (equal to the
  ``dropout=0`` model with the same weights), changes the training outputs of
  stacked layers but not the first layer's final state, is inverted dropout
  (kept values scaled by 1/(1-p)), is reproducible from ``seed``, and its
  gradient agrees with finite differences (each evaluation uses a fresh model
  with the same seed, hence the same mask).
* ``training=True`` without dropout gives the same outputs as ``training=False``.
* ``set_num_threads`` / ``get_num_threads`` round trip; results do not
  depend on the thread count.
* ``batch_first=True`` is exactly the transposed ``batch_first=False`` layer.
* ``parameters()`` has torch's names, shapes and order (and the layer dtype),
  ``grads`` the same names and shapes; parameters are views; the peephole
  parameters have shape (3, H); ``load_state_dict`` casts to the layer dtype
  and takes anything ``np.asarray`` takes.
* Non-contiguous arrays and nested lists are accepted and give the results
  of the contiguous arrays; inputs are not modified; returned arrays are not
  overwritten by later calls.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import (ALL_KINDS, GRU, LSTM, LSTM_PEEPHOLE, RNN_RELU, RNN_TANH, TORCH_KINDS,
                      assert_close, cell_forward, param_names, rk_backward, rk_forward)

T, B, I, H = 5, 3, 4, 6
EXACT = (1e-12, 1e-12)
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


def copy_weights(src, dst):
    dst.load_state_dict({k: np.array(v) for k, v in src.parameters().items()})


def rand_state(rng, kind, n, batch=B, dtype=np.float64):
    return [rng.standard_normal((n, batch, H)).astype(dtype) for _ in range(kind.n_states)]


# --------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_inference_ignores_dropout(kind, rng):
    drop = kind.make_layer(rk, I, H, 2, dropout=0.5, seed=1, dtype="float64")
    plain = kind.make_layer(rk, I, H, 2, dtype="float64")
    copy_weights(drop, plain)
    x = rng.standard_normal((T, B, I))
    state = rand_state(rng, kind, 2)
    y_d, st_d = rk_forward(kind, drop, x, state, training=False)
    y_p, st_p = rk_forward(kind, plain, x, state, training=False)
    assert_close(y_d, y_p, *EXACT, "y")
    for a, e in zip(st_d, st_p):
        assert_close(a, e, *EXACT, "final state")


@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_training_without_dropout_equals_inference(kind, rng):
    layer = kind.make_layer(rk, I, H, 2, bidirectional=True, seed=2, dtype="float64")
    x = rng.standard_normal((T, B, I))
    state = rand_state(rng, kind, 4)
    y_t, st_t = rk_forward(kind, layer, x, state, training=True)
    y_e, st_e = rk_forward(kind, layer, x, state, training=False)
    assert_close(y_t, y_e, *EXACT, "y")
    for a, e in zip(st_t, st_e):
        assert_close(a, e, *EXACT, "final state")


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_acts_between_layers_in_training(kind, rng):
    layer = kind.make_layer(rk, I, H, 2, dropout=0.5, seed=3, dtype="float64")
    x = rng.standard_normal((T, B, I))
    y_t, st_t = rk_forward(kind, layer, x, training=True)
    y_e, st_e = rk_forward(kind, layer, x, training=False)
    # The last layer sees dropped-out inputs ...
    assert np.max(np.abs(y_t - y_e)) > 1e-3
    assert np.max(np.abs(st_t[0][1] - st_e[0][1])) > 1e-3
    # ... but the first layer's computation is untouched by dropout.
    for a, e in zip(st_t, st_e):
        assert_close(a[0], e[0], *EXACT, "layer 0 final state")


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_single_layer_has_no_dropout(kind, rng):
    """Dropout is only applied between layers: none with num_layers=1."""
    import warnings
    with warnings.catch_warnings():
        # A torch-style warning about dropout with one layer is acceptable.
        warnings.simplefilter("ignore")
        layer = kind.make_layer(rk, I, H, 1, dropout=0.5, seed=4, dtype="float64")
        x = rng.standard_normal((T, B, I))
        y_t, _ = rk_forward(kind, layer, x, training=True)
        y_e, _ = rk_forward(kind, layer, x, training=False)
    assert_close(y_t, y_e, *EXACT, "y")


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_is_inverted_dropout(p, rng):
    """Read the dropped-out layer-0 output through an identity second layer.

    Layer 0 (relu RNN) is made strictly positive; layer 1 is relu(W_ih u)
    with W_ih = identity and no recurrence or bias, so y = dropout(y0).
    Every element must be 0 or y0 / (1 - p), with about a fraction p zeros.
    """
    Tn, Bn, Hn = 20, 10, 8
    layer = rk.RNN(I, Hn, 2, nonlinearity="relu", dropout=p, seed=5, dtype="float64")
    sd = {
        "weight_ih_l0": rng.uniform(0.1, 1.0, (Hn, I)), "weight_hh_l0": np.zeros((Hn, Hn)),
        "bias_ih_l0": np.full(Hn, 0.5), "bias_hh_l0": np.zeros(Hn),
        "weight_ih_l1": np.eye(Hn), "weight_hh_l1": np.zeros((Hn, Hn)),
        "bias_ih_l1": np.zeros(Hn), "bias_hh_l1": np.zeros(Hn),
    }
    layer.load_state_dict(sd)
    x = rng.uniform(0.0, 1.0, (Tn, Bn, I))
    y_eval, _ = layer(x, training=False)          # = y0 (identity layer 1)
    y_train, _ = layer(x, training=True)
    assert np.all(y_eval > 0.4)
    zero = y_train == 0
    kept = ~zero
    assert_close(y_train[kept], y_eval[kept] / (1 - p), *EXACT, "kept values")
    frac = zero.mean()
    assert abs(frac - p) < 0.25, f"dropped fraction {frac} for p={p}"
    assert 0 < frac < 1


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_reproducible_from_seed(kind, rng):
    x = rng.standard_normal((T, B, I))
    dy = rng.standard_normal((T, B, H))
    results = []
    for _ in range(2):
        layer = kind.make_layer(rk, I, H, 3, dropout=0.5, seed=1234, dtype="float64")
        y, st = rk_forward(kind, layer, x, training=True)
        dx, _ = rk_backward(kind, layer, dy)
        results.append((layer.parameters(), y, st, dx, layer.grads))
    (p0, y0, st0, dx0, g0), (p1, y1, st1, dx1, g1) = results
    for name in p0:
        np.testing.assert_array_equal(p0[name], p1[name], err_msg=name)
        np.testing.assert_array_equal(g1[name], g0[name], err_msg=f"grad {name}")  # bitwise: fixed summation order
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(dx0, dx1)
    for a, b in zip(st0, st1):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_different_seeds_give_different_weights(kind):
    a = kind.make_layer(rk, I, H, seed=1).parameters()
    b = kind.make_layer(rk, I, H, seed=2).parameters()
    assert any(not np.array_equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_gradient_finite_differences(kind, bidir, rng):
    """Each loss evaluation uses a fresh same-seed model => the same mask."""
    eps, L, seed = 1e-6, 2, 77
    D = 2 if bidir else 1
    Tn, Bn, In, Hn = 3, 2, 2, 3
    opts = dict(dropout=0.5, seed=seed, bidirectional=bidir, dtype="float64")
    proto = kind.make_layer(rk, In, Hn, L, **opts)
    params = {n: rng.uniform(-0.8, 0.8, p.shape) for n, p in proto.parameters().items()}

    def fresh(p):
        m = kind.make_layer(rk, In, Hn, L, **opts)
        m.load_state_dict(p)
        return m

    x = rng.standard_normal((Tn, Bn, In))
    w_y = rng.standard_normal((Tn, Bn, D * Hn))
    w_h = rng.standard_normal((L * D, Bn, Hn))

    def loss(x, p):
        y, st = rk_forward(kind, fresh(p), x, training=True)
        return float(np.sum(y * w_y) + np.sum(st[0] * w_h))

    # Premise: the mask is a function of the seed (and is not the identity).
    y1, _ = rk_forward(kind, fresh(params), x, training=True)
    y2, _ = rk_forward(kind, fresh(params), x, training=True)
    y3, _ = rk_forward(kind, fresh(params), x, training=False)
    np.testing.assert_array_equal(y1, y2)
    assert np.max(np.abs(y1 - y3)) > 1e-6, "dropout had no effect; pick another seed"

    m = fresh(params)
    rk_forward(kind, m, x, training=True)
    dstate = [w_h] + [np.zeros_like(w_h)] * (kind.n_states - 1)
    dx, _ = rk_backward(kind, m, w_y, dstate)

    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(xp, params) - loss(xm, params)) / (2 * eps)
    assert_close(dx, num, 1e-6, 1e-7, "dx with dropout")
    for name in ("weight_ih_l1", "weight_hh_l0"):
        num = np.zeros_like(params[name])
        for idx in np.ndindex(num.shape):
            pp = {k: v.copy() for k, v in params.items()}
            pm = {k: v.copy() for k, v in params.items()}
            pp[name][idx] += eps
            pm[name][idx] -= eps
            num[idx] = (loss(x, pp) - loss(x, pm)) / (2 * eps)
        assert_close(m.grads[name], num, 1e-6, 1e-7, f"grad {name} with dropout")


# --------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# batch_first
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# parameters, grads, load_state_dict
# --------------------------------------------------------------------------

TORCH_CONFIGS = [(1, False, True), (2, True, True), (3, False, False), (2, True, False)]


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=str)
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_parameters_match_torch_state_dict(kind, config):
    torch = pytest.importorskip("torch")
    L, bidir, bias = config
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind.kind]
    kw = {"nonlinearity": kind.kwargs["nonlinearity"]} if kind.kind == "rnn" else {}
    tsd = cls(I, H, L, bias=bias, bidirectional=bidir, **kw).state_dict()
    for dtype in (np.float32, np.float64):
        layer = kind.make_layer(rk, I, H, L, bias=bias, bidirectional=bidir, dtype=dtype)
        params = layer.parameters()
        assert list(params) == list(tsd), "names / order differ from torch"
        assert list(params) == param_names(L, bidir, bias)
        for name, p in params.items():
            assert isinstance(p, np.ndarray)
            assert p.shape == tuple(tsd[name].shape), name
            assert p.dtype == dtype, name
        grads = layer.grads
        assert set(grads) == set(params)
        for name, g in grads.items():
            assert g.shape == params[name].shape and g.dtype == dtype, name


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_cell_parameters_match_torch_state_dict(kind):
    torch = pytest.importorskip("torch")
    for bias in (True, False):
        if kind.kind == "lstm":
            tm = torch.nn.LSTMCell(I, H, bias=bias)
        elif kind.kind == "gru":
            tm = torch.nn.GRUCell(I, H, bias=bias)
        else:
            tm = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=kind.kwargs["nonlinearity"])
        tsd = tm.state_dict()
        cell = kind.make_cell(rk, I, H, bias=bias, dtype="float64")
        params = cell.parameters()
        assert list(params) == list(tsd)
        for name, p in params.items():
            assert p.shape == tuple(tsd[name].shape) and p.dtype == np.float64, name
        assert set(cell.grads) == set(params)


@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
def test_peephole_parameters(bidir):
    L = 2
    layer = rk.LSTM(I, H, L, peephole=True, bidirectional=bidir)
    params = layer.parameters()
    expected = set(param_names(L, bidir, peephole=True))
    assert set(params) == expected
    # The torch-named parameters keep torch's order.
    assert [n for n in params if "peephole" not in n] == param_names(L, bidir)
    for name in expected:
        if "peephole" in name:
            assert params[name].shape == (3, H)
            assert layer.grads[name].shape == (3, H)
    cell = rk.LSTMCell(I, H, peephole=True)
    assert set(cell.parameters()) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                      "weight_peephole"}
    assert cell.parameters()["weight_peephole"].shape == (3, H)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_no_bias_keys_without_bias(kind):
    layer = kind.make_layer(rk, I, H, 2, bias=False, bidirectional=True)
    assert not any(n.startswith("bias") for n in layer.parameters())
    assert not any(n.startswith("bias") for n in layer.grads)
    cell = kind.make_cell(rk, I, H, bias=False)
    assert set(cell.parameters()) == {"weight_ih", "weight_hh"}


@pytest.mark.parametrize("dtype,expected", [
    ("float32", np.float32), ("float64", np.float64),
    (np.float32, np.float32), (np.float64, np.float64)],
    ids=["str-f32", "str-f64", "np-f32", "np-f64"])
def test_dtype_spellings(dtype, expected):
    for module in (rk.LSTM(I, H, dtype=dtype), rk.GRUCell(I, H, dtype=dtype)):
        for name, p in module.parameters().items():
            assert p.dtype == expected, name
    y, _ = rk.RNN(I, H, dtype=dtype)(np.zeros((T, B, I), expected))
    assert y.dtype == expected


def test_default_dtype_is_float32():
    assert all(p.dtype == np.float32 for p in rk.GRU(I, H).parameters().values())


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_parameters_are_views(kind, rng):
    a = kind.make_layer(rk, I, H, 1, dtype="float64", seed=8)
    b = kind.make_layer(rk, I, H, 1, dtype="float64", seed=9)
    x = rng.standard_normal((T, B, I))
    before, _ = rk_forward(kind, a, x, training=False)
    new = {n: rng.uniform(-0.5, 0.5, p.shape) for n, p in a.parameters().items()}
    params = a.parameters()
    for n, v in new.items():
        params[n][...] = v  # in-place write into the view
    b.load_state_dict(new)
    for n, v in new.items():
        np.testing.assert_array_equal(a.parameters()[n], v, err_msg=n)
    after, _ = rk_forward(kind, a, x, training=False)
    expected, _ = rk_forward(kind, b, x, training=False)
    assert np.max(np.abs(after - before)) > 1e-6
    assert_close(after, expected, *EXACT, "y after in-place parameter update")


def test_load_state_dict_casts_and_accepts_array_likes(rng):
    layer = rk.GRU(I, H, dtype="float32")
    src = {n: rng.uniform(-1, 1, p.shape) for n, p in layer.parameters().items()}  # float64
    layer.load_state_dict(src)
    for n, v in layer.parameters().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, src[n].astype(np.float32), err_msg=n)
    # Nested lists are fine too (anything np.asarray takes).
    lists = {n: (2 * v).tolist() for n, v in src.items()}
    layer.load_state_dict(lists)
    for n, v in layer.parameters().items():
        np.testing.assert_array_equal(v, (2 * src[n]).astype(np.float32), err_msg=n)


# --------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------

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
