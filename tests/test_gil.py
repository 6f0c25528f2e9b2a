"""Every compute binding releases the GIL: while a long call runs in C++ on one Python thread, another Python
thread runs. The check is by order of events, not by speed: the main thread's first step after the call began
must come in the first half of the call (with the GIL held it cannot run before the call returns)."""
import os
import threading
import time

import numpy as np
import pytest

from rnnkit import _backend

core = _backend.core
N = 1 << 23  # elements of the element-wise cases: tens of milliseconds per call


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def recurrent_call(training):
    layer = core.Recurrent32(kind="lstm", input_size=256, hidden_size=256, seed=0)
    x = f32(200, 16, 256)
    if not training:
        return lambda: layer.forward(x, None, None, False)
    dy = f32(200, 16, 256)

    def call():
        layer.forward(x, None, None, True)
        layer.backward(dy, None)
    return call


def model_calls(tmp_path):
    model = core.Model()
    model.add_layer("LSTM", '{"input_size": 64, "hidden_size": 256, "num_layers": 2}')
    model.add_layer("Dense", '{"in_features": 256, "out_features": 8}')
    path = str(tmp_path / "gil.safetensors")
    model.save(path)
    x = f32(400, 16, 64)
    return {"Model.predict": lambda: model.predict(x, None), "Model.save": lambda: model.save(path),
            "Model.load": lambda: core.Model.load(path)}


def calls(tmp_path):
    g, p, m, v, s = f32(N), f32(N, seed=1), f32(N, seed=2), np.abs(f32(N, seed=3)), np.abs(f32(N, seed=4))
    W, x = f32(1024, 1024), f32(4096, 1024)
    y, dx, dW, db = np.empty((4096, 1024), np.float32), np.empty_like(x), np.zeros_like(W), np.zeros(1024, np.float32)
    tokens = np.random.default_rng(0).integers(0, 1000, size=N // 8).astype(np.int64)
    table, emb = f32(1000, 8), np.empty((N // 8, 8), np.float32)
    mask = np.empty_like(g)
    target_ids = np.random.default_rng(0).integers(0, 64, size=N // 64).astype(np.int64)
    logits, dlogits = f32(N // 64, 64), np.empty((N // 64, 64), np.float32)
    last_x, last_y = f32(1, 4096, 2048), np.empty((4096, 2048), np.float32)
    return {
        "Recurrent.forward": recurrent_call(False),
        "Recurrent.forward+backward": recurrent_call(True),
        "dense_forward": lambda: core.dense_forward(y, x, W, db, 4096, 1024, 1024, "tanh"),
        "dense_backward": lambda: core.dense_backward(dx, dW, db, y, y, x, W, 4096, 1024, 1024, "tanh"),
        "embedding_forward": lambda: core.embedding_forward(emb, tokens, table, tokens.size, 1000, 8),
        "embedding_backward": lambda: core.embedding_backward(table, emb, tokens, tokens.size, 1000, 8),
        "dropout_forward": lambda: core.dropout_forward(m, mask, g, 0.3, 1, 1),
        "last_step_forward": lambda: core.last_step_forward(last_y, last_x, None, 1, 4096, 2048, 1),
        "last_step_backward": lambda: core.last_step_backward(last_x, last_y, None, 1, 4096, 2048, 1),
        "mse_loss": lambda: core.mse_loss(m, g, p, None, N, 1),
        "cross_entropy_loss": lambda: core.cross_entropy_loss(dlogits, logits, target_ids, None, N // 64, 64),
        "bce_with_logits_loss": lambda: core.bce_with_logits_loss(m, g, s, None, N, 1),
        "sgd_update": lambda: core.sgd_update(p, g, m, 1e-6, 0.9, 0.0, 0.0, False, False),
        "adam_update": lambda: core.adam_update(p, g, m, v, 1e-6, 0.9, 0.999, 1e-8, 0.0, False, 1),
        "rmsprop_update": lambda: core.rmsprop_update(p, g, v, m, s, 1e-6, 0.99, 1e-8, 0.0, 0.9, True),
        "adagrad_update": lambda: core.adagrad_update(p, g, s, 1e-6, 0.0, 0.0, 1e-10, 1),
        "sum_of_squares": lambda: core.sum_of_squares(g),
        "scale": lambda: core.scale(g, 1.0),
        "clip_values": lambda: core.clip_values(g, 10.0),
        "add_l1_l2": lambda: core.add_l1_l2(m, p, 1e-6, 1e-6),
        **model_calls(tmp_path),
    }


NAMES = ["Recurrent.forward", "Recurrent.forward+backward", "dense_forward", "dense_backward", "embedding_forward",
         "embedding_backward", "dropout_forward", "last_step_forward", "last_step_backward", "mse_loss",
         "cross_entropy_loss", "bce_with_logits_loss", "sgd_update", "adam_update", "rmsprop_update",
         "adagrad_update", "sum_of_squares", "scale", "clip_values", "add_l1_l2", "Model.predict", "Model.save",
         "Model.load"]


def other_thread_runs_during(call):
    """(call start, call end, the main thread's first step after the call began), perf_counter seconds."""
    began, times = threading.Event(), {}

    def worker():
        began.set()
        times["start"] = time.perf_counter()
        call()
        times["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    thread.start()
    began.wait()
    while "start" not in times:  # the worker is about to enter the call
        pass
    first = time.perf_counter()
    thread.join()
    return times["start"], times["end"], first


@pytest.fixture(scope="module")
def all_calls(tmp_path_factory):
    return calls(tmp_path_factory.mktemp("gil"))


def test_every_binding_is_listed(all_calls):
    assert sorted(all_calls) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_second_thread_runs_while_the_call_is_in_cpp(name, all_calls):
    call = all_calls[name]
    call()  # warm: first-touch pages and scratch
    for _ in range(5):  # a descheduled main thread can miss one call on a loaded machine; not five
        start, end, first = other_thread_runs_during(call)
        if first - start < 0.5 * (end - start):
            return
    pytest.fail(f"{name}: the main thread first ran {1e3 * (first - start):.1f} ms after the call began, "
                f"{1e3 * (first - end):.1f} ms after it ended: the call held the GIL "
                f"(call took {1e3 * (end - start):.1f} ms, os.cpu_count()={os.cpu_count()})")
