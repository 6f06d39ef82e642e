"""Zero-skipping kernels (CSR, CSC, N:M; dense and convolution) against the dense kernels, bit
for bit, at sparsities from 0 to 100% (all-zero rows and columns included), with nonzero zero
points and int32 wrap-around; the formats reconstruct the matrix they store."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import conv2d_i32_ref, dense_i32_ref
from amchw.kernels.sparse import (conv2d_i32_csr, csc_from_dense, csr_from_dense,
                                  dense_from_csr, dense_from_nm, dense_i32_csc, dense_i32_csr,
                                  dense_i32_nm, nm_from_dense)


def _sparse(rng, shape, density, zw):
    w = rng.integers(-127, 128, shape).astype(np.int32)
    w[rng.random(shape) >= density] = zw
    return w


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]),
       st.integers(1, 5), st.integers(1, 9), st.integers(1, 40), st.integers(-3, 3),
       st.integers(-2, 2))
def test_fc_formats_equal_the_dense_kernel(seed, density, n, k, r, zx, zw):
    rng = np.random.default_rng(seed)
    w = _sparse(rng, (k, r), density, zw)
    if k > 1:
        w[rng.integers(k)] = zw            # an all-zero row
    w[:, rng.integers(r)] = zw             # an all-zero column
    x = rng.integers(-128, 128, (n, r)).astype(np.int32)
    b = rng.integers(-1000, 1000, k).astype(np.int32)
    want = dense_i32_ref(x, w, b, zx, zw)
    ip, ix, v = csr_from_dense(w, zw)
    assert np.array_equal(dense_from_csr(ip, ix, v, w.shape, zw), w)
    assert ix.size == np.count_nonzero(w != zw)
    assert np.array_equal(dense_i32_csr(x, ip, ix, v, b, zx, zw), want)
    cp, cr, cv = csc_from_dense(w, zw)
    assert np.array_equal(dense_i32_csc(x, cp, cr, cv, b, zx, zw, k), want)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([(1, 4), (2, 4), (1, 2), (4, 8), (2, 2)]),
       st.integers(1, 4), st.integers(1, 7), st.integers(1, 6), st.booleans())
def test_nm_format_equals_the_dense_kernel(seed, nm, n, k, groups, empty):
    nn_, m = nm
    rng = np.random.default_rng(seed)
    r = groups * m
    w = np.zeros((k, r), np.int32)
    if not empty:  # at most n nonzeros per group of m, at random places
        for kk in range(k):
            for g in range(groups):
                cnt = rng.integers(0, nn_ + 1)
                pos = rng.choice(m, cnt, replace=False)
                w[kk, g * m + pos] = rng.integers(1, 128, cnt) * rng.choice([-1, 1], cnt)
    x = rng.integers(-128, 128, (n, r)).astype(np.int32)
    vals, offs = nm_from_dense(w, nn_, m)
    assert vals.shape == (k, groups * nn_) and offs.max(initial=0) < m
    assert np.array_equal(dense_from_nm(vals, offs, m, r), w)
    assert np.array_equal(dense_i32_nm(x, vals, offs, m, None, 1, 0),
                          dense_i32_ref(x, w, None, 1, 0))


def test_nm_refuses_a_dense_group_and_names_it():
    w = np.zeros((2, 8), np.int32)
    w[1, 4:7] = 5
    with pytest.raises(ValueError, match=r"row 1, group 1 \(positions 4..7\) has 3 nonzeros"):
        nm_from_dense(w, 2, 4)
    with pytest.raises(ValueError, match="multiple of m=4"):
        nm_from_dense(np.zeros((1, 6), np.int32), 2, 4)


def test_int32_wrap_matches_the_dense_kernel():
    x = np.full((1, 3), 127, np.int32)
    w = np.array([[127, 0, 127]], np.int32)
    b = np.array([2**31 - 20000], np.int32)
    want = dense_i32_ref(x, w, b, -128, 0)  # wraps past 2^31
    assert want[0, 0] < 0
    ip, ix, v = csr_from_dense(w)
    assert np.array_equal(dense_i32_csr(x, ip, ix, v, b, -128, 0), want)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       st.sampled_from([1, 2]), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2),
       st.integers(1, 2))
def test_conv_csr_equals_the_dense_kernel(seed, density, groups, cg, stride, pad, dil):
    rng = np.random.default_rng(seed)
    k_ = 2 * groups
    x = rng.integers(-128, 128, (2, cg * groups, 5, 9)).astype(np.int32)
    w = _sparse(rng, (k_, cg, 2, 3), density, 1)
    b = rng.integers(-50, 50, k_).astype(np.int32)
    pads = (pad, 0, pad, pad + 1)
    want = conv2d_i32_ref(x, w, b, 2, 1, (stride, stride), pads, (dil, dil), groups)
    ip, ix, v = csr_from_dense(w.reshape(k_, -1), 1)
    got = conv2d_i32_csr(x, w.shape, ip, ix, v, b, 2, 1, (stride, stride), pads, (dil, dil),
                         groups)
    assert np.array_equal(got, want)


def test_malformed_compressed_weights_are_refused():
    x = np.zeros((1, 4), np.int32)
    with pytest.raises(ValueError, match="malformed compressed index"):
        dense_i32_csr(x, np.array([0, 2]), np.array([0], np.int32), np.array([1], np.int32),
                      None, 0, 0)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        dense_i32_csr(x, np.array([0, 1]), np.array([4], np.int32), np.array([1], np.int32),
                      None, 0, 0)
