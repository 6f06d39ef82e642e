"""Building blocks of the fused GEMM path: a serial im2col into a caller's float buffer and one
epilogue that turns exact float partial sums into int32 accumulators, optionally requantizes
them and max-pools the result, without materialising the intermediate tensors.

Both release the GIL (nogil) and are single-threaded, so a caller can run several of them at
once on disjoint image or filter ranges from Python threads while BLAS works on its own part.
Their semantics are those of conv2d_i32 -> requant_i32 -> maxpool2d_i32; amchw.ir.fast checks
them against the reference interpreter in the tests."""

import numpy as np
from numba import njit

from .modes import ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP
from .conv import im2col_fill
from .pool import maxpool_plane


@njit(cache=True, nogil=True)
def im2col_chunk(x, n0, nb, zx, kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n, cols):
    """cols[g, (c'*KH + i)*KW + j, (n - n0)*OH*OW + oh*OW + ow] = xp[n, c, ih, iw] - zx for the
    images n0 .. n0+nb-1 (c = g*Cg + c'); positions in the padding give 0. x: int32 (N, C, H, W);
    cols: float (G, Cg*KH*KW, >= nb*OH*OW). The serial twin of conv._im2col (same rows)."""
    c_ = x.shape[1]
    cg = c_ // groups
    taps = kh * kw
    plane = oh_n * ow_n
    for nn in range(nb):
        for c in range(c_):
            g = c // cg
            cc = c - g * cg
            for i in range(kh):
                for j in range(kw):
                    im2col_fill(x, n0 + nn, c, i, j, zx, sh, sw, dh, dw, top, left, oh_n, ow_n,
                                cols[g, cc * taps + i * kw + j], nn * plane)


@njit(cache=True, inline="always")
def _rounding_consts(s, mode):
    """(c, e, a) with round_shift(t, s, mode) == (t >> s) + ((low + c + ((t >> s) & e) -
    a*(t < 0)) >> s) for low = t - ((t >> s) << s) in [0, 2^s): a branch-free form. The inner
    sum stays in [-1, 2^(s+1)), so the second shift is 0 or 1 and nothing overflows."""
    if s == 0:
        return np.int64(0), np.int64(0), np.int64(0)
    half = np.int64(1) << (s - 1)
    if mode == ROUND_HALF_EVEN:
        return half - 1, np.int64(1), np.int64(0)
    if mode == ROUND_HALF_UP:
        return half, np.int64(0), np.int64(0)
    if mode == ROUND_HALF_AWAY:
        return half, np.int64(0), np.int64(1)
    return np.int64(0), np.int64(0), np.int64(0)  # ROUND_FLOOR


@njit(cache=True, nogil=True, error_model="numpy")
def gemm_epilogue(acc, bias, kk0, n0, oh_n, ow_n, has_rq, mult, shift, offset, zx, zo, lo, hi,
                  rounding, has_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, out):
    """Finish a fused Conv/Dense [-> Requant [-> MaxPool]] chain for a block of images/filters.

    acc: float (B, G, Kg', nb*OH*OW): B partial sums over disjoint reduction blocks, each an
    exact integer, for the filters k = g*Kg + kk0 + kk (kk < Kg') and images n0 .. n0+nb-1.
    a = wrap_i32(sum_b acc[b] + bias[k]) is the conv2d_i32 accumulator (exact: the block sums
    are integers and the int64 sum is wrapped once, which equals wrapping at every step).
    With has_rq, q = clamp(round_shift((a - zx)*mult[k] + offset[k], shift[k]) + zo, lo, hi)
    (requant_i32, mult/shift/offset of length K); otherwise q = a. With has_pool, q's
    (OH, OW) plane is max-pooled (window pkh x pkw, stride, dilation, padding top/left,
    padded positions excluded: maxpool2d_i32) into out[n, k]; otherwise out[n, k] = q.
    out: int32 (N, K, OH2, OW2). The inner loops are branch-free so that they vectorise."""
    nblk, groups, kgs, cols = acc.shape
    k_total = out.shape[1]
    kg = k_total // groups
    plane = oh_n * ow_n
    nb = cols // plane
    poh_n = out.shape[2]
    pow_n = out.shape[3]
    # a 1-D pool with non-overlapping windows and no padding takes a simple path
    simple_pool = (has_pool and oh_n == 1 and poh_n == 1 and pkh == 1 and psw == pkw
                   and pdw == 1 and pleft == 0 and pow_n * pkw <= ow_n)
    tmp = np.empty(plane, dtype=np.int64)
    lo64 = np.int64(lo)
    hi64 = np.int64(hi)
    for nn in range(nb):
        base = nn * plane
        n = n0 + nn
        for g in range(groups):
            for kk in range(kgs):
                k = g * kg + kk0 + kk
                b = np.int64(bias[k]) + np.int64(2**31)
                if nblk == 1:
                    for p in range(plane):
                        tmp[p] = np.int64(acc[0, g, kk, base + p])
                else:
                    for p in range(plane):
                        tmp[p] = 0
                    for blk in range(nblk):
                        for p in range(plane):
                            tmp[p] += np.int64(acc[blk, g, kk, base + p])
                # wrap to int32: ((t + b + 2^31) mod 2^32) - 2^31
                for p in range(plane):
                    tmp[p] = ((tmp[p] + b) & np.int64(0xFFFFFFFF)) - np.int64(2**31)
                if has_rq:
                    m = np.int64(mult[k])
                    sh = np.int64(shift[k])
                    off = np.int64(offset[k]) - np.int64(zx) * m
                    c, e, a = _rounding_consts(sh, rounding)
                    for p in range(plane):
                        t = tmp[p] * m + off
                        q = t >> sh
                        low = t - (q << sh)
                        neg = np.int64(t < 0)
                        v = q + ((low + c + (q & e) - a * neg) >> sh) + zo
                        v = max(v, lo64)
                        tmp[p] = min(v, hi64)
                if not has_pool:
                    for oh in range(oh_n):
                        for ow in range(ow_n):
                            out[n, k, oh, ow] = tmp[oh * ow_n + ow]
                elif simple_pool:
                    for ow in range(pow_n):
                        j0 = ow * pkw
                        mx = tmp[j0]
                        for j in range(1, pkw):
                            mx = max(mx, tmp[j0 + j])
                        out[n, k, 0, ow] = mx
                else:
                    maxpool_plane(tmp.reshape(oh_n, ow_n), pkh, pkw, psh, psw, pdh, pdw, ptop,
                                  pleft, out[n, k])


@njit(cache=True, nogil=True)
def dense_acc_small(xc, w, acc):
    """acc[0, 0, k, n] = sum_r w[k, r] * xc[n, r] in int32, for a few images (small n): the
    weights are read once, as int16 codes, instead of as floats. xc: int16 (n, R) centred
    inputs; w: int16 (K, R) centred weights; acc: int32 (1, 1, K, n). The caller guarantees
    that every partial sum fits int32 (the validator's accumulator bound), so no step wraps."""
    k_, r_ = w.shape
    nb = xc.shape[0]
    for k in range(k_):
        for n in range(nb):
            s = np.int32(0)
            for r in range(r_):
                s += np.int32(w[k, r]) * np.int32(xc[n, r])
            acc[0, 0, k, n] = s


@njit(cache=True, nogil=True)
def dense_cols(x, n0, nb, zx, cols):
    """cols[0, c, n - n0] = x[n, c] - zx for the images n0 .. n0+nb-1: a Dense layer's
    im2col (a transpose with the zero point taken off), in tiles of 32 x 32 so that both the
    reads and the writes stay in cache. x: int32 (N, C); cols: float (1, C, >= nb). The same
    values as im2col_chunk with a 1 x 1 window on (N, C, 1, 1)."""
    c_ = x.shape[1]
    t = 32
    for c0 in range(0, c_, t):
        c1 = min(c0 + t, c_)
        for m0 in range(0, nb, t):
            m1 = min(m0 + t, nb)
            for c in range(c0, c1):
                for m in range(m0, m1):
                    cols[0, c, m] = np.int64(x[n0 + m, c]) - zx
