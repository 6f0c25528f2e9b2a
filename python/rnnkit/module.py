"""The protocol every rnnkit layer follows inside a model, and the base for feed-forward layers.

A layer in a `Sequential` offers:
  seq_forward(x, lengths=None, training=True) -> out      lengths: per-sequence valid steps, or None
  seq_backward(dout) -> dx                                  dx is None for integer inputs (Embedding)
  parameters() / grads / zero_grad()                        name -> ndarray views, gradients accumulate
  get_config() -> dict                                      JSON-able constructor arguments
  regularize() -> float                                     adds the L1/L2 gradient, returns the penalty
  rng_state (int, settable)                                 dropout mask counter, for exact resumes
"""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import as_dtype, seed_value

__all__ = ["Module", "NamedSlabs", "SlabModule"]


class Module:
    """Base of every layer: defaults for layers without parameters or randomness."""

    l1 = 0.0
    l2 = 0.0

    def parameters(self) -> dict:
        return {}

    @property
    def grads(self) -> dict:
        return {}

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    def get_config(self) -> dict:
        raise NotImplementedError

    def regularize(self) -> float:
        """Adds the gradient of l1 Σ|w| + l2 Σ w² over this layer's weights (not biases); returns the penalty."""
        if not (self.l1 or self.l2):
            return 0.0
        grads = self.grads
        return sum(_core.add_l1_l2(grads[name], p, self.l1, self.l2)
                   for name, p in self.parameters().items() if name.startswith("weight"))

    @property
    def rng_state(self) -> int:
        return 0

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        pass

    def __call__(self, x, lengths=None, training=True):
        return self.seq_forward(x, lengths=lengths, training=training)

    def backward(self, dout):
        return self.seq_backward(dout)


class NamedSlabs(Module):
    """Parameters in one flat slab and gradients in another (same layout), exposed as named views."""

    def _bind_slabs(self, param_slab, grad_slab, layout) -> None:
        """layout: (name, shape, offset, size) per parameter, offsets into both slabs."""
        self._param_slab, self._grad_slab = param_slab, grad_slab
        self._params, self._grads = {}, {}
        for name, shape, offset, size in layout:
            self._params[name] = param_slab[offset:offset + size].reshape(shape)
            self._grads[name] = grad_slab[offset:offset + size].reshape(shape)

    def parameters(self) -> dict:
        """name -> ndarray view of the parameter (writes go to the layer); names and shapes as in torch.nn."""
        return dict(self._params)

    @property
    def grads(self) -> dict:
        """name -> ndarray view of the accumulated gradient, same names and shapes as parameters()."""
        return dict(self._grads)

    def zero_grad(self) -> None:
        self._grad_slab[...] = 0

    def state_dict(self) -> dict:
        """name -> a copy of each parameter."""
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy parameters in from a mapping of name -> array-like (NumPy arrays, torch tensors, lists).

        Values are cast to this module's dtype. Missing or mis-shaped keys raise ValueError naming them, as do
        unexpected keys when `strict`. Nothing is changed unless every key checks out.
        """
        from ._params import load_into
        load_into(self._params, self.dtype, state_dict, strict)


class SlabModule(NamedSlabs):
    """A feed-forward layer whose slabs are NumPy arrays owned by Python."""

    def _init_slab(self, dtype, shapes: dict, seed) -> None:
        self.dtype = as_dtype(dtype)
        self.seed = seed_value(seed)
        layout, offset = [], 0
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            layout.append((name, shape, offset, size))
            offset += size
        self._bind_slabs(np.zeros(offset, self.dtype), np.zeros(offset, self.dtype), layout)
