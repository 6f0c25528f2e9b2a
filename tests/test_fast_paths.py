"""Every fast path computes torch's numbers: the per-step products run as packed panels (enough rows, or small
weights), as dot products over the stored weights (few rows of large weights, or very few rows) or as a
swapped panel product over them (16-63 rows of large weights), and read weights in place with a padded ragged
edge (sizes not a multiple of the SIMD panel); a single sequence (B = 1) takes a matrix-vector kernel;
threads own hidden units when a step is large enough. Results do not depend on the thread count, and the
denormal mode rnnkit sets for its kernels is restored afterwards."""
import numpy as np
import pytest

import rnnkit as rk

torch = pytest.importorskip("torch")

CASES = [  # (T, B, I, H): which path the sizes select
    (40, 8, 48, 64),     # packed panels, 8-row register tiles
    (70, 1, 33, 37),     # packed, B = 1 vector kernel, ragged panel edges
    (5, 3, 45, 37),      # packed small weights (T*B >= 8), ragged edges
    (3, 2, 45, 37),      # dot products over stored rows (T*B < 8), ragged edges
    (9, 11, 20, 100),    # packed, mixed 8-row and 2-row tiles, ragged; threads own hidden units
    (30, 1, 40, 300),    # B = 1 with threads owning hidden units, ragged gate edges
    (3, 2, 64, 160),     # dot products with threads owning hidden units
    (12, 1, 400, 400),   # dot products: weights above 2 MiB, fewer than 64 rows; threads own units
    (21, 2, 400, 400),   # the same weights with 16+ rows: swapped panel product (A^T packed, weights in place)
    (66, 1, 400, 400),   # 64-255 rows: packed recurrent weights, input projection by the swapped product
]


def make(kind, I, H, layers=1, bidirectional=False):
    if kind == "lstm":
        return torch.nn.LSTM(I, H, layers, bidirectional=bidirectional), rk.LSTM(I, H, layers,
                                                                                 bidirectional=bidirectional)
    if kind == "gru":
        return torch.nn.GRU(I, H, layers, bidirectional=bidirectional), rk.GRU(I, H, layers,
                                                                               bidirectional=bidirectional)
    return torch.nn.RNN(I, H, layers, bidirectional=bidirectional), rk.RNN(I, H, layers, bidirectional=bidirectional)


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("T, B, I, H", CASES)
def test_fast_paths_match_torch(kind, T, B, I, H):
    torch.manual_seed(0)
    tm, rm = make(kind, I, H, layers=2, bidirectional=True)
    rm.load_state_dict(tm.state_dict())
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, _ = tm(xt)
    dy = np.random.default_rng(2).standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.from_numpy(dy))
    for training in (True, False):
        y, _ = rm(x, training=training)
        assert rel_err(y, yt.detach().numpy()) < 2e-5, f"y (training={training})"
    rm(x)
    dx, _ = rm.backward(dy)
    assert rel_err(dx, xt.grad.numpy()) < 2e-5
    for name, p in tm.named_parameters():
        assert rel_err(rm.grads[name], p.grad.numpy()) < 5e-5, name


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_cho", "rnn"])
@pytest.mark.parametrize("extras", [{}, {"recurrent_dropout": 0.3}])
def test_thread_count_does_not_change_results(kind, extras):
    """One thread against a team whose threads own hidden units (sizes large enough to split them), with
    variable lengths and, optionally, recurrent dropout."""
    H = 140
    if kind == "lstm":
        rm = rk.LSTM(30, H, 2, **extras)
    elif kind == "rnn":
        rm = rk.RNN(30, H, 2, **extras)
    else:
        rm = rk.GRU(30, H, 2, linear_before_reset=kind == "gru", **extras)
    x = np.random.default_rng(3).standard_normal((50, 6, 30)).astype(np.float32)
    dy = np.random.default_rng(4).standard_normal((50, 6, H)).astype(np.float32)
    lengths = np.array([50, 7, 31, 50, 1, 44])
    before = rk.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            rk.set_num_threads(n)
            rm.zero_grad()
            rm.rng_state = 0  # the same dropout masks in both runs
            y, _ = rm(x, lengths=lengths)
            dx, _ = rm.backward(dy)
            results.append((y, dx, {k: v.copy() for k, v in rm.grads.items()}))
    finally:
        rk.set_num_threads(before)
    (y1, dx1, g1), (y2, dx2, g2) = results
    np.testing.assert_allclose(y2, y1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dx2, dx1, rtol=0, atol=1e-6)
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_denormal_mode_is_restored_after_kernels():
    tiny = np.array([1e-39], np.float32)  # a denormal float32
    assert tiny[0] * np.float32(1.0) != 0
    lstm = rk.LSTM(4, 8)
    y, _ = lstm(np.zeros((3, 2, 4), np.float32))
    lstm.backward(np.ones_like(y))
    assert (tiny * np.float32(1.0))[0] != 0, "rnnkit left flush-to-zero on in the calling thread"


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_chunked_inference_of_a_unidirectional_stack_matches_torch(kind):
    """Inference of a unidirectional stack runs chunks of 32 steps through every layer (bounded memory);
    sequences ending inside, at and before chunk boundaries must give torch's outputs and final states."""
    torch.manual_seed(2)
    T, B, I, H, L = 100, 5, 6, 20, 3
    tm, rm = make(kind, I, H, layers=L)
    rm.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = np.array([100, 33, 32, 1, 64])
    h0 = rng.standard_normal((L, B, H)).astype(np.float32)
    c0 = rng.standard_normal((L, B, H)).astype(np.float32)
    state_t = (torch.from_numpy(h0), torch.from_numpy(c0)) if kind == "lstm" else torch.from_numpy(h0)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                         enforce_sorted=False)
        out, st = tm(packed, state_t)
        y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    for training in (False, True):
        if kind == "lstm":
            y, (h_n, c_n) = rm(x, (h0, c0), lengths=lengths, training=training)
            assert rel_err(c_n, st[1].numpy()) < 2e-5, f"c_n (training={training})"
            assert rel_err(h_n, st[0].numpy()) < 2e-5, f"h_n (training={training})"
        else:
            y, h_n = rm(x, h0, lengths=lengths, training=training)
            assert rel_err(h_n, st.numpy()) < 2e-5, f"h_n (training={training})"
        assert rel_err(y, y_t.numpy()) < 2e-5, f"y (training={training})"


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_batch_in_any_order_gives_the_same_rows(kind):
    """Kernels run a batch sorted by length (a step's products skip the rows that have ended); a batch given
    in another order must give the same rows, gradients and parameter gradients."""
    T, B, I, H = 30, 9, 20, 100
    _, rm = make(kind, I, H, layers=2, bidirectional=True)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, 2 * H)).astype(np.float32)
    lengths = np.array([3, 30, 17, 1, 30, 9, 22, 5, 12])
    runs = []
    for perm in (np.arange(B), np.argsort(-lengths, kind="stable"), rng.permutation(B)):
        rm.zero_grad()
        y, h_n = rm(x[:, perm], lengths=lengths[perm])
        dx, _ = rm.backward(dy[:, perm])
        inverse = np.argsort(perm)
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        runs.append((y[:, inverse], dx[:, inverse], h[:, inverse], {k: v.copy() for k, v in rm.grads.items()}))
    for y, dx, h, grads in runs[1:]:
        np.testing.assert_allclose(y, runs[0][0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(dx, runs[0][1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(h, runs[0][2], rtol=0, atol=1e-6)
        for name in grads:
            np.testing.assert_allclose(grads[name], runs[0][3][name], rtol=1e-5, atol=1e-5, err_msg=name)
