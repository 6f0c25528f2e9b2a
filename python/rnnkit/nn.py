"""Feed-forward layers around the recurrent ones: Dense, Embedding, Dropout, LastStep.

Each is a forward/backward pair whose math runs in C++; shapes: T = time steps, B = batch, F = features.
"""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import (as_dtype, flag, float_array, lengths_array, non_negative, positive_int, probability, seed_value,
                      shape_str, untorch)
from .module import Module, SlabModule

__all__ = ["Dense", "Embedding", "Dropout", "LastStep"]

_ACTIVATIONS = (None, "relu", "tanh", "sigmoid", "softmax")


class Dense(SlabModule):
    """y = activation(x W^T + b), applied to the last axis (per step on 3-D input). torch.nn.Linear names:
    `weight` (out, in), `bias` (out,), initialised U(-1/sqrt(in), 1/sqrt(in)) like torch.

    Args:
        in_features: size of the last axis of x.
        out_features: size of the last axis of y.
        activation: None (linear), 'relu', 'tanh', 'sigmoid' or 'softmax' (over the last axis), default None.
        bias: whether the layer has the bias b, default True.
        l1: coefficient of the L1 penalty l1 Σ|W| on the weight (not the bias) that regularize() and fit add,
            default 0.0.
        l2: coefficient of the L2 penalty l2 Σ W² on the weight (not the bias), default 0.0.
        seed: non-negative integer below 2**64 that fixes the initial parameters; default None draws fresh OS
            entropy.
        dtype: 'float32' or 'float64' (or np.float32 / np.float64) for parameters, inputs and outputs, default
            'float32'.
    """

    def __init__(self, in_features: int, out_features: int, activation: str | None = None, *, bias: bool = True,
                 l1: float = 0.0, l2: float = 0.0, seed: int | None = None,
                 dtype: str | type | np.dtype = "float32") -> None:
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.bias = bool(bias)
        self.l1, self.l2 = non_negative("l1", l1), non_negative("l2", l2)
        shapes = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        self._init_slab(dtype, shapes, seed)
        bound = 1.0 / np.sqrt(self.in_features)
        self._param_slab[...] = np.random.default_rng(self.seed).uniform(-bound, bound, self._param_slab.size)
        self._saved = None

    def get_config(self) -> dict:
        return dict(in_features=self.in_features, out_features=self.out_features, activation=self.activation,
                    bias=self.bias, l1=self.l1, l2=self.l2, seed=self.seed, dtype=self.dtype.name)

    def seq_forward(self, x, lengths=None, training=True):
        x = float_array("x", x, self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {shape_str(x.shape)}")
        rows = x.reshape(-1, self.in_features)
        y = np.empty((rows.shape[0], self.out_features), self.dtype)
        _core.dense_forward(y, rows, self._params["weight"], self._params.get("bias"), rows.shape[0],
                            self.in_features, self.out_features, self.activation or "none")
        self._saved = (rows, y, x.shape) if training else None
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def seq_backward(self, dout):
        if self._saved is None:
            raise RuntimeError("backward: no recorded training forward for Dense; call it with training=True first")
        rows, y, in_shape = self._saved
        dout = float_array("dout", dout, self.dtype, shape=in_shape[:-1] + (self.out_features,))
        dx = np.empty_like(rows)
        _core.dense_backward(dx, self._grads["weight"], self._grads.get("bias"), dout.reshape(y.shape), y, rows,
                             self._params["weight"], rows.shape[0], self.in_features, self.out_features,
                             self.activation or "none")
        self._saved = None
        return dx.reshape(in_shape)


class Embedding(SlabModule):
    """Integer tokens -> vectors: y[..., :] = weight[tokens[...]]. `weight` (num_embeddings, embedding_dim) is
    initialised N(0, 1) (standard normal) like torch.nn.Embedding. Its backward returns None (no gradient for
    integer inputs) and accumulates into the rows of the tokens seen.

    Args:
        num_embeddings: size of the vocabulary: tokens are integers in 0..num_embeddings - 1.
        embedding_dim: size of each vector (the last axis of y).
        l1: coefficient of the L1 penalty l1 Σ|weight| that regularize() and fit add, default 0.0.
        l2: coefficient of the L2 penalty l2 Σ weight², default 0.0.
        seed: non-negative integer below 2**64 that fixes the initial N(0, 1) table; default None draws fresh OS
            entropy.
        dtype: 'float32' or 'float64' (or np.float32 / np.float64) for the table and the outputs, default
            'float32'.
        mask_zero: token 0 is padding (Keras's mask_zero): as the first layer of a Sequential, a call without
            lengths takes each sequence's length as its count of non-zero tokens, default False.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, l1: float = 0.0, l2: float = 0.0,
                 seed: int | None = None, dtype: str | type | np.dtype = "float32", mask_zero: bool = False) -> None:
        self.mask_zero = flag("mask_zero", mask_zero)
        self.num_embeddings = positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        self.l1, self.l2 = non_negative("l1", l1), non_negative("l2", l2)
        self._init_slab(dtype, {"weight": (self.num_embeddings, self.embedding_dim)}, seed)
        self._param_slab[...] = np.random.default_rng(self.seed).standard_normal(self._param_slab.size)
        self._saved = None

    def get_config(self) -> dict:
        # (the C++ Model keeps mask_zero in the file but does not act on it: pass lengths there)
        return dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim, l1=self.l1, l2=self.l2,
                    seed=self.seed, dtype=self.dtype.name, mask_zero=self.mask_zero)

    def seq_forward(self, x, lengths=None, training=True):
        tokens = np.asarray(untorch(x))
        if not np.issubdtype(tokens.dtype, np.integer):
            raise TypeError(f"tokens: expected an integer array, got dtype {tokens.dtype}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.num_embeddings):
            raise ValueError(f"tokens: expected values in 0..{self.num_embeddings - 1}, got values in "
                             f"{tokens.min()}..{tokens.max()}")
        flat = np.ascontiguousarray(tokens.reshape(-1), dtype=np.int64)
        y = np.empty((flat.size, self.embedding_dim), self.dtype)
        _core.embedding_forward(y, flat, self._params["weight"], flat.size, self.num_embeddings, self.embedding_dim)
        self._saved = (flat, tokens.shape) if training else None
        return y.reshape(tokens.shape + (self.embedding_dim,))

    def seq_backward(self, dout):
        if self._saved is None:
            raise RuntimeError("backward: no recorded training forward for Embedding; call it with training=True first")
        flat, shape = self._saved
        dout = float_array("dout", dout, self.dtype, shape=shape + (self.embedding_dim,))
        _core.embedding_backward(self._grads["weight"], dout.reshape(flat.size, self.embedding_dim), flat, flat.size,
                                 self.num_embeddings, self.embedding_dim)
        self._saved = None
        return None


class Dropout(Module):
    """Inverted dropout in training (zero with probability p, scale the rest by 1/(1-p)); identity otherwise.
    Masks come from (seed, a counter that advances per training call), so runs are reproducible.

    Args:
        p: probability of zeroing each element, in [0, 1), default 0.5.
        seed: non-negative integer below 2**64 that fixes the masks; default None draws fresh OS entropy.
        dtype: 'float32' or 'float64' (or np.float32 / np.float64) of the inputs, default 'float32'.
    """

    def __init__(self, p: float = 0.5, *, seed: int | None = None, dtype: str | type | np.dtype = "float32") -> None:
        self.p = probability("p", p)
        self.seed = seed_value(seed)
        self.dtype = as_dtype(dtype)
        self._counter = 0
        self._mask = None

    def get_config(self) -> dict:
        return dict(p=self.p, seed=self.seed, dtype=self.dtype.name)

    @property
    def rng_state(self) -> int:
        return self._counter

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        self._counter = int(value)

    def seq_forward(self, x, lengths=None, training=True):
        x = float_array("x", x, self.dtype)
        if not training or self.p == 0.0:
            self._mask = None if not training else np.ones_like(x)
            return x
        self._counter += 1
        y, self._mask = np.empty_like(x), np.empty_like(x)
        _core.dropout_forward(y, self._mask, x, self.p, self.seed, self._counter)
        return y

    def seq_backward(self, dout):
        if self._mask is None:
            raise RuntimeError("backward: no recorded training forward for Dropout; call it with training=True first")
        dout = float_array("dout", dout, self.dtype, shape=self._mask.shape)
        dx = dout * self._mask
        self._mask = None
        return dx


class LastStep(Module):
    """(T, B, F) -> (B, F): each sequence's output at its last valid step (honouring `lengths`).

    After a bidirectional layer the reverse half of the features is taken at t = 0, where the reverse direction
    ends. `directions` and `batch_first` default to those of the recurrent layer before it in a Sequential.
    Works in the dtype of its input (float32 or float64).

    Args:
        directions: 1, or 2 when x holds a bidirectional layer's concatenated outputs; default None takes the
            recurrent layer's before it in a Sequential (1 outside one).
        batch_first: x is (B, T, F) instead of (T, B, F); default None takes the recurrent layer's before it in
            a Sequential (False outside one).
    """

    reduces_time = True

    def __init__(self, *, directions: int | None = None, batch_first: bool | None = None) -> None:
        if directions not in (None, 1, 2):
            raise ValueError(f"directions: expected 1, 2 or None, got {directions!r}")
        self.directions = directions
        self.batch_first = batch_first
        self._saved = None

    def get_config(self) -> dict:
        return dict(directions=self.directions, batch_first=self.batch_first)

    def setup(self, previous) -> None:
        """Takes `directions` and `batch_first`, where not given, from `previous`: the recurrent layer before this
        one in a Sequential (or None)."""
        if previous is not None:
            if self.directions is None:
                self.directions = getattr(previous, "output_directions", previous.num_directions)
            if self.batch_first is None:
                self.batch_first = previous.batch_first

    def seq_forward(self, x, lengths=None, training=True):
        arr = np.asarray(untorch(x))
        if arr.ndim != 3 or arr.dtype not in (np.float32, np.float64):
            raise ValueError(f"x: expected a float32/float64 array of shape (T, B, F), got {shape_str(arr.shape)} "
                             f"{arr.dtype}")
        if self.batch_first:
            arr = arr.transpose(1, 0, 2)
        x = np.ascontiguousarray(arr)
        T, B, F = x.shape
        D = self.directions or 1
        if F % D:
            raise ValueError(f"x: expected features divisible by {D} directions, got {F}")
        lens = None if lengths is None else lengths_array(lengths, B, T)
        y = np.empty((B, F), x.dtype)
        _core.last_step_forward(y, x, lens, T, B, F, D)
        self._saved = (lens, x.shape, x.dtype) if training else None
        return y

    def seq_backward(self, dout):
        if self._saved is None:
            raise RuntimeError("backward: no recorded training forward for LastStep; call it with training=True first")
        lens, (T, B, F), dtype = self._saved
        dout = float_array("dout", dout, dtype, shape=(B, F))
        dx = np.empty((T, B, F), dtype)
        _core.last_step_backward(dx, dout, lens, T, B, F, self.directions or 1)
        self._saved = None
        return dx.transpose(1, 0, 2) if self.batch_first else dx
