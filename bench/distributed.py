"""Data-parallel training on MPI: epoch time with 1 and 2 ranks (one kernel thread per rank, loopback) against one
process with 2 threads, the measured Allreduce time of the gradient slab, and a model of scaling to N machines.

    python bench/distributed.py [--epochs 3] [--out bench/DISTRIBUTED.md]

The script launches itself under `mpiexec` (Open MPI; as root it sets OMPI_ALLOW_RUN_AS_ROOT*) for the MPI cases.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

N, T, I, H, BATCH = 2048, 50, 32, 128, 64


def model_and_data():
    import rnnkit as rk
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, I)).astype(np.float32)
    y = x[:, -10:, :4].mean(axis=(1, 2))[:, None].astype(np.float32)
    model = rk.Sequential([rk.LSTM(I, H, num_layers=2, batch_first=True, seed=0), rk.LastStep(),
                           rk.Dense(H, 1, seed=1)])
    return model, x, y


def worker(epochs, distributed):
    """Run under mpiexec (or alone): best epoch time, allreduce time of the gradient slab; prints JSON on rank 0."""
    import rnnkit as rk
    model, x, y = model_and_data()
    opt = rk.optim.Adam(model, lr=1e-3)
    times = []
    for e in range(epochs + 1):  # the first epoch warms up
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=BATCH, optimizer=opt, verbose=0, seed=e, distributed=distributed)
        times.append(time.perf_counter() - start)
    params = sum(v.size for v in model.parameters().values())
    allreduce = None
    if distributed and rk.distributed.size() > 1:
        rk.distributed.barrier()
        start = time.perf_counter()
        for _ in range(50):
            rk.distributed.allreduce_gradients(model, 0.5, [1.0])
        allreduce = (time.perf_counter() - start) / 50
    if rk.distributed.rank() == 0:
        print(json.dumps({"epoch_s": min(times[1:]), "params": int(params), "allreduce_s": allreduce,
                          "ranks": rk.distributed.size(), "threads": rk.get_num_threads()}))


def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default="bench/DISTRIBUTED.md")
    ap.add_argument("--worker", choices=["single", "mpi"])
    args = ap.parse_args()
    if args.worker:
        return worker(args.epochs, args.worker == "mpi")
    me = [sys.executable, os.path.abspath(__file__), "--epochs", str(args.epochs)]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    rows = [("one process, 2 threads", run(me + ["--worker", "single"], dict(env, OMP_NUM_THREADS="2")))]
    for ranks in (1, 2):
        rows.append((f"mpiexec -n {ranks}, 1 thread per rank",
                     run(["mpiexec", "--oversubscribe", "-n", str(ranks)] + me + ["--worker", "mpi"],
                         dict(env, OMP_NUM_THREADS="1"))))
    base = rows[0][1]["epoch_s"]
    one_rank = rows[1][1]["epoch_s"]
    params = rows[0][1]["params"]
    slab = 4 * params
    steps = -(-N // BATCH)
    allreduce = rows[2][1]["allreduce_s"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = ["# Data-parallel training on MPI: measured", "",
             f"- command: `python bench/distributed.py --epochs {args.epochs}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M')}; machine: {cpu}, {os.cpu_count()} logical CPUs; Open MPI "
             "over loopback (shared memory)",
             f"- model: 2-layer LSTM I={I} H={H} + LastStep + Dense, {params} parameters; data N={N} sequences of "
             f"T={T}; global batch {BATCH} ({steps} steps per epoch); Adam; best of {args.epochs} epochs after a "
             "warm-up epoch", "",
             "| configuration | epoch s | vs one process, 2 threads |", "|---|---|---|"]
    for label, r in rows:
        lines.append(f"| {label} | {r['epoch_s']:.3f} | {r['epoch_s'] / base:.2f} |")
    per_step_compute = one_rank / steps
    lines += ["", f"Gradient slab: {slab / 1e6:.2f} MB per step (float32), reduced with one Allreduce: measured "
              f"{allreduce * 1e3:.2f} ms per call with 2 ranks on this machine ({allreduce * steps / rows[2][1]['epoch_s'] * 100:.1f}% "
              "of the 2-rank epoch).", "",
              "Scaling model (ring allreduce): each rank sends and receives 2(N-1)/N of the slab per step, in 2(N-1) "
              "messages. With per-message latency a and bandwidth b, a step's communication is about "
              "2(N-1) a + 2(N-1)/N * S / b, S the slab. Compute per step at global batch G over N ranks is "
              f"c * G / N, with c = {per_step_compute / BATCH * 1e3:.3f} ms per sequence measured here (one "
              "thread). Communication hides behind compute (overlapped layer by layer, or simply small against it) "
              "when c G / N >= that communication time, i.e. G >= N * comm / c:", "",
              "| N machines | link | comm per step ms | global batch for compute >= comm |", "|---|---|---|---|"]
    for n in (2, 4, 8, 16):
        for name, bw, lat in (("10 GbE", 1.25e9, 20e-6), ("100 Gb InfiniBand", 12.5e9, 2e-6)):
            comm = 2 * (n - 1) * lat + 2 * (n - 1) / n * slab / bw
            g = comm * n / (per_step_compute / BATCH)
            lines.append(f"| {n} | {name} | {comm * 1e3:.2f} | {int(np.ceil(g))} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
