"""rnnkit's command line: `rnnkit demo` (also `python -m rnnkit demo`)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _demo(args) -> int:
    import rnnkit as rk

    rng = np.random.default_rng(args.seed)
    T, B, I, H = args.steps, args.batch, 8, args.hidden
    lstm = rk.LSTM(I, H, num_layers=2, bidirectional=True, seed=args.seed)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=B)
    print(f"rnnkit {rk.__version__}: {lstm}")
    print(f"input x: (T={T}, B={B}, I={I}), lengths {lengths.tolist()}, {rk.get_num_threads()} thread(s)")
    start = time.perf_counter()
    y, (h_n, c_n) = lstm(x, lengths=lengths)
    dx, (dh0, dc0) = lstm.backward(np.ones_like(y))
    elapsed = time.perf_counter() - start
    print(f"output y: {y.shape}, final states h_n {h_n.shape}, c_n {c_n.shape}")
    print(f"y[-1, 0, :4] = {np.array2string(y[lengths[0] - 1, 0, :4], precision=4)} (last valid step of sequence 0)")
    gnorm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in lstm.grads.values()))
    print(f"backward: dx {dx.shape}, parameter gradient norm {gnorm:.4f}")
    print(f"forward + backward took {elapsed * 1e3:.1f} ms")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rnnkit", description="rnnkit: recurrent networks with a C++ core")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a stacked bidirectional LSTM, run forward and backward, print results")
    demo.add_argument("--steps", type=int, default=50, help="time steps T (default 50)")
    demo.add_argument("--batch", type=int, default=4, help="batch size B (default 4)")
    demo.add_argument("--hidden", type=int, default=32, help="hidden size H (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "hidden"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
