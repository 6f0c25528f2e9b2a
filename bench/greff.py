"""Greff et al. (2016) in small: the LSTM variants trained on the same task with the same budget.

    python bench/greff.py [--task signed|accumulating] [--steps 400] [--seeds 5] [--lr 0.03]
                          [--variants V,NP,NIG,NFG,NOG,NIAF,NOAF,CIFG,FGR]

The tasks are continual integrators with resets, the situation Gers et al. (1999) introduced the forget gate
for: each step brings a value v and, with probability p, a reset flag; the target at every step is
tanh(gain * S), S the sum of the values since the last reset. A cell has to add into its memory, clear it on
a reset, and squash the sum.
  signed:        v in U(-1, 1), p = 0.15, gain 1    (sums stay small)
  accumulating:  v in U(0, 1),  p = 0.05, gain 0.3  (sums grow to ~20 between resets: the cell state is large)
Every variant gets the same data, initial seed, Adam, gradient clipping (norm 1) and number of updates; the table
reports the test MSE after training (mean over seeds, worst and best seed, and the mean ratio to V) and, for
scale, a model that predicts 0 and a ridge regression on the last 8 inputs.
"""
import argparse
import time

import numpy as np

import rnnkit as rk

T, H = 40, 24
TASKS = {"signed": dict(low=-1.0, reset=0.15, gain=1.0), "accumulating": dict(low=0.0, reset=0.05, gain=0.3)}
TASK = TASKS["signed"]


def batch(rng, n):
    v = rng.uniform(TASK["low"], 1, (n, T)).astype(np.float32)
    reset = rng.random((n, T)) < TASK["reset"]
    s = np.zeros((n, T), np.float32)
    run = np.zeros(n, np.float32)
    for t in range(T):
        run = np.where(reset[:, t], 0.0, run) + v[:, t]
        s[:, t] = run
    x = np.stack([v, reset.astype(np.float32)], axis=2)
    return x, np.tanh(TASK["gain"] * s)[:, :, None]


def train(variant, seed, steps, lr=0.03, batch_size=32):
    rng = np.random.default_rng(seed)
    model = rk.Sequential([rk.LSTM.greff(variant, 2, H, batch_first=True, seed=seed),
                           rk.Dense(H, 1, seed=seed)])
    opt = rk.optim.Adam(model, lr=lr)
    mse = rk.losses.MSE()
    for _ in range(steps):
        xb, yb = batch(rng, batch_size)
        out = model(xb)
        _, dout = mse(out, yb)
        model.backward(dout)
        rk.clip_grad_norm(model, 1.0)
        opt.step()
        model.zero_grad()
    return model


def evaluate(model, x, y):
    return float(np.mean((model.predict(x) - y) ** 2))


def baselines(x, y, rng):
    """MSE of predicting 0, and of a ridge regression on the last 8 inputs (both features) fitted on fresh data."""
    def windows(x):
        n = x.shape[0]
        pad = np.concatenate([np.zeros((n, 7, 2), np.float32), x], axis=1)
        return np.stack([pad[:, t:t + 8].reshape(n, -1) for t in range(T)], axis=1).reshape(n * T, -1)
    xf, yf = batch(rng, 2000)
    A, b = windows(xf), yf.reshape(-1)
    A1 = np.concatenate([A, np.ones((A.shape[0], 1))], axis=1)
    w = np.linalg.solve(A1.T @ A1 + 1e-3 * np.eye(A1.shape[1]), A1.T @ b)
    At = np.concatenate([windows(x), np.ones((x.shape[0] * T, 1))], axis=1)
    return float(np.mean(y ** 2)), float(np.mean((At @ w - y.reshape(-1)) ** 2))


def run(variants, seeds, steps, lr=0.03, task="signed"):
    TASK.update(TASKS[task])
    x_test, y_test = batch(np.random.default_rng(12345), 1000)
    table = {}
    for v in variants:
        t0 = time.perf_counter()
        errors = [evaluate(train(v, s, steps, lr), x_test, y_test) for s in range(seeds)]
        table[v] = (errors, time.perf_counter() - t0)
    return table, baselines(x_test, y_test, np.random.default_rng(7))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="signed")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--variants", default="V,NP,NIG,NFG,NOG,NIAF,NOAF,CIFG,FGR")
    args = p.parse_args()
    table, (zero, ridge) = run(args.variants.split(","), args.seeds, args.steps, args.lr, args.task)
    print(f"{args.task} integrator {TASKS[args.task]}, T={T}, H={H}, {args.steps} Adam updates (lr {args.lr}) of 32 "
          f"sequences, {args.seeds} seeds; test MSE")
    print(f"| variant | mean MSE | worst | best | mean / V | seconds |\n|---|---|---|---|---|---|")
    base = np.mean(table["V"][0]) if "V" in table else float("nan")
    for v, (errors, secs) in table.items():
        print(f"| {v} | {np.mean(errors):.2e} | {np.max(errors):.2e} | {np.min(errors):.2e} | "
              f"{np.mean(errors) / base:.2f} | {secs:.1f} |")
    print(f"| predict 0 | {zero:.2e} | | | | |")
    print(f"| ridge, last 8 steps | {ridge:.2e} | | | | |")


if __name__ == "__main__":
    main()
