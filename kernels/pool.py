"""Pooling on int32 codes. Max pooling ignores padded positions (as if they held -inf); sum and
average pooling pad with the zero-point code zx (a padded position adds 0) and the average
divides by the full window size KH*KW, padding included, with an explicit rounding mode."""

import numpy as np
from numba import njit

from . import _checks
from .rounding import round_div, round_div_ref, wrap_i32, wrap_i32_ref


def _pool_geometry(x, kernel, stride, pads, dilation):
    kh, kw = _checks.pair(kernel, "kernel", 1)
    sh, sw = _checks.pair(stride, "stride", 1)
    dh, dw = _checks.pair(dilation, "dilation", 1)
    top, bottom, left, right = _checks.pads4(pads)
    h_, w_ = x.shape[2:]
    oh_n = _checks.out_size(h_, top, bottom, kh, sh, dh, "height")
    ow_n = _checks.out_size(w_, left, right, kw, sw, dw, "width")
    return kh, kw, sh, sw, dh, dw, top, bottom, left, right, oh_n, ow_n


def _check_windows_nonempty(size, n_out, k, stride, dilation, pad_a, axis):
    """Every output window along one axis must cover at least one real input position."""
    pos = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * dilation - pad_a
    inside = ((pos >= 0) & (pos < size)).any(axis=1)
    if not inside.all():
        first = int(np.argmin(inside))
        raise ValueError(f"{axis}: max-pool window {first} covers padding only")


@njit(cache=True)
def maxpool_plane(src, kh, kw, sh, sw, dh, dw, top, left, dst):
    """dst[oh, ow] = max of src (H, W) over the dilated window at (oh*sh - top, ow*sw - left),
    padded positions excluded (every window must hold a real element)."""
    h_, w_ = src.shape
    oh_n, ow_n = dst.shape
    for oh in range(oh_n):
        for ow in range(ow_n):
            found = False
            m = src[0, 0]
            for i in range(kh):
                ih = oh * sh + i * dh - top
                if ih < 0 or ih >= h_:
                    continue
                for j in range(kw):
                    iw = ow * sw + j * dw - left
                    if iw < 0 or iw >= w_:
                        continue
                    v = src[ih, iw]
                    if not found or v > m:
                        m = v
                        found = True
            dst[oh, ow] = m


@njit(cache=True)
def _maxpool_kernel(x, kh, kw, sh, sw, dh, dw, top, left, oh_n, ow_n):
    n_, c_ = x.shape[:2]
    out = np.empty((n_, c_, oh_n, ow_n), dtype=np.int32)
    for n in range(n_):
        for c in range(c_):
            maxpool_plane(x[n, c], kh, kw, sh, sw, dh, dw, top, left, out[n, c])
    return out


def _maxpool_args(x, kernel, stride, pads, dilation):
    x = _checks.int32_tensor(x, "x", ndim=4)
    geom = _pool_geometry(x, kernel, stride, pads, dilation)
    kh, kw, sh, sw, dh, dw, top, _, left, _, oh_n, ow_n = geom
    _check_windows_nonempty(x.shape[2], oh_n, kh, sh, dh, top, "height")
    _check_windows_nonempty(x.shape[3], ow_n, kw, sw, dw, left, "width")
    return x, geom


def maxpool2d_i32(x, kernel, stride=None, pads=(0, 0, 0, 0), dilation=(1, 1)):
    """Max over each (dilated) window of x int32 (N, C, H, W); padded positions are excluded.
    stride defaults to the kernel size; output size as in conv2d_i32; every window must hold at
    least one real element."""
    stride = kernel if stride is None else stride
    x, geom = _maxpool_args(x, kernel, stride, pads, dilation)
    kh, kw, sh, sw, dh, dw, top, _, left, _, oh_n, ow_n = geom
    return _maxpool_kernel(x, kh, kw, sh, sw, dh, dw, top, left, oh_n, ow_n)


def maxpool2d_i32_ref(x, kernel, stride=None, pads=(0, 0, 0, 0), dilation=(1, 1)):
    """Vectorised twin of maxpool2d_i32: pad with a value below every int32, window max."""
    stride = kernel if stride is None else stride
    x, geom = _maxpool_args(x, kernel, stride, pads, dilation)
    kh, kw, sh, sw, dh, dw, top, bottom, left, right, oh_n, ow_n = geom
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (top, bottom), (left, right)),
                constant_values=-(2**40))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh_n, :ow_n]
    return win.max(axis=(4, 5)).astype(np.int32)


@njit(cache=True)
def _sumpool_kernel(x, kh, kw, sh, sw, top, left, oh_n, ow_n, zx):
    """Window sums of x - zx in an int32 accumulator wrapped after every addition."""
    n_, c_, h_, w_ = x.shape
    out = np.empty((n_, c_, oh_n, ow_n), dtype=np.int32)
    for n in range(n_):
        for c in range(c_):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    acc = np.int64(0)
                    for i in range(kh):
                        ih = oh * sh + i - top
                        if ih < 0 or ih >= h_:
                            continue  # padding row: code zx adds 0
                        for j in range(kw):
                            iw = ow * sw + j - left
                            if iw < 0 or iw >= w_:
                                continue
                            acc = wrap_i32(acc + (np.int64(x[n, c, ih, iw]) - zx))
                    out[n, c, oh, ow] = acc
    return out


@njit(cache=True)
def _avgpool_kernel(sums, count, zx, rounding):
    n_, c_, oh_n, ow_n = sums.shape
    out = np.empty((n_, c_, oh_n, ow_n), dtype=np.int32)
    for n in range(n_):
        for c in range(c_):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    q = round_div(np.int64(sums[n, c, oh, ow]), count, rounding)
                    out[n, c, oh, ow] = wrap_i32(q + zx)
    return out


def _sumpool_args(x, kernel, stride, pads, zx):
    x = _checks.int32_tensor(x, "x", ndim=4)
    stride = kernel if stride is None else stride
    geom = _pool_geometry(x, kernel, stride, pads, (1, 1))
    zx = _checks.scalar_int(zx, "zx")
    return x, geom, zx


def sumpool2d_i32(x, kernel, stride=None, pads=(0, 0, 0, 0), zx=0):
    """int32 (wrapping) sum of x - zx over each window of x int32 (N, C, H, W); padded
    positions hold the code zx and add 0. stride defaults to the kernel size."""
    x, geom, zx = _sumpool_args(x, kernel, stride, pads, zx)
    kh, kw, sh, sw, _, _, top, _, left, _, oh_n, ow_n = geom
    return _sumpool_kernel(x, kh, kw, sh, sw, top, left, oh_n, ow_n, zx)


def sumpool2d_i32_ref(x, kernel, stride=None, pads=(0, 0, 0, 0), zx=0):
    """Vectorised twin of sumpool2d_i32: exact int64 window sums, one wrap at the end."""
    x, geom, zx = _sumpool_args(x, kernel, stride, pads, zx)
    kh, kw, sh, sw, _, _, top, bottom, left, right, oh_n, ow_n = geom
    xp = np.pad(x.astype(np.int64) - zx, ((0, 0), (0, 0), (top, bottom), (left, right)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::sh, ::sw][:, :, :oh_n, :ow_n]
    return wrap_i32_ref(win.sum(axis=(4, 5)))


def avgpool2d_i32(x, kernel, stride=None, pads=(0, 0, 0, 0), zx=0, rounding=0):
    """round_div(S, KH*KW, rounding) + zx wrapped to int32, where S is sumpool2d_i32's window sum
    (the count includes padding). A global average pool is kernel = (H, W)."""
    rounding = _checks.rounding_mode(rounding)
    sums = sumpool2d_i32(x, kernel, stride, pads, zx)
    kh, kw = _checks.pair(kernel, "kernel", 1)
    return _avgpool_kernel(sums, np.int64(kh * kw), np.int64(zx), rounding)


def avgpool2d_i32_ref(x, kernel, stride=None, pads=(0, 0, 0, 0), zx=0, rounding=0):
    """Vectorised twin of avgpool2d_i32."""
    rounding = _checks.rounding_mode(rounding)
    sums = sumpool2d_i32_ref(x, kernel, stride, pads, zx).astype(np.int64)
    kh, kw = _checks.pair(kernel, "kernel", 1)
    return wrap_i32_ref(round_div_ref(sums, kh * kw, rounding) + zx)
