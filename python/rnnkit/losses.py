"""Losses: `loss(pred, target, mask=None) -> (value, dpred)`; math in C++.

`mask` (shape pred.shape[:-1] for MSE/BCE, logits.shape[:-1] for CrossEntropy; True = counts) leaves padded
steps out of the mean; `Sequential.fit` builds it from `lengths` for per-step outputs.
"""
from __future__ import annotations

import numpy as np

from ._backend import core as _core
from ._checks import float_array, shape_str, untorch

__all__ = ["MSE", "CrossEntropy", "BCEWithLogits", "get"]


def _pred(name, pred):
    pred = np.asarray(untorch(pred))
    if pred.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {pred.dtype}")
    if pred.ndim < 1 or pred.size == 0:
        raise ValueError(f"{name}: expected a non-empty array with at least one axis, got {shape_str(pred.shape)}")
    return np.ascontiguousarray(pred)


def _mask(mask, rows_shape):
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != tuple(rows_shape):
        raise ValueError(f"mask: expected shape {shape_str(rows_shape)}, got {shape_str(m.shape)}")
    return np.ascontiguousarray(m.reshape(-1), dtype=np.uint8)


def _same_shape_target(pred, target):
    """Float targets shaped like pred; (N,) is accepted for a (N, 1) prediction."""
    target = float_array("target", target, pred.dtype)
    if target.shape != pred.shape and pred.shape[-1] == 1 and target.shape == pred.shape[:-1]:
        target = target.reshape(pred.shape)
    if target.shape != pred.shape:
        raise ValueError(f"target: expected shape {shape_str(pred.shape)} (as pred), got {shape_str(target.shape)}")
    return target


class MSE:
    """Mean squared error over all (unmasked) entries, like torch.nn.MSELoss()."""

    def __call__(self, pred, target, mask=None):
        pred = _pred("pred", pred)
        target = _same_shape_target(pred, target)
        C = pred.shape[-1]
        N = pred.size // C
        grad = np.empty_like(pred)
        value = _core.mse_loss(grad, pred, target, _mask(mask, pred.shape[:-1]), N, C)
        return value, grad


class CrossEntropy:
    """Softmax cross-entropy on logits (..., C) with integer class targets (...), mean over unmasked rows,
    like torch.nn.CrossEntropyLoss()."""

    def __call__(self, logits, target, mask=None):
        logits = _pred("logits", logits)
        t = np.asarray(untorch(target))
        if not np.issubdtype(t.dtype, np.integer):
            raise TypeError(f"target: expected integer class indices, got dtype {t.dtype}")
        if t.shape != logits.shape[:-1]:
            raise ValueError(f"target: expected shape {shape_str(logits.shape[:-1])} (logits without the class axis), "
                             f"got {shape_str(t.shape)}")
        C = logits.shape[-1]
        m = _mask(mask, logits.shape[:-1])
        valid = t.reshape(-1) if m is None else t.reshape(-1)[m.astype(bool)]
        if valid.size and (valid.min() < 0 or valid.max() >= C):
            raise ValueError(f"target: expected class indices in 0..{C - 1}, got values in {valid.min()}..{valid.max()}")
        grad = np.empty_like(logits)
        value = _core.cross_entropy_loss(grad, logits, np.ascontiguousarray(t.reshape(-1), dtype=np.int64), m,
                                         logits.size // C, C)
        return value, grad


class BCEWithLogits:
    """Binary cross-entropy on logits with targets in [0, 1], mean over unmasked entries, like
    torch.nn.BCEWithLogitsLoss()."""

    def __call__(self, logits, target, mask=None):
        logits = _pred("logits", logits)
        target = _same_shape_target(logits, target)
        C = logits.shape[-1]
        grad = np.empty_like(logits)
        value = _core.bce_with_logits_loss(grad, logits, target, _mask(mask, logits.shape[:-1]), logits.size // C, C)
        return value, grad


_BY_NAME = {"mse": MSE, "cross_entropy": CrossEntropy, "crossentropy": CrossEntropy, "bce": BCEWithLogits,
            "bce_with_logits": BCEWithLogits}


def get(loss):
    """A loss instance from an instance or a name ('mse', 'cross_entropy', 'bce_with_logits')."""
    if isinstance(loss, str):
        if loss.lower() not in _BY_NAME:
            raise ValueError(f"loss: expected one of {sorted(_BY_NAME)} or a loss object, got {loss!r}")
        return _BY_NAME[loss.lower()]()
    if not callable(loss):
        raise TypeError(f"loss: expected a loss object or name, got {type(loss).__name__}")
    return loss
