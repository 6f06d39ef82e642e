"""The kernel tests re-run in subprocesses: with NUMBA_DISABLE_JIT=1, where the loop kernels run
as plain Python on numpy scalars (no silent int64 widening, every index checked by numpy), and
with NUMBA_BOUNDSCHECK=1, where compiled code checks every index (JIT code does not by default)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHILD = "AMCHW_KERNELS_NOJIT_CHILD"  # set in the subprocesses: no recursion
HERE = Path(__file__).resolve().parent

# mode -> (extra environment, hypothesis examples)
MODES = {
    "nojit": ({"NUMBA_DISABLE_JIT": "1"}, "100"),
    "boundscheck": ({"NUMBA_BOUNDSCHECK": "1"}, "25"),
}


@pytest.mark.skipif(bool(os.environ.get(CHILD)), reason="already inside a re-run")
@pytest.mark.parametrize("mode", sorted(MODES))
def test_kernel_tests_pass_in_subprocess(mode):
    extra, examples = MODES[mode]
    env = dict(os.environ, AMCHW_KERNEL_EXAMPLES=examples, **extra)
    env[CHILD] = mode
    # a separate, persistent numba cache: bounds-checked machine code must not mix with the
    # normal cache, and recompiling it on every run would cost ~20 s
    env["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"amchw-numba-{mode}")
    # -P: keep the repository root off sys.path so the installed amchw.kernels is imported
    cmd = [sys.executable, "-P", "-m", "pytest", str(HERE), "-q", "-x", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=HERE.parents[1], env=env, capture_output=True, text=True,
                          timeout=600)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert "passed" in proc.stdout and "failed" not in proc.stdout, report


@pytest.mark.skipif(os.environ.get(CHILD) != "nojit", reason="only in the no-JIT re-run")
def test_child_really_runs_without_jit():
    import numba

    from amchw.kernels import conv, round_shift

    assert numba.config.DISABLE_JIT
    # without JIT the decorated functions are the plain Python functions
    assert not isinstance(round_shift, numba.core.dispatcher.Dispatcher)
    assert not isinstance(conv._conv2d_kernel, numba.core.dispatcher.Dispatcher)


@pytest.mark.skipif(os.environ.get(CHILD) != "boundscheck", reason="only in the boundscheck run")
def test_child_really_checks_bounds():
    import numba
    import numpy as np

    assert numba.config.BOUNDSCHECK

    @numba.njit
    def read(a, i):
        return a[i]

    with pytest.raises(IndexError):
        read(np.zeros(2), 5)
