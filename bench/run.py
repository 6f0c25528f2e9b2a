"""Benchmark rnnkit against torch.nn (training and inference) and onnxruntime (inference), same process,
same thread count, warmed up, best of N rounds in which the libraries take turns. Prints a table and writes
bench/RESULTS.md.

    python bench/run.py [--quick] [--threads 2] [--repeat 7] [--out bench/RESULTS.md]

Peers: torch (CPU; its LSTM runs on oneDNN) and onnxruntime's LSTM/GRU/RNN nodes with the same weights.
ratio = rnnkit time / best peer time (lower is better). GFLOP/s counts the GEMM work only: forward
2*T*B*(I+H)*G per layer and direction (G = 4H LSTM, 3H GRU, H RNN); training = 3x forward. "GEMM %" is that
rate over the fp32 GEMM rate (torch.mm, 2048^3) measured in the same run. Peak memory is the growth of the
process's peak RSS during a first training step, each library in a fresh process (Linux /proc).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import numpy as np

TRAIN_CASES = [  # (name, kind, T, B, I, H, layers, bidirectional)
    ("LSTM", "lstm", 150, 16, 256, 256, 1, False),
    ("LSTM", "lstm", 25, 64, 512, 512, 1, False),
    ("LSTM", "lstm", 25, 32, 1024, 1024, 1, False),
    ("GRU", "gru", 100, 32, 512, 512, 1, False),
    ("RNN-tanh", "rnn", 50, 16, 1024, 1024, 1, False),
    ("LSTM 3L bidir", "lstm", 87, 32, 1, 512, 3, True),
    ("LSTM 2L", "lstm", 2000, 8, 256, 256, 2, False),
]
INFER_CASES = [
    ("LSTM", "lstm", 150, 1, 256, 256, 1, False),
    ("LSTM", "lstm", 25, 1, 1024, 1024, 1, False),
    ("LSTM", "lstm", 25, 64, 512, 512, 1, False),
    ("GRU", "gru", 187, 1, 512, 512, 1, False),
]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def flops(kind, T, B, I, H, layers, bidir):
    D = 2 if bidir else 1
    G = GATES[kind] * H
    total = 0
    for layer in range(layers):
        inp = I if layer == 0 else D * H
        total += D * 2 * T * B * (inp + H) * G
    return total


def best_of(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_interleaved(fns, repeat, warmup=2, budget=0.5, settle=0.05):
    """Best time of each of `fns` (name -> callable), the libraries taking turns within every round, so that a
    change in this shared machine's load touches all of them alike. Before each library's turn the process
    sleeps `settle` seconds: every library's worker threads spin for a while after a call (onnxruntime's
    made an rnnkit call that followed at once 1.9x slower, rnnkit's OpenMP threads slowed onnxruntime by
    1.2x). Then an untimed call warms this library's threads and caches, and the next call is timed. Fast
    cases get more rounds (up to 10x `repeat`, about `budget` seconds per library)."""
    one = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        one[name] = time.perf_counter() - t0
    rounds = max(repeat, min(10 * repeat, int(budget / max(max(one.values()), 1e-6))))
    best = dict(one)
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle)
            fn()
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def make_pair(kind, I, H, layers, bidir):
    import torch
    import rnnkit as rk
    if kind == "lstm":
        tm = torch.nn.LSTM(I, H, layers, bidirectional=bidir)
        rm = rk.LSTM(I, H, layers, bidirectional=bidir)
    elif kind == "gru":
        tm = torch.nn.GRU(I, H, layers, bidirectional=bidir)
        rm = rk.GRU(I, H, layers, bidirectional=bidir)
    else:
        tm = torch.nn.RNN(I, H, layers, nonlinearity="tanh", bidirectional=bidir)
        rm = rk.RNN(I, H, layers, bidirectional=bidir)
    rm.load_state_dict(tm.state_dict())
    return tm, rm


def onnx_session(kind, tm, I, H, threads):
    """An onnxruntime session running one LSTM/GRU/RNN node with torch's weights (single layer, forward)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    W, R = sd["weight_ih_l0"], sd["weight_hh_l0"]
    b = np.concatenate([sd["bias_ih_l0"], sd["bias_hh_l0"]])
    if kind == "lstm":  # torch i f g o -> onnx i o f c
        order = [0, 3, 1, 2]
    elif kind == "gru":  # torch r z n -> onnx z r h
        order = [1, 0, 2]
    else:
        order = [0]

    def reorder(m):
        blocks = np.split(m, len(order), axis=0)
        return np.concatenate([blocks[k] for k in order], axis=0)

    Wo, Ro = reorder(W)[None], reorder(R)[None]
    half = len(b) // 2
    Bo = np.concatenate([reorder(b[:half]), reorder(b[half:])])[None]
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[kind]
    attrs = {"hidden_size": H}
    if kind == "gru":
        attrs["linear_before_reset"] = 1
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y"], **attrs)
    graph = helper.make_graph([node], "rnn", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, None, I])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
                               ((Wo, "W"), (Ro, "R"), (Bo, "B"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


_MEMORY_PROBE = r"""
import sys, numpy as np
lib, kind, T, B, I, H, layers, bidir = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:9])
def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field)) / 1024
x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
dy = np.ones((T, B, (2 if bidir else 1) * H), np.float32)
if lib == "torch":
    import torch
    torch.set_num_threads(1)
    m = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](I, H, layers, bidirectional=bool(bidir))
    xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
    def step():
        y, _ = m(xt); y.backward(dyt)
else:
    import rnnkit as rk
    rk.set_num_threads(1)
    m = {"lstm": rk.LSTM, "gru": rk.GRU, "rnn": rk.RNN}[kind](I, H, layers, bidirectional=bool(bidir))
    def step():
        y, _ = m(x); m.backward(dy)
before = status("VmRSS:")
step()
print(status("VmHWM:") - before)
"""


def peak_step_mib(lib, kind, T, B, I, H, layers, bidir):
    """Peak RSS growth (MiB) of the first training step in a fresh process: what a step allocates beyond
    the model and its input. None where /proc is not available."""
    if not os.path.exists("/proc/self/status"):
        return None
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, lib, kind, str(T), str(B), str(I), str(H),
                          str(layers), str(int(bidir))], capture_output=True, text=True)
    return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def gemm_rate(repeat):
    import torch
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = best_of(lambda: torch.mm(a, b), repeat)
    return 2 * n ** 3 / t / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats and shorter long cases")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=None, help="at least N rounds (default 7, --quick 3)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"))
    parser.add_argument("--only", default=None, help="run cases whose label contains this text")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)

    import torch
    import rnnkit as rk
    torch.set_num_threads(args.threads)
    rk.set_num_threads(args.threads)
    try:
        import onnxruntime  # noqa: F401
        have_ort = True
    except ImportError:
        have_ort = False
        print("onnxruntime not installed: inference compares with torch only (pip install onnx onnxruntime)")

    gemm = gemm_rate(repeat)  # torch already limited to args.threads
    print(f"fp32 GEMM (torch.mm 2048^3, {args.threads} threads): {gemm:.0f} GFLOP/s")
    rows = []
    rng = np.random.default_rng(0)

    for mode, cases in (("train", TRAIN_CASES), ("infer", INFER_CASES)):
        for name, kind, T, B, I, H, layers, bidir in cases:
            if args.quick and T > 500:
                T = 500
            label = f"{mode} {name} T={T} B={B} I={I} H={H}"
            if args.only and args.only not in label:
                continue
            tm, rm = make_pair(kind, I, H, layers, bidir)
            x = rng.standard_normal((T, B, I)).astype(np.float32)
            xt = torch.from_numpy(x)
            work = flops(kind, T, B, I, H, layers, bidir) * (3 if mode == "train" else 1)
            if mode == "train":
                dy = np.ones((T, B, (2 if bidir else 1) * H), np.float32)
                dyt = torch.from_numpy(dy)
                xg = xt.clone().requires_grad_(True)

                def rk_step():
                    y, _ = rm(x)
                    rm.backward(dy)

                def torch_step():
                    y, _ = tm(xg)
                    y.backward(dyt)

                times = best_interleaved({"rnnkit": rk_step, "torch": torch_step}, repeat)
                mem_rk = peak_step_mib("rnnkit", kind, T, B, I, H, layers, bidir)
                mem_torch = peak_step_mib("torch", kind, T, B, I, H, layers, bidir)
            else:
                def torch_infer():
                    with torch.inference_mode():
                        tm(xt)

                fns = {"rnnkit": lambda: rm(x, training=False), "torch": torch_infer}
                if have_ort and layers == 1 and not bidir:
                    sess = onnx_session(kind, tm, I, H, args.threads)
                    y_ort = sess.run(None, {"X": x})[0]  # (T, 1, B, H)
                    y_rk, _ = rm(x, training=False)
                    err = float(np.abs(y_ort[:, 0] - y_rk).max())
                    if err > 1e-4:
                        print(f"  warning: onnxruntime and rnnkit outputs differ by {err:.2e}")
                    fns["onnxruntime"] = lambda: sess.run(None, {"X": x})
                times = best_interleaved(fns, repeat)
                mem_rk = mem_torch = None
            peers = {k: v for k, v in times.items() if k != "rnnkit"}
            best_peer = min(peers, key=peers.get)
            ratio = times["rnnkit"] / peers[best_peer]
            rate = work / times["rnnkit"] / 1e9
            row = dict(label=label, mode=mode, times=times, best_peer=best_peer, ratio=ratio, gflops=rate,
                       gemm_pct=100 * rate / gemm, mem_rk=mem_rk, mem_torch=mem_torch,
                       layers=layers, bidir=bidir)
            rows.append(row)
            peer_text = "  ".join(f"{k} {v * 1e3:8.2f} ms" for k, v in peers.items())
            mem = "" if mem_rk is None else f"  peak MiB rnnkit {mem_rk:.0f} torch {mem_torch:.0f}"
            print(f"{label:44s} {layers}L{'bi' if bidir else ''}  rnnkit {times['rnnkit'] * 1e3:8.2f} ms  "
                  f"{peer_text}  ratio {ratio:.2f}  {rate:.0f} GFLOP/s ({100 * rate / gemm:.0f}% GEMM){mem}",
                  flush=True)
    varlen = None if args.only and "lengths" not in args.only else variable_lengths(repeat)
    # The GEMM rate again at the end: a transient load on this shared machine during the first measurement
    # would otherwise inflate every "% of GEMM"; the table uses the better of the two.
    gemm = max(gemm, gemm_rate(repeat))
    for r in rows:
        r["gemm_pct"] = 100 * r["gflops"] / gemm
    write_results(args, rows, gemm, repeat, varlen)


def variable_lengths(repeat):
    """Training with lengths (uniform in 1..T) vs the padded batch of the same shape, and torch's packed
    sequences vs its padded batch (LSTM T=150 B=16 I=H=256)."""
    import torch
    T, B, I, H = 150, 16, 256, 256
    tm, rm = make_pair("lstm", I, H, 1, False)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=B)
    dy = np.ones((T, B, H), np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)

    def rk_step(lens):
        y, _ = rm(x, lengths=lens)
        rm.backward(dy)

    def torch_padded():
        y, _ = tm(xt)
        y.backward(torch.from_numpy(dy))

    def torch_packed():
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), enforce_sorted=False)
        out, _ = tm(packed)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
        y.backward(torch.from_numpy(dy))

    t = best_interleaved({"rnnkit padded": lambda: rk_step(None), "rnnkit lengths": lambda: rk_step(lengths),
                          "torch padded": torch_padded, "torch packed": torch_packed}, repeat)
    print("variable lengths (train LSTM T=150 B=16 I=H=256): " + "  ".join(f"{k} {v * 1e3:.2f} ms" for k, v in t.items()))
    return t


def machine():
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def write_results(args, rows, gemm, repeat, varlen):
    import torch
    import rnnkit as rk
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    command = "python bench/run.py" + (" --quick" if args.quick else "") + f" --threads {args.threads}" + (
        f" --repeat {args.repeat}" if args.repeat else "") + (f" --only '{args.only}'" if args.only else "")
    lines = [
        "# rnnkit benchmark results", "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {machine()}",
        f"- versions: rnnkit {rk.__version__}, torch {torch.__version__}, onnxruntime {ort_version}, "
        f"numpy {np.__version__}, Python {platform.python_version()}",
        f"- threads: {args.threads} for every library; warm, best of at least {repeat} rounds in which the "
        f"libraries take turns (more rounds for fast cases); rnnkit core: {rk.build_info()['module']}"
        f" ({rk.build_info()['isa']})",
        f"- fp32 GEMM rate in this run (torch.mm 2048^3, the better of a measurement before and after the "
        f"cases): {gemm:.0f} GFLOP/s", "",
        "ratio = rnnkit time / best peer time (lower is better); training = forward + BPTT of the whole sequence.", "",
        "| case | layers | rnnkit ms | torch ms | onnxruntime ms | ratio vs best | rnnkit GFLOP/s | % of GEMM | "
        "peak MiB rnnkit / torch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["times"]
        ort_ms = f"{t['onnxruntime'] * 1e3:.2f}" if "onnxruntime" in t else "-"
        mem = "-" if r["mem_rk"] is None else f"{r['mem_rk']:.0f} / {r['mem_torch']:.0f}"
        lines.append(f"| {r['label']} | {r['layers']}{' bidir' if r['bidir'] else ''} | {t['rnnkit'] * 1e3:.2f} | "
                     f"{t['torch'] * 1e3:.2f} | {ort_ms} | {r['ratio']:.2f} ({r['best_peer']}) | {r['gflops']:.0f} | "
                     f"{r['gemm_pct']:.0f}% | {mem} |")
    if varlen:
        lines += ["", "Variable-length batch (training, LSTM T=150 B=16 I=H=256, lengths uniform in 1..T):", "",
                  "| rnnkit padded ms | rnnkit with lengths ms | torch padded ms | torch packed ms |", "|---|---|---|---|",
                  "| " + " | ".join(f"{varlen[k] * 1e3:.2f}" for k in ("rnnkit padded", "rnnkit lengths",
                                                                          "torch padded", "torch packed")) + " |"]
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
    if os.path.exists(notes):  # the hand-written analysis (profiles, unmet targets) travels with the numbers
        with open(notes) as f:
            lines += ["", f.read().rstrip()]
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
