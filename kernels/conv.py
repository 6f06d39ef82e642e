"""Grouped, strided, dilated, asymmetrically padded 2-D convolution of int32 codes with an int32
accumulator that wraps modulo 2^32 like a hardware register. Padding holds the input zero-point
code zx, so a padded position contributes exactly 0; 1-D convolution is the case H = KH = 1."""

import numpy as np
from numba import njit, prange

from . import _checks
from ._gemm import CHUNK_BYTES, accumulation_bound, exact_float_dtype
from .rounding import wrap_i32, wrap_i32_ref


@njit(cache=True)
def _valid_outputs(offset, stride, size, n_out):
    """Range [lo, hi) of output indices o with 0 <= o * stride + offset < size, clipped to
    0 <= lo <= hi <= n_out (an empty range sits inside [0, n_out] too)."""
    lo = -(offset // stride)  # ceil(-offset / stride)
    if lo < 0:
        lo = 0
    if lo > n_out:
        lo = n_out
    hi = (size - 1 - offset) // stride + 1
    if hi > n_out:
        hi = n_out
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True, parallel=True)
def _conv2d_kernel(x, w, bias, zx, zw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n):
    n_, _, h_, w_ = x.shape
    k_, cg, kh, kw = w.shape
    kg = k_ // groups
    out = np.empty((n_, k_, oh_n, ow_n), dtype=np.int32)
    # One (image, filter) pair per task; out[n, k] is that filter's accumulator plane.
    for nk in prange(n_ * k_):
        n = nk // k_
        k = nk - n * k_
        g = k // kg
        b = bias[k]
        for oh in range(oh_n):
            for ow in range(ow_n):
                out[n, k, oh, ow] = b
        for cc in range(cg):
            c = g * cg + cc
            for i in range(kh):
                oh_lo, oh_hi = _valid_outputs(i * dh - top, sh, h_, oh_n)
                for j in range(kw):
                    wv = np.int64(w[k, cc, i, j]) - zw
                    ow_lo, ow_hi = _valid_outputs(j * dw - left, sw, w_, ow_n)
                    # Positions outside [lo, hi) read padding (code zx): they add 0.
                    for oh in range(oh_lo, oh_hi):
                        ih = oh * sh + i * dh - top
                        for ow in range(ow_lo, ow_hi):
                            iw = ow * sw + j * dw - left
                            p = (np.int64(x[n, c, ih, iw]) - zx) * wv
                            out[n, k, oh, ow] = wrap_i32(np.int64(out[n, k, oh, ow]) + p)
    return out


def _conv_args(x, w, bias, zx, zw, stride, pads, dilation, groups):
    x = _checks.int32_tensor(x, "x", ndim=4)
    w = _checks.int32_tensor(w, "w", ndim=4)
    n_, c_, h_, w_ = x.shape
    k_, cg, kh, kw = w.shape
    groups = _checks.scalar_int(groups, "groups", 1)
    if c_ % groups or k_ % groups:
        raise ValueError(f"groups={groups} must divide both C={c_} and K={k_}")
    if cg != c_ // groups:
        raise ValueError(
            f"w has {cg} input channels per group, expected C // groups = {c_ // groups}"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be at least 1x1, got {kh}x{kw}")
    if bias is None:
        bias = np.zeros(k_, dtype=np.int32)
    bias = _checks.int32_tensor(bias, "bias", ndim=1)
    if bias.shape[0] != k_:
        raise ValueError(f"bias must have length K={k_}, got {bias.shape[0]}")
    zx = _checks.scalar_int(zx, "zx")
    zw = _checks.scalar_int(zw, "zw")
    sh, sw = _checks.pair(stride, "stride", 1)
    dh, dw = _checks.pair(dilation, "dilation", 1)
    top, bottom, left, right = _checks.pads4(pads)
    oh_n = _checks.out_size(h_, top, bottom, kh, sh, dh, "height")
    ow_n = _checks.out_size(w_, left, right, kw, sw, dw, "width")
    geom = (sh, sw, dh, dw, top, bottom, left, right, groups, oh_n, ow_n)
    return x, w, bias, zx, zw, geom


def conv2d_i32(x, w, bias, zx, zw, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """acc[n,k,oh,ow] = bias[k] + sum_{c in group(k), i, j}
    (xp[n, c, oh*sh + i*dh, ow*sw + j*dw] - zx) * (w[k, c, i, j] - zw), wrapped to int32 after
    every addition (products in int64).

    x: int32 (N, C, H, W); w: int32 (K, C // groups, KH, KW); bias: int32 (K,) or None;
    stride (sh, sw); pads (top, bottom, left, right); dilation (dh, dw). xp is x padded with the
    code zx. OH = (H + top + bottom - dh*(KH-1) - 1) // sh + 1, likewise OW; both must be >= 1."""
    x, w, bias, zx, zw, geom = _conv_args(x, w, bias, zx, zw, stride, pads, dilation, groups)
    sh, sw, dh, dw, top, _, left, _, groups, oh_n, ow_n = geom
    return _conv2d_kernel(x, w, bias, zx, zw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n)


def conv2d_i32_ref(x, w, bias, zx, zw, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                   groups=1):
    """Vectorised twin of conv2d_i32: zero-padded centred input, strided window views, an exact
    int64 tensordot per group, one wrap at the end."""
    x, w, bias, zx, zw, geom = _conv_args(x, w, bias, zx, zw, stride, pads, dilation, groups)
    sh, sw, dh, dw, top, bottom, left, right, groups, oh_n, ow_n = geom
    k_, cg, kh, kw = w.shape
    kg = k_ // groups
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (0, 0), (top, bottom), (left, right)))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh_n, :ow_n]  # (N, C, OH, OW, KH, KW)
    wc = w.astype(np.int64) - zw
    parts = []
    for g in range(groups):
        xg = win[:, g * cg:(g + 1) * cg]
        wg = wc[g * kg:(g + 1) * kg]
        acc = np.tensordot(xg, wg, axes=([1, 4, 5], [1, 2, 3]))  # (N, OH, OW, Kg)
        parts.append(acc.transpose(0, 3, 1, 2))
    acc = np.concatenate(parts, axis=1) + bias.astype(np.int64)[None, :, None, None]
    return wrap_i32_ref(acc)


@njit(cache=True)
def im2col_fill(x, n, c, i, j, zx, sh, sw, dh, dw, top, left, oh_n, ow_n, row, base):
    """row[base + oh*OW + ow] = xp[n, c, oh*sh + i*dh - top, ow*sw + j*dw - left] - zx, i.e.
    one reduction row (channel c, tap (i, j)) of one image's im2col; padding gives 0."""
    h_, w_ = x.shape[2], x.shape[3]
    oh_lo, oh_hi = _valid_outputs(i * dh - top, sh, h_, oh_n)
    ow_lo, ow_hi = _valid_outputs(j * dw - left, sw, w_, ow_n)
    for oh in range(oh_n):
        dst = base + oh * ow_n
        if oh < oh_lo or oh >= oh_hi:
            for ow in range(ow_n):
                row[dst + ow] = 0
            continue
        ih = oh * sh + i * dh - top
        for ow in range(ow_lo):
            row[dst + ow] = 0
        for ow in range(ow_lo, ow_hi):
            row[dst + ow] = np.int64(x[n, c, ih, ow * sw + j * dw - left]) - zx
        for ow in range(ow_hi, ow_n):
            row[dst + ow] = 0


@njit(cache=True, parallel=True)
def _im2col(x, n0, nb, zx, kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n, cols):
    """Fill cols[g, (c'*KH + i)*KW + j, (n - n0)*OH*OW + oh*OW + ow] with xp[n, c, ih, iw] - zx
    for the images n0 .. n0 + nb - 1 (c = g*Cg + c'); padding gives 0. Rows run over the
    reduction, columns over output positions, so the innermost loop reads and writes along W.
    Parallel over reduction rows."""
    c_ = x.shape[1]
    cg = c_ // groups
    taps = kh * kw
    plane = oh_n * ow_n
    for row in prange(c_ * taps):
        c = row // taps
        t = row - c * taps
        i = t // kw
        j = t - i * kw
        g = c // cg
        r = row - g * cg * taps
        for nn in range(nb):
            im2col_fill(x, n0 + nn, c, i, j, zx, sh, sw, dh, dw, top, left, oh_n, ow_n,
                        cols[g, r], nn * plane)


def conv2d_i32_gemm(x, w, bias, zx, zw, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1):
    """conv2d_i32 through im2col and a float matrix product (BLAS); the same bits.

    Exactness: every term (x - zx) * (w - zw) and every partial sum of a dot product is an
    integer of magnitude at most bound = max|x - zx| * max_k sum|w_k - zw| + max|bias|. With
    bound < 2^24 (float32) or < 2^53 (float64) each such integer is representable, so no
    operation of the product rounds in any summation order or blocking the BLAS may choose; the
    float result converts to the exact int64 sum, the bias is added in int64, and wrapping once
    equals wrapping at every step (addition modulo 2^32 is associative). If bound >= 2^53 this
    falls back to conv2d_i32. The batch is processed in chunks so that the im2col buffer stays
    below about 64 MiB."""
    x, w, bias, zx, zw, geom = _conv_args(x, w, bias, zx, zw, stride, pads, dilation, groups)
    sh, sw, dh, dw, top, _, left, _, groups, oh_n, ow_n = geom
    n_, c_ = x.shape[:2]
    k_, cg, kh, kw = w.shape
    kg = k_ // groups
    bound = accumulation_bound(x, zx, w.reshape(k_, -1), zw, bias)
    ftype = exact_float_dtype(bound)
    if ftype is None:
        return _conv2d_kernel(x, w, bias, zx, zw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n)
    taps = cg * kh * kw
    plane = oh_n * ow_n
    wmat = (w.astype(np.int64) - zw).astype(ftype).reshape(groups, kg, taps)
    per_image = c_ * kh * kw * plane * np.dtype(ftype).itemsize
    chunk = max(1, CHUNK_BYTES // max(per_image, 1))
    out = np.empty((n_, k_, oh_n, ow_n), dtype=np.int32)
    for n0 in range(0, n_, chunk):
        nb = min(chunk, n_ - n0)
        cols = np.empty((groups, taps, nb * plane), dtype=ftype)
        _im2col(x, n0, nb, zx, kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n, cols)
        acc = np.matmul(wmat, cols)  # (G, Kg, nb*OH*OW), exact integers
        _add_bias_wrap(acc, bias, n0, out.reshape(n_, k_, plane))
    return out


@njit(cache=True)
def _add_bias_wrap(acc, bias, n0, out):
    """out[n0 + n, g*Kg + k, p] = wrap_i32(acc[g, k, n*P + p] + bias): the exact float sums
    converted to int64 (no rounding: they are integers), biased and wrapped once."""
    groups, kg, cols = acc.shape
    plane = out.shape[2]
    for gk in range(groups * kg):  # memory-bound: one thread
        g = gk // kg
        k = gk - g * kg
        b = np.int64(bias[gk])
        for col in range(cols):
            nn = col // plane
            out[n0 + nn, gk, col - nn * plane] = wrap_i32(np.int64(acc[g, k, col]) + b)
