"""Product-quantized fully connected layers, in the edge-efficient seed's orientation.

The weight matrix W (M inputs x N outputs) is split column-wise into P subspaces of width
d = N / P; row m's sub-vector in subspace p is centroid codes[m, p] of that subspace's codebook:
    W[m, p*d + j] = codebooks[p, codes[m, p], j]        (int8 centroid codes, zero point zw)
Two kernels compute out[n, o] = bias[o] + sum_m (x[n, m] - zx) * (W[m, o] - zw), each equal
bit for bit to the dense kernel on the reconstructed W (int32 accumulators wrap modulo 2^32):
- lookup-and-MAC: for every input m and subspace p, read centroid codes[m, p] (a d-vector) and
  accumulate (x_m - zx) times it into the subspace's outputs: M*P table reads, M*N MACs;
- bin-accumulate: add (x_m - zx) into bin codes[m, p] of subspace p (M*P adds), then multiply
  the K_s bins by the centroids: K_s*N MACs (a compute saving when M is much larger than K_s).
"""

import numpy as np
from numba import njit, prange

from . import _checks
from .rounding import wrap_i32, wrap_i32_ref


def _pq_args(x, codes, codebooks, bias, zx, zw):
    x = _checks.int32_tensor(x, "x", ndim=2)
    codes = _checks.int32_tensor(codes, "codes", ndim=2)
    codebooks = _checks.int32_tensor(codebooks, "codebooks", ndim=3)
    m_, p_ = codes.shape
    if x.shape[1] != m_:
        raise ValueError(f"x must have M={m_} columns (one per row of codes), got {x.shape[1]}")
    if codebooks.shape[0] != p_:
        raise ValueError(f"codebooks must have P={p_} subspaces, got {codebooks.shape[0]}")
    ks = codebooks.shape[1]
    if codes.size and (codes.min() < 0 or codes.max() >= ks):
        raise ValueError(f"codes must lie in [0, {ks})")
    n_out = p_ * codebooks.shape[2]
    if bias is None:
        bias = np.zeros(n_out, np.int32)
    bias = _checks.int32_tensor(bias, "bias", ndim=1)
    if bias.shape[0] != n_out:
        raise ValueError(f"bias must have N={n_out} entries, got {bias.shape[0]}")
    return x, codes, codebooks, bias, _checks.scalar_int(zx, "zx"), _checks.scalar_int(zw, "zw")


def pq_reconstruct(codes, codebooks):
    """W (M x N) from codes (M, P) and codebooks (P, K_s, d)."""
    codes = np.asarray(codes)
    p_ = codes.shape[1]
    return np.concatenate([codebooks[p][codes[:, p]] for p in range(p_)], axis=1) \
        .astype(np.int32)


@njit(cache=True, parallel=True)
def _lookup_kernel(x, codes, codebooks, bias, zx, zw):
    n_, m_ = x.shape
    p_, _, d = codebooks.shape
    out = np.empty((n_, p_ * d), np.int32)
    for n in prange(n_):
        acc = np.empty(p_ * d, np.int64)
        for o in range(p_ * d):
            acc[o] = bias[o]
        for m in range(m_):
            xv = np.int64(x[n, m]) - zx
            for p in range(p_):
                c = codes[m, p]  # one table read: the centroid, a d-vector
                for j in range(d):
                    acc[p * d + j] = wrap_i32(acc[p * d + j]
                                              + xv * (np.int64(codebooks[p, c, j]) - zw))
        for o in range(p_ * d):
            out[n, o] = acc[o]
    return out


def pq_dense_lookup(x, codes, codebooks, bias, zx, zw):
    """Lookup-and-MAC: x int32 (batch, M) -> int32 (batch, N)."""
    return _lookup_kernel(*_pq_args(x, codes, codebooks, bias, zx, zw))


@njit(cache=True, parallel=True)
def _bins_kernel(x, codes, codebooks, bias, zx, zw):
    n_, m_ = x.shape
    p_, ks, d = codebooks.shape
    out = np.empty((n_, p_ * d), np.int32)
    for n in prange(n_):
        bins = np.zeros((p_, ks), np.int64)
        for m in range(m_):  # M*P integer adds
            xv = np.int64(x[n, m]) - zx
            for p in range(p_):
                bins[p, codes[m, p]] += xv
        for p in range(p_):  # K_s*N MACs
            for j in range(d):
                acc = np.int64(bias[p * d + j])
                for k in range(ks):
                    acc = wrap_i32(acc + bins[p, k] * (np.int64(codebooks[p, k, j]) - zw))
                out[n, p * d + j] = acc
    return out


def pq_dense_bins(x, codes, codebooks, bias, zx, zw):
    """Bin-accumulate: x int32 (batch, M) -> int32 (batch, N)."""
    return _bins_kernel(*_pq_args(x, codes, codebooks, bias, zx, zw))


def pq_dense_ref(x, codes, codebooks, bias, zx, zw):
    """The reference: the dense int64 product on the reconstructed W, one wrap at the end."""
    x, codes, codebooks, bias, zx, zw = _pq_args(x, codes, codebooks, bias, zx, zw)
    w = pq_reconstruct(codes, codebooks).astype(np.int64)
    acc = (x.astype(np.int64) - zx) @ (w - zw)
    return wrap_i32_ref(acc + bias.astype(np.int64)[None, :])


def compression_rate(m: int, n: int, p: int, ks: int, b: int = 64) -> float:
    """The seed's C_Q = b M N / (b K_s N + log2(K_s) M P): the original b-bit weights against
    the codebooks (K_s x N entries of b bits) plus the codes (log2 K_s bits per row and
    subspace)."""
    if ks < 2 or ks & (ks - 1):
        raise ValueError(f"K_s must be a power of two >= 2, got {ks}")
    return b * m * n / (b * ks * n + (ks.bit_length() - 1) * m * p)
