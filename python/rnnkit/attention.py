"""Attention over a source sequence (Bahdanau's additive score; Luong's dot, general and concat), math in C++.

    e_s = v . tanh(W_q q + W_k k_s + b)     "bahdanau"       weight_query (U, Q), weight_key (U, K), bias (U,),
                                                             weight_score (U,)
    e_s = q . k_s                           "luong_dot"      (query_size == key_size)
    e_s = q . (W k_s)                       "luong_general"  weight (Q, K)
    e_s = v . tanh(W [q; k_s])              "luong_concat"   weight (U, Q + K), weight_score (U,)
    weights = softmax of e over s < length (exactly 0 beyond it; all 0 for length 0);  context = Σ_s weights_s k_s
"""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import as_dtype, float_array, lengths_array, positive_int, seed_value
from .module import NamedSlabs

__all__ = ["Attention", "ATTENTION_KINDS"]

ATTENTION_KINDS = ("bahdanau", "luong_dot", "luong_general", "luong_concat")


class Attention(NamedSlabs, register=False):
    """Attention of a query over keys, with a source mask from lengths.

    Args:
        query_size: Q, features of a query (a decoder state).
        key_size: K, features of a key (an encoder output).
        kind: "bahdanau" (additive), "luong_dot", "luong_general" or "luong_concat", default 'bahdanau'.
        units: U, the additive scores' hidden size (bahdanau, luong_concat); None means query_size; the other kinds
            take no units, default None.
        dtype: "float32" or "float64", default 'float32'.
        seed: parameter initialisation; None draws fresh entropy, default None.

    Not a layer of a Sequential (it takes a query and keys, not a sequence), so it stays out of the layer registry;
    Attention.from_config(attention.get_config()) rebuilds one.

    Call: ``context, weights = attention(query, keys, lengths=None)`` with query (B, Q), keys (B, S, K), lengths
    (B,) in 0..S; context is (B, K), weights (B, S). ``backward(dcontext, dweights=None)`` returns
    (dquery, dkeys) for the most recent call and accumulates the parameter gradients.
    """

    def __init__(self, query_size: int, key_size: int, kind: str = "bahdanau", units: int | None = None, *,
                 dtype: str = "float32", seed: int | None = None) -> None:
        self.query_size = positive_int("query_size", query_size)
        self.key_size = positive_int("key_size", key_size)
        if not isinstance(kind, str) or kind not in ATTENTION_KINDS:
            raise ValueError(f"kind: expected one of {list(ATTENTION_KINDS)}, got {kind!r}")
        self.kind = kind
        if units is not None:
            units = positive_int("units", units)
            if kind in ("luong_dot", "luong_general"):
                raise ValueError(f"units: {kind} attention has no hidden units; pass units=None, got {units}")
        if kind == "luong_dot" and self.query_size != self.key_size:
            raise ValueError(f"key_size: luong_dot attention scores q . k and needs key_size == query_size "
                             f"({self.query_size}), got {self.key_size}")
        self.units = units
        self.dtype = as_dtype(dtype)
        self.seed = seed_value(seed)
        cls = _core.Attention32 if self.dtype == np.float32 else _core.Attention64
        self._core = cls(kind, self.query_size, self.key_size, units or 0, self.seed)
        self._bind_slabs(self._core.param_slab(), self._core.grad_slab(), self._core.parameter_info())
        self._saved = None

    def forward(self, query, keys, lengths=None, training: bool = True):
        """(context (B, K), weights (B, S)); training=True keeps what backward needs."""
        query = float_array("query", query, self.dtype, shape=(None, self.query_size))
        B = query.shape[0]
        keys = float_array("keys", keys, self.dtype, ndim=3)
        if keys.shape[0] != B or keys.shape[2] != self.key_size or keys.shape[1] < 1:
            raise ValueError(f"keys: expected shape ({B}, S, {self.key_size}) with S >= 1 (B from query), got "
                             f"{tuple(keys.shape)}")
        if lengths is not None:
            lengths = lengths_array(lengths, B, keys.shape[1], minimum=0)
        context, weights, proj = self._core.forward(query, keys, lengths)
        self._saved = (query, keys, proj, weights, lengths) if training else None
        return context, weights

    __call__ = forward

    def backward(self, dcontext, dweights=None):
        """(dquery (B, Q), dkeys (B, S, K)) of the most recent training call; parameter gradients accumulate."""
        if self._saved is None:
            raise RuntimeError("backward: no recorded training call; call the attention with training=True first")
        query, keys, proj, weights, lengths = self._saved
        B, S = weights.shape
        dcontext = float_array("dcontext", dcontext, self.dtype, shape=(B, self.key_size))
        if dweights is not None:
            dweights = float_array("dweights", dweights, self.dtype, shape=(B, S))
        self._saved = None
        return self._core.backward(dcontext, dweights, query, keys, proj, weights, lengths)

    def get_config(self) -> dict:
        return {"query_size": self.query_size, "key_size": self.key_size, "kind": self.kind, "units": self.units,
                "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self) -> str:
        units = f", units={self.units}" if self.units else ""
        return f"Attention({self.query_size}, {self.key_size}, kind={self.kind!r}{units})"
