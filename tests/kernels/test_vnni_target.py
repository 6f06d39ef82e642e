"""Which dot-product instruction the integer GEMMs use (kernels/_isa.py): the host must run it
and Numba must compile for it. NUMBA_CPU_NAME=generic (with the host's features, as Numba
passes them) once made LLVM abort the whole process on the first VNNI kernel; that target now
runs the float path. Each narrower form runs the fused executor to the reference's bits in a
fresh process, both chosen on this host (AMCHW_VNNI=avx256 / avx2) and on a target whose
features lack the wider ones (NUMBA_CPU_FEATURES): AVX-VNNI without AVX-512 (only the VEX
form of VPDPBUSD may appear, as on Alder Lake and later client cores) and AVX2 without any
VNNI (VPMADDWD, as on Haswell to Zen 3). Those four compile the kernels afresh for their
targets (~25 s each), so they run in the long suite (`pytest -m slow`, which CI runs too)."""

import os
import subprocess
import sys
import textwrap

import pytest
from llvmlite import binding as llvm
from numba import config as numba_config

from amchw.kernels import _isa, vnni

FULL = {"avx512f": True, "avx512vnni": True, "avx512vl": True, "avxvnni": True, "avx2": True}


def test_target_rule():
    t = _isa.target_isas
    all3 = ("avx512", "avx256", "avx2")
    assert t(FULL, "sapphirerapids", None, None) == all3
    assert t(FULL, "sapphirerapids", "host", None) == all3
    assert t(FULL, "sapphirerapids", "SAPPHIRERAPIDS", None) == all3
    no_vl = {**FULL, "avx512vl": False, "avxvnni": False}
    assert t(no_vl, "x", None, None) == ("avx512", "avx2")
    assert t({"avx2": True, "avxvnni": True}, "alderlake", None, None) == ("avx256", "avx2")
    no_vnni = {**FULL, "avx512vnni": False, "avxvnni": False}
    assert t(no_vnni, "skylake-avx512", None, None) == ("avx2",)
    assert t({"avx2": True}, "haswell", None, None) == ("avx2",)
    assert t({"avx": True}, "sandybridge", None, None) == ()
    assert t(FULL, "sapphirerapids", "generic", None) == ()   # LLVM aborted there
    assert t(FULL, "generic", None, None) == ()                # a host LLVM does not know
    assert t(FULL, "sapphirerapids", "znver4", None) == ()     # another CPU: not assumed
    # NUMBA_CPU_FEATURES edits the host's list; a feature the host lacks cannot be added
    assert t(FULL, "x", None, "-avx512f") == ("avx256", "avx2")
    assert t(FULL, "x", None, "-avx512vnni,-avxvnni") == ("avx2",)
    assert t(FULL, "x", None, "-avx512vnni,-avxvnni,-avx2") == ()
    assert t(FULL, "x", None, "-evex512") == ("avx256", "avx2")
    assert t({"avx2": True}, "x", None, "+avx512f,+avx512vnni,+avxvnni") == ("avx2",)


def test_choice():
    c = _isa.choose
    both = ("avx512", "avx256")
    assert c(both, None) == "avx512" and c(both, "on") == "avx512"
    assert c(both, "avx256") == "avx256" and c(both, " AVX512 ") == "avx512"
    assert c(both, "off") is None and c(both, "0") is None
    assert c(("avx256",), "avx512") is None
    assert c(("avx2",), None) == "avx2" and c(("avx512", "avx2"), "avx2") == "avx2"
    assert c((), "on") is None
    assert c(both, "on", jit=False) is None
    assert vnni.HAVE_VNNI == (vnni.ISA is not None)
    assert vnni.LANES == (16 if vnni.ISA == "avx512" else 8)
    assert vnni.EMULATED == (vnni.ISA == "avx2")


SCRIPT = textwrap.dedent("""
    import numpy as np
    from amchw.ir import (Conv, Dense, Dequantize, FloatType, GraphBuilder, QType, Quantize,
                          Requant, Reshape)
    from amchw.ir import acc_type, fast
    from amchw.ir.interp import run
    from amchw.kernels import vnni
    rng = np.random.default_rng(3)
    t = QType(8, True, False, (2.0**-5,))
    wt = QType(8, True, True, (2.0**-7,), 0)
    b = GraphBuilder("g")
    b.input("x", (4, 40), FloatType())
    b.add("q", Quantize(t), ["x"])
    w = rng.integers(-127, 127, size=(16, 4, 3), endpoint=True).astype(np.int32)
    b.add("conv", Conv(w, None, wt, (1,), ((1, 1),), (1,), 1, acc_type(t, wt)), ["q"])
    b.add("rq", Requant(np.array([3]), np.array([12]), np.array([0]), t, t.lo, t.hi,
                        "half_even"), ["conv"])
    b.add("flat", Reshape((16 * 40,)), ["rq"])
    w2 = rng.integers(-127, 127, size=(70, 16 * 40), endpoint=True).astype(np.int32)
    b.add("fc", Dense(w2, None, wt, acc_type(t, wt)), ["flat"])
    b.add("out", Dequantize(), ["fc"])
    g = b.build(["out"])
    x = rng.normal(0, 1.0, size=(7, 4, 40)).astype(np.float32)
    plan = fast.FastPlan(g, 1)
    text = " | ".join(plan.describe())
    assert text.count("int32 GEMM (") == (2 if vnni.HAVE_VNNI else 0), text
    assert text.count(f"({vnni.KERNEL})") == (2 if vnni.HAVE_VNNI else 0), text
    got = plan(x)
    want = run(g, x, "ref")
    assert np.array_equal(got, want)
    print("ISA", vnni.ISA)
    if vnni.HAVE_VNNI:  # the instructions of a tile (a fresh function: cached code has no asm)
        from numba import njit

        @njit
        def tile(w8, a8, c):
            vnni._tile_pos(w8, 0, 8, a8, 0, 4 * 48, 2, c, 0, 48)

        tile(np.zeros(64, np.int8), np.zeros(4 * 2 * 48, np.uint8), np.zeros(8 * 48, np.int32))
        asm = "".join(tile.inspect_asm().values())
        dots = sorted({ln.split()[0] for ln in asm.splitlines() if "vpdpbusd" in ln})
        print("DOT", dots, "zmm" in asm, "vpmaddwd" in asm)
""")


# the subprocess checks compile kernels: nothing to check where the JIT is off (the no-JIT
# re-run of the kernel tests, tests/kernels/test_kernels_nojit.py)
needs_jit = pytest.mark.skipif(bool(numba_config.DISABLE_JIT), reason="the JIT is off")


def _run(**env_vars):
    env = {**os.environ, **env_vars}
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@needs_jit
def test_generic_numba_target_runs_the_float_path():
    assert "ISA None" in _run(NUMBA_CPU_NAME="generic", AMCHW_VNNI="on")


HOST = dict(llvm.get_host_cpu_features())
AVX_VNNI_ONLY = ",".join(
    ("-" if k.startswith(("avx512", "avx10", "amx", "evex512")) or not v else "+") + k
    for k, v in HOST.items())


@pytest.mark.skipif("avx256" not in _isa.USABLE, reason="no 256-bit VNNI on this host")
@needs_jit
@pytest.mark.slow  # each compiles the kernels afresh for its target (~25 s)
def test_256_bit_kernels_equal_the_reference():
    out = _run(AMCHW_VNNI="avx256")
    assert "ISA avx256" in out and "DOT" in out and "True" not in out, out


@pytest.mark.skipif("avx2" not in _isa.USABLE, reason="no AVX2 on this host")
@needs_jit
@pytest.mark.slow  # each compiles the kernels afresh for its target (~25 s)
def test_avx2_kernels_equal_the_reference():
    out = _run(AMCHW_VNNI="avx2")
    assert "ISA avx2" in out and "DOT [] " in out and out.rstrip().endswith("True"), out


NO_VNNI = ",".join(f if "vnni" not in f else "-" + f[1:] for f in AVX_VNNI_ONLY.split(","))


@pytest.mark.skipif(not HOST.get("avx2"), reason="this host has no AVX2")
@needs_jit
@pytest.mark.slow  # each compiles the kernels afresh for its target (~25 s)
def test_avx2_on_a_target_without_any_vnni():
    out = _run(AMCHW_VNNI="on", NUMBA_CPU_FEATURES=NO_VNNI)
    assert "ISA avx2" in out and "DOT [] False True" in out, out


@pytest.mark.skipif(not HOST.get("avxvnni"), reason="this host has no AVX-VNNI")
@needs_jit
@pytest.mark.slow  # each compiles the kernels afresh for its target (~25 s)
def test_vex_form_on_a_target_without_avx512():
    out = _run(AMCHW_VNNI="on", NUMBA_CPU_FEATURES=AVX_VNNI_ONLY)
    assert "ISA avx256" in out and "DOT ['{vex}'] False False" in out, out
