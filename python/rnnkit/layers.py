"""Recurrent layers: LSTM (optionally peephole), GRU (both reset conventions) and simple RNN.

Stacked (`num_layers`), bidirectional (outputs concatenated), inter-layer dropout, initial states and
variable-length batches (`lengths`, packed-sequence semantics). Parameters have torch.nn's names, shapes and
gate order, so `load_state_dict(torch_module.state_dict())` moves weights over unchanged.
Shapes: T = time steps, B = batch, I = input size, H = hidden size, D = directions, L = layers.
"""
from __future__ import annotations

import importlib
import numbers

import numpy as np

from . import _docs
from ._backend import core as _core
from ._checks import (clip_value, flag, float_array, lengths_array, non_negative, positive_int,
                      probability, seed_value, shape_str, state_pair)
from ._checks import activation as check_activation
from ._checks import merge_mode as check_merge_mode
from ._params import CoreModule

__all__ = ["LSTM", "GRU", "RNN", "IndRNN"]


def _check_nonlinearity(nonlinearity):
    """An RNN's activation: any of rnnkit's activations (torch's 'tanh' and 'relu' run their own cell kinds)."""
    return check_activation("nonlinearity", nonlinearity)


def _rnn_kind(nonlinearity) -> str:
    """The cell kind of an RNN: torch's rnn_tanh / rnn_relu, else the kind that takes any activation."""
    fixed = {c["nonlinearity"]: c["name"] for c in _core.cell_kinds() if c["layer_class"] == "RNN" and c["nonlinearity"]}
    return fixed.get(nonlinearity, "rnn") if isinstance(nonlinearity, str) else "rnn"


def _jsonable(value):
    """An activation tuple as a JSON list (from_config takes the list back)."""
    return list(value) if isinstance(value, tuple) else value


# The variant options each recurrent class passes to the core when they differ from these defaults.
_OPTION_DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "cell_clip": None, "input_gate": True,
                    "forget_gate": True, "output_gate": True, "input_activation": True, "output_activation": True,
                    "coupled_input_forget": False, "zoneout": 0.0, "zoneout_cell": 0.0, "recurrent_clip": None,
                    "proj_size": 0, "layer_norm": False, "full_gate_recurrence": False, "num_heads": 1}


def lstm_options(activation, recurrent_activation, cell_clip, zoneout, zoneout_cell, input_gate, forget_gate,
                 output_gate, input_activation, output_activation, coupled_input_forget) -> dict:
    """The LSTM variant keywords, checked (layers and cells share them)."""
    options = dict(activation=check_activation("activation", activation),
                   recurrent_activation=check_activation("recurrent_activation", recurrent_activation),
                   cell_clip=clip_value("cell_clip", cell_clip), zoneout=probability("zoneout", zoneout),
                   zoneout_cell=probability("zoneout_cell", zoneout_cell), input_gate=flag("input_gate", input_gate),
                   forget_gate=flag("forget_gate", forget_gate), output_gate=flag("output_gate", output_gate),
                   input_activation=flag("input_activation", input_activation),
                   output_activation=flag("output_activation", output_activation),
                   coupled_input_forget=flag("coupled_input_forget", coupled_input_forget))
    if options["coupled_input_forget"] and not (options["input_gate"] and options["forget_gate"]):
        raise ValueError("coupled_input_forget: i = 1 - f needs the forget gate and replaces the input gate; "
                         "leave input_gate and forget_gate True")
    return options


def gru_options(activation, recurrent_activation, zoneout) -> dict:
    """The GRU variant keywords, checked."""
    return dict(activation=check_activation("activation", activation),
                recurrent_activation=check_activation("recurrent_activation", recurrent_activation),
                zoneout=probability("zoneout", zoneout))


def non_default(options: dict) -> dict:
    """The options that differ from their defaults (for repr)."""
    return {k: v for k, v in options.items() if v != _OPTION_DEFAULTS[k]}


class _Recurrent(CoreModule):
    is_recurrent = True
    _kind = ""
    _has_cell_state = False

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, seed=None, dtype="float32", peephole=False, linear_before_reset=True,
                 recurrent_dropout=0.0, kind=None, l1=0.0, l2=0.0, kernel_init="uniform",
                 recurrent_init="uniform", forget_bias=None, backend="cpu", options=None, merge_mode="concat"):
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
        self._h_size = (options or {}).get("proj_size") or self.hidden_size  # features of h (proj_size or H)
        self.merge_mode = check_merge_mode(merge_mode)
        self._merge_saved = None
        core_options = non_default(options or {})
        self._init_core(dtype, kind=kind or self._kind, options=core_options, input_size=self.input_size, hidden_size=self.hidden_size,
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
            if not hasattr(self, "_forget_rows"):
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
                    q, r = np.linalg.qr(rng.standard_normal((H, p.shape[1])))  # (H, H), or (H, proj_size)
                    p[g * H:(g + 1) * H] = q * np.sign(np.diag(r))
            elif name.startswith("bias") and forget_bias is not None:
                p[...] = 0.0
                if name.startswith("bias_ih"):
                    p[self._forget_rows()] = forget_bias

    def get_config(self) -> dict:
        config = dict(input_size=self.input_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                      bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                      bidirectional=self.bidirectional, recurrent_dropout=self.recurrent_dropout, seed=self.seed,
                      dtype=self.dtype.name, l1=self.l1, l2=self.l2, kernel_init=self.kernel_init,
                      recurrent_init=self.recurrent_init, backend=self.backend, merge_mode=self.merge_mode)
        config.update(self._kind_config())
        return config

    @property
    def output_directions(self) -> int:
        """Directions laid side by side in y: 2 for a bidirectional layer with merge_mode='concat', else 1."""
        return 2 if self.bidirectional and self.merge_mode == "concat" else 1

    @property
    def output_size(self) -> int:
        """Features per step of y (per part, with merge_mode=None)."""
        return self.output_directions * self._h_size

    def _merged(self) -> bool:
        return self.bidirectional and self.merge_mode != "concat"

    def _kind_config(self) -> dict:
        return {}

    # --- inside a Sequential: sequences in, sequences out, final states dropped -------------------------
    def seq_forward(self, x, lengths=None, training=True):
        if self.bidirectional and self.merge_mode is None:
            raise ValueError("merge_mode: None returns the two directions apart, which a Sequential cannot pass on; "
                             "use 'concat', 'sum', 'mul' or 'ave' inside a Sequential")
        return self._forward(x, None, None, lengths, training)[0]

    def seq_backward(self, dout):
        return self._backward(dout, None, None)[0]

    def seq_forward_state(self, x, state, lengths=None, training=True):
        """seq_forward from given initial states (the list a previous call returned, h first, or None for zeros);
        returns y and the list of final states (Sequential's stateful mode and truncated BPTT). The carried
        states are values: no gradient flows into them."""
        if self.bidirectional:
            raise ValueError("stateful: a bidirectional layer reads the future; its states cannot carry over")
        return self._forward_states(x, state, lengths, training)

    def _batch_axis(self) -> int:
        return 0 if self.batch_first else 1

    @property
    def rng_state(self) -> int:
        """The dropout mask counter: restore it (with the same seed) to draw the same masks again."""
        return self._core.rng_counter

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        self._core.rng_counter = int(value)

    # --- forward -------------------------------------------------------------------------------------
    def _time_major(self, x):
        """x checked and time-major (T, B, I), with at least one step and one sequence."""
        x = float_array("x", x, self.dtype, shape=(None, None, self.input_size))
        if self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x: expected at least one time step and one sequence, got {shape_str(x.shape)}")
        return x

    def _finish_y(self, y, training):
        """The core's y merged (bidirectional merge modes) and laid out as the caller's x."""
        if self._merged():
            y = self._merge(y, training)
        if self.batch_first:
            y = tuple(part.transpose(1, 0, 2) for part in y) if isinstance(y, tuple) else y.transpose(1, 0, 2)
        return y

    def _forward_states(self, x, states, lengths, training):
        """The call of a cell with any number of states: states None or a list of num_states arrays (each None
        for zeros), state k of shape (L*D, B, width k), h first; returns y and the list of final states."""
        x = self._time_major(x)
        B = x.shape[1]
        if states is not None:
            widths, LD = self._core.state_sizes, self.num_layers * self.num_directions
            states = [None if s is None else float_array(f"state[{k}]", s, self.dtype, shape=(LD, B, widths[k]))
                      for k, s in enumerate(states)]
        if lengths is not None:
            lengths = lengths_array(lengths, B, x.shape[0], minimum=0)
        y, finals = self._core.forward(x, states, lengths, flag("training", training))
        return self._finish_y(y, training), list(finals)

    def _backward_states(self, dy, dstates):
        """Backward of _forward_states: dstates None or a list like its states; returns dx and the list of
        gradients w.r.t. the initial states."""
        dy = self._time_major_dy(dy)
        if dstates is not None:
            widths, LD, B = self._core.state_sizes, self.num_layers * self.num_directions, dy.shape[1]
            dstates = [None if s is None else float_array(f"dstate[{k}]", s, self.dtype, shape=(LD, B, widths[k]))
                       for k, s in enumerate(dstates)]
        dx, initials = self._core.backward(dy, dstates)
        return (dx.transpose(1, 0, 2) if self.batch_first else dx), list(initials)

    def _forward(self, x, h0, c0, lengths, training, g0=None):
        x = self._time_major(x)
        T, B = x.shape[0], x.shape[1]
        state_shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if h0 is not None:
            h0 = float_array("h0", h0, self.dtype, shape=state_shape[:2] + (self._h_size,))
        if c0 is not None:
            c0 = float_array("c0", c0, self.dtype, shape=state_shape)
        if lengths is not None:
            lengths = lengths_array(lengths, B, T, minimum=0)
        training = flag("training", training)
        if g0 is not None:
            g0 = float_array("state[2]", g0, self.dtype, shape=state_shape[:2] + (3 * self.hidden_size,))
        y, h_n, c_n, g_n = self._core_forward(x, h0, c0, lengths, training, g0)
        self._g_n = g_n
        return self._finish_y(y, training), h_n, c_n

    # --- bidirectional merge modes (Keras's Bidirectional): the core concatenates, these combine ----------
    def _merge(self, y, training):
        H = self._h_size
        fwd, bwd = y[..., :H], y[..., H:]
        self._merge_saved = (fwd, bwd) if training and self.merge_mode == "mul" else None
        if self.merge_mode is None:
            return np.ascontiguousarray(fwd), np.ascontiguousarray(bwd)
        if self.merge_mode == "sum":
            return fwd + bwd
        if self.merge_mode == "mul":
            return fwd * bwd
        return (fwd + bwd) * self.dtype.type(0.5)  # ave

    def _unmerge(self, dy, T, B):
        """The gradient w.r.t. the concatenated outputs from the one w.r.t. the merged outputs (time-major)."""
        if self.merge_mode is None:
            return np.concatenate(dy, axis=2)
        if self.merge_mode == "sum":
            return np.concatenate([dy, dy], axis=2)
        if self.merge_mode == "ave":
            half = dy * self.dtype.type(0.5)
            return np.concatenate([half, half], axis=2)
        if self._merge_saved is None:
            raise RuntimeError("backward: no recorded training forward; call the module with training=True first")
        fwd, bwd = self._merge_saved
        self._merge_saved = None
        return np.concatenate([dy * bwd, dy * fwd], axis=2)

    # --- backward ------------------------------------------------------------------------------------
    def _time_major_dy(self, dy):
        """dy (a tuple with merge_mode=None) checked against the recorded forward, unmerged, time-major."""
        T, B = self._recorded_shape()
        out = self.output_size
        shape = (B, T, out) if self.batch_first else (T, B, out)
        if self.bidirectional and self.merge_mode is None:
            if not isinstance(dy, (tuple, list)) or len(dy) != 2:
                raise TypeError(f"dy: merge_mode=None takes a tuple (dy_forward, dy_backward), got {type(dy).__name__}")
            dy = tuple(float_array(name, part, self.dtype, shape=shape) for name, part in zip(("dy[0]", "dy[1]"), dy))
            if self.batch_first:
                dy = tuple(part.transpose(1, 0, 2) for part in dy)
        else:
            dy = float_array("dy", dy, self.dtype, shape=shape)
            if self.batch_first:
                dy = dy.transpose(1, 0, 2)
        dy = self._unmerge(dy, T, B) if self._merged() else dy
        return np.ascontiguousarray(dy)

    def _backward(self, dy, dh_n, dc_n, dg_n=None):
        dy = self._time_major_dy(dy)
        B = dy.shape[1]
        state_shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if dh_n is not None:
            dh_n = float_array("dh_n", dh_n, self.dtype, shape=state_shape[:2] + (self._h_size,))
        if dc_n is not None:
            dc_n = float_array("dc_n", dc_n, self.dtype, shape=state_shape)
        if dg_n is not None:
            dg_n = float_array("dstate[2]", dg_n, self.dtype, shape=state_shape[:2] + (3 * self.hidden_size,))
        dx, dh0, dc0, dg0 = self._core_backward(dy, dh_n, dc_n, dg_n)
        self._dg0 = dg0
        if self.batch_first:
            dx = dx.transpose(1, 0, 2)
        return dx, dh0, dc0

    def export_onnx(self, path, batch_first=None, dynamic_axes=True, opset=17) -> None:
        """Write this layer as a one-layer model in ONNX (input "X", int32 "sequence_lens", output "Y")."""
        importlib.import_module(__package__ + ".onnx_export").export_onnx(
            self, path, batch_first=batch_first, dynamic_axes=dynamic_axes, opset=opset)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._repr_extra().items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
                f"{extra}, dtype='{self.dtype.name}')")

    def _repr_extra(self) -> dict:
        defaults = {"bias": True, "batch_first": False, "dropout": 0.0, "bidirectional": False,
                    "recurrent_dropout": 0.0, "merge_mode": "concat"}
        keys = tuple(defaults)
        return {k: getattr(self, k) for k in keys if getattr(self, k) != defaults[k]}


class _TwoState(_Recurrent):
    """The call convention of a cell with states (h, c): LSTM's."""

    def __call__(self, x, state=None, lengths=None, training=True):
        """x: (T, B, I) or (B, T, I) with batch_first; state: (h0, c0), each (L*D, B, H), or None for zeros.

        Returns y, (h_n, c_n): y (T, B, D*H) (or batch-first), zero past each sequence's length. With
        full_gate_recurrence the state is (h, c, a), a (L*D, B, 3H) the last step's i, f, o activations.
        """
        h0, c0, g0 = self._state_parts("state", state)
        y, h_n, c_n = self._forward(x, h0, c0, lengths, training, g0)
        return y, ((h_n, c_n) if self._g_n is None else (h_n, c_n, self._g_n))

    def _state_parts(self, name, state):
        """(h, c) or, with a gate state, (h, c) or (h, c, a) -> h, c, a (None where not given)."""
        if self._core.num_states == 3 and isinstance(state, (tuple, list)) and len(state) == 3:
            return state[0], state[1], state[2]
        h, c = state_pair(name, state)
        return h, c, None

    forward = __call__

    def backward(self, dy, dstate=None):
        """Backpropagate through the most recent training forward; returns dx, (dh0, dc0).

        dy matches y; dstate (dh_n, dc_n) matches the final state (None for zeros). Parameter gradients
        accumulate into `grads`.
        """
        dh_n, dc_n, dg_n = self._state_parts("dstate", dstate)
        dx, dh0, dc0 = self._backward(dy, dh_n, dc_n, dg_n)
        return dx, ((dh0, dc0) if self._dg0 is None else (dh0, dc0, self._dg0))


class LSTM(_TwoState):
    __doc__ = _docs.document("""
        Long short-term memory with forget gate, and the variants of the LSTM family as keywords.

        i = σ(W_i x + R_i h + b_i [+ p_i c_prev])   f = σ(W_f x + R_f h + b_f [+ p_f c_prev])   g = act(W_g x + R_g h + b_g)
        c = f c_prev + i g                          o = σ(W_o x + R_o h + b_o [+ p_o c])          h = o act(c)
        σ is recurrent_activation, act is activation; cell_clip clips the gates' and g's activation inputs to [-clip, clip].
        Peephole weights are the extra parameters `weight_peephole_l{k}[_reverse]`, shape (3, H), rows i, f, o.
        Greff et al. (2016) variants of the vanilla (peephole) LSTM, each a keyword (combine with peephole=True):
          NIG  input_gate=False             i = 1
          NFG  forget_gate=False            f = 1
          NOG  output_gate=False            o = 1
          NIAF input_activation=False       g = W_g x + R_g h + b_g (no activation)
          NOAF output_activation=False      h = o c
          NP   peephole=False               (the default)
          CIFG coupled_input_forget=True    i = 1 - f (ONNX input_forget)
          FGR  full_gate_recurrence=True    i, f, o also see [i, f, o] of the previous step through
                                            `weight_gates_l{k}` (3H, 3H): rows i, f, o of this step, columns of
                                            the previous one; the state is then (h, c, a), a (L*D, B, 3H)
        A removed or coupled gate has no rows: weight_ih, weight_hh and the biases hold G*H rows for the G gates
        that remain, in the order i, f, g, o. `LSTM.greff("NFG", I, H)` builds a variant by the paper's name.
        proj_size P > 0 (torch's LSTM with projections, Sak et al. 2014): h = (o act(c)) W_hr^T with W_hr =
        `weight_hr_l{k}[_reverse]` (P, H); h, h0, h_n and y per direction have P features, c keeps H, weight_hh is
        (G*H, P) and a stacked layer reads D*P features.
        layer_norm=True (Ba et al. 2016, haste's LayerNormLSTM): v = γx ⊙ LN(W x) + γh ⊙ LN(R h) + b_ih + b_hh gives
        the gates, and h = o act(γc ⊙ LN(c) + βc); LN normalises a row to zero mean and unit variance (eps 1e-5).
        Gains `weight_ln_ih_l{k}`, `weight_ln_hh_l{k}` (G,) start at 1, `weight_ln_c_l{k}` (H,) at 1 and
        `bias_ln_c_l{k}` (H,) at 0. It runs on a driver whose threads own batch rows.
        Zoneout (Krueger et al. 2017): in training each unit of h (c) keeps its previous value with probability
        zoneout (zoneout_cell), per step, masks drawn from the seed; inference uses h = p h_prev + (1 - p) h_new.
        Call: `y, (h_n, c_n) = lstm(x, state=None, lengths=None, training=True)`; `lstm.backward(dy, dstate=None)`.
        """, _docs.insert_after(_docs.insert_after(_docs.LAYER_ARGS, "bidirectional", "peephole", *_docs.LSTM_OPTIONS),
                                "recurrent_init", "forget_bias"),
        hidden_size="features of the hidden state h and cell state c (H).",
        peephole="add the peephole weights (see above), default False.",
        forget_bias="default None keeps torch's uniform biases; a number v sets every bias to zero except the forget "
                    "gate's bias_ih = v (Keras's unit_forget_bias is v = 1.0). Needs bias=True and the forget gate.")

    _kind = "lstm"
    _has_cell_state = True
    # Greff et al. (2016), Table 1: the paper's variant names as keyword options (NP is the default, no peepholes;
    # V, the vanilla LSTM, has peepholes).
    GREFF = {"V": dict(peephole=True), "NP": dict(), "NIG": dict(peephole=True, input_gate=False),
             "NFG": dict(peephole=True, forget_gate=False), "NOG": dict(peephole=True, output_gate=False),
             "NIAF": dict(peephole=True, input_activation=False), "NOAF": dict(peephole=True, output_activation=False),
             "CIFG": dict(peephole=True, coupled_input_forget=True),
             "FGR": dict(peephole=True, full_gate_recurrence=True)}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 peephole: bool = False, activation: str | tuple = "tanh", recurrent_activation: str | tuple = "sigmoid",
                 cell_clip: float | None = None, proj_size: int = 0, layer_norm: bool = False, zoneout: float = 0.0,
                 zoneout_cell: float = 0.0,
                 merge_mode: str | None = "concat", input_gate: bool = True, forget_gate: bool = True,
                 output_gate: bool = True, input_activation: bool = True, output_activation: bool = True,
                 coupled_input_forget: bool = False, full_gate_recurrence: bool = False, seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", recurrent_dropout: float = 0.0, l1: float = 0.0,
                 l2: float = 0.0, kernel_init: str = "uniform", recurrent_init: str = "uniform",
                 forget_bias: float | None = None, backend: str = "cpu") -> None:
        self.peephole = flag("peephole", peephole)
        options = lstm_options(activation, recurrent_activation, cell_clip, zoneout, zoneout_cell, input_gate,
                               forget_gate, output_gate, input_activation, output_activation, coupled_input_forget)
        if forget_bias is not None and not options["forget_gate"]:
            raise ValueError("forget_bias: the layer has no forget gate (forget_gate=False)")
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or proj_size < 0:
            raise ValueError(f"proj_size: expected a non-negative integer, got {proj_size!r}")
        if proj_size and not 0 < proj_size < positive_int("hidden_size", hidden_size):
            raise ValueError(f"proj_size: expected 0 or a size below hidden_size ({hidden_size}), got {proj_size}")
        if proj_size and (options["zoneout"] or options["zoneout_cell"]):
            raise ValueError("proj_size: zoneout with a projection is not available yet")
        options["proj_size"] = int(proj_size)
        options["layer_norm"] = flag("layer_norm", layer_norm)
        options["full_gate_recurrence"] = flag("full_gate_recurrence", full_gate_recurrence)
        self._options = options
        for k, v in options.items():
            setattr(self, k, v)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype, peephole=self.peephole,
                         recurrent_dropout=recurrent_dropout, l1=l1, l2=l2, kernel_init=kernel_init,
                         recurrent_init=recurrent_init, forget_bias=forget_bias, backend=backend, options=options,
                         merge_mode=merge_mode)

    @classmethod
    def greff(cls, name: str, input_size: int, hidden_size: int, **kwargs) -> "LSTM":
        """The variant of Greff et al. (2016) called `name` ('V', 'NP', 'NIG', 'NFG', 'NOG', 'NIAF', 'NOAF',
        'CIFG', 'FGR'): LSTM(input_size, hidden_size, **options of the variant, **kwargs)."""
        if name not in cls.GREFF:
            raise ValueError(f"name: expected one of {sorted(cls.GREFF)}, got {name!r}")
        return cls(input_size, hidden_size, **{**cls.GREFF[name], **kwargs})

    def _forget_rows(self):
        """The rows of the forget gate in the gate blocks (after any removed input gate)."""
        at = 1 if self.input_gate and not self.coupled_input_forget else 0
        return slice(at * self.hidden_size, (at + 1) * self.hidden_size)

    def _kind_config(self) -> dict:
        return dict(peephole=self.peephole, forget_bias=self.forget_bias,
                    **{k: _jsonable(v) for k, v in self._options.items()})

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if self.peephole:
            extra["peephole"] = True
        extra.update(non_default(self._options))
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
        linear_before_reset=True (torch, cuDNN):   n = act(W_n x + b_in + r (R_n h + b_hn))
        linear_before_reset=False (Cho et al.):    n = act(W_n x + b_in + R_n (r h) + b_hn)
        σ is recurrent_activation, act is activation. Zoneout as rnnkit.LSTM's, on h.
        layer_norm=True (haste's LayerNormGRU): W x and R h are normalised (gains `weight_ln_ih_l{k}`,
        `weight_ln_hh_l{k}` of shape (3H,), starting at 1) before the biases are added; needs linear_before_reset.
        Call: `y, h_n = gru(x, h0=None, lengths=None, training=True)`; `gru.backward(dy, dh_n=None)`.
        """, _docs.insert_after(_docs.insert_after(_docs.LAYER_ARGS, "bidirectional", *_docs.GRU_OPTIONS), "dtype",
                                "linear_before_reset"),
        linear_before_reset="the candidate n as above: True (torch, cuDNN) or False (Cho et al. 2014), default True.",
        activation="the candidate's activation act, default 'tanh' (any of rnnkit.LSTM's activations).",
        zoneout="probability that a unit of h keeps its previous value at a training step (inference: the "
                "expectation), default 0.0.")

    _kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 activation: str | tuple = "tanh", recurrent_activation: str | tuple = "sigmoid",
                 layer_norm: bool = False, zoneout: float = 0.0, merge_mode: str | None = "concat",
                 seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", linear_before_reset: bool = True,
                 recurrent_dropout: float = 0.0, l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform",
                 recurrent_init: str = "uniform", backend: str = "cpu") -> None:
        self.linear_before_reset = flag("linear_before_reset", linear_before_reset)
        self._options = gru_options(activation, recurrent_activation, zoneout)
        self._options["layer_norm"] = flag("layer_norm", layer_norm)
        for k, v in self._options.items():
            setattr(self, k, v)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype,
                         linear_before_reset=self.linear_before_reset, recurrent_dropout=recurrent_dropout, l1=l1,
                         l2=l2, kernel_init=kernel_init, recurrent_init=recurrent_init, backend=backend,
                         options=self._options, merge_mode=merge_mode)

    def _kind_config(self) -> dict:
        return dict(linear_before_reset=self.linear_before_reset,
                    **{k: _jsonable(v) for k, v in self._options.items()})

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if not self.linear_before_reset:
            extra["linear_before_reset"] = False
        extra.update(non_default(self._options))
        return extra


class RNN(_SingleState):
    __doc__ = _docs.document("""
        Simple (Elman) RNN: h = act(W x + b_ih + R h_prev + b_hh).

        act is `nonlinearity`: torch's 'tanh' or 'relu', or any other of rnnkit.LSTM's activations.
        Call: `y, h_n = rnn(x, h0=None, lengths=None, training=True)`; `rnn.backward(dy, dh_n=None)`.
        """, _docs.insert_after(_docs.insert_after(_docs.LAYER_ARGS, "num_layers", "nonlinearity"), "bidirectional",
                                "merge_mode"),
        nonlinearity="the activation act, default 'tanh': a name ('tanh', 'relu', 'sigmoid', 'linear', 'softsign', "
                     "'softplus', 'elu', 'hard_sigmoid', 'leaky_relu', 'scaled_tanh') or a tuple with parameters "
                     "such as ('leaky_relu', 0.1).")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, nonlinearity: str | tuple = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 merge_mode: str | None = "concat", seed: int | None = None, dtype: str | type | np.dtype = "float32",
                 recurrent_dropout: float = 0.0, l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform",
                 recurrent_init: str = "uniform", backend: str = "cpu") -> None:
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        kind = _rnn_kind(self.nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype, kind=kind,
                         recurrent_dropout=recurrent_dropout, l1=l1, l2=l2, kernel_init=kernel_init,
                         recurrent_init=recurrent_init, backend=backend,
                         options={"activation": self.nonlinearity} if kind == "rnn" else None, merge_mode=merge_mode)

    def _kind_config(self) -> dict:
        return dict(nonlinearity=_jsonable(self.nonlinearity))

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if self.nonlinearity != "tanh":
            extra["nonlinearity"] = self.nonlinearity
        return extra


class IndRNN(_SingleState):
    __doc__ = _docs.document("""
        Independently recurrent network (Li et al. 2018): h = act(W x + b_ih + b_hh + u * h_prev).

        The recurrence is elementwise: weight_hh_l{k} is a vector u of shape (H,), so units interact only through
        the next layer (stack layers, as the paper does). recurrent_clip c makes the effective weights clip(u, -c,
        c) (the paper bounds |u| to keep gradients from exploding or vanishing over long sequences; no gradient
        reaches an entry while it is clipped). Parameters: weight_ih (H, I), weight_hh (H,), bias_ih, bias_hh (H,).
        Call: `y, h_n = indrnn(x, h0=None, lengths=None, training=True)`; `indrnn.backward(dy, dh_n=None)`.
        """, _docs.insert_after(_docs.insert_after(_docs.LAYER_ARGS, "num_layers", "nonlinearity", "recurrent_clip"),
                                "bidirectional", "merge_mode"),
        nonlinearity="the activation act, default 'relu' (the paper's); any of rnnkit.RNN's.",
        recurrent_clip="default None (no clipping); a positive c bounds the recurrent weights to [-c, c].")

    _kind = "indrnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, nonlinearity: str | tuple = "relu",
                 recurrent_clip: float | None = None, bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, merge_mode: str | None = "concat",
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", recurrent_dropout: float = 0.0,
                 l1: float = 0.0, l2: float = 0.0, kernel_init: str = "uniform", recurrent_init: str = "uniform",
                 backend: str = "cpu") -> None:
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self.recurrent_clip = clip_value("recurrent_clip", recurrent_clip)
        if recurrent_init != "uniform":
            raise ValueError(f"recurrent_init: an IndRNN's weight_hh is a vector; expected 'uniform', got "
                             f"{recurrent_init!r}")
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, seed=seed, dtype=dtype, recurrent_dropout=recurrent_dropout,
                         l1=l1, l2=l2, kernel_init=kernel_init, recurrent_init=recurrent_init, backend=backend,
                         options={"activation": self.nonlinearity, "recurrent_clip": self.recurrent_clip},
                         merge_mode=merge_mode)

    def _kind_config(self) -> dict:
        return dict(nonlinearity=_jsonable(self.nonlinearity), recurrent_clip=self.recurrent_clip)

    def _repr_extra(self) -> dict:
        extra = super()._repr_extra()
        if self.nonlinearity != "relu":
            extra["nonlinearity"] = self.nonlinearity
        if self.recurrent_clip:
            extra["recurrent_clip"] = self.recurrent_clip
        return extra


# Layer classes of registered cells written in other modules (xlstm_layers.py, min_rnn.py).
_DEFINED_ELSEWHERE = ("sLSTM", "mLSTM", "minGRU", "minLSTM")


def _layers_of_registered_cells() -> dict:
    """A layer class for every cell kind registered in C++ (`_core.cell_kinds()`) that has no class above, so
    that a cell added in C++ (a header and a registry row) is a keyword away here too: one state gets GRU's
    call convention, two states LSTM's. The class takes the arguments of rnnkit.RNN, less nonlinearity."""
    made = {}
    for cell in _core.cell_kinds():
        name = cell["layer_class"]
        if name in globals() or name in made or name in _DEFINED_ELSEWHERE or cell["num_states"] > 2:
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
