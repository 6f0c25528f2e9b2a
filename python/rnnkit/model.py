"""Sequential models: composition, explicit backward, and the Keras-like fit / evaluate / predict loop."""
from __future__ import annotations

import math
import numbers
import queue
import sys
import threading
import time
from collections.abc import Iterable

import numpy as np

from . import io as _io
from . import losses as _losses
from . import onnx_export as _onnx_export
from . import distributed as _dist
from . import optim as _optim
from ._backend import core as _core
from ._checks import lengths_array, shape_str, untorch
from .module import Module, is_layer, load_into, registry

__all__ = ["Sequential", "EarlyStopping", "clip_grad_norm", "clip_grad_value"]


class Sequential(Module):
    """Layers applied in order. `lengths` flows to the layers that use it (recurrent layers, LastStep).

    Parameters are named "<index>.<name>" as in torch.nn.Sequential's state_dict.
    Data for fit/evaluate/predict is sliced along the batch axis of the first recurrent layer's convention:
    axis 0 with batch_first=True (x: (N, T, F)), else axis 1 (x: (T, N, F)).

    Args:
        layers: the layers (LSTM, GRU, RNN, Dense, Embedding, Dropout, LastStep, or a Sequential), at least one,
            all of one dtype. Each layer's setup() sees the recurrent layer before it (LastStep takes its
            directions and batch_first from there).
    """

    def __init__(self, layers: Iterable[Module]) -> None:
        if not isinstance(layers, Iterable):
            raise TypeError(f"layers: expected a list of rnnkit layers, got {type(layers).__name__}")
        layers = list(layers)
        if not layers:
            raise ValueError("layers: expected at least one layer")
        for i, layer in enumerate(layers):
            if not is_layer(layer):
                raise TypeError(f"layers[{i}]: expected an rnnkit layer, got {type(layer).__name__}")
        previous = None
        for layer in layers:
            layer.setup(previous)
            if layer.is_recurrent:
                previous = layer
        dtypes = {layer.dtype.name for layer in layers if layer.dtype is not None}
        if len(dtypes) > 1:
            raise ValueError(f"layers: expected one dtype for all layers, got {sorted(dtypes)}")
        self.layers = layers
        self._penalty = 0.0
        self.loss = None
        self.optimizer = None

    # --- composition ----------------------------------------------------------------------------------
    def seq_forward(self, x, lengths=None, training=True):
        lengths = self._mask_lengths(x, lengths)
        carry = getattr(self, "_carry", None)
        for i, layer in enumerate(self.layers):
            if carry is not None and layer.is_recurrent:  # stateful / truncated BPTT: start from the carried states
                state = carry.get(i)
                if state is not None and state[0].shape[1] != np.shape(x)[layer._batch_axis()]:
                    raise ValueError(f"stateful: the batch has {np.shape(x)[layer._batch_axis()]} sequences but the "
                                     f"carried states have {state[0].shape[1]}; keep one batch size or call "
                                     "reset_states()")
                x, carry[i] = layer.seq_forward_state(x, state, lengths=lengths, training=training)
            else:
                x = layer.seq_forward(x, lengths=lengths, training=training)
        return x

    def _mask_lengths(self, x, lengths):
        """Lengths from the tokens when the first layer is an Embedding with mask_zero and none are given."""
        if lengths is not None or not getattr(self.layers[0], "mask_zero", False):
            return lengths
        tokens = np.asarray(untorch(x))
        return (tokens != 0).sum(axis=1 - self._batch_axes()[0]).astype(np.int32)

    def seq_backward(self, dout):
        """Backpropagate dout through every layer (last first); adds L1/L2 penalty gradients. Returns dx."""
        for layer in reversed(self.layers):
            dout = layer.seq_backward(dout)
        self.regularize()
        return dout

    def regularize(self) -> float:
        self._penalty = sum(layer.regularize() for layer in self.layers)
        return self._penalty

    def regularization_loss(self) -> float:
        """The L1/L2 penalty of the current weights (the value regularize() adds gradients for); gradients are
        left alone."""
        return float(sum(layer.regularization_loss() for layer in self.layers))

    def parameters(self) -> dict:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.parameters().items()}

    @property
    def grads(self) -> dict:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def state_dict(self) -> dict:
        return {k: v.copy() for k, v in self.parameters().items()}

    def load_state_dict(self, state_dict, strict=True) -> None:
        load_into(self.parameters(), self.dtype, state_dict, strict)

    @property
    def dtype(self):
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return np.dtype(np.float32)

    def get_config(self) -> dict:
        return {"layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """A new model from the dict get_config() returns: {"layers": [{"class": name, "config": {...}}, ...]},
        each class looked up in the layer registry (rnnkit.module.registry())."""
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict {{'layers': [...]}}, got {type(config).__name__}")
        if set(config) != {"layers"}:
            raise ValueError(f"config: expected exactly the key 'layers', got keys {list(config)}")
        specs = config["layers"]
        if not isinstance(specs, list):
            raise TypeError(f"config['layers']: expected a list of layer specs, got {type(specs).__name__}")
        if not specs:
            raise ValueError("config['layers']: expected at least one layer spec, got an empty list")
        classes = registry()
        layers = []
        for i, spec in enumerate(specs):
            where = f"config['layers'][{i}]"
            if not isinstance(spec, dict):
                raise TypeError(f"{where}: expected a dict {{'class': name, 'config': {{...}}}}, got "
                                f"{type(spec).__name__}")
            if set(spec) != {"class", "config"}:
                raise ValueError(f"{where}: expected the keys 'class' and 'config', got keys {list(spec)}")
            name = spec["class"]
            if not isinstance(name, str):
                raise TypeError(f"{where}['class']: expected a layer class name (str), got {type(name).__name__} "
                                f"{name!r}")
            if name not in classes:
                raise ValueError(f"{where}['class']: unknown layer class {name!r}; known classes: {sorted(classes)}")
            try:
                layers.append(classes[name].from_config(spec["config"]))
            except (TypeError, ValueError) as exc:  # the same kind of error, saying which layer it comes from
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                raise kind(f"{where} ({name}): {exc}") from exc
        return cls(layers)

    @property
    def rng_state(self) -> list:
        return [layer.rng_state for layer in self.layers]

    @rng_state.setter
    def rng_state(self, value) -> None:
        for layer, v in zip(self.layers, value):
            layer.rng_state = v

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def save(self, path, metadata=None) -> None:
        """One .safetensors file: parameters by name, architecture as JSON metadata, written atomically."""
        _io.save(self, path, metadata=metadata)

    def export_onnx(self, path, batch_first=None, dynamic_axes=True, opset=17) -> None:
        """Write the model as ONNX (input "X", int32 "sequence_lens", output "Y"); see rnnkit.onnx_export."""
        _onnx_export.export_onnx(self, path, batch_first=batch_first, dynamic_axes=dynamic_axes, opset=opset)

    # --- data layout ----------------------------------------------------------------------------------
    def _batch_axes(self):
        """(input batch axis, output batch axis) for fit/evaluate/predict."""
        in_axis = 0
        for layer in self.layers:
            if layer.is_recurrent:
                in_axis = 0 if layer.batch_first else 1
                break
        out_axis = in_axis
        for layer in self.layers:
            if layer.reduces_time:
                out_axis = 0
        return in_axis, out_axis

    def _per_step_output(self) -> bool:
        return not any(layer.reduces_time for layer in self.layers) and any(
            layer.is_recurrent for layer in self.layers)

    def _mask_for(self, lengths, out_shape, out_axis):
        """(T, B) / (B, T) validity mask for per-step outputs with lengths, else None."""
        if lengths is None or not self._per_step_output():
            return None
        time_axis = 1 - out_axis
        T = out_shape[time_axis]
        steps = np.arange(T)
        mask = steps[:, None] < np.asarray(lengths)[None, :]  # (T, B)
        return mask.T if out_axis == 0 else mask

    # --- training loop --------------------------------------------------------------------------------
    def fit(self, x, y=None, epochs=1, batch_size=32, loss=None, optimizer=None, validation_data=None, lengths=None,
            shuffle=None, clip_norm=None, callbacks=None, verbose=1, seed=None, distributed=False, tbptt=None,
            stateful=None):
        """Train with mini-batches; returns a history dict {'loss': [...], 'val_loss': [...] (if validation)}.

        x, y: arrays (NumPy arrays or memmaps: batches are read from them as they are needed), or x an iterable of
        batches (x, y) or (x, y, lengths) and y None: a list or other re-iterable object, or a function returning
        an iterator (called each epoch); a bare generator serves one epoch. Batches come from a background thread,
        so the kernels do not wait for Python to produce the next one.
        loss: a loss object or name ('mse', 'cross_entropy', 'bce_with_logits'); optimizer: an Optimizer or a
        name (default Adam). validation_data: (x_val, y_val) or (x_val, y_val, lengths_val). callbacks: objects
        with on_epoch_end(epoch, logs) (EarlyStopping, LR schedules); one returning True stops training.
        distributed: under mpiexec, split each global batch across the MPI ranks and average gradients with one
        Allreduce per step (rnnkit.distributed); parameters start as rank 0's; only rank 0 shows progress.
        tbptt: truncated backpropagation through time for models with per-step outputs: K (an update every K
        steps, gradients cut at window boundaries; Williams & Peng's TBPTT(K, K)) or (K1, K2) (an update every K1
        steps backpropagating K2 steps, K2 a multiple of K1); states carry from window to window.
        stateful: carry every recurrent layer's final states into the next batch (Keras's stateful=True: row i of
        a batch continues row i of the previous one; needs one batch size, and keeps the data's order); states reset
        at the start of each epoch and with reset_states(). None keeps the model's `stateful` setting.
        shuffle: reshuffle the sequences every epoch; default None: True, or False for a stateful model.
        The progress bar (tqdm) shows loss, validation loss and sequences/s; verbose=0 or a non-terminal
        stderr keeps it quiet.
        """
        self.loss = _losses.get(loss if loss is not None else (self.loss or "mse"))
        self.optimizer = _optim.get(optimizer if optimizer is not None else (self.optimizer or "adam"), self)
        epochs = _positive("epochs", epochs)
        batch_size = _positive("batch_size", batch_size)
        _check_clip_norm(clip_norm)
        windows = _tbptt_windows(tbptt)
        if stateful is not None:
            self.stateful = stateful
        self._check_carry(windows)
        in_axis, out_axis = self._batch_axes()
        streamed = y is None
        if streamed:
            if lengths is not None:
                raise ValueError("lengths: with an iterable of batches, give each batch its lengths: (x, y, lengths)")
            _batches_of(x, epochs)  # checks the source
        else:
            lengths = self._mask_lengths(x, lengths)
            x, y, lengths = self._check_data(x, y, lengths, in_axis, out_axis, "x", "y")
            if self.stateful and shuffle:
                raise ValueError("stateful: row i of a batch continues row i of the previous batch, so the order must "
                                 "stay: pass shuffle=False (or leave it None)")
            shuffle = not self.stateful if shuffle is None else bool(shuffle)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data: expected (x_val, y_val) or (x_val, y_val, lengths_val)")
            validation_data = tuple(validation_data) + (None,) * (3 - len(validation_data))
        share = (_dist.rank(), _dist.size()) if distributed else (0, 1)
        if distributed:
            seed = _dist.broadcast(seed if seed is not None else int(np.random.SeedSequence().entropy % (1 << 63)))
            _dist.broadcast_parameters(self)
            _dist.share_cpus()
            base_rng = self.rng_state
            self.rng_state = [c + share[0] * _dist.RNG_OFFSET for c in base_rng]  # per-rank dropout streams
        callbacks = _start_callbacks(callbacks, self)
        rng = np.random.default_rng(seed)
        n = None if streamed else x.shape[in_axis]
        history = {"loss": []}
        if validation_data is not None:
            history["val_loss"] = []
        progress = _progress(verbose if share[0] == 0 else 0, epochs, n)
        try:
            for epoch in range(epochs):
                if self.stateful:
                    self.reset_states()  # each epoch starts the data again
                total, weight_sum, seen, start = 0.0, 0.0, 0, time.perf_counter()
                if streamed:
                    batches = _prefetched(_batches_of(x, epochs))
                else:
                    order = rng.permutation(n) if shuffle else np.arange(n)
                    batches = ((np.take(x, idx, axis=in_axis), np.take(y, idx, axis=out_axis),
                                None if lengths is None else lengths[idx])
                               for idx in (order[lo:lo + batch_size] for lo in range(0, n, batch_size)))
                for batch in batches:
                    xb, yb, lb = self._batch(batch, in_axis, out_axis) if streamed else batch
                    value, weight = self._fit_batch(xb, yb, lb, windows, clip_norm, share)
                    if not math.isfinite(value):
                        raise FloatingPointError(f"fit: the loss became {value} at epoch {epoch + 1}; lower the "
                                                 "learning rate or set clip_norm")
                    total += value * weight
                    weight_sum += weight
                    seen += xb.shape[in_axis]
                    progress.update(xb.shape[in_axis], epoch, total / weight_sum, None,
                                    seen / (time.perf_counter() - start))
                if weight_sum == 0:
                    raise ValueError("x: the iterable gave no batches")
                logs = {"loss": total / weight_sum}  # weighted like evaluate: per sequence, or per valid step
                if validation_data is not None:
                    logs["val_loss"] = self._evaluate_shared(*validation_data, batch_size=batch_size, share=share)
                    history["val_loss"].append(logs["val_loss"])
                history["loss"].append(logs["loss"])
                progress.update(0, epoch, logs["loss"], logs.get("val_loss"), seen / (time.perf_counter() - start))
                if _end_epoch(callbacks, epoch, logs):
                    break
        finally:
            progress.close()
            if distributed:  # the same counters on every rank again (rank 0's, as a 1-rank run would have)
                self.rng_state = [c - share[0] * _dist.RNG_OFFSET for c in self.rng_state]
        _end_training(callbacks, self)
        _dist.barrier() if distributed else None
        return history

    def _batch(self, batch, in_axis, out_axis):
        """A batch from an iterable: (x, y) or (x, y, lengths), checked."""
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise TypeError(f"x: an iterable of batches must give (x, y) or (x, y, lengths), got "
                            f"{type(batch).__name__}")
        xb, yb = batch[0], batch[1]
        lb = self._mask_lengths(xb, batch[2] if len(batch) == 3 else None)
        return self._check_data(xb, yb, lb, in_axis, out_axis, "x (batch)", "y (batch)")

    def _fit_batch(self, xb, yb, lb, windows, clip_norm, share):
        """One batch: one optimizer step, or one per truncated-BPTT window. Returns (mean loss, its weight)."""
        if windows is None:
            return self._step(xb, yb, lb, 0, clip_norm, share)
        K1, K2 = windows
        in_axis, out_axis = self._batch_axes()
        T = xb.shape[1 - in_axis]
        if not self.stateful:
            self._carry = {}  # windows of this batch carry states; the next batch starts from zeros
        boundaries = {0: dict(self._carry)}
        total = weight = 0.0
        done = 0
        while done < T:
            end = min(T, done + K1)
            begin = max(0, done + K1 - K2)  # (a short last window starts where a full one would)
            self._carry = dict(boundaries[begin])
            xw = np.take(xb, np.arange(begin, end), axis=1 - in_axis)
            yw = np.take(yb, np.arange(begin, end), axis=1 - out_axis)
            lw = None if lb is None else np.clip(np.asarray(lb) - begin, 0, end - begin).astype(np.int32)
            value, w = self._step(xw, yw, lw, done - begin, clip_norm, share)
            total, weight = total + value * w, weight + w
            boundaries[end] = dict(self._carry)
            done = end
        self._carry = boundaries[T] if self.stateful else None
        return (total / weight if weight else 0.0), weight

    def _step(self, xb, yb, lb, skip, clip_norm, share):
        """Forward, backward and an optimizer step on a batch; the first `skip` steps of per-step outputs are left
        out of the loss (truncated BPTT's overlap). Under MPI each rank takes its share of the rows and the
        gradients are averaged over ranks. Returns (mean loss, its weight: sequences, or valid steps)."""
        in_axis, out_axis = self._batch_axes()
        rank, ranks = share
        B = xb.shape[in_axis]
        parts = np.array_split(np.arange(B), ranks)
        weights = [self._rows_weight(lb, part, xb.shape[1 - in_axis], skip) for part in parts]
        total_weight = float(sum(weights))
        mine = parts[rank]
        value = 0.0
        if mine.size:
            if ranks > 1:
                xb, yb = np.take(xb, mine, axis=in_axis), np.take(yb, mine, axis=out_axis)
                lb = None if lb is None else np.asarray(lb)[mine]
            out = self.seq_forward(xb, lengths=lb, training=True)
            mask = self._loss_mask(lb, out.shape, out_axis, skip)
            value, dout = self.loss(out, yb, mask=mask)
            self.seq_backward(dout)
            penalty = self._penalty
        else:
            penalty = self.regularization_loss()
        if ranks > 1:
            value = _dist.allreduce_gradients(self, weights[rank] / total_weight, [value * weights[rank]])[0]
            value /= total_weight
        value += penalty
        grads = list(self.grads.values())
        norm = _global_norm(grads)
        if not (math.isfinite(value) and math.isfinite(norm)):  # stop before the update: the parameters stay good
            self.zero_grad()
            raise FloatingPointError(f"fit: the {'loss' if not math.isfinite(value) else 'gradient norm'} became "
                                     f"{value if not math.isfinite(value) else norm}; training stopped before the "
                                     "update, so the parameters are those of the last good step (lower the learning "
                                     "rate, set clip_norm, or look for NaN in the data)")
        if clip_norm is not None:
            _clip_to(grads, norm, clip_norm)
        self.optimizer.step()
        self.zero_grad()
        return value, total_weight

    def _rows_weight(self, lengths, rows, T, skip) -> float:
        """The loss weight of some rows of a batch: sequences, or valid per-step outputs (after `skip`)."""
        if not self._per_step_output() or (lengths is None and skip == 0):
            return float(len(rows))
        if lengths is None:
            return float(len(rows) * (T - skip))
        return float(np.clip(np.asarray(lengths)[rows] - skip, 0, T - skip).sum())

    def _loss_mask(self, lengths, out_shape, out_axis, skip):
        mask = self._mask_for(lengths, out_shape, out_axis)
        if skip == 0:
            return mask
        if mask is None:
            mask = np.ones(out_shape[:2], bool)
        steps = np.arange(out_shape[1 - out_axis]) >= skip
        return mask & (steps[None, :] if out_axis == 0 else steps[:, None])

    # --- states carried between calls (stateful models, truncated BPTT) ----------------------------------
    @property
    def stateful(self) -> bool:
        """Whether every forward starts from the recurrent layers' final states of the previous one (Keras's
        stateful=True): for predicting a long sequence window by window, and fit(stateful=True)."""
        return getattr(self, "_stateful", False)

    @stateful.setter
    def stateful(self, value) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"stateful: expected True or False, got {type(value).__name__}")
        self._stateful = bool(value)
        self._carry = {} if value else None
        if value:
            self._check_carry(None)

    def reset_states(self) -> None:
        """Forget the carried states: the next forward starts from zeros."""
        self._carry = {} if self.stateful else None

    def _check_carry(self, windows) -> None:
        if not (self.stateful or windows):
            return
        for i, layer in enumerate(self.layers):
            if layer.is_recurrent and getattr(layer, "bidirectional", False):
                raise ValueError(f"layers[{i}]: a bidirectional layer reads the future, so its states cannot carry "
                                 "over to the next window or batch (stateful / tbptt)")
        if windows and not self._per_step_output():
            raise ValueError("tbptt: needs a model with an output at every step (no LastStep): each window's "
                             "outputs take part in the loss")

    def evaluate(self, x, y, lengths=None, batch_size=256, loss=None):
        """Mean loss over (x, y) with training=False (no dropout, nothing recorded)."""
        return self._evaluate_shared(x, y, lengths, batch_size, loss, (0, 1))

    def _evaluate_shared(self, x, y, lengths=None, batch_size=256, loss=None, share=(0, 1)):
        """evaluate over this rank's share of the batches, summed over ranks (the same number on every rank).
        Each sequence is evaluated from zero states: a stateful model's carried states are left as they are."""
        carry, self._carry = getattr(self, "_carry", None), None
        try:
            return self._loss_over(x, y, lengths, batch_size, loss, share)
        finally:
            self._carry = carry

    def _loss_over(self, x, y, lengths, batch_size, loss, share):
        loss_fn = _losses.get(loss if loss is not None else (self.loss or "mse"))
        in_axis, out_axis = self._batch_axes()
        lengths = self._mask_lengths(x, lengths)
        x, y, lengths = self._check_data(x, y, lengths, in_axis, out_axis, "x", "y")
        n, total, weight = x.shape[in_axis], 0.0, 0.0
        starts = range(0, n, _positive("batch_size", batch_size))
        for k, lo in enumerate(starts):
            if k % share[1] != share[0]:
                continue
            idx = np.arange(lo, min(n, lo + batch_size))
            lb = None if lengths is None else lengths[idx]
            out = self.seq_forward(np.take(x, idx, axis=in_axis), lengths=lb, training=False)
            mask = self._mask_for(lb, out.shape, out_axis)
            value, _ = loss_fn(out, np.take(y, idx, axis=out_axis), mask=mask)
            w = float(mask.sum()) if mask is not None else len(idx)
            total += value * w
            weight += w
        if share[1] > 1:
            total, weight = _dist.allreduce_sum([total, weight])
        return total / weight

    def predict(self, x, lengths=None, batch_size=256):
        """Outputs for x in batches with training=False (no activations kept)."""
        in_axis, out_axis = self._batch_axes()
        x = np.asarray(x)
        if x.ndim <= in_axis:
            raise ValueError(f"x: expected at least {in_axis + 1} dimensions, got {shape_str(x.shape)}")
        n = x.shape[in_axis]
        if lengths is not None:
            lengths = lengths_array(lengths, n, x.shape[1 - in_axis] if x.ndim > 1 else 1, minimum=0)
        outs = []
        lengths = self._mask_lengths(x, lengths)
        if self.stateful:  # row i continues row i of the previous call: one batch
            batch_size = max(n, 1)
        for lo in range(0, n, _positive("batch_size", batch_size)):
            idx = np.arange(lo, min(n, lo + batch_size))
            lb = None if lengths is None else lengths[idx]
            outs.append(self.seq_forward(np.take(x, idx, axis=in_axis), lengths=lb, training=False))
        return np.concatenate(outs, axis=out_axis)

    def _check_data(self, x, y, lengths, in_axis, out_axis, xname, yname):
        x, y = np.asarray(untorch(x)), np.asarray(untorch(y))
        if x.ndim <= in_axis or y.ndim <= out_axis:
            raise ValueError(f"{xname}: expected samples along axis {in_axis}, got {shape_str(x.shape)}")
        if x.shape[in_axis] != y.shape[out_axis]:
            raise ValueError(f"{yname}: expected {x.shape[in_axis]} samples along axis {out_axis} (as {xname}), got "
                             f"shape {shape_str(y.shape)}")
        if x.shape[in_axis] == 0:
            raise ValueError(f"{xname}: expected at least one sample, got {shape_str(x.shape)}")
        if lengths is not None:
            lengths = lengths_array(lengths, x.shape[in_axis], x.shape[1 - in_axis], minimum=0)
        return x, y, lengths


# The pieces of a Keras-like training loop that every model's fit shares (Sequential, Seq2Seq).
def _check_clip_norm(clip_norm) -> None:
    if clip_norm is not None and not (isinstance(clip_norm, numbers.Real) and clip_norm > 0):
        raise ValueError(f"clip_norm: expected a positive number or None, got {clip_norm!r}")


def _start_callbacks(callbacks, model) -> list:
    """The callbacks as a list, each checked for on_epoch_end and given the model (set_model) if it takes one."""
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not hasattr(cb, "on_epoch_end"):
            raise TypeError(f"callbacks: expected objects with on_epoch_end(epoch, logs), got {type(cb).__name__}")
        if hasattr(cb, "set_model"):
            cb.set_model(model)
    return callbacks


def _end_epoch(callbacks, epoch, logs) -> bool:
    """Every callback's on_epoch_end (all of them run); True when one asks to stop."""
    stop = False
    for cb in callbacks:
        stop = bool(cb.on_epoch_end(epoch, logs)) or stop
    return stop


def _end_training(callbacks, model) -> None:
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(model)


def _tbptt_windows(tbptt):
    """tbptt as (K1, K2): None, K -> (K, K), or (K1, K2) with K2 a multiple of K1."""
    if tbptt is None:
        return None
    if isinstance(tbptt, (tuple, list)) and len(tbptt) == 2:
        k1, k2 = _positive("tbptt[0]", tbptt[0]), _positive("tbptt[1]", tbptt[1])
        if k2 < k1 or k2 % k1:
            raise ValueError(f"tbptt: expected (K1, K2) with K2 a multiple of K1, got {tuple(tbptt)}")
        return k1, k2
    k = _positive("tbptt", tbptt)
    return k, k


def _batches_of(source, epochs):
    """An iterator over one epoch's batches from `source` (checked: a generator serves one epoch only)."""
    if callable(source):
        return iter(source())
    if isinstance(source, (np.ndarray, str, bytes)) or not isinstance(source, Iterable):
        raise TypeError(f"x: expected arrays x and y, or x an iterable of batches with y None, got "
                        f"{type(source).__name__} and y None")
    it = iter(source)
    if it is source and epochs > 1:
        raise ValueError("x: a generator or iterator runs out after one epoch; pass a list, a re-iterable object or "
                         "a function returning a fresh iterator for epochs > 1")
    return it


def _prefetched(iterator, depth=2):
    """Items of `iterator` produced by a background thread, `depth` ahead (the kernels release the GIL, so the
    next batch is made while the current one trains). Exceptions reach the consumer."""
    items = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=produce, name="rnnkit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _positive(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class _progress:
    """A tqdm bar over all epochs' sequences, or nothing when quiet."""

    def __init__(self, verbose, epochs, n):
        self.bar = None
        if verbose and sys.stderr.isatty():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=None if n is None else epochs * n, unit="seq", dynamic_ncols=True, leave=True)
        self.epochs = epochs

    def update(self, count, epoch, loss, val_loss, rate):
        if self.bar is None:
            return
        self.bar.update(count)
        self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")
        post = {"loss": f"{loss:.4g}", "seq/s": f"{rate:.0f}"}
        if val_loss is not None:
            post["val_loss"] = f"{val_loss:.4g}"
        self.bar.set_postfix(post, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class EarlyStopping:
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs; with
    restore_best_weights the model gets the best epoch's parameters back at the end. Pass it to fit(callbacks=...).

    Args:
        monitor: the logged value to watch, 'val_loss' (needs validation_data) or 'loss'; default 'val_loss'.
        patience: epochs without improvement before training stops, default 5.
        min_delta: the least decrease that counts as an improvement, default 0.0.
        restore_best_weights: at the end of fit, load the parameters of the best epoch, default True.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged value such as 'val_loss', got "
                            f"{type(monitor).__name__} {monitor!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ValueError(f"min_delta: expected a non-negative number, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, _positive("patience", patience), float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.best, self.best_epoch, self.wait, self.best_state, self.stopped_epoch = math.inf, -1, 0, None, None
        self._model = None

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: {self.monitor!r} is not logged (logged: {sorted(logs)}); pass "
                             "validation_data or monitor='loss'")
        value = logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights and self._model is not None:
                self.best_state = self._model.state_dict()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model):
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def set_model(self, model):
        self._model = model


def clip_grad_norm(model, max_norm) -> float:
    """Scale all gradients by max_norm / (norm + 1e-6) when their global L2 norm exceeds max_norm (as
    torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        raise ValueError(f"max_norm: expected a positive number, got {max_norm!r}")
    grads = list(model.grads.values())
    total = _global_norm(grads)
    _clip_to(grads, total, max_norm)
    return total


def _global_norm(grads) -> float:
    """The L2 norm of all gradient arrays together."""
    return math.sqrt(sum(_core.sum_of_squares(g) for g in grads))


def _clip_to(grads, norm, max_norm) -> None:
    """Scale grads (of global norm `norm`) by max_norm / (norm + 1e-6) when that is below 1."""
    coef = float(max_norm) / (norm + 1e-6)
    if coef < 1.0:
        for g in grads:
            _core.scale(g, coef)


def clip_grad_value(model, clip_value) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value > 0:
        raise ValueError(f"clip_value: expected a positive number, got {clip_value!r}")
    for g in model.grads.values():
        _core.clip_values(g, float(clip_value))
