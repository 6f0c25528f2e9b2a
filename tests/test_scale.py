"""Beyond one process and beyond one window (issue: MPI, truncated BPTT, stateful training, streaming data).

* Truncated BPTT against torch doing the same by hand (windows, detached states, an SGD step per window), for
  TBPTT(K, K) and TBPTT(K1, K2); K >= T equals full BPTT exactly.
* Stateful: windows of one long sequence, carried from call to call, equal the long sequence's forward.
* Streaming: a memmap, a list of batches, a function returning a generator give what the arrays in memory give.
* MPI: `mpiexec -n 2` data-parallel fit ends with identical parameters on both ranks, equal to one process with
  the same global batches; its checkpoint (written by rank 0 only) resumes in one process.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnkit as rk
from scale_data import make_data, make_model

HERE = os.path.dirname(os.path.abspath(__file__))


def lstm_model(seed=1, H=6):
    return rk.Sequential([rk.LSTM(3, H, seed=seed), rk.Dense(H, 1, seed=seed + 1)])


def torch_twin(model):
    lstm, lin = torch.nn.LSTM(3, model.layers[0].hidden_size), torch.nn.Linear(model.layers[0].hidden_size, 1)
    lstm.load_state_dict({k: torch.tensor(v) for k, v in model.layers[0].parameters().items()})
    lin.load_state_dict({k: torch.tensor(v) for k, v in model.layers[1].parameters().items()})
    return lstm, lin


def torch_tbptt(model, x, y, k1, k2, lr, epochs):
    """TBPTT(K1, K2) by hand in torch: a window [end - K2, end) every K1 steps from the state saved at its start,
    the loss over its last K1 steps, one SGD step, states detached."""
    lstm, lin = torch_twin(model)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(lin.parameters()), lr=lr)
    x, y = torch.tensor(x), torch.tensor(y)
    T = x.shape[0]
    for _ in range(epochs):
        boundaries, done = {0: None}, 0
        while done < T:
            end = min(T, done + k1)
            begin = max(0, done + k1 - k2)
            out, (h, c) = lstm(x[begin:end], boundaries[begin])
            loss = torch.nn.functional.mse_loss(lin(out)[done - begin:], y[done:end])
            opt.zero_grad()
            loss.backward()
            opt.step()
            boundaries[end] = (h.detach(), c.detach())
            done = end
    return {"0.weight_ih_l0": lstm.weight_ih_l0, "0.weight_hh_l0": lstm.weight_hh_l0, "1.weight": lin.weight}


@pytest.mark.parametrize("tbptt", [5, (4, 8), (3, 3)], ids=["K5", "K1=4-K2=8", "tuple-3"])
def test_truncated_bptt_matches_torch_by_hand(tbptt):
    rng = np.random.default_rng(0)
    T, B = 23, 4
    x = rng.standard_normal((T, B, 3)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=0).astype(np.float32) * 0.2
    model = lstm_model()
    k1, k2 = (tbptt, tbptt) if isinstance(tbptt, int) else tbptt
    expected = torch_tbptt(model, x, y, k1, k2, lr=0.1, epochs=2)
    model.fit(x, y, epochs=2, batch_size=B, optimizer=rk.optim.SGD(model, lr=0.1), loss="mse", shuffle=False,
              tbptt=tbptt, verbose=0)
    params = model.parameters()
    for name, value in expected.items():
        np.testing.assert_allclose(params[name], value.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_window_as_long_as_the_sequence_is_full_bptt(rng):
    x, y, lengths = make_data()
    a, b = make_model(), make_model()
    for model, tbptt in ((a, None), (b, x.shape[0])):
        model.fit(x, y, epochs=2, batch_size=8, optimizer=rk.optim.Adam(model, lr=1e-2), lengths=lengths, seed=4,
                  tbptt=tbptt, verbose=0)
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[name], value, err_msg=name)


@pytest.mark.parametrize("cls", [rk.LSTM, rk.GRU, rk.mLSTM, rk.minGRU])
def test_stateful_windows_equal_one_long_forward(cls, rng):
    kw = {"num_heads": 2} if cls is rk.mLSTM else {}
    model = rk.Sequential([cls(3, 8, num_layers=2, seed=1, **kw), rk.Dense(8, 2, seed=2)])
    x = rng.standard_normal((40, 3, 3)).astype(np.float32)
    lengths = np.array([40, 17, 33])
    whole = model.predict(x, lengths=lengths)
    model.stateful = True
    parts = [model.predict(x[t:t + 9], lengths=np.clip(lengths - t, 0, 9)) for t in range(0, 40, 9)]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5, atol=1e-6)
    model.reset_states()
    first = model.predict(x[:9])
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x[:9]), first)  # reset: from zeros again
    with pytest.raises(ValueError, match="carried states"):
        model.predict(x[:9, :2])


def test_stateful_fit_carries_states_across_batches():
    """stateful fit over consecutive chunks of long sequences (one batch per chunk) is TBPTT over the whole
    sequence: the same updates as tbptt=K on the unsplit data."""
    rng = np.random.default_rng(2)
    T, B, K = 30, 4, 10
    x = rng.standard_normal((T, B, 3)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=0).astype(np.float32) * 0.2
    a, b = lstm_model(), lstm_model()
    a.fit(x, y, epochs=2, batch_size=B, optimizer=rk.optim.SGD(a, lr=0.1), shuffle=False, tbptt=K, verbose=0)
    chunks = [(x[t:t + K], y[t:t + K]) for t in range(0, T, K)]
    b.fit(chunks, epochs=2, optimizer=rk.optim.SGD(b, lr=0.1), stateful=True, shuffle=False, verbose=0)
    for name, value in a.parameters().items():
        np.testing.assert_allclose(b.parameters()[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    with pytest.raises(ValueError, match="shuffle=False"):
        b.fit(x, y, stateful=True, shuffle=True, verbose=0)
    c = lstm_model()  # the contract's spelling: stateful keeps the order by itself
    c.fit(x, y, epochs=2, batch_size=B, optimizer=rk.optim.SGD(c, lr=0.1), tbptt=K, stateful=True, verbose=0)
    for name, value in a.parameters().items():
        np.testing.assert_allclose(c.parameters()[name], value, rtol=1e-6, atol=1e-7, err_msg=name)
    c.reset_states()
    # validation of a stateful model starts each sequence from zeros and leaves the carried states alone
    d = lstm_model()
    history = d.fit(x, y, epochs=1, batch_size=B, tbptt=K, stateful=True, verbose=0, validation_data=(x[:, :3], y[:, :3]))
    assert np.isfinite(history["val_loss"][0]) and d._carry[0][0].shape[1] == B


def test_stateful_and_tbptt_refuse_what_cannot_carry():
    x = np.zeros((5, 2, 3), np.float32)
    bi = rk.Sequential([rk.LSTM(3, 4, bidirectional=True), rk.Dense(8, 1)])
    with pytest.raises(ValueError, match="bidirectional"):
        bi.fit(x, np.zeros((5, 2, 1), np.float32), tbptt=2, verbose=0)
    last = rk.Sequential([rk.LSTM(3, 4), rk.LastStep(), rk.Dense(4, 1)])
    with pytest.raises(ValueError, match="tbptt: needs a model with an output at every step"):
        last.fit(x, np.zeros((2, 1), np.float32), tbptt=2, verbose=0)
    with pytest.raises(ValueError, match="multiple of K1"):
        lstm_model().fit(x, np.zeros((5, 2, 1), np.float32), tbptt=(2, 3), verbose=0)


def test_memmap_and_iterables_train_like_arrays(tmp_path):
    x, y, lengths = make_data()
    reference = make_model()
    reference.fit(x, y, epochs=2, batch_size=8, lengths=lengths, shuffle=False, verbose=0,
                  optimizer=rk.optim.Adam(reference, lr=1e-2))
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[...] = x
    mm.flush()
    batches = [(x[:, lo:lo + 8], y[:, lo:lo + 8], lengths[lo:lo + 8]) for lo in range(0, x.shape[1], 8)]

    def generator():
        yield from batches

    sources = {"memmap": dict(x=np.load(tmp_path / "x.npy", mmap_mode="r"), y=y, lengths=lengths),
               "list": dict(x=batches), "function": dict(x=generator)}
    for label, data in sources.items():
        model = make_model()
        model.fit(**data, epochs=2, batch_size=8, shuffle=False, verbose=0, optimizer=rk.optim.Adam(model, lr=1e-2))
        for name, value in reference.parameters().items():
            np.testing.assert_array_equal(model.parameters()[name], value, err_msg=f"{label}: {name}")
    with pytest.raises(ValueError, match="runs out after one epoch"):
        make_model().fit(generator(), epochs=2, verbose=0)

    def broken():
        yield batches[0]
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        make_model().fit(broken, verbose=0)
    with pytest.raises(TypeError, match=r"\(x, y\) or \(x, y, lengths\)"):
        make_model().fit([x], verbose=0)


def mpiexec():
    exe = shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.skipif(mpiexec() is None, reason="needs mpiexec (openmpi-bin) and mpi4py")
def test_mpi_two_ranks_equal_one_process_and_resume(tmp_path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_NUM_THREADS", None)  # the ranks share the CPUs themselves (rk.distributed.share_cpus)
    cmd = [mpiexec(), "--oversubscribe", "-n", "2", sys.executable, os.path.join(HERE, "mpi_fit.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    assert int(ranks[0]["size"]) == 2
    assert int(ranks[0]["threads"]) == max(1, len(os.sched_getaffinity(0)) // 2)
    # one process, the same global batches (seed 3), the same optimizer
    x, y, lengths = make_data()
    single = make_model()
    opt = rk.optim.Adam(single, lr=1e-2)
    history = single.fit(x, y, epochs=2, batch_size=8, optimizer=opt, lengths=lengths, seed=3, verbose=0,
                         validation_data=(x[:, :5], y[:, :5], lengths[:5]))
    for name, value in single.parameters().items():
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=f"ranks differ: {name}")
        np.testing.assert_allclose(ranks[0][name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ranks[0]["loss"], history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ranks[1]["val"], history["val_loss"], rtol=1e-5)
    # with dropout the ranks' masks differ, yet the ranks stay identical; the run is reproducible
    drop = [np.load(tmp_path / f"dropout{r}.npz") for r in range(2)]
    for name in drop[0].files:
        np.testing.assert_array_equal(drop[0][name], drop[1][name], err_msg=f"dropout run, ranks differ: {name}")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    for name in drop[0].files:
        np.testing.assert_array_equal(np.load(tmp_path / "dropout0.npz")[name], drop[0][name], err_msg=name)
    # rank 0's checkpoint resumes in one process: one more epoch = the single process's third epoch
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".rnnkit-tmp")]
    assert not leftovers
    state = rk.load_checkpoint(tmp_path / "ckpt.safetensors")
    resumed, ropt = state["model"], state["optimizer"]
    resumed.fit(x, y, epochs=1, batch_size=8, optimizer=ropt, lengths=lengths, seed=5, verbose=0)
    single.fit(x, y, epochs=1, batch_size=8, optimizer=opt, lengths=lengths, seed=5, verbose=0)
    for name, value in single.parameters().items():
        np.testing.assert_allclose(resumed.parameters()[name], value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_distributed_helpers_without_mpi():
    assert rk.distributed.size() >= 1 and rk.distributed.rank() == 0 or rk.distributed.launched()
    model = make_model()
    before = {k: v.copy() for k, v in model.grads.items()}
    out = rk.distributed.allreduce_gradients(model, 1.0, [2.5])  # one rank: unchanged
    assert out[0] == 2.5
    for k, v in model.grads.items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.skipif(mpiexec() is None, reason="needs mpiexec (openmpi-bin) and mpi4py")
def test_cli_train_under_mpiexec_writes_one_model(tmp_path):
    t = np.arange(400)
    (tmp_path / "s.csv").write_text("v\n" + "\n".join(f"{v:.5f}" for v in np.sin(t / 6) + 0.01 * t))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    out = tmp_path / "m.safetensors"
    done = subprocess.run([mpiexec(), "--oversubscribe", "-n", "2", sys.executable, "-m", "rnnkit", "train", "--csv",
                           str(tmp_path / "s.csv"), "--column", "v", "--epochs", "2", "--verbose", "0", "--out",
                           str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("model saved to") == 1  # rank 0 speaks
    assert rk.load(out).predict(np.zeros((1, 24, 1), np.float32)).shape == (1, 1)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".rnnkit-tmp")]


def test_truncated_bptt_with_lengths_matches_torch_packed():
    """TBPTT(5, 5) on a variable-length batch: torch packs each window (rows with no step left keep their state)
    and averages the squared error over valid steps, as rnnkit's masked loss does."""
    rng = np.random.default_rng(1)
    T, B, K = 17, 4, 5
    x = rng.standard_normal((T, B, 3)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=0).astype(np.float32) * 0.2
    lengths = np.array([17, 9, 3, 12], np.int32)
    model = lstm_model()
    lstm, lin = torch_twin(model)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(lin.parameters()), lr=0.1)
    xt, yt = torch.tensor(x), torch.tensor(y)
    h = torch.zeros(1, B, 6)
    c = torch.zeros(1, B, 6)
    for begin in range(0, T, K):
        end = min(T, begin + K)
        local = np.clip(lengths - begin, 0, end - begin)
        rows = np.flatnonzero(local > 0)
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt[begin:end, rows], torch.tensor(local[rows]),
                                                         enforce_sorted=False)
        out, (hn, cn) = lstm(packed, (h[:, rows], c[:, rows]))
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=end - begin)
        mask = torch.tensor(np.arange(end - begin)[:, None] < local[rows][None, :], dtype=torch.float32)[..., None]
        loss = (((lin(out) - yt[begin:end, rows]) ** 2) * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        h, c = h.clone(), c.clone()
        h[:, rows], c[:, rows] = hn.detach(), cn.detach()
    model.fit(x, y, lengths=lengths, epochs=1, batch_size=B, optimizer=rk.optim.SGD(model, lr=0.1), shuffle=False,
              tbptt=K, verbose=0)
    params = model.parameters()
    for name, value in (("0.weight_ih_l0", lstm.weight_ih_l0), ("0.weight_hh_l0", lstm.weight_hh_l0),
                        ("0.bias_ih_l0", lstm.bias_ih_l0), ("1.weight", lin.weight)):
        np.testing.assert_allclose(params[name], value.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
