"""ONNX import: ``session = rk.from_onnx(path)``, then ``session.run(None, {"X": x, ...})`` as with onnxruntime.

LSTM, GRU and RNN nodes run on rnnkit layers built from the node's initializers (directions forward, reverse and
bidirectional, layout 0 and 1, sequence_lens, initial states, peepholes, linear_before_reset, activations with their
alpha/beta, clip for LSTM, input_forget); the glue between them runs in NumPy: Gemm, MatMul, Add, Sub, Mul, Div,
Gather, Transpose, Squeeze, Unsqueeze, Slice, Concat, Reshape, Shape, Cast, Range, Equal, ReduceSum, Split,
Identity, Constant, Relu, Tanh, Sigmoid, Softmax. Anything else raises a ValueError naming the node.
``session.model`` is the rnnkit model itself when the file was written by rnnkit's exporter (it records the
architecture), else None. Requires the ``onnx`` package.
"""
from __future__ import annotations

import json

import numpy as np

from . import layers as _layers
from .io import ModelFileError, model_from_config

__all__ = ["from_onnx", "OnnxSession"]

_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
_PARAMS = {"LeakyRelu": (0.01,), "HardSigmoid": (0.2, 0.5), "Elu": (1.0,), "ScaledTanh": (1.0, 1.0),
           "Affine": (1.0, 0.0)}
_SLOTS = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
_NAMES = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign", "Softplus": "softplus",
          "Elu": "elu", "LeakyRelu": "leaky_relu", "HardSigmoid": "hard_sigmoid", "ScaledTanh": "scaled_tanh"}


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _activations(op, attrs, D, where):
    """The rnnkit activation specs of one direction (they must agree across directions)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in attrs.get("activations", [])] or _DEFAULT_ACTS[op] * D
    per = len(_DEFAULT_ACTS[op])
    if len(names) != per * D:
        raise ValueError(f"{where}: expected {per * D} activations, got {names}")
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    specs = []
    for name in names:
        if name not in _NAMES and name != "Affine":
            raise ValueError(f"{where}: activation {name!r} has no rnnkit counterpart")
        defaults = _PARAMS.get(name, ())
        values = []
        if len(defaults) > 0:
            values.append(alphas.pop(0) if alphas else defaults[0])
        if len(defaults) > 1:
            values.append(betas.pop(0) if betas else defaults[1])
        if name == "Affine":
            if tuple(values) != (1.0, 0.0):
                raise ValueError(f"{where}: Affine activation with alpha, beta {values} (rnnkit has the identity only)")
            specs.append("linear")
        else:
            specs.append(_NAMES[name] if not values else (_NAMES[name], *[float(v) for v in values]))
    if specs[:per] != specs[per:] and D == 2:
        raise ValueError(f"{where}: different activations per direction ({specs}) are not supported")
    return specs[:per]


class _RecurrentNode:
    """One LSTM/GRU/RNN node on an rnnkit layer."""

    def __init__(self, node, inits, where):
        op, attrs = node.op_type, _attrs(node)
        self.op, self.where, self.inputs, self.outputs = op, where, list(node.input), list(node.output)
        self.layout = int(attrs.get("layout", 0))
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ValueError(f"{where}: direction {direction!r}")
        self.reverse = direction == "reverse"
        D = 2 if direction == "bidirectional" else 1

        def init(i, required=True):
            name = self.inputs[i] if i < len(self.inputs) else ""
            if not name:
                return None
            if name not in inits:
                slot = _SLOTS[i]
                raise ValueError(f"{where}: input {name!r} ({slot}) must be an initializer (weights are read at load "
                                 "time)")
            return inits[name]
        W, R, B = init(1), init(2), init(3)
        P = init(7) if op == "LSTM" else None
        H = int(attrs["hidden_size"]) if "hidden_size" in attrs else R.shape[-1]
        G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        I = W.shape[2]
        if W.shape != (D, G * H, I) or R.shape != (D, G * H, H):
            raise ValueError(f"{where}: W {W.shape} / R {R.shape} do not fit hidden_size {H} and {D} direction(s)")
        if B is None:
            B = np.zeros((D, 2 * G * H), W.dtype)
        dtype = "float64" if W.dtype == np.float64 else "float32"
        acts = _activations(op, attrs, D, where)
        clip = attrs.get("clip")
        kw = dict(bidirectional=D == 2, dtype=dtype)
        coupled = bool(attrs.get("input_forget", 0))
        if op == "LSTM":
            if acts[1] != acts[2] and acts[2] != "linear" and acts[1] != "linear":
                raise ValueError(f"{where}: LSTM activations g={acts[1]!r}, h={acts[2]!r} must agree (or one be Affine)")
            act = acts[1] if acts[1] != "linear" else acts[2]
            layer = _layers.LSTM(I, H, recurrent_activation=acts[0], activation=act,
                                 input_activation=acts[1] != "linear", output_activation=acts[2] != "linear",
                                 peephole=P is not None, cell_clip=float(clip) if clip else None,
                                 coupled_input_forget=coupled, **kw)

            def order(a):  # ONNX i o f c -> rnnkit i f g o (coupled: f g o with our f = -ONNX i)
                i, o, f, c = np.split(a, 4, axis=0)
                return np.concatenate([-i, c, o] if coupled else [i, f, c, o], axis=0)
        else:
            if clip:
                raise ValueError(f"{where}: clip on a {op} node has no rnnkit counterpart (LSTM only)")
            if op == "GRU":
                layer = _layers.GRU(I, H, recurrent_activation=acts[0], activation=acts[1],
                                    linear_before_reset=bool(attrs.get("linear_before_reset", 0)), **kw)

                def order(a):  # ONNX z r h -> rnnkit r z n
                    z, r, h = np.split(a, 3, axis=0)
                    return np.concatenate([r, z, h], axis=0)
            else:
                layer = _layers.RNN(I, H, nonlinearity=acts[0], **kw)

                def order(a):
                    return a
        params = {}
        for d, sfx in enumerate(["_l0", "_l0_reverse"][:D]):
            params["weight_ih" + sfx] = order(W[d])
            params["weight_hh" + sfx] = order(R[d])
            params["bias_ih" + sfx] = order(B[d][:G * H])
            params["bias_hh" + sfx] = order(B[d][G * H:])
            if P is not None:
                pi, po, pf = np.split(P[d], 3)
                params["weight_peephole" + sfx] = (np.stack([np.zeros_like(pi), -pi, po]) if coupled
                                                   else np.stack([pi, pf, po]))
        layer.load_state_dict(params)
        self.layer, self.D, self.H = layer, D, H

    def run(self, values):
        get = lambda i: values[self.inputs[i]] if i < len(self.inputs) and self.inputs[i] else None  # noqa: E731
        x = np.asarray(get(0))
        dtype = self.layer.dtype
        if self.layout:
            x = x.transpose(1, 0, 2)
        x = np.ascontiguousarray(x, dtype)
        T, B = x.shape[:2]
        lens = get(4)
        lengths = None if lens is None else np.asarray(lens).astype(np.int64)
        states = []
        for i in (5, 6):
            s = get(i)
            if s is not None and self.layout:
                s = s.transpose(1, 0, 2)
            states.append(None if s is None else np.ascontiguousarray(s, dtype))
        steps = lengths if lengths is not None else np.full(B, T)
        if self.reverse:
            x = _flip(x, steps)
        if self.op == "LSTM":
            y, (h, c) = self.layer(x, (states[0], states[1]), lengths, training=False)
        else:
            y, h = self.layer(x, states[0], lengths, training=False)
            c = None
        if self.reverse:
            y = _flip(y, steps)
        Y = y.reshape(T, B, self.D, self.H).transpose(0, 2, 1, 3)  # (T, D, B, H)
        outs = [Y, h, c]
        if self.layout:
            outs = [Y.transpose(2, 0, 1, 3), h.transpose(1, 0, 2), None if c is None else c.transpose(1, 0, 2)]
        return {name: value for name, value in zip(self.outputs, outs) if name}


def _flip(x, lengths):
    """Each sequence reversed within its length; padding stays zero."""
    out = np.zeros_like(x)
    for b, n in enumerate(lengths):
        out[:n, b] = x[:n, b][::-1]
    return out


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class OnnxSession:
    """Runs an ONNX graph: recurrent nodes on rnnkit, the glue in NumPy. ``run(output_names, feeds)`` returns a list
    of arrays in graph output order (or in the order of output_names)."""

    def __init__(self, model_proto, path="model"):
        from onnx import numpy_helper
        graph = model_proto.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in self.inits]
        self.output_names = [o.name for o in graph.output]
        self.nodes = []
        known = set(self.inits) | {i.name for i in graph.input} | {""}
        for k, node in enumerate(graph.node):
            where = f"node {k} ({node.op_type}{' ' + node.name if node.name else ''})"
            unknown = [n for n in node.input if n not in known]
            if unknown:  # a file is untrusted: every value must exist before a node reads it (topological order)
                raise ValueError(f"{path}: {where}: input(s) {unknown} are not produced before the node")
            known.update(node.output)
            if node.op_type in ("LSTM", "GRU", "RNN"):
                self.nodes.append(_RecurrentNode(node, self.inits, where))
            elif node.op_type in _GLUE:
                self.nodes.append((node, _attrs(node), where))
            else:
                raise ValueError(f"{path}: {where}: operator {node.op_type!r} is not supported by rnnkit's ONNX import")
        missing = [n for n in self.output_names if n not in known]
        if missing:
            raise ValueError(f"{path}: graph output(s) {missing} are produced by no node")
        self.model = None
        meta = {p.key: p.value for p in model_proto.metadata_props}
        if "rnnkit.model" in meta:
            try:
                self.model = _rebuild(meta["rnnkit.model"], self, path)
            except (ValueError, TypeError, KeyError, StopIteration) as exc:
                raise ValueError(f"{path}: the recorded rnnkit architecture does not fit the graph ({exc})") from None

    def run(self, output_names, feeds):
        values = dict(self.inits)
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"feeds: missing input(s) {missing}; the graph takes {self.input_names}")
        values.update({k: np.asarray(v) for k, v in feeds.items()})
        for item in self.nodes:
            if isinstance(item, _RecurrentNode):
                values.update(item.run(values))
                continue
            node, attrs, where = item
            ins = [values[n] if n else None for n in node.input]
            try:
                outs = _GLUE[node.op_type](ins, attrs)
            except (ValueError, IndexError, TypeError) as exc:
                raise ValueError(f"{where}: {exc}") from exc
            outs = outs if isinstance(outs, list) else [outs]
            values.update({n: v for n, v in zip(node.output, outs) if n})
        names = output_names or self.output_names
        return [values[n] for n in names]


def _axes(ins, attrs, i=1):
    if len(ins) > i and ins[i] is not None:
        return tuple(int(a) for a in np.asarray(ins[i]).reshape(-1))
    return tuple(attrs.get("axes", ())) or None


def _slice(ins, attrs):
    x, starts, ends = ins[0], ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _gemm(ins, attrs):
    a, b = ins[0], ins[1]
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    if len(ins) > 2 and ins[2] is not None:
        y = y + attrs.get("beta", 1.0) * ins[2]
    return y.astype(a.dtype)


def _reshape(ins, attrs):
    shape = [int(s) for s in ins[1]]
    shape = [ins[0].shape[i] if s == 0 and not attrs.get("allowzero", 0) else s for i, s in enumerate(shape)]
    return ins[0].reshape(shape)


def _split(ins, attrs):
    axis = attrs.get("axis", 0)
    sizes = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("split")
    if sizes is None:
        n = attrs.get("num_outputs")
        return np.split(ins[0], n, axis=axis)
    return np.split(ins[0], np.cumsum(sizes)[:-1], axis=axis)


def _cast(ins, attrs):
    from onnx import helper
    return ins[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))


def _constant(ins, attrs):
    from onnx import numpy_helper
    return numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.asarray(
        attrs.get("value_float", attrs.get("value_int", attrs.get("value_floats", attrs.get("value_ints")))))


_GLUE = {
    "Gemm": _gemm,
    "MatMul": lambda i, a: np.matmul(i[0], i[1]),
    "Add": lambda i, a: i[0] + i[1],
    "Sub": lambda i, a: i[0] - i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Gather": lambda i, a: np.take(i[0], i[1].astype(np.int64), axis=a.get("axis", 0)),
    "Transpose": lambda i, a: np.transpose(i[0], a.get("perm")),
    "Squeeze": lambda i, a: np.squeeze(i[0], axis=_axes(i, a)),
    "Unsqueeze": lambda i, a: np.expand_dims(i[0], axis=_axes(i, a)),
    "Slice": _slice,
    "Concat": lambda i, a: np.concatenate(i, axis=a["axis"]),
    "Reshape": _reshape,
    "Shape": lambda i, a: np.array(i[0].shape, np.int64),
    "Cast": _cast,
    "Range": lambda i, a: np.arange(i[0], i[1], i[2]).astype(np.asarray(i[0]).dtype),
    "Equal": lambda i, a: np.equal(i[0], i[1]),
    "ReduceSum": lambda i, a: np.sum(i[0], axis=_axes(i, a), keepdims=bool(a.get("keepdims", 1))),
    "Split": _split,
    "Identity": lambda i, a: i[0],
    "Constant": _constant,
    "Relu": lambda i, a: np.maximum(i[0], 0),
    "Tanh": lambda i, a: np.tanh(i[0]),
    "Sigmoid": lambda i, a: (1 / (1 + np.exp(-i[0]))).astype(i[0].dtype),
    "Softmax": lambda i, a: _softmax(i[0], a.get("axis", -1)),
}


def _rebuild(config_json, session, path):
    """The rnnkit model an rnnkit export records: its architecture from the metadata, its weights from the graph's
    recurrent nodes and initializers named by the exporter ("layers.{i}.*")."""
    model = model_from_config(json.loads(config_json), path)
    recurrent = iter(n for n in session.nodes if isinstance(n, _RecurrentNode))
    state = {}
    for i, layer in enumerate(model.layers):
        if layer.is_recurrent:
            for l in range(layer.num_layers):
                node = next(recurrent)
                for name, value in node.layer.parameters().items():
                    state[f"{i}." + name.replace("_l0", f"_l{l}")] = value
        else:
            for name in layer.parameters():
                key = f"layers.{i}.{name}"
                if key not in session.inits:
                    raise ValueError(f"{path}: no initializer {key!r} for the recorded architecture")
                value = session.inits[key]
                state[f"{i}.{name}"] = value.T if name == "weight" and value.ndim == 2 and type(layer).__name__ == "Dense" \
                    else value
    model.load_state_dict(state)
    return model


def from_onnx(path) -> OnnxSession:
    """Load an ONNX file (weights as initializers) into a session that runs on rnnkit; see the module docstring."""
    import onnx
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelFileError(f"{path}: not a readable ONNX file ({exc})") from None
    try:  # a file is untrusted input: whatever step of building the session fails, a ModelFileError
        return OnnxSession(proto, str(path))
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, OverflowError, RecursionError,
            MemoryError) as exc:
        raise ModelFileError(f"{path}: {type(exc).__name__}: {exc}") from None
