"""Bad inputs raise the documented exception, with a message naming the culprit.

Every check asserts the exception type and (with a word-bounded regex) that
the message names the offending argument -- x, h0, c0, state, lengths, dy,
a state_dict key, hidden_size, dropout, nonlinearity, dtype -- and, where the
contract says so, the expected and actual shapes.  Also: ``backward`` without
a recorded training forward raises RuntimeError, and a set of huge or odd
inputs, run in a subprocess, never crashes the interpreter.
"""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnnkit as rk
from conftest import GRU, LSTM, RNN_TANH, pack_state

T, B, I, H, L = 5, 2, 3, 4, 2
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


def make(kind, dtype="float32", **kw):
    return kind.make_layer(rk, I, H, L, dtype=dtype, **kw)


def x_ok(dtype=np.float32):
    return np.zeros((T, B, I), dtype)


def state_ok(kind, dtype=np.float32, layers=L):
    return [np.zeros((layers, B, H), dtype) for _ in range(kind.n_states)]


def name_re(name):
    """Regex matching ``name`` as a whole word (so "x" does not match "max")."""
    return rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"


# --------------------------------------------------------------------------
# x
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(T, I), (T, B, I, 1), (I,), ()], ids=str)
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_x_wrong_ndim(kind, shape):
    with pytest.raises(ValueError, match=name_re("x")):
        make(kind)(np.zeros(shape, np.float32))


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_x_wrong_feature_size(kind, batch_first):
    bad = 7  # input_size is 3
    shape = (B, T, bad) if batch_first else (T, B, bad)
    with pytest.raises(ValueError, match=name_re("x")) as exc:
        make(kind, batch_first=batch_first)(np.zeros(shape, np.float32))
    msg = str(exc.value)
    assert "7" in msg and "3" in msg, f"message should give expected and actual size: {msg!r}"


@pytest.mark.parametrize("layer_dtype,x_dtype", [
    ("float32", np.float64), ("float64", np.float32), ("float32", np.int64),
    ("float64", np.int32), ("float32", np.float16), ("float32", np.complex64)],
    ids=lambda v: np.dtype(v).name)
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_x_wrong_dtype(kind, layer_dtype, x_dtype):
    with pytest.raises(TypeError, match=name_re("x")):
        make(kind, dtype=layer_dtype)(x_ok(x_dtype))


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_cell_x_errors(kind):
    cell = kind.make_cell(rk, I, H, dtype="float32")
    with pytest.raises(ValueError, match=name_re("x")):
        cell(np.zeros((B, I + 2), np.float32))
    with pytest.raises(ValueError, match=name_re("x")):
        cell(np.zeros((T, B, I), np.float32))
    with pytest.raises(TypeError, match=name_re("x")):
        cell(np.zeros((B, I), np.float64))


# --------------------------------------------------------------------------
# states
# --------------------------------------------------------------------------

BAD_STATE_SHAPES = {
    "layers": (L + 1, B, H),
    "batch": (L, B + 1, H),
    "hidden": (L, B, H + 1),
    "ndim": (B, H),
}


@pytest.mark.parametrize("bad", list(BAD_STATE_SHAPES), ids=str)
@pytest.mark.parametrize("kind,which", [(LSTM, 0), (LSTM, 1), (GRU, 0), (RNN_TANH, 0)],
                         ids=["lstm-h0", "lstm-c0", "gru-h0", "rnn-h0"])
def test_state_wrong_shape(kind, which, bad):
    state = state_ok(kind)
    state[which] = np.zeros(BAD_STATE_SHAPES[bad], np.float32)
    with pytest.raises(ValueError, match=name_re(["h0", "c0"][which])):
        make(kind)(x_ok(), pack_state(kind, state))


def test_bidirectional_state_needs_both_directions():
    layer = make(GRU, bidirectional=True)
    with pytest.raises(ValueError, match=name_re("h0")):
        layer(x_ok(), np.zeros((L, B, H), np.float32))  # needs 2 * L


@pytest.mark.parametrize("kind,which", [(LSTM, 0), (LSTM, 1), (GRU, 0), (RNN_TANH, 0)],
                         ids=["lstm-h", "lstm-c", "gru-h", "rnn-h"])
def test_cell_state_wrong_shape(kind, which):
    cell = kind.make_cell(rk, I, H, dtype="float32")
    state = [np.zeros((B, H), np.float32) for _ in range(kind.n_states)]
    state[which] = np.zeros((B, H + 1), np.float32)
    # The contract does not fix the cell's state names: accept the usual ones.
    names = [r"h0?|hx|state", r"c0?|cx|state"][which]
    with pytest.raises(ValueError, match=rf"(?<![A-Za-z0-9_])({names})(?![A-Za-z0-9])"):
        cell(np.zeros((B, I), np.float32), pack_state(kind, state))


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_cell_upstream_gradient_wrong_shape(kind):
    cell = kind.make_cell(rk, I, H, dtype="float32")
    cell(np.zeros((B, I), np.float32))
    bad = [np.zeros((B + 1, H), np.float32)] * kind.n_states
    with pytest.raises(ValueError, match=r"(?<![A-Za-z])(dh|dc|dstate|state)"):
        cell.backward(pack_state(kind, bad))


@pytest.mark.parametrize("state", [
    "array", "1-tuple", "3-tuple"])
def test_lstm_state_must_be_pair(state):
    h0, c0 = state_ok(LSTM)
    bad = {"array": h0, "1-tuple": (h0,), "3-tuple": (h0, c0, c0)}[state]
    with pytest.raises((TypeError, ValueError), match=name_re("state")):
        make(LSTM)(x_ok(), bad)


# --------------------------------------------------------------------------
# lengths
# --------------------------------------------------------------------------

BAD_LENGTHS = {
    "too_few": [T],
    "too_many": [T, 1, 2],
    "negative": [T, -1],
    "above_T": [T, T + 1],
    "nan": np.array([T, np.nan]),
    "inf": np.array([T, np.inf]),
    "non_integral": np.array([T, 1.5]),
}


@pytest.mark.parametrize("bad", list(BAD_LENGTHS), ids=str)
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_bad_lengths(kind, bad):
    with pytest.raises(ValueError, match=name_re("lengths")):
        make(kind)(x_ok(), lengths=BAD_LENGTHS[bad])


# --------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------

def dy_ok(D=1, dtype=np.float32):
    return np.zeros((T, B, D * H), dtype)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_backward_without_forward(kind):
    with pytest.raises(RuntimeError, match="backward"):
        make(kind).backward(dy_ok())


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_backward_after_inference_forward(kind):
    layer = make(kind)
    layer(x_ok(), training=False)
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(dy_ok())


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_backward_twice(kind):
    layer = make(kind)
    layer(x_ok())
    layer.backward(dy_ok())
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(dy_ok())


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_cell_backward_without_recorded_step(kind):
    cell = kind.make_cell(rk, I, H, dtype="float32")
    dstate = pack_state(kind, [np.zeros((B, H), np.float32)] * kind.n_states)
    with pytest.raises(RuntimeError, match="backward"):
        cell.backward(dstate)
    cell(np.zeros((B, I), np.float32), training=False)
    with pytest.raises(RuntimeError, match="backward"):
        cell.backward(dstate)
    cell(np.zeros((B, I), np.float32))
    cell.backward(dstate)  # one recorded step: one backward
    with pytest.raises(RuntimeError, match="backward"):
        cell.backward(dstate)


@pytest.mark.parametrize("shape", [(T, B, H + 1), (T + 1, B, H), (T, B + 1, H), (T, B * H)],
                         ids=str)
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dy_wrong_shape(kind, shape):
    layer = make(kind)
    layer(x_ok())
    with pytest.raises(ValueError, match=name_re("dy")):
        layer.backward(np.zeros(shape, np.float32))


def test_dy_of_unidirectional_size_for_bidirectional_layer():
    layer = make(LSTM, bidirectional=True)
    layer(x_ok())
    with pytest.raises(ValueError, match=name_re("dy")):
        layer.backward(dy_ok(D=1))


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_upstream_state_gradient_wrong_shape(kind):
    layer = make(kind)
    layer(x_ok())
    bad = [np.zeros((L, B, H + 1), np.float32)] * kind.n_states
    # The contract does not fix the argument's name: accept the usual ones.
    with pytest.raises(ValueError, match=r"(?<![A-Za-z])(dh_?n?|dc_?n?|dh0|dstate|state)"):
        layer.backward(dy_ok(), pack_state(kind, bad))


# --------------------------------------------------------------------------
# load_state_dict
# --------------------------------------------------------------------------

def full_state_dict(module):
    return {k: np.array(v) for k, v in module.parameters().items()}


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_load_state_dict_missing_key(kind):
    layer = make(kind)
    sd = full_state_dict(layer)
    del sd["bias_hh_l1"]
    with pytest.raises(ValueError, match=name_re("bias_hh_l1")):
        layer.load_state_dict(sd)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_load_state_dict_wrong_shape(kind):
    layer = make(kind)
    sd = full_state_dict(layer)
    G = kind.n_gates * H
    sd["weight_hh_l0"] = np.zeros((G, H + 1))
    with pytest.raises(ValueError, match=name_re("weight_hh_l0")) as exc:
        layer.load_state_dict(sd)
    msg = str(exc.value)
    assert re.search(rf"{G}\D{{1,4}}{H}(?!\d)", msg), f"expected shape missing: {msg!r}"
    assert re.search(rf"{G}\D{{1,4}}{H + 1}(?!\d)", msg), f"given shape missing: {msg!r}"


@pytest.mark.parametrize("extra", ["weight_ih_l2", "weight_ih_l0_reverse", "weight_peephole_l0",
                                   "running_mean"])
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_load_state_dict_unexpected_key(kind, extra):
    layer = make(kind)  # 2 layers, unidirectional, no peephole
    sd = full_state_dict(layer)
    sd[extra] = np.zeros((kind.n_gates * H, I))
    with pytest.raises(ValueError, match=name_re(extra)):
        layer.load_state_dict(sd)


def test_load_state_dict_bias_into_biasless_layer():
    layer = make(GRU, bias=False)
    sd = full_state_dict(make(GRU))
    with pytest.raises(ValueError, match=r"bias_(ih|hh)_l[01]"):
        layer.load_state_dict(sd)


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_cell_load_state_dict_errors(kind):
    cell = kind.make_cell(rk, I, H)
    sd = full_state_dict(cell)
    missing = dict(sd)
    del missing["weight_hh"]
    with pytest.raises(ValueError, match=name_re("weight_hh")):
        cell.load_state_dict(missing)
    shaped = dict(sd, bias_ih=np.zeros(kind.n_gates * H + 1))
    with pytest.raises(ValueError, match=name_re("bias_ih")):
        cell.load_state_dict(shaped)
    with pytest.raises(ValueError, match=name_re("weight_ih_l0")):
        cell.load_state_dict(dict(sd, weight_ih_l0=sd["weight_ih"]))


# --------------------------------------------------------------------------
# constructor arguments
# --------------------------------------------------------------------------

ALL_CLASSES = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"]


@pytest.mark.parametrize("hidden_size", [0, -1])
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_bad_hidden_size(cls, hidden_size):
    with pytest.raises(ValueError, match=name_re("hidden_size")):
        getattr(rk, cls)(I, hidden_size)


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5, float("nan")])
@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_bad_dropout(cls, dropout):
    with pytest.raises(ValueError, match=name_re("dropout")):
        getattr(rk, cls)(I, H, 2, dropout=dropout)


@pytest.mark.parametrize("cls", ["RNN", "RNNCell"])
def test_bad_nonlinearity(cls):
    with pytest.raises(ValueError, match=name_re("nonlinearity")):
        getattr(rk, cls)(I, H, nonlinearity="gelu")


@pytest.mark.parametrize("dtype", ["int32", np.int32, "float16", "complex128"], ids=str)
@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_bad_dtype(cls, dtype):
    with pytest.raises((TypeError, ValueError), match=name_re("dtype")):
        getattr(rk, cls)(I, H, dtype=dtype)


# --------------------------------------------------------------------------
# nothing crashes the interpreter
# --------------------------------------------------------------------------

# (name, code, must_raise).  Each snippet runs with rk, np imported; those
# marked must_raise cannot possibly succeed and have to raise an exception.
ODD_CASES = [
    ("empty_T", "rk.LSTM(3, 4)(np.zeros((0, 2, 3), np.float32))", False),
    ("empty_B", "rk.GRU(3, 4)(np.zeros((5, 0, 3), np.float32))", False),
    ("empty_B_backward",
     "m = rk.RNN(3, 4)\nm(np.zeros((5, 0, 3), np.float32))\n"
     "m.backward(np.zeros((5, 0, 4), np.float32))", False),
    ("nan_x", "rk.LSTM(3, 4)(np.full((5, 2, 3), np.nan, np.float32))", False),
    ("huge_hidden", "rk.LSTM(3, 2**45)", True),
    ("overflowing_hidden", "rk.GRU(3, 2**62)", True),
    ("overflowing_input", "rk.RNN(2**62, 4)", True),
    ("overflowing_cell", "rk.LSTMCell(3, 2**62)", True),
    ("huge_broadcast_x",
     "rk.LSTM(3, 4)(np.broadcast_to(np.zeros((1, 1, 3), np.float32), (2**31, 2**31, 3)))",
     True),
    ("huge_lengths", "rk.GRU(3, 4)(np.zeros((5, 2, 3), np.float32), lengths=[2**70, 1])", True),
    ("huge_float_lengths",
     "rk.GRU(3, 4)(np.zeros((5, 2, 3), np.float32), lengths=np.array([1e300, 1.0]))", True),
    ("object_x", "rk.RNN(3, 4)(np.array([[['a', 'b', 'c']]], dtype=object))", True),
    ("ragged_x", "rk.RNN(3, 4)([[[1.0, 2.0, 3.0]], [[1.0]]])", True),
    ("zero_threads_then_forward",
     "try:\n    rk.set_num_threads(0)\nexcept Exception:\n    pass\n"
     "rk.LSTM(3, 4)(np.zeros((5, 2, 3), np.float32))", False),
    ("negative_threads_then_forward",
     "try:\n    rk.set_num_threads(-3)\nexcept Exception:\n    pass\n"
     "rk.LSTM(3, 4)(np.zeros((5, 2, 3), np.float32))", False),
    ("cell_state_wrong_type", "rk.LSTMCell(3, 4)(np.zeros((2, 3), np.float32), 'state')", True),
    ("huge_state_dict_value",
     "m = rk.RNN(3, 4)\nsd = dict(m.parameters())\n"
     "sd['weight_hh_l0'] = np.broadcast_to(np.float32(0), (2**40, 2**40))\n"
     "m.load_state_dict(sd)", True),
]

ODD_SCRIPT = """
import sys
import numpy as np
import rnnkit as rk
cases = {cases!r}
for name, code, must_raise in cases:
    print("START", name, flush=True)
    try:
        exec(code, {{"rk": rk, "np": np}})
    except Exception as e:
        print("RAISED", name, type(e).__name__, flush=True)
    else:
        if must_raise:
            print("DID NOT RAISE", name, flush=True)
            sys.exit(3)
        print("OK", name, flush=True)
print("ALL DONE", flush=True)
"""


def test_odd_inputs_do_not_crash_the_interpreter():
    script = ODD_SCRIPT.format(cases=ODD_CASES)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    last = lines[-1] if lines else "<no output>"
    assert proc.returncode == 0 and last == "ALL DONE", (
        f"subprocess exited with {proc.returncode}; last line {last!r}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}")
