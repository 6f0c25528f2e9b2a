"""Analytic gradients of rnnkit against central finite differences (float64).

For every cell flavour -- LSTM, peephole LSTM, GRU with linear_before_reset
True and False, RNN tanh and relu -- and for both whole layers (single layer,
bidirectional + 2 layers, variable lengths, batch_first, no bias) and cells
(several steps of BPTT through the tape), we take the scalar loss

    L = sum(y * W_y) + sum(h_n * W_h) (+ sum(c_n * W_c))

with random weights W_*, i.e. backward is called with dy = W_y,
dh_n = W_h (, dc_n = W_c), and compare dx, the initial-state gradients and
EVERY parameter gradient with (L(p + eps) - L(p - eps)) / (2 eps), eps = 1e-6.
Tensors with more than 20 entries are checked on a random subset of 20 entries
(conftest.fd_check: eps 1e-6, rtol 1e-6, atol 1e-7).

This is the only gradient oracle for the peephole LSTM and the lbr=False GRU.
For relu, the problem is redrawn until no pre-activation (computed with
reference.py) lies within ``KINK_MARGIN`` of the kink at 0, where finite
differences are meaningless.  With lengths, W_y is non-zero at padded
positions as well: those outputs are constant 0, so the gradient must ignore
them -- finite differences see exactly that.
"""

import numpy as np
import pytest

import reference
import rnnkit as rk
from conftest import (ALL_KINDS, RNN_RELU, cell_backward, cell_forward, fd_check, pack_state, rk_backward,
                      rk_forward)

KINK_MARGIN = 1e-3
T, B, I, H = 4, 3, 3, 3


# --------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------

# (num_layers, bidirectional, batch_first, bias, use lengths)
LAYER_CONFIGS = [
    (1, False, False, True, False),
    (2, True, False, True, False),
    (2, True, True, True, True),
    (2, False, False, False, True),
]


def layer_config_id(c):
    L, bidir, bf, bias, lens = c
    return (f"L{L}-{'bi' if bidir else 'uni'}{'-bf' if bf else ''}"
            f"{'' if bias else '-nobias'}{'-lengths' if lens else ''}")


def draw_layer_problem(kind, rng, L, bidir, bf, bias, use_lengths, names_shapes):
    D = 2 if bidir else 1
    for _ in range(50):
        params = {n: rng.uniform(-0.8, 0.8, s) for n, s in names_shapes.items()}
        x = rng.standard_normal((B, T, I) if bf else (T, B, I))
        state = [0.5 * rng.standard_normal((L * D, B, H)) for _ in range(kind.n_states)]
        lengths = rng.permutation([T, 1, 3])[:B] if use_lengths else None
        if kind != RNN_RELU:
            break
        trace = []
        reference.rnn_forward(kind.kind, x, pack_state(kind, state), params, num_layers=L,
                              bidirectional=bidir, batch_first=bf, lengths=lengths,
                              trace=trace, **kind.kwargs)
        if min(np.min(np.abs(a)) for a in trace) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw a relu problem away from the kink")
    return params, x, state, lengths


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=layer_config_id)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_layer_gradients(kind, config, rng):
    L, bidir, bf, bias, use_lengths = config
    D = 2 if bidir else 1
    opts = dict(bidirectional=bidir, batch_first=bf, bias=bias, dtype="float64")
    layer = kind.make_layer(rk, I, H, L, **opts)
    probe = kind.make_layer(rk, I, H, L, **opts)  # used for the loss evaluations
    names_shapes = {n: p.shape for n, p in layer.parameters().items()}
    params, x, state, lengths = draw_layer_problem(kind, rng, L, bidir, bf, bias,
                                                   use_lengths, names_shapes)
    w_y = rng.standard_normal(x.shape[:2] + (D * H,))
    w_state = [rng.standard_normal((L * D, B, H)) for _ in range(kind.n_states)]

    # Analytic gradients.
    layer.load_state_dict(params)
    rk_forward(kind, layer, x, state, lengths=lengths)
    dx, dstate = rk_backward(kind, layer, w_y, w_state)
    analytic = {"x": dx, **{f"state{k}": d for k, d in enumerate(dstate)},
                **{n: layer.grads[n].copy() for n in params}}
    assert set(layer.grads) == set(params)

    def loss(arrays):
        probe.load_state_dict({n: arrays[n] for n in params})
        st = [arrays[f"state{k}"] for k in range(kind.n_states)]
        y, finals = rk_forward(kind, probe, arrays["x"], st, lengths=lengths, training=False)
        return float(np.sum(y * w_y) + sum(np.sum(f * w) for f, w in zip(finals, w_state)))

    arrays = {"x": x.copy(), **{f"state{k}": s.copy() for k, s in enumerate(state)},
              **{n: p.copy() for n, p in params.items()}}
    fd_check(rng, loss, arrays, analytic, f"{kind} {layer_config_id(config)}")


# --------------------------------------------------------------------------
# cells (BPTT over several steps through the tape)
# --------------------------------------------------------------------------

CELL_STEPS = 3


def draw_cell_problem(kind, rng, names_shapes):
    for _ in range(50):
        params = {n: rng.uniform(-0.8, 0.8, s) for n, s in names_shapes.items()}
        xs = [rng.standard_normal((B, I)) for _ in range(CELL_STEPS)]
        state = [0.5 * rng.standard_normal((B, H)) for _ in range(kind.n_states)]
        if kind != RNN_RELU:
            break
        trace, h = [], state[0]
        for x in xs:
            h = reference.cell_step(kind.kind, x, h, h, params, trace=trace, **kind.kwargs)[0]
        if min(np.min(np.abs(a)) for a in trace) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw a relu problem away from the kink")
    return params, xs, state


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_cell_gradients(kind, bias, rng):
    cell = kind.make_cell(rk, I, H, bias=bias, dtype="float64")
    probe = kind.make_cell(rk, I, H, bias=bias, dtype="float64")
    names_shapes = {n: p.shape for n, p in cell.parameters().items()}
    params, xs, state = draw_cell_problem(kind, rng, names_shapes)
    # Loss weights for every step's state outputs.
    ws = [[rng.standard_normal((B, H)) for _ in range(kind.n_states)]
          for _ in range(CELL_STEPS)]

    cell.load_state_dict(params)
    st = state
    for x in xs:
        st = cell_forward(kind, cell, x, st)
    carry = [np.zeros((B, H)) for _ in range(kind.n_states)]
    dxs = [None] * CELL_STEPS
    for t in reversed(range(CELL_STEPS)):
        dxs[t], carry = cell_backward(kind, cell, [c + w for c, w in zip(carry, ws[t])])
    analytic = {**{f"x{t}": d for t, d in enumerate(dxs)},
                **{f"state{k}": d for k, d in enumerate(carry)},
                **{n: cell.grads[n].copy() for n in params}}
    assert set(cell.grads) == set(params)

    def loss(arrays):
        probe.load_state_dict({n: arrays[n] for n in params})
        st = [arrays[f"state{k}"] for k in range(kind.n_states)]
        total = 0.0
        for t in range(CELL_STEPS):
            st = cell_forward(kind, probe, arrays[f"x{t}"], st, training=False)
            total += sum(float(np.sum(s * w)) for s, w in zip(st, ws[t]))
        return total

    arrays = {**{f"x{t}": x.copy() for t, x in enumerate(xs)},
              **{f"state{k}": s.copy() for k, s in enumerate(state)},
              **{n: p.copy() for n, p in params.items()}}
    fd_check(rng, loss, arrays, analytic, f"{kind} cell")
