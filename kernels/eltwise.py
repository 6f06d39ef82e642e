"""Elementwise addition of two quantized tensors with per-tensor integer rescaling:
q = clamp(round_shift((a - za)*ma + (b - zb)*mb + offset, shift) + zo, lo, hi), exact int64."""

import numpy as np
from numba import njit

from . import _checks
from .rounding import round_shift, round_shift_ref

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@njit(cache=True)
def _add_kernel(a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding):
    out = np.empty(a.shape[0], dtype=np.int32)
    for i in range(a.shape[0]):
        t = (np.int64(a[i]) - za) * ma + (np.int64(b[i]) - zb) * mb + offset
        y = round_shift(t, shift, rounding) + zo
        out[i] = min(max(y, lo), hi)
    return out


def _add_args(a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding):
    a = _checks.int32_tensor(a, "a")
    b = _checks.int32_tensor(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    ma = _checks.scalar_int(ma, "ma", INT64_MIN, INT64_MAX)
    mb = _checks.scalar_int(mb, "mb", INT64_MIN, INT64_MAX)
    offset = _checks.scalar_int(offset, "offset", INT64_MIN, INT64_MAX)
    shift = _checks.scalar_int(shift, "shift", 0, _checks.MAX_SHIFT)
    za = _checks.scalar_int(za, "za")
    zb = _checks.scalar_int(zb, "zb")
    zo = _checks.scalar_int(zo, "zo")
    lo, hi = _checks.clamp_range(lo, hi)
    rounding = _checks.rounding_mode(rounding)
    return a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding


def add_i32(a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding):
    """a, b: int32 arrays of one shape; the other arguments ints (per tensor). The caller keeps
    |(a - za)*ma + (b - zb)*mb + offset| < 2^63. Returns int32 of a's shape."""
    args = _add_args(a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding)
    a, b = args[0], args[1]
    return _add_kernel(a.reshape(-1), b.reshape(-1), *args[2:]).reshape(a.shape)


def add_i32_ref(a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding):
    """Vectorised int64 twin of add_i32."""
    a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding = _add_args(
        a, b, ma, mb, shift, offset, za, zb, zo, lo, hi, rounding
    )
    t = (a.astype(np.int64) - za) * np.int64(ma) + (b.astype(np.int64) - zb) * np.int64(mb)
    t = t + np.int64(offset)
    y = round_shift_ref(t, shift, rounding) + zo
    return np.clip(y, lo, hi).astype(np.int32)
