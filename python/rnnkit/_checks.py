"""Argument checking shared by rnnkit's Python classes.

Every error names the argument, what was expected and what came, so that nothing a user passes reaches
the C++ core unchecked.
"""
from __future__ import annotations

import numbers

import numpy as np

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def shape_str(shape) -> str:
    shape = tuple(int(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_dtype(dtype) -> np.dtype:
    """'float32' / 'float64' / np.float32 / np.float64 -> np.dtype; anything else raises naming `dtype`.
    A string is looked up by name, never parsed by np.dtype (configs come from untrusted files, and np.dtype
    evaluates comma strings such as '3f4,(2,)i4' as structured types)."""
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
        return _DTYPES[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from exc
    if dt.name not in _DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dt.name!r}")
    return dt


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    return int(value)


def flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a probability in [0, 1), got {type(value).__name__} {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {value}")
    return float(value)


def non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
    return float(value)


def untorch(value):
    """A torch tensor as a NumPy array (detached, on the CPU); anything else unchanged."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def seed_value(seed) -> int:
    """None draws fresh OS entropy; otherwise a non-negative integer below 2**64."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected None or a non-negative integer, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed: expected an integer in [0, 2**64), got {seed}")
    return int(seed)


def float_array(name: str, value, dtype: np.dtype, shape=None, ndim=None) -> np.ndarray:
    """A C-contiguous array of `dtype`.

    Typed arrays (NumPy arrays, torch tensors, anything with a dtype) must already have `dtype`: silently
    changing precision hides bugs. Untyped values (nested lists, scalars) are converted.
    `shape` may hold None for "any size"; the error shows the expected shape with those as letters.
    """
    if value is None:
        raise TypeError(f"{name}: expected a {dtype.name} array, got None")
    value = untorch(value)
    if hasattr(value, "dtype"):
        try:
            arr = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - any failure to convert is a type error for the user
            raise TypeError(f"{name}: expected a {dtype.name} array, got {type(value).__name__}") from exc
        if arr.dtype != dtype:
            raise TypeError(f"{name}: expected a {dtype.name} array, got dtype {arr.dtype}")
    else:
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected a {dtype.name} array, got {type(value).__name__}: {exc}") from exc
    if ndim is None and shape is not None:
        ndim = len(shape)
    if ndim is not None and arr.ndim != ndim:
        want = _pattern(shape) if shape is not None else f"{ndim} dimensions"
        raise ValueError(f"{name}: expected shape {want}, got {shape_str(arr.shape)}")
    if shape is not None and any(w is not None and w != s for w, s in zip(shape, arr.shape)):
        raise ValueError(f"{name}: expected shape {_pattern(shape)}, got {shape_str(arr.shape)}")
    check_finite(name, arr)
    return np.ascontiguousarray(arr)


# Whether arrays passed in may hold NaN or infinity (rnnkit.set_allow_nonfinite).
_ALLOW_NONFINITE = [False]


def check_finite(name: str, arr) -> None:
    """ValueError naming the first NaN / infinity of `arr`, unless rnnkit.set_allow_nonfinite(True)."""
    if _ALLOW_NONFINITE[0] or arr.size == 0 or arr.dtype.kind not in "fc":
        return
    finite = np.isfinite(arr)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name}: contains {int(finite.size - finite.sum())} NaN or infinite value(s), the first "
                         f"{arr[where]} at index {where}; rnnkit.set_allow_nonfinite(True) lets them through")


def _pattern(shape) -> str:
    letters = iter("TBN")
    parts = [str(s) if s is not None else next(letters, "?") for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def lengths_array(lengths, batch: int, steps: int, minimum: int = 1, name: str = "lengths") -> np.ndarray:
    """B integers in minimum..T (ints, or floats that are whole numbers) -> int32 array. Recurrent layers take
    minimum=0: an empty sequence outputs zeros and keeps its initial state."""
    lengths = untorch(lengths)
    try:
        arr = np.asarray(lengths)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name}: expected {batch} integers, got {type(lengths).__name__}") from exc
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"{name}: expected shape ({batch},) (one length per sequence), got {shape_str(arr.shape)}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: expected finite values, got {arr.tolist()}")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name}: expected whole numbers, got {arr.tolist()}")
    if arr.size and (arr.min() < minimum or arr.max() > steps):
        bad = arr[(arr < minimum) | (arr > steps)]
        raise ValueError(f"{name}: expected values in {minimum}..{steps} (T), got {bad.tolist()}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def state_pair(name: str, state):
    """An LSTM state: None or a tuple (h, c) whose parts may be None."""
    if state is None:
        return None, None
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(f"{name}: expected a tuple (h, c) of two arrays or None, got {type(state).__name__}")
    return state[0], state[1]


# Activation name -> number of parameters it takes in the tuple form (name, alpha[, beta]).
ACTIVATIONS = {"tanh": 0, "sigmoid": 0, "relu": 0, "linear": 0, "softsign": 0, "softplus": 0, "elu": 1,
               "hard_sigmoid": 2, "leaky_relu": 1, "scaled_tanh": 2}


def activation(name: str, value):
    """A recurrent cell's activation: a name from ACTIVATIONS, or a tuple (name, parameters...) with as many
    parameters as the name takes (a list from a JSON config counts as a tuple). Returns the name or a tuple of
    (name, float, ...)."""
    if isinstance(value, list):
        value = tuple(value)
    known = ", ".join(repr(k) for k in ACTIVATIONS)
    if isinstance(value, str):
        if value not in ACTIVATIONS:
            raise ValueError(f"{name}: expected one of {known} (or a tuple with parameters), got {value!r}")
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        kind, params = value[0], value[1:]
        if kind not in ACTIVATIONS:
            raise ValueError(f"{name}: expected one of {known}, got {kind!r}")
        count = ACTIVATIONS[kind]
        if count == 0 or len(params) != count:
            raise ValueError(f"{name}: {kind!r} takes {count} parameter(s) in the tuple form, got {len(params)}")
        out = []
        for p in params:
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not np.isfinite(float(p)):
                raise ValueError(f"{name}: parameters of {kind!r} must be finite numbers, got {p!r}")
            out.append(float(p))
        if kind == "scaled_tanh" and out[0] == 0.0:
            raise ValueError(f"{name}: scaled_tanh needs a nonzero alpha, got {value!r}")
        return (kind, *out)
    raise TypeError(f"{name}: expected an activation name or a tuple (name, parameters...), got "
                    f"{type(value).__name__} {value!r}")


MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def merge_mode(value):
    if value not in MERGE_MODES or isinstance(value, bool):
        raise ValueError(f"merge_mode: expected one of 'concat', 'sum', 'mul', 'ave' or None, got {value!r}")
    return value


def clip_value(name: str, value) -> float | None:
    """None or 0 (off), or a positive number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected None or a positive number, got {value!r}")
    return float(value) or None
