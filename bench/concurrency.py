"""Concurrent callers against sequential calls (issue: reliability): the same predict calls made one after another
on one thread, and spread over 8 Python threads sharing one model (and over 8 threads with a copy each). The
kernels share one process-wide thread budget (rk.set_num_threads), so concurrency must not cost throughput.

    python bench/concurrency.py [--threads 2] [--rounds 5] [--out bench/CONCURRENCY.md]

Time ratio threaded / sequential for the same calls (below 1: concurrency gained throughput), best of --rounds,
the two ways taking turns.
"""
import argparse
import platform
import threading
import time

import numpy as np

import rnnkit as rk

CALLERS = 8


def model(kind, H, layers):
    cls = {"lstm": rk.LSTM, "gru-ln": rk.GRU}[kind]
    kw = {"layer_norm": True} if kind == "gru-ln" else {}
    return rk.Sequential([cls(32, H, num_layers=layers, batch_first=True, seed=0, **kw), rk.LastStep(),
                          rk.Dense(H, 4, seed=1)])


def threaded(models, xs):
    """The calls in xs spread over CALLERS threads, thread i using models[i % len(models)]."""
    def work(i):
        m = models[i % len(models)]
        for x in xs[i::CALLERS]:
            m.predict(x)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def case(kind, H, layers, B, T, calls, rounds):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((B, T, 32)).astype(np.float32) for _ in range(calls)]
    shared = model(kind, H, layers)
    copies = [model(kind, H, layers) for _ in range(CALLERS)]
    runs = {"sequential": lambda: [shared.predict(x) for x in xs],
            "8 threads, one model": lambda: threaded([shared], xs),
            "8 threads, a copy each": lambda: threaded(copies, xs)}
    for fn in runs.values():
        fn()  # warm: scratch and thread pools of every thread
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * min(t) for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rk.set_num_threads(args.threads)
    cases = [("lstm", 128, 2, 1, 50, 128), ("lstm", 128, 2, 16, 50, 64), ("lstm", 128, 2, 64, 100, 16),
             ("gru-ln", 128, 1, 32, 50, 32)]
    lines = [f"CPU: {platform.processor() or platform.machine()}, kernel-thread budget {args.threads}, "
             f"{CALLERS} callers, best of {args.rounds}.", "",
             "| model | B | T | calls | sequential ms | 8 threads, one model | 8 threads, a copy each |",
             "|---|---|---|---|---|---|---|"]
    for kind, H, layers, B, T, calls in cases:
        t = case(kind, H, layers, B, T, calls, args.rounds)
        seq = t["sequential"]
        lines.append(f"| {kind} H={H} x{layers} | {B} | {T} | {calls} | {seq:.1f} | "
                     f"{t['8 threads, one model']:.1f} ({t['8 threads, one model'] / seq:.2f}x) | "
                     f"{t['8 threads, a copy each']:.1f} ({t['8 threads, a copy each'] / seq:.2f}x) |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write("# Concurrent callers (bench/concurrency.py)\n\n" + text)
    else:
        print(text)


if __name__ == "__main__":
    main()
