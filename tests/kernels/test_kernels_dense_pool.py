"""dense_i32 (+ gemm) and the pooling kernels == their refs bit for bit; accumulator wrap over a
long reduction; hand-checked average-pool ties; windows made only of padding are refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amchw.kernels import (
    ROUND_FLOOR,
    ROUND_HALF_AWAY,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    avgpool2d_i32,
    avgpool2d_i32_ref,
    dense_i32,
    dense_i32_gemm,
    dense_i32_ref,
    maxpool2d_i32,
    maxpool2d_i32_ref,
    sumpool2d_i32,
    sumpool2d_i32_ref,
)
from kernel_cases import MODES, PROFILE, SEED


def wrap_int(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


@PROFILE
@given(seed=SEED, n=st.integers(1, 3), c=st.integers(1, 40), k=st.integers(1, 6),
       rx=st.integers(0, 4), rw=st.integers(0, 4), bias_kind=st.integers(0, 2))
def test_dense_kernel_and_gemm_equal_ref(seed, n, c, k, rx, rw, bias_kind, kgen):
    rng = np.random.default_rng(seed)
    x, zx = kgen.code_tensor(rng, (n, c), rx)
    w, zw = kgen.code_tensor(rng, (k, c), rw)
    hi = {0: 0, 1: 2**15, 2: 2**31 - 1}[bias_kind]
    bias = rng.integers(-hi, hi, size=k, endpoint=True).astype(np.int32)
    want = dense_i32_ref(x, w, bias, zx, zw)
    kgen.same(dense_i32(x, w, bias, zx, zw), want)
    kgen.same(dense_i32_gemm(x, w, bias, zx, zw), want)


def test_dense_wraps_past_2_31():
    # 140,000 terms of 127 * 127 = 2,258,060,000 > 2^31 - 1: the register wraps once
    c = 140_000
    x = np.full((2, c), 127, np.int32)
    x[1, :3] = -128  # second row: three -128 * 127 terms
    w = np.full((1, c), 127, np.int32)
    bias = np.array([-5], np.int32)
    want = [[wrap_int(c * 127 * 127 - 5)], [wrap_int((c - 3) * 127 * 127 - 3 * 128 * 127 - 5)]]
    assert want[0][0] != c * 127 * 127 - 5  # it did wrap
    for fn in (dense_i32, dense_i32_gemm, dense_i32_ref):
        out = fn(x, w, bias, 0, 0)
        assert out.dtype == np.int32 and out.tolist() == want


def test_dense_minus128_squared_with_bias_at_the_top():
    x = np.full((1, 4), -128, np.int32)
    w = np.full((2, 4), -128, np.int32)
    bias = np.array([2**31 - 1, -(2**31)], np.int32)
    want = [[wrap_int(4 * 16384 + 2**31 - 1), 4 * 16384 - 2**31]]
    for fn in (dense_i32, dense_i32_gemm, dense_i32_ref):
        assert fn(x, w, bias, 0, 0).tolist() == want


def test_dense_gemm_chunks_and_falls_back(kgen, monkeypatch):
    from amchw.kernels import dense

    rng = np.random.default_rng(4)
    monkeypatch.setattr(dense, "CHUNK_BYTES", 1)  # one row per chunk
    x, zx = kgen.code_tensor(rng, (5, 9), 3)
    w, zw = kgen.code_tensor(rng, (4, 9), 1)
    kgen.same(dense_i32_gemm(x, w, None, zx, zw), dense_i32_ref(x, w, None, zx, zw))
    # |x| ~ 2^30, |w| ~ 2^30: the bound passes 2^53, so the loop kernel answers
    x = kgen.codes(rng, (3, 4), -(2**30), 2**30)
    w = kgen.codes(rng, (2, 4), -(2**30), 2**30)
    kgen.same(dense_i32_gemm(x, w, None, 0, 0), dense_i32_ref(x, w, None, 0, 0))


def test_dense_rejects_bad_arguments():
    x = np.zeros((2, 3), np.int32)
    with pytest.raises(ValueError, match="shape"):
        dense_i32(x, np.zeros((4, 2), np.int32), None, 0, 0)
    with pytest.raises(ValueError, match="bias"):
        dense_i32_gemm(x, np.zeros((4, 3), np.int32), np.zeros(3, np.int32), 0, 0)
    with pytest.raises(ValueError, match="int32"):
        dense_i32_ref(x.astype(np.int16), np.zeros((4, 3), np.int32), None, 0, 0)


@st.composite
def pool_cases(draw, dilated):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 12))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    # keep the window inside the padded input
    kh = min(kh, h + pads[0] + pads[1])
    kw = min(kw, w + pads[2] + pads[3])
    if kh > 1:
        dil = (min(dil[0], (h + pads[0] + pads[1] - 1) // (kh - 1)), dil[1])
    if kw > 1:
        dil = (dil[0], min(dil[1], (w + pads[2] + pads[3] - 1) // (kw - 1)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (n, c, h, w), (kh, kw), stride, pads, dil


def windows_all_nonempty(shape, kernel, stride, pads, dil):
    """Independent check: does every output window touch a real row and a real column?"""
    for size, k, s, d, pa, pb in ((shape[2], kernel[0], stride[0], dil[0], pads[0], pads[1]),
                                  (shape[3], kernel[1], stride[1], dil[1], pads[2], pads[3])):
        n_out = (size + pa + pb - d * (k - 1) - 1) // s + 1
        for o in range(n_out):
            if not any(0 <= o * s + i * d - pa < size for i in range(k)):
                return False
    return True


@PROFILE
@given(case=pool_cases(dilated=True), seed=SEED, r=st.integers(0, 4))
def test_maxpool_kernel_equals_ref(case, seed, r, kgen):
    shape, kernel, stride, pads, dil = case
    x, _ = kgen.code_tensor(np.random.default_rng(seed), shape, r)
    if not windows_all_nonempty(shape, kernel, stride, pads, dil):
        for fn in (maxpool2d_i32, maxpool2d_i32_ref):
            with pytest.raises(ValueError, match="padding only"):
                fn(x, kernel, stride, pads, dil)
        return
    kgen.same(maxpool2d_i32(x, kernel, stride, pads, dil),
              maxpool2d_i32_ref(x, kernel, stride, pads, dil))


def test_maxpool_by_hand():
    x = np.array([[[[-5, -7, 3], [-9, -1, -2]]]], np.int32)
    # 2x2 windows, stride 1, one padded column on the left: padding never wins even when all
    # real values are negative
    got = maxpool2d_i32(x, (2, 2), (1, 1), (0, 0, 1, 0))
    assert got.tolist() == [[[[-5, -1, 3]]]]
    assert maxpool2d_i32(x, 2, 2, (0, 0, 0, 1)).tolist() == [[[[-1, 3]]]]  # stride default


@PROFILE
@given(case=pool_cases(dilated=False), seed=SEED, r=st.integers(0, 4),
       mode=st.sampled_from(MODES))
def test_sum_and_avg_pool_kernels_equal_ref(case, seed, r, mode, kgen):
    shape, kernel, stride, pads, _ = case
    x, zx = kgen.code_tensor(np.random.default_rng(seed), shape, r)
    kgen.same(sumpool2d_i32(x, kernel, stride, pads, zx),
              sumpool2d_i32_ref(x, kernel, stride, pads, zx))
    kgen.same(avgpool2d_i32(x, kernel, stride, pads, zx, mode),
              avgpool2d_i32_ref(x, kernel, stride, pads, zx, mode))


@pytest.mark.parametrize("mode,want", [
    (ROUND_HALF_EVEN, [12, 8, 10]), (ROUND_HALF_UP, [12, 8, 11]),
    (ROUND_HALF_AWAY, [12, 7, 11]), (ROUND_FLOOR, [11, 7, 10]),
])
def test_avgpool_ties_by_hand(mode, want):
    # zx = 10; windows of 2: (11, 12) -> 1.5, (8, 7) -> -2.5, (10, 11) -> 0.5
    x = np.array([[[[11, 12, 8, 7, 10, 11]]]], np.int32)
    for fn in (avgpool2d_i32, avgpool2d_i32_ref):
        assert fn(x, (1, 2), (1, 2), 0, 10, mode).ravel().tolist() == want


def test_global_avgpool_counts_padding_and_sums_wrap():
    x = np.arange(12, dtype=np.int32).reshape(1, 1, 3, 4)
    # global average: sum 66 over 12 -> 5.5 -> 6 (half even); zx = 0
    assert avgpool2d_i32(x, (3, 4), 1, 0, 0, ROUND_HALF_EVEN).tolist() == [[[[6]]]]
    # padding holds zx and counts: a (1, 2) window over [5] and padding -> (5 - 1 + 0) / 2 = 2
    x = np.array([[[[5]]]], np.int32)
    assert avgpool2d_i32(x, (1, 2), 1, (0, 0, 0, 1), 1, ROUND_FLOOR).tolist() == [[[[3]]]]
    assert sumpool2d_i32(x, (1, 2), 1, (0, 0, 0, 1), 1).tolist() == [[[[4]]]]
    # a sum past 2^31 wraps like the int32 register
    big = np.full((1, 1, 1, 3), 2**30, np.int32)
    for fn in (sumpool2d_i32, sumpool2d_i32_ref):
        assert fn(big, (1, 3), 1, 0, -(2**30)).tolist() == [[[[wrap_int(6 * 2**30)]]]]


def test_pool_rejects_bad_arguments():
    x = np.zeros((1, 1, 2, 2), np.int32)
    with pytest.raises(ValueError, match="height"):
        sumpool2d_i32(x, (3, 1), 1, 0, 0)
    with pytest.raises(ValueError, match="rounding"):
        avgpool2d_i32(x, 1, 1, 0, 0, 7)
    with pytest.raises(ValueError, match="padding only"):
        maxpool2d_i32(x, (1, 1), 1, (1, 0, 0, 0))
    with pytest.raises(ValueError, match="4 dimensions"):
        maxpool2d_i32(x[0], 1)
