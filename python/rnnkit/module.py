"""The protocol every rnnkit layer follows inside a model, the layer registry, and the base for feed-forward layers.

A layer in a `Sequential` offers:
  seq_forward(x, lengths=None, training=True) -> out      lengths: per-sequence valid steps, or None
  seq_backward(dout) -> dx                                  dx is None for integer inputs (Embedding)
  parameters() / grads / zero_grad()                        name -> ndarray views, gradients accumulate
  get_config() -> dict, from_config(config)                 JSON-able constructor arguments, and back
  regularize() -> float                                     adds the L1/L2 gradient, returns the penalty
  regularization_loss() -> float                            the penalty alone, gradients untouched
  rng_state (int, settable)                                 dropout mask counter, for exact resumes
and declares what a model needs to know about it as class attributes: `is_recurrent`, `reduces_time`, `dtype`,
with the hook `setup(previous)`.

Every public Module subclass registers itself under its class name, so that a model file naming "LSTM" gets
rnnkit.LSTM back (`registry()`, `layer_class(name)`).
"""
from __future__ import annotations

import inspect

import numpy as np

from ._backend import core as _core
from ._checks import as_dtype, seed_value, shape_str, untorch

__all__ = ["Module", "NamedSlabs", "SlabModule", "registry", "layer_class", "is_layer", "load_into"]

_REGISTRY: dict = {}


def registry() -> dict:
    """Layer class name -> class, for every registered Module subclass (a copy)."""
    return dict(_REGISTRY)


def layer_class(name: str) -> type:
    """The registered layer class called `name` (as in a config's "class" entry)."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a layer class name (str), got {type(name).__name__} {name!r}")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"name: unknown layer class {name!r}; known classes: {sorted(_REGISTRY)}")
    return cls


def _register(cls) -> None:
    existing = _REGISTRY.get(cls.__name__)
    # The same class defined again (a module reloaded) replaces itself. Another class of a taken name (a user's
    # `class LSTM(rk.LSTM)`) is a fine class but stays unregistered: model files naming "LSTM" keep loading
    # rnnkit.LSTM. A user class that should load from files needs a name of its own.
    if existing is not None and (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
        return
    _REGISTRY[cls.__name__] = cls


def is_layer(obj) -> bool:
    """True for a Module that runs on whole sequences in a Sequential (the single-step cells do not)."""
    return isinstance(obj, Module) and hasattr(obj, "seq_forward") and hasattr(obj, "seq_backward")


class Module:
    """Base of every layer: defaults for layers without parameters or randomness.

    Subclasses register under their class name unless the name starts with "_", the class statement says
    `register=False` (for abstract bases), or another class already holds the name (it keeps it).
    """

    l1 = 0.0
    l2 = 0.0
    # A recurrent sequence layer (LSTM, GRU, RNN): it has batch_first, num_directions and hidden_size, and
    # Sequential takes its data layout from the first one.
    is_recurrent: bool = False
    # The output has no time axis (LastStep): a model's outputs are then per sequence, not per step.
    reduces_time: bool = False
    # The layer's float dtype, or None for layers that take whatever comes (LastStep).
    dtype: np.dtype | None = None

    @staticmethod
    def registry() -> dict:
        """Layer class name -> class for every registered layer (the same as rnnkit.registry())."""
        return registry()

    def __init_subclass__(cls, register: bool = True, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if register and not cls.__name__.startswith("_"):
            _register(cls)

    def setup(self, previous) -> None:
        """Called by Sequential with the nearest recurrent layer before this one (or None); a no-op here."""

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

    @classmethod
    def from_config(cls, config: dict) -> Module:
        """A new layer from the constructor arguments that get_config() returns."""
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict of {cls.__name__} constructor arguments, got "
                            f"{type(config).__name__}")
        params = inspect.signature(cls).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            unexpected = [k for k in config if k not in params]
            if unexpected:
                raise ValueError(f"config: unexpected key(s) {unexpected} for {cls.__name__}; expected keys among "
                                 f"{list(params)}")
        missing = [name for name, p in params.items() if p.default is p.empty and name not in config
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if missing:
            raise ValueError(f"config: missing key(s) {missing} for {cls.__name__}")
        return cls(**config)

    def regularize(self) -> float:
        """Adds the gradient of l1 Σ|w| + l2 Σ w² over this layer's weights (not biases); returns the penalty."""
        return self._l1_l2(self.grads)

    def regularization_loss(self) -> float:
        """The penalty regularize() adds gradients for, with the gradients left alone."""
        return self._l1_l2(None)

    def _l1_l2(self, grads) -> float:
        if not (self.l1 or self.l2):
            return 0.0
        total = 0.0
        for name, p in self.parameters().items():
            if name.startswith("weight"):
                # add_l1_l2 returns the penalty while adding its gradient: without `grads` that goes to a scratch
                # array, so the value comes from the same C++ sum either way.
                g = grads[name] if grads is not None else np.zeros_like(p)
                total += _core.add_l1_l2(g, p, self.l1, self.l2)
        return total

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


class NamedSlabs(Module, register=False):
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
        load_into(self._params, self.dtype, state_dict, strict)


class SlabModule(NamedSlabs, register=False):
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
