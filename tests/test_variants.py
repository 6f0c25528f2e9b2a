"""The LSTM family's variants against a NumPy reference written from their formulas (tests/variant_reference.py),
and every gradient against float64 central finite differences, through the Python layers and cells.

Covered: Greff's gate options (NIG, NFG, NOG, NIAF, NOAF, CIFG) with and without peepholes, every activation and
its parameters, cell_clip, GRU activations in both reset conventions, RNN with any nonlinearity, IndRNN with and
without recurrent_clip, zoneout (inference expectation; training masks reproducible from the seed), bidirectional
merge modes including None, and lengths with zeros. Peers (torch, Keras, onnxruntime) are in test_variant_peers.py.
"""
import itertools

import numpy as np
import pytest

import rnnkit as rk
import variant_reference as ref

T, B, I, H = 5, 4, 3, 4
LENGTHS = np.array([T, 0, 3, 1], np.int32)  # unsorted, with an empty sequence

LSTM_VARIANTS = {
    "vanilla": dict(peephole=True),
    "NP": dict(),
    "NIG": dict(peephole=True, input_gate=False),
    "NFG": dict(peephole=True, forget_gate=False),
    "NOG": dict(peephole=True, output_gate=False),
    "NIAF": dict(peephole=True, input_activation=False),
    "NOAF": dict(peephole=True, output_activation=False),
    "CIFG": dict(peephole=True, coupled_input_forget=True),
    "CIFG-NP": dict(coupled_input_forget=True),
    "NIG-NOG-NIAF": dict(input_gate=False, output_gate=False, input_activation=False),
    "clip": dict(peephole=True, cell_clip=0.6),
    "keras-hard-sigmoid": dict(activation="relu", recurrent_activation="hard_sigmoid"),
    "onnx-hard-sigmoid": dict(recurrent_activation=("hard_sigmoid", 0.2, 0.5), activation="softsign"),
    "elu-leaky": dict(activation=("elu", 0.7), recurrent_activation="sigmoid", peephole=True),
    "scaled-tanh": dict(activation=("scaled_tanh", 1.3, 0.8), recurrent_activation="softplus"),
    "leaky-linear": dict(activation=("leaky_relu", 0.2), output_activation=False),
    "zoneout": dict(zoneout=0.3, zoneout_cell=0.15, peephole=True),
    "proj": dict(proj_size=2),
    "layer-norm": dict(layer_norm=True),
    "layer-norm-relu": dict(layer_norm=True, activation="relu", recurrent_activation="hard_sigmoid"),
    "proj-NFG-softsign": dict(proj_size=3, peephole=True, forget_gate=False, activation="softsign", cell_clip=1.5),
}
ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear", "softsign", "softplus", "elu", "hard_sigmoid", ("hard_sigmoid", 0.2, 0.5),
               ("leaky_relu", 0.1), ("scaled_tanh", 1.7, 0.6), ("elu", 0.5), "leaky_relu", "scaled_tanh"]


def params64(layer):
    return {k: np.array(v, np.float64) for k, v in layer.parameters().items()}


def states(rng, layer):
    shape = (layer.num_layers * layer.num_directions, B, H)
    P = getattr(layer, "proj_size", 0) or H
    return rng.standard_normal(shape[:2] + (P,)), rng.standard_normal(shape)


def check_forward(kind, layer, options, rng, **ref_kw):
    x = rng.standard_normal((T, B, I))
    h0, c0 = states(rng, layer)
    two = kind == "lstm"
    out = layer(x, (h0, c0), lengths=LENGTHS, training=False) if two else layer(x, h0, lengths=LENGTHS, training=False)
    y, state = out
    h_n, c_n = state if two else (state, None)
    y_ref, h_ref, c_ref = ref.layer_forward(kind, x, params64(layer), options, num_layers=layer.num_layers,
                                            bidirectional=layer.bidirectional, lengths=LENGTHS, h0=h0, c0=c0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, h_ref, rtol=1e-10, atol=1e-12)
    if two:
        np.testing.assert_allclose(c_n, c_ref, rtol=1e-10, atol=1e-12)
    # the empty sequence: zeros out, the initial state kept
    assert np.all(y[:, 1] == 0)
    np.testing.assert_array_equal(h_n[:, 1], h0[:, 1])


@pytest.mark.parametrize("name", list(LSTM_VARIANTS))
def test_lstm_variant_matches_numpy_reference(name, rng):
    options = LSTM_VARIANTS[name]
    layer = rk.LSTM(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=3, **options)
    randomize_norm_parameters(layer, rng)
    check_forward("lstm", layer, options, rng)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("which", ["activation", "recurrent_activation"])
def test_lstm_every_activation(activation, which, rng):
    options = {which: activation}
    layer = rk.LSTM(I, H, dtype="float64", seed=4, **options)
    check_forward("lstm", layer, options, rng)


@pytest.mark.parametrize("lbr", [True, False])
@pytest.mark.parametrize("activation,recurrent", [("relu", "hard_sigmoid"), (("elu", 0.5), "sigmoid"),
                                                   ("softsign", ("hard_sigmoid", 0.2, 0.5)), ("tanh", "softplus")])
def test_gru_activations_match_numpy_reference(lbr, activation, recurrent, rng):
    options = dict(activation=activation, recurrent_activation=recurrent)
    layer = rk.GRU(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=5, linear_before_reset=lbr,
                   **options)
    check_forward("gru", layer, {**options, "linear_before_reset": lbr}, rng)


@pytest.mark.parametrize("options", [dict(), dict(activation="softsign", recurrent_activation="hard_sigmoid")], ids=str)
def test_layer_norm_gru_matches_numpy_reference(options, rng):
    layer = rk.GRU(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=5, layer_norm=True, **options)
    randomize_norm_parameters(layer, rng)
    check_forward("gru", layer, {**options, "layer_norm": True}, rng)


def randomize_norm_parameters(layer, rng):
    """Gains and biases away from their initial 1 and 0, so that a wrong one shows."""
    for name, p in layer.parameters().items():
        if "_ln_" in name:
            p[...] = rng.uniform(0.5, 1.5, p.shape) if name.startswith("weight") else rng.uniform(-0.5, 0.5, p.shape)


@pytest.mark.parametrize("nonlinearity", ACTIVATIONS, ids=str)
def test_rnn_any_nonlinearity_matches_numpy_reference(nonlinearity, rng):
    layer = rk.RNN(I, H, num_layers=2, nonlinearity=nonlinearity, dtype="float64", seed=6)
    check_forward("rnn", layer, {"nonlinearity": nonlinearity}, rng)


@pytest.mark.parametrize("options", [dict(), dict(recurrent_clip=0.3), dict(nonlinearity="tanh"),
                                     dict(nonlinearity=("leaky_relu", 0.05), recurrent_clip=0.5)], ids=str)
def test_indrnn_matches_numpy_reference(options, rng):
    layer = rk.IndRNN(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=7, **options)
    assert layer.parameters()["weight_hh_l0"].shape == (H,)
    layer.parameters()["weight_hh_l0"][...] = np.linspace(-1.2, 1.2, H)  # some beyond the clip
    check_forward("indrnn", layer, options, rng)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zoneout_inference_is_the_expectation(kind, rng):
    options = dict(zoneout=0.4) if kind == "gru" else dict(zoneout=0.4, zoneout_cell=0.25)
    cls = rk.GRU if kind == "gru" else rk.LSTM
    layer = cls(I, H, num_layers=2, dtype="float64", seed=8, **options)
    check_forward(kind, layer, options, rng)


def test_zoneout_training_masks_come_from_the_seed(rng):
    x = rng.standard_normal((40, 8, I))
    a = rk.LSTM(I, H, zoneout=0.5, zoneout_cell=0.5, seed=11, dtype="float64")
    b = rk.LSTM(I, H, zoneout=0.5, zoneout_cell=0.5, seed=11, dtype="float64")
    ya, _ = a(x)
    yb, _ = b(x)
    np.testing.assert_array_equal(ya, yb)  # same seed, same masks
    counter = a.rng_state
    ya2, _ = a(x)
    assert not np.array_equal(ya, ya2)  # the next forward draws new masks
    a.rng_state = counter
    np.testing.assert_array_equal(a(x)[0], ya2)  # restoring the counter replays them
    # about half of the units keep their previous value at each step (both h and c zoned out)
    same = np.mean(ya[1:] == ya[:-1])
    assert 0.4 < same < 0.6, same
    # inference is deterministic and differs from a training draw
    y_inf, _ = a(x, training=False)
    np.testing.assert_array_equal(y_inf, a(x, training=False)[0])


# --- gradients: float64 central differences through the public layers --------------------------------------

def fd_check(layer, forward, backward, x, upstream, rng, picks=12, eps=1e-6, tol=2e-6):
    """loss = Σ <output_k, upstream_k>; backward's dx and parameter grads against central differences."""
    counter = layer.rng_state

    def loss():
        layer.rng_state = counter  # replay any zoneout masks
        outs = forward(x)
        layer.clear_tape()
        return sum(float(np.sum(o * u)) for o, u in zip(outs, upstream))

    layer.rng_state = counter
    layer.zero_grad()
    forward(x)
    dx = backward(upstream)
    for name, p in layer.parameters().items():
        g = layer.grads[name]
        for index in itertools.islice(rng.permutation(p.size), picks):
            index = np.unravel_index(index, p.shape)
            old = p[index]
            p[index] = old + eps
            plus = loss()
            p[index] = old - eps
            minus = loss()
            p[index] = old
            num = (plus - minus) / (2 * eps)
            assert abs(num - g[index]) <= tol * max(1.0, abs(num)), f"{name}{index}: {num} vs {g[index]}"
    for index in itertools.islice(np.ndindex(x.shape), 0, None, 3):
        old = x[index]
        x[index] = old + eps
        plus = loss()
        x[index] = old - eps
        minus = loss()
        x[index] = old
        num = (plus - minus) / (2 * eps)
        assert abs(num - dx[index]) <= tol * max(1.0, abs(num)), f"x{index}: {num} vs {dx[index]}"


def layer_fd(layer, rng, training=True):
    two = isinstance(layer, rk.LSTM)
    x = rng.standard_normal((T, B, I))
    h0, c0 = states(rng, layer)
    y_parts = 2 if layer.bidirectional and layer.merge_mode is None else 1
    out_cols = layer.output_size
    ups = [rng.standard_normal((T, B, out_cols)) for _ in range(y_parts)] + [rng.standard_normal(h0.shape)]
    if two:
        ups.append(rng.standard_normal(c0.shape))

    def forward(x):
        y, state = layer(x, (h0, c0) if two else h0, lengths=LENGTHS, training=training)
        ys = list(y) if isinstance(y, tuple) else [y]
        return ys + (list(state) if two else [state])

    def backward(upstream):
        dy = tuple(upstream[:2]) if y_parts == 2 else upstream[0]
        rest = upstream[y_parts:]
        if two:
            dx, _ = layer.backward(dy, (rest[0], rest[1]))
        else:
            dx, _ = layer.backward(dy, rest[0])
        return dx

    fd_check(layer, forward, backward, x, ups, rng)


@pytest.mark.parametrize("name", list(LSTM_VARIANTS))
def test_lstm_variant_gradients(name, rng):
    layer = rk.LSTM(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=12, **LSTM_VARIANTS[name])
    randomize_norm_parameters(layer, rng)
    layer_fd(layer, rng)


@pytest.mark.parametrize("cls,options", [
    (rk.GRU, dict(activation="softsign", recurrent_activation=("hard_sigmoid", 0.2, 0.5))),
    (rk.GRU, dict(activation=("elu", 0.7), linear_before_reset=False, zoneout=0.3)),
    (rk.GRU, dict(layer_norm=True)),
    (rk.GRU, dict(layer_norm=True, activation="softsign", recurrent_dropout=0.3)),
    (rk.RNN, dict(nonlinearity="softplus")),
    (rk.RNN, dict(nonlinearity=("scaled_tanh", 1.5, 0.5))),
    (rk.IndRNN, dict(nonlinearity="tanh", recurrent_clip=0.3)),
    (rk.IndRNN, dict(nonlinearity="softsign")),
], ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_single_state_variant_gradients(cls, options, rng):
    layer = cls(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=13, **options)
    layer_fd(layer, rng)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("batch_first", [False, True])
def test_merge_modes_values_and_gradients(mode, batch_first, rng):
    layer = rk.LSTM(I, H, num_layers=2, bidirectional=True, merge_mode=mode, dtype="float64", seed=14,
                    batch_first=batch_first)
    concat = rk.LSTM(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=14, batch_first=batch_first)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    y, _ = layer(x, lengths=LENGTHS, training=False)
    y_cat, _ = concat(x, lengths=LENGTHS, training=False)
    expected = ref.merge(y_cat, H, mode)
    if mode is None:
        assert isinstance(y, tuple) and len(y) == 2
        for a, e in zip(y, expected):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)
    if not batch_first:
        layer_fd(layer, rng)


def test_merge_mode_none_in_a_sequential_is_a_clear_error(rng):
    model = rk.Sequential([rk.LSTM(I, H, bidirectional=True, merge_mode=None), rk.LastStep(), rk.Dense(H, 1)])
    with pytest.raises(ValueError, match="merge_mode"):
        model.predict(rng.standard_normal((T, B, I)).astype(np.float32))


def test_merge_mode_sum_feeds_last_step_with_one_direction(rng):
    model = rk.Sequential([rk.LSTM(I, H, bidirectional=True, merge_mode="sum", seed=1), rk.LastStep(),
                           rk.Dense(H, 2, seed=2)])
    assert model.predict(rng.standard_normal((T, B, I)).astype(np.float32)).shape == (B, 2)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "indrnn"])
def test_empty_sequences_pass_gradients_straight_through(kind, rng):
    cls = {"lstm": rk.LSTM, "gru": rk.GRU, "rnn": rk.RNN, "indrnn": rk.IndRNN}[kind]
    layer = cls(I, H, num_layers=2, dtype="float64", seed=15)
    x = rng.standard_normal((T, B, I))
    lengths = np.zeros(B, np.int32)
    lengths[0] = T
    h0, c0 = states(rng, layer)
    dy = rng.standard_normal((T, B, H))
    dh, dc = states(rng, layer)
    if kind == "lstm":
        y, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
        dx, (dh0, dc0) = layer.backward(dy, (dh, dc))
        np.testing.assert_array_equal(c_n[:, 1:], c0[:, 1:])
        np.testing.assert_array_equal(dc0[:, 1:], dc[:, 1:])
    else:
        y, h_n = layer(x, h0, lengths=lengths)
        dx, dh0 = layer.backward(dy, dh)
    assert np.all(y[:, 1:] == 0) and np.all(dx[:, 1:] == 0)
    np.testing.assert_array_equal(h_n[:, 1:], h0[:, 1:])
    np.testing.assert_array_equal(dh0[:, 1:], dh[:, 1:])


# --- cells ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["NIG", "NFG", "CIFG", "NOAF", "clip", "onnx-hard-sigmoid", "layer-norm-relu"])
def test_lstm_cell_takes_the_variant_keywords(name, rng):
    options = {k: v for k, v in LSTM_VARIANTS[name].items()}
    cell = rk.LSTMCell(I, H, dtype="float64", seed=16, **options)
    randomize_norm_parameters(cell, rng)
    x = rng.standard_normal((B, I))
    h, c = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    h1, c1 = cell(x, (h, c), training=False)
    h_ref, c_ref = ref.lstm_step(x, h, c, params64(cell), options)
    np.testing.assert_allclose(h1, h_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c1, c_ref, rtol=1e-10, atol=1e-12)
    assert rk.LSTMCell.from_config(cell.get_config()).get_config() == cell.get_config()


def test_gru_and_rnn_cells_take_activations(rng):
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    gru = rk.GRUCell(I, H, activation="relu", recurrent_activation="hard_sigmoid", dtype="float64", seed=17)
    np.testing.assert_allclose(gru(x, h, training=False),
                               ref.gru_step(x, h, params64(gru), dict(activation="relu",
                                                                       recurrent_activation="hard_sigmoid")),
                               rtol=1e-10, atol=1e-12)
    rnn = rk.RNNCell(I, H, nonlinearity=("leaky_relu", 0.3), dtype="float64", seed=18)
    np.testing.assert_allclose(rnn(x, h, training=False),
                               ref.rnn_step(x, h, params64(rnn), dict(nonlinearity=("leaky_relu", 0.3))),
                               rtol=1e-10, atol=1e-12)
    assert rk.RNNCell.from_config(rnn.get_config()).nonlinearity == ("leaky_relu", 0.3)


# --- layouts, configs, errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,gates", [("NIG", 3), ("NFG", 3), ("NOG", 3), ("CIFG", 3), ("NIAF", 4), ("NOAF", 4),
                                        ("V", 4), ("NP", 4), ("FGR", 4)])
def test_greff_layouts(name, gates):
    layer = rk.LSTM.greff(name, I, H)
    shapes = {k: v.shape for k, v in layer.parameters().items()}
    assert shapes["weight_ih_l0"] == (gates * H, I) and shapes["weight_hh_l0"] == (gates * H, H)
    assert shapes["bias_ih_l0"] == (gates * H,)
    assert ("weight_peephole_l0" in shapes) == (name != "NP")
    assert ("weight_gates_l0" in shapes) == (name == "FGR")
    assert rk.LSTM.from_config(layer.get_config()).get_config() == layer.get_config()


def test_forget_bias_lands_on_the_forget_rows():
    layer = rk.LSTM(I, H, input_gate=False, forget_bias=1.0)
    b = layer.parameters()["bias_ih_l0"]
    np.testing.assert_array_equal(b[:H], 1.0)  # f is the first block without i
    np.testing.assert_array_equal(b[H:], 0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(activation="swish"), "activation"),
    (dict(recurrent_activation=("hard_sigmoid", 0.2)), "recurrent_activation"),
    (dict(activation=("tanh", 1.0)), "activation"),
    (dict(activation=("scaled_tanh", 0.0, 1.0)), "activation"),
    (dict(activation=("elu", float("nan"))), "activation"),
    (dict(activation=3), "activation"),
    (dict(cell_clip=-1.0), "cell_clip"),
    (dict(zoneout=1.0), "zoneout"),
    (dict(zoneout_cell=-0.1), "zoneout_cell"),
    (dict(coupled_input_forget=True, input_gate=False), "coupled_input_forget"),
    (dict(forget_gate=False, forget_bias=1.0), "forget_bias"),
    (dict(merge_mode="max", bidirectional=True), "merge_mode"),
    (dict(input_gate=1), "input_gate"),
    (dict(peephole=True, backend="reference", activation="relu"), "backend"),
])
def test_bad_variant_options_are_clear_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rk.LSTM(I, H, **kwargs)


def test_bad_indrnn_and_rnn_options():
    with pytest.raises(ValueError, match="recurrent_clip"):
        rk.IndRNN(I, H, recurrent_clip=-0.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        rk.RNN(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="recurrent_init"):
        rk.IndRNN(I, H, recurrent_init="orthogonal")


# --- full gate recurrence (Greff's FGR): a third state, the previous step's i, f, o --------------------------

def fgr_layer(rng, **kw):
    layer = rk.LSTM(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=21, peephole=True,
                    full_gate_recurrence=True, **kw)
    for name, p in layer.parameters().items():
        if name.startswith("weight_gates"):
            assert p.shape == (3 * H, 3 * H)
            p[...] = rng.uniform(-0.5, 0.5, p.shape)  # the initial uniform is small; make the term matter
    return layer


def test_full_gate_recurrence_matches_numpy_reference(rng):
    layer = fgr_layer(rng, activation="softsign")
    x = rng.standard_normal((T, B, I))
    h0, c0 = states(rng, layer)
    a0 = rng.uniform(0, 1, (4, B, 3 * H))
    y, (h_n, c_n, a_n) = layer(x, (h0, c0, a0), lengths=LENGTHS, training=False)
    y_ref, h_ref, (c_ref, a_ref) = ref.layer_forward("lstm", x, params64(layer), dict(
        peephole=True, full_gate_recurrence=True, activation="softsign"), num_layers=2, bidirectional=True,
        lengths=LENGTHS, h0=h0, c0=c0, a0=a0)
    for got, want in ((y, y_ref), (h_n, h_ref), (c_n, c_ref), (a_n, a_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # without the gate state given, it starts at zero; the 2-tuple state is accepted
    y2, state = layer(x, (h0, c0), lengths=LENGTHS, training=False)
    y2_ref, *_ = ref.layer_forward("lstm", x, params64(layer), dict(peephole=True, full_gate_recurrence=True,
                                                                   activation="softsign"),
                                   num_layers=2, bidirectional=True, lengths=LENGTHS, h0=h0, c0=c0)
    np.testing.assert_allclose(y2, y2_ref, rtol=1e-10, atol=1e-12)
    assert len(state) == 3


def test_full_gate_recurrence_gradients(rng):
    layer = fgr_layer(rng)
    x = rng.standard_normal((T, B, I))
    h0, c0 = states(rng, layer)
    a0 = rng.uniform(0, 1, (4, B, 3 * H))
    ups = [rng.standard_normal((T, B, 2 * H)), rng.standard_normal(h0.shape), rng.standard_normal(c0.shape),
           rng.standard_normal(a0.shape)]

    def forward(x):
        y, (h, c, a) = layer(x, (h0, c0, a0), lengths=LENGTHS)
        return [y, h, c, a]

    def backward(upstream):
        dx, (dh0, dc0, da0) = layer.backward(upstream[0], tuple(upstream[1:]))
        backward.initial = (dh0, dc0, da0)
        return dx

    fd_check(layer, forward, backward, x, ups, rng)
    # and the gradient w.r.t. the initial gate state
    eps = 1e-6
    for index in itertools.islice(np.ndindex(a0.shape), 0, None, 11):
        old = a0[index]
        a0[index] = old + eps
        plus = sum(float(np.sum(o * u)) for o, u in zip(forward(x), ups))
        a0[index] = old - eps
        minus = sum(float(np.sum(o * u)) for o, u in zip(forward(x), ups))
        a0[index] = old
        layer.clear_tape()
        num = (plus - minus) / (2 * eps)
        assert abs(num - backward.initial[2][index]) <= 2e-6 * max(1.0, abs(num))


def test_full_gate_recurrence_streams_step_by_step(rng):
    layer = rk.LSTM(I, H, num_layers=2, peephole=True, full_gate_recurrence=True, dtype="float64", seed=22)
    x = rng.standard_normal((T, B, I))
    y_all, final = layer(x, training=False)
    state, ys = None, []
    for t in range(T):
        y, state = layer(x[t:t + 1], state, training=False)
        ys.append(y[0])
    np.testing.assert_allclose(np.stack(ys), y_all, rtol=1e-12, atol=1e-13)
    for a, b in zip(state, final):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
