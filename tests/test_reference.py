"""rnnkit forward passes against the plain NumPy reference in reference.py.

The reference is written from the contract's formulas; it is the only oracle
for the two flavours torch does not have:

* the peephole LSTM (Gers & Schmidhuber 2000, peephole weights (3, H) with
  rows i, f, o; the output gate peeks at the *new* cell state c_t), and
* the GRU with ``linear_before_reset=False`` (Cho et al. 2014 / ONNX),

and it is checked here too against the standard flavours.  Comparisons are in
float64 at ~1e-12 (and in float32 at float32 tolerance), for single layers,
bidirectional and stacked layers, batch_first and variable lengths.  All
parameters (including the peephole weights, whose default initialisation
might be zero) are set to random values so that every term matters; a
sanity check asserts that the peephole / reset-gate variant really changes
the result, so the comparison cannot pass vacuously.

``test_reference_matches_torch`` validates the reference itself against
torch.nn for the flavours torch has.
"""

import numpy as np
import pytest

import reference
import rnnkit as rk
from conftest import (ALL_KINDS, GRU_NO_LBR, LSTM_PEEPHOLE, TORCH_KINDS, assert_close,
                      cell_forward, pack_state, rk_forward)

T, B, I, H = 5, 4, 3, 4
F64_TOL = (1e-12, 1e-12)

# (num_layers, bidirectional, batch_first, use lengths)
CONFIGS = [
    (1, False, False, False),
    (1, True, False, False),
    (2, True, False, False),
    (2, False, True, True),
    (2, True, True, True),
    (3, True, False, True),
]


def config_id(c):
    L, bidir, bf, lens = c
    return f"L{L}-{'bi' if bidir else 'uni'}{'-bf' if bf else ''}{'-lengths' if lens else ''}"


def randomize(module, rng, scale=0.7):
    """Load uniform(-scale, scale) values into every parameter of ``module``."""
    new = {name: rng.uniform(-scale, scale, p.shape) for name, p in module.parameters().items()}
    module.load_state_dict(new)
    # The reference uses exactly the values the module holds (after its cast).
    return {name: np.asarray(p, np.float64).copy() for name, p in module.parameters().items()}


def ref_opts(kind):
    return dict(kind.kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_layer_matches_reference(kind, config, dtype, rng):
    L, bidir, bf, use_lengths = config
    D = 2 if bidir else 1
    rtol, atol = F64_TOL if dtype == np.float64 else (1e-5, 1e-5)
    layer = kind.make_layer(rk, I, H, L, bidirectional=bidir, batch_first=bf, dtype=dtype)
    params = randomize(layer, rng)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I)).astype(dtype)
    state = [(0.5 * rng.standard_normal((L * D, B, H))).astype(dtype)
             for _ in range(kind.n_states)]
    lengths = rng.permutation([T, 1, 3, 2]) if use_lengths else None

    y, finals = rk_forward(kind, layer, x, state, lengths=lengths, training=False)
    ry, rfinals = reference.rnn_forward(
        kind.kind, x, pack_state(kind, state), params, num_layers=L, bidirectional=bidir,
        batch_first=bf, lengths=lengths, **ref_opts(kind))
    rfinals = list(rfinals) if kind.n_states == 2 else [rfinals]

    assert y.dtype == dtype
    assert_close(y, ry, rtol, atol, "y")
    for name, a, e in zip(["h_n", "c_n"], finals, rfinals):
        assert_close(a, e, rtol, atol, name)


@pytest.mark.parametrize("kind", [LSTM_PEEPHOLE, GRU_NO_LBR], ids=str)
def test_variant_is_not_the_standard_cell(kind, rng):
    """Guard against a vacuous pass: with random weights the peephole LSTM /
    lbr=False GRU must differ from the standard flavour, and rnnkit's result
    must be the variant's."""
    layer = kind.make_layer(rk, I, H, 1, dtype=np.float64)
    params = randomize(layer, rng)
    x = rng.standard_normal((T, B, I))
    y, _ = rk_forward(kind, layer, x)
    variant, _ = reference.rnn_forward(kind.kind, x, None, params, **ref_opts(kind))
    standard_opts = {k: (not v) for k, v in kind.kwargs.items()}
    standard, _ = reference.rnn_forward(kind.kind, x, None, params, **standard_opts)
    assert np.max(np.abs(variant - standard)) > 1e-3
    assert_close(y, variant, *F64_TOL, "y")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_cell_matches_reference(kind, bias, rng):
    cell = kind.make_cell(rk, I, H, bias=bias, dtype=np.float64)
    params = randomize(cell, rng)
    st = [0.5 * rng.standard_normal((B, H)) for _ in range(kind.n_states)]
    for step in range(3):  # a few steps, feeding the state back
        x = rng.standard_normal((B, I))
        new = cell_forward(kind, cell, x, st, training=False)
        ref = reference.cell_forward(kind.kind, x, pack_state(kind, st), params,
                                     **ref_opts(kind))
        ref = list(ref) if kind.n_states == 2 else [ref]
        for name, a, e in zip(["h", "c"], new, ref):
            assert a.dtype == np.float64
            assert_close(a, e, *F64_TOL, f"{name} at step {step}")
        st = new


@pytest.mark.parametrize("kind", TORCH_KINDS, ids=str)
def test_reference_matches_torch(kind, rng):
    """Validates reference.py itself on the flavours torch.nn implements."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind.kind]
    kw = {"nonlinearity": kind.kwargs["nonlinearity"]} if kind.kind == "rnn" else {}
    m = cls(I, H, 2, bidirectional=True, **kw).double()
    x = rng.standard_normal((T, B, I))
    state = [rng.standard_normal((4, B, H)) for _ in range(kind.n_states)]
    lengths = np.array([2, T, 1, 4])
    with torch.no_grad():
        packed = pack_padded_sequence(torch.tensor(x), torch.tensor(lengths),
                                      enforce_sorted=False)
        out, hn = m(packed, pack_state(kind, [torch.tensor(s) for s in state]))
        ty, _ = pad_packed_sequence(out, total_length=T)
    params = {k: v.numpy() for k, v in m.state_dict().items()}
    ry, rfinals = reference.rnn_forward(kind.kind, x, pack_state(kind, state), params,
                                        num_layers=2, bidirectional=True, lengths=lengths,
                                        **ref_opts(kind))
    assert_close(ry, ty.numpy(), *F64_TOL, "reference y")
    tfinals = hn if kind.n_states == 2 else (hn,)
    rfinals = rfinals if kind.n_states == 2 else (rfinals,)
    for a, e in zip(rfinals, tfinals):
        assert_close(a, e.numpy(), *F64_TOL, "reference final state")
