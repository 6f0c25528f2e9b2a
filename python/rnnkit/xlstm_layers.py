"""The xLSTM cells (Beck et al. 2024) as layers: sLSTM (exponential gating, normaliser and stabiliser states,
block-diagonal recurrent weights per head) and mLSTM (a matrix memory per head, no recurrent weights; trained in a
chunkwise-parallel form, run step by step at inference). Both stack, run bidirectionally, take variable lengths
and save like every rnnkit layer; the math is in C++ (cpp/src/cells/slstm.hpp, mlstm.hpp).
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _docs
from ._checks import positive_int
from .layers import _Recurrent

__all__ = ["sLSTM", "mLSTM"]

_ARGS = ("input_size", "hidden_size", "num_heads", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
         "merge_mode", "seed", "dtype", "l1", "l2", "kernel_init", "backend")


def _heads(num_heads, hidden_size) -> int:
    if isinstance(num_heads, bool) or not isinstance(num_heads, numbers.Integral) or num_heads < 1:
        raise ValueError(f"num_heads: expected a positive integer, got {num_heads!r}")
    H = positive_int("hidden_size", hidden_size)
    if H % num_heads:
        raise ValueError(f"num_heads: expected a divisor of hidden_size ({H}), got {num_heads}")
    return int(num_heads)


class _Headed(_Recurrent, register=False):
    """A multi-head xLSTM layer: num_heads in the config, and a state of several tensors."""

    def __init__(self, input_size, hidden_size, num_heads, num_layers, *, recurrent_dropout=0.0,
                 recurrent_init="uniform", **kwargs):
        self.num_heads = _heads(num_heads, hidden_size)
        super().__init__(input_size, hidden_size, num_layers, options={"num_heads": self.num_heads},
                         recurrent_dropout=recurrent_dropout, recurrent_init=recurrent_init, **kwargs)

    @property
    def head_size(self) -> int:
        """Units per head (dh = hidden_size / num_heads)."""
        return self.hidden_size // self.num_heads

    def _kind_config(self) -> dict:
        return {"num_heads": self.num_heads}

    def _repr_extra(self) -> dict:
        return {"num_heads": self.num_heads, **super()._repr_extra()}


class sLSTM(_Headed):
    __doc__ = _docs.document("""
        The sLSTM of xLSTM (Beck et al. 2024): exponential input and forget gates, a normaliser n and a stabiliser m.

        i~, f~, z~, o~ = W x + b_ih + R h_prev + b_hh      m = max(i~, m_prev + log σ(f~))
        i = exp(i~ - m)   f = exp(m_prev + log σ(f~) - m)   c = f c_prev + i tanh(z~)   n = f n_prev + i   h = σ(o~) c / n
        (m = i~ while a unit's memory is empty, n_prev = 0, as xlstm's code.) R is block-diagonal: each of num_heads
        heads of dh = H / num_heads units has its own (4 dh, dh) block, stored as weight_hh_l{k} (4H, dh), row g*H + u
        holding gate g's weights of unit u on the h of u's head. weight_ih (4H, I), bias_ih, bias_hh (4H,); gates i, f,
        z, o. Initialisation as xlstm: forget-gate bias_ih of unit j of a head -(-5 + 12 (j / (dh - 1))^0.3), other
        biases 0; weights torch's uniform. From xlstm's sLSTMCell: bias = ours bias_ih + bias_hh (gate-major), and its
        recurrent_kernel (NH, dh_in, 4, dh_out) is weight_hh[g*H + k*dh + out, in].
        Call: `y, (h, c, n, m) = slstm(x, state=None, lengths=None, training=True)`, each state (L*D, B, H);
        `dx, (dh0, dc0, dn0, dm0) = slstm.backward(dy, dstate=None)`.
        """, _docs.insert_after(_ARGS, "l2", "recurrent_dropout") + ("recurrent_init",),
        hidden_size="features of h and of the states c, n, m (H), a multiple of num_heads.",
        num_heads="heads of the block-diagonal recurrence, default 4 (must divide hidden_size).",
        kernel_init="initialisation of weight_ih: 'uniform' (U(-1/sqrt(H), 1/sqrt(H))) or 'glorot_uniform', default "
                    "'uniform'.",
        recurrent_init="initialisation of weight_hh: 'uniform' or 'orthogonal' (orthonormal columns per gate), "
                       "default 'uniform'.")

    _kind = "slstm"

    def __init__(self, input_size: int, hidden_size: int, num_heads: int = 4, num_layers: int = 1, *,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 merge_mode: str | None = "concat", seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", l1: float = 0.0, l2: float = 0.0,
                 recurrent_dropout: float = 0.0, kernel_init: str = "uniform", recurrent_init: str = "uniform",
                 backend: str = "cpu") -> None:
        super().__init__(input_size, hidden_size, num_heads, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, merge_mode=merge_mode, seed=seed, dtype=dtype,
                         l1=l1, l2=l2, recurrent_dropout=recurrent_dropout, kernel_init=kernel_init,
                         recurrent_init=recurrent_init, backend=backend)

    def __call__(self, x, state=None, lengths=None, training=True):
        """x: (T, B, I) (or (B, T, I) with batch_first); state: (h, c, n, m), each (L*D, B, H), or None for zeros.
        Returns y, (h_n, c_n, n_n, m_n)."""
        y, finals = self._forward_states(x, _four("state", state), lengths, training)
        return y, tuple(finals)

    forward = __call__

    def backward(self, dy, dstate=None):
        """Backpropagate through the most recent training forward; returns dx, (dh0, dc0, dn0, dm0)."""
        dx, initials = self._backward_states(dy, _four("dstate", dstate))
        return dx, tuple(initials)


def _four(name, state):
    if state is None:
        return None
    if not isinstance(state, (tuple, list)) or len(state) != 4:
        raise TypeError(f"{name}: expected a tuple (h, c, n, m) or None, got {type(state).__name__}")
    return list(state)


class mLSTM(_Headed):
    __doc__ = _docs.document("""
        The mLSTM of xLSTM (Beck et al. 2024): a (dh x dh) matrix memory per head, covariance update, no recurrence.

        q, k~, v, o~ = W x + b (H each);  i~, f~ = W x + b (one per head);  k = k~ / sqrt(dh)
        m = max(log σ(f~) + m_prev, i~)   f = exp(log σ(f~) + m_prev - m)   i = exp(i~ - m)
        C = f C_prev + i k v^T   n = f n_prev + i k   h = σ(o~) ⊙ C^T q / (max(|n . q|, exp(-m)) + 1e-6)
        per head of dh = H / num_heads units (C[a][b] = k[a] v[b], q unscaled, as xlstm's mLSTM backends). The gates
        read x only, so training runs a chunkwise-parallel form (chunks of 64 steps: inside a chunk the heads'
        (steps x steps) decay matrices, between chunks the memory), and inference the recurrent form step by step;
        both give the same numbers. weight_ih_l{k} (4H + 2 num_heads, I) rows q, k, v, o, then i~ and f~ per head;
        bias_ih_l{k} likewise. Initialisation as xlstm's mLSTMCell: the i~ and f~ rows of weight_ih are 0, their
        biases N(0, 0.1) and linspace(3, 6) over the heads; the rest torch's uniform. xlstm's mLSTMLayer adds
        convolutions, skip connections and a group norm around this cell; those are other layers here.
        Call: `y, (C, n, m) = mlstm(x, state=None, lengths=None, training=True)` with C (L*D, B, num_heads, dh, dh),
        n (L*D, B, num_heads, dh), m (L*D, B, num_heads) (given states may also be flat: (L*D, B, num_heads*dh*dh),
        ...); `dx, (dC0, dn0, dm0) = mlstm.backward(dy, dstate=None)`.
        """, _ARGS,
        hidden_size="features of h (H), a multiple of num_heads.",
        num_heads="heads, each with its own matrix memory of dh = hidden_size / num_heads, default 4.",
        bias="whether the layer has bias_ih_l{k}, default True.",
        kernel_init="initialisation of the q, k, v, o rows of weight_ih: 'uniform' (U(-1/sqrt(H), 1/sqrt(H))) or "
                    "'glorot_uniform' (over the whole matrix), default 'uniform'.")

    _kind = "mlstm"

    def __init__(self, input_size: int, hidden_size: int, num_heads: int = 4, num_layers: int = 1, *,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 merge_mode: str | None = "concat", seed: int | None = None,
                 dtype: str | type | np.dtype = "float32", l1: float = 0.0, l2: float = 0.0,
                 kernel_init: str = "uniform", backend: str = "cpu") -> None:
        super().__init__(input_size, hidden_size, num_heads, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, merge_mode=merge_mode, seed=seed, dtype=dtype,
                         l1=l1, l2=l2, kernel_init=kernel_init, backend=backend)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["recurrent_dropout"], config["recurrent_init"]  # no recurrent weights
        return config

    def _flat(self, name, state):
        """(C, n, m) in their head shapes -> the core's [None (h), C, n, m] of widths (L*D, B, ·)."""
        if state is None:
            return None
        if not isinstance(state, (tuple, list)) or len(state) != 3:
            raise TypeError(f"{name}: expected a tuple (C, n, m) or None, got {type(state).__name__}")
        NH, dh, LD = self.num_heads, self.head_size, self.num_layers * self.num_directions
        out = [None]
        for part, tail in zip(state, ((NH, dh, dh), (NH, dh), (NH,))):
            if part is None:
                out.append(None)
                continue
            a = np.asarray(part)
            flat = a.ndim == 3 and a.shape[0] == LD and a.shape[2] == int(np.prod(tail))  # (L*D, B, width) too
            if not flat and (a.ndim != 2 + len(tail) or a.shape[0] != LD or a.shape[2:] != tail):
                raise ValueError(f"{name}: expected shapes (L*D, B) + {(NH, dh, dh)}, {(NH, dh)}, {(NH,)} for "
                                 f"C, n, m; got {a.shape}")
            out.append(a.reshape(LD, a.shape[1], -1))
        return out

    def _heads_shape(self, finals):
        NH, dh = self.num_heads, self.head_size
        C, n, m = finals[1:]
        return (C.reshape(C.shape[:2] + (NH, dh, dh)), n.reshape(n.shape[:2] + (NH, dh)), m)

    def __call__(self, x, state=None, lengths=None, training=True):
        """x: (T, B, I) (or (B, T, I) with batch_first); state: (C, n, m) or None for zeros. Returns y, (C, n, m)."""
        y, finals = self._forward_states(x, self._flat("state", state), lengths, training)
        return y, self._heads_shape(finals)

    forward = __call__

    def backward(self, dy, dstate=None):
        """Backpropagate through the most recent training forward; returns dx, (dC0, dn0, dm0)."""
        dx, initials = self._backward_states(dy, self._flat("dstate", dstate))
        return dx, self._heads_shape(initials)
