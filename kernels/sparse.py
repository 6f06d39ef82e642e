"""Zero-skipping kernels for sparse weights, in three storage formats, each equal bit for bit to
the dense kernels (a skipped weight w = zw contributes (x - zx) * 0 = 0, and the int32
accumulator wraps modulo 2^32 whatever the order of its additions).

A layer's weights are a (K, R) matrix: row k is output k (a filter), R the reduction (C for a
Dense layer, C/groups * KH * KW for a convolution, flattened in (c, i, j) order). A weight is
"zero" when its code equals the zero point zw.
- CSR (rows = outputs): indptr (K+1,) int64, indices (nnz,) int32 reduction positions,
  values (nnz,) int32 codes. An output-stationary engine walks one row per output.
- CSC (columns = reduction positions): indptr (R+1,), indices (nnz,) output rows, values. An
  input-stationary engine broadcasts x[c] to the nonzeros of column c.
- N:M (structured): every group of M consecutive reduction positions of a row holds at most N
  nonzeros; stored as values and offsets (K, R/M * N), offset in [0, M) (log2 M bits), unused
  slots holding value zw and offset 0. R must be a multiple of M.
"""

import numpy as np
from numba import njit, prange

from . import _checks
from .conv import _valid_outputs
from .rounding import wrap_i32


# ------------------------------------------------------------------ formats


def _matrix(w, zw):
    w = _checks.int32_tensor(w, "w", ndim=2)
    return w, _checks.scalar_int(zw, "zw")


def csr_from_dense(w, zw=0):
    """(indptr int64 (K+1,), indices int32 (nnz,), values int32 (nnz,)) of the w != zw entries,
    row by row, columns ascending."""
    w, zw = _matrix(w, zw)
    rows, cols = np.nonzero(w != zw)
    indptr = np.zeros(w.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int32), w[rows, cols].astype(np.int32)


def csc_from_dense(w, zw=0):
    """(indptr int64 (R+1,), indices int32 (nnz,) output rows, values int32 (nnz,)), column by
    column, rows ascending."""
    w, zw = _matrix(w, zw)
    indptr, rows, values = csr_from_dense(np.ascontiguousarray(w.T), zw)
    return indptr, rows, values


def nm_from_dense(w, n, m, zw=0):
    """(values int32 (K, R/m*n), offsets int8 (K, R/m*n)) of an n:m-sparse w; ValueError naming
    the first group with more than n nonzeros."""
    w, zw = _matrix(w, zw)
    n = _checks.scalar_int(n, "n", 1, 64)
    m = _checks.scalar_int(m, "m", 1, 64)
    if n > m:
        raise ValueError(f"N:M needs n <= m, got {n}:{m}")
    k_, r_ = w.shape
    if r_ % m:
        raise ValueError(f"the reduction length {r_} is not a multiple of m={m}")
    groups = w.reshape(k_, r_ // m, m)
    nz = groups != zw
    counts = nz.sum(axis=2)
    if counts.size and counts.max() > n:
        k, g = np.unravel_index(int(np.argmax(counts > n)), counts.shape)
        raise ValueError(f"row {k}, group {g} (positions {g * m}..{g * m + m - 1}) has "
                         f"{int(counts[k, g])} nonzeros, more than {n}:{m} allows")
    # stable order: the nonzeros of each group first (ascending), then padding slots
    order = np.argsort(~nz, axis=2, kind="stable")[:, :, :n]
    vals = np.take_along_axis(groups, order, axis=2)
    keep = np.take_along_axis(nz, order, axis=2)
    offsets = np.where(keep, order, 0).astype(np.int8)
    vals = np.where(keep, vals, zw).astype(np.int32)
    return vals.reshape(k_, -1), offsets.reshape(k_, -1)


def dense_from_csr(indptr, indices, values, shape, zw=0):
    """The (K, R) matrix a CSR triple stores (zw elsewhere)."""
    w = np.full(shape, zw, np.int32)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    w[rows, indices] = values
    return w


def dense_from_nm(values, offsets, m, r_, zw=0):
    """The (K, R) matrix an N:M pair stores (R = r_)."""
    k_, slots = values.shape
    groups = r_ // m
    n = slots // groups
    w = np.full((k_, groups, m), zw, np.int32)
    v = values.reshape(k_, groups, n)
    o = offsets.reshape(k_, groups, n).astype(np.int64)
    kk, gg, ss = np.nonzero(v != zw)
    w[kk, gg, o[kk, gg, ss]] = v[kk, gg, ss]
    return w.reshape(k_, r_)


# ------------------------------------------------------------------ dense (FC) kernels


def _fc_args(x, bias, k_, r_, zx, zw):
    """x (N, R) int32 (R = r_, or any when r_ is None), bias (K,) or None, zero points."""
    x = _checks.int32_tensor(x, "x", ndim=2)
    if r_ is not None and x.shape[1] != r_:
        raise ValueError(f"x must have {r_} columns, got {x.shape[1]}")
    if bias is None:
        bias = np.zeros(k_, np.int32)
    bias = _checks.int32_tensor(bias, "bias", ndim=1)
    if bias.shape[0] != k_:
        raise ValueError(f"bias must have length K={k_}, got {bias.shape[0]}")
    return x, bias, _checks.scalar_int(zx, "zx"), _checks.scalar_int(zw, "zw")


def _csr_parts(indptr, indices, values, k_, r_):
    indptr = np.ascontiguousarray(np.asarray(indptr, np.int64))
    indices = _checks.int32_tensor(indices, "indices", ndim=1)
    values = _checks.int32_tensor(values, "values", ndim=1)
    if indptr.shape != (k_ + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0) \
            or indptr[-1] != indices.size or indices.size != values.size:
        raise ValueError("malformed compressed index: indptr must rise from 0 to nnz, with one "
                         "index and one value per nonzero")
    if indices.size and (indices.min() < 0 or indices.max() >= r_):
        raise ValueError(f"indices must lie in [0, {r_})")
    return indptr, indices, values


@njit(cache=True, parallel=True)
def _fc_csr_kernel(x, indptr, indices, values, bias, zx, zw):
    n_ = x.shape[0]
    k_ = indptr.shape[0] - 1
    out = np.empty((n_, k_), np.int32)
    for nk in prange(n_ * k_):
        n = nk // k_
        k = nk - n * k_
        acc = np.int64(bias[k])
        for p in range(indptr[k], indptr[k + 1]):
            acc = wrap_i32(acc + (np.int64(x[n, indices[p]]) - zx) * (np.int64(values[p]) - zw))
        out[n, k] = acc
    return out


def dense_i32_csr(x, indptr, indices, values, bias, zx, zw):
    """Dense layer from CSR weights: acc[n, k] = bias[k] + sum over row k's nonzeros of
    (x[n, c] - zx) * (w - zw). x int32 (N, R); R is taken from x."""
    k_ = len(indptr) - 1
    x, bias, zx, zw = _fc_args(x, bias, k_, None, zx, zw)
    indptr, indices, values = _csr_parts(indptr, indices, values, k_, x.shape[1])
    return _fc_csr_kernel(x, indptr, indices, values, bias, zx, zw)


@njit(cache=True, parallel=True)
def _fc_csc_kernel(x, indptr, rows, values, bias, zx, zw, k_):
    n_ = x.shape[0]
    r_ = indptr.shape[0] - 1
    out = np.empty((n_, k_), np.int32)
    for n in prange(n_):
        acc = np.empty(k_, np.int64)
        for k in range(k_):
            acc[k] = bias[k]
        for c in range(r_):
            xv = np.int64(x[n, c]) - zx
            for p in range(indptr[c], indptr[c + 1]):
                k = rows[p]
                acc[k] = wrap_i32(acc[k] + xv * (np.int64(values[p]) - zw))
        for k in range(k_):
            out[n, k] = acc[k]
    return out


def dense_i32_csc(x, indptr, rows, values, bias, zx, zw, k_):
    """Dense layer from CSC weights (column c lists the outputs its input feeds); K outputs."""
    k_ = _checks.scalar_int(k_, "K", 0)
    r_ = len(indptr) - 1
    x, bias, zx, zw = _fc_args(x, bias, k_, r_, zx, zw)
    indptr, rows, values = _csr_parts(indptr, rows, values, r_, k_)
    return _fc_csc_kernel(x, indptr, rows, values, bias, zx, zw, k_)


@njit(cache=True, parallel=True)
def _fc_nm_kernel(x, values, offsets, m, bias, zx, zw):
    n_ = x.shape[0]
    k_, slots = values.shape
    groups = x.shape[1] // m
    n_per = slots // groups
    out = np.empty((n_, k_), np.int32)
    for nk in prange(n_ * k_):
        n = nk // k_
        k = nk - n * k_
        acc = np.int64(bias[k])
        for g in range(groups):
            for s in range(n_per):
                v = np.int64(values[k, g * n_per + s]) - zw
                if v != 0:  # an unused slot holds zw
                    c = g * m + offsets[k, g * n_per + s]
                    acc = wrap_i32(acc + (np.int64(x[n, c]) - zx) * v)
        out[n, k] = acc
    return out


def _nm_parts(values, offsets, m, r_):
    values = _checks.int32_tensor(values, "values", ndim=2)
    offsets = np.ascontiguousarray(np.asarray(offsets, np.int8))
    m = _checks.scalar_int(m, "m", 1, 64)
    if offsets.shape != values.shape:
        raise ValueError(f"offsets {offsets.shape} and values {values.shape} differ")
    if r_ % m or (r_ and values.shape[1] % (r_ // m)):
        raise ValueError(f"{values.shape[1]} slots per row do not split into the {r_ // m} "
                         f"groups of m={m} of a reduction of {r_}")
    if offsets.size and (offsets.min() < 0 or offsets.max() >= m):
        raise ValueError(f"offsets must lie in [0, {m})")
    return values, offsets, m


def dense_i32_nm(x, values, offsets, m, bias, zx, zw):
    """Dense layer from N:M weights (see the module docstring)."""
    values = _checks.int32_tensor(values, "values", ndim=2)
    k_ = values.shape[0]
    x, bias, zx, zw = _fc_args(x, bias, k_, None, zx, zw)
    values, offsets, m = _nm_parts(values, offsets, m, x.shape[1])
    return _fc_nm_kernel(x, values, offsets, m, bias, zx, zw)


# ------------------------------------------------------------------ convolution from CSR


@njit(cache=True, parallel=True)
def _conv_csr_kernel(x, indptr, indices, values, bias, zx, zw, kh, kw, sh, sw, dh, dw, top,
                     left, groups, cg, oh_n, ow_n):
    n_, _, h_, w_ = x.shape
    k_ = indptr.shape[0] - 1
    kg = k_ // groups
    out = np.empty((n_, k_, oh_n, ow_n), np.int32)
    for nk in prange(n_ * k_):
        n = nk // k_
        k = nk - n * k_
        g = k // kg
        b = bias[k]
        for oh in range(oh_n):
            for ow in range(ow_n):
                out[n, k, oh, ow] = b
        for p in range(indptr[k], indptr[k + 1]):  # the filter's nonzero taps only
            t = indices[p]
            cc = t // (kh * kw)
            i = (t // kw) % kh
            j = t % kw
            c = g * cg + cc
            wv = np.int64(values[p]) - zw
            oh_lo, oh_hi = _valid_outputs(i * dh - top, sh, h_, oh_n)
            ow_lo, ow_hi = _valid_outputs(j * dw - left, sw, w_, ow_n)
            for oh in range(oh_lo, oh_hi):
                ih = oh * sh + i * dh - top
                for ow in range(ow_lo, ow_hi):
                    iw = ow * sw + j * dw - left
                    q = (np.int64(x[n, c, ih, iw]) - zx) * wv
                    out[n, k, oh, ow] = wrap_i32(np.int64(out[n, k, oh, ow]) + q)
    return out


def conv2d_i32_csr(x, w_shape, indptr, indices, values, bias, zx, zw, stride=(1, 1),
                   pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """conv2d_i32 from CSR filters: w_shape (K, C/groups, KH, KW), each filter's nonzero taps
    flattened in (c, i, j) order. Same arguments and result as kernels.conv2d_i32."""
    x = _checks.int32_tensor(x, "x", ndim=4)
    k_, cg, kh, kw = (int(v) for v in w_shape)
    groups = _checks.scalar_int(groups, "groups", 1)
    if x.shape[1] != cg * groups or k_ % groups:
        raise ValueError(f"{x.shape[1]} input channels, filters {tuple(w_shape)} and "
                         f"groups={groups} do not agree")
    if bias is None:
        bias = np.zeros(k_, np.int32)
    bias = _checks.int32_tensor(bias, "bias", ndim=1)
    indptr, indices, values = _csr_parts(indptr, indices, values, k_, cg * kh * kw)
    sh, sw = stride
    dh, dw = dilation
    top, bottom, left, right = pads
    oh_n = (x.shape[2] + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow_n = (x.shape[3] + left + right - dw * (kw - 1) - 1) // sw + 1
    if oh_n < 1 or ow_n < 1:
        raise ValueError("the window does not fit the input")
    return _conv_csr_kernel(x, indptr, indices, values, bias, _checks.scalar_int(zx, "zx"),
                            _checks.scalar_int(zw, "zw"), kh, kw, sh, sw, dh, dw, top, left,
                            groups, cg, oh_n, ow_n)
