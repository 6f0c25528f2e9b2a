"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that read the input only, so a step is
h = a h_prev + b with coefficients known for all steps at once, and training runs a parallel scan over time in
C++ (threads split the time axis). Inference and streaming run step by step. Stacked and bidirectional like the
other layers (a layer's units interact only through the next layer, as in the paper).
"""
from __future__ import annotations

import numpy as np

from . import _docs
from .layers import _SingleState

__all__ = ["minGRU", "minLSTM"]

_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "merge_mode",
         "seed", "dtype", "l1", "l2", "kernel_init", "backend")
_G = "g(x) = x + 1/2 for x >= 0 and σ(x) for x < 0 (positive, so the paper's log-space form applies)"


class _MinRNN(_SingleState, register=False):
    """The constructor and config minGRU and minLSTM share (no recurrent weights: no recurrent_dropout or
    recurrent_init)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 merge_mode: str | None = "concat", seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", l1: float = 0.0, l2: float = 0.0,
                 kernel_init: str = "uniform", backend: str = "cpu") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, merge_mode=merge_mode, seed=seed, dtype=dtype, l1=l1, l2=l2,
                         kernel_init=kernel_init, backend=backend)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["recurrent_dropout"], config["recurrent_init"]  # no recurrent weights
        return config


class minGRU(_MinRNN):
    __doc__ = _docs.document(f"""
        minGRU: z = σ(W_z x + b_z), h~ = g(W_h x + b_h), h = (1 - z) h_prev + z h~.

        {_G}. weight_ih_l{{k}} (2H, I) rows z then h~, bias_ih_l{{k}} (2H,). Training runs the recurrence as a
        parallel scan over time (two passes over each thread's block of steps, no division by cumulative products,
        so any h0 works); inference step by step. Call: `y, h_n = mingru(x, h0=None, lengths=None, training=True)`;
        `dx, dh0 = mingru.backward(dy, dh_n=None)`.
        """, _ARGS, bias="whether the layer has bias_ih_l{k}, default True.")

    _kind = "mingru"


class minLSTM(_MinRNN):
    __doc__ = _docs.document(f"""
        minLSTM: f = σ(W_f x + b_f), i = σ(W_i x + b_i), h~ = g(W_h x + b_h), h = f' h_prev + i' h~ with
        f' = f / (f + i), i' = i / (f + i).

        {_G}. f' is computed as σ(log σ(f~) - log σ(i~)) (the paper's log-space normalisation). weight_ih_l{{k}}
        (3H, I) rows i, f, h~; bias_ih_l{{k}} (3H,). Training runs a parallel scan over time; inference step by step.
        Call: `y, h_n = minlstm(x, h0=None, lengths=None, training=True)`; `dx, dh0 = minlstm.backward(dy, dh_n=None)`.
        """, _ARGS, bias="whether the layer has bias_ih_l{k}, default True.")

    _kind = "minlstm"
