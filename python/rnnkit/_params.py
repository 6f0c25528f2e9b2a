"""Named NumPy views over a C++ layer's parameter and gradient slabs, shared by layers and cells."""
from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_dtype, shape_str
from .module import Module


class CoreModule(Module):
    """Owns one `_core.Recurrent32/64` and exposes its slabs as dicts of named views (torch.nn names)."""

    def _init_core(self, dtype, **config) -> None:
        self.dtype = as_dtype(dtype)
        core_class = _core.Recurrent32 if self.dtype == np.float32 else _core.Recurrent64
        self._core = core_class(**config)
        params, grads = self._core.param_slab(), self._core.grad_slab()
        self._params, self._grads = {}, {}
        for name, shape, offset, size in self._core.parameter_info():
            self._params[name] = params[offset:offset + size].reshape(shape)
            self._grads[name] = grads[offset:offset + size].reshape(shape)

    def parameters(self) -> dict:
        """name -> ndarray view of the parameter (writes go to the layer); names and shapes as in torch.nn."""
        return dict(self._params)

    @property
    def grads(self) -> dict:
        """name -> ndarray view of the accumulated gradient, same names and shapes as parameters()."""
        return dict(self._grads)

    def zero_grad(self) -> None:
        self._core.zero_grad()

    def state_dict(self) -> dict:
        """name -> a copy of each parameter."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy parameters in from a mapping of name -> array-like (NumPy arrays, torch tensors, lists).

        Values are cast to this module's dtype. Missing or mis-shaped keys raise ValueError naming them, as do
        unexpected keys when `strict`. Nothing is changed unless every key checks out.
        """
        load_into(self._params, self.dtype, state_dict, strict)

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
        if hasattr(value, "detach") and hasattr(value, "cpu"):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state_dict[{name!r}]: expected a numeric array, got {type(value).__name__}") from exc
        if arr.shape != view.shape:
            raise ValueError(f"state_dict[{name!r}]: expected shape {shape_str(view.shape)}, got {shape_str(arr.shape)}")
        staged[name] = arr
    for name, arr in staged.items():
        params[name][...] = arr
