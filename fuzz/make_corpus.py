"""Writes the seed corpora of the fuzz harnesses (fuzz/corpus/): small real model files of every layer kind the
C++ Model reads, and the JSON of their headers and configs. Run from the repository root:
python fuzz/make_corpus.py"""
import json
import os

import numpy as np

import rnnkit as rk

HERE = os.path.dirname(os.path.abspath(__file__))
models = {
    "lstm": rk.Sequential([rk.LSTM(2, 3, seed=0), rk.LastStep(), rk.Dense(3, 1, seed=1)]),
    "lstm_variants": rk.Sequential([rk.LSTM(2, 4, num_layers=2, peephole=True, proj_size=2, seed=0)]),
    "gru_bidir": rk.Sequential([rk.GRU(2, 3, bidirectional=True, merge_mode="sum", linear_before_reset=False, seed=0)]),
    "rnn_embedding": rk.Sequential([rk.Embedding(5, 2, mask_zero=True, seed=0), rk.RNN(2, 3, nonlinearity="relu", seed=1),
                                    rk.Dropout(0.1), rk.Dense(3, 2, activation="softmax", seed=2)]),
    "layer_norm": rk.Sequential([rk.LSTM(2, 3, layer_norm=True, seed=0)]),
    "indrnn": rk.Sequential([rk.IndRNN(2, 3, recurrent_clip=1.0, seed=0)]),
    "slstm": rk.Sequential([rk.sLSTM(2, 4, num_heads=2, seed=0)]),
    "mlstm": rk.Sequential([rk.mLSTM(2, 4, num_heads=2, seed=0)]),
    "mingru": rk.Sequential([rk.minGRU(2, 3, num_layers=2, seed=0), rk.minLSTM(3, 2, seed=1)]),
}
for name, model in models.items():
    path = os.path.join(HERE, "corpus", "model_load", name + ".safetensors")
    rk.save(model, path, metadata={"note": name})
    with open(path, "rb") as f:
        data = f.read()
    header = data[8:8 + int.from_bytes(data[:8], "little")]
    with open(os.path.join(HERE, "corpus", "json", name + "_header.json"), "wb") as f:
        f.write(header)
    with open(os.path.join(HERE, "corpus", "json", name + "_config.json"), "w") as f:
        f.write(json.dumps(model.get_config()))
print(f"{len(models)} model files and {2 * len(models)} JSON texts in fuzz/corpus/")

# Regression inputs: files that once made a harness fail (run by fuzz/run.sh before fuzzing).
# nan_weights: NaN parameters made fast_exp convert NaN to an integer (undefined behaviour; found by the fuzzer).
os.makedirs(os.path.join(HERE, "regressions", "model_load"), exist_ok=True)
nan_model = rk.Sequential([rk.LSTM(2, 3, seed=0), rk.LastStep(), rk.Dense(3, 1, seed=1)])
nan_model.layers[0].parameters()["weight_ih_l0"][0, 0] = float("nan")
rk.save(nan_model, os.path.join(HERE, "regressions", "model_load", "nan_weights.safetensors"))

# Seeds of the Python loaders' harnesses (fuzz/python/fuzz_loaders.py): checkpoints with optimizer state, ONNX
# exports and a .keras file (when Keras is installed). rk.load and rk.load_metadata start from model_load's files.
os.makedirs(os.path.join(HERE, "corpus", "python_checkpoint"), exist_ok=True)
for name, opt in [("adam", lambda m: rk.optim.Adam(m, lr=0.01)), ("sgd", lambda m: rk.optim.SGD(m, lr=0.1, momentum=0.9))]:
    model = rk.Sequential([rk.GRU(2, 3, seed=0), rk.LastStep(), rk.Dense(3, 1, seed=1)])
    optimizer = opt(model)
    model.fit(np.ones((5, 4, 2), np.float32), np.zeros((4, 1), np.float32), batch_size=2, optimizer=optimizer,
              loss="mse", verbose=0, seed=0)
    rk.save_checkpoint(os.path.join(HERE, "corpus", "python_checkpoint", name + ".safetensors"), model, optimizer,
                       epoch=3)
os.makedirs(os.path.join(HERE, "corpus", "python_onnx"), exist_ok=True)
models["lstm"].export_onnx(os.path.join(HERE, "corpus", "python_onnx", "lstm.onnx"))
rk.Sequential([rk.GRU(2, 3, num_layers=2, bidirectional=True, seed=0)]).export_onnx(
    os.path.join(HERE, "corpus", "python_onnx", "gru_bidir.onnx"))
try:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras_model = rk.to_keras(rk.Sequential([rk.LSTM(2, 3, batch_first=True, seed=0), rk.LastStep(),
                                             rk.Dense(3, 1, seed=1)]))
    os.makedirs(os.path.join(HERE, "corpus", "python_keras"), exist_ok=True)
    keras_model.save(os.path.join(HERE, "corpus", "python_keras", "lstm.keras"))
except ImportError:
    print("keras not installed: no .keras seed")
