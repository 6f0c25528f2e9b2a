"""Single-step cells: LSTMCell, GRUCell, RNNCell (torch.nn.*Cell names and shapes).

Each training step (training=True) is recorded on a tape; `backward` backpropagates through the most
recent recorded step and removes it (last in, first out), so calling it once per step in reverse order
is backpropagation through time. Steps taken with training=False record nothing.
Shapes: B = batch, I = input size, H = hidden size.
"""
from __future__ import annotations

import numpy as np

from . import _docs
from ._checks import flag, float_array, positive_int, seed_value, state_pair
from ._params import CoreModule
from .layers import _check_nonlinearity, _jsonable, _rnn_kind, gru_options, lstm_options, non_default

__all__ = ["LSTMCell", "GRUCell", "RNNCell"]


class _Cell(CoreModule):
    def __init__(self, kind, input_size, hidden_size, *, bias, seed, dtype, peephole=False, linear_before_reset=True,
                 backend="cpu", options=None, core_options=None):
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.bias = flag("bias", bias)
        self.seed = seed_value(seed)
        self._init_core(dtype, kind=kind, input_size=self.input_size, hidden_size=self.hidden_size, num_layers=1,
                        bias=self.bias, bidirectional=False, peephole=flag("peephole", peephole),
                        linear_before_reset=flag("linear_before_reset", linear_before_reset), dropout=0.0,
                        cell=True, seed=self.seed, backend=backend,
                        options={**non_default(options or {}), **(core_options or {})})
        self._options = options or {}
        for k, v in self._options.items():
            setattr(self, k, v)

    def get_config(self) -> dict:
        config = dict(input_size=self.input_size, hidden_size=self.hidden_size, bias=self.bias, seed=self.seed,
                      dtype=self.dtype.name, backend=self.backend)
        config.update(self._kind_config())
        config.update({k: _jsonable(v) for k, v in self._options.items()})
        return config

    def _kind_config(self) -> dict:
        return {}

    @property
    def tape_size(self) -> int:
        """Recorded steps not yet backpropagated."""
        return self._core.tape_size()

    def _step(self, x, h, c, training):
        x = float_array("x", x, self.dtype, shape=(None, self.input_size))
        B = x.shape[0]
        if B == 0:
            raise ValueError("x: expected a batch of at least one, got shape (0, %d)" % self.input_size)
        shape = (B, self.hidden_size)
        h = None if h is None else float_array("h", h, self.dtype, shape=shape)[None]
        c = None if c is None else float_array("c", c, self.dtype, shape=shape)[None]
        _, h_n, c_n, _ = self._core_forward(x[None], h, c, None, flag("training", training))
        return h_n[0], (None if c_n is None else c_n[0])

    def _step_backward(self, dh, dc):
        _, B = self._recorded_shape()
        shape = (B, self.hidden_size)
        dh = None if dh is None else float_array("dh", dh, self.dtype, shape=shape)[None]
        dc = None if dc is None else float_array("dc", dc, self.dtype, shape=shape)[None]
        dy = np.zeros((1, B, self.hidden_size), dtype=self.dtype)
        dx, dh0, dc0, _ = self._core_backward(dy, dh, dc)
        return dx[0], dh0[0], (None if dc0 is None else dc0[0])

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in non_default(self._options).items())
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, dtype='{self.dtype.name}')"


class LSTMCell(_Cell):
    __doc__ = _docs.document("""
        One LSTM step; `peephole=True` adds the (3, H) parameter `weight_peephole` (rows i, f, o).

        The math of rnnkit.LSTM for one step. Call: `h, c = cell(x, state=None, training=True)`;
        `dx, (dh, dc) = cell.backward((dh, dc))`.
        The variant keywords are rnnkit.LSTM's (see its docstring for the formulas).
        """, _docs.insert_after(_docs.CELL_NAMES, "bias", "peephole",
                                *[n for n in _docs.LSTM_OPTIONS if n not in ("merge_mode", "proj_size", "full_gate_recurrence")]),
        **_docs.CELL_ARGS,
        hidden_size="features of the hidden state h and cell state c (H).",
        peephole="add the peephole weights weight_peephole (Gers & Schmidhuber 2000), default False.")

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, peephole: bool = False,
                 activation: str | tuple = "tanh", recurrent_activation: str | tuple = "sigmoid",
                 cell_clip: float | None = None, layer_norm: bool = False, zoneout: float = 0.0,
                 zoneout_cell: float = 0.0, input_gate: bool = True, forget_gate: bool = True, output_gate: bool = True,
                 input_activation: bool = True, output_activation: bool = True, coupled_input_forget: bool = False,
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", backend: str = "cpu") -> None:
        self.peephole = flag("peephole", peephole)
        options = lstm_options(activation, recurrent_activation, cell_clip, zoneout, zoneout_cell, input_gate,
                               forget_gate, output_gate, input_activation, output_activation, coupled_input_forget)
        options["layer_norm"] = flag("layer_norm", layer_norm)
        super().__init__("lstm", input_size, hidden_size, bias=bias, seed=seed, dtype=dtype, peephole=self.peephole,
                         backend=backend, options=options)

    def _kind_config(self) -> dict:
        return dict(peephole=self.peephole)

    def __call__(self, x, state=None, training=True):
        """x: (B, I); state: (h, c), each (B, H), or None for zeros. Returns (h, c)."""
        h, c = state_pair("state", state)
        return self._step(x, h, c, training)

    forward = __call__

    def backward(self, dstate):
        """dstate: (dh, dc) w.r.t. the newest step's outputs (either may be None). Returns dx, (dh, dc)."""
        dh, dc = state_pair("dstate", dstate)
        dx, dh0, dc0 = self._step_backward(dh, dc)
        return dx, (dh0, dc0)


class _SingleStateCell(_Cell):
    def __call__(self, x, h=None, training=True):
        """x: (B, I); h: (B, H) or None for zeros. Returns the new h."""
        return self._step(x, h, None, training)[0]

    forward = __call__

    def backward(self, dh):
        """dh: gradient w.r.t. the newest step's h. Returns dx, dh_prev."""
        if dh is None:
            raise TypeError("dh: expected an array of shape (B, H), got None")
        dx, dh0, _ = self._step_backward(dh, None)
        return dx, dh0


class GRUCell(_SingleStateCell):
    __doc__ = _docs.document("""
        One GRU step (gates r, z, n); see rnnkit.GRU for `linear_before_reset`.

        Call: `h = cell(x, h=None, training=True)`; `dx, dh_prev = cell.backward(dh)`.
        """, _docs.insert_after(_docs.CELL_NAMES, "bias", "linear_before_reset",
                                *[n for n in _docs.GRU_OPTIONS if n != "merge_mode"]),
        **_docs.CELL_ARGS,
        activation="the candidate's activation, default 'tanh' (any of rnnkit.LSTM's activations).",
        linear_before_reset="True (torch, cuDNN) applies the reset gate after the recurrent product, False (Cho et "
                            "al. 2014) before it; default True.")

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, linear_before_reset: bool = True,
                 activation: str | tuple = "tanh", recurrent_activation: str | tuple = "sigmoid",
                 layer_norm: bool = False, zoneout: float = 0.0, seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", backend: str = "cpu") -> None:
        self.linear_before_reset = flag("linear_before_reset", linear_before_reset)
        options = gru_options(activation, recurrent_activation, zoneout)
        options["layer_norm"] = flag("layer_norm", layer_norm)
        super().__init__("gru", input_size, hidden_size, bias=bias, seed=seed, dtype=dtype,
                         linear_before_reset=self.linear_before_reset, backend=backend, options=options)

    def _kind_config(self) -> dict:
        return dict(linear_before_reset=self.linear_before_reset)


class RNNCell(_SingleStateCell):
    __doc__ = _docs.document("""
        One simple-RNN step: h = act(W x + b_ih + R h_prev + b_hh), act any of rnnkit.RNN's nonlinearities.

        Call: `h = cell(x, h=None, training=True)`; `dx, dh_prev = cell.backward(dh)`.
        """, _docs.insert_after(_docs.CELL_NAMES, "bias", "nonlinearity"), **_docs.CELL_ARGS,
        nonlinearity="the activation act, default 'tanh': a name or a tuple with parameters, as rnnkit.RNN's.")

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, nonlinearity: str | tuple = "tanh",
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", backend: str = "cpu") -> None:
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        kind = _rnn_kind(self.nonlinearity)
        super().__init__(kind, input_size, hidden_size, bias=bias, seed=seed, dtype=dtype, backend=backend,
                         core_options={"activation": self.nonlinearity} if kind == "rnn" else None)

    def _kind_config(self) -> dict:
        return dict(nonlinearity=_jsonable(self.nonlinearity))
