"""Dropout between stacked recurrent layers.

* Ignored with ``training=False`` (equal to the ``dropout=0`` model with the
  same weights), changes the training outputs of stacked layers but not the
  first layer's final state, is inverted dropout (kept values scaled by
  1/(1-p)), is reproducible from ``seed``, and its gradient agrees with finite
  differences (each evaluation uses a fresh model with the same seed, hence the
  same mask).
* ``training=True`` without dropout gives the same outputs as ``training=False``.
"""

import numpy as np
import pytest

import rnnkit as rk
from conftest import ALL_KINDS, GRU, LSTM, RNN_TANH, assert_close, copy_weights, rk_backward, rk_forward

T, B, I, H = 5, 3, 4, 6
EXACT = (1e-12, 1e-12)
ONE_PER_CLASS = [LSTM, GRU, RNN_TANH]


def rand_state(rng, kind, n, batch=B, dtype=np.float64):
    return [rng.standard_normal((n, batch, H)).astype(dtype) for _ in range(kind.n_states)]


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_inference_ignores_dropout(kind, rng):
    drop = kind.make_layer(rk, I, H, 2, dropout=0.5, seed=1, dtype="float64")
    plain = kind.make_layer(rk, I, H, 2, dtype="float64")
    copy_weights(drop, plain)
    x = rng.standard_normal((T, B, I))
    state = rand_state(rng, kind, 2)
    y_d, st_d = rk_forward(kind, drop, x, state, training=False)
    y_p, st_p = rk_forward(kind, plain, x, state, training=False)
    assert_close(y_d, y_p, *EXACT, "y")
    for a, e in zip(st_d, st_p):
        assert_close(a, e, *EXACT, "final state")


@pytest.mark.parametrize("kind", ALL_KINDS, ids=str)
def test_training_without_dropout_equals_inference(kind, rng):
    layer = kind.make_layer(rk, I, H, 2, bidirectional=True, seed=2, dtype="float64")
    x = rng.standard_normal((T, B, I))
    state = rand_state(rng, kind, 4)
    y_t, st_t = rk_forward(kind, layer, x, state, training=True)
    y_e, st_e = rk_forward(kind, layer, x, state, training=False)
    assert_close(y_t, y_e, *EXACT, "y")
    for a, e in zip(st_t, st_e):
        assert_close(a, e, *EXACT, "final state")


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_acts_between_layers_in_training(kind, rng):
    layer = kind.make_layer(rk, I, H, 2, dropout=0.5, seed=3, dtype="float64")
    x = rng.standard_normal((T, B, I))
    y_t, st_t = rk_forward(kind, layer, x, training=True)
    y_e, st_e = rk_forward(kind, layer, x, training=False)
    # The last layer sees dropped-out inputs ...
    assert np.max(np.abs(y_t - y_e)) > 1e-3
    assert np.max(np.abs(st_t[0][1] - st_e[0][1])) > 1e-3
    # ... but the first layer's computation is untouched by dropout.
    for a, e in zip(st_t, st_e):
        assert_close(a[0], e[0], *EXACT, "layer 0 final state")


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_single_layer_has_no_dropout(kind, rng):
    """Dropout is only applied between layers: none with num_layers=1."""
    import warnings
    with warnings.catch_warnings():
        # A torch-style warning about dropout with one layer is acceptable.
        warnings.simplefilter("ignore")
        layer = kind.make_layer(rk, I, H, 1, dropout=0.5, seed=4, dtype="float64")
        x = rng.standard_normal((T, B, I))
        y_t, _ = rk_forward(kind, layer, x, training=True)
        y_e, _ = rk_forward(kind, layer, x, training=False)
    assert_close(y_t, y_e, *EXACT, "y")


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_dropout_is_inverted_dropout(p, rng):
    """Read the dropped-out layer-0 output through an identity second layer.

    Layer 0 (relu RNN) is made strictly positive; layer 1 is relu(W_ih u)
    with W_ih = identity and no recurrence or bias, so y = dropout(y0).
    Every element must be 0 or y0 / (1 - p), with about a fraction p zeros.
    """
    Tn, Bn, Hn = 20, 10, 8
    layer = rk.RNN(I, Hn, 2, nonlinearity="relu", dropout=p, seed=5, dtype="float64")
    sd = {
        "weight_ih_l0": rng.uniform(0.1, 1.0, (Hn, I)), "weight_hh_l0": np.zeros((Hn, Hn)),
        "bias_ih_l0": np.full(Hn, 0.5), "bias_hh_l0": np.zeros(Hn),
        "weight_ih_l1": np.eye(Hn), "weight_hh_l1": np.zeros((Hn, Hn)),
        "bias_ih_l1": np.zeros(Hn), "bias_hh_l1": np.zeros(Hn),
    }
    layer.load_state_dict(sd)
    x = rng.uniform(0.0, 1.0, (Tn, Bn, I))
    y_eval, _ = layer(x, training=False)          # = y0 (identity layer 1)
    y_train, _ = layer(x, training=True)
    assert np.all(y_eval > 0.4)
    zero = y_train == 0
    kept = ~zero
    assert_close(y_train[kept], y_eval[kept] / (1 - p), *EXACT, "kept values")
    frac = zero.mean()
    assert abs(frac - p) < 0.25, f"dropped fraction {frac} for p={p}"
    assert 0 < frac < 1


@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_reproducible_from_seed(kind, rng):
    x = rng.standard_normal((T, B, I))
    dy = rng.standard_normal((T, B, H))
    results = []
    for _ in range(2):
        layer = kind.make_layer(rk, I, H, 3, dropout=0.5, seed=1234, dtype="float64")
        y, st = rk_forward(kind, layer, x, training=True)
        dx, _ = rk_backward(kind, layer, dy)
        results.append((layer.parameters(), y, st, dx, layer.grads))
    (p0, y0, st0, dx0, g0), (p1, y1, st1, dx1, g1) = results
    for name in p0:
        np.testing.assert_array_equal(p0[name], p1[name], err_msg=name)
        np.testing.assert_array_equal(g1[name], g0[name], err_msg=f"grad {name}")  # bitwise: fixed summation order
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(dx0, dx1)
    for a, b in zip(st0, st1):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", ONE_PER_CLASS, ids=str)
def test_dropout_gradient_finite_differences(kind, bidir, rng):
    """Each loss evaluation uses a fresh same-seed model => the same mask."""
    eps, L, seed = 1e-6, 2, 77
    D = 2 if bidir else 1
    Tn, Bn, In, Hn = 3, 2, 2, 3
    opts = dict(dropout=0.5, seed=seed, bidirectional=bidir, dtype="float64")
    proto = kind.make_layer(rk, In, Hn, L, **opts)
    params = {n: rng.uniform(-0.8, 0.8, p.shape) for n, p in proto.parameters().items()}

    def fresh(p):
        m = kind.make_layer(rk, In, Hn, L, **opts)
        m.load_state_dict(p)
        return m

    x = rng.standard_normal((Tn, Bn, In))
    w_y = rng.standard_normal((Tn, Bn, D * Hn))
    w_h = rng.standard_normal((L * D, Bn, Hn))

    def loss(x, p):
        y, st = rk_forward(kind, fresh(p), x, training=True)
        return float(np.sum(y * w_y) + np.sum(st[0] * w_h))

    # Premise: the mask is a function of the seed (and is not the identity).
    y1, _ = rk_forward(kind, fresh(params), x, training=True)
    y2, _ = rk_forward(kind, fresh(params), x, training=True)
    y3, _ = rk_forward(kind, fresh(params), x, training=False)
    np.testing.assert_array_equal(y1, y2)
    assert np.max(np.abs(y1 - y3)) > 1e-6, "dropout had no effect; pick another seed"

    m = fresh(params)
    rk_forward(kind, m, x, training=True)
    dstate = [w_h] + [np.zeros_like(w_h)] * (kind.n_states - 1)
    dx, _ = rk_backward(kind, m, w_y, dstate)

    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(xp, params) - loss(xm, params)) / (2 * eps)
    assert_close(dx, num, 1e-6, 1e-7, "dx with dropout")
    for name in ("weight_ih_l1", "weight_hh_l0"):
        num = np.zeros_like(params[name])
        for idx in np.ndindex(num.shape):
            pp = {k: v.copy() for k, v in params.items()}
            pm = {k: v.copy() for k, v in params.items()}
            pp[name][idx] += eps
            pm[name][idx] -= eps
            num[idx] = (loss(x, pp) - loss(x, pm)) / (2 * eps)
        assert_close(m.grads[name], num, 1e-6, 1e-7, f"grad {name} with dropout")
