"""Inference keeps no activations: with training=False the peak memory of a forward grows with T only by the
output (and input) themselves, while a training forward keeps gates and states for every step. Measured as
the growth of the peak resident set (VmHWM) in a fresh process."""
import os
import subprocess
import sys

import pytest

PROBE = r"""
import sys, numpy as np, rnnkit as rk
T, training = int(sys.argv[1]), sys.argv[2] == "1"
def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field)) * 1024
lstm = rk.LSTM(64, 256, num_layers=2)
x = np.ones((T, 4, 64), np.float32)
before = status("VmRSS:")
y, _ = lstm(x, training=training)
print(status("VmHWM:") - before, y.nbytes)
"""


def peak_growth(T, training):
    out = subprocess.run([sys.executable, "-c", PROBE, str(T), "1" if training else "0"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    growth, output = map(int, out.stdout.split())
    return growth, output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_inference_memory_does_not_grow_with_T_beyond_the_output():
    growth, output = peak_growth(8000, training=False)
    # y (31 MiB here) plus per-chunk buffers (a unidirectional stack runs chunks of steps through all layers)
    assert growth < 1.25 * output + 16 * 2**20, \
        f"inference grew {growth / 2**20:.0f} MiB for a {output / 2**20:.0f} MiB output"
    trained, _ = peak_growth(8000, training=True)
    # the measurement can see activations: a training forward keeps gates and states of every step
    assert trained > 4 * output, f"training forward grew only {trained / 2**20:.0f} MiB"


def test_kept_scratch_is_reported_and_released():
    """Kernels keep their scratch (packed weights, projections, gradient buffers) per thread between calls;
    release_scratch gives it back, and the next call allocates again with the same results."""
    import numpy as np
    import rnnkit as rk
    lstm = rk.LSTM(64, 256)
    x = np.random.default_rng(0).standard_normal((40, 4, 64)).astype(np.float32)
    y1, _ = lstm(x)
    lstm.backward(np.ones_like(y1))
    kept = rk.scratch_bytes()
    assert kept >= 256 * 1024 * 4  # at least the packed recurrent weights R^T [256, 1024]
    rk.release_scratch()
    assert rk.scratch_bytes() == 0
    y2, _ = lstm(x)
    np.testing.assert_array_equal(y1, y2)
    assert rk.scratch_bytes() > 0


def physical_memory():
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the machine's memory size")
def test_buffers_beyond_the_machines_memory_are_refused_before_allocation():
    """A layer whose parameters, or a training forward whose activations, would not fit in this machine's memory
    fails at once with a ValueError saying how much it needs, instead of a MemoryError deep inside or the OOM
    killer."""
    import numpy as np
    import rnnkit as rk
    with pytest.raises(ValueError, match=r"hidden_size=4194304.*parameters and gradients needs .* GiB"):
        rk.LSTM(1, 1 << 22)
    # four layers keep about 28 values per row and unit for backward, the output 1: an output of a tenth of the
    # memory (never touched) means activations of almost three times it
    H = 256
    rows = physical_memory() // 10 // (4 * H)
    lstm = rk.LSTM(1, H, num_layers=4)
    x = np.zeros((rows, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"training forward of T=\d+, B=1 .* needs .* GiB.*tbptt"):
        lstm(x, training=True)
