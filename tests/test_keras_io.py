"""Keras in and out: a Keras 3 model (torch backend) with random weights gives the same predictions as its import
(live model and .keras file, read without Keras), to 1e-5, for every layer kind and option; to_keras round trips."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

L = keras.layers
# Keras 3.x on torch converts torch tensors with an __array__ lacking numpy 2's copy keyword (inside Keras)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def randomize(model, rng):
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in ws])
    return model


MODELS = {
    "lstm-seq": lambda: [L.LSTM(5, return_sequences=True)],
    "lstm-last-acts": lambda: [L.LSTM(5, activation="relu", recurrent_activation="hard_sigmoid"), L.Dense(2)],
    "gru-reset-after": lambda: [L.GRU(4, return_sequences=True)],
    "gru-cho": lambda: [L.GRU(4, reset_after=False, return_sequences=True)],
    "simple-rnn": lambda: [L.SimpleRNN(6, activation="relu"), L.Dense(3, activation="softmax")],
    "bidir-concat-last": lambda: [L.Bidirectional(L.LSTM(4)), L.Dropout(0.3), L.Dense(2, activation="tanh")],
    "bidir-sum": lambda: [L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum")],
    "bidir-mul": lambda: [L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="mul")],
    "bidir-ave-stack": lambda: [L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
                                L.LSTM(4)],
}


@pytest.mark.parametrize("name", list(MODELS))
def test_import_predicts_like_keras_live_and_from_file(name, tmp_path, rng):
    model = randomize(keras.Sequential([keras.Input((7, 3))] + MODELS[name]()), rng)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0))
    for source in (model, tmp_path / "m.keras"):
        if not isinstance(source, keras.Model):
            model.save(source)
            source = str(source)
        ours = rk.from_keras(source)
        np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-5)


def test_mask_zero_embeddings_become_lengths(tmp_path, rng):
    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(12, 4, mask_zero=True)(inp)
    h = L.Bidirectional(L.LSTM(5))(h)
    out = L.Dense(2)(h)
    model = randomize(keras.Model(inp, out), rng)
    tokens = rng.integers(1, 12, (5, 8))
    for b, n in enumerate([8, 3, 5, 1, 6]):
        tokens[b, n:] = 0  # right padding
    expected = np.asarray(model.predict(tokens, verbose=0))
    model.save(tmp_path / "m.keras")
    for source in (model, str(tmp_path / "m.keras")):
        ours = rk.from_keras(source)
        np.testing.assert_allclose(ours.predict(tokens), expected, rtol=1e-5, atol=1e-5)  # no lengths passed


def test_to_keras_round_trip(rng):
    ours = rk.Sequential([rk.LSTM(3, 5, bidirectional=True, batch_first=True, seed=1, merge_mode="ave"),
                          rk.GRU(5, 4, batch_first=True, seed=2), rk.LastStep(), rk.Dense(4, 2, seed=3)])
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    km = rk.to_keras(ours)
    np.testing.assert_allclose(np.asarray(km.predict(x, verbose=0)), ours.predict(x), rtol=1e-5, atol=1e-5)


def test_unsupported_layers_and_options_are_named(rng):
    model = keras.Sequential([keras.Input((5, 2)), L.Conv1D(2, 2)])
    with pytest.raises(ValueError, match="Conv1D"):
        rk.from_keras(model)
    model = keras.Sequential([keras.Input((5, 2)), L.LSTM(3, go_backwards=True)])
    with pytest.raises(ValueError, match="go_backwards"):
        rk.from_keras(model)
    with pytest.raises(ValueError, match="peephole"):
        rk.to_keras(rk.Sequential([rk.LSTM(2, 3, peephole=True, batch_first=True)]))


def test_cli_converts_between_formats(tmp_path, rng):
    import subprocess
    import sys
    model = rk.Sequential([rk.LSTM(3, 4, batch_first=True, bidirectional=True, seed=1), rk.LastStep(),
                           rk.Dense(8, 2, seed=2)])
    model.save(tmp_path / "m.safetensors")
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    chain = ["m.safetensors", "m.onnx", "back.safetensors", "m.keras", "again.safetensors"]
    for a, b in zip(chain, chain[1:]):
        done = subprocess.run([sys.executable, "-m", "rnnkit", "convert", str(tmp_path / a), str(tmp_path / b)],
                              capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND="torch"))
        assert done.returncode == 0, done.stderr
    for name in ("back.safetensors", "again.safetensors"):
        np.testing.assert_allclose(rk.load(tmp_path / name).predict(x), model.predict(x), rtol=1e-5, atol=1e-6)
    bad = subprocess.run([sys.executable, "-m", "rnnkit", "convert", str(tmp_path / "m.safetensors"),
                          str(tmp_path / "m.txt")], capture_output=True, text=True)
    assert bad.returncode == 2 and ".txt" in bad.stderr


def test_a_damaged_keras_file_is_a_value_error(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="bad.keras"):
        rk.from_keras(str(tmp_path / "bad.keras"))
