"""Which dot-product instruction the integer GEMMs use (kernels/_isa.py): the host must run it
and Numba must compile for it. NUMBA_CPU_NAME=generic (with the host's features, as Numba
passes them) once made LLVM abort the whole process on the first VNNI kernel; that target now
runs the float path. Each narrower form runs the fused executor to the reference's bits in a
fresh process, both chosen on this host (AMCHW_VNNI=avx256 / avx2) and on a target whose
features lack the wider ones (NUMBA_CPU_FEATURES): AVX-VNNI without AVX-512 (only the VEX
form of VPDPBUSD may appear, as on Alder Lake and later client cores) and AVX2 without any
VNNI (VPMADDWD, as on Haswell to Zen 3). Those four compile the kernels afresh for their
targets (~25 s each), so they run in the long suite (`pytest -m slow`, which CI runs too)."""

import json
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
    r = _isa.refusal
    assert r(both, None) is None and r(both, "off") is None and r(both, "avx256") is None
    assert "not one of on, off, avx512, avx256, avx2" in r(both, "avx215")
    assert "cannot run that form (usable: avx2)" in r(("avx2",), "avx512")
    assert vnni.HAVE_VNNI == (vnni.ISA is not None)
    assert vnni.LANES == (16 if vnni.ISA == "avx512" else 8)
    assert vnni.EMULATED == (vnni.ISA == "avx2")


SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from amchw.ir import (Conv, Dense, Dequantize, FloatType, GraphBuilder, MaxPool, QType,
                          Quantize, Requant, Reshape)
    from amchw.ir import acc_type, fast
    from amchw.ir.interp import run
    from amchw.kernels import vnni
    rng = np.random.default_rng(3)
    t = QType(8, True, False, (2.0**-5,))
    u = QType(8, False, False, (2.0**-5,))
    wt = QType(8, True, True, (2.0**-7,), 0)
    b = GraphBuilder("g")
    b.input("x", (4, 130), FloatType())
    b.add("q", Quantize(t), ["x"])
    w = rng.integers(-127, 127, size=(16, 4, 3), endpoint=True).astype(np.int32)
    b.add("conv", Conv(w, None, wt, (1,), ((1, 1),), (1,), 1, acc_type(t, wt)), ["q"])
    # float32-lane requantization, codes written as channel quads for conv2
    b.add("rq", Requant(np.array([3]), np.array([12]), np.array([0]), u, 0, 255,
                        "half_even"), ["conv"])
    w2 = rng.integers(-127, 127, size=(12, 16, 3), endpoint=True).astype(np.int32)
    b.add("conv2", Conv(w2, None, wt, (1,), ((1, 1),), (1,), 1, acc_type(u, wt)), ["rq"])
    # a multiplier too wide for float32 lanes: the one-pass int64 epilogue, with its pool
    b.add("rq2", Requant(np.array([2**40 + 12345]), np.array([52]), np.array([0]), t, t.lo,
                         t.hi, "half_away"), ["conv2"])
    b.add("pool", MaxPool((2,), (2,), ((0, 0),), (1,)), ["rq2"])
    b.add("flat", Reshape((12 * 65,)), ["pool"])
    w3 = rng.integers(-127, 127, size=(70, 12 * 65), endpoint=True).astype(np.int32)
    b.add("fc", Dense(w3, None, wt, acc_type(t, wt)), ["flat"])
    b.add("out", Dequantize(), ["fc"])
    g = b.build(["out"])
    x = rng.normal(0, 1.0, size=(7, 4, 130)).astype(np.float32)
    plan = fast.FastPlan(g, 1)
    text = " | ".join(plan.describe())
    gemms = 3 if vnni.HAVE_VNNI else 0
    assert text.count(f"int32 GEMM ({vnni.KERNEL}") == gemms, text
    assert ("implicit: no im2col" in text) == vnni.HAVE_VNNI, text
    got = plan(x)
    want = run(g, x, "ref")
    assert np.array_equal(got, want)
    assert len(np.unique(want)) > 20   # the outputs spread over many codes
    res = {"isa": vnni.ISA}
    if vnni.HAVE_VNNI:  # the instructions of a tile (a fresh function: cached code has no asm)
        from numba import njit

        @njit
        def tile(w8, a8, c):
            vnni._tile_pos(w8, 0, 8, a8, 0, 4 * 48, 2, c, 0, 48)

        tile(np.zeros(64, np.int8), np.zeros(4 * 2 * 48, np.uint8), np.zeros(8 * 48, np.int32))
        asm = "".join(tile.inspect_asm().values())
        res["dots"] = sorted({ln.split()[0] for ln in asm.splitlines() if "vpdpbusd" in ln})
        res["zmm"] = "zmm" in asm
        res["pmaddwd"] = "vpmaddwd" in asm
    print("RESULT " + json.dumps(res))
""")


# the subprocess checks compile kernels: nothing to check where the JIT is off (the no-JIT
# re-run of the kernel tests, tests/kernels/test_kernels_nojit.py)
needs_jit = pytest.mark.skipif(bool(numba_config.DISABLE_JIT), reason="the JIT is off")


def _run(**env_vars) -> dict:
    env = {**os.environ, **env_vars}
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.split("RESULT ", 1)[1])


@needs_jit
def test_generic_numba_target_runs_the_float_path():
    assert _run(NUMBA_CPU_NAME="generic", AMCHW_VNNI="on") == {"isa": None}


HOST = dict(llvm.get_host_cpu_features())
AVX_VNNI_ONLY = ",".join(
    ("-" if k.startswith(("avx512", "avx10", "amx", "evex512")) or not v else "+") + k
    for k, v in HOST.items())
NO_VNNI = ",".join(f if "vnni" not in f else "-" + f[1:] for f in AVX_VNNI_ONLY.split(","))

# (environment, whether this host can run it, what the subprocess must report: the form and
# the tile's instructions; None: not checked, as where LLVM may widen on an AVX-512 target)
NARROW = {
    "avx256 chosen": ({"AMCHW_VNNI": "avx256"}, "avx256" in _isa.USABLE,
                      {"isa": "avx256", "zmm": False, "pmaddwd": False}),
    "avx2 chosen": ({"AMCHW_VNNI": "avx2"}, "avx2" in _isa.USABLE,
                    {"isa": "avx2", "dots": [], "pmaddwd": True}),
    # AVX-VNNI without AVX-512 (Alder Lake and later client cores): only the VEX form
    "target without AVX-512": ({"AMCHW_VNNI": "on", "NUMBA_CPU_FEATURES": AVX_VNNI_ONLY},
                               bool(HOST.get("avxvnni")),
                               {"isa": "avx256", "dots": ["{vex}"], "zmm": False,
                                "pmaddwd": False}),
    # AVX2 without any VNNI (Haswell to Zen 3)
    "target without VNNI": ({"AMCHW_VNNI": "on", "NUMBA_CPU_FEATURES": NO_VNNI},
                            bool(HOST.get("avx2")),
                            {"isa": "avx2", "dots": [], "zmm": False, "pmaddwd": True}),
}


@needs_jit
@pytest.mark.slow  # each compiles the kernels afresh for its target (~25 s)
@pytest.mark.parametrize("case", sorted(NARROW))
def test_narrower_forms_equal_the_reference(case):
    env, runs_here, want = NARROW[case]
    if not runs_here:
        pytest.skip(f"this host cannot run the {case} case")
    got = _run(**env)
    assert {k: got.get(k) for k in want} == want, got
    if want["isa"] == "avx256":
        assert got["dots"], got
