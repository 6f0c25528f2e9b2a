"""Saving and loading models and training checkpoints as .safetensors files (no pickle).

A model file holds the parameters by name ("<layer index>.<name>") and, in the header's metadata,
  "rnnkit.format": "1", "rnnkit.kind": "model" or "checkpoint",
  "rnnkit.model": the architecture as JSON, "rnnkit.user": caller metadata as JSON,
  "rnnkit.crc32": CRC-32 (hex) over the metadata entries and every tensor's name, dtype, shape and bytes,
so a truncated, bit-flipped or edited file is rejected. Files are written to a temporary file in the same
folder, flushed to disk and renamed over the target: a crash never leaves a half-written file.
"""
from __future__ import annotations

import json
import os
import tempfile
import zlib

import numpy as np

from . import distributed as _dist
from . import optim
from .module import is_layer, layer_class

__all__ = ["save", "load", "load_metadata", "save_checkpoint", "load_checkpoint", "ModelFileError",
           "model_from_config"]

FORMAT = "1"


class ModelFileError(ValueError):
    """A model or checkpoint file that is missing, truncated, corrupted or not rnnkit's."""


def _checksum(metadata: dict, tensors: dict) -> str:
    crc = 0
    for key in sorted(k for k in metadata if k != "rnnkit.crc32"):
        crc = zlib.crc32(f"{key}={metadata[key]}\n".encode(), crc)
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        crc = zlib.crc32(f"{name}:{t.dtype.str}:{t.shape}\n".encode(), crc)
        crc = zlib.crc32(t.tobytes(), crc)
    return f"{crc:08x}"


def _write_atomic(path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, fsync, rename, fsync of the folder). While MPI runs
    several ranks (rnnkit.distributed), rank 0 writes and every rank waits for the file."""
    if _dist.active():
        try:
            if _dist.rank() == 0:
                _write_file(path, data)
        finally:
            _dist.barrier()
        return
    _write_file(path, data)


def _write_file(path, data: bytes) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _remove_stale_temporaries(folder, base)
    # ".<name>.<pid>.<random>.rnnkit-tmp": a write killed half way leaves this, never a partial `path`; the next
    # save of `path` removes it once its process is gone
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".rnnkit-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a file-size limit, no permission: the old file is intact
            raise OSError(exc.errno, f"save: could not write {path!r} ({exc.strerror or exc}); the previous file, "
                                     "if any, is unchanged") from exc
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _remove_stale_temporaries(folder, base) -> None:
    """Temporary files of earlier saves of `base` whose process no longer runs (killed mid-write)."""
    prefix = f".{base}."
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".rnnkit-tmp")]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # still running (a concurrent save): leave it
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
        except OSError:
            pass


def _serialize(tensors: dict, metadata: dict) -> bytes:
    from safetensors.numpy import save as st_save
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    metadata = dict(metadata, **{"rnnkit.format": FORMAT})
    metadata["rnnkit.crc32"] = _checksum(metadata, tensors)
    return st_save(tensors, metadata=metadata)


def _read(path, kind: str):
    """(tensors, metadata) of a verified rnnkit file of the given kind."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelFileError(f"path: no such file {path!r}") from None
    if len(data) < 8:
        raise ModelFileError(f"{path}: truncated ({len(data)} bytes), not a safetensors file")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8 or header_len > 100_000_000:
        raise ModelFileError(f"{path}: header length {header_len} exceeds the file ({len(data)} bytes): truncated "
                             "or corrupted")
    try:
        header = json.loads(data[8:8 + header_len])
        metadata = header.get("__metadata__", {}) if isinstance(header, dict) else {}
        tensors = st_load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise ModelFileError(f"{path}: not a valid safetensors file ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("rnnkit.format") != FORMAT:
        raise ModelFileError(f"{path}: not an rnnkit file (format {metadata.get('rnnkit.format')!r} in its metadata)")
    if metadata.get("rnnkit.crc32") != _checksum(metadata, tensors):
        raise ModelFileError(f"{path}: checksum mismatch: the file is corrupted or was modified")
    if metadata.get("rnnkit.kind") != kind:
        raise ModelFileError(f"{path}: holds a {metadata.get('rnnkit.kind')!r}, expected a {kind!r}")
    return tensors, metadata


def _sequential() -> type:
    # Sequential (model.py) reaches this file through the layer registry, not an import: model.py imports this
    # file for Sequential.save, and the package's __init__ has imported both before any of this runs.
    return layer_class("Sequential")


# Bounds on what a file may declare, checked before anything is built (a model file is untrusted input).
MAX_JSON_DEPTH = 64


def _json(text, what: str, path):
    """json.loads of a metadata entry; ModelFileError for malformed or too deeply nested JSON."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text if isinstance(text, str) else "":
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string, escaped = True, False
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ModelFileError(f"{path}: {what}: JSON nested {deepest} deep (at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: {what}: not valid JSON ({exc})") from None


def _declared_parameters(config) -> int:
    """A lower bound on the parameter count a model config declares, from its sizes alone (nothing is built):
    a recurrent layer has at least hidden_size rows of weight_ih per layer and direction, a Dense in x out weights,
    an Embedding num x dim. Malformed values count as 0 (the constructors reject them)."""
    def num(c, key, default=0):
        v = c.get(key, default)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    total = 0
    if isinstance(config, dict):
        if "hidden_size" in config and "input_size" in config:
            D = 2 if config.get("bidirectional") is True else 1
            L = num(config, "num_layers", 1)
            total += D * num(config, "hidden_size") * (num(config, "input_size") + max(L - 1, 0))
        total += num(config, "in_features") * num(config, "out_features")
        total += num(config, "num_embeddings") * num(config, "embedding_dim")
        for key, value in config.items():
            if isinstance(value, (dict, list)) and key != "metadata":
                total += _declared_parameters(value)
    elif isinstance(config, list):
        total += sum(_declared_parameters(v) for v in config)
    return total


def _check_declared(config, tensors, path) -> None:
    held = sum(int(t.size) for t in tensors.values())
    declared = _declared_parameters(config)
    if declared > held:
        raise ModelFileError(f"{path}: the architecture declares at least {declared} parameters but the file holds "
                             f"{held} values: corrupted or hostile")


def model_from_config(config: dict, path="model"):
    """The model that `config` (a model file's "rnnkit.model" entry) describes: a Sequential ({"layers": [...]}) or a
    whole model of its own class ({"class": "Seq2Seq", "config": {...}}); ModelFileError if malformed."""
    try:
        if isinstance(config, dict) and "class" in config:
            if set(config) != {"class", "config"}:
                raise ValueError(f"expected the keys 'class' and 'config', got {list(config)}")
            cls = layer_class(config["class"])
            if not getattr(cls, "is_model", False):
                raise ValueError(f"{config['class']!r} is not a model class")
            return cls.from_config(config["config"])
        return _sequential().from_config(config)
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise ModelFileError(f"{path}: model config: malformed ({exc})") from None


def _model_of(model):
    sequential = _sequential()
    if isinstance(model, sequential) or getattr(model, "is_model", False):
        return model
    if is_layer(model):
        return sequential([model])
    raise TypeError(f"model: expected a Sequential, a Seq2Seq or an rnnkit layer, got {type(model).__name__}")


def _architecture(model) -> str:
    """The "rnnkit.model" JSON of a model from _model_of: a Sequential's config, or {"class", "config"}."""
    if isinstance(model, _sequential()):
        return json.dumps(model.get_config())
    return json.dumps({"class": type(model).__name__, "config": model.get_config()})


def save(model, path, metadata=None) -> None:
    """Write `model` (a Sequential, or a single layer saved as a one-layer Sequential) to `path` atomically.

    metadata: an optional JSON-able dict kept in the file (e.g. preprocessing settings); rk.load_metadata reads it.
    """
    model = _model_of(model)
    meta = {"rnnkit.kind": "model", "rnnkit.model": _architecture(model),
            "rnnkit.user": json.dumps(metadata or {})}
    _write_atomic(path, _serialize(model.state_dict(), meta))


def load(path):
    """Rebuild the model (a Sequential or a Seq2Seq) saved at `path`; raises ModelFileError for a bad file."""
    tensors, meta = _read(path, "model")
    config = _json(meta.get("rnnkit.model"), "model config", path)
    _check_declared(config, tensors, path)
    model = model_from_config(config, path)
    try:
        model.load_state_dict(tensors)
    except ValueError as exc:
        raise ModelFileError(f"{path}: tensors do not match the architecture ({exc})") from None
    return model


def load_metadata(path) -> dict:
    """The user metadata dict stored with a model by save(..., metadata=...)."""
    _, meta = _read(path, "model")
    user = _json(meta.get("rnnkit.user", "{}"), "user metadata", path)
    if not isinstance(user, dict):
        raise ModelFileError(f"{path}: user metadata: expected a JSON object, got {type(user).__name__}")
    return user


def save_checkpoint(path, model, optimizer=None, scheduler=None, **extra) -> None:
    """Parameters, optimizer state (moments, step count, lr), scheduler state, every layer's dropout RNG
    counter, and `extra` (JSON-able values, e.g. epoch or a NumPy Generator's bit_generator.state)."""
    # A bare layer is described as a one-layer Sequential but keeps its own parameter names (which its
    # optimizer's state uses); load_checkpoint hands back the bare layer.
    wrapped = _model_of(model)
    tensors = {f"model/{k}": v for k, v in model.parameters().items()}
    meta = {"rnnkit.kind": "checkpoint", "rnnkit.model": _architecture(wrapped),
            "rnnkit.layer": "1" if wrapped is not model else "0",
            "rnnkit.rng": json.dumps(wrapped.rng_state), "rnnkit.extra": json.dumps(extra)}
    if optimizer is not None:
        state = optimizer.state_dict()
        for name, bufs in state.pop("state").items():
            for key, value in bufs.items():
                tensors[f"optimizer/{name}/{key}"] = value
        meta["rnnkit.optimizer"] = json.dumps(state)
    if scheduler is not None:
        meta["rnnkit.scheduler"] = json.dumps(scheduler.state_dict())
    _write_atomic(path, _serialize(tensors, meta))


def load_checkpoint(path, model=None, optimizer=None, scheduler=None) -> dict:
    """Restore a checkpoint into `model` (rebuilt from the file when None), `optimizer` (rebuilt with the saved
    class and settings when None and the file has one) and `scheduler`. Returns
    {"model": ..., "optimizer": ..., "extra": {...}}."""
    tensors, meta = _read(path, "checkpoint")
    try:
        return _restore_checkpoint(path, tensors, meta, model, optimizer, scheduler)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError, RecursionError,
            MemoryError) as exc:  # a malformed entry of an untrusted file, whatever the failing step
        raise ModelFileError(f"{path}: checkpoint: malformed ({type(exc).__name__}: {exc})") from None


def _counters(value) -> bool:
    """An integer in [0, 2^64), or (nested) lists of them: a model's rng_state."""
    if isinstance(value, list):
        return all(_counters(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 64


def _restore_checkpoint(path, tensors, meta, model, optimizer, scheduler) -> dict:
    for key in ("rnnkit.model", "rnnkit.rng", "rnnkit.extra"):
        if key not in meta:
            raise ModelFileError(f"{path}: checkpoint: no {key!r} entry")
    if model is None:
        config = _json(meta["rnnkit.model"], "model config", path)
        _check_declared(config, {k: v for k, v in tensors.items() if k.startswith("model/")}, path)
        model = model_from_config(config, path)
        if meta.get("rnnkit.layer") == "1":
            model = model.layers[0]
    params = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(params)
    except ValueError as exc:
        raise ModelFileError(f"{path}: parameters do not match the model ({exc})") from None
    rng = _json(meta["rnnkit.rng"], "dropout counters", path)
    if not _counters(rng):
        raise ModelFileError(f"{path}: checkpoint: dropout counters must be integers in [0, 2^64) (nested in lists)")
    _model_of(model).rng_state = rng
    if "rnnkit.optimizer" in meta:
        state = _json(meta["rnnkit.optimizer"], "optimizer state", path)
        if not isinstance(state, dict):
            raise ModelFileError(f"{path}: checkpoint: optimizer state must be a JSON object")
        if optimizer is None:
            cls = getattr(optim, state["class"], None)
            if cls is None or not isinstance(cls, type) or not issubclass(cls, optim.Optimizer):
                raise ModelFileError(f"{path}: unknown optimizer class {state['class']!r}")
            hp = dict(state["hyperparameters"])
            if "betas" in hp:
                hp["betas"] = tuple(hp["betas"])
            optimizer = cls(model, lr=state["lr"], **hp)
        state["state"] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer/"):
                name, buf = key[len("optimizer/"):].rsplit("/", 1)
                state["state"].setdefault(name, {})[buf] = value
        try:
            optimizer.load_state_dict(state)
        except ValueError as exc:
            raise ModelFileError(f"{path}: optimizer state does not match the model ({exc})") from None
    if scheduler is not None and "rnnkit.scheduler" in meta:
        scheduler.load_state_dict(_json(meta["rnnkit.scheduler"], "scheduler state", path))
    return {"model": model, "optimizer": optimizer, "extra": _json(meta["rnnkit.extra"], "extra", path)}
