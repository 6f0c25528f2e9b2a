"""Recurrent layers: LSTM (optionally peephole), GRU (both reset conventions) and simple RNN.

Stacked (`num_layers`), bidirectional (outputs concatenated), inter-layer dropout, initial states and
variable-length batches (`lengths`, packed-sequence semantics). Parameters have torch.nn's names, shapes and
gate order, so `load_state_dict(torch_module.state_dict())` moves weights over unchanged.
Shapes: T = time steps, B = batch, I = input size, H = hidden size, D = directions, L = layers.
"""
from __future__ import annotations

import numpy as np

from . import _docs
from ._backend import core as _core
from ._checks import (flag, float_array, lengths_array, non_negative, positive_int, probability, seed_value,
                      shape_str, state_pair)
from ._params import CoreModule

__all__ = ["LSTM", "GRU", "RNN"]


def _check_nonlinearity(nonlinearity) -> None:
    """The RNN activations are the registered cell kinds of class RNN (rnn_tanh, rnn_relu)."""
    known = [c["nonlinearity"] for c in _core.cell_kinds() if c["layer_class"] == "RNN"]
    if nonlinearity not in known:
        raise ValueError(f"nonlinearity: expected one of {known}, got {nonlinearity!r}")


class _Recurrent(CoreModule):
    is_recurrent = True
    _kind = ""
    _has_cell_state = False

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, seed=None, dtype="float32", peephole=False, linear_before_reset=True,
                 recurrent_dropout=0.0, kind=None, l1=0.0, l2=0.0, kernel_init="uniform",
                 recurrent_init="uniform", forget_bias=None, backend="cpu"):
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.num_layers = positive_int("num_layers", num_layers)
        self.bias = flag("bias", bias)
        self.batch_first = flag("batch_first", batch_first)
        self.dropout = probability("dropout", dropout)
        self.recurrent_dropout = probability("recurrent_dropout", recurrent_dropout)
        self.bidirectional = flag("bidirectional", bidirectional)
        self.seed = seed_value(seed)
        self.num_directions = 2 if self.bidirectional else 1
        self._init_core(dtype, kind=kind or self._kind, input_size=self.input_size, hidden_size=self.hidden_size,
                        num_layers=self.num_layers, bias=self.bias, bidirectional=self.bidirectional,
                        peephole=flag("peephole", peephole),
                        linear_before_reset=flag("linear_before_reset", linear_before_reset),
                        dropout=self.dropout, cell=False, seed=self.seed,
                        recurrent_dropout=self.recurrent_dropout, backend=backend)

        self.l1 = non_negative("l1", l1)
        self.l2 = non_negative("l2", l2)
        self._initialize(kernel_init, recurrent_init, forget_bias)

    def _initialize(self, kernel_init, recurrent_init, forget_bias) -> None:
        """torch's U(-1/sqrt(H), 1/sqrt(H)) everywhere (done in C++ from the seed), then the Keras-style options:
        kernel_init="glorot_uniform" (U(±sqrt(6 / (I + G))) over each weight_ih), recurrent_init="orthogonal"
        (an orthogonal (H, H) block per gate of weight_hh), forget_bias=v (LSTM: biases zero except the forget
        gate's bias_ih = v, as Keras's unit_forget_bias). All drawn from the layer's seed."""
        if kernel_init not in ("uniform", "glorot_uniform"):
            raise ValueError(f"kernel_init: expected 'uniform' or 'glorot_uniform', got {kernel_init!r}")
        if recurrent_init not in ("uniform", "orthogonal"):
            raise ValueError(f"recurrent_init: expected 'uniform' or 'orthogonal', got {recurrent_init!r}")
        if forget_bias is not None:
            if self._kind != "lstm":
                raise ValueError("forget_bias: only an LSTM has a forget gate")
            if not self.bias:
                raise ValueError("forget_bias: the layer has no biases (bias=False)")
            forget_bias = float(forget_bias)
        self.kernel_init, self.recurrent_init, self.forget_bias = kernel_init, recurrent_init, forget_bias
        rng = np.random.default_rng([self.seed, 1])
        H = self.hidden_size
        for name, p in self._params.items():
            if name.startswith("weight_ih") and kernel_init == "glorot_uniform":
                limit = np.sqrt(6.0 / (p.shape[0] + p.shape[1]))
                p[...] = rng.uniform(-limit, limit, p.shape)
            elif name.startswith("weight_hh") and recurrent_init == "orthogonal":
                for g in range(p.shape[0] // H):
                    q, r = np.linalg.qr(rng.standard_normal((H, H)))
                    p[g * H:(g + 1) * H] = q * np.sign(np.diag(r))
            elif name.startswith("bias") and forget_bias is not None:
                p[...] = 0.0
                if name.startswith("bias_ih"):
                    p[H:2 * H] = forget_bias

    def get_config(self) -> dict:
        config = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                      bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                      bidirectional=self.bidirectional, recurrent_dropout=self.recurrent_dropout, seed=self.seed,
                      dtype=self.dtype.name, l1=self.l1, l2=self.l2, kernel_init=self.kernel_init,
                      recurrent_init=self.recurrent_init, backend=self.backend)
        config.update(self._kind_config())
        return config

    def _kind_config(self) -> dict:
        return {}

    # --- inside a Sequential: sequences in, sequences out, final states dropped -------------------------
    def seq_forward(self, x, lengths=None, training=True):
        return self._forward(x, None, None, lengths, training)[0]

    def seq_backward(self, dout):
        return self._backward(dout, None, None)[0]

    @property
    def rng_state(self) -> int:
        """The dropout mask counter: restore it (with the same seed) to draw the same masks again."""
        return self._core.rng_counter

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        self._core.rng_counter = int(value)

    # --- forward -------------------------------------------------------------------------------------
    def _forward(self, x, h0, c0, lengths, training):
        I = self.input_size
        x = float_array("x", x, self.dtype, shape=(None, None, I))
        if self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        T, B = x.shape[0], x.shape[1]
        if T == 0 or B == 0:
            raise ValueError(f"x: expected at least one time step and one sequence, got {shape_str(x.shape)}")
        state_shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if h0 is not None:
            h0 = float_array("h0", h0, self.dtype, shape=state_shape)
        if c0 is not None:
            c0 = float_array("c0", c0, self.dtype, shape=state_shape)
        if lengths is not None:
            lengths = lengths_array(lengths, B, T)
        y, h_n, c_n = self._core_forward(x, h0, c0, lengths, flag("training", training))
        if self.batch_first:
            y = y.transpose(1, 0, 2)
        return y, h_n, c_n

    # --- backward ------------------------------------------------------------------------------------
    def _backward(self, dy, dh_n, dc_n):
        T, B = self._recorded_shape()
        out = self.num_directions * self.hidden_size
        dy = float_array("dy", dy, self.dtype, shape=(B, T, out) if self.batch_first else (T, B, out))
        if self.batch_first:
            dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
        state_shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if dh_n is not None:
            dh_n = float_array("dh_n", dh_n, self.dtype, shape=state_shape)
        if dc_n is not None:
            dc_n = float_array("dc_n", dc_n, self.dtype, shape=state_shape)
        dx, dh0, dc0 = self._core_backward(dy, dh_n, dc_n)
        if self.batch_first:
            dx = dx.transpose(1, 0, 2)
        return dx, dh0, dc0

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._repr_extra().items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
                f"{extra}, dtype='{self.dtype.name}')")

    def _repr_extra(self) -> dict:
        defaults = {"bias": True, "batch_first": False, "dropout": 0.0, "bidirectional": False,
                    "recurrent_dropout": 0.0}
        keys = tuple(defaults)
        return {k: getattr(self, k) for k in keys if getattr(self, k) != defaults[k]}


class _TwoState(_Recurrent):
    """The call convention of a cell with states (h, c): LSTM's."""

    def __call__(self, x, state=None, lengths=None, training=True):
        """x: (T, B, I) or (B, T, I) with batch_first; state: (h0, c0), each (L*D, B, H), or None for zeros.

        Returns y, (h_n, c_n): y (T, B, D*H) (or batch-first), zero past each sequence's length.
        """
        h0, c0 = state_pair("state", state)
        y, h_n, c_n = self._forward(x, h0, c0, lengths, training)
        return y, (h_n, c_n)

    forward = __call__

    def backward(self, dy, dstate=None):
        """Backpropagate through the most recent training forward; returns dx, (dh0, dc0).

        dy matches y; dstate (dh_n, dc_n) matches the final state (None for zeros). Parameter gradients
        accumulate into `grads`.
        """
        dh_n, dc_n = state_pair("dstate", dstate)
        dx, dh0, dc0 = self._backward(dy, dh_n, dc_n)
        return dx, (dh0, dc0)


class LSTM(_TwoState):
    __doc__ = _docs.document("""
        Long short-term memory with forget gate; `peephole=True` adds Gers & Schmidhuber (2000) peepholes.

        i = σ(W_i x + R_i h + b_i [+ p_i c_prev])   f = σ(W_f x + R_f h + b_f [+ p_f c_prev])   g = tanh(W_g x + R_g h + b_g)
        c = f c_prev + i g                          o = σ(W_o x + R_o h + b_o [+ p_o c])          h = o tanh(c)
        Peephole weights are the extra parameters `weight_peephole_l{k}[_reverse]`, shape (3, H), rows i, f, o.
        Call: `y, (h_n, c_n) = lstm(x, state=None, lengths=None, training=True)`; `lstm.backward(dy, dstate=None)`.
        """, _docs.insert_after(_docs.insert_after(_docs.LAYER_ARGS, "bidirectional", "peephole"), "recurrent_init",
                                "forget_bias"),
        hidden_size="features of the hidden state h and cell state c (H).",
        peephole="add the peephole weights (see above), default False.",
        forget_bias="default None keeps torch's uniform biases; a number v sets every bias to zero except the forget "
                    "gate's bias_ih = v (Keras's unit_forget_bias is v = 1.0). Needs bias=True.")

    _kind = "lstm"
    _has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 peephole: bool = False, seed: int | None = None, dtype: str | type | np.dtype = "float32",
                 recurrent_dropout: float = 0.0, l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform",
                 recurrent_init: str = "uniform", forget_bias: float | None = None, backend: str = "cpu") -> None:
        self.peephole = flag("peephole", peephole)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype, peephole=self.peephole,
                         recurrent_dropout=recurrent_dropout, l1=l1, l2=l2, kernel_init=kernel_init,
                         recurrent_init=recurrent_init, forget_bias=forget_bias, backend=backend)

    def _kind_config(self) -> dict:
        return dict(peephole=self.peephole, forget_bias=self.forget_bias)

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if self.peephole:
            extra["peephole"] = True
        return extra


class _SingleState(_Recurrent):
    def __call__(self, x, h0=None, lengths=None, training=True):
        """x: (T, B, I) or (B, T, I) with batch_first; h0: (L*D, B, H) or None. Returns y, h_n."""
        y, h_n, _ = self._forward(x, h0, None, lengths, training)
        return y, h_n

    forward = __call__

    def backward(self, dy, dh_n=None):
        """Backpropagate through the most recent training forward; returns dx, dh0."""
        dx, dh0, _ = self._backward(dy, dh_n, None)
        return dx, dh0


class GRU(_SingleState):
    __doc__ = _docs.document("""
        Gated recurrent unit, gates r, z, n as in torch.nn.GRU.

        r = σ(W_r x + b_ir + R_r h + b_hr)    z = σ(W_z x + b_iz + R_z h + b_hz)    h' = (1 - z) n + z h
        linear_before_reset=True (torch, cuDNN):   n = tanh(W_n x + b_in + r (R_n h + b_hn))
        linear_before_reset=False (Cho et al.):    n = tanh(W_n x + b_in + R_n (r h) + b_hn)
        Call: `y, h_n = gru(x, h0=None, lengths=None, training=True)`; `gru.backward(dy, dh_n=None)`.
        """, _docs.insert_after(_docs.LAYER_ARGS, "dtype", "linear_before_reset"),
        linear_before_reset="the candidate n as above: True (torch, cuDNN) or False (Cho et al. 2014), default True.")

    _kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", linear_before_reset: bool = True,
                 recurrent_dropout: float = 0.0, l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform",
                 recurrent_init: str = "uniform", backend: str = "cpu") -> None:
        self.linear_before_reset = flag("linear_before_reset", linear_before_reset)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype,
                         linear_before_reset=self.linear_before_reset, recurrent_dropout=recurrent_dropout, l1=l1,
                         l2=l2, kernel_init=kernel_init, recurrent_init=recurrent_init, backend=backend)

    def _kind_config(self) -> dict:
        return dict(linear_before_reset=self.linear_before_reset)

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if not self.linear_before_reset:
            extra["linear_before_reset"] = False
        return extra


class RNN(_SingleState):
    __doc__ = _docs.document("""
        Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh), act = tanh or relu.

        Call: `y, h_n = rnn(x, h0=None, lengths=None, training=True)`; `rnn.backward(dy, dh_n=None)`.
        """, _docs.insert_after(_docs.LAYER_ARGS, "num_layers", "nonlinearity"),
        nonlinearity="the activation act, 'tanh' or 'relu', default 'tanh'.")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", recurrent_dropout: float = 0.0,
                 l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform",
                 recurrent_init: str = "uniform", backend: str = "cpu") -> None:
        _check_nonlinearity(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype, kind="rnn_" + nonlinearity,
                         recurrent_dropout=recurrent_dropout, l1=l1, l2=l2, kernel_init=kernel_init,
                         recurrent_init=recurrent_init, backend=backend)

    def _kind_config(self) -> dict:
        return dict(nonlinearity=self.nonlinearity)

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if self.nonlinearity != "tanh":
            extra["nonlinearity"] = self.nonlinearity
        return extra


def _layers_of_registered_cells() -> dict:
    """A layer class for every cell kind registered in C++ (`_core.cell_kinds()`) that has no class above, so
    that a cell added in C++ (a header and a registry row) is a keyword away here too: one state gets GRU's
    call convention, two states LSTM's. The class takes the arguments of rnnkit.RNN, less nonlinearity."""
    made = {}
    for cell in _core.cell_kinds():
        name = cell["layer_class"]
        if name in globals() or name in made or cell["num_states"] > 2:
            continue
        base = _SingleState if cell["num_states"] == 1 else _TwoState

        def __init__(self, input_size, hidden_size, num_layers=1, _kind=cell["name"], **kwargs):
            _Recurrent.__init__(self, input_size, hidden_size, num_layers, kind=_kind, **kwargs)

        doc = _docs.document(f"""
            {name}: the registered cell kind {cell['name']!r}: {cell['summary']}.

            Parameters per layer k and direction: {', '.join(p['name'] for p in cell['params'])}; {cell['gates']}
            gate blocks of H rows.
            """, _docs.LAYER_ARGS)
        made[name] = type(name, (base,), {"_kind": cell["name"], "__init__": __init__, "__doc__": doc,
                                          "__module__": __name__, "__qualname__": name})
    return made


_GENERATED = _layers_of_registered_cells()
globals().update(_GENERATED)
__all__ += list(_GENERATED)
