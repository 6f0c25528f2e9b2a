"""Which compiled core this process uses.

A source build (`pip install .`) compiles one core, `_core`, for the build machine's CPU. A build for
distribution (`-C cmake.define.RNNKIT_NATIVE=OFF`) compiles `_core` for any x86-64 plus `_core_avx2`
(x86-64-v3) and `_core_avx512` (x86-64-v4); the fastest one this CPU can run is chosen here, once.
RNNKIT_ISA=baseline|avx2|avx512 in the environment forces a choice (for testing and benchmarking).
"""
from __future__ import annotations

import importlib
import os

_NEEDS = {  # CPU flags (as /proc/cpuinfo names them) each variant's instructions need
    "avx512": {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma", "bmi2"},
    "avx2": {"avx2", "fma", "bmi1", "bmi2", "f16c", "movbe"},
}


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _load():
    forced = os.environ.get("RNNKIT_ISA", "").strip().lower()
    if forced and forced not in ("baseline", "avx2", "avx512"):
        raise ImportError(f"RNNKIT_ISA: expected 'baseline', 'avx2' or 'avx512', got {forced!r}")
    flags = _cpu_flags()
    if forced in _NEEDS and flags and not _NEEDS[forced] <= flags:
        # importing it would stop the interpreter with an illegal instruction, not raise
        raise ImportError(f"RNNKIT_ISA={forced}: this CPU lacks {sorted(_NEEDS[forced] - flags)}; unset RNNKIT_ISA "
                          "or pick a variant this CPU runs (a build with RNNKIT_NATIVE=OFF carries baseline, avx2 "
                          "and avx512)")
    candidates = [forced] if forced else [isa for isa in ("avx512", "avx2") if _NEEDS[isa] <= flags]
    for isa in candidates:
        if isa == "baseline":
            break
        try:
            return importlib.import_module(f"._core_{isa}", __package__)
        except ImportError:
            if forced:
                raise ImportError(f"RNNKIT_ISA={forced}: this build has no {forced} core (build with "
                                  "RNNKIT_NATIVE=OFF for the distribution variants)") from None
    return importlib.import_module("._core", __package__)


core = _load()
