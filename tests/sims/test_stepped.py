"""The stepped array against three independent references: an int64 numpy product (and the
Numba kernels) for its outputs, the closed-form timing model for its cycles, and the memory
model's access formulas for its operand reads and writes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import conv2d_i32, dense_i32
from amchw.sims.memory import gemm_accesses
from amchw.sims.stepped import stepped_gemm
from amchw.sims.timing import gemm_cycles

DATAFLOWS = ("os", "ws", "is")
TIMINGS = ("pipelined", "scalesim")
# arrays from 1x1 to 8x8, square and not
ARRAYS = [(1, 1), (1, 3), (3, 1), (2, 2), (2, 5), (3, 4), (4, 4), (5, 3), (8, 8)]
# GEMMs (M, K, N) with ragged folds on these arrays, single rows/columns, T < R and T > R
GEMMS = [(7, 5, 3), (10, 9, 3), (1, 1, 1), (1, 17, 9), (13, 6, 1), (9, 9, 9), (16, 8, 8),
         (3, 20, 2), (2, 3, 11)]


def _operands(rng, M, K, N):
    A = rng.integers(-128, 256, (M, K))        # uint8 codes minus 0 and int8 codes
    B = rng.integers(-128, 128, (K, N))
    bias = rng.integers(-(1 << 20), 1 << 20, N)
    return A, B, bias


@pytest.mark.parametrize("R,C", ARRAYS, ids=lambda v: str(v))
def test_stepped_equals_closed_form_and_product(R, C):
    rng = np.random.default_rng(R * 100 + C)
    for M, K, N in GEMMS:
        A, B, bias = _operands(rng, M, K, N)
        want = A @ B + bias
        for df in DATAFLOWS:
            for timing in TIMINGS:
                r = stepped_gemm(A, B, bias, R, C, df, timing)
                ft = gemm_cycles(M, K, N, R, C, df, timing)
                assert r.cycles == ft.cycles, (M, K, N, df, timing)
                assert r.out.dtype == np.int32
                assert np.array_equal(r.out, want), (M, K, N, df, timing)
                acc = gemm_accesses(M, K, N, ft, df)
                assert r.counts["macs"] == M * K * N
                assert r.counts["a_reads"] == acc.a_reads
                assert r.counts["b_reads"] == acc.b_reads
                assert r.counts["out_writes"] == acc.out_writes
                assert r.counts["psum_reads"] == acc.psum_reads


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 14), K=st.integers(1, 14), N=st.integers(1, 14),
       R=st.integers(1, 8), C=st.integers(1, 8), df=st.sampled_from(DATAFLOWS),
       timing=st.sampled_from(TIMINGS), seed=st.integers(0, 2**32 - 1))
def test_stepped_property(M, K, N, R, C, df, timing, seed):
    A, B, bias = _operands(np.random.default_rng(seed), M, K, N)
    r = stepped_gemm(A, B, bias, R, C, df, timing)
    assert r.cycles == gemm_cycles(M, K, N, R, C, df, timing).cycles
    assert np.array_equal(r.out, A @ B + bias)


def test_stepped_matches_the_dense_kernel_with_zero_points():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 21)).astype(np.int32)     # uint8 codes, zero point 7
    w = rng.integers(-127, 128, (6, 21)).astype(np.int32)
    bias = rng.integers(-500, 500, 6).astype(np.int32)
    want = dense_i32(x, w, bias, 7, 0)
    for df in DATAFLOWS:
        r = stepped_gemm(x.astype(np.int64) - 7, w.T, bias, 4, 3, df)
        assert np.array_equal(r.out, want)


def test_accumulators_wrap_like_the_kernels():
    """A sum beyond int32 wraps modulo 2^32 in the PEs exactly as in the kernels."""
    x = np.full((2, 4), 255, np.int32)
    w = np.full((3, 4), 127, np.int32)
    bias = np.full(3, 2**31 - 1000, np.int32)
    want = dense_i32(x, w, bias, 0, 0)
    assert want.min() < 0  # it did wrap
    for df in DATAFLOWS:
        assert np.array_equal(stepped_gemm(x, w.T, bias, 2, 2, df).out, want)


@pytest.mark.parametrize("groups,stride,dil,pads", [(1, (1, 1), (1, 1), (1, 1, 0, 2)),
                                                     (2, (2, 1), (1, 2), (0, 1, 2, 0))])
def test_conv_layer_through_im2col_matches_conv_kernel(groups, stride, dil, pads):
    from amchw.ir.graph import Node
    from amchw.ir.ops import Conv
    from amchw.ir.types import QType, Value
    from amchw.ir import acc_type
    from amchw.sims.simulate import gemm_operands

    rng = np.random.default_rng(groups)
    x = rng.integers(0, 256, (2, 4, 6, 7)).astype(np.int32)
    w = rng.integers(-100, 100, (6, 4 // groups, 3, 2)).astype(np.int32)
    bias = rng.integers(-1000, 1000, 6).astype(np.int32)
    zx, zw = 5, 3
    wt = QType(8, True, False, (2.0**-7,), zero_point=zw)
    op = Conv(w, bias, wt, stride, ((pads[0], pads[1]), (pads[2], pads[3])), dil, groups,
              acc_type(QType(8, False, False, (2.0**-4,), zero_point=zx), wt))
    want = conv2d_i32(x, w, bias, zx, zw, stride, pads, dil, groups)
    node = Node("c", op, ("x",), Value("c", want.shape[1:], op.out))
    parts, (n_, oh, ow) = gemm_operands(node, x, zx)
    assert len(parts) == groups
    kg = 6 // groups
    for gi, (a, b, bi) in enumerate(parts):
        for df in DATAFLOWS:
            r = stepped_gemm(a, b, bi, 3, 2, df)
            got = r.out.reshape(n_, oh, ow, kg).transpose(0, 3, 1, 2)
            assert np.array_equal(got, want[:, gi * kg:(gi + 1) * kg])


def test_bad_operands_are_refused():
    with pytest.raises(ValueError, match="B is"):
        stepped_gemm(np.ones((2, 3), int), np.ones((2, 2), int), 0, 2, 2, "os")
    with pytest.raises(ValueError, match="16-bit"):
        stepped_gemm(np.full((2, 2), 1 << 16), np.ones((2, 2), int), 0, 2, 2, "os")
    with pytest.raises(ValueError, match="R must be"):
        stepped_gemm(np.ones((2, 2), int), np.ones((2, 2), int), 0, 0, 2, "os")
    with pytest.raises(ValueError, match="dataflow"):
        stepped_gemm(np.ones((2, 2), int), np.ones((2, 2), int), 0, 2, 2, "rs")


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 30), K=st.integers(1, 30), N=st.integers(1, 30),
       R=st.integers(1, 9), C=st.integers(1, 9), pipelined=st.booleans(),
       zeros=st.sampled_from([0.0, 0.5, 0.9]), seed=st.integers(0, 2**32 - 1))
def test_os_history_kernel_equals_the_shifting_registers(M, K, N, R, C, pipelined, zeros,
                                                         seed):
    """The output-stationary array as injection histories (_run_os, vectorised) and as
    registers shifted every cycle (_run_os_shift, the plain model): same outputs, last busy
    cycle and counters, with and without zero skipping (ragged column folds, folds that do
    not run), accumulators wrapping."""
    from amchw.sims.stepped import _operand, _run_os, _run_os_shift, skip_steps

    rng = np.random.default_rng(seed)
    A = _operand(rng.integers(-32768, 32768, (M, K)), "A")
    B = rng.integers(-32768, 32768, (K, N))
    B[rng.random(B.shape) < zeros] = 0
    B = _operand(B, "B")
    init = np.ascontiguousarray(rng.integers(-(1 << 31), 1 << 31, (M, N)).astype(np.int32))
    if zeros:
        kidx, koff = skip_steps(B, C)
    else:
        cf = -(-N // C)
        kidx = np.tile(np.arange(K, dtype=np.int64), cf)
        koff = np.arange(cf + 1, dtype=np.int64) * K
    a = _run_os(A, B, init, R, C, pipelined, kidx, koff)
    b = _run_os_shift(A, B, init, R, C, pipelined, kidx, koff)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 30), K=st.integers(1, 30), N=st.integers(1, 30),
       R=st.integers(1, 9), C=st.integers(1, 9), pipelined=st.booleans(),
       transpose=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_stationary_history_kernel_equals_the_shifting_registers(M, K, N, R, C, pipelined,
                                                                 transpose, seed):
    """ws and is on the stationary array as streamed-token histories with packed shadow
    chains (_run_stationary) and as registers shifted every cycle (_run_stationary_shift):
    same outputs, last busy cycle and counters (ragged folds, wrapping accumulators)."""
    from amchw.sims.stepped import _operand, _run_stationary, _run_stationary_shift

    rng = np.random.default_rng(seed)
    A = _operand(rng.integers(-32768, 32768, (M, K)), "A")
    B = _operand(rng.integers(-32768, 32768, (K, N)), "B")
    init = rng.integers(-(1 << 31), 1 << 31, (M, N)).astype(np.int32)
    S, W, I0 = (B.T, A.T, init.T) if transpose else (A, B, init)
    S, W, I0 = (np.ascontiguousarray(v) for v in (S, W, I0))
    a = _run_stationary(S, W, I0, R, C, pipelined)
    b = _run_stationary_shift(S, W, I0, R, C, pipelined)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


def _stationary_twins_agree(A, B, init, R, C, pipelined, transpose):
    """_run_stationary and its twin _run_stationary_shift on ws (S = A, W = B) or is (S = B^T,
    W = A^T): same outputs, last busy cycle and counters."""
    from amchw.sims.stepped import _run_stationary, _run_stationary_shift

    S, W, I0 = (B.T, A.T, init.T) if transpose else (A, B, init)
    S, W, I0 = (np.ascontiguousarray(v) for v in (S, W, I0))
    a = _run_stationary(S, W, I0, R, C, pipelined)
    b = _run_stationary_shift(S, W, I0, R, C, pipelined)
    assert np.array_equal(a[0], b[0]), "outputs differ"
    assert a[1] == b[1], f"last busy cycle {a[1]} vs {b[1]}"
    assert np.array_equal(a[2], b[2]), f"counters {a[2]} vs {b[2]}"


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 80), K=st.integers(1, 6), N=st.integers(1, 80),
       R=st.integers(1, 32), C=st.integers(1, 32), pipelined=st.booleans(),
       transpose=st.booleans(), zeros=st.sampled_from([0.0, 0.5, 1.0]),
       seed=st.integers(0, 2**32 - 1))
def test_stationary_short_folds_equal_the_shifting_registers(M, K, N, R, C, pipelined,
                                                             transpose, zeros, seed):
    """Short reductions (1..6) on arrays up to 32 x 32, as in the first convolutions: tiles
    mostly padding, many folds, loads back to back on every chain, a fold's tile swapped in
    while the next one loads. Zero operands are valid tokens and weights (they count as MACs,
    unlike padding, which the history kernel also holds as 0); operands span the 16-bit
    registers and the bias the int32 range, so accumulators wrap."""
    rng = np.random.default_rng(seed)
    A = rng.integers(-32768, 32768, (M, K))
    B = rng.integers(-32768, 32768, (K, N))
    A[rng.random(A.shape) < zeros] = 0
    B[rng.random(B.shape) < zeros] = 0
    init = rng.integers(-(1 << 31), 1 << 31, (M, N)).astype(np.int32)
    _stationary_twins_agree(A.astype(np.int16), B.astype(np.int16), init, R, C, pipelined,
                            transpose)


# short-fold GEMMs (M, K, N) on (R, C): the shapes of VTCNN2 conv1 and VGG10 conv1 cut down,
# single-row and single-column arrays, a reduction of 1, folds shorter than the array
SHORT_FOLDS = [(40, 3, 70, 32, 32), (70, 6, 40, 32, 32), (33, 1, 65, 32, 32),
               (5, 6, 100, 32, 1), (100, 2, 5, 1, 32), (64, 6, 64, 16, 16), (3, 4, 9, 32, 32)]


@pytest.mark.parametrize("M,K,N,R,C", SHORT_FOLDS, ids=lambda v: str(v))
def test_stationary_short_folds_against_the_twin_and_the_references(M, K, N, R, C):
    """The same short-fold GEMMs through stepped_gemm (ws and is, both timings): outputs equal
    the int64 product, cycles the closed form, counters the memory model's access formulas;
    and the kernel equals its shifting twin with and without zero operands."""
    rng = np.random.default_rng(M * 10_000 + K * 100 + N)
    A, B, bias = _operands(rng, M, K, N)
    for df in ("ws", "is"):
        for timing in TIMINGS:
            r = stepped_gemm(A, B, bias, R, C, df, timing)
            ft = gemm_cycles(M, K, N, R, C, df, timing)
            acc = gemm_accesses(M, K, N, ft, df)
            assert np.array_equal(r.out, A @ B + bias), (df, timing)
            assert r.cycles == ft.cycles, (df, timing)
            assert r.counts["macs"] == M * K * N
            assert (r.counts["a_reads"], r.counts["b_reads"], r.counts["out_writes"],
                    r.counts["psum_reads"]) == (acc.a_reads, acc.b_reads, acc.out_writes,
                                                acc.psum_reads), (df, timing)
    init = np.broadcast_to(bias, (M, N)).astype(np.int32)
    for zeros in (0.0, 0.7):
        A0, B0 = A.copy(), B.copy()
        A0[rng.random(A.shape) < zeros] = 0
        B0[rng.random(B.shape) < zeros] = 0
        for pipelined in (True, False):
            for transpose in (False, True):
                _stationary_twins_agree(A0.astype(np.int16), B0.astype(np.int16), init, R, C,
                                        pipelined, transpose)
