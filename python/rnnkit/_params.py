"""Named NumPy views over a C++ layer's parameter and gradient slabs, shared by layers and cells."""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import as_dtype
from .module import NamedSlabs


class CoreModule(NamedSlabs, register=False):
    """Owns one `_core.Recurrent32/64`; its C++ parameter and gradient slabs are the named views."""

    def _init_core(self, dtype, **config) -> None:
        backend = config.get("backend", "cpu")
        if not isinstance(backend, str):
            raise TypeError(f"backend: expected 'cpu' or 'reference', got {type(backend).__name__}")
        self.dtype = as_dtype(dtype)
        core_class = _core.Recurrent32 if self.dtype == np.float32 else _core.Recurrent64
        self._core = core_class(**config)
        self._bind_slabs(self._core.param_slab(), self._core.grad_slab(), self._core.parameter_info())

    def clear_tape(self) -> None:
        """Forget recorded training forwards that backward has not consumed."""
        self._core.clear_tape()

    @property
    def backend(self) -> str:
        """Where the sequence loops run: 'cpu' (thread team, packed weights) or 'reference' (plain loops)."""
        return self._core.backend

    # The core takes and returns the cell's num_states state tensors as a list (h first); the public API
    # spells an LSTM's out as (h, c) and a single-state cell's as h.
    def _core_forward(self, x, h0, c0, lengths, training, g0=None):
        """-> y, h_n, c_n, g_n (c_n None for single-state cells; g_n the LSTM's gate state with
        full_gate_recurrence, else None)."""
        y, finals = self._core.forward(x, self._state_list(h0, c0, g0), lengths, training)
        finals = list(finals) + [None] * (3 - len(finals))
        return y, finals[0], finals[1], finals[2]

    def _core_backward(self, dy, dh_n, dc_n, dg_n=None):
        """-> dx, dh0, dc0, dg0 (as _core_forward's states)."""
        dx, initials = self._core.backward(dy, self._state_list(dh_n, dc_n, dg_n, "dc_n"))
        initials = list(initials) + [None] * (3 - len(initials))
        return dx, initials[0], initials[1], initials[2]

    def _state_list(self, h, c, g=None, c_name="c0"):
        if c is not None and self._core.num_states < 2:
            raise ValueError(f"{c_name}: only an LSTM has a cell state")
        if h is None and c is None and g is None:
            return None
        return [h, c, g][:self._core.num_states]

    def _recorded_shape(self):
        shape = self._core.recorded_shape()
        if shape is None:
            raise RuntimeError("backward: no recorded training forward; call the module with training=True first "
                               "(each training forward can be backpropagated once)")
        return shape

