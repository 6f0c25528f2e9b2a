"""Crash-safe files (issue: reliability): a process killed (SIGKILL) at random moments while it saves models and
checkpoints never leaves a partial file at the target path: it holds the old or the new complete file; the
temporary files of killed writes are removed by the next save. A write that fails (a file-size limit standing in
for a full disk) raises a clear OSError and leaves the old file intact.

RNNKIT_KILLS sets the number of kills (default 25 here; the closing note reports a longer run).
"""
import os
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import rnnkit as rk

HERE = os.path.dirname(os.path.abspath(__file__))


def expected_models():
    return [rk.Sequential([rk.LSTM(3, 32, num_layers=2, seed=s), rk.Dense(32, 2, seed=s)]).state_dict()
            for s in (1, 2)]


def matches_one(state, candidates):
    return any(all(np.array_equal(state[k], c[k]) for k in c) for c in candidates)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_saves_never_leave_partial_files(tmp_path):
    kills = int(os.environ.get("RNNKIT_KILLS", "25"))
    candidates = expected_models()
    rng = random.Random(0)
    done = 0
    while done < kills:
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "crash_saver.py"), str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        done += 1
        for name in ("model.safetensors", "ckpt.safetensors"):
            path = tmp_path / name
            if not path.exists():
                continue  # killed before the first save finished: no file, never a partial one
            if name == "model.safetensors":
                assert matches_one(rk.load(path).state_dict(), candidates), f"kill {done}: {name} is neither model"
            else:
                state = rk.load_checkpoint(path)
                assert matches_one(state["model"].state_dict(), candidates), f"kill {done}: {name}"
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".rnnkit-tmp")]
    assert len(leftovers) <= 2, leftovers  # at most the last kill's, for each target
    rk.save(rk.load(tmp_path / "model.safetensors") if (tmp_path / "model.safetensors").exists()
            else rk.Sequential([rk.Dense(2, 1)]), tmp_path / "model.safetensors")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".model.safetensors.")]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.safetensors"
    small = rk.Sequential([rk.Dense(2, 1, seed=0)])
    rk.save(small, path)
    before = path.read_bytes()
    script = f"""
import resource, rnnkit as rk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
big = rk.Sequential([rk.LSTM(3, 64, seed=1)])
try:
    rk.save(big, {str(path)!r})
except OSError as exc:
    print("OSError:", exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "OSError:" in out.stdout and "previous file" in out.stdout, out.stdout + out.stderr
    assert path.read_bytes() == before
    assert rk.load(path).state_dict().keys() == small.state_dict().keys()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".rnnkit-tmp")]
