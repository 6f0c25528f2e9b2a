"""Keras 3 models in and out: ``rk.from_keras(model_or_path)`` and ``rk.to_keras(model)``.

from_keras takes a live ``keras.Model`` (Sequential or a Functional chain) or a ``.keras`` file, which it reads
without importing Keras (the file is a zip of config.json and HDF5 weights; h5py reads them). Layers: InputLayer,
LSTM, GRU (reset_after True and False), SimpleRNN, Bidirectional (every merge mode), Dense, Embedding (mask_zero
becomes lengths), Dropout, with their activations; return_sequences=False becomes a LastStep. The result takes
batch-first input as Keras does. Anything else (a layer, or an option such as go_backwards, stateful,
return_state, use_bias=False on a recurrent layer) raises a ValueError naming the layer and option.

Weight layouts: Keras LSTM kernel (I, 4H) gates i f c o (= torch's i f g o, transposed), bias on the input side
only; GRU kernel gates z r h (torch: r z n), reset_after=True has a bias (2, 3H) (input, recurrent) and is torch's
linear_before_reset=True, reset_after=False is the Cho convention with one bias.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
import zlib

import numpy as np

from . import layers as _layers
from . import nn as _nn
from .io import ModelFileError, _model_of
from .model import Sequential

__all__ = ["from_keras", "to_keras"]

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_DENSE_ACTS = {"linear": None, None: None, "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "softmax": "softmax"}


def _name_of(act):
    if isinstance(act, dict):  # a serialized activation object
        act = act.get("config", {}).get("name", act.get("class_name"))
    return act


def _file_layers(path):
    """[(class_name, config, weights)] of a .keras file, in model order."""
    import h5py
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        with z.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            def weights(group):
                out = []
                if group is None:
                    return out
                for key in ("cell/vars", "vars"):
                    if key in group:
                        vs = group[key]
                        out += [np.asarray(vs[k]) for k in sorted(vs, key=int)]
                return out

            # The weights file names each layer's group after its class in snake case, numbered per class in model
            # order ("lstm", "dense", "dense_1"), not after the layer's (globally unique) name.
            layers, counts = [], {}
            specs = config["config"]["layers"]
            for spec in specs:
                cls, cfg = spec["class_name"], spec["config"]
                key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls)).lower()
                n = counts[key] = counts.get(key, -1) + 1
                group = h5["layers"].get(key if n == 0 else f"{key}_{n}") if "layers" in h5 else None
                if cls == "Bidirectional":
                    w = weights(group["forward_layer"]) + weights(group["backward_layer"])
                else:
                    w = weights(group)
                layers.append((cls, cfg, w))
    return layers


def _live_layers(model):
    return [(type(layer).__name__, layer.get_config(), [np.asarray(w) for w in layer.get_weights()])
            for layer in model.layers]


def _rnn(cls, cfg, weights, where, dtype):
    """An rnnkit layer (one direction) and its state dict from a Keras recurrent layer's config and weights."""
    for option in ("go_backwards", "stateful", "return_state"):
        if cfg.get(option):
            raise ValueError(f"{where}: option {option}=True has no rnnkit counterpart")
    if not cfg.get("use_bias", True):
        raise ValueError(f"{where}: option use_bias=False is not imported")
    kernel, recurrent, bias = weights[:3]
    I, H = kernel.shape[0], recurrent.shape[0]
    act, ract = _name_of(cfg.get("activation", "tanh")), _name_of(cfg.get("recurrent_activation", "sigmoid"))
    if cls == "LSTM":
        layer = dict(cls=_layers.LSTM, args=(I, H), kw=dict(activation=act, recurrent_activation=ract))
        sd = {"weight_ih": kernel.T, "weight_hh": recurrent.T, "bias_ih": bias, "bias_hh": np.zeros_like(bias)}
    elif cls == "GRU":
        def order(a):  # Keras z r h -> torch r z n (along the last axis)
            z, r, h = np.split(a, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)
        after = cfg.get("reset_after", True)
        layer = dict(cls=_layers.GRU, args=(I, H), kw=dict(activation=act, recurrent_activation=ract,
                                                           linear_before_reset=bool(after)))
        b_in, b_rec = (bias[0], bias[1]) if after else (bias, np.zeros_like(bias))
        sd = {"weight_ih": order(kernel).T, "weight_hh": order(recurrent).T, "bias_ih": order(b_in),
              "bias_hh": order(b_rec)}
    else:
        layer = dict(cls=_layers.RNN, args=(I, H), kw=dict(nonlinearity=act))
        sd = {"weight_ih": kernel.T, "weight_hh": recurrent.T, "bias_ih": bias, "bias_hh": np.zeros_like(bias)}
    layer["kw"]["dtype"] = dtype
    return layer, sd


def from_keras(model_or_path):
    """An rnnkit Sequential (batch-first) with the Keras model's weights; see the module docstring."""
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        try:  # a file is untrusted input: whatever step fails, the caller gets a ModelFileError
            return _from_specs(_file_layers(path))
        except ModelFileError:
            raise
        except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError, OverflowError, RecursionError,
                MemoryError, EOFError, NotImplementedError, RuntimeError, zlib.error, zipfile.BadZipFile) as exc:
            # (zipfile: NotImplementedError for an unknown compression method, RuntimeError for encryption,
            # EOFError / zlib.error for truncated or corrupt members)
            raise ModelFileError(f"{path}: not a readable .keras file ({type(exc).__name__}: {exc})") from None
    if hasattr(model_or_path, "layers") and hasattr(model_or_path, "get_config"):
        return _from_specs(_live_layers(model_or_path))
    raise TypeError(f"model_or_path: expected a keras.Model or a .keras file path, got "
                    f"{type(model_or_path).__name__}")


def _from_specs(specs):
    """The Sequential for (class name, config, weights) triples of Keras layers."""
    out, state = [], {}
    for k, (cls, cfg, weights) in enumerate(specs):
        where = f"layer {k} ({cls} {cfg.get('name', '')!r})"
        dtype = "float64" if weights and weights[0].dtype == np.float64 else "float32"
        if cls in ("InputLayer", "NotEqual"):  # NotEqual: the mask_zero comparison Keras adds to a graph
            continue
        i = len(out)
        if cls in _RECURRENT or cls == "Bidirectional":
            if cls == "Bidirectional":
                inner = cfg["layer"]
                icls, icfg = inner["class_name"], inner["config"]
                if icls not in _RECURRENT:
                    raise ValueError(f"{where}: Bidirectional({icls}) is not supported")
                merge = cfg.get("merge_mode", "concat")
                half = len(weights) // 2
                spec, fwd = _rnn(icls, icfg, weights[:half], where, dtype)
                _, bwd = _rnn(icls, icfg, weights[half:], where, dtype)
                sd = {f"{n}_l0": v for n, v in fwd.items()}
                sd.update({f"{n}_l0_reverse": v for n, v in bwd.items()})
                layer = spec["cls"](*spec["args"], bidirectional=True, batch_first=True, merge_mode=merge, **spec["kw"])
                sequences = icfg.get("return_sequences", False)
                if not sequences and merge != "concat":
                    raise ValueError(f"{where}: option merge_mode={merge!r} with return_sequences=False is not "
                                     "supported (rnnkit merges per step, then selects)")
            else:
                spec, sd = _rnn(cls, cfg, weights, where, dtype)
                sd = {f"{n}_l0": v for n, v in sd.items()}
                layer = spec["cls"](*spec["args"], batch_first=True, **spec["kw"])
                sequences = cfg.get("return_sequences", False)
            out.append(layer)
            state[i] = sd
            if not sequences:
                out.append(_nn.LastStep())
        elif cls == "Dense":
            act = _name_of(cfg.get("activation"))
            if act not in _DENSE_ACTS:
                raise ValueError(f"{where}: option activation={act!r} is not supported")
            layer = _nn.Dense(weights[0].shape[0], weights[0].shape[1], activation=_DENSE_ACTS[act],
                              bias=cfg.get("use_bias", True), dtype=dtype)
            out.append(layer)
            state[i] = {"weight": weights[0].T, **({"bias": weights[1]} if len(weights) > 1 else {})}
        elif cls == "Embedding":
            layer = _nn.Embedding(weights[0].shape[0], weights[0].shape[1], mask_zero=bool(cfg.get("mask_zero")),
                                  dtype=dtype)
            out.append(layer)
            state[i] = {"weight": weights[0]}
        elif cls == "Dropout":
            out.append(_nn.Dropout(float(cfg.get("rate", 0.0))))
        else:
            raise ValueError(f"{where}: layer class {cls!r} is not supported by rk.from_keras")
    model = Sequential(out)
    for i, sd in state.items():
        model.layers[i].load_state_dict({k: np.ascontiguousarray(v) for k, v in sd.items()})
    return model


def to_keras(model):
    """A keras.Sequential with the same weights (batch-first), for rnnkit layers Keras can express: LSTM, GRU, RNN
    (bidirectional with any merge mode; a following LastStep becomes return_sequences=False), Dense, Embedding,
    Dropout. Needs Keras 3."""
    model = _model_of(model)
    for k, layer in enumerate(model.layers):
        if isinstance(layer, _layers._Recurrent) and type(layer).__name__ not in ("LSTM", "GRU", "RNN"):
            raise ValueError(f"layers[{k}] ({type(layer).__name__}): Keras has no {type(layer).__name__} layer")
    import keras
    layers, weights = [], []
    items = list(model.layers)
    for k, layer in enumerate(items):
        where = f"layers[{k}] ({type(layer).__name__})"
        if isinstance(layer, _nn.LastStep):
            if not layers or not isinstance(layers[-1], (keras.layers.RNN, keras.layers.Bidirectional)):
                raise ValueError(f"{where}: LastStep must follow a recurrent layer")
            continue
        if isinstance(layer, _layers._Recurrent):
            cfg = layer.get_config()
            if layer.num_layers != 1:
                raise ValueError(f"{where}: option num_layers={layer.num_layers}: export one rnnkit layer per Keras layer")
            sequences = not (k + 1 < len(items) and isinstance(items[k + 1], _nn.LastStep))
            H = layer.hidden_size
            p = layer.parameters()
            common = dict(return_sequences=sequences)
            if isinstance(layer, _layers.LSTM):
                for option, default in (("peephole", False), ("layer_norm", False), ("proj_size", 0), ("zoneout", 0.0),
                                        ("cell_clip", None), ("coupled_input_forget", False), ("input_gate", True),
                                        ("forget_gate", True), ("output_gate", True), ("full_gate_recurrence", False)):
                    if cfg.get(option, default) != default:
                        raise ValueError(f"{where}: option {option}={cfg[option]!r} has no Keras counterpart")
                make = lambda: keras.layers.LSTM(H, activation=_keras_act(cfg["activation"], where),  # noqa: E731
                                                 recurrent_activation=_keras_act(cfg["recurrent_activation"], where),
                                                 **common)

                def conv(s):
                    return [p["weight_ih" + s].T, p["weight_hh" + s].T, p["bias_ih" + s] + p["bias_hh" + s]]
            elif isinstance(layer, _layers.GRU):
                def order(a):  # torch r z n -> Keras z r h (rows)
                    r, z, n = np.split(a, 3, axis=0)
                    return np.concatenate([z, r, n], axis=0)
                lbr = cfg.get("linear_before_reset", True)
                make = lambda: keras.layers.GRU(H, activation=_keras_act(cfg["activation"], where),  # noqa: E731
                                                recurrent_activation=_keras_act(cfg["recurrent_activation"], where),
                                                reset_after=lbr, **common)

                def conv(s):
                    bias = (np.stack([order(p["bias_ih" + s]), order(p["bias_hh" + s])]) if lbr else None)
                    if not lbr:
                        if np.any(p["bias_hh" + s][2 * H:] != 0):
                            raise ValueError(f"{where}: a Cho-convention GRU with a nonzero recurrent candidate bias "
                                             "has no Keras (reset_after=False) counterpart")
                        bias = order(p["bias_ih" + s] + p["bias_hh" + s])
                    return [order(p["weight_ih" + s]).T, order(p["weight_hh" + s]).T, bias]
            elif isinstance(layer, _layers.RNN) and not isinstance(layer, _layers.IndRNN):
                make = lambda: keras.layers.SimpleRNN(H, activation=_keras_act(cfg["nonlinearity"], where),  # noqa: E731
                                                      **common)

                def conv(s):
                    return [p["weight_ih" + s].T, p["weight_hh" + s].T, p["bias_ih" + s] + p["bias_hh" + s]]
            else:
                raise ValueError(f"{where}: no Keras counterpart")
            if layer.bidirectional:
                layers.append(keras.layers.Bidirectional(make(), merge_mode=cfg.get("merge_mode", "concat")))
                weights.append(conv("_l0") + conv("_l0_reverse"))
            else:
                layers.append(make())
                weights.append(conv("_l0"))
        elif isinstance(layer, _nn.Dense):
            layers.append(keras.layers.Dense(layer.out_features, activation=layer.activation))
            prm = layer.parameters()
            weights.append([prm["weight"].T] + ([prm["bias"]] if "bias" in prm else []))
        elif isinstance(layer, _nn.Embedding):
            layers.append(keras.layers.Embedding(layer.num_embeddings, layer.embedding_dim,
                                                 mask_zero=getattr(layer, "mask_zero", False)))
            weights.append([layer.parameters()["weight"]])
        elif isinstance(layer, _nn.Dropout):
            layers.append(keras.layers.Dropout(layer.get_config()["p"]))
            weights.append([])
        else:
            raise ValueError(f"{where}: no Keras counterpart")
    first = items[0]
    shape = (None,) if isinstance(first, _nn.Embedding) else (None, first.input_size)
    out = keras.Sequential([keras.Input(shape)] + layers)
    for layer, w in zip(layers, weights):
        if w:
            layer.set_weights([np.asarray(a, np.float32) for a in w])
    return out


def _keras_act(spec, where):
    if not isinstance(spec, str):
        raise ValueError(f"{where}: activation {spec!r} with parameters has no Keras name")
    return spec
