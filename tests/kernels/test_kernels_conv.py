"""conv2d_i32 and conv2d_i32_gemm == conv2d_i32_ref bit for bit over random geometries (groups,
strides, dilations, asymmetric pads), codes and zero points; extremes and accumulator wrap."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import conv, conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref
from amchw.kernels._gemm import accumulation_bound, exact_float_dtype

PROFILE = settings.get_profile("amchw-kernels")
SEED = st.integers(0, 2**32 - 1)


def wrap_int(v: int) -> int:
    """Python-int wrap modulo 2^32 into the int32 range: the independent oracle."""
    return ((v + 2**31) % 2**32) - 2**31


def fit_window(size, pad_a, pad_b, k, d):
    """Shrink kernel, then dilation, so the dilated window fits in the padded axis."""
    padded = size + pad_a + pad_b
    k = min(k, padded)
    if k > 1:
        d = min(d, (padded - 1) // (k - 1))
    return k, d


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 6 // groups))
    kg = draw(st.integers(1, 6 // groups))
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 12))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    kh, dh = fit_window(h, pads[0], pads[1], draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    kw, dw = fit_window(w, pads[2], pads[3], draw(st.integers(1, 4)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(
        x_shape=(n, groups * cg, h, w), w_shape=(groups * kg, cg, kh, kw), stride=stride,
        pads=pads, dilation=(dh, dw), groups=groups,
    )


def random_conv_args(rng, case, rx, rw, bias_kind, kgen):
    x, zx = kgen.code_tensor(rng, case["x_shape"], rx)
    w, zw = kgen.code_tensor(rng, case["w_shape"], rw)
    k = case["w_shape"][0]
    bias_hi = {0: 0, 1: 2**15, 2: 2**31 - 1}[bias_kind]
    bias = rng.integers(-bias_hi - (bias_kind == 2), bias_hi, size=k, endpoint=True)
    return (x, w, bias.astype(np.int32), zx, zw, case["stride"], case["pads"],
            case["dilation"], case["groups"])


@PROFILE
@given(case=conv_cases(), seed=SEED, rx=st.integers(0, 4), rw=st.integers(0, 4),
       bias_kind=st.integers(0, 2))
def test_conv_kernel_and_gemm_equal_ref(case, seed, rx, rw, bias_kind, kgen):
    args = random_conv_args(np.random.default_rng(seed), case, rx, rw, bias_kind, kgen)
    want = conv2d_i32_ref(*args)
    kgen.same(conv2d_i32(*args), want)
    kgen.same(conv2d_i32_gemm(*args), want)


def test_conv_output_size_formula(kgen):
    # H=5, pads 2+1, dilation 2, KH=3: (5 + 3 - 2*2 - 1)//2 + 1 = 2; W=12, pads 0+3, KW=4, dw=3,
    # sw=3: (12 + 3 - 9 - 1)//3 + 1 = 2
    x = np.zeros((1, 2, 5, 12), np.int32)
    w = np.ones((4, 1, 3, 4), np.int32)
    out = conv2d_i32(x, w, None, 0, 0, (2, 3), (2, 1, 0, 3), (2, 3), 2)
    assert out.shape == (1, 4, 2, 2)


def test_conv_minus128_squared_and_padding_is_zero_point():
    # every product (-128 - 0) * (-128 - 0) = 16384; x padded with the code zx contributes 0
    x = np.full((1, 3, 4, 4), -128, np.int32)
    w = np.full((2, 3, 3, 3), -128, np.int32)
    bias = np.array([7, -7], np.int32)
    out = conv2d_i32(x, w, bias, 0, 0, 1, (1, 1, 1, 1), 1, 1)
    # corner windows see 2x2 real positions per channel, edges 2x3, the centre 3x3
    taps = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])
    want = (3 * 16384 * taps)[None, None] + bias[None, :, None, None]
    for fn in (conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref):
        assert np.array_equal(fn(x, w, bias, 0, 0, 1, (1, 1, 1, 1), 1, 1), want)
    assert np.array_equal(out, want)
    # codes shifted by zx = 5: the padding holds 5, so (5 - 5) * w adds 0 as before
    out = conv2d_i32(x + 5, w, None, 5, 0, 1, (1, 1, 1, 1), 1, 1)
    assert np.array_equal(out, (3 * 16384 * taps)[None, None].repeat(2, axis=1))


def test_conv_accumulator_wraps_like_int32():
    # int16 codes: (-32768)^2 = 2^30 per product, 9 taps x 3 channels = 27 * 2^30 overflows
    x = np.full((1, 3, 3, 3), -32768, np.int32)
    w = np.full((1, 3, 3, 3), -32768, np.int32)
    bias = np.array([2**31 - 1], np.int32)
    want = wrap_int(27 * 2**30 + 2**31 - 1)
    for fn in (conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref):
        out = fn(x, w, bias, 0, 0, 1, 0, 1, 1)
        assert out.dtype == np.int32 and out.ravel().tolist() == [want]
    # bias at the top of the range plus one positive product wraps to the bottom
    out = conv2d_i32(np.ones((1, 1, 1, 1), np.int32), np.ones((1, 1, 1, 1), np.int32),
                     np.array([2**31 - 1], np.int32), 0, 0, 1, 0, 1, 1)
    assert out.ravel().tolist() == [-(2**31)]


def test_conv_1d_long_row(kgen):
    # 1-D convolution as H = KH = 1 (the VGG10/RadioML case), with 'same' padding
    rng = np.random.default_rng(1)
    x, zx = kgen.code_tensor(rng, (2, 4, 1, 1024), 1)
    w, zw = kgen.code_tensor(rng, (8, 4, 1, 3), 2)
    bias = rng.integers(-1000, 1000, size=8).astype(np.int32)
    args = (x, w, bias, zx, zw, (1, 1), (0, 0, 1, 1), (1, 1), 1)
    want = conv2d_i32_ref(*args)
    assert want.shape == (2, 8, 1, 1024)
    kgen.same(conv2d_i32(*args), want)
    kgen.same(conv2d_i32_gemm(*args), want)


def test_gemm_dtype_choice_and_fallback(kgen, monkeypatch):
    assert exact_float_dtype(2**24 - 1) is np.float32
    assert exact_float_dtype(2**24) is np.float64
    assert exact_float_dtype(2**53 - 1) is np.float64
    assert exact_float_dtype(2**53) is None
    x = np.array([[1, -3], [2, 0]], np.int32)
    w = np.array([[1, 2], [-4, 0]], np.int32)
    # max|x - 1| = 4; rows sum |w - 1| = 0 + 1, 5 + 1 -> 6; max|bias| = 9: 4 * 6 + 9
    assert accumulation_bound(x, 1, w, 1, np.array([9, -2], np.int32)) == 33

    chosen = []

    def spy(bound):
        chosen.append(exact_float_dtype(bound))
        return chosen[-1]

    monkeypatch.setattr(conv, "exact_float_dtype", spy)
    rng = np.random.default_rng(2)
    small = (kgen.codes(rng, (2, 3, 4, 5), -128, 127), kgen.codes(rng, (4, 3, 2, 2), -127, 127))
    mid = (kgen.codes(rng, (2, 3, 4, 5), -32768, 32767), kgen.codes(rng, (4, 3, 2, 2), 0, 65535))
    big = (kgen.codes(rng, (2, 1, 2, 2), -(2**30), 2**30), kgen.codes(rng, (2, 1, 2, 2), -(2**30),
                                                                       2**30))
    for xx, ww in (small, mid, big):
        args = (xx, ww, np.zeros(ww.shape[0], np.int32), 3, -1, 1, 0, 1, 1)
        kgen.same(conv2d_i32_gemm(*args), conv2d_i32_ref(*args))
        kgen.same(conv2d_i32(*args), conv2d_i32_ref(*args))
    assert chosen == [np.float32, np.float64, None]


def test_gemm_chunks_the_batch(kgen, monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # one image per chunk
    rng = np.random.default_rng(3)
    x, zx = kgen.code_tensor(rng, (5, 4, 3, 7), 0)
    w, zw = kgen.code_tensor(rng, (6, 2, 2, 3), 2)
    args = (x, w, np.arange(6, dtype=np.int32), zx, zw, (1, 2), (1, 0, 2, 1), (2, 1), 2)
    kgen.same(conv2d_i32_gemm(*args), conv2d_i32_ref(*args))


@pytest.mark.parametrize("bad,match", [
    (dict(w=np.zeros((2, 3, 6, 1), np.int32)), "height"),
    (dict(groups=2), "groups"),
    (dict(w=np.zeros((2, 2, 1, 1), np.int32)), "input channels"),
    (dict(bias=np.zeros(3, np.int32)), "bias"),
    (dict(bias=np.zeros(2, np.int64)), "int32"),
    (dict(x=np.zeros((1, 3, 5, 5), np.int8)), "int32"),
    (dict(stride=(0, 1)), "stride"),
    (dict(pads=(0, -1, 0, 0)), "pads"),
])
def test_conv_rejects_bad_arguments(bad, match):
    args = dict(x=np.zeros((1, 3, 5, 5), np.int32), w=np.zeros((2, 3, 1, 1), np.int32),
                bias=None, zx=0, zw=0, stride=1, pads=0, dilation=1, groups=1)
    args.update(bad)
    for fn in (conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref):
        with pytest.raises(ValueError, match=match):
            fn(**args)


def test_taps_that_only_see_padding(kgen):
    # W = 1 and a left pad of 2 with dilation 2: tap j = 0 always reads padding, j = 1 the input
    # (regression: the valid-output range of tap 0 must stay inside [0, OW])
    x = np.array([[[[89]]]], np.int32)
    w = np.array([[[[5, 7]]]], np.int32)
    args = (x, w, None, 35, 1, 1, (0, 0, 2, 0), (1, 2), 1)
    want = conv2d_i32_ref(*args)
    assert want.ravel().tolist() == [(89 - 35) * (7 - 1)]
    kgen.same(conv2d_i32(*args), want)
    kgen.same(conv2d_i32_gemm(*args), want)
