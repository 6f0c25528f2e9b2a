"""Two builds of rnnkit's core in one process, calls interleaved, best of N each: the ratio new/old per case.

    python bench/ab_cores.py OLD_CORE_SO [SECONDS_PER_CASE]

OLD_CORE_SO is the `_core*.so` of another build (e.g. a checkout of the previous commit built with
`pip wheel . --no-deps` and unpacked); "new" is the installed rnnkit. Both take turns within every round with a
20 ms pause, so a change in the shared machine's load touches both alike: a refactor's before/after without a
second process. The old core may be one with the (h0, c0) binding of commit 20169a7 or the state-list one.
"""
import importlib.machinery
import importlib.util
import sys
import time
import types

import numpy as np

CASES = [  # (mode, kind, T, B, I, H, layers, bidirectional): bench/run.py's cases and two more cell variants
    ("train", "lstm", 150, 16, 256, 256, 1, False), ("train", "lstm", 25, 64, 512, 512, 1, False),
    ("train", "lstm", 25, 32, 1024, 1024, 1, False), ("train", "gru", 100, 32, 512, 512, 1, False),
    ("train", "rnn_tanh", 50, 16, 1024, 1024, 1, False), ("train", "lstm", 87, 32, 1, 512, 3, True),
    ("train", "lstm", 2000, 8, 256, 256, 2, False),
    ("infer", "lstm", 150, 1, 256, 256, 1, False), ("infer", "lstm", 25, 1, 1024, 1024, 1, False),
    ("infer", "lstm", 25, 64, 512, 512, 1, False), ("infer", "gru", 187, 1, 512, 512, 1, False),
    ("train", "gru_cho", 100, 32, 512, 512, 1, False), ("train", "lstm_peep", 150, 16, 256, 256, 1, False)]
VARIANTS = {"gru_cho": ("gru", {"linear_before_reset": False}), "lstm_peep": ("lstm", {"peephole": True})}


def load_extension(name, path):
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
    loader.exec_module(module)
    return module


def step(layer, x, dy, training):
    """One forward (and backward when training), whichever binding the layer has."""
    lists = hasattr(layer, "num_states")  # the state-list binding; else the (h0, c0) one
    layer.forward(x, None, None, training) if lists else layer.forward(x, None, None, None, training)
    if training:
        layer.backward(dy, None) if lists else layer.backward(dy, None, None)


def main():
    sys.modules["oldpkg"] = types.ModuleType("oldpkg")  # the old core gets a package name of its own
    old = load_extension("oldpkg._core", sys.argv[1])
    import rnnkit._core as new
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    old.set_num_threads(2)
    new.set_num_threads(2)
    for mode, case_kind, T, B, I, H, L, bidirectional in CASES:
        kind, extra = VARIANTS.get(case_kind, (case_kind, {}))
        layers = {name: core.Recurrent32(kind=kind, input_size=I, hidden_size=H, num_layers=L,
                                         bidirectional=bidirectional, seed=1, **extra)
                  for name, core in (("old", old), ("new", new))}
        x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
        dy = np.ones((T, B, (2 if bidirectional else 1) * H), np.float32)
        best = {"old": float("inf"), "new": float("inf")}
        rounds, t_end = 0, time.time() + budget
        while time.time() < t_end or rounds < 5:
            for name, layer in layers.items():
                time.sleep(0.02)
                step(layer, x, dy, mode == "train")  # untimed: warms this build's threads and caches
                t0 = time.perf_counter()
                step(layer, x, dy, mode == "train")
                best[name] = min(best[name], time.perf_counter() - t0)
            rounds += 1
        print(f"{mode} {case_kind:9s} T={T} B={B} I={I} H={H} L={L}{'bi' if bidirectional else ''}: "
              f"old {best['old'] * 1e3:9.2f} ms  new {best['new'] * 1e3:9.2f} ms  "
              f"new/old {best['new'] / best['old']:.3f}  ({rounds} rounds)", flush=True)


if __name__ == "__main__":
    main()
