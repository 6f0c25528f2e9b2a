"""The LSTM family's variants against peers that have them, with the same weights: Keras 3 (on the torch backend)
for activation, recurrent_activation (Keras's hard_sigmoid), RNN activations and bidirectional merge modes;
onnxruntime for ONNX's activations with parameters (HardSigmoid alpha/beta, ScaledTanh, LeakyRelu, Elu), `clip`
and `input_forget` (CIFG), with and without peepholes. Outputs agree to 1e-5 (float32).
"""
import os

import numpy as np
import pytest

import rnnkit as rk

os.environ.setdefault("KERAS_BACKEND", "torch")

T, B, I, H = 7, 3, 4, 5


# --- Keras -----------------------------------------------------------------------------------------------------

def keras():
    if os.environ.get("KERAS_BACKEND") != "torch":
        pytest.skip("Keras must run on its torch backend here (KERAS_BACKEND=torch)")
    return pytest.importorskip("keras")


def keras_lstm_weights(p, suffix=""):
    """rnnkit/torch (4H, I) rows i f g o -> Keras kernel (I, 4H) columns i f c o; one bias b_ih + b_hh."""
    return [p["weight_ih" + suffix].T, p["weight_hh" + suffix].T, p["bias_ih" + suffix] + p["bias_hh" + suffix]]


def keras_gru_weights(p, suffix=""):
    """rows r z n -> Keras columns z r h; reset_after=True keeps both biases, shape (2, 3H)."""
    def reorder(a):
        r, z, n = np.split(a, 3, axis=0)
        return np.concatenate([z, r, n], axis=0)
    return [reorder(p["weight_ih" + suffix]).T, reorder(p["weight_hh" + suffix]).T,
            np.stack([reorder(p["bias_ih" + suffix]), reorder(p["bias_hh" + suffix])])]


def run_keras(layer, x):
    out = layer(x.transpose(1, 0, 2))  # Keras is batch-first
    if isinstance(out, (list, tuple)):
        return [np.asarray(o.detach().cpu().numpy()).transpose(1, 0, 2) for o in out]
    return np.asarray(out.detach().cpu().numpy()).transpose(1, 0, 2)


@pytest.mark.parametrize("activation,recurrent", [("relu", "sigmoid"), ("tanh", "hard_sigmoid"),
                                                   ("softsign", "hard_sigmoid"), ("elu", "sigmoid"),
                                                   ("linear", "sigmoid"), ("softplus", "hard_sigmoid")])
def test_lstm_activations_match_keras(activation, recurrent, rng):
    k = keras()
    ours = rk.LSTM(I, H, activation=activation, recurrent_activation=recurrent, seed=1)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    theirs = k.layers.LSTM(H, activation=activation, recurrent_activation=recurrent, return_sequences=True)
    theirs.build((B, T, I))
    theirs.set_weights(keras_lstm_weights(ours.parameters(), "_l0"))
    y, _ = ours(x, training=False)
    np.testing.assert_allclose(y, run_keras(theirs, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation,recurrent", [("relu", "hard_sigmoid"), ("tanh", "sigmoid"),
                                                   ("softsign", "hard_sigmoid")])
def test_gru_activations_match_keras(activation, recurrent, rng):
    k = keras()
    ours = rk.GRU(I, H, activation=activation, recurrent_activation=recurrent, seed=2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    theirs = k.layers.GRU(H, activation=activation, recurrent_activation=recurrent, return_sequences=True,
                          reset_after=True)
    theirs.build((B, T, I))
    theirs.set_weights(keras_gru_weights(ours.parameters(), "_l0"))
    y, _ = ours(x, training=False)
    np.testing.assert_allclose(y, run_keras(theirs, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nonlinearity", ["relu", "sigmoid", "softsign", "elu", "linear"])
def test_rnn_nonlinearity_matches_keras(nonlinearity, rng):
    k = keras()
    ours = rk.RNN(I, H, nonlinearity=nonlinearity, seed=3)
    p = ours.parameters()
    x = (0.5 * rng.standard_normal((T, B, I))).astype(np.float32)
    theirs = k.layers.SimpleRNN(H, activation=nonlinearity, return_sequences=True)
    theirs.build((B, T, I))
    theirs.set_weights([p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]])
    y, _ = ours(x, training=False)
    np.testing.assert_allclose(y, run_keras(theirs, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_merge_modes_match_keras_bidirectional(mode, rng):
    k = keras()
    ours = rk.LSTM(I, H, bidirectional=True, merge_mode=mode, activation="relu", recurrent_activation="hard_sigmoid",
                   seed=4)
    p = ours.parameters()
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    theirs = k.layers.Bidirectional(
        k.layers.LSTM(H, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True),
        merge_mode=mode)
    theirs.build((B, T, I))
    theirs.set_weights(keras_lstm_weights(p, "_l0") + keras_lstm_weights(p, "_l0_reverse"))
    y, _ = ours(x, training=False)
    expected = run_keras(theirs, x)
    if mode is None:
        for a, e in zip(y, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


# --- onnxruntime -----------------------------------------------------------------------------------------------

ONNX_NAMES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "hard_sigmoid": "HardSigmoid",
              "leaky_relu": "LeakyRelu", "scaled_tanh": "ScaledTanh", "elu": "Elu", "softsign": "Softsign",
              "softplus": "Softplus", "linear": "Affine"}


def onnx_activation(spec):
    """(ONNX name, alpha or None, beta or None) of an rnnkit activation spec."""
    if isinstance(spec, str):
        defaults = {"hard_sigmoid": (1 / 6, 0.5), "leaky_relu": (0.01, None), "elu": (1.0, None),
                    "scaled_tanh": (1.0, 1.0), "linear": (1.0, 0.0)}
        alpha, beta = defaults.get(spec, (None, None))
        return ONNX_NAMES[spec], alpha, beta
    params = list(spec[1:]) + [None] * (3 - len(spec))
    return ONNX_NAMES[spec[0]], params[0], params[1]


def run_onnx_lstm(layer, x, *, clip=None, input_forget=False):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    p = {k: np.asarray(v, np.float32) for k, v in layer.parameters().items()}
    o = layer.get_config()
    gates = [g for g, keep in (("i", o["input_gate"] and not o["coupled_input_forget"]), ("f", o["forget_gate"]),
                               ("g", True), ("o", o["output_gate"])) if keep]

    def blocks(a):  # rnnkit rows (remaining gates, i f g o order) -> ONNX rows i o f c
        parts = dict(zip(gates, np.split(a, len(gates), axis=0)))
        i = parts["f"] if input_forget else parts["i"]  # (negated by coupled())
        return np.concatenate([i, parts["o"], parts["f"], parts["g"]], axis=0)

    def coupled(a):  # onnxruntime's input_forget computes i and sets f = 1 - i: its i is our f with negated weights
        return np.concatenate([-a[:H], a[H:]]) if input_forget else a

    W = coupled(blocks(p["weight_ih_l0"]))[None]
    R = coupled(blocks(p["weight_hh_l0"]))[None]
    Bias = np.concatenate([coupled(blocks(p["bias_ih_l0"])), coupled(blocks(p["bias_hh_l0"]))])[None]
    P = p.get("weight_peephole_l0", np.zeros((3, H), np.float32))
    P = np.concatenate([-P[1] if input_forget else P[0], P[2], P[1]])[None]  # rnnkit rows i f o -> ONNX i o f
    acts = [onnx_activation(o["recurrent_activation"]),
            onnx_activation(o["activation"] if o["input_activation"] else "linear"),
            onnx_activation(o["activation"] if o["output_activation"] else "linear")]
    attrs = dict(hidden_size=H, activations=[a[0] for a in acts], input_forget=int(input_forget))
    alphas = [a[1] for a in acts if a[1] is not None]
    betas = [a[2] for a in acts if a[2] is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    if clip:
        attrs["clip"] = clip
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "", "", "", "P"], ["Y"], **attrs)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, a.shape, a.ravel()) for n, a in
             (("W", W), ("R", R), ("B", Bias), ("P", P))]
    graph = helper.make_graph([node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, B, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})[0][:, 0]  # Y: (T, num_directions, B, H)


@pytest.mark.parametrize("options", [
    dict(recurrent_activation=("hard_sigmoid", 0.2, 0.5), activation="tanh"),
    dict(recurrent_activation="sigmoid", activation=("scaled_tanh", 1.2, 0.8)),
    dict(recurrent_activation="sigmoid", activation=("leaky_relu", 0.1)),
    dict(recurrent_activation="sigmoid", activation=("elu", 0.9)),
    dict(recurrent_activation="sigmoid", activation="softsign"),
    dict(recurrent_activation="sigmoid", activation="softplus"),
    dict(peephole=True, recurrent_activation=("hard_sigmoid", 0.3, 0.4)),
], ids=str)
def test_lstm_activations_match_onnxruntime(options, rng):
    layer = rk.LSTM(I, H, seed=5, **options)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, _ = layer(x, training=False)
    np.testing.assert_allclose(y, run_onnx_lstm(layer, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("clip", [0.3, 1.0])
def test_cell_clip_matches_onnxruntime(clip, peephole, rng):
    layer = rk.LSTM(I, H, seed=6, cell_clip=clip, peephole=peephole)
    x = (2.0 * rng.standard_normal((T, B, I))).astype(np.float32)
    y, _ = layer(x, training=False)
    np.testing.assert_allclose(y, run_onnx_lstm(layer, x, clip=clip), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("peephole", [False, True])
def test_coupled_input_forget_matches_onnx_input_forget(peephole, rng):
    layer = rk.LSTM(I, H, seed=7, coupled_input_forget=True, peephole=peephole)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    y, _ = layer(x, training=False)
    np.testing.assert_allclose(y, run_onnx_lstm(layer, x, input_forget=True), rtol=1e-5, atol=1e-5)


# --- torch: the projection LSTM --------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers,bidirectional,lengths", [(1, False, None), (2, True, None), (3, False, [7, 2, 5]),
                                                          (2, True, [4, 7, 1])], ids=str)
def test_projection_matches_torch(layers, bidirectional, lengths, dtype, rng):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    torch.manual_seed(0)
    Hp, P = 6, 3
    theirs = torch.nn.LSTM(I, Hp, num_layers=layers, bidirectional=bidirectional, proj_size=P).to(
        getattr(torch, dtype))
    ours = rk.LSTM(I, Hp, num_layers=layers, bidirectional=bidirectional, proj_size=P, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((layers * D, B, P)).astype(dtype)
    c0 = rng.standard_normal((layers * D, B, Hp)).astype(dtype)
    y, (h_n, c_n) = ours(x, (h0, c0), lengths=lengths)
    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    if lengths is None:
        yt, (ht, ct) = theirs(xt, (h0t, c0t))
    else:
        packed, (ht, ct) = theirs(pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False), (h0t, c0t))
        yt, _ = pad_packed_sequence(packed, total_length=T)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-11, atol=1e-12)
    assert y.shape == (T, B, D * P) and h_n.shape == (layers * D, B, P) and c_n.shape == (layers * D, B, Hp)
    for a, e in ((y, yt), (h_n, ht), (c_n, ct)):
        np.testing.assert_allclose(a, e.detach().numpy(), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh, dc = rng.standard_normal(h_n.shape).astype(dtype), rng.standard_normal(c_n.shape).astype(dtype)
    ours.zero_grad()
    dx, (dh0, dc0) = ours.backward(dy, (dh, dc))
    (torch.sum(yt * torch.tensor(dy)) + torch.sum(ht * torch.tensor(dh)) + torch.sum(ct * torch.tensor(dc))).backward()
    for a, e in ((dx, xt.grad), (dh0, h0t.grad), (dc0, c0t.grad)):
        np.testing.assert_allclose(a, e.numpy(), **tol)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), err_msg=name, **tol)


def test_projection_team_path_matches_float64(rng):
    """Sizes where the CPU driver runs a team of threads over packed operands: float32 against float64."""
    Hp, P, Tl, Bl = 96, 40, 6, 24
    a = rk.LSTM(16, Hp, num_layers=2, bidirectional=True, proj_size=P, seed=3, recurrent_dropout=0.2)
    b = rk.LSTM(16, Hp, num_layers=2, bidirectional=True, proj_size=P, seed=3, dtype="float64", recurrent_dropout=0.2)
    x = rng.standard_normal((Tl, Bl, 16))
    lengths = rng.integers(0, Tl + 1, size=Bl)
    ya, _ = a(x.astype(np.float32), lengths=lengths)
    yb, _ = b(x, lengths=lengths)
    np.testing.assert_allclose(ya, yb, rtol=2e-4, atol=2e-5)
    dy = rng.standard_normal(yb.shape)
    dxa, _ = a.backward(dy.astype(np.float32))
    dxb, _ = b.backward(dy)
    np.testing.assert_allclose(dxa, dxb, rtol=2e-4, atol=2e-4)
    for name in b.grads:
        np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=2e-3, atol=2e-4, err_msg=name)
