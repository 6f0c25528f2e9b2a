"""rnnkit's recurrent layers as torch.nn.Modules (``import rnnkit.torch as rkt``), and conversions to and from torch.

``rkt.LSTM``, ``rkt.GRU``, ``rkt.RNN`` and ``rkt.IndRNN`` run forward and backward in rnnkit's C++ kernels through a
``torch.autograd.Function``; every rnnkit option (peepholes, Greff's variants, activations, layer norm, zoneout,
projection, ...) is a keyword away. Their parameters are ``torch.nn.Parameter``s with torch.nn's names and shapes,
sharing memory with the C++ parameter slab, so ``state_dict()`` loads into ``torch.nn.LSTM`` and back, torch
optimizers update the weights the kernels read, and ``torch.save`` works. Lengths are a tensor or array of per-sequence
lengths (no packing). CPU tensors only: this build has no CUDA backend, and a CUDA tensor raises a clear error.

torch is optional for rnnkit: ``pip install rnnkit[torch]``.
"""
from __future__ import annotations

import numpy as np
import torch

from . import cells as _cells
from . import layers as _layers
from . import nn as _nn
from .model import Sequential

__all__ = ["LSTM", "GRU", "RNN", "IndRNN", "LSTMCell", "GRUCell", "RNNCell", "from_torch", "to_torch"]

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


class _RecurrentFunction(torch.autograd.Function):
    """forward(module, x, lengths, record, n_states, *states, *params) -> y, *final states; backward runs rnnkit's
    BPTT and hands back the gradients of x, the initial states and every parameter.

    The C++ layer holds the activations of its most recent training forward. A backward through an older one
    (several forwards before one backward, gradcheck) first replays that forward with the same inputs and the same
    dropout draws; torch's version counters on the saved parameters guard against weights changed in between."""

    @staticmethod
    def forward(ctx, module, x, lengths, record, n_states, *rest):
        states, params = rest[:n_states], rest[n_states:]
        layer = module._rk
        x_np = x.detach().contiguous().numpy()
        given = [None if s is None else s.detach().contiguous().numpy() for s in states]
        ctx.rng = layer.rng_state
        y, finals = module._call(layer, x_np, given, lengths, record)
        if record:
            module._records += 1
            module._live = ctx.record = module._records
            ctx.module, ctx.inputs = module, (x_np, given, lengths)
            ctx.given = [s is not None for s in states]
            ctx.save_for_backward(*params)
        return (torch.from_numpy(y), *[torch.from_numpy(f) for f in finals])

    @staticmethod
    def backward(ctx, dy, *dfinals):
        module = ctx.module
        ctx.saved_tensors  # noqa: B018 - raises if a parameter was modified in place since the forward
        layer = module._rk
        if module._live != ctx.record:  # replay the forward this backward belongs to
            current = layer.rng_state
            layer.rng_state = ctx.rng
            module._call(layer, *ctx.inputs, True)
            layer.rng_state = current
            module._live = ctx.record
        dfin = [None if d is None else d.contiguous().numpy() for d in dfinals]
        dx, dinitial = module._back(layer, dy.contiguous().numpy(), dfin)
        module._live = None  # consumed
        grads = layer.grads
        param_grads = [torch.from_numpy(grads[name].copy()) for name in module._names]
        layer.zero_grad()
        dstates = [torch.from_numpy(d) if given else None for d, given in zip(dinitial, ctx.given)]
        return (None, torch.from_numpy(dx), None, None, None, *dstates, *param_grads)


class _Recurrent(torch.nn.Module):
    _rk_class = None
    _num_states = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=None,
                 **rnnkit_options) -> None:
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in _DTYPES:
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        if rnnkit_options.get("merge_mode", "concat") != "concat":
            raise ValueError("merge_mode: rnnkit.torch modules return torch's layout (the directions concatenated)")
        self._rk = self._rk_class(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                                  dropout=dropout, bidirectional=bidirectional, dtype=_DTYPES[dtype], **rnnkit_options)
        self._names = list(self._rk.parameters())
        self._records, self._live = 0, None
        for name, view in self._rk.parameters().items():
            self.register_parameter(name, torch.nn.Parameter(torch.from_numpy(view)))

    # torch-style attributes
    input_size = property(lambda self: self._rk.input_size)
    hidden_size = property(lambda self: self._rk.hidden_size)
    num_layers = property(lambda self: self._rk.num_layers)
    batch_first = property(lambda self: self._rk.batch_first)
    bidirectional = property(lambda self: self._rk.bidirectional)

    @property
    def rnnkit_layer(self):
        """The rnnkit layer whose C++ slab the parameters share."""
        self._sync()
        return self._rk

    def _sync(self) -> None:
        """Point the C++ kernels at the parameters again after torch moved them (.double(), .to(), a load that
        replaced .data): rebuild the layer for a new dtype, copy values into its slab and share its memory."""
        params = [self._parameters[name] for name in self._names]
        for p in params:
            if p.device.type != "cpu":
                raise RuntimeError(f"rnnkit.torch: parameters on {p.device}; this rnnkit build runs on the CPU only "
                                   "(no CUDA backend was built)")
        dtype = params[0].dtype
        if dtype not in _DTYPES:
            raise TypeError(f"rnnkit.torch: parameters of dtype {dtype}; rnnkit runs float32 and float64")
        if self._rk.dtype.name != _DTYPES[dtype]:
            self._rk = type(self._rk).from_config(dict(self._rk.get_config(), dtype=_DTYPES[dtype]))
        views = self._rk.parameters()
        for name, p in zip(self._names, params):
            view = views[name]
            if p.dtype != dtype:
                raise TypeError(f"rnnkit.torch: parameters of mixed dtypes ({dtype} and {p.dtype})")
            if p.data_ptr() != view.ctypes.data:
                view[...] = p.detach().numpy()
                p.data = torch.from_numpy(view)

    def _check(self, name, t):
        if t is None:
            return None
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(np.asarray(t))
        if t.device.type != "cpu":
            raise RuntimeError(f"{name}: a tensor on {t.device}; this rnnkit build runs on the CPU only (no CUDA "
                               "backend was built)")
        return t

    def forward(self, x, hx=None, lengths=None):
        """x: (T, B, I), or (B, T, I) with batch_first; hx: initial state(s) or None; lengths: (B,) per-sequence
        lengths (a tensor, array or list) or None. Returns y and the final state(s), like torch.nn."""
        self._sync()
        x = self._check("x", x)
        if x.dtype != self._parameters[self._names[0]].dtype:
            raise TypeError(f"x: expected dtype {self._parameters[self._names[0]].dtype}, got {x.dtype}")
        states = self._states(hx)
        states = [self._check(f"hx[{i}]", s) for i, s in enumerate(states)]
        if lengths is not None:
            lengths = np.asarray(lengths.detach().cpu().numpy() if isinstance(lengths, torch.Tensor) else lengths)
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(s is not None and s.requires_grad for s in states)
            or any(self._parameters[n].requires_grad for n in self._names))
        record = bool(needs_grad)
        out = _RecurrentFunction.apply(self, x, lengths, record, len(states), *states,
                                       *[self._parameters[n] for n in self._names])
        return self._pack(out[0], list(out[1:]))

    def _call(self, layer, x, states, lengths, record):
        # training=True records activations (and applies dropout in train mode); dropout follows self.training
        training = record or self.training
        if training and not self.training and (self._rk.dropout or self._rk.recurrent_dropout):
            raise RuntimeError("rnnkit.torch: gradients through an eval-mode forward with dropout are not supported; "
                               "use torch.no_grad() for evaluation or model.train() for training")
        y, finals = self._invoke(layer, x, states, lengths, training)
        return y, finals

    def extra_repr(self) -> str:
        return repr(self._rk)

    # torch.save / copy.deepcopy: the C++ layer is rebuilt from its config; the parameters travel as tensors.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_rk"] = None
        state["_rk_config"] = self._rk.get_config()
        return state

    def __setstate__(self, state):
        config = state.pop("_rk_config")
        self.__dict__.update(state)
        self._rk = self._rk_class.from_config(config)
        self._sync()


class LSTM(_Recurrent):
    """rnnkit.LSTM as a torch.nn.Module: ``y, (h_n, c_n) = lstm(x, hx=None, lengths=None)``; every rnnkit.LSTM
    keyword (peephole, activation, layer_norm, zoneout, proj_size, Greff's options, ...) passes through."""

    _rk_class = _layers.LSTM

    def _states(self, hx):
        if hx is None:
            return [None, None]
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("hx: expected (h0, c0) or None")
        return list(hx)

    def _invoke(self, layer, x, states, lengths, training):
        y, (h, c) = layer(x, (states[0], states[1]), lengths, training)
        return y, [h, c]

    def _back(self, layer, dy, dfinals):
        dx, (dh, dc) = layer.backward(dy, (dfinals[0], dfinals[1]))
        return dx, [dh, dc]

    def _pack(self, y, finals):
        return y, (finals[0], finals[1])


class _SingleState(_Recurrent):
    def _states(self, hx):
        return [hx]

    def _invoke(self, layer, x, states, lengths, training):
        y, h = layer(x, states[0], lengths, training)
        return y, [h]

    def _back(self, layer, dy, dfinals):
        dx, dh = layer.backward(dy, dfinals[0])
        return dx, [dh]

    def _pack(self, y, finals):
        return y, finals[0]


class GRU(_SingleState):
    """rnnkit.GRU as a torch.nn.Module: ``y, h_n = gru(x, hx=None, lengths=None)`` (linear_before_reset, activations,
    layer_norm, zoneout pass through)."""

    _rk_class = _layers.GRU


class RNN(_SingleState):
    """rnnkit.RNN as a torch.nn.Module: ``y, h_n = rnn(x, hx=None, lengths=None)``; nonlinearity any rnnkit
    activation."""

    _rk_class = _layers.RNN


class IndRNN(_SingleState):
    """rnnkit.IndRNN as a torch.nn.Module: ``y, h_n = indrnn(x, hx=None, lengths=None)``."""

    _rk_class = _layers.IndRNN


# --- single-step cells ---------------------------------------------------------------------------------------

class _CellFunction(torch.autograd.Function):
    """One step of an rnnkit cell. The C++ cell keeps its steps on a last-in-first-out tape, which is the order
    torch's engine runs an unrolled loop's backward in; a step whose record is not on top (another order, a second
    backward) clears the tape and replays itself, so the result is right either way."""

    @staticmethod
    def forward(ctx, module, record, x, h, c, *params):
        cell = module._rk
        x_np = x.detach().contiguous().numpy()
        h_np = None if h is None else h.detach().contiguous().numpy()
        c_np = None if c is None else c.detach().contiguous().numpy()
        out = module._step(cell, x_np, h_np, c_np, record)
        if record:
            module._steps += 1
            ctx.step = module._steps
            module._stack.append(ctx.step)
            ctx.module, ctx.inputs, ctx.given = module, (x_np, h_np, c_np), (h is not None, c is not None)
            ctx.save_for_backward(*params)
        return tuple(torch.from_numpy(o) for o in out)

    @staticmethod
    def backward(ctx, *douts):
        module, cell = ctx.module, ctx.module._rk
        ctx.saved_tensors  # noqa: B018 - raises if a parameter was modified in place since the forward
        if module._stack and module._stack[-1] == ctx.step:
            module._stack.pop()
        else:  # out of order: replay this step alone
            cell.clear_tape()
            module._stack.clear()
            module._step(cell, *ctx.inputs, True)
        dout = [None if d is None else d.contiguous().numpy() for d in douts]
        dx, dh, dc = module._back(cell, dout)
        grads = cell.grads
        param_grads = [torch.from_numpy(grads[name].copy()) for name in module._names]
        cell.zero_grad()
        dh = torch.from_numpy(dh) if ctx.given[0] else None
        dc = torch.from_numpy(dc) if ctx.given[1] and dc is not None else None
        return (None, None, torch.from_numpy(dx), dh, dc, *param_grads)


class _Cell(torch.nn.Module):
    _rk_class = None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype=None, **rnnkit_options) -> None:
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in _DTYPES:
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        self._rk = self._rk_class(input_size, hidden_size, bias=bias, dtype=_DTYPES[dtype], **rnnkit_options)
        self._names = list(self._rk.parameters())
        self._steps, self._stack = 0, []
        for name, view in self._rk.parameters().items():
            self.register_parameter(name, torch.nn.Parameter(torch.from_numpy(view)))

    input_size = property(lambda self: self._rk.input_size)
    hidden_size = property(lambda self: self._rk.hidden_size)
    _sync = _Recurrent._sync
    _check = _Recurrent._check
    __getstate__ = _Recurrent.__getstate__

    def __setstate__(self, state):
        config = state.pop("_rk_config")
        self.__dict__.update(state)
        self._rk = self._rk_class.from_config(config)
        self._stack = []
        self._sync()

    def extra_repr(self) -> str:
        return repr(self._rk)

    def _run(self, x, h, c):
        self._sync()
        x = self._check("x", x)
        if x.dtype != self._parameters[self._names[0]].dtype:
            raise TypeError(f"x: expected dtype {self._parameters[self._names[0]].dtype}, got {x.dtype}")
        h, c = self._check("hx", h), self._check("hx", c)
        params = [self._parameters[n] for n in self._names]
        record = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params) or any(
            s is not None and s.requires_grad for s in (h, c)))
        return _CellFunction.apply(self, bool(record), x, h, c, *params)


class LSTMCell(_Cell):
    """rnnkit.LSTMCell as a torch.nn.Module: ``h, c = cell(x, hx=None)`` like torch.nn.LSTMCell; rnnkit options
    (peephole, activations, layer_norm, ...) pass through."""

    _rk_class = _cells.LSTMCell

    def forward(self, x, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._run(x, h, c)

    def _step(self, cell, x, h, c, training):
        h, c = cell(x, (h, c), training=training)
        return h, c

    def _back(self, cell, douts):
        dx, (dh, dc) = cell.backward((douts[0], douts[1]))
        return dx, dh, dc


class _SingleCell(_Cell):
    def forward(self, x, hx=None):
        return self._run(x, hx, None)[0]

    def _step(self, cell, x, h, c, training):
        return (cell(x, h, training=training),)

    def _back(self, cell, douts):
        dx, dh = cell.backward(douts[0])
        return dx, dh, None


class GRUCell(_SingleCell):
    """rnnkit.GRUCell as a torch.nn.Module: ``h = cell(x, hx=None)`` like torch.nn.GRUCell."""

    _rk_class = _cells.GRUCell


class RNNCell(_SingleCell):
    """rnnkit.RNNCell as a torch.nn.Module: ``h = cell(x, hx=None)`` like torch.nn.RNNCell."""

    _rk_class = _cells.RNNCell


# --- conversions -----------------------------------------------------------------------------------------------

def _copy_params(dst: dict, src: dict, what: str) -> None:
    for name, value in src.items():
        if name not in dst:
            raise ValueError(f"{what}: parameter {name!r} has no counterpart")
        dst[name][...] = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


def from_torch(module):
    """An rnnkit model from a torch module: nn.LSTM (proj_size included), nn.GRU, nn.RNN, nn.Linear, nn.Embedding,
    an rnnkit.torch module, or an nn.Sequential of those (an rnnkit Sequential). Weights are copied."""
    if isinstance(module, _Recurrent):
        module._sync()
        rk = type(module._rk).from_config(module._rk.get_config())
        rk.load_state_dict(module._rk.state_dict())
        return rk
    if isinstance(module, torch.nn.Sequential):
        return Sequential([from_torch(m) for m in module])
    dtype = None
    params = dict(module.named_parameters())
    if params:
        dtype = _DTYPES.get(next(iter(params.values())).dtype)
        if dtype is None:
            raise TypeError(f"module: parameters of dtype {next(iter(params.values())).dtype}; rnnkit runs float32 and "
                            "float64")
    if isinstance(module, (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)):
        kw = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                  dropout=float(module.dropout), bidirectional=module.bidirectional, dtype=dtype)
        if isinstance(module, torch.nn.LSTM):
            rk = _layers.LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **kw)
        elif isinstance(module, torch.nn.GRU):
            rk = _layers.GRU(module.input_size, module.hidden_size, **kw)
        else:
            rk = _layers.RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity, **kw)
        if not module.bias:
            raise ValueError(f"module: {type(module).__name__}(bias=False) has no rnnkit counterpart yet")
    elif isinstance(module, torch.nn.Linear):
        rk = _nn.Dense(module.in_features, module.out_features, bias=module.bias is not None, dtype=dtype)
    elif isinstance(module, torch.nn.Embedding):
        rk = _nn.Embedding(module.num_embeddings, module.embedding_dim, dtype=dtype)
    else:
        raise TypeError(f"module: expected nn.LSTM, nn.GRU, nn.RNN, nn.Linear, nn.Embedding, an rnnkit.torch module or "
                        f"an nn.Sequential of those, got {type(module).__name__}")
    rk.load_state_dict({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})
    return rk


_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def to_torch(model):
    """A plain torch module with the same weights: rnnkit LSTM (peepholes and the other rnnkit-only options raise a
    ValueError naming them), GRU (linear_before_reset=True), RNN (tanh or relu), Dense without activation or with
    relu/tanh/sigmoid, Embedding, Dropout, or a Sequential of those (an nn.Sequential)."""
    if isinstance(model, Sequential):
        return torch.nn.Sequential(*[to_torch(layer) for layer in model.layers])
    dtype = _TORCH_DTYPES.get(getattr(model, "dtype", None) and model.dtype.name, torch.float32)
    if isinstance(model, _layers._Recurrent) and type(model).__name__ not in ("LSTM", "GRU", "RNN", "IndRNN"):
        raise ValueError(f"model: torch.nn has no {type(model).__name__} (nor has rnnkit.torch yet)")
    if isinstance(model, _layers._Recurrent):
        config = model.get_config()
        torch_options = {"input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                         "seed", "dtype", "l1", "l2", "kernel_init", "recurrent_init", "backend", "merge_mode",
                         "recurrent_dropout", "proj_size", "nonlinearity", "linear_before_reset", "forget_bias"}
        defaults = type(model)(config["input_size"], config["hidden_size"]).get_config()
        extra = [k for k, v in config.items() if k not in torch_options and v != defaults.get(k)]
        if config.get("merge_mode", "concat") != "concat":
            extra.append("merge_mode")
        if config.get("recurrent_dropout"):
            extra.append("recurrent_dropout")
        if isinstance(model, _layers.GRU) and not config.get("linear_before_reset", True):
            extra.append("linear_before_reset")
        if isinstance(model, _layers.RNN) and config.get("nonlinearity") not in ("tanh", "relu"):
            extra.append("nonlinearity")
        if extra or isinstance(model, _layers.IndRNN):
            raise ValueError(f"model: torch.nn has no {type(model).__name__} with {sorted(extra) or 'IndRNN'}; use "
                             "rnnkit.torch for it")
        kw = dict(num_layers=model.num_layers, bias=model.bias, batch_first=model.batch_first, dropout=model.dropout,
                  bidirectional=model.bidirectional, dtype=dtype)
        if isinstance(model, _layers.LSTM):
            out = torch.nn.LSTM(model.input_size, model.hidden_size, proj_size=config.get("proj_size", 0), **kw)
        elif isinstance(model, _layers.GRU):
            out = torch.nn.GRU(model.input_size, model.hidden_size, **kw)
        else:
            out = torch.nn.RNN(model.input_size, model.hidden_size, nonlinearity=config["nonlinearity"], **kw)
    elif isinstance(model, _nn.Dense):
        config = model.get_config()
        linear = torch.nn.Linear(config["in_features"], config["out_features"], bias=config.get("bias", True),
                                 dtype=dtype)
        linear.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.parameters().items()})
        act = {None: None, "none": None, "relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(),
               "sigmoid": torch.nn.Sigmoid()}
        if config.get("activation") not in act:
            raise ValueError(f"model: Dense activation {config.get('activation')!r} has no torch.nn module here")
        a = act[config.get("activation")]
        return linear if a is None else torch.nn.Sequential(linear, a)
    elif isinstance(model, _nn.Embedding):
        out = torch.nn.Embedding(model.get_config()["num_embeddings"], model.get_config()["embedding_dim"],
                                 dtype=dtype)
    elif isinstance(model, _nn.Dropout):
        return torch.nn.Dropout(model.get_config()["p"])
    else:
        raise TypeError(f"model: {type(model).__name__} has no torch.nn counterpart (LastStep: select the step in "
                        "torch code)")
    out.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.parameters().items()})
    return out
