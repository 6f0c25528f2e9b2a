"""Parameters, gradients and ``load_state_dict``.

* ``parameters()`` has torch's names, shapes and order (and the layer dtype),
  ``grads`` the same names and shapes; parameters are views; the peephole
  parameters have shape (3, H); no bias keys without bias; dtype spellings and
  the float32 default; different seeds give different weights.
* ``load_state_dict`` casts to the layer dtype and takes anything ``np.asarray``
  takes.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import GRU, LSTM, RNN_TANH, TORCH_KINDS, assert_close, param_names, rk_forward

T, B, I, H = 5, 3, 4, 6
EXACT = (1e-12, 1e-12)
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_different_seeds_give_different_weights(kind):
    a = kind.make_layer(rk, I, H, seed=1).parameters()
    b = kind.make_layer(rk, I, H, seed=2).parameters()
    assert any(not np.array_equal(a[n], b[n]) for n in a)


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
