"""requant_i32 and add_i32: loop kernel == vectorised ref bit for bit over random shapes, codes,
per-tensor and per-channel parameters and every rounding mode; hand-checked ties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amchw.kernels import (
    ROUND_FLOOR,
    ROUND_HALF_AWAY,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    add_i32,
    add_i32_ref,
    requant_i32,
    requant_i32_ref,
)
from kernel_cases import MODES, PROFILE, SEED


def _param(rng, per_channel, c, lo, hi):
    return rng.integers(lo, hi, size=c if per_channel else 1, endpoint=True).astype(np.int64)


@PROFILE
@given(
    seed=SEED,
    n=st.integers(1, 3),
    c=st.integers(1, 6),
    tail=st.lists(st.integers(1, 5), max_size=2),
    per_channel=st.booleans(),
    mode=st.sampled_from(MODES),
    out_range=st.sampled_from([(-128, 127), (0, 255), (-127, 127), (-32768, 32767)]),
)
def test_requant_kernel_equals_ref(seed, n, c, tail, per_channel, mode, out_range):
    rng = np.random.default_rng(seed)
    # int32 accumulators (full range) or codes; |t| stays below 2^63.
    x = rng.integers(-(2**31), 2**31, size=(n, c, *tail)).astype(np.int32)
    zx = int(rng.integers(-128, 128))
    mult = _param(rng, per_channel, c, -(2**30), 2**30)
    shift = _param(rng, per_channel, c, 0, 62)
    offset = _param(rng, per_channel, c, -(2**40), 2**40)
    zo = int(rng.integers(*out_range, endpoint=True))
    args = (x, mult, shift, offset, zx, zo, *out_range, mode)
    got = requant_i32(*args)
    want = requant_i32_ref(*args)
    assert got.dtype == np.int32 and got.shape == x.shape
    assert np.array_equal(got, want)


@PROFILE
@given(seed=SEED, mode=st.sampled_from(MODES), s=st.integers(1, 20))
def test_requant_hits_ties(seed, mode, s):
    # multiplier 1, offset making t an odd multiple of 2^(s-1) in half of the elements
    rng = np.random.default_rng(seed)
    k = rng.integers(-1000, 1000, size=(2, 3, 8))
    x = (k * 2**s + np.where(rng.random(k.shape) < 0.5, 2 ** (s - 1), 0)).astype(np.int32)
    args = (x, np.array([1]), np.array([s]), np.array([0]), 0, 0, -(2**31), 2**31 - 1, mode)
    assert np.array_equal(requant_i32(*args), requant_i32_ref(*args))


# x / 2: (half_even, half_up, half_away, floor) for x = 5 (2.5) and -5 (-2.5)
@pytest.mark.parametrize("mode,pos,neg", [
    (ROUND_HALF_EVEN, 2, -2), (ROUND_HALF_UP, 3, -2), (ROUND_HALF_AWAY, 3, -3),
    (ROUND_FLOOR, 2, -3),
])
def test_requant_ties_by_hand(mode, pos, neg):
    x = np.array([[5, -5]], dtype=np.int32).reshape(1, 1, 2)
    args = (x, [1], [1], [0], 0, 0, -128, 127, mode)
    assert requant_i32(*args).ravel().tolist() == [pos, neg]
    assert requant_i32_ref(*args).ravel().tolist() == [pos, neg]


def test_requant_per_channel_zero_points_and_clamp():
    # channel 0: (x - 3) * 3 >> 1, channel 1: (x - 3) * 1 + 4 >> 0; zo 10, clamp to [0, 20]
    x = np.array([[[3, 10, -20], [3, 10, 100]]], dtype=np.int32)
    args = (x, [3, 1], [1, 0], [0, 4], 3, 10, 0, 20, ROUND_HALF_EVEN)
    # ch0: 0, 21/2=10.5->10, -69/2=-34.5->-34 ; +10 -> 10, 20, clamp(-24)=0
    # ch1: 4, 11, 101 ; +10 -> 14, 21->20, 111->20
    want = [[[10, 20, 0], [14, 20, 20]]]
    assert requant_i32(*args).tolist() == want
    assert requant_i32_ref(*args).tolist() == want


def test_requant_shift_zero_and_2d():
    x = np.array([[-7, 0, 7]], dtype=np.int32)
    for mode in MODES:
        got = requant_i32(x, [2], [0], [1], 0, 0, -100, 100, mode)
        assert got.tolist() == [[-13, 1, 15]] and got.dtype == np.int32


@pytest.mark.parametrize("bad", [
    dict(x=np.zeros((2, 3), np.int64)),
    dict(x=np.zeros(3, np.int32)),
    dict(mult=np.ones(2, np.int64)),
    dict(shift=[63]),
    dict(shift=[-1]),
    dict(mult=[1.5]),
    dict(lo=5, hi=4),
    dict(rounding=4),
    dict(zx=0.5),
])
def test_requant_rejects_bad_arguments(bad):
    args = dict(x=np.zeros((2, 3), np.int32), mult=[1], shift=[0], offset=[0], zx=0, zo=0,
                lo=-128, hi=127, rounding=0)
    args.update(bad)
    with pytest.raises(ValueError):
        requant_i32(**args)


@PROFILE
@given(
    seed=SEED,
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    mode=st.sampled_from(MODES),
    ra=st.integers(0, 4),
    rb=st.integers(0, 4),
    shift=st.integers(0, 62),
    out_range=st.sampled_from([(-128, 127), (0, 255), (-32768, 32767)]),
)
def test_add_kernel_equals_ref(seed, shape, mode, ra, rb, shift, out_range, kgen):
    rng = np.random.default_rng(seed)
    a, za = kgen.code_tensor(rng, shape, ra)
    b, zb = kgen.code_tensor(rng, shape, rb)
    ma, mb = (int(v) for v in rng.integers(-(2**40), 2**40, size=2))
    offset = int(rng.integers(-(2**50), 2**50))
    zo = int(rng.integers(*out_range, endpoint=True))
    args = (a, b, ma, mb, shift, offset, za, zb, zo, *out_range, mode)
    kgen.same(add_i32(*args), add_i32_ref(*args))


@pytest.mark.parametrize("mode,want", [
    (ROUND_HALF_EVEN, [2, -2, 4]), (ROUND_HALF_UP, [3, -2, 4]),
    (ROUND_HALF_AWAY, [3, -3, 4]), (ROUND_FLOOR, [2, -3, 3]),
])
def test_add_ties_by_hand(mode, want):
    a = np.array([6, -4, 8], dtype=np.int32)
    b = np.array([2, 2, 2], dtype=np.int32)
    # t = (a - 1) * 1 + (b - 2) * 3 = 5, -5, 7 -> 2.5, -2.5, 3.5
    for fn in (add_i32, add_i32_ref):
        assert fn(a, b, 1, 3, 1, 0, 1, 2, 0, -128, 127, mode).tolist() == want


def test_add_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        add_i32(np.zeros(3, np.int32), np.zeros(4, np.int32), 1, 1, 0, 0, 0, 0, 0, 0, 1, 0)
