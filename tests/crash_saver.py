"""Saves two different models and checkpoints to the same paths in a loop, forever (tests/test_crash_safety.py
kills it with SIGKILL at random moments).

    python tests/crash_saver.py FOLDER
"""
import sys

import rnnkit as rk

folder = sys.argv[1]
models = [rk.Sequential([rk.LSTM(3, 32, num_layers=2, seed=s), rk.Dense(32, 2, seed=s)]) for s in (1, 2)]
optimizers = [rk.optim.Adam(m) for m in models]
print("ready", flush=True)
k = 0
while True:
    m = models[k % 2]
    rk.save(m, f"{folder}/model.safetensors")
    rk.save_checkpoint(f"{folder}/ckpt.safetensors", m, optimizers[k % 2], k=k)
    k += 1
