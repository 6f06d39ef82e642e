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


# --- the elementwise pieces of a quantized recurrent cell ---------------------------------


@njit(cache=True)
def _lut_kernel(x, table, lo):
    out = np.empty(x.shape[0], dtype=np.int32)
    for i in range(x.shape[0]):
        out[i] = table[np.int64(x[i]) - lo]
    return out


def _lut_args(x, table, lo):
    x = _checks.int32_tensor(x, "x")
    table = np.ascontiguousarray(np.asarray(table, dtype=np.int64).ravel())
    lo = _checks.scalar_int(lo, "lo")
    if table.size == 0:
        raise ValueError("table is empty")
    if x.size and (int(x.min()) < lo or int(x.max()) >= lo + table.size):
        raise ValueError(f"codes [{int(x.min())}, {int(x.max())}] outside the table's "
                         f"[{lo}, {lo + table.size - 1}]")
    if table.min() < -2**31 or table.max() >= 2**31:
        raise ValueError("table entries must fit int32")
    return x, table, lo


def lut_i32(x, table, lo):
    """out = table[x - lo] for int32 codes x in [lo, lo + len(table)); int32 of x's shape."""
    x, table, lo = _lut_args(x, table, lo)
    return _lut_kernel(x.reshape(-1), table, lo).reshape(x.shape)


def lut_i32_ref(x, table, lo):
    """Vectorised twin of lut_i32 (fancy indexing)."""
    x, table, lo = _lut_args(x, table, lo)
    return table[x.astype(np.int64) - lo].astype(np.int32)


@njit(cache=True)
def _mul_kernel(a, b, za, zb):
    out = np.empty(a.shape[0], dtype=np.int32)
    for i in range(a.shape[0]):
        out[i] = np.int32((np.int64(a[i]) - za) * (np.int64(b[i]) - zb))
    return out


def _two(a, b):
    a = _checks.int32_tensor(a, "a")
    b = _checks.int32_tensor(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def mul_i32(a, b, za, zb):
    """(a - za) * (b - zb), elementwise; the caller keeps it within int32 (the IR validator
    proves it). int32 of a's shape."""
    a, b = _two(a, b)
    za, zb = _checks.scalar_int(za, "za"), _checks.scalar_int(zb, "zb")
    return _mul_kernel(a.reshape(-1), b.reshape(-1), za, zb).reshape(a.shape)


def mul_i32_ref(a, b, za, zb):
    """Vectorised int64 twin of mul_i32 (wrapped to int32 once at the end)."""
    a, b = _two(a, b)
    za, zb = _checks.scalar_int(za, "za"), _checks.scalar_int(zb, "zb")
    return ((a.astype(np.int64) - za) * (b.astype(np.int64) - zb)).astype(np.int32)


@njit(cache=True)
def _gatemix_kernel(z, n, h, k, zz, zn, zh):
    out = np.empty(z.shape[0], dtype=np.int32)
    for i in range(z.shape[0]):
        nc = np.int64(n[i]) - zn
        out[i] = np.int32(k * nc + (np.int64(z[i]) - zz) * (np.int64(h[i]) - zh - nc))
    return out


def _gatemix_args(z, n, h, k, zz, zn, zh):
    z, n = _two(z, n)
    h = _checks.int32_tensor(h, "h")
    if h.shape != z.shape:
        raise ValueError(f"h must have z's shape {z.shape}, got {h.shape}")
    return (z, n, h, _checks.scalar_int(k, "k", 1, 2**31 - 1), _checks.scalar_int(zz, "zz"),
            _checks.scalar_int(zn, "zn"), _checks.scalar_int(zh, "zh"))


def gatemix_i32(z, n, h, k, zz, zn, zh):
    """The GRU update (1 - z) n + z h in integers, for a gate z in units of 1/k:
    k (n - zn) + (z - zz) ((h - zh) - (n - zn)). int32 of z's shape (the caller keeps it in
    range; the IR validator proves it)."""
    z, n, h, k, zz, zn, zh = _gatemix_args(z, n, h, k, zz, zn, zh)
    return _gatemix_kernel(z.reshape(-1), n.reshape(-1), h.reshape(-1), k, zz, zn,
                           zh).reshape(z.shape)


def gatemix_i32_ref(z, n, h, k, zz, zn, zh):
    """Vectorised int64 twin of gatemix_i32, written as (k - z) n + z h."""
    z, n, h, k, zz, zn, zh = _gatemix_args(z, n, h, k, zz, zn, zh)
    zc, nc, hc = (z.astype(np.int64) - zz, n.astype(np.int64) - zn, h.astype(np.int64) - zh)
    return ((k - zc) * nc + zc * hc).astype(np.int32)
