"""Modern cells against their peers (issue: modern recurrent cells): minGRU training (its parallel scan) vs
rnnkit's GRU and torch's GRU of the same hidden size at T = 512, 2048, 8192; sLSTM and mLSTM vs the `xlstm`
package's CPU path (its vanilla sLSTM cell and its mLSTM backends in PyTorch).

    python bench/modern.py [--threads 2] [--rounds 5] [--out bench/MODERN.md]

Every case is timed warm, the libraries taking turns, best of --rounds. Training = forward + backward of the
whole sequence w.r.t. inputs and parameters; the xlstm peers get the same input projection as a torch matmul.
"""
import argparse
import platform
import time

import numpy as np
import torch

import rnnkit as rk


def best(fns, rounds):
    """Each fn timed `rounds` times, taking turns; the best time of each, in ms."""
    times = [[] for _ in fns]
    for fn in fns:
        fn()  # warm
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [1e3 * min(t) for t in times]


def rk_train(layer, x, dy):
    def run():
        layer(x)
        layer.backward(dy)
        layer.zero_grad()
    return run


def torch_train(module, x, *, call=None):
    x = torch.tensor(x, requires_grad=True)

    def run():
        out = call(x) if call else module(x)[0]
        out.sum().backward()
        module.zero_grad()
        x.grad = None
    return run


def min_cases(T_list, B, H, rounds):
    rows = []
    for T in T_list:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, H)).astype(np.float32)
        dy = np.ones((T, B, H), np.float32)
        mingru, gru = rk.minGRU(H, H, seed=0), rk.GRU(H, H, seed=0)
        tgru = torch.nn.GRU(H, H)
        single = rk_train(mingru, x, dy)

        def one_thread():
            rk.set_num_threads(1)
            try:
                single()
            finally:
                rk.set_num_threads(THREADS)
        r = max(2, rounds if T <= 2048 else rounds // 2)
        ms = best([rk_train(mingru, x, dy), one_thread, rk_train(gru, x, dy), torch_train(tgru, x)], r)
        rows.append((f"train T={T} B={B} I=H={H}", *ms))
    return rows


def xlstm_cases(B, H, NH, rounds):
    from xlstm.blocks.mlstm.backends import (chunkwise_simple, parallel_stabilized_simple,
                                              recurrent_step_stabilized_simple)
    from xlstm.blocks.slstm.cell import sLSTMCell, sLSTMCellConfig
    rows = []
    dh = H // NH
    for T in (256, 1024):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((T, B, H)).astype(np.float32)
        dy = np.ones((T, B, H), np.float32)
        # sLSTM: the cell on W x (a torch matmul) vs rk.sLSTM (its own input projection)
        ours = rk.sLSTM(H, H, num_heads=NH, seed=0)
        cell = sLSTMCell(sLSTMCellConfig(hidden_size=H, num_heads=NH, backend="vanilla", dtype="float32",
                                         enable_automatic_mixed_precision=False))
        W = torch.nn.Linear(H, 4 * H, bias=False)
        cell.add_module("W", W)

        def slstm_call(xt):
            return cell(W(xt).permute(1, 0, 2))[0]
        ms = best([rk_train(ours, x, dy), torch_train(cell, x, call=slstm_call)], rounds)
        rows.append((f"sLSTM train T={T} B={B} H={H} heads={NH}", *ms))
        # mLSTM training: rk.mLSTM (chunkwise-parallel) vs xlstm's parallel form on the same projections
        ours = rk.mLSTM(H, H, num_heads=NH, seed=0)
        proj = torch.nn.Linear(H, 4 * H + 2 * NH)

        def mlstm_call(xt, chunkwise=False):
            pre = proj(xt)

            def heads(a):
                return a.reshape(T, B, NH, dh).permute(1, 2, 0, 3)
            q, k, v, o = (heads(pre[..., j * H:(j + 1) * H]) for j in range(4))
            i = pre[..., 4 * H:4 * H + NH].permute(1, 2, 0).unsqueeze(-1)
            f = pre[..., 4 * H + NH:].permute(1, 2, 0).unsqueeze(-1)
            if chunkwise:  # O(T) memory and work, chunks of 64 as ours
                return torch.sigmoid(o) * chunkwise_simple(q, k, v, i[..., 0], f[..., 0], chunk_size=64)
            return torch.sigmoid(o) * parallel_stabilized_simple(q, k, v, i, f)
        ms = best([rk_train(ours, x, dy), torch_train(proj, x, call=mlstm_call),
                   torch_train(proj, x, call=lambda xt: mlstm_call(xt, True))], rounds)
        rows.append((f"mLSTM train T={T} B={B} H={H} heads={NH} (xlstm: parallel / chunkwise)", ms[0], *ms[1:]))
    # mLSTM inference, step by step (streaming) at T=256
    T = 256
    x = np.random.default_rng(2).standard_normal((T, B, H)).astype(np.float32)
    ours = rk.mLSTM(H, H, num_heads=NH, seed=0)
    proj = torch.nn.Linear(H, 4 * H + 2 * NH)

    def xlstm_steps():
        with torch.no_grad():
            pre = proj(torch.tensor(x))
            C = torch.zeros(B, NH, dh, dh)
            n = torch.zeros(B, NH, dh, 1)
            m = torch.zeros(B, NH, 1, 1)
            for t in range(T):
                p = pre[t]
                q, k, v = (p[:, j * H:(j + 1) * H].reshape(B, NH, 1, dh) for j in range(3))
                i = p[:, 4 * H:4 * H + NH].reshape(B, NH, 1, 1)
                f = p[:, 4 * H + NH:].reshape(B, NH, 1, 1)
                h, (C, n, m) = recurrent_step_stabilized_simple(C, n, m, q, k, v, i, f)
    ms = best([lambda: ours(x, training=False), xlstm_steps], rounds)
    rows.append((f"mLSTM inference (recurrent form) T={T} B={B} H={H} heads={NH}", *ms))
    return rows


def main():
    global THREADS
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="bench/MODERN.md")
    args = ap.parse_args()
    THREADS = args.threads
    rk.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = ["# Modern cells: measured", "", f"- command: `python bench/modern.py --threads {args.threads} --rounds "
             f"{args.rounds}`", f"- date: {time.strftime('%Y-%m-%d %H:%M')}", f"- machine: {cpu}, "
             f"{rk.build_info()['isa']} core, {args.threads} threads for every library",
             f"- versions: rnnkit {rk.__version__}, torch {torch.__version__}", "",
             "minGRU training (forward + backward, ms, best of the rounds):", "",
             "| case | rnnkit minGRU (scan, threads) | rnnkit minGRU (1 thread, sequential) | rnnkit GRU | torch GRU "
             "| minGRU / rnnkit GRU | minGRU / torch GRU |", "|---|---|---|---|---|---|---|"]
    for name, mg, mg1, g, tg in min_cases((512, 2048, 8192), 8, 128, args.rounds):
        lines.append(f"| {name} | {mg:.2f} | {mg1:.2f} | {g:.2f} | {tg:.2f} | {mg / g:.3f} | {mg / tg:.3f} |")
        print(lines[-1], flush=True)
    lines += ["", "sLSTM and mLSTM vs the xlstm package's CPU path (ms; ratio = rnnkit / xlstm, lower is better):", "",
              "| case | rnnkit ms | xlstm ms | ratio vs xlstm's best |", "|---|---|---|---|"]
    for name, ours, *theirs in xlstm_cases(8, 128, 4, args.rounds):
        shown = " / ".join(f"{t:.2f}" for t in theirs)
        lines.append(f"| {name} | {ours:.2f} | {shown} | {ours / min(theirs):.3f} |")
        print(lines[-1], flush=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


THREADS = 2

if __name__ == "__main__":
    main()
