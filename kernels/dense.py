"""Fully connected layer on int32 codes with an int32 accumulator wrapping modulo 2^32:
acc[n, k] = bias[k] + sum_c (x[n, c] - zx) * (w[k, c] - zw)."""

import numpy as np
from numba import njit, prange

from . import _checks
from ._gemm import CHUNK_BYTES, accumulation_bound, exact_float_dtype
from .rounding import wrap_i32, wrap_i32_ref


@njit(cache=True, parallel=True)
def _dense_kernel(x, w, bias, zx, zw):
    n_, c_ = x.shape
    k_ = w.shape[0]
    out = np.empty((n_, k_), dtype=np.int32)
    # One output per task; the reduction runs along contiguous rows of x and w.
    for nk in prange(n_ * k_):
        n = nk // k_
        k = nk - n * k_
        acc = np.int64(bias[k])
        for c in range(c_):
            acc = wrap_i32(acc + (np.int64(x[n, c]) - zx) * (np.int64(w[k, c]) - zw))
        out[n, k] = acc
    return out


def _dense_args(x, w, bias, zx, zw):
    x = _checks.int32_tensor(x, "x", ndim=2)
    w = _checks.int32_tensor(w, "w", ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have shape (K, C={x.shape[1]}), got {w.shape}")
    k_ = w.shape[0]
    if bias is None:
        bias = np.zeros(k_, dtype=np.int32)
    bias = _checks.int32_tensor(bias, "bias", ndim=1)
    if bias.shape[0] != k_:
        raise ValueError(f"bias must have length K={k_}, got {bias.shape[0]}")
    zx = _checks.scalar_int(zx, "zx")
    zw = _checks.scalar_int(zw, "zw")
    return x, w, bias, zx, zw


def dense_i32(x, w, bias, zx, zw):
    """x: int32 (N, C); w: int32 (K, C); bias: int32 (K,) or None -> int32 (N, K), the
    accumulator wrapped to int32 after every addition (products in int64)."""
    x, w, bias, zx, zw = _dense_args(x, w, bias, zx, zw)
    return _dense_kernel(x, w, bias, zx, zw)


def dense_i32_ref(x, w, bias, zx, zw):
    """Vectorised twin of dense_i32: exact int64 matrix product, one wrap at the end."""
    x, w, bias, zx, zw = _dense_args(x, w, bias, zx, zw)
    acc = (x.astype(np.int64) - zx) @ (w.astype(np.int64) - zw).T
    return wrap_i32_ref(acc + bias.astype(np.int64)[None, :])


def dense_i32_gemm(x, w, bias, zx, zw):
    """dense_i32 through a float matrix product (BLAS); the same bits.

    Exact because every product and partial sum is an integer of magnitude at most
    bound = max|x - zx| * max_k sum_c |w[k, c] - zw| + max|bias|: float32 is used when
    bound < 2^24 and float64 when bound < 2^53 (all such integers are representable, so nothing
    rounds in any summation order); otherwise this falls back to dense_i32. Rows of x are
    processed in chunks of at most about 64 MiB of float input."""
    x, w, bias, zx, zw = _dense_args(x, w, bias, zx, zw)
    n_, c_ = x.shape
    k_ = w.shape[0]
    ftype = exact_float_dtype(accumulation_bound(x, zx, w, zw, bias))
    if ftype is None:
        return _dense_kernel(x, w, bias, zx, zw)
    wt = (w.astype(np.int64) - zw).astype(ftype).T
    bias64 = bias.astype(np.int64)[None, :]
    itemsize = np.dtype(ftype).itemsize
    chunk = max(1, CHUNK_BYTES // max(1, (c_ + k_) * itemsize))
    out = np.empty((n_, k_), dtype=np.int32)
    for n0 in range(0, n_, chunk):
        xf = (x[n0:n0 + chunk].astype(np.int64) - zx).astype(ftype)
        acc = (xf @ wt).astype(np.int64) + bias64
        out[n0:n0 + chunk] = wrap_i32_ref(acc)
    return out
