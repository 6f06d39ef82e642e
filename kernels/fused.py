"""Building blocks of the fused GEMM path: a serial im2col into a caller's float buffer and one
epilogue that turns exact float partial sums into int32 accumulators, optionally requantizes
them and max-pools the result, without materialising the intermediate tensors.

Both release the GIL (nogil) and are single-threaded, so a caller can run several of them at
once on disjoint image or filter ranges from Python threads while BLAS works on its own part.
Their semantics are those of conv2d_i32 -> requant_i32 -> maxpool2d_i32; amchw.ir.fast checks
them against the reference interpreter in the tests."""

import numpy as np
from numba import njit

from .modes import ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP
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


@njit(cache=True, inline="always")
def _sum_rows(acc, g, kk, base, plane, bias, tmp):
    """tmp[p] = wrap_i32(bias + sum over blocks b of acc[b, g, kk, base + p]), tmp int64 or
    int32 (views with 0-based loops, so that the loops vectorise). The block sums are exact
    integers, so wrapping the int64 total once equals wrapping after every addition."""
    nblk = acc.shape[0]
    b = bias + np.int64(2**31)
    mask = np.int64(0xFFFFFFFF)
    if nblk == 1:
        row = acc[0, g, kk, base:base + plane]
        for p in range(plane):
            tmp[p] = ((np.int64(row[p]) + b) & mask) - np.int64(2**31)
        return
    for p in range(plane):
        t = np.int64(0)
        for blk in range(nblk):
            t += np.int64(acc[blk, g, kk, base + p])
        # wrap to int32: ((t + b + 2^31) mod 2^32) - 2^31
        tmp[p] = ((t + b) & mask) - np.int64(2**31)


@njit(cache=True, nogil=True, error_model="numpy")
def gemm_epilogue(acc, bias, kk0, n0, oh_n, ow_n, has_rq, mult, shift, offset, zx, zo, lo, hi,
                  rounding, has_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, out, fq, nb=-1,
                  kgs=-1):
    """Finish a fused Conv/Dense [-> Requant [-> MaxPool]] chain for a block of images/filters.

    acc: (B, G, Kg', >= nb*OH*OW), float or integer: B partial sums over disjoint reduction
    blocks, each an exact integer, for the filters k = g*Kg + kk0 + kk (kk < kgs) and images
    n0 .. n0+nb-1 (nb = columns // (OH*OW) and kgs = Kg' unless given: a caller whose buffer
    has padding columns or filters names the real counts).
    a = wrap_i32(sum_b acc[b] + bias[k]) is the conv2d_i32 accumulator (exact: the block sums
    are integers and the int64 sum is wrapped once, which equals wrapping at every step).
    With has_rq, q = clamp(round_shift((a - zx)*mult[k] + offset[k], shift[k]) + zo, lo, hi)
    (requant_i32, mult/shift/offset of length K); otherwise q = a. With has_pool, q's
    (OH, OW) plane is max-pooled (window pkh x pkw, stride, dilation, padding top/left,
    padded positions excluded: maxpool2d_i32) into out[n, k]; otherwise out[n, k] = q.
    out: int32 (N, K, OH2, OW2). The inner loops are branch-free so that they vectorise.
    fq: requant_f32_params(...) for this requantization: with K columns, the requantization
    runs in float32 lanes (exact, see there); with 0 columns, in int64."""
    groups = acc.shape[1]
    if kgs < 0:
        kgs = acc.shape[2]
    k_total = out.shape[1]
    kg = k_total // groups
    plane = oh_n * ow_n
    if nb < 0:
        nb = acc.shape[3] // plane
    poh_n = out.shape[2]
    pow_n = out.shape[3]
    # a 1-D pool with non-overlapping windows and no padding takes a simple path
    simple_pool = (has_pool and oh_n == 1 and poh_n == 1 and pkh == 1 and psw == pkw
                   and pdw == 1 and pleft == 0 and pow_n * pkw <= ow_n)
    tmp = np.empty(plane, dtype=np.int64)
    ptmp = np.empty((poh_n, pow_n), dtype=np.int64)
    pflat = ptmp.reshape(-1)
    use_f32 = has_rq and fq.shape[1] > 0
    tmp32 = np.empty(plane, dtype=np.int32)
    ptmp32 = np.empty((poh_n, pow_n), dtype=np.int32)
    pflat32 = ptmp32.reshape(-1)
    for nn in range(nb):
        base = nn * plane
        n = n0 + nn
        for g in range(groups):
            for kk in range(kgs):
                k = g * kg + kk0 + kk
                dst = out[n, k]
                if use_f32 and not has_pool and acc.shape[0] == 1:
                    _rows_f32(acc[0, g, kk, base:base + plane], bias[k], oh_n, ow_n, fq, k, zo,
                              lo, hi, rounding, dst)
                    continue
                if use_f32:  # multiplier > 0 here: pool first, then requantize
                    _sum_rows(acc, g, kk, base, plane, np.int64(bias[k]), tmp32)
                    if has_pool:
                        _pool_into(tmp32, oh_n, ow_n, simple_pool, pkh, pkw, psh, psw, pdh, pdw,
                                   ptop, pleft, ptmp32)
                        _requant_f32(pflat32, fq, k, zo, lo, hi, rounding)
                        _store(pflat32, poh_n, pow_n, dst)
                    else:
                        _requant_f32(tmp32, fq, k, zo, lo, hi, rounding)
                        _store(tmp32, oh_n, ow_n, dst)
                    continue
                _sum_rows(acc, g, kk, base, plane, np.int64(bias[k]), tmp)
                m = np.int64(mult[k]) if has_rq else np.int64(0)
                # requantization is monotone for a multiplier >= 0, so it commutes with max:
                # pool the accumulators first and requantize the fewer pooled values
                if has_pool and (not has_rq or m >= 0):
                    _pool_into(tmp, oh_n, ow_n, simple_pool, pkh, pkw, psh, psw, pdh, pdw, ptop,
                               pleft, ptmp)
                    if has_rq:
                        _requant_inplace(pflat, m, shift[k], offset[k], zx, zo, lo, hi,
                                         rounding)
                    _store(pflat, poh_n, pow_n, dst)
                else:
                    if has_rq:
                        _requant_inplace(tmp, m, shift[k], offset[k], zx, zo, lo, hi, rounding)
                    if has_pool:
                        _pool_into(tmp, oh_n, ow_n, simple_pool, pkh, pkw, psh, psw, pdh, pdw,
                                   ptop, pleft, ptmp)
                        _store(pflat, poh_n, pow_n, dst)
                    else:
                        _store(tmp, oh_n, ow_n, dst)


F32_EXACT = 2**24


def requant_f32_params(mult, shift, offset, zx, zo, lo, hi) -> np.ndarray:
    """The float32 form of a requantization, as a float64 (6, K) array of rows (a_lo, a_hi, m,
    off, half, 2^-shift) per channel, or a (6, 0) array where that form would not be exact.

    For a multiplier m > 0, R(a) = round_shift(a*m + off, s) + zo with off = offset - zx*m is
    monotone in a, so clamp(R(a), lo, hi) = clamp(R(a'), lo, hi) for a' = clamp(a, a_lo,
    a_hi) with
        a_lo = floor(((lo - zo - 1)*2^s - off) / m)   (R(a_lo) <= lo - 1),
        a_hi = ceil(((hi - zo + 1)*2^s - off) / m)    (R(a_hi) >= hi + 1).
    Over [a_lo, a_hi] every value the requantization forms (a', m, off, t = a'*m + off and
    t + 2^(s-1)) is an integer below 2^24 in magnitude when the bound checked here holds, so
    float32 holds each exactly; t * 2^-s is exact (a power of two), and rint / floor of an
    exact value are exact. _requant_f32 rounds t * 2^-s as round_shift does: rint for
    half_even, floor for floor, floor((t + 2^(s-1)) * 2^-s) for half_up, and that of |t| with
    t's sign for half_away."""
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    offset = np.asarray(offset, dtype=np.int64)
    k_ = mult.shape[0]
    none = np.zeros((6, 0))
    if k_ == 0 or int(mult.min()) <= 0 or int(shift.max()) > 100:
        return none
    rows = np.zeros((6, k_))
    for k in range(k_):
        m, s = int(mult[k]), int(shift[k])
        off = int(offset[k]) - int(zx) * m
        a_lo = ((int(lo) - int(zo) - 1) * 2**s - off) // m
        a_hi = -((-((int(hi) - int(zo) + 1) * 2**s - off)) // m)
        t_max = max(abs(a_lo * m + off), abs(a_hi * m + off))
        half = 2 ** (s - 1) if s > 0 else 0
        if (max(abs(a_lo), abs(a_hi), m, abs(off), abs(int(zo)), abs(int(lo)), abs(int(hi)),
                t_max + half, abs(a_lo * m), abs(a_hi * m)) >= F32_EXACT):
            return none
        rows[:, k] = (a_lo, a_hi, m, off, half, 2.0 ** -s)
    return rows


@njit(cache=True, inline="always")
def _rq_f32(a, a_lo, a_hi, m, off, half, sc, z, flo, fhi, rounding):
    """One code: clamp(round_shift(a*m + off, s) + zo, lo, hi) in float32 lanes (a int32;
    the other arguments float32 or int32 as requant_f32_params makes them)."""
    t = np.float32(min(max(a, a_lo), a_hi)) * m + off
    if rounding == ROUND_HALF_EVEN:
        v = np.rint(t * sc)
    elif rounding == ROUND_HALF_UP:
        v = np.floor((t + half) * sc)
    elif rounding == ROUND_HALF_AWAY:
        v = np.copysign(np.floor((np.abs(t) + half) * sc), t)
    else:
        v = np.floor(t * sc)
    return np.int32(min(max(v + z, flo), fhi))


@njit(cache=True, inline="always")
def _requant_f32(buf, fq, k, zo, lo, hi, rounding):
    """buf[p] = clamp(round_shift(a*m + off, s) + zo, lo, hi) for the int32 accumulators
    buf[p], in float32 lanes (requant_f32_params gives fq and says why it is exact)."""
    a_lo, a_hi = np.int32(fq[0, k]), np.int32(fq[1, k])
    m, off, half, sc = np.float32(fq[2, k]), np.float32(fq[3, k]), np.float32(fq[4, k]), \
        np.float32(fq[5, k])
    z, flo, fhi = np.float32(zo), np.float32(lo), np.float32(hi)
    for p in range(buf.size):
        buf[p] = _rq_f32(buf[p], a_lo, a_hi, m, off, half, sc, z, flo, fhi, rounding)


@njit(cache=True, inline="always")
def _rows_f32(row, bias, oh_n, ow_n, fq, k, zo, lo, hi, rounding, dst):
    """dst[oh, ow] = the float32-lane requantization of wrap_i32(row[oh*ow_n + ow] + bias):
    one pass from a single block's sums to the output plane."""
    a_lo, a_hi = np.int32(fq[0, k]), np.int32(fq[1, k])
    m, off, half, sc = np.float32(fq[2, k]), np.float32(fq[3, k]), np.float32(fq[4, k]), \
        np.float32(fq[5, k])
    z, flo, fhi = np.float32(zo), np.float32(lo), np.float32(hi)
    b = np.int64(bias)
    for oh in range(oh_n):
        src = row[oh * ow_n:(oh + 1) * ow_n]
        d = dst[oh]
        # one loop per rounding mode, each with the mode a constant (no branch inside)
        if rounding == ROUND_HALF_EVEN:
            for ow in range(ow_n):
                a = np.int32(np.int64(src[ow]) + b)  # wraps to int32
                d[ow] = _rq_f32(a, a_lo, a_hi, m, off, half, sc, z, flo, fhi, ROUND_HALF_EVEN)
        elif rounding == ROUND_HALF_UP:
            for ow in range(ow_n):
                a = np.int32(np.int64(src[ow]) + b)
                d[ow] = _rq_f32(a, a_lo, a_hi, m, off, half, sc, z, flo, fhi, ROUND_HALF_UP)
        elif rounding == ROUND_HALF_AWAY:
            for ow in range(ow_n):
                a = np.int32(np.int64(src[ow]) + b)
                d[ow] = _rq_f32(a, a_lo, a_hi, m, off, half, sc, z, flo, fhi, ROUND_HALF_AWAY)
        else:
            for ow in range(ow_n):
                a = np.int32(np.int64(src[ow]) + b)
                d[ow] = _rq_f32(a, a_lo, a_hi, m, off, half, sc, z, flo, fhi, ROUND_FLOOR)


@njit(cache=True, inline="always")
def _requant_inplace(buf, m, shift, offset, zx, zo, lo, hi, rounding):
    """buf[p] = clamp(round_shift((buf[p] - zx)*m + offset, shift) + zo, lo, hi)
    (requant_i32 on int64 values that fit int32), branch-free."""
    sh = np.int64(shift)
    off = np.int64(offset) - np.int64(zx) * m
    c, e, a = _rounding_consts(sh, rounding)
    lo64 = np.int64(lo)
    hi64 = np.int64(hi)
    z = np.int64(zo)
    for p in range(buf.size):
        t = buf[p] * m + off
        q = t >> sh
        low = t - (q << sh)
        neg = np.int64(t < 0)
        v = q + ((low + c + (q & e) - a * neg) >> sh) + z
        buf[p] = min(max(v, lo64), hi64)


@njit(cache=True, inline="always")
def _pool_into(tmp, oh_n, ow_n, simple_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, ptmp):
    """ptmp = maxpool2d of the (oh_n, ow_n) plane tmp (maxpool2d_i32's windows)."""
    pow_n = ptmp.shape[1]
    if simple_pool and pkw == 2:
        row = ptmp[0]
        for ow in range(pow_n):
            row[ow] = max(tmp[2 * ow], tmp[2 * ow + 1])
    elif simple_pool:
        row = ptmp[0]
        for ow in range(pow_n):
            j0 = ow * pkw
            mx = tmp[j0]
            for j in range(1, pkw):
                mx = max(mx, tmp[j0 + j])
            row[ow] = mx
    else:
        maxpool_plane(tmp.reshape(oh_n, ow_n), pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, ptmp)


@njit(cache=True, inline="always")
def _store(src, oh_n, ow_n, dst):
    """dst[oh, ow] = src[oh*ow_n + ow] (dst: an int32 plane, any strides)."""
    for oh in range(oh_n):
        r = dst[oh]
        for ow in range(ow_n):
            r[ow] = src[oh * ow_n + ow]


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
