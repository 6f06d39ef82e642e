"""Float <-> code conversion at the edges of an integer graph. quantize divides by the scale in
float64 (a true division, as Brevitas does), rounds by an explicit mode and saturates; dequantize
maps codes back to float64. The rounding decisions are exact float64 comparisons."""

import numpy as np
from numba import njit

from . import _checks
from .modes import ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP


@njit(cache=True)
def round_f64(v, mode):
    """v rounded to an integer-valued float64 by `mode`; exact for every finite v and +-inf.

    Compares v with floor(v) + 0.5 rather than forming the fraction v - floor(v), which is not
    exact for small negative v. floor(v) + 0.5 is exact whenever v has a fractional part
    (then |v| < 2^52)."""
    f = np.floor(v)
    if v == f or mode == ROUND_FLOOR:  # integers, +-inf, or plain floor
        return f
    mid = f + 0.5
    if v > mid:
        return f + 1.0
    if v < mid:
        return f
    if mode == ROUND_HALF_UP:
        return f + 1.0
    if mode == ROUND_HALF_AWAY:
        return f + 1.0 if v > 0.0 else f
    # ROUND_HALF_EVEN: f + 1 when f is odd (f is an integer below 2^52 here)
    return f + 1.0 if f - 2.0 * np.floor(f * 0.5) == 1.0 else f


@njit(cache=True, nogil=True)
def _quantize_kernel(x, scale, zp, lo, hi, rounding):
    # x: (N, C, S) float64; scale/zp broadcast to length C.
    n_, c_, s_ = x.shape
    out = np.empty((n_, c_, s_), dtype=np.int32)
    flo = np.float64(lo)
    fhi = np.float64(hi)
    for n in range(n_):
        for c in range(c_):
            sc = scale[c]
            z = np.float64(zp[c])
            for i in range(s_):
                r = round_f64(x[n, c, i] / sc, rounding) + z
                # saturate in float first so +-inf and huge values never reach the cast
                if r < flo:
                    r = flo
                elif r > fhi:
                    r = fhi
                out[n, c, i] = np.int32(r)
    return out


def _quantize_args(x, scale, zp, lo, hi, rounding):
    x = _checks.float_tensor(x, "x", min_ndim=2)
    if np.isnan(x).any():
        raise ValueError("x contains NaN: quantization of NaN is undefined")
    channels = x.shape[1]
    scale = _checks.channel_param(scale, channels, "scale", "float")
    if scale.size and not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError("scale must be finite and positive")
    zp = _checks.channel_param(zp, channels, "zp", "int")
    if zp.size and np.abs(zp).max() > 2**31:
        raise ValueError("zp must lie in the int32 range")
    lo, hi = _checks.clamp_range(lo, hi)
    rounding = _checks.rounding_mode(rounding)
    return x, scale, zp, lo, hi, rounding


def quantize_f64(x, scale, zp, lo, hi, rounding):
    """q = clamp(round(float64(x) / scale[c]) + zp[c], lo, hi) as int32.

    x: float32/float64 (N, C, ...) without NaN (+-inf saturate to hi/lo); scale: float64 > 0,
    zp: int64, each of length 1 or C; rounding: a ROUND_* mode."""
    x, scale, zp, lo, hi, rounding = _quantize_args(x, scale, zp, lo, hi, rounding)
    flat = x.reshape(x.shape[0], x.shape[1], int(np.prod(x.shape[2:])))
    return _quantize_kernel(flat, scale, zp, lo, hi, rounding).reshape(x.shape)


def quantize_f64_ref(x, scale, zp, lo, hi, rounding):
    """Vectorised twin of quantize_f64: np.rint, with ties detected from the exact residual
    v - rint(v) (exact by Sterbenz's lemma) and moved for the non-even modes."""
    x, scale, zp, lo, hi, rounding = _quantize_args(x, scale, zp, lo, hi, rounding)
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    v = x / scale.reshape(bshape)
    if rounding == ROUND_FLOOR:
        r = np.floor(v)
    else:
        r = np.rint(v)
        with np.errstate(invalid="ignore"):  # inf - inf at infinite v: never a tie
            tie = np.abs(v - r) == 0.5
        if rounding == ROUND_HALF_UP:
            r = np.where(tie, v + 0.5, r)
        elif rounding == ROUND_HALF_AWAY:
            r = np.where(tie, v + np.copysign(0.5, v), r)
        elif rounding != ROUND_HALF_EVEN:
            raise ValueError(f"unknown rounding mode {rounding}")
    r = np.clip(r + zp.reshape(bshape).astype(np.float64), lo, hi)
    return r.astype(np.int32)


@njit(cache=True, nogil=True)
def _dequantize_kernel(q, scale, zp, bias):
    n_, c_, s_ = q.shape
    out = np.empty((n_, c_, s_), dtype=np.float64)
    for n in range(n_):
        for c in range(c_):
            sc = scale[c]
            z = np.int64(zp[c])
            b = bias[c]
            for i in range(s_):
                out[n, c, i] = np.float64(np.int64(q[n, c, i]) - z) * sc + b
    return out


def _dequantize_args(q, scale, zp, bias):
    q = _checks.int32_tensor(q, "q", min_ndim=2)
    channels = q.shape[1]
    scale = _checks.channel_param(scale, channels, "scale", "float")
    zp = _checks.channel_param(zp, channels, "zp", "int")
    if zp.size and np.abs(zp).max() > 2**31:
        raise ValueError("zp must lie in the int32 range")
    bias = _checks.channel_param(bias, channels, "bias", "float")
    return q, scale, zp, bias


def dequantize_f64(q, scale, zp, bias):
    """y = float64(q - zp[c]) * scale[c] + bias[c] (one multiply, one add, no fused multiply-add).

    q: int32 (N, C, ...); scale, bias: float64 and zp: int64, each of length 1 or C."""
    q, scale, zp, bias = _dequantize_args(q, scale, zp, bias)
    flat = q.reshape(q.shape[0], q.shape[1], int(np.prod(q.shape[2:])))
    return _dequantize_kernel(flat, scale, zp, bias).reshape(q.shape)


def dequantize_f64_ref(q, scale, zp, bias):
    """Vectorised twin of dequantize_f64."""
    q, scale, zp, bias = _dequantize_args(q, scale, zp, bias)
    bshape = (1, -1) + (1,) * (q.ndim - 2)
    centred = (q.astype(np.int64) - zp.reshape(bshape)).astype(np.float64)
    return centred * scale.reshape(bshape) + bias.reshape(bshape)
