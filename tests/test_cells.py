"""rnnkit.LSTMCell / GRUCell / RNNCell against torch.nn.LSTMCell / GRUCell / RNNCell.

A cell is stepped several times with ``training=True``; each step records its
activations on a tape.  Backpropagation through time is then done by hand,
calling ``cell.backward`` once per step in LIFO order with the carried state
gradient plus that step's own upstream gradient.  We compare with torch
autograd over the same unrolled computation: every step's outputs, every
step's dx, the gradient of the initial state and every parameter gradient
(accumulated over the steps).  torch runs in float64 on the float32-rounded
values in the float32 tests (see test_torch_parity.py).

Also: the state argument is optional (zeros), steps with ``training=False``
are not recorded on the tape, and gradients accumulate until ``zero_grad``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit as rk  # noqa: E402
from conftest import (TORCH_KINDS, assert_close, cell_backward, cell_forward,  # noqa: E402
                      pack_state, tol, torch_float32_exact, torch_grads, unpack_state)

torch.set_num_threads(2)

B, I, H, STEPS = 3, 4, 5, 4


def make_torch_cell(kind, bias, dtype, seed=0):
    torch.manual_seed(seed)
    if kind.kind == "lstm":
        m = torch.nn.LSTMCell(I, H, bias=bias)
    elif kind.kind == "gru":
        m = torch.nn.GRUCell(I, H, bias=bias)
    else:
        m = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=kind.kwargs["nonlinearity"])
    m = m.double()
    if dtype == np.float32:
        torch_float32_exact(m)
    return m


def make_pair(kind, bias, dtype, seed=0):
    tm = make_torch_cell(kind, bias, dtype, seed)
    cell = kind.make_cell(rk, I, H, bias=bias, dtype=dtype)
    cell.load_state_dict(tm.state_dict())
    return tm, cell


def torch_unroll(kind, tm, xs, state0, ups):
    """Unrolled torch cell: per-step outputs and all gradients.

    L = sum_t sum_k sum(state_t[k] * ups[t][k]).
    Returns outputs[t][k], dxs[t], dstate0[k], {param: grad}.
    """
    xts = [torch.tensor(np.asarray(x, np.float64), requires_grad=True) for x in xs]
    st0 = [torch.tensor(np.asarray(s, np.float64), requires_grad=True) for s in state0]
    st, outs = st0, []
    for xt in xts:
        st = unpack_state(kind, tm(xt, pack_state(kind, st)))
        outs.append(st)
    names = [n for n, _ in tm.named_parameters()]
    params = [p for _, p in tm.named_parameters()]
    flat_out = [o for step in outs for o in step]
    flat_up = [u for step in ups for u in step]
    grads = torch_grads(flat_out, flat_up, xts + st0 + params)
    n = len(xts)
    return ([[o.detach().numpy() for o in step] for step in outs], grads[:n],
            grads[n:n + len(st0)], dict(zip(names, grads[n + len(st0):])))


@pytest.mark.parametrize("given_state", [True, False], ids=["state", "nostate"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_cell_bptt_matches_torch(kind, dtype, bias, given_state, rng):
    rtol, atol = tol(dtype)
    tm, cell = make_pair(kind, bias, dtype)
    xs = [rng.standard_normal((B, I)).astype(dtype) for _ in range(STEPS)]
    if given_state:
        state0 = [(0.5 * rng.standard_normal((B, H))).astype(dtype) for _ in range(kind.n_states)]
    else:
        state0 = [np.zeros((B, H), dtype) for _ in range(kind.n_states)]
    ups = [[rng.standard_normal((B, H)).astype(dtype) for _ in range(kind.n_states)]
           for _ in range(STEPS)]

    # rnnkit: forward STEPS steps, then BPTT through the tape (LIFO).
    st, outs = (state0 if given_state else None), []
    for x in xs:
        st = cell_forward(kind, cell, x, st)
        outs.append(st)
    carry = [np.zeros((B, H), dtype) for _ in range(kind.n_states)]
    dxs = [None] * STEPS
    for t in reversed(range(STEPS)):
        dxs[t], carry = cell_backward(kind, cell, [c + u for c, u in zip(carry, ups[t])])

    touts, tdxs, tdstate0, tgrads = torch_unroll(kind, tm, xs, state0, ups)
    for t in range(STEPS):
        for k, name in enumerate(["h", "c"][:kind.n_states]):
            assert outs[t][k].dtype == dtype
            assert_close(outs[t][k], touts[t][k], rtol, atol, f"{name} at step {t}")
        assert dxs[t].dtype == dtype
        assert_close(dxs[t], tdxs[t], rtol, atol, f"dx at step {t}")
    for k, name in enumerate(["dh0", "dc0"][:kind.n_states]):
        assert_close(carry[k], tdstate0[k], rtol, atol, name)
    assert set(cell.grads) == set(tgrads)
    for name, g in tgrads.items():
        assert_close(cell.grads[name], g, rtol, atol, f"grad {name}")


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_eval_steps_are_not_recorded(kind, rng):
    """A training=False step between recorded steps leaves the tape alone."""
    dtype = np.float64
    rtol, atol = tol(dtype)
    tm, cell = make_pair(kind, True, dtype)
    xs = [rng.standard_normal((B, I)) for _ in range(2)]
    state0 = [0.5 * rng.standard_normal((B, H)) for _ in range(kind.n_states)]
    ups = [[rng.standard_normal((B, H)) for _ in range(kind.n_states)] for _ in range(2)]

    st = cell_forward(kind, cell, xs[0], state0)
    st = cell_forward(kind, cell, xs[1], st)
    # An inference step (e.g. a look-ahead): must not be recorded.
    cell_forward(kind, cell, rng.standard_normal((B, I)), st, training=False)

    carry = [np.zeros((B, H)) for _ in range(kind.n_states)]
    dxs = [None, None]
    for t in (1, 0):
        dxs[t], carry = cell_backward(kind, cell, [c + u for c, u in zip(carry, ups[t])])
    _, tdxs, tdstate0, tgrads = torch_unroll(kind, tm, xs, state0, ups)
    for t in (0, 1):
        assert_close(dxs[t], tdxs[t], rtol, atol, f"dx at step {t}")
    for k in range(kind.n_states):
        assert_close(carry[k], tdstate0[k], rtol, atol, "dstate0")
    for name, g in tgrads.items():
        assert_close(cell.grads[name], g, rtol, atol, f"grad {name}")
    # The tape is now empty.
    with pytest.raises(RuntimeError, match="backward"):
        cell_backward(kind, cell, carry)


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_cell_grads_accumulate_and_zero_grad(kind, rng):
    dtype = np.float64
    rtol, atol = tol(dtype)
    tm, cell = make_pair(kind, True, dtype)
    x = rng.standard_normal((B, I))
    state0 = [rng.standard_normal((B, H)) for _ in range(kind.n_states)]
    up = [rng.standard_normal((B, H)) for _ in range(kind.n_states)]
    _, _, _, tgrads = torch_unroll(kind, tm, [x], state0, [up])

    for _ in range(2):
        cell_forward(kind, cell, x, state0)
        cell_backward(kind, cell, up)
    for name, g in tgrads.items():
        assert_close(cell.grads[name], 2 * g, rtol, atol, f"2x grad {name}")
    cell.zero_grad()
    for name, g in cell.grads.items():
        assert g.shape == cell.parameters()[name].shape
        assert np.all(g == 0), name
    cell_forward(kind, cell, x, state0)
    cell_backward(kind, cell, up)
    for name, g in tgrads.items():
        assert_close(cell.grads[name], g, rtol, atol, f"grad {name} after zero_grad")
