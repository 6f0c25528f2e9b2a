"""The layer protocol of rnnkit.module: the class registry, get_config / from_config, declared attributes.

* Registry: every concrete layer class registers under its class name (abstract bases and private classes do
  not); `registry()` is a copy; `layer_class` raises ValueError naming the unknown class and listing the known
  ones. A user's layer class registers too and then loads from a config; a second class of a taken name is
  refused.
* from_config(get_config()) rebuilds every layer kind with the same config and (same seed) the same parameters,
  and a Sequential with the same predictions; get_config covers every constructor argument.
* Malformed configs raise TypeError / ValueError naming the layer index and the problem (ModelFileError from a
  model file).
* Declared attributes replace class-name checks: `is_recurrent`, `reduces_time`, `dtype` (None for LastStep) and
  the `setup(previous)` hook; a user layer that declares `reduces_time` is treated like LastStep.
* regularization_loss is the value regularize() returns, computed without touching the gradients.
"""

import inspect

import numpy as np
import pytest

import rnnkit as rk
import rnnkit.module as rkm

T, B, I, H = 5, 3, 4, 6
LAYER_NAMES = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "Dense", "Embedding", "Dropout", "LastStep",
               "Sequential"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Classes defined by a test register into a copy that is dropped afterwards."""
    monkeypatch.setattr(rkm, "_REGISTRY", dict(rkm._REGISTRY))


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

def test_every_layer_class_is_registered_under_its_name():
    classes = rkm.registry()
    for name in LAYER_NAMES:
        assert classes[name] is getattr(rk, name)
        assert rkm.layer_class(name) is getattr(rk, name)
    for base in ("Module", "NamedSlabs", "SlabModule", "CoreModule", "_Recurrent", "_SingleState", "_Cell"):
        assert base not in classes


def test_registry_returns_a_copy():
    classes = rkm.registry()
    classes.pop("LSTM")
    classes["Bogus"] = int
    assert rkm.registry()["LSTM"] is rk.LSTM and "Bogus" not in rkm.registry()


def test_layer_class_errors():
    with pytest.raises(ValueError) as info:
        rkm.layer_class("Transformer")
    msg = str(info.value)
    assert "name" in msg and "'Transformer'" in msg and "LSTM" in msg and "Dense" in msg
    with pytest.raises(TypeError, match=r"name: expected a layer class name \(str\), got type"):
        rkm.layer_class(rk.LSTM)


class _Scale(rkm.Module):
    """Multiplies by a constant (test layer; private name: not registered)."""

    def __init__(self, factor=2.0):
        self.factor = factor

    def get_config(self):
        return {"factor": self.factor}

    def seq_forward(self, x, lengths=None, training=True):
        return np.asarray(x) * self.factor

    def seq_backward(self, dout):
        return dout * self.factor


def test_user_layers_register_and_load_from_a_config(scratch_registry):
    assert "_Scale" not in rkm.registry()

    class Scale(_Scale):
        pass

    assert rkm.layer_class("Scale") is Scale
    config = {"layers": [{"class": "Dense", "config": rk.Dense(I, 2, seed=1).get_config()},
                         {"class": "Scale", "config": {"factor": 3.0}}]}
    model = rk.Sequential.from_config(config)
    assert isinstance(model.layers[1], Scale) and model.layers[1].factor == 3.0
    assert model.get_config() == config
    x = np.ones((2, I), np.float32)
    np.testing.assert_array_equal(model.predict(x), 3.0 * model.layers[0].seq_forward(x, training=False))


def test_a_taken_name_keeps_its_class(scratch_registry):
    class Dense(rk.Dense):  # a user's subclass of the same name is a working class, not registered
        pass

    assert rkm.layer_class("Dense") is rk.Dense and Dense is not rk.Dense
    assert Dense(2, 3, seed=0).get_config()["in_features"] == 2

    class Dense(rk.Dense, register=False):  # noqa: F811 - the point of the test
        pass

    assert rkm.layer_class("Dense") is rk.Dense and Dense is not rk.Dense

    # the same class defined again (as on a module reload) replaces itself
    made = []
    for _ in range(2):
        class Twice(_Scale):
            pass
        made.append(Twice)
    assert rkm.layer_class("Twice") is made[1]


# --------------------------------------------------------------------------
# get_config / from_config
# --------------------------------------------------------------------------

LAYERS = {
    "lstm": lambda: rk.LSTM(I, H, 2, bidirectional=True, peephole=True, dropout=0.25, recurrent_dropout=0.1,
                            batch_first=True, l1=0.01, l2=0.02, kernel_init="glorot_uniform",
                            recurrent_init="orthogonal", forget_bias=1.0, dtype="float64"),
    "gru": lambda: rk.GRU(I, H, linear_before_reset=False, bias=False, seed=3),
    "rnn": lambda: rk.RNN(I, H, 3, nonlinearity="relu", recurrent_init="orthogonal", seed=4, dtype=np.float64),
    "lstm_cell": lambda: rk.LSTMCell(I, H, peephole=True, seed=5),
    "gru_cell": lambda: rk.GRUCell(I, H, linear_before_reset=False, bias=False, dtype="float64"),
    "rnn_cell": lambda: rk.RNNCell(I, H, nonlinearity="relu", seed=6),
    "dense": lambda: rk.Dense(I, 3, "softmax", bias=False, l1=0.5, seed=7, dtype="float64"),
    "embedding": lambda: rk.Embedding(11, 5, l2=0.1),
    "dropout": lambda: rk.Dropout(0.3, seed=8, dtype="float64"),
    "last_step": lambda: rk.LastStep(directions=2, batch_first=True),
}


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_layer_from_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer) and clone is not layer
    assert clone.get_config() == config
    params = layer.parameters()
    assert clone.parameters().keys() == params.keys()
    for name, p in params.items():  # the seed is part of the config: the same initial parameters
        np.testing.assert_array_equal(clone.parameters()[name], p, err_msg=name)
    # the config covers every constructor argument
    assert set(config) == set(inspect.signature(type(layer)).parameters)


def test_every_registered_layer_kind_is_round_tripped():
    kinds = {type(make()).__name__ for make in LAYERS.values()} | {"Sequential"}
    assert kinds == set(LAYER_NAMES)


def _models():
    return [
        rk.Sequential([rk.LSTM(I, H, 2, dropout=0.2, batch_first=True), rk.LastStep(), rk.Dense(H, 2, "tanh")]),
        rk.Sequential([rk.Embedding(9, I), rk.GRU(I, H, bidirectional=True, recurrent_dropout=0.1), rk.LastStep(),
                       rk.Dropout(0.3), rk.Dense(2 * H, 3, "softmax", l2=0.01)]),
        rk.Sequential([rk.RNN(I, H, nonlinearity="relu", dtype="float64"), rk.Dense(H, 1, dtype="float64")]),
    ]


def _inputs(model, rng):
    if isinstance(model.layers[0], rk.Embedding):
        return rng.integers(0, 9, (T, B))
    x = rng.standard_normal((B, T, I) if model.layers[0].batch_first else (T, B, I))
    return x.astype(model.dtype)


@pytest.mark.parametrize("index", range(3))
def test_sequential_from_config_round_trip(index, rng):
    model = _models()[index]
    config = model.get_config()
    clone = rk.Sequential.from_config(config)
    assert clone.get_config() == config
    x = _inputs(model, rng)
    # same seeds (drawn once, kept in the config): the same parameters, hence the same predictions
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    # and once the parameters differ, copying them over gives the same predictions again
    for p in model.parameters().values():
        p += rng.uniform(-0.1, 0.1, p.shape).astype(p.dtype)
    assert np.abs(clone.predict(x) - model.predict(x)).max() > 1e-4
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_from_config_takes_the_dict_get_config_returns_not_a_copy_of_the_model():
    model = _models()[0]
    with pytest.raises(TypeError, match=r"config: expected a dict"):
        rk.Sequential.from_config(model)
    with pytest.raises(TypeError, match=r"config: expected a dict of LSTM constructor arguments, got list"):
        rk.LSTM.from_config([I, H])


def _dense_spec():
    return {"class": "Dense", "config": {"in_features": 2, "out_features": 1}}


MALFORMED = [
    ([], TypeError, ["config: expected a dict", "list"]),
    ({}, ValueError, ["config: expected exactly the key 'layers'"]),
    ({"layers": [_dense_spec()], "optimizer": "adam"}, ValueError, ["'layers'", "'optimizer'"]),
    ({"layers": _dense_spec()}, TypeError, ["config['layers']: expected a list", "dict"]),
    ({"layers": []}, ValueError, ["config['layers']: expected at least one layer"]),
    ({"layers": [_dense_spec(), "Dense"]}, TypeError, ["config['layers'][1]: expected a dict", "str"]),
    ({"layers": [{"class": "Dense"}]}, ValueError, ["config['layers'][0]: expected the keys 'class' and 'config'"]),
    ({"layers": [{"class": 3, "config": {}}]}, TypeError, ["config['layers'][0]['class']: expected a layer class",
                                                           "int 3"]),
    ({"layers": [_dense_spec(), {"class": "Attention", "config": {}}]}, ValueError,
     ["config['layers'][1]['class']: unknown layer class 'Attention'", "'LSTM'", "'LastStep'"]),
    ({"layers": [{"class": "Dense", "config": [2, 1]}]}, TypeError,
     ["config['layers'][0] (Dense): config: expected a dict of Dense constructor arguments, got list"]),
    ({"layers": [{"class": "Dense", "config": {"in_features": 2}}]}, ValueError,
     ["config['layers'][0] (Dense): config: missing key(s) ['out_features']"]),
    ({"layers": [{"class": "Dense", "config": {"in_features": 2, "out_features": 1, "units": 4}}]}, ValueError,
     ["config['layers'][0] (Dense): config: unexpected key(s) ['units']", "in_features"]),
    ({"layers": [_dense_spec(), {"class": "LSTM", "config": {"input_size": 1, "hidden_size": 0}}]}, ValueError,
     ["config['layers'][1] (LSTM): hidden_size: expected a positive integer, got 0"]),
    ({"layers": [{"class": "LSTM", "config": {"input_size": 1, "hidden_size": 2, "dtype": "int8"}}]}, ValueError,
     ["config['layers'][0] (LSTM): dtype: expected 'float32' or 'float64', got 'int8'"]),
    ({"layers": [{"class": "LSTMCell", "config": {"input_size": 1, "hidden_size": 2}}]}, TypeError,
     ["layers[0]: expected an rnnkit layer, got LSTMCell"]),
]


@pytest.mark.parametrize("config,error,pieces", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_configs(config, error, pieces):
    with pytest.raises(error) as info:
        rk.Sequential.from_config(config)
    assert type(info.value) is error
    for piece in pieces:
        assert piece in str(info.value), (piece, str(info.value))


def test_model_files_wrap_config_errors(tmp_path):
    config = {"layers": [{"class": "Attention", "config": {}}]}
    with pytest.raises(rk.ModelFileError) as info:
        rk.io.model_from_config(config, "m.safetensors")
    msg = str(info.value)
    assert msg.startswith("m.safetensors: model config:") and "config['layers'][0]['class']" in msg
    assert "'Attention'" in msg
    good = _models()[0]
    assert rk.io.model_from_config(good.get_config()).get_config() == good.get_config()


# --------------------------------------------------------------------------
# declared attributes instead of class-name checks
# --------------------------------------------------------------------------

def test_declared_attributes():
    for make in LAYERS.values():
        layer = make()
        recurrent = isinstance(layer, (rk.LSTM, rk.GRU, rk.RNN))
        assert layer.is_recurrent is recurrent, type(layer).__name__
        assert layer.reduces_time is isinstance(layer, rk.LastStep), type(layer).__name__
        if isinstance(layer, rk.LastStep):
            assert layer.dtype is None
        else:
            assert layer.dtype in (np.dtype(np.float32), np.dtype(np.float64))
        if recurrent:
            assert {"batch_first", "num_directions", "hidden_size"} <= set(vars(layer))
    model = _models()[0]
    assert not model.is_recurrent and not model.reduces_time and model.dtype == np.float32


def test_setup_hook():
    rkm.Module().setup(None)  # the default does nothing
    last = rk.LastStep()
    rk.Sequential([rk.Dense(I, I), rk.GRU(I, H, bidirectional=True, batch_first=True), rk.Dense(2 * H, 2 * H), last])
    assert (last.directions, last.batch_first) == (2, True)  # the nearest recurrent layer before it
    explicit = rk.LastStep(directions=1, batch_first=False)
    explicit.setup(rk.LSTM(I, H, bidirectional=True, batch_first=True))
    assert (explicit.directions, explicit.batch_first) == (1, False)  # given values stay
    alone = rk.LastStep()
    rk.Sequential([alone])
    assert (alone.directions, alone.batch_first) == (None, None)


class _MeanOverTime(rkm.Module):
    """(T, B, F) -> (B, F): declares reduces_time as LastStep does (test layer)."""

    reduces_time = True

    def get_config(self):
        return {}

    def seq_forward(self, x, lengths=None, training=True):
        return np.asarray(x).mean(axis=0)

    def seq_backward(self, dout):
        raise NotImplementedError


def test_a_layer_declaring_reduces_time_gives_per_sequence_outputs(rng):
    lstm = rk.LSTM(I, H, seed=2, dtype="float64")
    model = rk.Sequential([lstm, _MeanOverTime()])
    x = rng.standard_normal((T, 5, I))  # 5 sequences along axis 1 (batch_first=False)
    out = model.predict(x, batch_size=2)  # batches are joined along the output's batch axis, 0
    assert out.shape == (5, H)
    y, _ = lstm(x, training=False)
    np.testing.assert_allclose(out, y.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert model.evaluate(x, np.zeros((5, H)), batch_size=2) == pytest.approx(np.mean(out ** 2), rel=1e-12)


def test_sequential_requires_layers():
    with pytest.raises(TypeError, match=r"layers: expected a list of rnnkit layers, got int"):
        rk.Sequential(5)
    with pytest.raises(TypeError, match=r"layers\[1\]: expected an rnnkit layer, got function"):
        rk.Sequential([rk.Dense(2, 2), lambda x: x])


# --------------------------------------------------------------------------
# regularization_loss
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regularization_loss_leaves_gradients_alone(dtype):
    model = rk.Sequential([rk.Embedding(7, I, l1=0.01, seed=1, dtype=dtype),
                           rk.Sequential([rk.GRU(I, H, l2=0.03, seed=2, dtype=dtype)]), rk.LastStep(),
                           rk.Dense(H, 2, l1=0.02, l2=0.04, seed=3, dtype=dtype)])
    model.zero_grad()
    value = model.regularization_loss()
    assert isinstance(value, float) and value > 0
    assert all(not g.any() for g in model.grads.values())
    expected = 0.0
    for layer, (l1, l2) in ((model.layers[0], (0.01, 0.0)), (model.layers[1].layers[0], (0.0, 0.03)),
                            (model.layers[3], (0.02, 0.04))):
        for name, w in layer.parameters().items():
            if name.startswith("weight"):
                w = w.astype(np.float64)
                expected += l1 * np.abs(w).sum() + l2 * (w * w).sum()
    assert value == pytest.approx(expected, rel=1e-12)
    assert model.regularize() == pytest.approx(value, rel=1e-12)  # the same penalty, now with its gradients
    assert any(g.any() for g in model.grads.values())
    assert rk.Dense(2, 2).regularization_loss() == 0.0
