"""Fixed-point multipliers: a rational scale as an integer mantissa and a right shift, and
offsets on that grid (exact for dyadic scales, within 2^-bits relative otherwise)."""

from __future__ import annotations

from fractions import Fraction

from .types import IRError


def fixed_multiplier(m: Fraction, max_shift: int = 62, strip: bool = True,
                     bits: int = 31) -> tuple[int, int]:
    """Best `bits`-bit mantissa and shift with mantissa / 2^shift ~= m (exact when m is a
    dyadic rational whose numerator fits the mantissa, e.g. every power of two).

    The mantissa is normalised to 2^(bits-1) <= |mantissa| < 2^bits where the shift range
    allows, so the relative error is at most 2^-bits (bits=31: an int32 multiplier).
    strip=True removes trailing zero bits of the mantissa (same value, smaller shift); keep
    them when an offset needs the fine grid.
    """
    m = Fraction(m)
    if m == 0:
        return 0, 0
    mag = abs(m)
    # smallest shift s with |m| * 2^s >= 2^30
    shift = bits - 1 - _floor_log2(mag)
    shift = min(shift, max_shift)
    if shift < 0:
        raise IRError(f"multiplier {float(m):.6g} too large for a {bits}-bit mantissa with "
                      "shift >= 0")
    mant = _round_half_even(m * (1 << shift))
    if abs(mant) >= 2**bits:  # rounding carried into the next bit
        shift -= 1
        mant = _round_half_even(m * (1 << shift))
    # strip trailing zero bits so exact dyadic multipliers print small
    while strip and shift > 0 and mant % 2 == 0:
        mant //= 2
        shift -= 1
    return int(mant), int(shift)


def fixed_offset(b: Fraction, shift: int) -> int:
    """An offset in units of 2^-shift output LSBs: round(b * 2^shift), ties to even."""
    return _round_half_even(Fraction(b) * (1 << shift))


def _floor_log2(q: Fraction) -> int:
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1
    return e


def _round_half_even(q: Fraction) -> int:
    return round(q)  # Fraction.__round__ rounds half to even
