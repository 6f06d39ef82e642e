"""Product-quantized FC kernels: lookup-and-MAC and bin-accumulate equal, bit for bit, the dense
product on the reconstructed weights (and the dense kernel itself); the compression rate is the
seed's formula and gives its VTCNN2 figure."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import dense_i32_ref
from amchw.kernels.pq import (compression_rate, pq_dense_bins, pq_dense_lookup, pq_dense_ref,
                              pq_reconstruct)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.integers(1, 40),
       st.sampled_from([(1, 4), (2, 3), (4, 2), (8, 1)]), st.sampled_from([2, 4, 16]),
       st.integers(-3, 3), st.integers(-2, 2))
def test_both_kernels_equal_the_dense_product(seed, batch, m, pd, ks, zx, zw):
    p, d = pd
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, ks, (m, p)).astype(np.int32)
    books = rng.integers(-127, 128, (p, ks, d)).astype(np.int32)
    x = rng.integers(-128, 128, (batch, m)).astype(np.int32)
    b = rng.integers(-500, 500, p * d).astype(np.int32)
    want = pq_dense_ref(x, codes, books, b, zx, zw)
    w = pq_reconstruct(codes, books)
    assert w.shape == (m, p * d)
    assert np.array_equal(want, dense_i32_ref(x, np.ascontiguousarray(w.T), b, zx, zw))
    assert np.array_equal(pq_dense_lookup(x, codes, books, b, zx, zw), want)
    assert np.array_equal(pq_dense_bins(x, codes, books, b, zx, zw), want)


def test_wraps_like_the_dense_kernel():
    m = 70_000  # 70000 * 127 * 254 overflows int32
    codes = np.zeros((m, 1), np.int32)
    books = np.full((1, 2, 2), 127, np.int32)
    x = np.full((1, m), 127, np.int32)
    want = pq_dense_ref(x, codes, books, None, -127, 0)
    assert np.array_equal(pq_dense_bins(x, codes, books, None, -127, 0), want)
    assert np.array_equal(pq_dense_lookup(x, codes, books, None, -127, 0), want)


def test_compression_rate_is_the_seeds():
    # VTCNN2's first FC layer, 10560 x 256, P = 2, K_s = 256, 64-bit originals: 39.65
    assert round(compression_rate(10_560, 256, 2, 256), 2) == 39.65
    # and from the stored sizes of a PQ layer of that shape
    m, n, p, ks = 10_560, 256, 2, 256
    bits = 64 * ks * n + 8 * m * p  # codebooks at 64 bits + 8-bit codes
    assert compression_rate(m, n, p, ks) == 64 * m * n / bits
    with pytest.raises(ValueError, match="power of two"):
        compression_rate(10, 4, 2, 3)


def test_bad_codes_are_refused():
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\)"):
        pq_dense_lookup(np.zeros((1, 2), np.int32), np.array([[0], [4]], np.int32),
                        np.zeros((1, 4, 2), np.int32), None, 0, 0)
