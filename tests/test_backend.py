"""The compiled core: which instruction set it was built for, and the RNNKIT_ISA override that a
distribution build (RNNKIT_NATIVE=OFF: baseline, AVX2 and AVX-512 cores in one wheel) uses for testing."""
import os
import subprocess
import sys

import rnnkit as rk


def run(code, isa):
    env = dict(os.environ, RNNKIT_ISA=isa)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_build_info_names_the_core_in_use():
    info = rk.build_info()
    assert info["isa"] in ("avx512", "avx2", "baseline")
    assert info["module"].startswith("rnnkit._core")
    assert info["version"] == rk.__version__


def test_rnnkit_isa_baseline_always_loads_the_portable_core():
    result = run("import rnnkit; print(rnnkit.build_info()['module'])", "baseline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "rnnkit._core"


def test_rnnkit_isa_rejects_unknown_names():
    result = run("import rnnkit", "sse9")
    assert result.returncode != 0
    assert "RNNKIT_ISA" in result.stderr and "sse9" in result.stderr


def test_forcing_a_variant_this_build_lacks_is_a_clear_error_or_loads_it():
    for isa in ("avx2", "avx512"):
        result = run("import rnnkit; print(rnnkit.build_info()['module'])", isa)
        if result.returncode == 0:  # a distribution build carries the variant
            assert result.stdout.strip() == f"rnnkit._core_{isa}"
        else:
            assert f"RNNKIT_ISA={isa}" in result.stderr and "RNNKIT_NATIVE=OFF" in result.stderr


def test_forcing_a_variant_this_cpu_lacks_raises_instead_of_crashing():
    from rnnkit import _backend
    lacking = [isa for isa in ("avx2", "avx512") if not _backend._NEEDS[isa] <= _backend._cpu_flags()]
    if not lacking:
        import pytest
        pytest.skip("this CPU runs every variant")
    for isa in lacking:
        result = run("import rnnkit", isa)
        assert result.returncode == 1, f"RNNKIT_ISA={isa}: exit status {result.returncode} (negative: a signal)"
        assert f"RNNKIT_ISA={isa}: this CPU lacks" in result.stderr
