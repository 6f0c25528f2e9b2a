"""ONNX export of rnnkit models (``model.export_onnx(path, ...)``): LSTM (peepholes, activations, clip,
coupled input-forget gate as ``input_forget``), GRU (both reset conventions, activations), RNN, stacked and
bidirectional, variable lengths as ``sequence_lens``, Dense as MatMul + Add (+ activation), Embedding as Gather,
Dropout as nothing, LastStep as a length-indexed selection. What ONNX cannot express raises a ValueError naming the
layer and option.

The graph: input "X" (float (T, B, I), or (B, T, I) with batch_first, transposed inside the graph since
onnxruntime refuses ``layout=1``; int64 token ids with an Embedding first), input "sequence_lens" (int32 (B,)),
output "Y". Requires the ``onnx`` package.

Gate orders (torch/rnnkit -> ONNX): LSTM i f g o -> i o f c, peepholes i f o -> i o f; GRU r z n -> z r h.
"""
from __future__ import annotations

import json

import numpy as np

from . import layers as _layers
from . import nn as _nn
from .io import _model_of, _write_atomic

__all__ = ["export_onnx", "IR_VERSION"]

IR_VERSION = 9  # onnxruntime and OpenVINO of 2026 load it (onnx's own default, 14, is newer than they read)

_ONNX_ACTS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softsign": "Softsign", "softplus": "Softplus",
              "elu": "Elu", "hard_sigmoid": "HardSigmoid", "leaky_relu": "LeakyRelu", "scaled_tanh": "ScaledTanh",
              "linear": "Affine"}


def _activation(spec, where):
    """(ONNX name, alpha or None, beta or None) of an rnnkit activation spec."""
    name, params = (spec, ()) if isinstance(spec, str) else (spec[0], tuple(spec[1:]))
    if name not in _ONNX_ACTS:
        raise ValueError(f"{where}: activation {name!r} has no ONNX counterpart")
    if name == "hard_sigmoid" and not params:
        params = (1.0 / 6.0, 0.5)  # Keras 3's relu6(x + 3) / 6
    if name == "linear":
        params = (1.0, 0.0)
    if name in ("leaky_relu", "elu") and not params:
        params = (0.01 if name == "leaky_relu" else 1.0,)
    alpha = float(params[0]) if len(params) > 0 else None
    beta = float(params[1]) if len(params) > 1 else None
    return _ONNX_ACTS[name], alpha, beta


class _Graph:
    def __init__(self, helper, numpy_helper, TensorProto, dtype):
        self.h, self.nh, self.TP = helper, numpy_helper, TensorProto
        self.dtype = dtype
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, array, exact=False):
        n = base if exact else self.name(base)
        self.inits.append(self.nh.from_array(np.array(array, order="C"), n))  # (0-d stays 0-d)
        return n

    def op(self, op_type, inputs, base=None, outputs=1, **attrs):
        outs = [self.name(base or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.h.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if outputs == 1 else outs


def _lstm_blocks(layer, gates):
    """rnnkit rows (remaining gates in i f g o order) -> ONNX rows i o f c."""
    coupled = layer.get_config().get("coupled_input_forget", False)

    def blocks(a):
        parts = dict(zip(gates, np.split(a, len(gates), axis=0)))
        if coupled:  # ONNX input_forget computes i and sets f = 1 - i: its i is our f with negated weights
            return np.concatenate([-parts["f"], parts["o"], parts["f"], parts["g"]], axis=0)
        return np.concatenate([parts["i"], parts["o"], parts["f"], parts["g"]], axis=0)
    return blocks


def _recurrent(g, layer, x, lens, where):
    """Nodes of one rnnkit recurrent layer (all its stacked layers) on x (T, B, I); returns y (T, B, D*H)."""
    cfg = layer.get_config()
    H = layer.hidden_size
    D = 2 if layer.bidirectional else 1
    if type(layer).__name__ not in ("LSTM", "GRU", "RNN"):
        raise ValueError(f"{where}: {type(layer).__name__} has no ONNX operator (ONNX has LSTM, GRU and RNN)")
    for option, default in (("proj_size", 0), ("layer_norm", False), ("zoneout", 0.0), ("zoneout_cell", 0.0),
                            ("input_gate", True), ("forget_gate", True), ("output_gate", True),
                            ("input_activation", True), ("output_activation", True),
                            ("full_gate_recurrence", False)):
        if option in cfg and cfg[option] != default:
            raise ValueError(f"{where}: option {option}={cfg[option]!r} has no ONNX counterpart")
    if cfg.get("merge_mode", "concat") != "concat":
        raise ValueError(f"{where}: merge_mode={cfg['merge_mode']!r}: the export writes concatenated directions only")
    if not layer.bias:
        raise ValueError(f"{where}: bias=False is not exported")
    p = {k: np.asarray(v) for k, v in layer.parameters().items()}
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
    if isinstance(layer, _layers.LSTM):
        op = "LSTM"
        coupled = cfg.get("coupled_input_forget", False)
        gates = ["f", "g", "o"] if coupled else ["i", "f", "g", "o"]
        blocks = _lstm_blocks(layer, gates)
        acts = [_activation(cfg["recurrent_activation"], where), _activation(cfg["activation"], where),
                _activation(cfg["activation"], where)]
        if cfg.get("cell_clip"):
            attrs["clip"] = float(cfg["cell_clip"])
        if coupled:
            attrs["input_forget"] = 1
    elif isinstance(layer, _layers.GRU):
        op = "GRU"

        def blocks(a):
            r, z, n = np.split(a, 3, axis=0)
            return np.concatenate([z, r, n], axis=0)
        acts = [_activation(cfg["recurrent_activation"], where), _activation(cfg["activation"], where)]
        attrs["linear_before_reset"] = int(cfg.get("linear_before_reset", True))
    else:
        op = "RNN"

        def blocks(a):
            return a
        acts = [_activation(cfg["nonlinearity"], where)]
    acts = acts * D
    attrs["activations"] = [a[0] for a in acts]
    alphas, betas = [a[1] for a in acts if a[1] is not None], [a[2] for a in acts if a[2] is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    for l in range(layer.num_layers):
        sfx = [f"_l{l}", f"_l{l}_reverse"][:D]
        W = np.stack([blocks(p["weight_ih" + s]) for s in sfx])
        R = np.stack([blocks(p["weight_hh" + s]) for s in sfx])
        B = np.stack([np.concatenate([blocks(p["bias_ih" + s]), blocks(p["bias_hh" + s])]) for s in sfx])
        inputs = [x, g.const("W", W), g.const("R", R), g.const("B", B), lens]
        if op == "LSTM" and cfg.get("peephole"):
            P = np.stack([p["weight_peephole" + s][[0, 2, 1]].reshape(-1) for s in sfx])  # i f o -> i o f
            if cfg.get("coupled_input_forget"):
                P[:, :H] = -P[:, 2 * H:]  # the i row of ONNX's input_forget form is our f row, negated
            inputs += ["", "", g.const("P", P)]
        y = g.op(op, inputs, base=op.lower(), **attrs)  # (T, D, B, H)
        y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # (T, B, D, H)
        x = g.op("Reshape", [y, g.const("shape", np.array([0, 0, -1], np.int64))])  # (T, B, D*H)
    return x


def _last_step(g, y, lens, directions, width):
    """y (T, B, F) -> (B, F): forward features at step lens-1, reverse features at step 0."""
    T = g.op("Gather", [g.op("Shape", [y]), g.const("zero", np.array(0, np.int64))])
    steps = g.op("Range", [g.const("zero", np.array(0, np.int64)), T, g.const("one", np.array(1, np.int64))])
    last = g.op("Sub", [g.op("Cast", [lens], to=g.TP.INT64), g.const("one", np.array(1, np.int64))])
    axes_last = g.const("axes", np.array([-1], np.int64))

    def mask(target):  # (T, B, 1) float: steps == target
        eq = g.op("Equal", [g.op("Unsqueeze", [steps, axes_last]), target])  # (T, 1) vs (B,) / scalar -> (T, B)
        return g.op("Unsqueeze", [g.op("Cast", [eq], to=g.dtype), axes_last])

    axis0 = g.const("axes", np.array([0], np.int64))
    if directions == 1:
        return g.op("ReduceSum", [g.op("Mul", [y, mask(last)]), axis0], keepdims=0)
    halves = g.const("split", np.array([width // 2, width // 2], np.int64))
    fwd, bwd = g.op("Split", [y, halves], outputs=2, axis=2)
    a = g.op("ReduceSum", [g.op("Mul", [fwd, mask(last)]), axis0], keepdims=0)
    b = g.op("ReduceSum", [g.op("Mul", [bwd, mask(g.const("zero", np.array(0, np.int64)))]), axis0], keepdims=0)
    return g.op("Concat", [a, b], axis=1)


def export_onnx(model, path, batch_first=None, dynamic_axes=True, opset: int = 17) -> None:
    """Write `model` (a Sequential or one layer) as an ONNX file; see the module docstring.

    batch_first: the layout of "X" (None: the model's own); dynamic_axes: True for symbolic T and B, or (T, B) for a
    graph with fixed sizes; opset: 17 or later.
    """
    import onnx  # optional dependency, imported when used
    from onnx import TensorProto, helper, numpy_helper

    model = _model_of(model)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset: expected an int >= 17, got {opset!r}")
    layers = list(model.layers)
    recurrent = [layer for layer in layers if layer.is_recurrent]
    own_bf = recurrent[0].batch_first if recurrent else False
    batch_first = own_bf if batch_first is None else bool(batch_first)
    if dynamic_axes is True:
        T, B = "T", "B"
    elif isinstance(dynamic_axes, (tuple, list)) and len(dynamic_axes) == 2:
        T, B = int(dynamic_axes[0]), int(dynamic_axes[1])
    else:
        raise ValueError(f"dynamic_axes: expected True or a (T, B) pair for fixed sizes, got {dynamic_axes!r}")
    dtype = model.dtype
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(helper, numpy_helper, TensorProto, elem)
    tokens = isinstance(layers[0], _nn.Embedding)
    in_shape = ([B, T] if batch_first else [T, B]) + ([] if tokens else [layers[0].input_size
                                                                        if hasattr(layers[0], "input_size")
                                                                        else layers[0].get_config()["in_features"]])
    x = "X"
    if batch_first:
        x = g.op("Transpose", [x], perm=[1, 0] if tokens else [1, 0, 2])  # time-major inside
    lens = "sequence_lens"
    per_step, directions, width = True, 1, 0
    for i, layer in enumerate(layers):
        where = f"layers[{i}] ({type(layer).__name__})"
        if isinstance(layer, _nn.Embedding):
            if i:
                raise ValueError(f"{where}: an Embedding is exported as the first layer only")
            x = g.op("Gather", [g.const(f"layers.{i}.weight", np.asarray(layer.parameters()["weight"]), True), x])
        elif layer.is_recurrent:
            if not per_step:
                raise ValueError(f"{where}: a recurrent layer after LastStep")
            x = _recurrent(g, layer, x, lens, where)
            directions = 2 if layer.bidirectional else 1
            width = directions * layer.hidden_size
        elif isinstance(layer, _nn.Dense):
            prm = layer.parameters()
            x = g.op("MatMul", [x, g.const(f"layers.{i}.weight", np.asarray(prm["weight"]).T, True)])
            if "bias" in prm:
                x = g.op("Add", [x, g.const(f"layers.{i}.bias", np.asarray(prm["bias"]), True)])
            act = layer.activation
            if act == "softmax":
                x = g.op("Softmax", [x], axis=-1)
            elif act:
                x = g.op({"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}[act], [x])
        elif isinstance(layer, _nn.Dropout):
            continue
        elif isinstance(layer, _nn.LastStep):
            d = layer.directions or directions
            x = _last_step(g, x, lens, d, width)
            per_step = False
        else:
            raise ValueError(f"{where}: no ONNX export for this layer")
    if per_step and batch_first:
        x = g.op("Transpose", [x], perm=[1, 0, 2])
    g.nodes.append(helper.make_node("Identity", [x], ["Y"]))
    out_shape = ([B, T, None] if batch_first else [T, B, None]) if per_step else [B, None]
    graph = helper.make_graph(
        g.nodes, "rnnkit", [helper.make_tensor_value_info("X", TensorProto.INT64 if tokens else elem, in_shape),
                            helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B])],
        [helper.make_tensor_value_info("Y", elem, out_shape)], g.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                   producer_name="rnnkit")
    onnx_model.ir_version = IR_VERSION
    # the architecture, so that rk.from_onnx gives the rnnkit model back (session.model)
    helper.set_model_props(onnx_model, {"rnnkit.model": json.dumps(model.get_config())})
    onnx.checker.check_model(onnx_model)
    _write_atomic(path, onnx_model.SerializeToString())
