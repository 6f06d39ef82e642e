"""The early-exit decision in integers: flag = 1 when the entropy of softmax(logits) is at most
a threshold, from the logit codes through exp and ln tables (docs/ir.md, EntropyExit).
Every intermediate is an exact int64; the IR validator proves none can overflow.

int64 bounds (q int32, |q - zq| <= 2^32 - 1, |offset| < 2^31, F <= 30, r <= 12, n logits):
  x = q - zq + offset, |x| < 2^33; d = max x - x in [0, 2^34);
  exp_hi[j] * exp_lo[k] <= 2^F * 2^F <= 2^60, plus 2^(F-1); e <= 2^F;
  S = sum e <= n 2^F; A = sum e d over the terms with j = d >> r < len(exp_hi), each below
  exp_hi[j] ((j + 1) 2^r), and k_mult * A, S * h and the interpolation product are bounded by
  the validator (amchw.ir.ops.exit_int64_bounds) before a graph runs.
"""

import numpy as np
from numba import njit

from . import _checks

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@njit(cache=True)
def _exit_kernel(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits, k_mult,
                 c_fix, ln2_fix):
    n_frames, n = q.shape
    out = np.empty(n_frames, dtype=np.int32)
    t_size = exp_hi.shape[0]
    mask = (np.int64(1) << r) - 1
    half = np.int64(1) << (frac_bits - 1)
    for f in range(n_frames):
        top = np.int64(INT64_MIN)
        for i in range(n):
            x = np.int64(q[f, i]) - zq + offset[i]
            if x > top:
                top = x
        s_sum = np.int64(0)
        a_sum = np.int64(0)
        for i in range(n):
            d = top - (np.int64(q[f, i]) - zq + offset[i])
            j = d >> r
            if j < t_size:  # beyond the table 2^F exp(-d s) < 1/2: e = 0
                e = (exp_hi[j] * exp_lo[d & mask] + half) >> frac_bits
                s_sum += e
                a_sum += e * d
        # leading bit of S (>= 2^F: a largest logit contributes exactly 2^F)
        b = 0
        v = s_sum
        while v > 1:
            v >>= 1
            b += 1
        sh = b - ln_bits
        t = s_sum >> sh
        k = t - (np.int64(1) << ln_bits)
        frac = s_sum - (t << sh)
        ln_s = (b - frac_bits) * ln2_fix + ln_table[k] \
            + (((ln_table[k + 1] - ln_table[k]) * frac) >> sh)
        h = c_fix - ln_s
        out[f] = 1 if k_mult * a_sum <= s_sum * h else 0
    return out


def _exit_args(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits, k_mult, c_fix,
               ln2_fix):
    q = _checks.int32_tensor(q, "q", ndim=2)
    n = q.shape[1]
    if n < 1:
        raise ValueError("q needs at least one logit per frame")
    offset = _checks.channel_param(offset, n, "offset", "int")
    if offset.size and np.abs(offset).max() >= 2**31:
        raise ValueError("offset entries must lie in (-2^31, 2^31)")
    zq = _checks.scalar_int(zq, "zq")
    frac_bits = _checks.scalar_int(frac_bits, "frac_bits", 2, 30)
    ln_bits = _checks.scalar_int(ln_bits, "ln_bits", 1, frac_bits - 1)
    r = _checks.scalar_int(r, "r", 0, 12)
    tabs = []
    for name, a, size in (("exp_hi", exp_hi, None), ("exp_lo", exp_lo, 2**r),
                          ("ln_table", ln_table, 2**ln_bits + 1)):
        a = np.ascontiguousarray(np.asarray(a, dtype=np.int64).ravel())
        if size is not None and a.size != size:
            raise ValueError(f"{name} must have {size} entries, got {a.size}")
        if a.size and (a.min() < 0 or (name != "ln_table" and a.max() > 2**frac_bits)):
            raise ValueError(f"{name} entries must lie in [0, 2^frac_bits]")
        tabs.append(a)
    if tabs[0].size == 0 or tabs[0][0] != 2**frac_bits or tabs[1][0] != 2**frac_bits:
        raise ValueError("exp_hi[0] and exp_lo[0] must be 2^frac_bits (exp(0))")
    k_mult = _checks.scalar_int(k_mult, "k_mult", 0, INT64_MAX)
    c_fix = _checks.scalar_int(c_fix, "c_fix", INT64_MIN, INT64_MAX)
    ln2_fix = _checks.scalar_int(ln2_fix, "ln2_fix", 0, INT64_MAX)
    return (q, offset, zq, r, tabs[0], tabs[1], frac_bits, tabs[2], ln_bits, k_mult, c_fix,
            ln2_fix)


def entropy_exit_i32(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits, k_mult,
                     c_fix, ln2_fix):
    """q: int32 (N, n) logit codes, offset: int64 per logit (1 or n entries), zq their zero
    point; the tables and constants of EntropyExit. Returns int32 (N,) flags, 1 = exit."""
    args = _exit_args(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits, k_mult,
                      c_fix, ln2_fix)
    return _exit_kernel(*args)


def entropy_exit_i32_ref(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits,
                         k_mult, c_fix, ln2_fix):
    """Vectorised int64 twin of entropy_exit_i32 (the leading bit of S from frexp, exact
    below 2^53)."""
    (q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits, k_mult, c_fix,
     ln2_fix) = _exit_args(q, offset, zq, r, exp_hi, exp_lo, frac_bits, ln_table, ln_bits,
                           k_mult, c_fix, ln2_fix)
    x = q.astype(np.int64) - zq + offset[None, :]
    d = x.max(axis=1, keepdims=True) - x
    j = d >> r
    inside = j < exp_hi.size
    e = (exp_hi[np.minimum(j, exp_hi.size - 1)] * exp_lo[d & ((1 << r) - 1)]
         + (1 << (frac_bits - 1))) >> frac_bits
    e = np.where(inside, e, 0)
    s_sum = e.sum(axis=1)
    a_sum = (e * d).sum(axis=1)
    b = np.frexp(s_sum.astype(np.float64))[1].astype(np.int64) - 1
    sh = b - ln_bits
    t = s_sum >> sh
    k = t - (1 << ln_bits)
    frac = s_sum - (t << sh)
    ln_s = (b - frac_bits) * ln2_fix + ln_table[k] + (((ln_table[k + 1] - ln_table[k]) * frac)
                                                      >> sh)
    return (np.int64(k_mult) * a_sum <= s_sum * (c_fix - ln_s)).astype(np.int32)
