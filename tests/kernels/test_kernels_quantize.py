"""quantize_f64 / dequantize_f64: kernel == ref bit for bit; exact ties, near-ties one ulp
from 0.5, saturation of +-inf and huge values, NaN refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amchw.kernels import (
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    dequantize_f64,
    dequantize_f64_ref,
    quantize_f64,
    quantize_f64_ref,
)
from kernel_cases import MODES, PROFILE, SEED


def _both(x, scale, zp, lo, hi, mode):
    got = quantize_f64(x, scale, zp, lo, hi, mode)
    want = quantize_f64_ref(x, scale, zp, lo, hi, mode)
    assert got.dtype == np.int32 and want.dtype == np.int32
    assert np.array_equal(got, want), (x[got != want], got[got != want], want[got != want])
    return got


@PROFILE
@given(
    seed=SEED,
    n=st.integers(1, 3),
    c=st.integers(1, 6),
    tail=st.lists(st.integers(1, 6), max_size=2),
    per_channel=st.booleans(),
    mode=st.sampled_from(MODES),
    f32=st.booleans(),
    pow2=st.booleans(),
    out_range=st.sampled_from([(-128, 127), (0, 255), (-127, 127), (-32768, 32767)]),
)
def test_quantize_kernel_equals_ref(seed, n, c, tail, per_channel, mode, f32, pow2, out_range):
    rng = np.random.default_rng(seed)
    k = c if per_channel else 1
    if pow2:  # power-of-two scales: half-integer multiples are exact ties
        scale = 2.0 ** rng.integers(-12, 3, size=k)
    else:
        scale = np.exp(rng.uniform(-8, 2, size=k))
    zp = rng.integers(out_range[0], out_range[1], size=k, endpoint=True)
    shape = (n, c, *tail)
    lim = 1.2 * (out_range[1] - out_range[0])
    # a mixture of ties, values a few ulps from ties, random values and extremes
    halves = (rng.integers(-2 * lim, 2 * lim, size=shape) + 0.5)
    s_b = np.broadcast_to(scale.reshape((1, -1) + (1,) * len(tail)), shape)
    x = np.where(rng.random(shape) < 0.4, halves * s_b, rng.uniform(-lim, lim, shape) * s_b)
    near = rng.random(shape) < 0.15
    x = np.where(near, np.nextafter(x, rng.choice([-np.inf, np.inf], size=shape)), x)
    special = rng.choice([np.inf, -np.inf, 1e300, -1e300, 0.0, -0.0], size=shape)
    x = np.where(rng.random(shape) < 0.05, special, x)
    if f32:
        with np.errstate(over="ignore"):  # +-1e300 become +-inf in float32
            x = x.astype(np.float32)
    _both(np.ascontiguousarray(x), scale, zp, *out_range, mode)


# (x, half_even, half_up, half_away, floor) with scale 1, zp 0, range [-128, 127]
CASES = [
    (2.5, 2, 3, 3, 2),
    (-2.5, -2, -2, -3, -3),
    (0.5, 0, 1, 1, 0),
    (-0.5, 0, 0, -1, -1),
    (3.5, 4, 4, 4, 3),
    (0.49999999999999994, 0, 0, 0, 0),  # largest double below 0.5: floor(v + 0.5) would give 1
    (-0.49999999999999994, 0, 0, 0, -1),  # v + 1 rounds to 0.5: a fraction test would see a tie
    (-0.5 + 2.0**-54, 0, 0, 0, -1),
    (2.5000000000000004, 3, 3, 3, 2),
    (-2.5000000000000004, -3, -3, -3, -3),
    (1e300, 127, 127, 127, 127),
    (np.inf, 127, 127, 127, 127),
    (-np.inf, -128, -128, -128, -128),
    (-0.0, 0, 0, 0, 0),
]


@pytest.mark.parametrize("case", CASES, ids=[repr(c[0]) for c in CASES])
def test_quantize_by_hand(case):
    v, *want = case
    x = np.full((1, 1), v, dtype=np.float64)
    for mode, w in zip(MODES, want):
        assert _both(x, [1.0], [0], -128, 127, mode)[0, 0] == w


def test_quantize_uses_a_true_division():
    # 0.3 / 0.1 = 2.9999999999999996 in float64 (floor 2), while 0.3 * (1 / 0.1) = 3.0
    x = np.array([[0.3]])
    assert quantize_f64(x, [0.1], [0], -128, 127, ROUND_FLOOR)[0, 0] == 2


def test_quantize_per_channel_and_float32():
    x = np.array([[[1.0, -1.0], [1.0, -1.0]]], dtype=np.float32)
    got = quantize_f64(x, [0.25, 0.5], [3, -3], -128, 127, ROUND_HALF_EVEN)
    assert got.tolist() == [[[7, -1], [-1, -5]]]


def test_quantize_rejects_nan_and_bad_scale():
    x = np.array([[1.0, np.nan]])
    with pytest.raises(ValueError, match="NaN"):
        quantize_f64(x, [1.0], [0], -128, 127, ROUND_HALF_EVEN)
    for bad in ([0.0], [-1.0], [np.inf], [1.0, 2.0, 3.0]):
        with pytest.raises(ValueError):
            quantize_f64(np.zeros((1, 2)), bad, [0], -128, 127, ROUND_HALF_EVEN)
    with pytest.raises(ValueError):
        quantize_f64(np.zeros((1, 2), np.int32), [1.0], [0], -128, 127, ROUND_HALF_EVEN)


@PROFILE
@given(
    seed=SEED,
    n=st.integers(1, 3),
    c=st.integers(1, 6),
    tail=st.lists(st.integers(1, 6), max_size=2),
    per_channel=st.booleans(),
    r=st.integers(0, 4),
)
def test_dequantize_kernel_equals_ref(seed, n, c, tail, per_channel, r, kgen):
    rng = np.random.default_rng(seed)
    q, z = kgen.code_tensor(rng, (n, c, *tail), r)
    k = c if per_channel else 1
    scale = np.exp(rng.uniform(-10, 3, size=k))
    zp = rng.integers(-128, 128, size=k) if per_channel else np.array([z])
    bias = rng.normal(size=k) * rng.choice([0.0, 1.0])
    got = dequantize_f64(q, scale, zp, bias)
    want = dequantize_f64_ref(q, scale, zp, bias)
    assert got.dtype == np.float64 and got.shape == q.shape
    assert np.array_equal(got, want)


def test_dequantize_by_hand():
    q = np.array([[[0, 5], [0, 5]]], dtype=np.int32)
    got = dequantize_f64(q, [0.5, 2.0], [1, -1], [0.0, 10.0])
    assert got.tolist() == [[[-0.5, 2.0], [12.0, 22.0]]]
