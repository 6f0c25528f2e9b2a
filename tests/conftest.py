"""Shared helpers for the rnnkit test suite.

* ``rng``: a NumPy generator seeded from the test's node id, so every test is
  deterministic but different tests draw different numbers.
* ``assert_close``: ``np.testing.assert_allclose``-like check whose failure
  message reports the worst absolute and relative differences (and where).
* ``tol(dtype)``: the tolerances used throughout (float32 ~1e-5, float64
  ~1e-10; the absolute part is scaled by the magnitude of the expected values,
  because rounding errors of float sums scale with the summed magnitude).
* ``Kind`` / ``LAYER_KINDS`` / ``CELL_KINDS``: the cell flavours under test,
  with the rnnkit constructor keyword arguments that select them; the same
  keyword names are understood by ``reference.rnn_forward``.
* ``rk_forward`` / ``rk_backward``: call an rnnkit layer or cell with the state
  given as a list (``[h]`` or ``[h, c]``), hiding the LSTM tuple convention.
* ``copy_weights``: give one layer another's parameters.
* ``torch_grads``: vector-Jacobian products through torch autograd for
  arbitrary upstream gradients (the ``(out * dout).sum().backward()`` trick).

Helpers are plain functions; test modules import them with
``from conftest import ...`` (pytest puts this directory on ``sys.path``).
"""

import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest


# --------------------------------------------------------------------------
# randomness and comparisons
# --------------------------------------------------------------------------

@pytest.fixture
def rng(request):
    """Generator seeded by the test id: reproducible, but distinct per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


TOLERANCES = {
    np.dtype(np.float32): (1e-5, 1e-5),
    np.dtype(np.float64): (1e-10, 1e-10),
}


def tol(dtype):
    """(rtol, atol) for comparing results computed in ``dtype``."""
    return TOLERANCES[np.dtype(dtype)]


def assert_close(actual, expected, rtol, atol, name="", scale_atol=True):
    """Element-wise |actual - expected| <= atol' + rtol * |expected|.

    With ``scale_atol`` the absolute tolerance is multiplied by
    max(1, max|expected|): a float32 gradient that is a sum of terms of size
    ~10 cannot be more accurate than ~10 * 1e-6 in absolute terms.
    On failure, the worst absolute and relative differences are reported.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{name}: shape {actual.shape} != expected {expected.shape}")
    assert np.all(np.isfinite(actual)), f"{name}: non-finite values in result"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    if e.size == 0:
        return
    scale = max(1.0, float(np.max(np.abs(e)))) if scale_atol else 1.0
    atol_eff = atol * scale
    diff = np.abs(a - e)
    bad = diff > atol_eff + rtol * np.abs(e)
    if bad.any():
        iw = np.unravel_index(np.argmax(diff), diff.shape)
        rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
        ir = np.unravel_index(np.argmax(np.where(bad, rel, 0.0)), diff.shape)
        pytest.fail(
            f"{name}: {int(bad.sum())}/{bad.size} elements out of tolerance "
            f"(rtol={rtol:g}, atol={atol_eff:g}).\n"
            f"  worst abs diff {diff[iw]:.3e} at {tuple(int(i) for i in iw)}: "
            f"actual {a[iw]!r}, expected {e[iw]!r}\n"
            f"  worst rel diff {rel[ir]:.3e} at {tuple(int(i) for i in ir)}: "
            f"actual {a[ir]!r}, expected {e[ir]!r}",
            pytrace=False)


# --------------------------------------------------------------------------
# cell flavours
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One cell flavour: rnnkit class names + keyword arguments selecting it."""
    name: str
    kind: str                 # "lstm" | "gru" | "rnn" (reference.py's name)
    layer: str                # rnnkit layer class, e.g. "LSTM"
    cell: str                 # rnnkit cell class, e.g. "LSTMCell"
    kwargs: dict = field(default_factory=dict)

    @property
    def n_states(self):
        return 2 if self.kind == "lstm" else 1

    @property
    def n_gates(self):
        return {"lstm": 4, "gru": 3, "rnn": 1}[self.kind]

    @property
    def torch_equivalent(self):
        """True if torch.nn has this exact flavour."""
        return not (self.kwargs.get("peephole") or
                    self.kwargs.get("linear_before_reset") is False)

    def make_layer(self, rk, input_size, hidden_size, num_layers=1, **kw):
        return getattr(rk, self.layer)(input_size, hidden_size, num_layers,
                                       **self.kwargs, **kw)

    def make_cell(self, rk, input_size, hidden_size, **kw):
        return getattr(rk, self.cell)(input_size, hidden_size, **self.kwargs, **kw)

    def __str__(self):
        return self.name


LSTM = Kind("lstm", "lstm", "LSTM", "LSTMCell")
LSTM_PEEPHOLE = Kind("lstm_peephole", "lstm", "LSTM", "LSTMCell", {"peephole": True})
GRU = Kind("gru", "gru", "GRU", "GRUCell")
GRU_NO_LBR = Kind("gru_lbr0", "gru", "GRU", "GRUCell", {"linear_before_reset": False})
RNN_TANH = Kind("rnn_tanh", "rnn", "RNN", "RNNCell", {"nonlinearity": "tanh"})
RNN_RELU = Kind("rnn_relu", "rnn", "RNN", "RNNCell", {"nonlinearity": "relu"})

TORCH_KINDS = [LSTM, GRU, RNN_TANH, RNN_RELU]
ALL_KINDS = [LSTM, LSTM_PEEPHOLE, GRU, GRU_NO_LBR, RNN_TANH, RNN_RELU]


# --------------------------------------------------------------------------
# uniform calling convention for rnnkit layers / cells
# --------------------------------------------------------------------------

def pack_state(kind, arrays):
    """[h] -> h ; [h, c] -> (h, c) ; None -> None (rnnkit's convention)."""
    if arrays is None:
        return None
    return (arrays[0], arrays[1]) if kind.n_states == 2 else arrays[0]


def unpack_state(kind, state):
    """Inverse of pack_state (also checks the LSTM result is a 2-tuple)."""
    if kind.n_states == 2:
        assert isinstance(state, tuple) and len(state) == 2, type(state)
        return [state[0], state[1]]
    return [state]


def rk_forward(kind, layer, x, state=None, **kw):
    """Run an rnnkit layer; returns (y, [h_n] or [h_n, c_n])."""
    if state is None:
        y, st = layer(x, **kw)
    else:
        y, st = layer(x, pack_state(kind, state), **kw)
    return y, unpack_state(kind, st)


def rk_backward(kind, layer, dy, dstate=None):
    """Backward of an rnnkit layer; returns (dx, [dh0] or [dh0, dc0])."""
    if dstate is None:
        dx, dst = layer.backward(dy)
    else:
        dx, dst = layer.backward(dy, pack_state(kind, dstate))
    return dx, unpack_state(kind, dst)


def cell_forward(kind, cell, x, state=None, **kw):
    """One cell step; returns [h] or [h, c]."""
    out = cell(x, **kw) if state is None else cell(x, pack_state(kind, state), **kw)
    return unpack_state(kind, out)


def cell_backward(kind, cell, dstate):
    """One LIFO cell backward step; returns (dx, [dh] or [dh, dc])."""
    dx, dst = cell.backward(pack_state(kind, dstate))
    return dx, unpack_state(kind, dst)


def copy_weights(src, dst):
    """Load src's parameters into dst (same architecture)."""
    dst.load_state_dict({k: np.array(v) for k, v in src.parameters().items()})


def param_names(num_layers, bidirectional, bias=True, peephole=False):
    """torch.nn parameter names in torch's order (plus rnnkit's peephole)."""
    names = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            bases = ["weight_ih", "weight_hh"]
            if bias:
                bases += ["bias_ih", "bias_hh"]
            names += [f"{b}_l{layer}{suffix}" for b in bases]
            if peephole:
                names.append(f"weight_peephole_l{layer}{suffix}")
    return names


# --------------------------------------------------------------------------
# torch helpers (torch imported lazily: only torch-based test files need it)
# --------------------------------------------------------------------------

def torch_grads(outputs, upstreams, inputs):
    """Gradients of L = sum_k sum(outputs[k] * upstreams[k]) w.r.t. ``inputs``.

    This is the ``(out * dout).sum().backward()`` trick: dL/d(outputs[k]) is
    exactly ``upstreams[k]``, so the result is the vector-Jacobian product
    with arbitrary upstream gradients.  Unused inputs get zero gradients.
    Returns a list of float64 NumPy arrays.
    """
    import torch

    loss = 0
    for out, up in zip(outputs, upstreams):
        loss = loss + (out * torch.as_tensor(np.asarray(up), dtype=out.dtype)).sum()
    grads = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    return [np.zeros(tuple(t.shape)) if g is None else g.detach().double().numpy().copy()
            for t, g in zip(inputs, grads)]


def torch_float32_exact(module):
    """Round a float64 torch module's parameters to float32-representable values.

    Used for float32 tests: torch runs in float64 on the very values rnnkit
    sees in float32, so the comparison measures only rnnkit's rounding.
    """
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.float().double())
    return module


def fd_check(rng, f, arrays, analytic, label, max_entries=20, eps=1e-6, rtol=1e-6, atol=1e-7):
    """Central differences of the scalar f(arrays) w.r.t. each arrays[name] (perturbed in place one entry at a
    time, then restored), at every entry or a random subset of max_entries, compared with analytic[name]."""
    for name, arr in arrays.items():
        n = arr.size
        idx = np.arange(n) if n <= max_entries else rng.choice(n, max_entries, replace=False)
        flat = arr.reshape(-1)  # a view: perturbations reach f
        assert np.shares_memory(flat, arr)
        num = np.empty(len(idx))
        for j, k in enumerate(idx):
            old = flat[k]
            flat[k] = old + eps
            lp = f(arrays)
            flat[k] = old - eps
            lm = f(arrays)
            flat[k] = old
            num[j] = (lp - lm) / (2 * eps)
        ana = np.asarray(analytic[name], dtype=np.float64).reshape(-1)[idx]
        assert_close(ana, num, rtol, atol, f"{label}: d/d {name}")
