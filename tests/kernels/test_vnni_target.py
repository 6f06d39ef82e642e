"""When the VNNI kernels may be used: the host must have AVX-512 VNNI and Numba must compile
for it. NUMBA_CPU_NAME=generic (with the host's features, as Numba passes them) once made LLVM
abort the whole process on the first VNNI kernel; the rule now keeps that target on the float
path, and a process started that way runs a fused plan to the reference's bits."""

import os
import subprocess
import sys
import textwrap

from amchw.kernels import vnni

HOST = {"avx512f": True, "avx512vnni": True, "avx2": True}


def test_target_rule():
    t = vnni.target_has_vnni
    assert t(HOST, "icelake-server", None, None)
    assert t(HOST, "icelake-server", "host", None)
    assert t(HOST, "icelake-server", "ICELAKE-SERVER", None)
    assert not t({**HOST, "avx512vnni": False}, "skylake-avx512", None, None)
    assert not t({"avx2": True}, "haswell", None, None)
    assert not t(HOST, "icelake-server", "generic", None)   # LLVM aborted there
    assert not t(HOST, "generic", None, None)                # a host LLVM does not know
    assert not t(HOST, "icelake-server", "znver4", None)     # another CPU: not assumed
    assert t(HOST, "znver4", None, "+avx512f,+avx512vnni,+avx2")
    assert not t(HOST, "znver4", None, "+avx512f,-avx512vnni")
    assert not t(HOST, "znver4", None, "+avx2")
    assert not t(HOST, "znver4", None, "+avx512f,+avx512vnni,-evex512")


SCRIPT = textwrap.dedent("""
    import numpy as np
    from amchw.ir import Conv, Dequantize, FloatType, GraphBuilder, QType, Quantize, Requant
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
    b.add("out", Dequantize(), ["rq"])
    g = b.build(["out"])
    x = rng.normal(0, 1.0, size=(5, 4, 40)).astype(np.float32)
    plan = fast.FastPlan(g, 1)
    assert ("VNNI" in plan.describe()[1]) == vnni.HAVE_VNNI
    got = plan(x)
    want = run(g, x, "ref")
    assert np.array_equal(got, want)
    print("HAVE_VNNI", vnni.HAVE_VNNI)
""")


def test_generic_numba_target_runs_the_float_path(tmp_path):
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("AMCHW_VNNI", None)
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "HAVE_VNNI False" in p.stdout
