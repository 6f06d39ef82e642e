"""round_shift / round_div / wrap_i32: the scalar njit helpers, their vectorised twins and an
independent oracle on exact fractions agree; ties are checked by hand."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amchw.kernels import (
    ROUND_FLOOR,
    ROUND_HALF_AWAY,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUNDING_NAMES,
    round_div,
    round_div_ref,
    round_shift,
    round_shift_ref,
    wrap_i32,
    wrap_i32_ref,
)
from kernel_cases import MODES, PROFILE

INT64 = st.integers(-(2**63), 2**63 - 1)


def oracle(value: Fraction, mode: int) -> int:
    """Rounding of an exact rational, straight from the definitions of the modes."""
    f = math.floor(value)
    frac = value - f
    if mode == ROUND_FLOOR or frac < Fraction(1, 2):
        return f
    if frac > Fraction(1, 2):
        return f + 1
    return {
        ROUND_HALF_EVEN: f + (f % 2),
        ROUND_HALF_UP: f + 1,
        ROUND_HALF_AWAY: f + 1 if value > 0 else f,
    }[mode]


def test_rounding_names_match_constants():
    assert ROUNDING_NAMES == {"half_even": 0, "half_up": 1, "half_away": 2, "floor": 3}


# value x 2 -> expected for (half_even, half_up, half_away, floor): hand-checked ties.
TIES = {
    5: (2, 3, 3, 2),  # 2.5
    -5: (-2, -2, -3, -3),  # -2.5
    7: (4, 4, 4, 3),  # 3.5
    -7: (-4, -3, -4, -4),  # -3.5
    1: (0, 1, 1, 0),  # 0.5
    -1: (0, 0, -1, -1),  # -0.5
    3: (2, 2, 2, 1),  # 1.5
    -3: (-2, -1, -2, -2),  # -1.5
}


@pytest.mark.parametrize("twice", sorted(TIES))
@pytest.mark.parametrize("s", [1, 3, 17, 61])
def test_round_shift_exact_ties(twice, s):
    # t = (twice / 2) * 2^s is an odd multiple of 2^(s-1): an exact tie.
    t = twice * 2 ** (s - 1)
    for mode, want in zip(MODES, TIES[twice]):
        assert round_shift(t, s, mode) == want
        assert round_shift_ref(np.array([t]), s, mode)[0] == want


def test_round_shift_largest_shift_ties():
    # s = 62: +-2^61 are the ties +-0.5.
    for t, want in ((2**61, TIES[1]), (-(2**61), TIES[-1])):
        for mode, w in zip(MODES, want):
            assert round_shift(t, 62, mode) == w
            assert round_shift_ref(np.array([t]), 62, mode)[0] == w


@pytest.mark.parametrize("twice", sorted(TIES))
def test_round_div_exact_ties(twice):
    for d in (2, 6, 10):
        t = twice * d // 2
        for mode, want in zip(MODES, TIES[twice]):
            assert round_div(t, d, mode) == want
            assert round_div_ref(np.array([t]), d, mode)[0] == want


def test_shift_zero_is_identity():
    t = np.array([-(2**63), -5, -1, 0, 1, 7, 2**63 - 1], dtype=np.int64)
    for mode in MODES:
        assert [round_shift(v, 0, mode) for v in t] == t.tolist()
        assert np.array_equal(round_shift_ref(t, 0, mode), t)


def test_non_ties_round_to_nearest():
    # 2.25 -> 2 and 2.75 -> 3 in every nearest mode; floor gives 2 and 2.
    for mode in MODES[:3]:
        assert round_shift(9, 2, mode) == 2 and round_shift(11, 2, mode) == 3
        assert round_shift(-9, 2, mode) == -2 and round_shift(-11, 2, mode) == -3
    assert round_shift(11, 2, ROUND_FLOOR) == 2 and round_shift(-9, 2, ROUND_FLOOR) == -3


@PROFILE
@given(t=INT64, s=st.integers(0, 62), mode=st.sampled_from(MODES))
def test_round_shift_matches_oracle(t, s, mode):
    want = oracle(Fraction(t, 2**s), mode)
    assert round_shift(t, s, mode) == want
    assert round_shift_ref(np.array([t], dtype=np.int64), s, mode)[0] == want


@PROFILE
@given(t=INT64, d=st.integers(1, 2**62), mode=st.sampled_from(MODES))
def test_round_div_matches_oracle(t, d, mode):
    want = oracle(Fraction(t, d), mode)
    assert round_div(t, d, mode) == want
    assert round_div_ref(np.array([t], dtype=np.int64), d, mode)[0] == want


@PROFILE
@given(v=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20))
def test_wrap_i32_is_mod_2_32(v):
    want = [((e + 2**31) % 2**32) - 2**31 for e in v]
    assert [int(wrap_i32(e)) for e in v] == want
    got = wrap_i32_ref(np.array(v, dtype=np.int64))
    assert got.dtype == np.int32 and got.tolist() == want
