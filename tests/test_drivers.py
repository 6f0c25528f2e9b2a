"""Every registered cell x every driver x float32/float64: the drivers agree, and backward is a gradient.

Drivers: the plain single-threaded reference (cpp/src/reference/, the oracle) and the CPU team driver
(cpp/src/cpu/driver.hpp) of every compiled core this installation carries (`_core`, and in a distribution
build `_core_avx2` / `_core_avx512` where this CPU runs them: the ISA loop of CI is this test). A case runs
forward and BPTT through a 2-layer bidirectional stack with unsorted variable lengths, initial states, final-state
gradients and recurrent dropout, at sizes where the CPU driver packs weights and runs a team of threads, and
compares every output by normalised error (ggml's mse(a, b) / mse(a, 0)). Backward is also checked against
float64 central finite differences on both drivers. The cells and their options come from `_core.cell_kinds()`.
"""
import importlib
import itertools

import numpy as np
import pytest

from rnnkit import _backend

BASE = _backend.core


def available_cores():
    """(name, module) of every compiled core importable here whose instructions this CPU has."""
    cores = [("baseline", importlib.import_module("rnnkit._core"))]
    flags = _backend._cpu_flags()
    for isa in ("avx2", "avx512"):
        if not _backend._NEEDS[isa] <= flags:
            continue
        try:
            cores.append((isa, importlib.import_module(f"rnnkit._core_{isa}")))
        except ImportError:
            pass
    return cores


CORES = available_cores()


# The options that are the core's own constructor switches (every combination runs); the others go in the
# core's `options` dict and run the rows' general cells, which only the CPU driver has (GENERAL below).
SWITCHES = ("peephole", "linear_before_reset")
# One case per general cell: every option set at once where they combine, so each code path of the general cells
# runs through the team (threads owning units, packed weights, lengths, dropout) against one thread.
GENERAL = [
    ("lstm-general", "lstm", {"peephole": True, "options": dict(
        activation="softsign", recurrent_activation=("hard_sigmoid", 0.3, 0.5), cell_clip=2.5, zoneout=0.25,
        zoneout_cell=0.3, coupled_input_forget=True, output_activation=False)}),
    ("lstm-nig-nog-niaf", "lstm", {"options": dict(input_gate=False, output_gate=False, input_activation=False,
                                                   activation="elu")}),
    ("lstm-proj", "lstm", {"peephole": True, "options": dict(proj_size=3, activation="softsign")}),
    ("lstm-layer-norm", "lstm", {"options": dict(layer_norm=True, activation="softsign")}),
    ("gru-layer-norm", "gru", {"options": dict(layer_norm=True, recurrent_activation="hard_sigmoid")}),
    ("lstm-fgr", "lstm", {"peephole": True, "options": dict(full_gate_recurrence=True, activation="softsign")}),
    ("lstm-nfg", "lstm", {"peephole": True, "options": dict(forget_gate=False, recurrent_activation="softplus")}),
    ("gru-general", "gru", {"options": dict(activation=("scaled_tanh", 1.5, 0.7), recurrent_activation="sigmoid",
                                            zoneout=0.2)}),
    ("gru-cho-general", "gru", {"linear_before_reset": False, "options": dict(activation="softsign", zoneout=0.4)}),
    ("rnn-leaky", "rnn", {"options": dict(activation=("leaky_relu", 0.1))}),
    ("indrnn", "indrnn", {"options": dict(activation="relu", recurrent_clip=0.6)}),
    ("indrnn-tanh", "indrnn", {"options": dict(activation="tanh")}),
]


def variants():
    """(id, kind, options) for every registered cell and every value of its constructor switches, and GENERAL."""
    out = []
    for cell in BASE.cell_kinds():
        names = [name for name in cell["options"] if name in SWITCHES]
        for values in itertools.product([False, True], repeat=len(names)):
            options = dict(zip(names, values))
            label = cell["name"] + "".join(f"-{k}={int(v)}" for k, v in options.items())
            out.append((label, cell["name"], options))
    return out + GENERAL


VARIANTS = variants()


def nmse(actual, expected):
    """mse(actual, expected) / mse(expected, 0), 0 for two zero arrays."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    denominator = np.mean(e * e)
    return float(np.mean((a - e) ** 2) / denominator) if denominator > 0 else float(np.mean(a * a))


# normalised squared errors: float32 ~ (1e-6)^2 per element at most, float64 near its epsilon squared
NMSE_LIMIT = {np.float32: 1e-10, np.float64: 1e-24}


def state_widths(layer):
    """Features of each state (the core's state_size(k)): h has proj_size with a projection, the mLSTM's C has
    heads * dh * dh, ..."""
    return list(layer.state_sizes)


def random_states(rng, kind, shape_of, widths, dtype):
    """Initial states; an sLSTM's normaliser n is a sum of positive input gates, so it gets positive values."""
    states = [rng.standard_normal(shape_of(w)).astype(dtype) for w in widths]
    if kind == "slstm":
        states[2] = np.abs(states[2]) + dtype(0.5)
    return states


def recurrent(kind):
    """Whether the cell has recurrent weights (recurrent dropout applies)."""
    return next(c for c in BASE.cell_kinds() if c["name"] == kind)["recurrence"] != "none"


def make(core, kind, options, dtype, backend, I, H, **extra):
    cls = core.Recurrent32 if dtype == np.float32 else core.Recurrent64
    return cls(kind=kind, input_size=I, hidden_size=H, seed=7, backend=backend, **options, **extra)


def run(layer, x, states, lengths, dy, dstates, training=True):
    y, finals = layer.forward(x, states, lengths, training)
    if not training:
        return [y, *finals], {}
    dx, dinitials = layer.backward(dy, dstates)
    slab = layer.param_slab()
    grads = {name: np.array(layer.grad_slab()[off:off + size]) for name, _, off, size in layer.parameter_info()}
    assert slab.size == sum(size for *_, size in layer.parameter_info())
    return [y, *finals, dx, *dinitials], grads


def case(rng, core, kind, options, dtype, T, B, I, H, layers, bidirectional, recurrent_dropout, training=True):
    """{"reference": results, "cpu": results}; a cell without a reference driver is checked against the CPU
    driver on one thread instead (the team against the single-thread path)."""
    D = 2 if bidirectional else 1
    cell = next(c for c in core.cell_kinds() if c["name"] == kind)
    probe = make(core, kind, options, dtype, "cpu", I, H, num_layers=layers, bidirectional=bidirectional)
    num_states = probe.num_states  # (FGR: a third state)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = rng.integers(0, T + 1, size=B).astype(np.int32)
    lengths[0] = T  # one full-length sequence
    lengths[-1] = 0  # and an empty one: zeros out, the initial state kept
    widths = state_widths(probe)
    states = random_states(rng, kind, lambda w: (layers * D, B, w), widths, dtype)
    dy = rng.standard_normal((T, B, D * widths[0])).astype(dtype)
    recurrent_dropout = recurrent_dropout if recurrent(kind) else 0.0
    dstates = [rng.standard_normal((layers * D, B, w)).astype(dtype) for w in widths]
    results = {}
    threads = core.get_num_threads()
    for label in ("reference", "cpu"):
        backend = label if label in cell["backends"] and "options" not in options else "cpu"
        layer = make(core, kind, options, dtype, backend, I, H, num_layers=layers, bidirectional=bidirectional,
                     recurrent_dropout=recurrent_dropout)
        if backend != label:
            core.set_num_threads(1)
        try:
            results[label] = run(layer, x, states, lengths, dy, dstates, training)
        finally:
            core.set_num_threads(threads)
    return results


# Inference over T=70 steps and 3 layers: float32 rounding compounds through 210 dependent steps (layer norm
# divides by a per-step deviation and amplifies it), so a distribution core built without -march=native (another
# FMA contraction, another GEMM blocking) lands near 1e-10; ~1e-5 relative per element is still float32 agreement.
LONG_NMSE_LIMIT = {np.float32: 1e-9, np.float64: 1e-22}


def assert_agree(results, dtype, what, limits=NMSE_LIMIT):
    (ref_out, ref_grads), (cpu_out, cpu_grads) = results["reference"], results["cpu"]
    limit = limits[dtype]
    for i, (a, e) in enumerate(zip(cpu_out, ref_out)):
        err = nmse(a, e)
        assert err < limit, f"{what}: output {i} differs from the reference: nmse {err:.3e} (limit {limit:g})"
    for name in ref_grads:
        err = nmse(cpu_grads[name], ref_grads[name])
        assert err < limit, f"{what}: gradient {name} differs from the reference: nmse {err:.3e}"


@pytest.mark.parametrize("isa,core", CORES, ids=[name for name, _ in CORES])
@pytest.mark.parametrize("label,kind,options", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cpu_driver_matches_reference_training(isa, core, label, kind, options, dtype, rng):
    # B*H*G >= 2^16 for every cell: the CPU driver runs a team of threads over packed operands
    results = case(rng, core, kind, options, dtype, T=9, B=16, I=24, H=64, layers=2, bidirectional=True,
                   recurrent_dropout=0.3)
    assert_agree(results, dtype, f"{isa} {label}")


@pytest.mark.parametrize("isa,core", CORES, ids=[name for name, _ in CORES])
@pytest.mark.parametrize("label,kind,options", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_cpu_driver_matches_reference_small_and_inference(isa, core, label, kind, options, rng):
    # small: one thread, operands read in place; inference over T > 32 steps: chunked, layers as a wavefront
    for dtype in (np.float32, np.float64):
        results = case(rng, core, kind, options, dtype, T=5, B=3, I=4, H=7, layers=1, bidirectional=False,
                       recurrent_dropout=0.0)
        assert_agree(results, dtype, f"{isa} {label} small")
        results = case(rng, core, kind, options, dtype, T=70, B=4, I=6, H=40, layers=3, bidirectional=False,
                       recurrent_dropout=0.0, training=False)
        assert_agree(results, dtype, f"{isa} {label} inference", LONG_NMSE_LIMIT)


@pytest.mark.skipif(len(CORES) < 2, reason="a single compiled core (source build for this CPU)")
@pytest.mark.parametrize("label,kind,options", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_core_matches_the_baseline_reference(label, kind, options, rng):
    base_ref = None
    for isa, core in CORES:
        results = case(np.random.default_rng(5), core, kind, options, np.float32, T=7, B=16, I=24, H=64, layers=1,
                       bidirectional=True, recurrent_dropout=0.0)
        if base_ref is None:
            base_ref = results["reference"]
        assert_agree({"reference": base_ref, "cpu": results["cpu"]}, np.float32, f"{isa} {label} vs baseline")


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("label,kind,options", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_backward_matches_finite_differences(backend, label, kind, options, rng):
    """loss = <y, wy> + Σ_k <state_n[k], ws[k]>; its gradient from backward against central differences."""
    if backend not in next(c["backends"] for c in BASE.cell_kinds() if c["name"] == kind) or (
            backend == "reference" and "options" in options):
        pytest.skip(f"{kind} {options} has no {backend} driver")
    T, B, I, H, L = 4, 4, 3, 5, 2
    layer = make(BASE, kind, options, np.float64, backend, I, H, num_layers=L, bidirectional=True)
    num_states = layer.num_states
    x = rng.standard_normal((T, B, I))
    lengths = np.array([T, 2, 0, 3], np.int32)
    # zoneout draws its training masks from the layer's counter: every forward here replays the same masks
    zoneout = any(k.startswith("zoneout") for k in options.get("options", {}))
    counter = layer.rng_counter
    widths = state_widths(layer)
    states = random_states(rng, kind, lambda w: (2 * L, B, w), widths, np.float64)
    wy = rng.standard_normal((T, B, 2 * widths[0]))
    ws = [rng.standard_normal((2 * L, B, w)) for w in widths]
    if kind == "rnn_relu":  # keep pre-activations away from the kink
        x *= 0.3

    def loss():
        layer.rng_counter = counter
        y, finals = layer.forward(x, states, lengths, zoneout)
        layer.clear_tape()
        return float(np.sum(y * wy) + sum(np.sum(f * w) for f, w in zip(finals, ws)))

    layer.forward(x, states, lengths, True)
    dx, dinitials = layer.backward(wy, ws)
    grads = np.array(layer.grad_slab())
    params = layer.param_slab()
    eps = 1e-6

    def numeric(array, index):
        old = array[index]
        array[index] = old + eps
        plus = loss()
        array[index] = old - eps
        minus = loss()
        array[index] = old
        return (plus - minus) / (2 * eps)

    picks = rng.choice(params.size, size=min(40, params.size), replace=False)
    for p in picks:
        assert abs(numeric(params, p) - grads[p]) <= 1e-6 * max(1.0, abs(grads[p])), f"parameter {p}"
    for index in itertools.islice(np.ndindex(x.shape), 0, None, 5):
        assert abs(numeric(x, index) - dx[index]) <= 1e-6 * max(1.0, abs(dx[index])), f"x{index}"
    for k in range(num_states):
        for index in itertools.islice(np.ndindex(states[k].shape), 0, None, 7):
            assert abs(numeric(states[k], index) - dinitials[k][index]) <= 1e-6 * max(1.0, abs(dinitials[k][index]))


def test_every_registered_cell_is_covered():
    names = {c["name"] for c in BASE.cell_kinds()}
    assert names >= {"lstm", "gru", "rnn_tanh", "rnn_relu"}
    assert {v[1] for v in VARIANTS} == names


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="backend"):
        BASE.Recurrent32(kind="lstm", input_size=2, hidden_size=3, backend="tpu")
    with pytest.raises(ValueError, match="cuda"):
        BASE.Recurrent32(kind="lstm", input_size=2, hidden_size=3, backend="cuda")
