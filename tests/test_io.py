"""Saving and loading models and checkpoints (rk.save / rk.load / rk.save_checkpoint / rk.load_checkpoint).

* Round trips: identical predictions, parameters (bitwise) and configs for a range of architectures, and the
  user metadata dict.
* Damaged files -- truncated, a bit flipped at many positions (length prefix, JSON header, tensor data),
  random bytes, empty, missing, a foreign safetensors file, the wrong kind -- raise rk.ModelFileError (a
  ValueError) naming the file and the problem.
* Atomic writes: no temporary file is left behind, and a failed write leaves the previous file untouched.
* Checkpoints: stopping, saving, rebuilding from the file and continuing gives bitwise the same parameters as
  training in one go, including all dropout masks (inter-layer, recurrent and Dropout layers).
"""

import json
import os

import numpy as np
import pytest

import rnnkit as rk

T, B, I, H = 5, 3, 4, 3


def _x_float(rng, dtype="float32", batch_first=False):
    shape = (B, T, I) if batch_first else (T, B, I)
    return rng.standard_normal(shape).astype(dtype)


def _models():
    """(id, model builder, input maker) for the round-trip tests."""
    return [
        pytest.param(
            "lstm_peephole_dense",
            lambda: rk.Sequential([rk.LSTM(I, H, 2, peephole=True, dropout=0.2, seed=1),
                                   rk.Dense(H, 2, "tanh", seed=2)]),
            lambda rng: _x_float(rng), id="lstm_peephole_dense"),
        pytest.param(
            "embedding_lstm_bidir_float64",
            lambda: rk.Sequential([rk.Embedding(9, 4, l2=0.01, seed=6, dtype="float64"),
                                   rk.LSTM(4, H, bidirectional=True, peephole=True, recurrent_dropout=0.1,
                                           batch_first=True, seed=7, dtype="float64"),
                                   rk.LastStep(), rk.Dropout(0.3, seed=4, dtype="float64"),
                                   rk.Dense(2 * H, 3, "softmax", bias=False, l1=0.001, seed=8, dtype="float64")]),
            lambda rng: rng.integers(0, 9, (B, T)), id="embedding_lstm_bidir_float64"),
        pytest.param(
            "lstm_keras_init",
            lambda: rk.Sequential([rk.LSTM(I, H, kernel_init="glorot_uniform", recurrent_init="orthogonal",
                                           forget_bias=1.0, seed=9), rk.LastStep(),
                                   rk.Dense(H, 1, "sigmoid", seed=10)]),
            lambda rng: _x_float(rng), id="lstm_keras_init"),
        pytest.param(
            "gru_lbr0_bidir_laststep",
            lambda: rk.Sequential([rk.GRU(I, H, bidirectional=True, linear_before_reset=False, batch_first=True,
                                          seed=3),
                                   rk.LastStep(), rk.Dropout(0.3, seed=4), rk.Dense(2 * H, 3, "softmax", seed=5)]),
            lambda rng: _x_float(rng, batch_first=True), id="gru_lbr0_bidir_laststep"),
        pytest.param(
            "embedding_rnn_float64",
            lambda: rk.Sequential([rk.Embedding(9, 4, seed=6, dtype="float64"),
                                   rk.RNN(4, H, nonlinearity="relu", seed=7, dtype="float64"),
                                   rk.LastStep(), rk.Dense(H, 1, seed=8, dtype="float64")]),
            lambda rng: rng.integers(0, 9, (T, B)), id="embedding_rnn_float64"),
        pytest.param(
            "single_gru_layer",
            lambda: rk.GRU(I, H, 2, seed=11),
            lambda rng: _x_float(rng), id="single_gru_layer"),
        pytest.param(
            "single_lstm_layer",
            lambda: rk.LSTM(I, H, 2, seed=11),
            lambda rng: _x_float(rng), id="single_lstm_layer"),
    ]


MODELS = _models()


def _perturb(model, rng):
    """Move the weights away from the seeded initial values, so a load that re-initialises from the seed fails."""
    for p in model.parameters().values():
        p += rng.standard_normal(p.shape).astype(p.dtype) * 0.1


@pytest.mark.parametrize("name,build,make_x", MODELS)
def test_save_load_round_trip(tmp_path, rng, name, build, make_x):
    model = build()
    _perturb(model, rng)
    x = make_x(rng)
    path = tmp_path / "model.safetensors"
    rk.save(model, path)
    loaded = rk.load(path)

    assert isinstance(loaded, rk.Sequential)
    reference = model if isinstance(model, rk.Sequential) else rk.Sequential([model])
    assert loaded.get_config() == reference.get_config()
    assert json.loads(json.dumps(loaded.get_config())) == loaded.get_config()
    assert [type(a) for a in loaded.layers] == [type(a) for a in reference.layers]
    p0, p1 = reference.parameters(), loaded.parameters()
    assert list(p0) == list(p1)
    for k in p0:
        assert p1[k].dtype == p0[k].dtype
        np.testing.assert_array_equal(p1[k], p0[k], err_msg=k)
    np.testing.assert_array_equal(loaded.predict(x), reference.predict(x))
    # the loaded model is independent of the file and of the original
    loaded.parameters()[next(iter(p1))][...] = 0
    assert np.any(reference.parameters()[next(iter(p0))] != 0)


def test_sequential_save_method_and_user_metadata(tmp_path, rng):
    model = MODELS[0].values[1]()
    meta = {"vocab": ["a", "b", "ü"], "scale": 0.5, "nested": {"n": [1, 2, 3]}, "none": None}
    path = tmp_path / "m.safetensors"
    model.save(path, metadata=meta)
    assert rk.load_metadata(path) == meta
    assert rk.load_metadata(str(path)) == meta  # str paths as well as pathlib
    rk.save(model, path)
    assert rk.load_metadata(path) == {}


# --------------------------------------------------------------------------
# damaged and foreign files
# --------------------------------------------------------------------------

def _saved_bytes(tmp_path):
    model = rk.Sequential([rk.LSTM(2, 2, seed=1), rk.LastStep(), rk.Dense(2, 1, seed=2)])
    path = tmp_path / "good.safetensors"
    rk.save(model, path, metadata={"k": "v"})
    return path.read_bytes()


def _expect_model_file_error(path, *patterns, loader=rk.load):
    with pytest.raises(rk.ModelFileError) as info:
        loader(path)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert os.path.basename(str(path)) in msg, msg
    if patterns:
        assert any(p in msg for p in patterns), msg
    return msg


def test_truncated_files(tmp_path):
    data = _saved_bytes(tmp_path)
    header_len = int.from_bytes(data[:8], "little")
    path = tmp_path / "cut.safetensors"
    for size in sorted({0, 3, 8, 20, 8 + header_len // 2, 8 + header_len, 8 + header_len + 5, len(data) - 1}):
        path.write_bytes(data[:size])
        _expect_model_file_error(path, "truncated", "exceeds", "not a valid", "corrupt")


def test_every_single_bit_flip_is_detected(tmp_path):
    data = _saved_bytes(tmp_path)
    header_len = int.from_bytes(data[:8], "little")
    assert 8 + header_len < len(data)
    path = tmp_path / "flipped.safetensors"
    regions = {"length": 0, "header": 0, "data": 0}
    for pos in range(len(data)):
        bits = range(8) if pos < 8 or pos >= 8 + header_len else [pos % 8]
        for bit in bits:
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            path.write_bytes(bytes(damaged))
            with pytest.raises(rk.ModelFileError) as info:
                rk.load(path)
            assert "flipped.safetensors" in str(info.value), (pos, bit, str(info.value))
            regions["length" if pos < 8 else "header" if pos < 8 + header_len else "data"] += 1
    assert min(regions.values()) > 0
    # the untouched bytes still load
    path.write_bytes(data)
    rk.load(path)


def test_bit_flip_messages(tmp_path):
    data = _saved_bytes(tmp_path)
    header_len = int.from_bytes(data[:8], "little")
    path = tmp_path / "f.safetensors"

    def flipped(pos, bit):
        d = bytearray(data)
        d[pos] ^= 1 << bit
        path.write_bytes(bytes(d))
        return path

    _expect_model_file_error(flipped(7, 7), "exceeds")                 # header length far too large
    _expect_model_file_error(flipped(len(data) - 3, 0), "checksum")    # tensor data
    crc_at = data.index(b"rnnkit.crc32") + len(b"rnnkit.crc32") + 5
    assert crc_at < 8 + header_len
    _expect_model_file_error(flipped(crc_at, 0), "checksum", "not a valid")


def test_random_empty_missing_and_foreign_files(tmp_path, rng):
    path = tmp_path / "random.safetensors"
    path.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    _expect_model_file_error(path)
    # random bytes behind a plausible length prefix
    path.write_bytes((100).to_bytes(8, "little") + rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    _expect_model_file_error(path, "not a valid")

    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    _expect_model_file_error(empty, "truncated")

    missing = tmp_path / "missing.safetensors"
    _expect_model_file_error(missing, "no such file")
    _expect_model_file_error(missing, "no such file", loader=rk.load_metadata)
    _expect_model_file_error(missing, "no such file", loader=rk.load_checkpoint)

    # a valid safetensors file that rnnkit did not write
    from safetensors.numpy import save_file
    foreign = tmp_path / "foreign.safetensors"
    save_file({"0.weight": np.zeros((2, 2), np.float32)}, str(foreign))
    _expect_model_file_error(foreign, "not an rnnkit file")


def test_wrong_kind(tmp_path):
    model = rk.Sequential([rk.GRU(2, 2, seed=1), rk.Dense(2, 1, seed=2)])
    ckpt = tmp_path / "ckpt.safetensors"
    rk.save_checkpoint(ckpt, model, rk.optim.SGD(model))
    msg = _expect_model_file_error(ckpt, "checkpoint")
    assert "model" in msg
    _expect_model_file_error(ckpt, "checkpoint", loader=rk.load_metadata)
    plain = tmp_path / "model.safetensors"
    rk.save(model, plain)
    _expect_model_file_error(plain, "checkpoint", loader=rk.load_checkpoint)


# --------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------

def test_save_leaves_no_temporary_files(tmp_path):
    model = rk.Sequential([rk.LSTM(2, 2, seed=1), rk.Dense(2, 1, seed=2)])
    rk.save(model, tmp_path / "a.safetensors")
    rk.save(model, tmp_path / "a.safetensors")  # overwrite
    rk.save_checkpoint(tmp_path / "c.safetensors", model, rk.optim.Adam(model), step=3)
    assert sorted(os.listdir(tmp_path)) == ["a.safetensors", "c.safetensors"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_keeps_previous_file(tmp_path, monkeypatch, rng, failing):
    path = tmp_path / "m.safetensors"
    model = rk.Sequential([rk.LSTM(2, 2, seed=1), rk.Dense(2, 1, seed=2)])
    rk.save(model, path, metadata={"version": 1})
    before = path.read_bytes()
    _perturb(model, rng)

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="disk on fire"):
        rk.save(model, path, metadata={"version": 2})
    with pytest.raises(OSError, match="disk on fire"):
        rk.save_checkpoint(tmp_path / "new_ckpt.safetensors", model)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert path.read_bytes() == before
    assert rk.load_metadata(path) == {"version": 1}


# --------------------------------------------------------------------------
# checkpoints: exact resume
# --------------------------------------------------------------------------

N_STEPS, K = 6, 3
TB, BB = 6, 5


def _dropout_model():
    return rk.Sequential([
        rk.LSTM(I, H, 2, dropout=0.3, recurrent_dropout=0.25, seed=21),
        rk.Dropout(0.4, seed=22),
        rk.LSTM(H, H, recurrent_dropout=0.2, peephole=True, seed=23),
        rk.LastStep(),
        rk.Dense(H, 2, seed=24),
    ])


def _batches():
    rng = np.random.default_rng(99)
    return [(rng.standard_normal((TB, BB, I)).astype(np.float32),
             rng.standard_normal((BB, 2)).astype(np.float32),
             rng.integers(1, TB + 1, BB)) for _ in range(N_STEPS)]


def _train(model, opt, batches):
    loss = rk.losses.MSE()
    values = []
    for x, y, lengths in batches:
        v, d = loss(model(x, lengths=lengths), y)
        model.backward(d)
        opt.step()
        model.zero_grad()
        values.append(v)
    return values


def test_checkpoint_resume_adam_is_bitwise_exact(tmp_path):
    batches = _batches()
    straight = _dropout_model()
    straight_opt = rk.optim.Adam(straight, lr=0.01, weight_decay=0.001)
    straight_losses = _train(straight, straight_opt, batches)

    first = _dropout_model()
    first_opt = rk.optim.Adam(first, lr=0.01, weight_decay=0.001)
    first_losses = _train(first, first_opt, batches[:K])
    path = tmp_path / "ckpt.safetensors"
    rk.save_checkpoint(path, first, first_opt, step=K, note="half way")
    del first, first_opt

    restored = rk.load_checkpoint(path)
    assert set(restored) == {"model", "optimizer", "extra"}
    assert restored["extra"] == {"step": K, "note": "half way"}
    model, opt = restored["model"], restored["optimizer"]
    assert isinstance(opt, rk.optim.Adam) and opt.model is model
    assert opt.step_count == K and opt.lr == 0.01 and opt.weight_decay == 0.001 and opt.betas == (0.9, 0.999)
    second_losses = _train(model, opt, batches[K:])

    assert first_losses + second_losses == straight_losses
    for name, p in straight.parameters().items():
        np.testing.assert_array_equal(model.parameters()[name], p, err_msg=name)
    # the masks really are random: without restoring the RNG counters the run differs
    assert len(set(straight_losses)) == len(straight_losses)


def test_checkpoint_resume_without_rng_state_would_differ():
    """Guards the exact-resume test above: the dropout masks do matter for the result."""
    batches = _batches()
    a, b = _dropout_model(), _dropout_model()
    _train(a, rk.optim.SGD(a, lr=0.01), batches[:1])
    _train(b, rk.optim.SGD(b, lr=0.01), batches[:1])
    b.rng_state = [0] * len(b.layers)  # back to the first masks
    la = _train(a, rk.optim.SGD(a, lr=0.01), batches[1:2])
    lb = _train(b, rk.optim.SGD(b, lr=0.01), batches[1:2])
    assert la != lb


def test_checkpoint_resume_sgd_into_existing_objects(tmp_path, rng):
    batches = _batches()
    straight = _dropout_model()
    straight_opt = rk.optim.SGD(straight, lr=0.02, momentum=0.9, nesterov=True)
    _train(straight, straight_opt, batches)

    first = _dropout_model()
    first_opt = rk.optim.SGD(first, lr=0.02, momentum=0.9, nesterov=True)
    _train(first, first_opt, batches[:K])
    path = tmp_path / "sgd.safetensors"
    rk.save_checkpoint(path, first, first_opt, step=K)

    model = _dropout_model()
    _perturb(model, rng)               # must be overwritten by the checkpoint
    model.rng_state = [5] * len(model.layers)
    opt = rk.optim.SGD(model, lr=0.5, momentum=0.9, nesterov=True)
    out = rk.load_checkpoint(path, model, opt)
    assert out["model"] is model and out["optimizer"] is opt and out["extra"] == {"step": K}
    assert opt.lr == 0.02 and opt.step_count == K
    assert set(opt.state) == set(model.parameters())
    assert all("momentum_buffer" in s for s in opt.state.values())
    _train(model, opt, batches[K:])

    for name, p in straight.parameters().items():
        np.testing.assert_array_equal(model.parameters()[name], p, err_msg=name)


def test_checkpoint_restores_scheduler_state(tmp_path):
    model = rk.Sequential([rk.GRU(2, 2, seed=1), rk.Dense(2, 1, seed=2)])
    opt = rk.optim.SGD(model, lr=1.0)
    sched = rk.optim.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    path = tmp_path / "s.safetensors"
    rk.save_checkpoint(path, model, opt, sched)

    opt2 = rk.optim.SGD(model, lr=1.0)
    sched2 = rk.optim.StepLR(opt2, step_size=2, gamma=0.5)
    rk.load_checkpoint(path, model, opt2, sched2)
    assert opt2.lr == opt.lr == 0.5
    sched.step()
    sched2.step()
    assert opt2.lr == opt.lr == 0.25


def test_load_checkpoint_rebuilds_gru_model(tmp_path, rng):
    model = rk.Sequential([rk.GRU(2, 3, seed=1), rk.LastStep(), rk.Dense(3, 1, seed=2)])
    opt = rk.optim.Adam(model)
    rk.save_checkpoint(tmp_path / "g.safetensors", model, opt)
    out = rk.load_checkpoint(tmp_path / "g.safetensors")
    x = rng.standard_normal((4, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(out["model"].predict(x), model.predict(x))


def _single_layer_checkpoint(path):
    layer = rk.LSTM(2, 3, seed=1)
    opt = rk.optim.Adam(layer, lr=0.01)
    y, _ = layer(np.ones((4, 2, 2), np.float32))
    layer.backward(np.ones_like(y))
    opt.step()
    rk.save_checkpoint(path, layer, opt, epoch=1)
    return layer, opt


def test_single_layer_checkpoint_into_existing_objects(tmp_path):
    layer, opt = _single_layer_checkpoint(tmp_path / "c.safetensors")
    layer2 = rk.LSTM(2, 3, seed=2)
    opt2 = rk.optim.Adam(layer2, lr=0.5)
    out = rk.load_checkpoint(tmp_path / "c.safetensors", layer2, opt2)
    assert out["extra"] == {"epoch": 1} and out["optimizer"] is opt2
    for k, v in layer.parameters().items():
        np.testing.assert_array_equal(layer2.parameters()[k], v)
        np.testing.assert_array_equal(opt2.state[k]["exp_avg"], opt.state[k]["exp_avg"])
    assert opt2.lr == 0.01 and opt2.step_count == 1


def test_single_layer_checkpoint_rebuilt_from_file(tmp_path):
    layer, opt = _single_layer_checkpoint(tmp_path / "c.safetensors")
    out = rk.load_checkpoint(tmp_path / "c.safetensors")
    assert type(out["model"]) is type(layer), "a checkpoint of a bare layer gives back a bare layer"
    assert out["optimizer"].step_count == 1
    for k, v in layer.parameters().items():
        np.testing.assert_array_equal(out["model"].parameters()[k], v)
        np.testing.assert_array_equal(out["optimizer"].state[k]["exp_avg"], opt.state[k]["exp_avg"])
