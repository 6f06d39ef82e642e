"""Requantization of int32 accumulators to output codes: an integer multiplier, an offset and
one rounding right shift per channel, then the output zero point and a saturating clamp.
Everything is exact int64 arithmetic; the only rounding is the final shift."""

import numpy as np
from numba import njit

from . import _checks
from .rounding import round_shift, round_shift_ref


@njit(cache=True)
def _requant_kernel(x, mult, shift, offset, zx, zo, lo, hi, rounding):
    # x: (N, C, S) int32; per-channel params already broadcast to length C.
    n_, c_, s_ = x.shape
    out = np.empty((n_, c_, s_), dtype=np.int32)
    for n in range(n_):
        for c in range(c_):
            m = np.int64(mult[c])
            sh = np.int64(shift[c])
            off = np.int64(offset[c])
            for i in range(s_):
                t = (np.int64(x[n, c, i]) - zx) * m + off
                y = round_shift(t, sh, rounding) + zo
                if y < lo:
                    y = lo
                elif y > hi:
                    y = hi
                out[n, c, i] = y
    return out


def _requant_args(x, mult, shift, offset, zx, zo, lo, hi, rounding):
    x = _checks.int32_tensor(x, "x", min_ndim=2)
    channels = x.shape[1]
    mult = _checks.channel_param(mult, channels, "mult", "int")
    shift = _checks.channel_param(shift, channels, "shift", "int")
    offset = _checks.channel_param(offset, channels, "offset", "int")
    if shift.size and (shift.min() < 0 or shift.max() > _checks.MAX_SHIFT):
        raise ValueError(f"shift must lie in [0, {_checks.MAX_SHIFT}]")
    zx = _checks.scalar_int(zx, "zx")
    zo = _checks.scalar_int(zo, "zo")
    lo, hi = _checks.clamp_range(lo, hi)
    rounding = _checks.rounding_mode(rounding)
    return x, mult, shift, offset, zx, zo, lo, hi, rounding


def requant_i32(x, mult, shift, offset, zx, zo, lo, hi, rounding):
    """q = clamp(round_shift((x - zx) * mult[c] + offset[c], shift[c]) + zo, lo, hi).

    x: int32 (N, C, ...); mult, shift, offset: int64, length 1 or C (channel axis 1);
    zx, zo, lo, hi: ints; rounding: a ROUND_* mode. The product and sum are exact int64 (the
    caller keeps |t| < 2^63). Returns int32 of x's shape."""
    x, mult, shift, offset, zx, zo, lo, hi, rounding = _requant_args(
        x, mult, shift, offset, zx, zo, lo, hi, rounding
    )
    flat = x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:])))
    return _requant_kernel(flat, mult, shift, offset, zx, zo, lo, hi, rounding).reshape(x.shape)


def requant_i32_ref(x, mult, shift, offset, zx, zo, lo, hi, rounding):
    """Vectorised int64 twin of requant_i32."""
    x, mult, shift, offset, zx, zo, lo, hi, rounding = _requant_args(
        x, mult, shift, offset, zx, zo, lo, hi, rounding
    )
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    t = (x.astype(np.int64) - zx) * mult.reshape(bshape) + offset.reshape(bshape)
    y = round_shift_ref(t, shift.reshape(bshape), rounding) + zo
    return np.clip(y, lo, hi).astype(np.int32)
