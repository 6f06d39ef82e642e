"""kernels.vnni == the _ref twins bit for bit: conv_chunk against conv2d_i32_ref (then
requant_i32_ref and maxpool2d_i32_ref) and dense_chunk against dense_i32_ref, on shapes that
cross the kernels' tiles (filters not a multiple of 8 or 64, in two shares as threads split
them, positions not a multiple of 48,
reductions not a multiple of 4, every dense row tile), strides, dilations, asymmetric padding,
signed, unsigned and offset input codes, weights at both ends of int8, and accumulators that
wrap. Runs only where the CPU has AVX-512 VNNI (elsewhere amchw never calls these kernels)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import (ROUNDING_NAMES, conv2d_i32_ref, dense_i32_ref, maxpool2d_i32_ref,
                           requant_i32_ref)
from amchw.kernels import vnni
from amchw.kernels.fused import requant_f32_params

pytestmark = pytest.mark.skipif(not vnni.HAVE_VNNI, reason="this CPU has no AVX-512 VNNI")

SEED = st.integers(0, 2**32 - 1)
NO_POOL = (0, 1, 1, 1, 1, 1, 1, 0, 0)
# (xmin, zx): int8, uint8, uint8 with a zero point inside, int4
INPUTS = [(-128, 0), (0, 0), (0, 17), (-8, 0)]


def _no_rq(k):
    z = np.zeros(k, np.int64)
    return (False, z, z, z, 0, 0, 0, 0, 0)


def _weights(rng, shape, wide):
    """Centred int8 weights, a fifth of them at -128 or 127 when wide (accumulators that
    wrap int32 with a large bias), else small."""
    if not wide:
        return rng.integers(-9, 10, size=shape)
    w = rng.integers(-128, 128, size=shape)
    ends = rng.random(shape) < 0.2
    w[ends] = rng.choice([-128, 127], size=int(ends.sum()))
    return w


@st.composite
def conv_cases(draw):
    nd = draw(st.sampled_from([1, 2]))
    h = draw(st.integers(1, 3)) if nd == 2 else 1
    kh = draw(st.integers(1, h)) if nd == 2 else 1
    return dict(nd=nd, n=draw(st.integers(1, 5)), c=draw(st.integers(1, 70)), h=h,
                w=draw(st.integers(3, 70)), k=draw(st.integers(1, 40)), kh=kh,
                kw=draw(st.integers(1, 3)), sh=draw(st.integers(1, 2)) if nd == 2 else 1,
                sw=draw(st.integers(1, 3)), dw=draw(st.integers(1, 2)),
                pads=(draw(st.integers(0, 2)), draw(st.integers(0, 2)),
                      draw(st.integers(0, 2)), draw(st.integers(0, 2))),
                inp=draw(st.sampled_from(INPUTS)), wide=draw(st.booleans()),
                rq=draw(st.booleans()), pool=draw(st.booleans()),
                rounding=draw(st.sampled_from(sorted(ROUNDING_NAMES))),
                chunk=draw(st.integers(1, 5)))


@settings(max_examples=60, deadline=None)
@given(c=conv_cases(), seed=SEED, f32=st.booleans(), big=st.booleans())
def test_conv_chunk_equals_refs(c, seed, f32, big):
    """f32: the requantization in float32 lanes where requant_f32_params allows it, else in
    int64 (the one-pass _epi_i64 for a positive multiplier, no pool or 1-D disjoint windows;
    gemm_epilogue otherwise); big: multipliers up to 2^40 with shifts up to 52, as BatchNorm
    folded into float scales gives them (small accumulators only: a * m stays in int64)."""
    rng = np.random.default_rng(seed)
    xmin, zx = c["inp"]
    top, bottom, left, right = c["pads"]
    if c["nd"] == 1:
        top = bottom = 0
    span_w = c["dw"] * (c["kw"] - 1) + 1
    if c["w"] + left + right < span_w:
        left = right = span_w
    x = rng.integers(xmin, xmin + (255 if xmin != -8 else 15), size=(c["n"], c["c"], c["h"],
                                                                   c["w"]), endpoint=True)
    x = x.astype(np.int32)
    wc = _weights(rng, (c["k"], c["c"], c["kh"], c["kw"]), c["wide"])
    bias = rng.integers(-2**31, 2**31, size=c["k"]) if c["wide"] else rng.integers(-99, 99,
                                                                                    c["k"])
    bias = bias.astype(np.int32)
    acc = conv2d_i32_ref(x, wc.astype(np.int32), bias, zx, 0, (c["sh"], c["sw"]),
                         (top, bottom, left, right), (1, c["dw"]))
    oh_n, ow_n = acc.shape[2:]
    want = acc
    rq = _no_rq(c["k"])
    if c["rq"]:
        mult = rng.integers(1, 2**12, size=c["k"]) * rng.choice([-1, 1, 1, 1])
        shift = rng.integers(4, 16, size=c["k"])
        offset = rng.integers(-2**10, 2**10, size=c["k"])
        if big and not c["wide"]:
            shift = rng.integers(30, 53, size=c["k"])
            mult = rng.integers(2**20, 2**40, size=c["k"]) >> np.maximum(52 - shift, 0)
            mult = np.maximum(mult, 1)
            offset = rng.integers(-2**45, 2**45, size=c["k"])
        rnd = ROUNDING_NAMES[c["rounding"]]
        rq = (True, mult, shift, offset, 0, 0, 0, 255, rnd)
        want = requant_i32_ref(acc, mult, shift, offset, 0, 0, 0, 255, rnd)
    pool = NO_POOL
    if c["pool"] and ow_n >= 2:
        pool = (1, 1, 2, 1, 2, 1, 1, 0, 0)
        want = maxpool2d_i32_ref(want, (1, 2), (1, 2), (0, 0, 0, 0))
    geom = (c["kh"], c["kw"], c["sh"], c["sw"], 1, c["dw"], top, left)
    prm, chan, w, _ = vnni.conv_plan(wc.reshape(c["k"], -1), bias, xmin, zx,
                                     (c["c"], c["h"], c["w"]), geom, (oh_n, ow_n), rq, pool)
    fq = (requant_f32_params(*rq[1:8]) if c["rq"] and f32 else np.zeros((6, 0)))
    sizes = vnni.conv_scratch(prm, c["c"], c["chunk"])
    out = np.full(want.shape, -7, np.int32)
    bufs = [np.empty(sizes[0], np.uint8), np.empty(sizes[1], np.uint32),
            np.empty(sizes[2], np.int32)]
    # the filters in two shares, cut at a whole tile of 8 (as threads share a layer)
    cut = 8 * int(rng.integers(0, -(-c["k"] // 8) + 1))
    for n0 in range(0, c["n"], c["chunk"]):
        for k_lo, k_hi in ((0, cut), (cut, c["k"])):
            if k_hi > k_lo:
                vnni.conv_chunk(x, n0, min(c["chunk"], c["n"] - n0), prm, chan, fq, w, *bufs,
                                out, k_lo, k_hi)
    assert np.array_equal(out, want), np.argwhere(out != want)[:5]


@settings(max_examples=60, deadline=None)
@given(seed=SEED, n=st.integers(1, 20), r=st.integers(1, 3000), k=st.integers(1, 150),
       inp=st.sampled_from(INPUTS), wide=st.booleans(), rq=st.booleans(),
       chunk=st.integers(1, 20))
def test_dense_chunk_equals_refs(seed, n, r, k, inp, wide, rq, chunk):
    rng = np.random.default_rng(seed)
    xmin, zx = inp
    hi = xmin + (255 if xmin != -8 else 15)
    x = rng.integers(xmin, hi, size=(n, r), endpoint=True).astype(np.int32)
    wc = _weights(rng, (k, r), wide)
    bias = (rng.integers(-2**31, 2**31, size=k) if wide else rng.integers(-99, 99, k))
    bias = bias.astype(np.int32)
    want = dense_i32_ref(x, wc.astype(np.int32), bias, zx, 0)
    rqp = _no_rq(k)
    if rq:
        mult = rng.integers(1, 2**12, size=k)
        shift = rng.integers(4, 20, size=k)
        offset = rng.integers(-2**10, 2**10, size=k)
        rqp = (True, mult, shift, offset, 0, 3, -128, 127, 0)
        want = requant_i32_ref(want, mult, shift, offset, 0, 3, -128, 127, 0)
    prm, chan, w, _ = vnni.dense_plan(wc, bias, xmin, zx, rqp)
    fq = requant_f32_params(*rqp[1:8]) if rq else np.zeros((6, 0))
    sizes = vnni.dense_scratch(prm, chunk)
    out = np.full((n, k, 1, 1), -7, np.int32)
    a8, acc = np.empty(sizes[0], np.uint8), np.empty(sizes[1], np.int32)
    cut = 64 * int(rng.integers(0, -(-k // 64) + 1))  # filter shares: whole panels
    for n0 in range(0, n, chunk):
        for k_lo, k_hi in ((0, cut), (cut, k)):
            if k_hi > k_lo:
                vnni.dense_chunk(x, n0, min(chunk, n - n0), prm, chan, fq, w, a8, acc, out,
                                 k_lo, k_hi)
    assert np.array_equal(out[:, :, 0, 0], want)


def test_folded_bias_moves_products_back_to_the_zero_point():
    """sum (x - zx) w == sum (x - xmin) w + (xmin - zx) sum w, for every filter."""
    rng = np.random.default_rng(3)
    wc = rng.integers(-128, 128, size=(5, 40))
    x = rng.integers(0, 256, size=40)
    b = rng.integers(-1000, 1000, size=5)
    got = (x - 0) @ wc.T + vnni.folded_bias(b, wc, 0, 17)
    assert np.array_equal(got, (x - 17) @ wc.T + b)
