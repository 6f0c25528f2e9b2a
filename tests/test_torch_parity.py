"""Parity of rnnkit.LSTM / GRU / RNN with torch.nn.LSTM / GRU / RNN.

For a grid of configurations (1-3 layers, uni/bidirectional, batch_first,
with and without bias, float32 and float64) the same weights are loaded into
both libraries (``load_state_dict(torch_module.state_dict())``) and we compare

* the forward results: y and the final states h_n (and c_n),
* the backward results for random upstream gradients of y, h_n (and c_n):
  dx, dh0 (and dc0), and the gradient of EVERY parameter, by name.

torch always runs in float64.  For float32 tests the torch weights are first
rounded to float32-representable values and the inputs are the float32 arrays
rnnkit sees, so differences measure only rnnkit's own float32 rounding.

Also covered: variable ``lengths`` against ``pack_padded_sequence(...,
enforce_sorted=False)`` (including bidirectional and stacked layers),
that padded positions of dy are ignored, omitted states/upstream states
(zeros), gradient accumulation over backward calls and ``zero_grad``, and the
peephole LSTM with all-zero peephole weights against torch.nn.LSTM.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

import rnnkit as rk  # noqa: E402
from conftest import (LSTM, LSTM_PEEPHOLE, TORCH_KINDS, assert_close,  # noqa: E402
                      pack_state, rk_backward, rk_forward, tol, torch_float32_exact,
                      torch_grads, unpack_state)

torch.set_num_threads(2)

DTYPES = [np.float32, np.float64]
T, B, I, H = 6, 3, 4, 5

# (num_layers, bidirectional, batch_first, bias)
CONFIGS = [
    (1, False, False, True),
    (1, True, False, True),
    (1, False, True, False),
    (2, False, True, True),
    (2, True, False, False),
    (3, True, True, True),
    (3, False, False, True),
]


def config_id(c):
    L, bidir, bf, bias = c
    return f"L{L}-{'bi' if bidir else 'uni'}{'-bf' if bf else ''}{'' if bias else '-nobias'}"


def make_torch(kind, num_layers, bidirectional, batch_first, bias, dtype, seed):
    torch.manual_seed(seed)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind.kind]
    kw = {"nonlinearity": kind.kwargs["nonlinearity"]} if kind.kind == "rnn" else {}
    m = cls(I, H, num_layers, bias=bias, batch_first=batch_first,
            bidirectional=bidirectional, **kw).double()
    if dtype == np.float32:
        torch_float32_exact(m)
    return m


def make_pair(kind, num_layers, bidirectional, batch_first, bias, dtype, seed=0):
    """A torch module (float64) and an rnnkit layer holding the same weights."""
    tm = make_torch(kind, num_layers, bidirectional, batch_first, bias, dtype, seed)
    layer = kind.make_layer(rk, I, H, num_layers, bias=bias, batch_first=batch_first,
                            bidirectional=bidirectional, dtype=dtype)
    layer.load_state_dict(tm.state_dict())
    return tm, layer


def run_torch(kind, module, x, state, dy, dstate, lengths=None, batch_first=False):
    """Forward + vector-Jacobian product in torch (float64).

    Returns y, [h_n(, c_n)], dx, [dh0(, dc0)], {param name: grad}.
    ``state``/``dstate`` may be None (zeros); an explicit zero state is then
    passed to torch so that its gradient can still be compared.
    """
    D = 2 if module.bidirectional else 1
    Bx = x.shape[0] if batch_first else x.shape[1]
    Tx = x.shape[1] if batch_first else x.shape[0]
    shape = (module.num_layers * D, Bx, module.hidden_size)
    if state is None:
        state = [np.zeros(shape)] * kind.n_states
    if dstate is None:
        dstate = [np.zeros(shape)] * kind.n_states

    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    st = [torch.tensor(np.asarray(s, np.float64), requires_grad=True) for s in state]
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
                                   batch_first=batch_first, enforce_sorted=False)
    out, hn = module(inp, pack_state(kind, st))
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=Tx)
    finals = unpack_state(kind, hn)

    names = [n for n, _ in module.named_parameters()]
    params = [p for _, p in module.named_parameters()]
    grads = torch_grads([out] + finals, [dy] + list(dstate), [xt] + st + params)
    dx, dst, dparams = grads[0], grads[1:1 + len(st)], grads[1 + len(st):]
    return (out.detach().numpy(), [f.detach().numpy() for f in finals], dx, dst,
            dict(zip(names, dparams)))


def random_inputs(rng, kind, num_layers, bidirectional, batch_first, dtype):
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    state = [(0.5 * rng.standard_normal((num_layers * D, B, H))).astype(dtype)
             for _ in range(kind.n_states)]
    dy = rng.standard_normal(x.shape[:2] + (D * H,)).astype(dtype)
    dstate = [rng.standard_normal((num_layers * D, B, H)).astype(dtype)
              for _ in range(kind.n_states)]
    return x, state, dy, dstate


def compare(kind, dtype, rk_res, torch_res, grads):
    """Compare (y, finals, dx, dstate) and every parameter gradient."""
    rtol, atol = tol(dtype)
    y, finals, dx, dst = rk_res
    ty, tfinals, tdx, tdst, tgrads = torch_res
    state_names = ["h", "c"][:kind.n_states]
    assert y.dtype == dtype and dx.dtype == dtype
    assert_close(y, ty, rtol, atol, "y")
    for n, a, e in zip(state_names, finals, tfinals):
        assert a.dtype == dtype
        assert_close(a, e, rtol, atol, f"{n}_n")
    assert_close(dx, tdx, rtol, atol, "dx")
    for n, a, e in zip(state_names, dst, tdst):
        assert a.dtype == dtype
        assert_close(a, e, rtol, atol, f"d{n}0")
    assert set(grads) == set(tgrads), "gradient names differ from torch parameter names"
    for name, g in tgrads.items():
        assert grads[name].dtype == dtype, name
        assert_close(grads[name], g, rtol, atol, f"grad {name}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_forward_backward_matches_torch(kind, config, dtype, rng):
    L, bidir, bf, bias = config
    tm, layer = make_pair(kind, L, bidir, bf, bias, dtype)
    x, state, dy, dstate = random_inputs(rng, kind, L, bidir, bf, dtype)

    y, finals = rk_forward(kind, layer, x, state)
    dx, dst = rk_backward(kind, layer, dy, dstate)
    ref = run_torch(kind, tm, x, state, dy, dstate, batch_first=bf)
    compare(kind, dtype, (y, finals, dx, dst), ref, layer.grads)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_omitted_states_are_zeros(kind, dtype, rng):
    """layer(x) uses zero initial states; layer.backward(dy) zero upstream state grads."""
    L, bidir = 2, True
    tm, layer = make_pair(kind, L, bidir, False, True, dtype)
    x, _, dy, _ = random_inputs(rng, kind, L, bidir, False, dtype)

    y, finals = rk_forward(kind, layer, x)
    dx, dst = rk_backward(kind, layer, dy)
    ref = run_torch(kind, tm, x, None, dy, None)
    compare(kind, dtype, (y, finals, dx, dst), ref, layer.grads)


# --------------------------------------------------------------------------
# variable lengths (packed sequences)
# --------------------------------------------------------------------------

LENGTH_CONFIGS = [
    (1, False, False, True),
    (1, True, True, True),
    (2, True, False, True),
    (3, True, True, False),
    (2, False, False, True),
]


def random_lengths(rng, full):
    """B=4 unsorted lengths in 1..T, containing 1; containing T iff ``full``."""
    top = T if full else T - 1
    lengths = np.array([top, 1, rng.integers(1, top + 1), rng.integers(1, top + 1)])
    return rng.permutation(lengths).astype(np.int64)


def zero_padded(a, lengths, batch_first):
    a = a.copy()
    for b, n in enumerate(lengths):
        if batch_first:
            a[b, n:] = 0
        else:
            a[n:, b] = 0
    return a


@pytest.mark.parametrize("full", [True, False], ids=["maxlen=T", "maxlen<T"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", LENGTH_CONFIGS, ids=config_id)
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_lengths_match_packed_sequence(kind, config, dtype, full, rng):
    L, bidir, bf, bias = config
    lengths = random_lengths(rng, full)
    tm, layer = make_pair(kind, L, bidir, bf, bias, dtype)
    nb = len(lengths)
    D = 2 if bidir else 1
    x = rng.standard_normal((nb, T, I) if bf else (T, nb, I)).astype(dtype)
    state = [(0.5 * rng.standard_normal((L * D, nb, H))).astype(dtype)
             for _ in range(kind.n_states)]
    dy = zero_padded(rng.standard_normal(x.shape[:2] + (D * H,)).astype(dtype), lengths, bf)
    dstate = [rng.standard_normal((L * D, nb, H)).astype(dtype) for _ in range(kind.n_states)]

    y, finals = rk_forward(kind, layer, x, state, lengths=lengths)
    dx, dst = rk_backward(kind, layer, dy, dstate)
    ref = run_torch(kind, tm, x, state, dy, dstate, lengths=lengths, batch_first=bf)
    compare(kind, dtype, (y, finals, dx, dst), ref, layer.grads)
    # Outputs past the end of each sequence are exactly zero.
    assert np.all(zero_padded(y, lengths, bf) == y)


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_padded_positions_of_dy_are_ignored(kind, rng):
    """Garbage in dy past each sequence's end must not change any gradient."""
    L, bidir, dtype = 2, True, np.float64
    lengths = np.array([2, T, 1, 4])
    nb = len(lengths)
    x = rng.standard_normal((T, nb, I))
    dy = rng.standard_normal((T, nb, 2 * H))
    dy_clean = zero_padded(dy, lengths, False)
    layer = kind.make_layer(rk, I, H, L, bidirectional=bidir, dtype=dtype, seed=3)
    results = []
    for upstream in (dy_clean, dy):
        layer.zero_grad()
        rk_forward(kind, layer, x, lengths=lengths)
        dx, dst = rk_backward(kind, layer, upstream)
        results.append((dx, dst, {k: v.copy() for k, v in layer.grads.items()}))
    (dx0, dst0, g0), (dx1, dst1, g1) = results
    assert np.any(dx0 != 0)
    np.testing.assert_array_equal(dx1, dx0)
    for a, b in zip(dst1, dst0):
        np.testing.assert_array_equal(a, b)
    for name in g0:
        np.testing.assert_array_equal(g1[name], g0[name], err_msg=name)


# --------------------------------------------------------------------------
# gradient accumulation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_gradients_accumulate_until_zero_grad(kind, rng):
    dtype = np.float64
    rtol, atol = tol(dtype)
    L, bidir = 2, True
    tm, layer = make_pair(kind, L, bidir, False, True, dtype)
    batches = [random_inputs(rng, kind, L, bidir, False, dtype) for _ in range(2)]
    refs = [run_torch(kind, tm, *b) for b in batches]

    # Same batch twice: exactly doubled gradients.
    for _ in range(2):
        x, state, dy, dstate = batches[0]
        rk_forward(kind, layer, x, state)
        rk_backward(kind, layer, dy, dstate)
    for name, g in refs[0][4].items():
        assert_close(layer.grads[name], 2 * g, rtol, atol, f"2x grad {name}")

    # zero_grad resets every gradient to exactly zero, keeping the shapes.
    layer.zero_grad()
    params = layer.parameters()
    for name, g in layer.grads.items():
        assert g.shape == params[name].shape
        assert np.all(g == 0), name

    # Two different batches: the sum of their individual gradients.
    for x, state, dy, dstate in batches:
        rk_forward(kind, layer, x, state)
        rk_backward(kind, layer, dy, dstate)
    for name in refs[0][4]:
        assert_close(layer.grads[name], refs[0][4][name] + refs[1][4][name],
                     rtol, atol, f"accumulated grad {name}")

    # Input / state gradients are returned, never accumulated.
    x, state, dy, dstate = batches[1]
    rk_forward(kind, layer, x, state)
    dx, dst = rk_backward(kind, layer, dy, dstate)
    assert_close(dx, refs[1][2], rtol, atol, "dx after several backward calls")
    for a, e in zip(dst, refs[1][3]):
        assert_close(a, e, rtol, atol, "dstate after several backward calls")


# --------------------------------------------------------------------------
# peephole LSTM with zero peephole weights == torch.nn.LSTM
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("config", [(1, False, False, True), (2, True, True, True)],
                         ids=config_id)
def test_zero_peephole_equals_torch_lstm(config, dtype, rng):
    L, bidir, bf, bias = config
    tm = make_torch(LSTM, L, bidir, bf, bias, dtype, seed=1)
    layer = LSTM_PEEPHOLE.make_layer(rk, I, H, L, bias=bias, batch_first=bf,
                                     bidirectional=bidir, dtype=dtype)
    sd = dict(tm.state_dict())
    peep = [n for n in layer.parameters() if n.startswith("weight_peephole")]
    assert len(peep) == L * (2 if bidir else 1)
    for n in peep:
        sd[n] = np.zeros((3, H))
    layer.load_state_dict(sd)

    x, state, dy, dstate = random_inputs(rng, LSTM, L, bidir, bf, dtype)
    y, finals = rk_forward(LSTM, layer, x, state)
    dx, dst = rk_backward(LSTM, layer, dy, dstate)
    ref = run_torch(LSTM, tm, x, state, dy, dstate, batch_first=bf)
    grads = {k: v for k, v in layer.grads.items() if k not in peep}
    compare(LSTM, dtype, (y, finals, dx, dst), ref, grads)
    for n in peep:
        assert layer.grads[n].shape == (3, H)
        assert np.all(np.isfinite(layer.grads[n]))
