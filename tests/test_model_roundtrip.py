"""Every registered layer kind through both file paths: Python get_config -> save -> C++ load -> C++ save ->
Python load gives the same config, the same parameters and identical predictions (C++ Model.predict included).
The layer kinds come from the C++ registry (`_core.model_layer_classes()`), the recurrent cells from
`_core.cell_kinds()`, so a kind added there without an example here fails `test_every_layer_kind_has_an_example`.
"""
import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _backend
from rnnkit.module import layer_class

CORE = _backend.core
T, B, I, H = 6, 3, 4, 5


# A value other than the default for every option a registered cell lists (a new option needs one here).
OPTION_VALUES = {"peephole": True, "linear_before_reset": False, "activation": "softsign",
                 "recurrent_activation": ("hard_sigmoid", 0.2, 0.5), "cell_clip": 0.7, "input_gate": False,
                 "forget_gate": False, "output_gate": False, "input_activation": False, "output_activation": False,
                 "coupled_input_forget": True, "zoneout": 0.3, "zoneout_cell": 0.2, "nonlinearity": ("elu", 0.5),
                 "recurrent_clip": 0.8, "proj_size": 3,
                 "layer_norm": True, "full_gate_recurrence": True, "num_heads": 5}


def stacked(layer):
    return rk.Sequential([layer, rk.LastStep(), rk.Dense(layer.output_size, 2, activation="tanh", seed=4)])


def recurrent_examples():
    """(id, builder) per registered cell and option value, and per merge mode; builders return a Sequential."""
    out = []
    for cell in CORE.cell_kinds():
        cls = layer_class(cell["layer_class"])
        kwargs = {"nonlinearity": cell["nonlinearity"]} if cell["nonlinearity"] else {}
        if "num_heads" in cell["options"]:
            kwargs["num_heads"] = 1  # (H = 5: the default of 4 heads does not divide it)
        for option in [None, *cell["options"]]:
            options = dict(kwargs)
            if option:
                options[option] = OPTION_VALUES[option]
            label = cell["name"] + (f"-{option}" if option else "")
            out.append((label, cell["layer_class"], lambda cls=cls, options=options: stacked(
                cls(I, H, num_layers=2, bidirectional=True, seed=3, l2=1e-4, **options))))
    for mode in ("sum", "mul", "ave"):
        out.append((f"lstm-merge-{mode}", "LSTM", lambda mode=mode: rk.Sequential([
            rk.LSTM(I, H, num_layers=2, bidirectional=True, merge_mode=mode, seed=3),
            rk.LastStep(), rk.Dense(H, 2, seed=4)])))
    return out


EXAMPLES = recurrent_examples() + [
    ("dense", "Dense", lambda: rk.Sequential([rk.Dense(I, 3, activation="relu", seed=1, l1=1e-3),
                                              rk.Dense(3, 2, bias=False, seed=2)])),
    ("dropout", "Dropout", lambda: rk.Sequential([rk.GRU(I, H, batch_first=True, seed=5), rk.Dropout(0.25, seed=1),
                                                  rk.Dense(H, 2, seed=6)])),
    ("last-step", "LastStep", lambda: rk.Sequential([rk.LSTM(I, H, seed=2), rk.LastStep(), rk.Dense(H, 1, seed=3)])),
    ("embedding", "Embedding", lambda: rk.Sequential([rk.Embedding(11, I, seed=9), rk.LSTM(I, H, seed=1),
                                                      rk.Dense(H, 2, activation="softmax", seed=2)])),
]


def test_every_layer_kind_has_an_example():
    covered = {cls for _, cls, _ in EXAMPLES}
    assert set(CORE.model_layer_classes()) <= covered, "a registered layer kind has no round-trip example"


def inputs(model, rng):
    first = model.layers[0]
    if isinstance(first, rk.Embedding):
        return rng.integers(0, first.num_embeddings, size=(T, B))
    batch_first = any(getattr(layer, "batch_first", False) for layer in model.layers if layer.is_recurrent)
    return rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)


@pytest.mark.parametrize("label,cls,build", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_python_cpp_python_round_trip(label, cls, build, tmp_path, rng):
    model = build()
    assert cls in [type(layer).__name__ for layer in model.layers]
    x = inputs(model, rng)
    lengths = np.array([T, 2, 4]) if not isinstance(model.layers[0], rk.Embedding) else None
    expected = model.seq_forward(x, lengths=lengths, training=False)

    first, second = tmp_path / "python.safetensors", tmp_path / "cpp.safetensors"
    model.save(first, metadata={"note": "round trip"})
    cpp = CORE.Model.load(str(first))
    cpp.save(str(second))
    again = rk.load(second)

    assert again.get_config() == model.get_config()
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(again.parameters()[name], value, err_msg=name)
    np.testing.assert_array_equal(again.seq_forward(x, lengths=lengths, training=False), expected)
    x_cpp = x.astype(np.float32)
    got = cpp.predict(x_cpp[..., None] if x_cpp.ndim == 2 else x_cpp, lengths)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)
    assert rk.load_metadata(second) == {"note": "round trip"}


STREAMABLE = [e for e in EXAMPLES if e[1] in {c["layer_class"] for c in CORE.cell_kinds()}]


@pytest.mark.parametrize("label,cls,build", STREAMABLE, ids=[e[0] for e in STREAMABLE])
def test_cpp_streaming_equals_python(label, cls, build, tmp_path, rng):
    """Every recurrent variant, unidirectional: the C++ Model fed one step at a time (new_state/step) gives
    the Python layer's outputs at every step, and after the last step the Python Sequential's prediction."""
    layer = build().layers[0]
    config = dict(layer.get_config(), bidirectional=False, merge_mode="concat")
    uni = type(layer).from_config(config)
    model = rk.Sequential([uni, rk.Dense(uni.output_size, 2, seed=4)])
    path = tmp_path / "m.safetensors"
    model.save(path)
    cpp = CORE.Model.load(str(path))
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    np.testing.assert_allclose(cpp.stream(x), model.predict(x), rtol=2e-5, atol=2e-6)
