"""rk.Attention: forward and every gradient against the same attention in torch operations (autograd), float32
and float64, with source masks; float64 central finite differences; masked positions get exactly zero weight."""
import numpy as np
import pytest
import torch

import rnnkit as rk

KINDS = ["bahdanau", "luong_dot", "luong_general", "luong_concat"]


def torch_attention(att, query, keys, lengths):
    """context, weights from att's parameters, written with torch operations."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in att.parameters().items()}
    q = torch.tensor(query, requires_grad=True)
    k = torch.tensor(keys, requires_grad=True)
    Q = q.shape[1]
    if att.kind == "bahdanau":
        e = torch.tanh((q @ p["weight_query"].T)[:, None, :] + k @ p["weight_key"].T + p["bias"]) @ p["weight_score"]
    elif att.kind == "luong_concat":
        W = p["weight"]
        e = torch.tanh((q @ W[:, :Q].T)[:, None, :] + k @ W[:, Q:].T) @ p["weight_score"]
    elif att.kind == "luong_dot":
        e = torch.einsum("bq,bsq->bs", q, k)
    else:
        e = torch.einsum("bq,qk,bsk->bs", q, p["weight"], k)
    S = k.shape[1]
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    e = e.masked_fill(~mask, float("-inf"))
    w = torch.softmax(e, dim=1)
    context = (w[:, :, None] * k).sum(1)
    return context, w, q, k, p


def make(kind, dtype, Q=5, K=5, units=None, seed=3):
    return rk.Attention(Q, K, kind=kind, units=units, dtype=dtype, seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch_forward_and_gradients(kind, dtype, rng):
    Q, K, B, S = 6, (6 if kind == "luong_dot" else 7), 4, 5
    att = rk.Attention(Q, K, kind=kind, units=(9 if kind in ("bahdanau", "luong_concat") else None), dtype=dtype,
                       seed=11)
    query = rng.standard_normal((B, Q)).astype(dtype)
    keys = rng.standard_normal((B, S, K)).astype(dtype)
    lengths = np.array([5, 2, 3, 1], np.int32)
    context, weights = att(query, keys, lengths)
    tc, tw, tq, tk, tp = torch_attention(att, query, keys, lengths)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(context, tc.detach().numpy(), **tol)
    np.testing.assert_allclose(weights, tw.detach().numpy(), **tol)
    assert np.all(weights[np.arange(S)[None, :] >= lengths[:, None]] == 0.0)  # exactly zero, not small

    dcontext = rng.standard_normal((B, K)).astype(dtype)
    dweights = rng.standard_normal((B, S)).astype(dtype)
    att.zero_grad()
    dq, dk = att.backward(dcontext, dweights)
    ((tc * torch.tensor(dcontext)).sum() + (tw * torch.tensor(dweights)).sum()).backward()
    np.testing.assert_allclose(dq, tq.grad.numpy(), **tol)
    np.testing.assert_allclose(dk, tk.grad.numpy(), **tol)
    for name, g in att.grads.items():
        np.testing.assert_allclose(g, tp[name].grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind, rng):
    Q, K, B, S = 3, 3, 3, 4
    att = rk.Attention(Q, K, kind=kind, dtype="float64", seed=5)
    query, keys = rng.standard_normal((B, Q)), rng.standard_normal((B, S, K))
    lengths = np.array([4, 1, 2])
    dc, dw = rng.standard_normal((B, K)), rng.standard_normal((B, S))

    def loss():
        c, w = att(query, keys, lengths, training=False)
        return float((c * dc).sum() + (w * dw).sum())

    att(query, keys, lengths)
    att.zero_grad()
    dq, dk = att.backward(dc, dw)
    h = 1e-6
    for arr, grad in [(query, dq), (keys, dk)] + [(p, att.grads[n]) for n, p in att.parameters().items()]:
        flat, gflat = arr.reshape(-1), np.asarray(grad).reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = loss()
            flat[i] = old - h
            down = loss()
            flat[i] = old
            assert abs((up - down) / (2 * h) - gflat[i]) < 1e-7 * max(1.0, abs(gflat[i])), (kind, i)


def test_empty_source_gives_zero_weights_and_context(rng):
    att = rk.Attention(4, 4, kind="bahdanau", seed=1)
    context, weights = att(rng.standard_normal((2, 4)).astype(np.float32),
                           rng.standard_normal((2, 3, 4)).astype(np.float32), [0, 3])
    assert np.all(context[0] == 0) and np.all(weights[0] == 0)
    assert np.isclose(weights[1].sum(), 1.0)
    dq, dk = att.backward(np.ones((2, 4), np.float32))
    assert np.all(np.isfinite(dq)) and np.all(dk[0] == 0)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="kind"):
        rk.Attention(4, 4, kind="dotty")
    with pytest.raises(ValueError, match="key_size"):
        rk.Attention(4, 5, kind="luong_dot")
    with pytest.raises(ValueError, match="units"):
        rk.Attention(4, 4, kind="luong_general", units=3)
    with pytest.raises(TypeError, match="query_size"):
        rk.Attention("4", 4)
    att = rk.Attention(4, 6)
    with pytest.raises(ValueError, match="keys"):
        att(np.zeros((2, 4), np.float32), np.zeros((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match="query"):
        att(np.zeros((2, 4), np.float64), np.zeros((2, 3, 6), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        att(np.zeros((2, 4), np.float32), np.zeros((2, 3, 6), np.float32), [1, 4])
    with pytest.raises(RuntimeError, match="backward"):
        rk.Attention(4, 4).backward(np.zeros((2, 4), np.float32))


def test_units_default_and_config_round_trip():
    att = rk.Attention(5, 8, kind="bahdanau")
    assert att.parameters()["weight_query"].shape == (5, 5)
    again = rk.Attention.from_config(att.get_config())
    for name, value in att.parameters().items():
        np.testing.assert_array_equal(again.parameters()[name], value)
