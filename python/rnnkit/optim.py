"""Optimizers (update loops in C++, torch.optim's update rules) and learning-rate schedules.

An optimizer holds a model (anything with parameters() and grads, name -> array) and updates every parameter
in place on `step()`. Its state (moments, step count) is a dict of NumPy arrays, saved by checkpoints.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._backend import core as _core
from .module import Module

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "StepLR", "CosineAnnealingLR",
           "ReduceLROnPlateau", "get"]


def _number(name, value, low=0.0, low_inclusive=True, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if value < low or (value == low and not low_inclusive) or (high is not None and value >= high):
        rng = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name}: expected a value in {rng}, got {value}")
    return float(value)


class Optimizer:
    """Base of the optimizers: holds `model` and its per-parameter state; subclasses define the update.

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, a positive number (schedules change it between epochs).
    """

    _state_names: tuple = ()

    def __init__(self, model: Module, lr: float) -> None:
        if not (hasattr(model, "parameters") and hasattr(model, "grads")):
            raise TypeError(f"model: expected a model or layer with parameters() and grads, got {type(model).__name__}")
        self.model = model
        self.lr = _number("lr", lr, 0.0, low_inclusive=False)
        self.step_count = 0
        self.state = {name: {} for name in model.parameters()}

    def _buffer(self, name, key, like):
        buf = self.state[name].get(key)
        if buf is None:
            buf = self.state[name][key] = np.zeros_like(like)
        return buf

    def step(self) -> None:
        """One update of every parameter from its accumulated gradient."""
        self.step_count += 1
        grads = self.model.grads
        for name, p in self.model.parameters().items():
            self._update(name, p, grads[name])

    def zero_grad(self) -> None:
        self.model.zero_grad()

    def hyperparameters(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"class": type(self).__name__, "hyperparameters": self.hyperparameters(), "lr": self.lr,
                "step_count": self.step_count,
                "state": {n: {k: v.copy() for k, v in s.items()} for n, s in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("class") != type(self).__name__:
            raise ValueError(f"state: saved for {state.get('class')!r}, not {type(self).__name__}")
        params = self.model.parameters()
        for name, bufs in state["state"].items():
            if name not in params:
                raise ValueError(f"state: parameter {name!r} is not in the model")
            for key, value in bufs.items():
                if key not in self._state_names or np.shape(value) != params[name].shape:
                    raise ValueError(f"state[{name!r}][{key!r}]: expected one of {self._state_names} shaped "
                                     f"{params[name].shape}, got {key!r} shaped {np.shape(value)}")
        self.lr = float(state["lr"])
        self.step_count = int(state["step_count"])
        self.state = {n: {} for n in params}
        for name, bufs in state["state"].items():
            for key, value in bufs.items():
                self.state[name][key] = np.array(value, dtype=params[name].dtype)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr}, {hp})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD:
    g += weight_decay p;  buf = momentum buf + (1 - dampening) g (buf = g on the first step);
    p -= lr (g + momentum buf) with nesterov, else p -= lr buf (p -= lr g without momentum).

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, default 0.01.
        momentum: momentum factor, default 0.0 (plain SGD).
        dampening: dampening of the momentum, default 0.0.
        weight_decay: L2 penalty coefficient added to the gradient (weight_decay p), default 0.0.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0), default False.
    """

    _state_names = ("momentum_buffer",)

    def __init__(self, model: Module, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(model, lr)
        self.momentum = _number("momentum", momentum)
        self.dampening = _number("dampening", dampening)
        self.weight_decay = _number("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0")

    def hyperparameters(self):
        return dict(momentum=self.momentum, dampening=self.dampening, weight_decay=self.weight_decay,
                    nesterov=self.nesterov)

    def _update(self, name, p, g):
        first = "momentum_buffer" not in self.state[name]
        buf = self._buffer(name, "momentum_buffer", p) if self.momentum else None
        _core.sgd_update(p, g, buf, self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov, first)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) as torch.optim.Adam: bias-corrected moving averages of the gradient and its square,
    p -= lr m_hat / (sqrt(v_hat) + eps); weight_decay adds weight_decay p to the gradient (L2, coupled).

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, default 0.001.
        betas: (beta1, beta2), the decay rates of the two moving averages, each in [0, 1), default (0.9, 0.999).
        eps: added to the denominator for numerical stability, default 1e-08.
        weight_decay: L2 penalty coefficient added to the gradient, default 0.0.
    """

    _state_names = ("exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(self, model: Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(model, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number("betas[0]", betas[0], 0.0, high=1.0), _number("betas[1]", betas[1], 0.0, high=1.0))
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)

    def hyperparameters(self):
        return dict(betas=list(self.betas), eps=self.eps, weight_decay=self.weight_decay)

    def _update(self, name, p, g):
        m, v = self._buffer(name, "exp_avg", p), self._buffer(name, "exp_avg_sq", p)
        _core.adam_update(p, g, m, v, self.lr, self.betas[0], self.betas[1], self.eps, self.weight_decay,
                          self._decoupled, self.step_count)


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay), default weight_decay 0.01 like torch.

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, default 0.001.
        betas: (beta1, beta2), the decay rates of the two moving averages, each in [0, 1), default (0.9, 0.999).
        eps: added to the denominator for numerical stability, default 1e-08.
        weight_decay: decoupled decay coefficient (applied to p directly, not through the gradient), default 0.01.
    """

    _decoupled = True

    def __init__(self, model: Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(model, lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop: v = alpha v + (1 - alpha) g², p -= lr g / (sqrt(v) + eps) (through a
    momentum buffer when momentum > 0; centered subtracts the squared moving average of g from v).

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, default 0.01.
        alpha: decay rate of the moving average of g², default 0.99.
        eps: added to the denominator for numerical stability, default 1e-08.
        weight_decay: L2 penalty coefficient added to the gradient, default 0.0.
        momentum: momentum factor, default 0.0.
        centered: normalise by the estimated variance of g instead of its second moment, default False.
    """

    _state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, model: Module, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(model, lr)
        self.alpha = _number("alpha", alpha)
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)
        self.momentum = _number("momentum", momentum)
        self.centered = bool(centered)

    def hyperparameters(self):
        return dict(alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay, momentum=self.momentum,
                    centered=self.centered)

    def _update(self, name, p, g):
        v = self._buffer(name, "square_avg", p)
        avg = self._buffer(name, "grad_avg", p) if self.centered else None
        buf = self._buffer(name, "momentum_buffer", p) if self.momentum > 0 else None
        _core.rmsprop_update(p, g, v, avg, buf, self.lr, self.alpha, self.eps, self.weight_decay, self.momentum,
                             self.centered)


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad: sum += g², p -= lr / (1 + (step - 1) lr_decay) g / (sqrt(sum) + eps).

    Args:
        model: what to optimize: a Sequential or a layer (anything with parameters() and grads).
        lr: the learning rate, default 0.01.
        lr_decay: learning-rate decay per step, default 0.0.
        weight_decay: L2 penalty coefficient added to the gradient, default 0.0.
        eps: added to the denominator for numerical stability, default 1e-10.
    """

    _state_names = ("sum",)

    def __init__(self, model: Module, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 eps: float = 1e-10) -> None:
        super().__init__(model, lr)
        self.lr_decay = _number("lr_decay", lr_decay)
        self.weight_decay = _number("weight_decay", weight_decay)
        self.eps = _number("eps", eps)

    def hyperparameters(self):
        return dict(lr_decay=self.lr_decay, weight_decay=self.weight_decay, eps=self.eps)

    def _update(self, name, p, g):
        _core.adagrad_update(p, g, self._buffer(name, "sum", p), self.lr, self.lr_decay, self.weight_decay,
                             self.eps, self.step_count)


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(optimizer, model):
    """An optimizer from an instance (returned as is) or a name ('adam', 'sgd', ...) with default settings."""
    if isinstance(optimizer, str):
        if optimizer.lower() not in _BY_NAME:
            raise ValueError(f"optimizer: expected one of {sorted(_BY_NAME)} or an Optimizer, got {optimizer!r}")
        return _BY_NAME[optimizer.lower()](model)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected an Optimizer or a name, got {type(optimizer).__name__}")
    return optimizer


# --- learning-rate schedules: call step() once per epoch (fit does, when given them as callbacks) -----------
class _Schedule:
    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def on_epoch_end(self, epoch, logs):
        self.step(logs)

    def state_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


class StepLR(_Schedule):
    """lr = base_lr * gamma ** (epoch // step_size).

    Args:
        optimizer: the Optimizer whose lr is set; its lr at construction is base_lr.
        step_size: epochs between decays, a positive integer.
        gamma: factor applied every step_size epochs, default 0.1.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"step_size: expected a positive integer, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), _number("gamma", gamma)

    def step(self, logs=None):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi min(epoch, T_max) / T_max)) / 2: after T_max epochs the rate
    stays at eta_min (as Keras's CosineDecay; torch's CosineAnnealingLR would rise again).

    Args:
        optimizer: the Optimizer whose lr is set; its lr at construction is base_lr.
        T_max: epochs from base_lr down to eta_min, a positive integer.
        eta_min: the final learning rate, default 0.0.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Integral) or T_max < 1:
            raise ValueError(f"T_max: expected a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), _number("eta_min", eta_min)

    def step(self, logs=None):
        self.epoch += 1
        cos = (1 + math.cos(math.pi * min(self.epoch, self.T_max) / self.T_max)) / 2
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * cos


class ReduceLROnPlateau(_Schedule):
    """lr *= factor once `monitor` (default val_loss, else loss) has not improved by a relative `threshold` for
    `patience` epochs; never below min_lr.

    Args:
        optimizer: the Optimizer whose lr is set.
        factor: multiplier of the learning rate on a plateau, in (0, 1), default 0.1.
        patience: epochs without improvement that are tolerated before reducing, default 10.
        threshold: relative improvement that counts (value < best (1 - threshold)), default 0.0001.
        min_lr: the learning rate is never reduced below this, default 0.0.
        monitor: the logged value to watch, falling back to 'loss' when it is not logged, default 'val_loss'.
    """

    def __init__(self, optimizer: Optimizer, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 min_lr: float = 0.0, monitor: str = "val_loss") -> None:
        super().__init__(optimizer)
        self.factor = _number("factor", factor, 0.0, low_inclusive=False, high=1.0)
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"patience: expected a non-negative integer, got {patience!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged value such as 'val_loss', got "
                            f"{type(monitor).__name__} {monitor!r}")
        self.patience, self.threshold = int(patience), _number("threshold", threshold)
        self.min_lr = _number("min_lr", min_lr)
        self.monitor, self.best, self.bad_epochs = monitor, math.inf, 0

    def step(self, logs=None):
        """logs: a dict holding `monitor` (or 'loss'), or the metric value itself."""
        self.epoch += 1
        if isinstance(logs, dict):
            value = logs.get(self.monitor, logs.get("loss"))
        else:
            value = logs
        if value is None:
            raise ValueError(f"ReduceLROnPlateau: no {self.monitor!r} or 'loss' to monitor")
        if value < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
                self.bad_epochs = 0
