"""sLSTM, mLSTM, minGRU, minLSTM (issue: modern recurrent cells).

Oracles: the `xlstm` package (Beck et al.'s reference code, its vanilla / native PyTorch CPU path) for the sLSTM
and mLSTM, forward and every gradient in float32; NumPy written from Feng et al.'s log-space formulation for
minGRU / minLSTM; float64 central finite differences for every gradient (tests/test_drivers.py also runs every
registered cell through its FD and thread checks). Conventions of xlstm noted where used:
  * sLSTM: xlstm's sLSTMCell takes the gate pre-activations W x (gate-major: i, f, z, o blocks of H), adds its one
    bias (our bias_ih + bias_hh) and a block-diagonal recurrent kernel, external layout (NH, dh_in, 4, dh_out);
    ours is weight_hh (4H, dh) with weight_hh[g*H + k*dh + out, in] = kernel[k, in, g, out]. States (y, c, n, m).
  * mLSTM: xlstm's backends take q, k, v (B, NH, S, dh) and scalar gate pre-activations per head; k is scaled by
    1/sqrt(dh) inside, C[a][b] = k[a] v[b]; its recurrent step modifies q, k, v in place (we pass clones). Its
    mLSTMCell adds a group norm, and its layer the output gating; the tests compose our output gate σ(o~) ⊙ h~.
"""
import numpy as np
import pytest
import torch

import rnnkit as rk
from test_learning import train_on_adding

xlstm_slstm = pytest.importorskip("xlstm.blocks.slstm.cell")
xlstm_mlstm = pytest.importorskip("xlstm.blocks.mlstm.backends")


def close(a, e, rtol, what):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    scale = max(1.0, float(np.abs(e).max()))
    err = float(np.abs(a - e).max())
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} (scale {scale:.3g})"


def torch_params(layer):
    return {k: torch.tensor(np.array(v), requires_grad=True) for k, v in layer._params.items()}


# ----------------------------------------------------------------------------------------------- sLSTM ----
def test_slstm_matches_xlstm_cell_forward_and_every_gradient(rng):
    T, B, I, H, NH = 12, 3, 5, 16, 4
    dh = H // NH
    layer = rk.sLSTM(I, H, num_heads=NH, seed=2)
    for name, p in layer._params.items():  # exercise every weight (xlstm starts its kernel at zero)
        p[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.4
    cfg = xlstm_slstm.sLSTMCellConfig(hidden_size=H, num_heads=NH, backend="vanilla", dtype="float32",
                                      dtype_b="float32", enable_automatic_mixed_precision=False)
    cell = xlstm_slstm.sLSTMCell(cfg)
    assert type(cell).__name__ == "sLSTMCell_vanilla"
    with torch.no_grad():  # the documented conversion, through xlstm's external layouts
        w = torch.tensor(layer._params["weight_hh_l0"]).view(4, NH, dh, dh)  # [g, k, out, in]
        cell.recurrent_kernel[...] = w.permute(1, 3, 0, 2)                   # [k, in, g, out]
        b = torch.tensor(layer._params["bias_ih_l0"] + layer._params["bias_hh_l0"]).view(4, NH, dh)
        cell.bias[...] = b.permute(1, 0, 2)                                  # [k, g, dh]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    W = torch.tensor(layer._params["weight_ih_l0"], requires_grad=True)
    wx = (xt @ W.T).permute(1, 0, 2)  # (B, T, 4H): the cell's BSGNH input
    out, last = cell(wx)              # out (B, NH, T, dh), last (4, B, H)
    y_ref = out.permute(2, 0, 1, 3).reshape(T, B, H)
    y, state = layer(x)
    close(y, y_ref.detach(), 1e-5, "y")
    for k, name in enumerate("hcnm"):
        close(state[k][0], last[k].detach(), 1e-5, f"final {name}")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    ds = [rng.standard_normal((1, B, H)).astype(np.float32) for _ in range(4)]
    ((y_ref * torch.tensor(dy)).sum() + sum((last[k] * torch.tensor(ds[k][0])).sum() for k in range(4))).backward()
    dx, dstate0 = layer.backward(dy, tuple(ds))
    close(dx, xt.grad, 1e-5, "dx")
    close(layer.grads["weight_ih_l0"], W.grad, 1e-5, "d weight_ih")
    kernel = cell.recurrent_kernel.grad if cell.recurrent_kernel.grad is not None else None
    internal = cell._recurrent_kernel.grad  # (NH, 4 dh, dh): [k, g*dh + out, in]
    ours = layer.grads["weight_hh_l0"].reshape(4, NH, dh, dh).transpose(1, 0, 2, 3).reshape(NH, 4 * dh, dh)
    close(ours, internal, 1e-5, "d weight_hh")
    assert kernel is None or kernel.shape  # (the proxy's view carries no separate gradient)
    bias_grad = cell._bias.grad.view(4, NH, dh).reshape(-1)  # gate-major internally
    close(layer.grads["bias_ih_l0"], bias_grad, 1e-5, "d bias_ih")
    close(layer.grads["bias_hh_l0"], bias_grad, 1e-5, "d bias_hh")


def test_slstm_forget_bias_initialisation_follows_xlstm():
    H, NH = 32, 4
    layer = rk.sLSTM(3, H, num_heads=NH, seed=0)
    cfg = xlstm_slstm.sLSTMCellConfig(hidden_size=H, num_heads=NH, backend="vanilla", dtype="float32")
    cell = xlstm_slstm.sLSTMCell(cfg)
    internal = cell._bias.detach().numpy()  # the vanilla backend's gate-major (4H,) bias, as ours
    close(layer._params["bias_ih_l0"], internal, 1e-6, "initial biases")
    assert np.all(layer._params["bias_hh_l0"] == 0)


# ----------------------------------------------------------------------------------------------- mLSTM ----
def mlstm_reference(layer, x, T, B, H, NH):
    """q, k, v, o, i~, f~ from our parameters in torch, then xlstm's recurrent step per time step."""
    dh = H // NH
    W = torch.tensor(layer._params["weight_ih_l0"], requires_grad=True)
    b = torch.tensor(layer._params["bias_ih_l0"], requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    pre = xt @ W.T + b

    def heads(a):
        return a.reshape(T, B, NH, dh).permute(1, 2, 0, 3)

    q, k, v, o = (heads(pre[..., j * H:(j + 1) * H]) for j in range(4))
    ig = pre[..., 4 * H:4 * H + NH].permute(1, 2, 0).unsqueeze(-1)
    fg = pre[..., 4 * H + NH:].permute(1, 2, 0).unsqueeze(-1)
    C = torch.zeros(B, NH, dh, dh, dtype=pre.dtype)
    n = torch.zeros(B, NH, dh, 1, dtype=pre.dtype)
    m = torch.zeros(B, NH, 1, 1, dtype=pre.dtype)
    steps = []
    for t in range(T):
        h, (C, n, m) = xlstm_mlstm.recurrent_step_stabilized_simple(
            C, n, m, q[:, :, t:t + 1].clone(), k[:, :, t:t + 1].clone(), v[:, :, t:t + 1].clone(),
            ig[:, :, t:t + 1], fg[:, :, t:t + 1])
        steps.append(h)
    ht = torch.cat(steps, 2)
    y = (torch.sigmoid(o) * ht).permute(2, 0, 1, 3).reshape(T, B, H)
    parallel = xlstm_mlstm.parallel_stabilized_simple(q, k, v, ig, fg)
    y_par = (torch.sigmoid(o) * parallel).permute(2, 0, 1, 3).reshape(T, B, H)
    return dict(y=y, y_parallel=y_par, C=C, n=n[..., 0], m=m[..., 0, 0], x=xt, W=W, b=b,
                chunkwise=(q, k, v, ig[..., 0], fg[..., 0]))


@pytest.mark.parametrize("T", [20, 150], ids=["one-chunk", "three-chunks"])
def test_mlstm_matches_xlstm_forward_states_and_every_gradient(T, rng):
    B, I, H, NH = 3, 6, 16, 4
    layer = rk.mLSTM(I, H, num_heads=NH, seed=1)
    for p in layer._params.values():  # gates away from their initial values, both stabiliser branches taken
        p[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.3
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    ref = mlstm_reference(layer, x, T, B, H, NH)
    y, (C, n, m) = layer(x)  # training: the chunkwise-parallel form
    y_inf, (C_inf, n_inf, m_inf) = layer(x, training=False)  # the recurrent form
    close(y, ref["y"].detach(), 1e-5, "y (parallel form) vs xlstm recurrent")
    close(y_inf, ref["y"].detach(), 1e-5, "y (recurrent form) vs xlstm recurrent")
    # xlstm's parallel form stabilises by each row's maximum instead of the recurrent m, so its eps (1e-6 added to
    # the stabilised denominator) weighs differently where the denominator sits at its lower bound: ours is as
    # close to it as xlstm's own recurrent form is
    y_rec, y_par = ref["y"].detach().numpy(), ref["y_parallel"].detach().numpy()
    own_gap = float(np.abs(y_rec - y_par).max())
    assert float(np.abs(y - y_par).max()) <= own_gap + 1e-5 * max(1.0, float(np.abs(y_par).max()))
    for ours, theirs, name in ((C, ref["C"], "C"), (n, ref["n"], "n"), (m, ref["m"], "m")):
        close(ours[0], theirs.detach(), 1e-5, f"final {name}")
    close(C_inf, C, 1e-5, "C of both forms")
    if T % 50 == 0:  # xlstm's chunkwise form returns the final state (its chunk size must divide T)
        q, k, v, i, f = ref["chunkwise"]
        _, (Cc, nc, mc) = xlstm_mlstm.chunkwise_simple(q, k, v, i, f, chunk_size=50, return_last_state=True)
        # its stabiliser differs (chunk maxima), and it scales q rather than k by 1/sqrt(dh): compare the
        # unstabilised memories C e^m, ours times sqrt(dh)
        scale = torch.exp(ref["m"] - mc.reshape(ref["m"].shape)).detach().numpy() * np.sqrt(H // NH)
        close(C[0] * scale[..., None, None], Cc.detach(), 1e-4, "C vs xlstm chunkwise")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dC, dn, dm = (rng.standard_normal(a.shape).astype(np.float32) for a in (C, n, m))
    loss = ((ref["y"] * torch.tensor(dy)).sum() + (ref["C"] * torch.tensor(dC[0])).sum()
            + (ref["n"] * torch.tensor(dn[0])).sum() + (ref["m"] * torch.tensor(dm[0])).sum())
    loss.backward()
    dx, _ = layer.backward(dy, (dC, dn, dm))
    close(dx, ref["x"].grad, 1e-5, "dx")
    close(layer.grads["weight_ih_l0"], ref["W"].grad, 1e-5, "d weight_ih")
    close(layer.grads["bias_ih_l0"], ref["b"].grad, 1e-5, "d bias_ih")


def test_mlstm_forms_agree_with_lengths_states_and_directions(rng):
    T, B, I, H, NH = 140, 4, 5, 12, 3
    layer = rk.mLSTM(I, H, num_heads=NH, num_layers=2, bidirectional=True, seed=4, dtype="float64")
    x = rng.standard_normal((T, B, I))
    lengths = np.array([140, 65, 0, 129])
    state = (rng.standard_normal((4, B, NH, 4, 4)), rng.standard_normal((4, B, NH, 4)), rng.standard_normal((4, B, NH)))
    y, s_train = layer(x, state, lengths=lengths)
    y_inf, s_inf = layer(x, state, lengths=lengths, training=False)
    close(y, y_inf, 1e-10, "y")
    for a, b in zip(s_train, s_inf):
        close(a, b, 1e-10, "final states")
    assert np.all(y[65:, 1] == 0) and np.all(y[:, 2] == 0)
    for k in range(3):  # an empty sequence keeps its initial state
        close(s_train[k][:, 2], state[k][:, 2], 0, "empty row's state")
    # packed semantics: each row alone, cut to its length
    for b in (0, 1, 3):
        alone, _ = layer(x[:lengths[b], b:b + 1], tuple(s[:, b:b + 1] for s in state), training=False)
        close(y[:lengths[b], b:b + 1], alone, 1e-10, f"row {b} alone")


# ------------------------------------------------------------------------------------- minGRU, minLSTM ----
def log_g(v):
    return np.where(v >= 0, np.log(np.maximum(v, 0) + 0.5), -np.logaddexp(0, -v))


def min_log_space_reference(kind, pre, h0):
    """Feng et al.'s log-space scan: log h_t = a*_t + logcumsumexp(log b - a*) with a* = cumsum(log a)."""
    H = h0.shape[-1]
    if kind == "mingru":
        z, hc = pre[..., :H], pre[..., H:]
        log_a, log_b = -np.logaddexp(0, z), -np.logaddexp(0, -z) + log_g(hc)
    else:
        i, f, hc = pre[..., :H], pre[..., H:2 * H], pre[..., 2 * H:]
        diff = np.logaddexp(0, -i) - np.logaddexp(0, -f)  # log σ(f) - log σ(i)
        log_a, log_b = -np.logaddexp(0, -diff), -np.logaddexp(0, diff) + log_g(hc)
    a_star = np.concatenate([np.zeros_like(log_a[:1]), np.cumsum(log_a, axis=0)])
    log_values = np.concatenate([np.log(h0)[None], log_b])
    return np.exp(a_star + np.logaddexp.accumulate(log_values - a_star, axis=0))[1:]


@pytest.mark.parametrize("cls", [rk.minGRU, rk.minLSTM])
def test_min_rnn_scan_matches_sequential_and_log_space_reference(cls, rng):
    T, B, I, H = 400, 4, 5, 24  # long enough for the threads' time blocks
    threads = rk.get_num_threads()
    rk.set_num_threads(2)
    try:
        layer = cls(I, H, seed=3, dtype="float64")
        x = rng.standard_normal((T, B, I))
        h0 = 0.5 + rng.random((1, B, H))  # positive: the log-space reference needs it
        y_scan, h_scan = layer(x, h0)  # training: the parallel scan
        y_seq, h_seq = layer(x, h0, training=False)  # step by step
        pre = x @ layer._params["weight_ih_l0"].T + layer._params["bias_ih_l0"]
        ref = min_log_space_reference(layer._kind, pre, h0[0])
        close(y_scan, ref, 1e-10, "scan vs log-space reference")
        close(y_seq, ref, 1e-10, "sequential vs log-space reference")
        close(h_scan, h_seq, 1e-12, "final state")
        # float32: scan and sequential agree to rounding
        layer32 = cls(I, H, seed=3)
        y32, _ = layer32(x.astype(np.float32))
        y32_seq, _ = layer32(x.astype(np.float32), training=False)
        close(y32, y32_seq, 1e-5, "float32 scan vs sequential")
    finally:
        rk.set_num_threads(threads)


@pytest.mark.parametrize("cls", [rk.minGRU, rk.minLSTM])
def test_min_rnn_scan_gradients_match_finite_differences(cls, rng):
    """T*B*H large enough that training forward and backward run the threaded scan; lengths, both directions,
    negative h0 (the linear-space scan takes any state)."""
    T, B, I, H = 64, 4, 3, 16
    threads = rk.get_num_threads()
    rk.set_num_threads(2)
    try:
        layer = cls(I, H, bidirectional=True, seed=5, dtype="float64")
        x = rng.standard_normal((T, B, I))
        h0 = rng.standard_normal((2, B, H))
        lengths = np.array([64, 40, 0, 63])
        wy, wh = rng.standard_normal((T, B, 2 * H)), rng.standard_normal((2, B, H))

        def loss():
            y, h = layer(x, h0, lengths=lengths)
            layer.clear_tape()
            return float(np.sum(y * wy) + np.sum(h * wh))

        layer(x, h0, lengths=lengths)
        layer.zero_grad()
        dx, dh0 = layer.backward(wy, wh)
        def numeric(flat, i, eps=1e-6):  # the central difference of loss() in flat[i]
            old = flat[i]
            flat[i] = old + eps
            plus = loss()
            flat[i] = old - eps
            minus = loss()
            flat[i] = old
            return (plus - minus) / (2 * eps)

        for name, p in layer._params.items():
            flat = p.reshape(-1)
            for i in rng.choice(flat.size, 12, replace=False):
                expected = numeric(flat, i)
                assert abs(layer.grads[name].reshape(-1)[i] - expected) < 1e-6 * max(1.0, abs(expected)), name
        for arr, grad, what in ((x, dx, "dx"), (h0, dh0, "dh0")):
            flat, g = arr.reshape(-1), grad.reshape(-1)
            for i in rng.choice(flat.size, 12, replace=False):
                assert abs(g[i] - numeric(flat, i)) < 1e-6, what
    finally:
        rk.set_num_threads(threads)


# --------------------------------------------------------------------------------- layers, files, errors ----
CLASSES = [(rk.sLSTM, dict(num_heads=2)), (rk.mLSTM, dict(num_heads=2)), (rk.minGRU, {}), (rk.minLSTM, {})]


@pytest.mark.parametrize("cls,kw", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_save_load_and_cpp_model_streaming(cls, kw, tmp_path, rng):
    model = rk.Sequential([cls(3, 8, num_layers=2, seed=1, batch_first=True, **kw), rk.LastStep(),
                           rk.Dense(8, 2, seed=2)])
    x = rng.standard_normal((4, 11, 3)).astype(np.float32)
    expected = model.predict(x)
    path = tmp_path / "m.safetensors"
    rk.save(model, path)
    close(rk.load(path).predict(x), expected, 1e-6, "reloaded")
    cpp = rk._core.Model.load(str(path))
    close(cpp.predict(x), expected, 1e-5, "C++ Model")
    layer = model.layers[0]
    y_full, _ = layer(x, training=False)
    state = None  # streaming: one step at a time with the carried state equals the whole sequence
    for t in range(x.shape[1]):
        if isinstance(layer, (rk.sLSTM, rk.mLSTM)):
            y_t, state = layer(x[:, t:t + 1], state, training=False)
        else:
            y_t, state = layer(x[:, t:t + 1], state, training=False)
        close(y_t[:, 0], y_full[:, t], 1e-5, f"streamed step {t}")


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="num_heads"):
        rk.sLSTM(3, 10, num_heads=4)
    with pytest.raises(ValueError, match="num_heads"):
        rk.mLSTM(3, 8, num_heads=0)
    with pytest.raises(TypeError, match="state"):
        rk.sLSTM(3, 8, num_heads=2)(np.zeros((2, 1, 3), np.float32), state=(1, 2))
    with pytest.raises(ValueError, match="state"):
        rk.mLSTM(3, 8, num_heads=2)(np.zeros((2, 1, 3), np.float32),
                                    state=(np.zeros((1, 1, 2, 4, 4)), np.zeros((1, 1, 2, 3)), np.zeros((1, 1, 2))))
    with pytest.raises(TypeError):
        rk.minGRU(3, 8, recurrent_dropout=0.2)
    for layer in (rk.sLSTM(3, 8, num_heads=2), rk.mLSTM(3, 8, num_heads=2), rk.minGRU(3, 8), rk.minLSTM(3, 8)):
        name = type(layer).__name__
        with pytest.raises(ValueError, match=f"{name} has no ONNX operator"):
            layer.export_onnx("unused.onnx")
        with pytest.raises(ValueError, match=f"torch.nn has no {name}"):
            rk.to_torch(layer)
        with pytest.raises(ValueError, match=f"Keras has no {name}"):
            rk.to_keras(rk.Sequential([layer]))


def test_mlstm_state_may_be_flat(rng):
    layer = rk.mLSTM(3, 8, num_heads=2, seed=0)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    _, state = layer(x)
    flat = tuple(s.reshape(1, 2, -1) for s in state)
    y1, s1 = layer(x, state, training=False)
    y2, s2 = layer(x, flat, training=False)
    np.testing.assert_array_equal(y1, y2)
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------- learning ----
@pytest.mark.parametrize("cls,kw", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_each_cell_learns_the_adding_problem(cls, kw):
    """The adding problem at T = 50 with tests/test_learning.py's task and budget: below 30% of test sequences
    wrong (|error| >= 0.04), where predicting the mean leaves about 84% wrong. minGRU / minLSTM are stacked (their
    units meet only through the next layer)."""
    layers = 2 if cls in (rk.minGRU, rk.minLSTM) else 1
    H = 64
    model = rk.Sequential([cls(2, H, num_layers=layers, batch_first=True, seed=0, **kw), rk.LastStep(),
                           rk.Dense(H, 1, seed=0)])
    initial, history = train_on_adding(model)
    assert initial > 0.7
    assert history[-1][1] < 0.30, f"{cls.__name__} still on the plateau: {history}"


@pytest.mark.parametrize("cls,kw", CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_each_cell_char_model_beats_unigram_entropy(cls, kw):
    rng = np.random.default_rng(1)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "its", "red", "ball"]
    text = " ".join(rng.choice(words, size=4000))
    alphabet = sorted(set(text))
    codes = np.array([alphabet.index(ch) for ch in text], dtype=np.int64)
    freq = np.bincount(codes, minlength=len(alphabet)) / len(codes)
    unigram_entropy = float(-(freq * np.log(freq)).sum())
    V, steps, batch = len(alphabet), 40, 32
    layers = 2 if cls in (rk.minGRU, rk.minLSTM) else 1
    model = rk.Sequential([rk.Embedding(V, 16, seed=0), cls(16, 64, num_layers=layers, seed=0, **kw),
                           rk.Dense(64, V, seed=0)])
    opt = rk.optim.Adam(model, lr=1e-2)
    ce = rk.losses.CrossEntropy()
    losses = []
    for _ in range(300):
        starts = rng.integers(0, len(codes) - steps - 1, size=batch)
        window = codes[starts[None, :] + np.arange(steps + 1)[:, None]]
        value, dlogits = ce(model(window[:-1]), window[1:])
        model.backward(dlogits)
        rk.clip_grad_norm(model, 5.0)
        opt.step()
        model.zero_grad()
        losses.append(value)
    final = float(np.mean(losses[-20:]))
    assert final < 0.6 * unigram_entropy, f"{cls.__name__}: {final:.3f} nats vs unigram {unigram_entropy:.3f}"
