"""Named NumPy views over a C++ layer's parameter and gradient slabs, shared by layers and cells."""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import as_dtype, shape_str, untorch
from .module import NamedSlabs


class CoreModule(NamedSlabs):
    """Owns one `_core.Recurrent32/64`; its C++ parameter and gradient slabs are the named views."""

    def _init_core(self, dtype, **config) -> None:
        self.dtype = as_dtype(dtype)
        core_class = _core.Recurrent32 if self.dtype == np.float32 else _core.Recurrent64
        self._core = core_class(**config)
        self._bind_slabs(self._core.param_slab(), self._core.grad_slab(), self._core.parameter_info())

    def clear_tape(self) -> None:
        """Forget recorded training forwards that backward has not consumed."""
        self._core.clear_tape()

    def _recorded_shape(self):
        shape = self._core.recorded_shape()
        if shape is None:
            raise RuntimeError("backward: no recorded training forward; call the module with training=True first "
                               "(each training forward can be backpropagated once)")
        return shape


def load_into(params: dict, dtype, state_dict, strict: bool) -> None:
    """Checks every entry of `state_dict` against `params` (name -> view), then copies all of them in."""
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"state_dict: expected a mapping of name -> array, got {type(state_dict).__name__}")
    missing = [k for k in params if k not in state_dict]
    if missing and strict:
        raise ValueError(f"state_dict: missing key(s) {missing}; expected keys {list(params)}")
    unexpected = [k for k in state_dict if k not in params]
    if unexpected and strict:
        raise ValueError(f"state_dict: unexpected key(s) {unexpected}; expected keys {list(params)}")
    staged = {}
    for name, view in params.items():
        if name not in state_dict:
            continue
        value = state_dict[name]
        value = untorch(value)
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state_dict[{name!r}]: expected a numeric array, got {type(value).__name__}") from exc
        if arr.shape != view.shape:
            raise ValueError(f"state_dict[{name!r}]: expected shape {shape_str(view.shape)}, got {shape_str(arr.shape)}")
        staged[name] = arr
    for name, arr in staged.items():
        params[name][...] = arr
