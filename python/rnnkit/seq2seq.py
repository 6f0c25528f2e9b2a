"""Sequence to sequence with attention: an encoder-decoder whose training and decoding loops run in C++.

One decoder step (c_t: the attention context over the encoder outputs k_1..k_S, e: the target embedding):

    bahdanau:   c_t = attn(h_{t-1}, k);   x_t = [e(y_{t-1}); c_t];      h_t = cell(x_t, h_{t-1})
    luong_*:    x_t = [e(y_{t-1}); õ_{t-1}];   h_t = cell(x_t, h_{t-1});   c_t = attn(h_t, k)
    õ_t = tanh(W_c [c_t; h_t]);   p(y_t) = softmax(W_out õ_t + b_out)

Without input_feeding x_t = e(y_{t-1}); without attention õ_t = h_t. The bridge maps the last encoder layer's
final states to the decoder's: h_0 = tanh(W_bh [h_fwd; h_bwd] + b_bh) (an LSTM's c_0 = W_bc [c_fwd; c_bwd] + b_bc).
"""
from __future__ import annotations

import json
import math
import numbers
import time

import numpy as np

from . import io as _io
from . import optim as _optim
from ._backend import core as _core
from ._checks import as_dtype, flag, float_array, lengths_array, positive_int, seed_value, shape_str, untorch
from .attention import ATTENTION_KINDS
from .model import _check_clip_norm, _end_epoch, _end_training, _progress, _start_callbacks, clip_grad_norm
from .module import Module, load_into

__all__ = ["Seq2Seq"]


def _token_array(name, value, vocab):
    value = untorch(value)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name}: expected an integer array of token ids, got {type(value).__name__}") from exc
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected shape (B, length) with B, length >= 1, got {shape_str(arr.shape)}")
    if arr.min() < 0 or arr.max() >= vocab:
        bad = arr[(arr < 0) | (arr >= vocab)]
        raise ValueError(f"{name}: expected token ids in 0..{vocab - 1}, got {bad[:5].tolist()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


class Seq2Seq(Module):
    """An attentive encoder-decoder over token ids.

    Args:
        src_vocab: source vocabulary size, or None for a source of values (src_features).
        tgt_vocab: target vocabulary size, or None for a target of values (tgt_features).
        embed_size: embedding features (source and target), default 64.
        hidden_size: the encoder's features per direction (a bidirectional encoder outputs 2 * hidden_size) and the
            decoder's size, default 128.
        cell: "lstm" or "gru" (encoder and decoder), default 'lstm'.
        encoder_layers: stacked encoder layers, default 1.
        bidirectional_encoder: a bidirectional encoder, default True.
        attention: "bahdanau", "luong_dot", "luong_general", "luong_concat" or None (no attention), default
            'bahdanau'.
        input_feeding: Luong's input feeding (õ_{t-1} joins the decoder input); with Bahdanau attention the context
            computed from the previous decoder state joins it, default True.
        pad_id: pads source and target; never emitted by decoding, default 0.
        start_id: the decoder's first input; never emitted by decoding, default 1.
        end_id: ends a target sequence, default 2.
        attention_units: the additive scores' hidden size (bahdanau, luong_concat); None means hidden_size,
            default None.
        src_features: with src_vocab=None, the source is (B, S, src_features) values fed to the encoder as they are
            (sequence regression), default None.
        tgt_features: with tgt_vocab=None, the target is (B, T, tgt_features) values: the decoder's input is the
            previous value (zeros first), the loss is the mean squared error over valid steps, and predict
            generates max_length steps, default None.
        dtype: "float32" or "float64", default 'float32'.
        seed: initialisation and teacher-forcing draws; None draws fresh entropy; taken modulo 2**53 so that the
            model file's JSON holds it exactly, default None.

    Data: src (B, S) ids padded with pad_id; tgt (B, T) ids WITHOUT the start token, ending with end_id, padded with
    pad_id. Lengths default to the count of non-pad tokens.
    """

    is_model = True  # a whole model: saved as {"class": "Seq2Seq", "config": ...} (rnnkit.io)

    def __init__(self, src_vocab: int | None, tgt_vocab: int | None, embed_size: int = 64, hidden_size: int = 128, *,
                 cell: str = "lstm", encoder_layers: int = 1, bidirectional_encoder: bool = True,
                 attention: str | None = "bahdanau", input_feeding: bool = True, pad_id: int = 0, start_id: int = 1,
                 end_id: int = 2, attention_units: int | None = None, src_features: int | None = None,
                 tgt_features: int | None = None, dtype: str = "float32", seed: int | None = None) -> None:
        for side, vocab, features in (("src", src_vocab, src_features), ("tgt", tgt_vocab, tgt_features)):
            if (vocab is None) == (features is None):
                raise ValueError(f"{side}_vocab, {side}_features: expected exactly one of them (token ids or values), "
                                 f"got {side}_vocab={vocab!r}, {side}_features={features!r}")
        self.src_vocab = None if src_vocab is None else positive_int("src_vocab", src_vocab)
        self.tgt_vocab = None if tgt_vocab is None else positive_int("tgt_vocab", tgt_vocab)
        self.src_features = None if src_features is None else positive_int("src_features", src_features)
        self.tgt_features = None if tgt_features is None else positive_int("tgt_features", tgt_features)
        self.embed_size = positive_int("embed_size", embed_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell: expected 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        self.encoder_layers = positive_int("encoder_layers", encoder_layers)
        self.bidirectional_encoder = flag("bidirectional_encoder", bidirectional_encoder)
        if attention is not None and attention not in ATTENTION_KINDS:
            raise ValueError(f"attention: expected one of {list(ATTENTION_KINDS)} or None, got {attention!r}")
        if attention == "luong_dot" and self.bidirectional_encoder:
            raise ValueError("attention: 'luong_dot' scores h . k and needs keys of the decoder's size: use "
                             "bidirectional_encoder=False or another attention")
        self.attention = attention
        self.input_feeding = flag("input_feeding", input_feeding)
        ids = {}
        for name, value in (("pad_id", pad_id), ("start_id", start_id), ("end_id", end_id)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0 or (
                    self.tgt_vocab is not None and value >= self.tgt_vocab):
                limit = f"0..{self.tgt_vocab - 1}" if self.tgt_vocab is not None else ">= 0"
                raise ValueError(f"{name}: expected a token id in {limit}, got {value!r}")
            ids[name] = int(value)
        if self.tgt_vocab is not None and len(set(ids.values())) != 3:
            raise ValueError(f"pad_id, start_id, end_id: expected three different ids, got {list(ids.values())}")
        if self.src_vocab is not None and ids["pad_id"] >= self.src_vocab:
            raise ValueError(f"pad_id: expected an id below src_vocab ({self.src_vocab}), got {ids['pad_id']}")
        self.pad_id, self.start_id, self.end_id = ids["pad_id"], ids["start_id"], ids["end_id"]
        if attention_units is not None:
            attention_units = positive_int("attention_units", attention_units)
            if attention not in ("bahdanau", "luong_concat"):
                raise ValueError(f"attention_units: only additive attention ('bahdanau', 'luong_concat') has units, "
                                 f"got attention={attention!r}")
        self.attention_units = attention_units
        self.dtype = as_dtype(dtype)
        self.seed = seed_value(seed) % 2**53
        cls = _core.Seq2Seq32 if self.dtype == np.float32 else _core.Seq2Seq64
        self._core = cls(json.dumps(self.get_config()))
        self._bind()
        self.optimizer = None

    def _bind(self):
        self._params, self._grads = {}, {}
        for name, _shape, p, g in self._core.parameters():
            self._params[name], self._grads[name] = p, g

    # --- the Module protocol ----------------------------------------------------------------------------
    def parameters(self) -> dict:
        """name -> ndarray view (writes go to the model): src_embedding, encoder.* (torch.nn.LSTM/GRU names),
        bridge_h/bridge_c, tgt_embedding, decoder.* (LSTMCell/GRUCell names), attention.*, combine, output."""
        return dict(self._params)

    @property
    def grads(self) -> dict:
        return dict(self._grads)

    def zero_grad(self) -> None:
        self._core.zero_grad()

    def state_dict(self) -> dict:
        return {k: v.copy() for k, v in self._params.items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        load_into(self._params, self.dtype, state_dict, strict)

    def get_config(self) -> dict:
        return {"src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab, "embed_size": self.embed_size,
                "hidden_size": self.hidden_size, "cell": self.cell, "encoder_layers": self.encoder_layers,
                "bidirectional_encoder": self.bidirectional_encoder, "attention": self.attention,
                "attention_units": self.attention_units, "input_feeding": self.input_feeding,
                "pad_id": self.pad_id, "start_id": self.start_id, "end_id": self.end_id,
                "src_features": self.src_features, "tgt_features": self.tgt_features, "dtype": self.dtype.name,
                "seed": self.seed}

    @property
    def rng_state(self) -> int:
        return self._core.rng_counter

    @rng_state.setter
    def rng_state(self, value: int) -> None:
        self._core.rng_counter = int(value)

    def save(self, path, metadata=None) -> None:
        """One .safetensors file (parameters + architecture), written atomically; rk.load reads it back, and so
        does the C++ rnnkit::Seq2SeqModel::load."""
        _io.save(self, path, metadata=metadata)

    def __repr__(self) -> str:
        return (f"Seq2Seq({self.src_vocab}, {self.tgt_vocab}, embed_size={self.embed_size}, "
                f"hidden_size={self.hidden_size}, cell={self.cell!r}, encoder_layers={self.encoder_layers}, "
                f"bidirectional_encoder={self.bidirectional_encoder}, attention={self.attention!r})")

    # --- data ---------------------------------------------------------------------------------------------
    def _lengths(self, name, tokens, lengths):
        if lengths is None and tokens.ndim == 3:  # values: every step is valid
            return np.full(tokens.shape[0], tokens.shape[1], np.int32)
        if lengths is None:
            counts = (tokens != self.pad_id).sum(axis=1)
            if counts.min() < 1:
                raise ValueError(f"{name}: a sequence holds only pad tokens ({self.pad_id}); pass {name} explicitly")
            return counts.astype(np.int32)
        return lengths_array(lengths, tokens.shape[0], tokens.shape[1], minimum=1, name=name)

    def _side(self, name, value, vocab, features):
        if vocab is not None:
            return _token_array(name, value, vocab)
        arr = float_array(name, value, self.dtype, shape=(None, None, features))
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"{name}: expected shape (B, length, {features}) with B, length >= 1, got "
                             f"{shape_str(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: expected finite values")
        return arr

    def _pairs(self, src, tgt, src_lengths, tgt_lengths):
        src = self._side("src", src, self.src_vocab, self.src_features)
        tgt = self._side("tgt", tgt, self.tgt_vocab, self.tgt_features)
        if tgt.shape[0] != src.shape[0]:
            raise ValueError(f"tgt: expected {src.shape[0]} sequences (as src), got shape {shape_str(tgt.shape)}")
        return (src, tgt, self._lengths("src_lengths", src, src_lengths),
                self._lengths("tgt_lengths", tgt, tgt_lengths))

    # --- training -------------------------------------------------------------------------------------------
    def train_batch(self, src, tgt, src_lengths=None, tgt_lengths=None, teacher_forcing=1.0, label_smoothing=0.0,
                    backward=True):
        """Mean masked cross-entropy of one batch over its valid target tokens; backward=True accumulates every
        parameter's gradient (the whole decoder loop, forward and backward, runs in C++). Returns
        (loss, tokens, correct argmax predictions)."""
        src, tgt, sl, tl = self._pairs(src, tgt, src_lengths, tgt_lengths)
        return self._core.train_batch(src, sl, tgt, tl, _ratio("teacher_forcing", teacher_forcing),
                                      _smoothing(label_smoothing), bool(backward))

    def fit(self, src, tgt, src_lengths=None, tgt_lengths=None, epochs=10, batch_size=64, optimizer=None,
            validation_data=None, teacher_forcing=1.0, clip_norm=None, callbacks=None, verbose=1, *,
            label_smoothing=0.0, shuffle=True, seed=None):
        """Train on (src, tgt) pairs; returns {'loss': [...], 'accuracy': [...]} (+ 'val_loss', 'val_accuracy'):
        mean cross-entropy and argmax accuracy per target token (continuous targets: the mean squared error, no
        accuracy).

        optimizer: an Optimizer or a name (default Adam). validation_data: (src, tgt) or (src, tgt, src_lengths,
        tgt_lengths). teacher_forcing: the probability of feeding the gold previous token (else the model's
        argmax: scheduled sampling). clip_norm: clip the global gradient norm. callbacks: objects with
        on_epoch_end(epoch, logs) (EarlyStopping, LR schedules). label_smoothing: torch's.
        """
        epochs = positive_int("epochs", epochs)
        batch_size = positive_int("batch_size", batch_size)
        teacher_forcing = _ratio("teacher_forcing", teacher_forcing)
        label_smoothing = _smoothing(label_smoothing)
        _check_clip_norm(clip_norm)
        src, tgt, sl, tl = self._pairs(src, tgt, src_lengths, tgt_lengths)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 4):
                raise TypeError("validation_data: expected (src, tgt) or (src, tgt, src_lengths, tgt_lengths)")
            validation_data = self._pairs(*(tuple(validation_data) + (None, None))[:4])
        self.optimizer = _optim.get(optimizer if optimizer is not None else (self.optimizer or "adam"), self)
        callbacks = _start_callbacks(callbacks, self)
        rng = np.random.default_rng(seed)
        n = src.shape[0]
        tokens_out = self.tgt_vocab is not None
        history = {"loss": [], "accuracy": []} if tokens_out else {"loss": []}
        if validation_data is not None:
            history.update({"val_loss": [], "val_accuracy": []} if tokens_out else {"val_loss": []})
        progress = _progress(verbose, epochs, n)
        try:
            for epoch in range(epochs):
                order = rng.permutation(n) if shuffle else np.arange(n)
                total, tokens, correct, seen, start = 0.0, 0, 0, 0, time.perf_counter()
                for lo in range(0, n, batch_size):
                    idx = order[lo:lo + batch_size]
                    # trim the batch's padding: its longest source and target
                    S, T = int(sl[idx].max()), int(tl[idx].max())
                    loss, count, right = self._core.train_batch(
                        np.ascontiguousarray(src[idx, :S]), sl[idx], np.ascontiguousarray(tgt[idx, :T]), tl[idx],
                        teacher_forcing, label_smoothing, True)
                    if clip_norm is not None:
                        clip_grad_norm(self, clip_norm)
                    self.optimizer.step()
                    self.zero_grad()
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"fit: the loss became {loss} at epoch {epoch + 1}; lower the "
                                                 "learning rate or set clip_norm")
                    total += loss * count
                    tokens += count
                    correct += right
                    seen += len(idx)
                    progress.update(len(idx), epoch, total / tokens, None, seen / (time.perf_counter() - start))
                logs = {"loss": total / tokens}
                if tokens_out:
                    logs["accuracy"] = correct / tokens
                if validation_data is not None:
                    logs["val_loss"], val_accuracy = self._evaluate(*validation_data, batch_size=256)
                    if tokens_out:
                        logs["val_accuracy"] = val_accuracy
                for key, value in logs.items():
                    history[key].append(value)
                progress.update(0, epoch, logs["loss"], logs.get("val_loss"), seen / (time.perf_counter() - start))
                if _end_epoch(callbacks, epoch, logs):
                    break
        finally:
            progress.close()
        _end_training(callbacks, self)
        return history

    def evaluate(self, src, tgt, src_lengths=None, tgt_lengths=None, batch_size=256, label_smoothing=0.0) -> float:
        """Mean cross-entropy per valid target token, teacher-forced, no gradients."""
        return self._evaluate(*self._pairs(src, tgt, src_lengths, tgt_lengths), batch_size=batch_size,
                              label_smoothing=_smoothing(label_smoothing))[0]

    def _evaluate(self, src, tgt, sl, tl, batch_size=256, label_smoothing=0.0):
        total, tokens, correct = 0.0, 0, 0
        for lo in range(0, src.shape[0], positive_int("batch_size", batch_size)):
            sel = slice(lo, lo + batch_size)
            S, T = int(sl[sel].max()), int(tl[sel].max())
            loss, count, right = self._core.train_batch(np.ascontiguousarray(src[sel, :S]), sl[sel],
                                                        np.ascontiguousarray(tgt[sel, :T]), tl[sel], 1.0,
                                                        label_smoothing, False)
            total += loss * count
            tokens += count
            correct += right
        return total / tokens, correct / tokens

    # --- decoding -------------------------------------------------------------------------------------------
    def predict(self, src, src_lengths=None, method="greedy", beam_width=1, max_length=None, length_penalty=0.0,
                return_scores=False, return_attention=False, batch_size=256):
        """Decode every source sentence in C++: a list of B token lists (end token excluded).

        method: "greedy" or "beam" (beam_width hypotheses per sentence, batched over sentences and beams).
        max_length: output tokens without the end token (default 2 x the longest source + 10).
        length_penalty: GNMT's alpha: scores are Σ log p / ((5 + n) / 6)^alpha, n counting the end token.
        return_scores / return_attention add the scores (one float per sentence) and the attention weights (one
        (output steps, source length) array per sentence; the end token's step included when it was emitted).
        A model with continuous targets returns (B, max_length, tgt_features) values instead (greedy, each step fed
        the previous output; max_length required), and with return_attention also the weights.
        """
        src = self._side("src", src, self.src_vocab, self.src_features)
        sl = self._lengths("src_lengths", src, src_lengths)
        if self.tgt_features is not None:
            return self._generate(src, sl, method, beam_width, max_length, return_attention, batch_size)
        if method not in ("greedy", "beam"):
            raise ValueError(f"method: expected 'greedy' or 'beam', got {method!r}")
        beam_width = positive_int("beam_width", beam_width)
        if method == "greedy" and beam_width != 1:
            raise ValueError(f"beam_width: greedy decoding keeps one hypothesis; use method='beam' for "
                             f"beam_width={beam_width}")
        if max_length is None:
            max_length = 2 * int(sl.max()) + 10
        elif isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 0:
            raise ValueError(f"max_length: expected a non-negative integer or None, got {max_length!r}")
        if isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real) or not (
                math.isfinite(length_penalty) and length_penalty >= 0):
            raise ValueError(f"length_penalty: expected a non-negative number, got {length_penalty!r}")
        # Batches of sentences of similar length (sorted by source length, stable): less padding in the encoder
        # and the attention, and sentences that end together; results come back in the caller's order.
        n = src.shape[0]
        order = np.argsort(sl, kind="stable")
        seqs, scores, attention = [None] * n, [0.0] * n, [None] * n
        for lo in range(0, n, positive_int("batch_size", batch_size)):
            idx = order[lo:lo + batch_size]
            S = int(sl[idx].max())
            tokens, sc, att, _ = self._core.decode(np.ascontiguousarray(src[idx, :S]), sl[idx], beam_width,
                                                   method == "greedy", int(max_length), float(length_penalty),
                                                   bool(return_attention))
            for j, i in enumerate(idx):
                seqs[i], scores[i] = tokens[j], sc[j]
                if return_attention:
                    attention[i] = att[j][:, :sl[i]]
        out = [seqs]
        if return_scores:
            out.append(np.asarray(scores))
        if return_attention:
            out.append(attention)
        return seqs if len(out) == 1 else tuple(out)


    def _generate(self, src, sl, method, beam_width, max_length, return_attention, batch_size):
        if method != "greedy" or beam_width != 1:
            raise ValueError(f"method: a model with continuous targets generates greedily (each step fed the previous "
                             f"output); got method={method!r}, beam_width={beam_width}")
        if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 1:
            raise ValueError(f"max_length: a model with continuous targets needs the number of steps to generate (a "
                             f"positive integer), got {max_length!r}")
        outs, attention = [], []
        for lo in range(0, src.shape[0], positive_int("batch_size", batch_size)):
            sel = slice(lo, lo + batch_size)
            S = int(sl[sel].max())
            values, att = self._core.generate(np.ascontiguousarray(src[sel, :S]), sl[sel], int(max_length),
                                              bool(return_attention))
            outs.append(values)
            if return_attention:
                attention.extend(a[:, :n] for a, n in zip(att, sl[sel]))
        values = np.concatenate(outs)
        return (values, attention) if return_attention else values


def _ratio(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a ratio in [0, 1], got {value!r}")
    return float(value)


def _smoothing(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {value!r}")
    return float(value)
