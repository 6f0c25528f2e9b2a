"""Analytic gradients of rnnkit's training pieces against central finite differences (float64).

Covered: Dense (every activation, 2-D and 3-D input; dx, dweight, dbias), Embedding (dweight with repeated
tokens), LastStep (lengths, one or two directions, both layouts), Dropout (a fixed mask, replayed through
``rng_state``), each loss (MSE, CrossEntropy and BCEWithLogits, with masks), the L1/L2 regularization gradient,
and whole Sequential models (Embedding -> LSTM -> Dense per step; LSTM -> LastStep -> Dense with lengths).

For layers the scalar checked is L = sum(out * W) with a random W (so backward gets dout = W); for losses and
models it is the loss value itself.  Tensors with more than 20 entries are checked on a random
subset (conftest.fd_check).  Forward results are also compared with plain NumPy formulas, so a gradient that is "right" for a wrong
forward cannot pass.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import assert_close, fd_check

KINK_MARGIN = 1e-3


# --------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------

def np_activation(z, activation):
    if activation is None:
        return z
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", "softmax"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_dense_gradients(rng, activation, shape, bias):
    In, Out = shape[-1], 3
    layer = rk.Dense(In, Out, activation=activation, bias=bias, dtype="float64")
    probe = rk.Dense(In, Out, activation=activation, bias=bias, dtype="float64")
    for _ in range(50):
        params = {"weight": rng.uniform(-1, 1, (Out, In))}
        if bias:
            params["bias"] = rng.uniform(-1, 1, Out)
        x = rng.standard_normal(shape)
        pre = x @ params["weight"].T + (params["bias"] if bias else 0)
        if activation != "relu" or np.abs(pre).min() > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw a relu problem away from the kink")
    assert set(layer.parameters()) == set(params)
    layer.load_state_dict(params)
    w_out = rng.standard_normal(shape[:-1] + (Out,))

    y = layer(x)
    assert_close(y, np_activation(pre, activation), 1e-12, 1e-12, "Dense forward")
    dx = layer.backward(w_out)
    assert dx.shape == x.shape
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}

    def loss(arrays):
        probe.load_state_dict({k: arrays[k] for k in params})
        return float(np.sum(probe(arrays["x"], training=False) * w_out))

    fd_check(rng, loss, {"x": x.copy(), **{k: v.copy() for k, v in params.items()}}, analytic,
             f"Dense({activation})")


def test_dense_gradients_accumulate_until_zero_grad(rng):
    layer = rk.Dense(3, 2, activation="tanh", dtype="float64")
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer(x)
    layer.backward(w)
    once = {k: g.copy() for k, g in layer.grads.items()}
    layer(x)
    layer.backward(w)
    for k, g in layer.grads.items():
        assert_close(g, 2 * once[k], 1e-12, 1e-12, f"accumulated {k}")
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


# --------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------

def test_embedding_gradient_with_repeated_tokens(rng):
    V, E = 7, 3
    layer = rk.Embedding(V, E, dtype="float64")
    probe = rk.Embedding(V, E, dtype="float64")
    weight = rng.standard_normal((V, E))
    layer.load_state_dict({"weight": weight})
    tokens = np.array([[1, 3, 3, 0], [3, 1, 6, 6], [0, 3, 1, 1]])  # repeats; 2, 4, 5 unused
    w_out = rng.standard_normal(tokens.shape + (E,))

    y = layer(tokens)
    np.testing.assert_array_equal(y, weight[tokens])
    assert layer.backward(w_out) is None  # integer input: no input gradient
    grad = layer.grads["weight"].copy()
    expected = np.zeros((V, E))
    np.add.at(expected, tokens.reshape(-1), w_out.reshape(-1, E))
    assert_close(grad, expected, 1e-12, 1e-12, "Embedding dweight (scatter-add)")
    assert not grad[[2, 4, 5]].any()

    def loss(arrays):
        probe.load_state_dict({"weight": arrays["weight"]})
        return float(np.sum(probe(tokens, training=False) * w_out))

    fd_check(rng, loss, {"weight": weight.copy()}, {"weight": grad}, "Embedding", max_entries=V * E)


# --------------------------------------------------------------------------
# LastStep
# --------------------------------------------------------------------------

def np_last_step(x_tbf, lengths, directions):
    T, Bn, Fn = x_tbf.shape
    lens = np.full(Bn, T) if lengths is None else np.asarray(lengths)
    y = np.empty((Bn, Fn))
    half = Fn // directions
    for b in range(Bn):
        y[b, :half] = x_tbf[lens[b] - 1, b, :half]
        if directions == 2:
            y[b, half:] = x_tbf[0, b, half:]
    return y


@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
@pytest.mark.parametrize("directions", [1, 2])
def test_last_step_gradients(rng, directions, batch_first, use_lengths):
    Tn, Bn, Fn = 5, 4, 6
    layer = rk.LastStep(directions=directions, batch_first=batch_first)
    x = rng.standard_normal((Bn, Tn, Fn) if batch_first else (Tn, Bn, Fn))
    lengths = np.array([5, 1, 3, 2]) if use_lengths else None
    w_out = rng.standard_normal((Bn, Fn))

    y = layer(x, lengths=lengths)
    x_tbf = x.transpose(1, 0, 2) if batch_first else x
    np.testing.assert_array_equal(y, np_last_step(x_tbf, lengths, directions))
    dx = layer.backward(w_out)
    assert dx.shape == x.shape
    # exactly one source step per (sequence, feature): dout lands there, zeros elsewhere
    assert np.count_nonzero(dx) == np.count_nonzero(w_out)

    def loss(arrays):
        return float(np.sum(layer(arrays["x"], lengths=lengths, training=False) * w_out))

    fd_check(rng, loss, {"x": x.copy()}, {"x": dx}, "LastStep", max_entries=40)


def test_last_step_takes_directions_and_layout_from_previous_layer():
    model = rk.Sequential([rk.LSTM(2, 3, bidirectional=True, batch_first=True), rk.LastStep(),
                           rk.Dense(6, 1)])
    assert model.layers[1].directions == 2 and model.layers[1].batch_first is True
    explicit = rk.LastStep(directions=1, batch_first=False)
    rk.Sequential([rk.GRU(2, 3, bidirectional=True, batch_first=True), explicit])
    assert explicit.directions == 1 and explicit.batch_first is False  # explicit settings are kept


# --------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_fixed_mask_gradient(rng, p):
    layer = rk.Dropout(p, seed=123, dtype="float64")
    x = rng.standard_normal((6, 5, 4))
    w_out = rng.standard_normal(x.shape)
    start = layer.rng_state

    mask = layer(np.ones_like(x))  # the mask itself (with its 1/(1-p) scaling)
    layer.rng_state = start
    y = layer(x)
    assert set(np.unique(mask)) == {0.0, 1.0 / (1.0 - p)}  # inverted dropout scaling
    assert_close(y, x * mask, 1e-15, 1e-15, "Dropout forward = x * mask")
    dx = layer.backward(w_out)
    assert_close(dx, w_out * mask, 1e-15, 1e-15, "Dropout backward = dout * mask")

    def loss(arrays):
        layer.rng_state = start  # replay the same mask
        return float(np.sum(layer(arrays["x"]) * w_out))

    fd_check(rng, loss, {"x": x.copy()}, {"x": dx}, f"Dropout({p})", max_entries=30)


def test_dropout_statistics_and_inference(rng):
    p = 0.3
    layer = rk.Dropout(p, seed=7, dtype="float64")
    x = np.ones((200, 500))
    y = layer(x)
    assert abs((y == 0).mean() - p) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # unbiased in expectation
    y2 = layer(x)
    assert (y2 != y).any()  # a new mask for each training call
    np.testing.assert_array_equal(layer(x[:3], training=False), x[:3])
    with pytest.raises(RuntimeError, match="backward"):  # an inference call records nothing to backpropagate
        layer.backward(np.ones((3, 500)))


def test_dropout_p0_is_identity_in_training(rng):
    layer = rk.Dropout(0.0, dtype="float64")
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(w), w)


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------

def _loss_fd(rng, loss_obj, pred, target, mask, label):
    value, grad = loss_obj(pred, target, mask=mask)
    assert grad.shape == pred.shape and grad.dtype == pred.dtype

    def f(arrays):
        return loss_obj(arrays["pred"], target, mask=mask)[0]

    fd_check(rng, f, {"pred": pred.copy()}, {"pred": grad}, label, max_entries=40)
    if mask is not None:
        assert not grad[~mask].any()
    return value


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_mse_gradient(rng, masked):
    pred, target = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    mask = (rng.random((4, 3)) < 0.6) | np.eye(4, 3, dtype=bool) if masked else None
    value = _loss_fd(rng, rk.losses.MSE(), pred, target, mask, "MSE")
    sel = (slice(None),) if mask is None else (mask,)
    assert value == pytest.approx(np.mean((pred[sel] - target[sel]) ** 2), rel=1e-12)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_cross_entropy_gradient(rng, masked):
    logits = 2 * rng.standard_normal((5, 3, 4))
    target = rng.integers(0, 4, (5, 3))
    mask = None
    if masked:
        mask = np.arange(5)[:, None] < np.array([5, 2, 3])[None, :]
        target[~mask] = 99  # out of range but masked: must be ignored
    value = _loss_fd(rng, rk.losses.CrossEntropy(), logits, target, mask, "CrossEntropy")
    m = np.ones((5, 3), bool) if mask is None else mask
    z = logits[m]
    lse = np.log(np.exp(z).sum(-1))
    assert value == pytest.approx(np.mean(lse - z[np.arange(len(z)), target[m]]), rel=1e-12)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_bce_with_logits_gradient(rng, masked):
    logits = 3 * rng.standard_normal((6, 2, 3))
    target = rng.random((6, 2, 3))
    mask = (rng.random((6, 2)) < 0.5) | np.eye(6, 2, dtype=bool) if masked else None
    value = _loss_fd(rng, rk.losses.BCEWithLogits(), logits, target, mask, "BCEWithLogits")
    m = np.ones((6, 2), bool) if mask is None else mask
    z, t = logits[m], target[m]
    s = 1 / (1 + np.exp(-z))
    assert value == pytest.approx(np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s))), rel=1e-10)


# --------------------------------------------------------------------------
# L1 / L2 regularization
# --------------------------------------------------------------------------

L1, L2 = 0.03, 0.05


def _regularized_model(l1, l2, seed=5):
    return rk.Sequential([rk.LSTM(3, 4, l1=l1, l2=l2, seed=seed, dtype="float64"), rk.LastStep(),
                          rk.Dense(4, 2, l1=l1, l2=2 * l2, seed=seed + 1, dtype="float64")])


def _np_penalty(model_params, coefs):
    total = 0.0
    for name, w in model_params.items():
        layer, pname = name.split(".", 1)
        if pname.startswith("weight"):
            l1, l2 = coefs[layer]
            total += l1 * np.abs(w).sum() + l2 * (w * w).sum()
    return total


def test_regularize_adds_l1_l2_gradient_to_weights_only():
    model = _regularized_model(L1, L2)
    coefs = {"0": (L1, L2), "2": (L1, 2 * L2)}
    params = model.state_dict()
    assert all(np.all(v != 0) for v in params.values())
    model.zero_grad()
    penalty = model.regularize()
    assert penalty == pytest.approx(_np_penalty(params, coefs), rel=1e-12)
    assert model.regularization_loss() == pytest.approx(penalty, rel=1e-12)
    n_weights = 0
    for name, g in model.grads.items():
        layer, pname = name.split(".", 1)
        w = params[name]
        if pname.startswith("weight"):
            l1, l2 = coefs[layer]
            assert_close(g, l1 * np.sign(w) + 2 * l2 * w, 1e-12, 1e-14, f"penalty gradient {name}")
            n_weights += 1
        else:
            assert not g.any(), f"{name}: biases must not be regularized"
    assert n_weights == 3  # weight_ih_l0, weight_hh_l0, weight


def test_backward_includes_regularization_and_matches_finite_differences(rng):
    """Total objective = loss + penalty: backward's gradients match its finite differences, and differ from the
    unregularized model's by exactly the penalty gradient."""
    coefs = {"0": (L1, L2), "2": (L1, 2 * L2)}
    model, plain = _regularized_model(L1, L2), _regularized_model(0.0, 0.0)
    plain.load_state_dict(model.state_dict())
    x, y = rng.standard_normal((5, 3, 3)), rng.standard_normal((3, 2))
    loss = rk.losses.MSE()
    for m in (model, plain):
        _, d = loss(m(x), y)
        m.backward(d)
    params = model.state_dict()
    for name, g in model.grads.items():
        pname = name.split(".", 1)[1]
        diff = g - plain.grads[name]
        if pname.startswith("weight"):
            l1, l2 = coefs[name.split(".")[0]]
            assert_close(diff, l1 * np.sign(params[name]) + 2 * l2 * params[name], 1e-10, 1e-12, name)
        else:
            assert_close(diff, np.zeros_like(diff), 0, 1e-15, name)

    probe = _regularized_model(L1, L2)

    def objective(arrays):
        probe.load_state_dict(arrays)
        return loss(probe(x, training=False), y)[0] + _np_penalty(arrays, coefs)

    analytic = {k: g.copy() for k, g in model.grads.items()}
    fd_check(rng, objective, {k: v.copy() for k, v in params.items()}, analytic, "regularized model")


# --------------------------------------------------------------------------
# whole models
# --------------------------------------------------------------------------

def test_sequential_embedding_lstm_dense_per_step(rng):
    V, E, Hn, Cn, Tn, Bn = 6, 3, 4, 5, 5, 3

    def build():
        return rk.Sequential([rk.Embedding(V, E, seed=1, dtype="float64"),
                              rk.LSTM(E, Hn, seed=2, dtype="float64"),
                              rk.Dense(Hn, Cn, seed=3, dtype="float64")])

    model, probe = build(), build()
    tokens = rng.integers(0, V, (Tn, Bn))
    tokens[:, 1] = tokens[0, 1]  # a sequence repeating one token
    lengths = np.array([5, 2, 4])
    mask = np.arange(Tn)[:, None] < lengths[None, :]
    target = rng.integers(0, Cn, (Tn, Bn))
    loss = rk.losses.CrossEntropy()

    out = model(tokens, lengths=lengths)
    assert out.shape == (Tn, Bn, Cn)
    _, d = loss(out, target, mask=mask)
    assert model.backward(d) is None
    analytic = {k: g.copy() for k, g in model.grads.items()}
    assert set(analytic) == {"0.weight", "1.weight_ih_l0", "1.weight_hh_l0", "1.bias_ih_l0", "1.bias_hh_l0",
                             "2.weight", "2.bias"}

    def f(arrays):
        probe.load_state_dict(arrays)
        return loss(probe(tokens, lengths=lengths, training=False), target, mask=mask)[0]

    fd_check(rng, f, model.state_dict(), analytic, "Embedding->LSTM->Dense")


@pytest.mark.parametrize("batch_first", [False, True], ids=["tbf", "btf"])
def test_sequential_lstm_laststep_dense_with_lengths(rng, batch_first):
    In, Hn, On, Tn, Bn = 3, 3, 2, 5, 4

    def build():
        return rk.Sequential([rk.LSTM(In, Hn, 2, bidirectional=True, batch_first=batch_first, seed=4,
                                      dtype="float64"),
                              rk.LastStep(), rk.Dense(2 * Hn, On, activation="tanh", seed=5, dtype="float64")])

    model, probe = build(), build()
    x = rng.standard_normal((Bn, Tn, In) if batch_first else (Tn, Bn, In))
    y = rng.standard_normal((Bn, On))
    lengths = np.array([2, 5, 1, 4])
    loss = rk.losses.MSE()

    _, d = loss(model(x, lengths=lengths), y)
    dx = model.backward(d)
    assert dx.shape == x.shape
    steps = np.arange(Tn).reshape((1, Tn, 1) if batch_first else (Tn, 1, 1))
    lens = lengths.reshape((Bn, 1, 1) if batch_first else (1, Bn, 1))
    assert not np.any(np.where(steps >= lens, dx, 0)), "padded steps must get zero input gradient"
    analytic = {"x": dx, **{k: g.copy() for k, g in model.grads.items()}}

    def f(arrays):
        probe.load_state_dict({k: v for k, v in arrays.items() if k != "x"})
        return loss(probe(arrays["x"], lengths=lengths, training=False), y)[0]

    fd_check(rng, f, {"x": x.copy(), **model.state_dict()}, analytic, "LSTM->LastStep->Dense")
