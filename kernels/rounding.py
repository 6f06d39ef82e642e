"""Integer rounding and int32 wrap: scalar njit helpers for the loop kernels, and vectorised
numpy twins (written another way) for the `_ref` functions. Both give t / 2^s or t / d rounded
by one of the ROUND_* modes, exactly, for any int64 t."""

import numpy as np
from numba import njit

from .modes import ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP


@njit(cache=True)
def wrap_i32(v):
    """Two's-complement wrap of an int64 value to the int32 range: what a 32-bit register keeps."""
    v = np.int64(v)
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


@njit(cache=True)
def _round_up_decision(above, tie, q_odd, nonneg, mode):
    """Whether to add 1 to the floor quotient, given how the remainder compares with half."""
    if mode == ROUND_FLOOR:
        return False
    if above:
        return True
    if not tie:
        return False
    if mode == ROUND_HALF_UP:
        return True
    if mode == ROUND_HALF_EVEN:
        return q_odd
    # ROUND_HALF_AWAY: a tie above a non-negative floor lies at a positive value -> go up.
    return nonneg


@njit(cache=True)
def round_shift(t, s, mode):
    """t / 2^s rounded by `mode`, for int64 t and 0 <= s <= 62 (s == 0 is the identity).

    An arithmetic right shift is the floor; the dropped low bits decide the rounding."""
    t = np.int64(t)
    s = np.int64(s)
    if s == 0:
        return t
    q = t >> s
    low = t & ((np.int64(1) << s) - 1)  # t - q * 2^s, in [0, 2^s)
    half = np.int64(1) << (s - 1)
    if _round_up_decision(low > half, low == half, (q & 1) == 1, q >= 0, mode):
        q += 1
    return q


@njit(cache=True)
def round_div(t, d, mode):
    """t / d rounded by `mode`, for int64 t and a positive int64 divisor d."""
    t = np.int64(t)
    d = np.int64(d)
    q = t // d  # floor division (Python semantics, as in numba)
    r = t % d  # in [0, d); no intermediate q * d that could leave the int64 range
    rest = d - r  # r compared with d - r is 2r compared with d, without overflow
    if _round_up_decision(r > rest, r == rest, (q & 1) == 1, q >= 0, mode):
        q += 1
    return q


def wrap_i32_ref(v):
    """Vectorised wrap of int64 values to int32 (modulo 2^32 into [-2^31, 2^31))."""
    u = np.asarray(v, dtype=np.int64) & np.int64(0xFFFFFFFF)
    return np.where(u >= 2**31, u - 2**32, u).astype(np.int32)


def round_div_ref(t, d, mode):
    """Vectorised t / d rounded by `mode`; t and d int64 arrays (broadcast), d > 0."""
    t = np.asarray(t, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)
    q, r = np.divmod(t, d)  # floor quotient, remainder in [0, d)
    twice = 2 * r  # < 2d <= 2^63 for the divisors used here (d <= 2^62)
    if mode == ROUND_FLOOR:
        up = np.zeros(q.shape, dtype=bool)
    elif mode == ROUND_HALF_UP:
        up = twice >= d
    elif mode == ROUND_HALF_EVEN:
        up = (twice > d) | ((twice == d) & (q % 2 == 1))
    elif mode == ROUND_HALF_AWAY:
        up = (twice > d) | ((twice == d) & (t > 0))
    else:
        raise ValueError(f"unknown rounding mode {mode}")
    return q + up.astype(np.int64)


def round_shift_ref(t, s, mode):
    """Vectorised t / 2^s rounded by `mode`; s an int64 array in [0, 62] (broadcast with t)."""
    s = np.asarray(s, dtype=np.int64)
    return round_div_ref(t, np.left_shift(np.int64(1), s), mode)
