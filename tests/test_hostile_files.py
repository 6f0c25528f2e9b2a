"""Hostile model files and checkpoints (issue: reliability and security): a file that passes the checksum (an
attacker computes it) but declares absurd sizes, nests JSON deeply or carries malformed optimizer state fails
with ModelFileError, quickly and before anything large is allocated."""
import json
import pathlib
import time

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import io as rio


def rewrite(src, dst, kind, **changes):
    """dst = src with metadata entries replaced (None deletes), the checksum recomputed."""
    tensors, meta = rio._read(src, kind)
    meta = {k: v for k, v in meta.items() if k not in ("rnnkit.crc32", "rnnkit.format")}
    for key, value in changes.items():
        key = "rnnkit." + key
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    with open(dst, "wb") as f:
        f.write(rio._serialize(tensors, meta))


@pytest.fixture
def saved(tmp_path):
    model = rk.Sequential([rk.LSTM(2, 4, seed=0), rk.Dense(4, 1, seed=1)])
    path = tmp_path / "ok.safetensors"
    rk.save(model, path)
    opt = rk.optim.Adam(model)
    ckpt = tmp_path / "ckpt.safetensors"
    rk.save_checkpoint(ckpt, model, opt, epoch=1)
    config = json.loads(rio._read(path, "model")[1]["rnnkit.model"])
    return path, ckpt, config


def sized(config, layer, key, value):
    config = json.loads(json.dumps(config))
    config["layers"][layer]["config"][key] = value
    return config


@pytest.mark.parametrize("layer,key,value", [(0, "num_layers", 1_000_000), (0, "hidden_size", 10 ** 9),
                                             (0, "input_size", 10 ** 12), (1, "in_features", 10 ** 12),
                                             (0, "num_layers", 2 ** 70)])
def test_absurd_sizes_fail_fast(saved, tmp_path, layer, key, value):
    path, _, config = saved
    bad = tmp_path / "bad.safetensors"
    rewrite(path, bad, "model", model=sized(config, layer, key, value))
    start = time.perf_counter()
    with pytest.raises(rk.ModelFileError, match="declares at least"):
        rk.load(bad)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("entry", ["model", "user"])
def test_deep_json_is_a_model_file_error(saved, tmp_path, entry):
    path, _, _ = saved
    bad = tmp_path / "deep.safetensors"
    rewrite(path, bad, "model", **{entry: "[" * 5000 + "]" * 5000})
    with pytest.raises(rk.ModelFileError, match="nested 5000 deep"):
        rk.load(bad) if entry == "model" else rk.load_metadata(bad)
    rewrite(path, bad, "model", **{entry: '{"a": "[[[[\\"]]]"}'})  # brackets inside strings do not count
    if entry == "user":
        assert rk.load_metadata(bad) == {"a": '[[[["]]]'}


OPTIMIZER = {"class": "Adam", "hyperparameters": {"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
             "lr": 0.001, "step_count": 0}


@pytest.mark.parametrize("change", [
    dict(optimizer={**OPTIMIZER, "class": "SGD"}),                       # SGD with Adam's betas
    dict(optimizer={k: v for k, v in OPTIMIZER.items() if k != "lr"}),   # a missing key
    dict(optimizer={**OPTIMIZER, "step_count": "inf"}),
    dict(optimizer='{"class": "Adam", "hyperparameters": {}, "lr": 1e999, "step_count": 1e999}'),
    dict(optimizer={**OPTIMIZER, "class": "__class__"}),
    dict(optimizer=[1, 2]),
    dict(rng=[-1, 2]), dict(rng={"a": 1}), dict(rng=[2 ** 70, 0]),
    dict(extra="{"), dict(model=None), dict(scheduler=None, optimizer="null"),
], ids=["sgd-betas", "missing-lr", "step-inf-string", "overflow", "dunder-class", "list", "rng-negative",
        "rng-dict", "rng-huge", "extra-json", "no-model", "optimizer-null"])
def test_malformed_checkpoints_are_model_file_errors(saved, tmp_path, change):
    _, ckpt, _ = saved
    bad = tmp_path / "bad.safetensors"
    rewrite(ckpt, bad, "checkpoint", **change)
    with pytest.raises(rk.ModelFileError):
        rk.load_checkpoint(bad)


def test_good_files_still_load(saved):
    path, ckpt, _ = saved
    assert rk.load(path).predict(np.zeros((3, 2, 2), np.float32)).shape == (3, 2, 1)
    state = rk.load_checkpoint(ckpt)
    assert state["extra"] == {"epoch": 1} and type(state["optimizer"]).__name__ == "Adam"


def test_dtype_strings_are_names_never_parsed(saved, tmp_path):
    """np.dtype evaluates comma strings as structured types; a config's dtype is looked up by name instead."""
    path, _, config = saved
    config["layers"][0]["config"]["dtype"] = "3f4,(2,)i4"
    bad = tmp_path / "dtype.safetensors"
    rewrite(path, bad, "model", model=config)
    with pytest.raises(rk.ModelFileError, match="dtype"):
        rk.load(bad)
    with pytest.raises(ValueError, match="dtype"):
        rk.LSTM(2, 3, dtype=",")


REGRESSIONS = sorted((pathlib.Path(__file__).parent.parent / "fuzz" / "regressions").glob("python_*/*"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[f"{p.parent.name}/{p.name}" for p in REGRESSIONS])
def test_python_fuzzer_findings_are_refused_cleanly(path, monkeypatch):
    """Inputs that once made fuzz/python/fuzz_loaders.py fail (its checksum bypass included) now load or raise
    ModelFileError."""
    monkeypatch.setattr(rio, "_checksum", lambda metadata, tensors: metadata.get("rnnkit.crc32"))
    loader = {"python_checkpoint": rk.load_checkpoint, "python_load": rk.load, "python_onnx": rk.from_onnx,
              "python_keras": rk.from_keras}[path.parent.name]
    try:
        loader(path)
    except rk.ModelFileError:
        pass
