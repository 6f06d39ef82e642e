"""The fused executor (amchw.ir.fast) == the reference interpreter bit for bit, on random graphs
(1-D/2-D convs with groups, strides, dilation, padding; per-channel requant with every rounding
mode; max pools with padding and overlap; dense layers; values read twice, which must not be
fused) for 1 and 2 threads, batches below and above the thread count, on the VNNI kernels
(where the CPU has them) and on the exact float path, and with the float32 block limit, chunk
and tile sizes lowered so that reductions split into many blocks and batches into many chunks
and tiles. Also checks the block cut itself."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.ir import (Conv, Dense, Dequantize, FloatType, GraphBuilder, QType, Quantize, Requant,
                      Reshape, acc_type)
from amchw.ir import fast
from amchw.kernels import vnni
from amchw.ir.interp import run
from amchw.ir.ops import MaxPool

ROUNDINGS = ["half_even", "half_up", "half_away", "floor"]
ACT_TYPES = [QType(8, True, False, (2.0**-5,)), QType(8, False, False, (2.0**-5,)),
             QType(4, True, False, (2.0**-2,), 0), QType(8, False, False, (2.0**-5,), 17)]


def _codes(rng, shape, t: QType):
    return rng.integers(t.lo, t.hi, size=shape, endpoint=True).astype(np.int32)


def _requant(rng, k, rounding, out: QType, acc_bound: int, reduction: int):
    """A requant whose scale maps typical accumulators (about bound / sqrt(reduction)) onto the
    output range, so that outputs spread over many codes instead of saturating."""
    per = rng.random() < 0.7
    n = k if per else 1
    s = rng.integers(6, 31, size=n)
    typical = max(acc_bound / np.sqrt(max(reduction, 1)), 1.0)
    target = (out.hi - out.lo) / typical * rng.uniform(0.3, 3.0, size=n)
    m = np.maximum(np.round(target * 2.0**s), 1).astype(np.int64) * rng.choice([-1, 1], size=n)
    m = np.clip(m, -2**40, 2**40)
    off = (rng.uniform(-0.25, 0.25, size=n) * (out.hi - out.lo) * 2.0**s).astype(np.int64)
    lo, hi = sorted(int(v) for v in rng.integers(out.lo, out.hi, size=2, endpoint=True))
    if rng.random() < 0.5:
        lo, hi = out.lo, out.hi
    return Requant(m, s, off, out, lo, hi, rounding)


@st.composite
def graphs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 3))
    k = groups * draw(st.integers(1, 4))
    h = draw(st.integers(1, 4)) if nd == 2 else 1
    w = draw(st.integers(3, 14))
    kh = draw(st.integers(1, min(h, 3))) if nd == 2 else 1
    kw = draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (1, draw(st.integers(1, 2)))
    pads = ((draw(st.integers(0, 2)), draw(st.integers(0, 2))),
            (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    if w + pads[1][0] + pads[1][1] < dil[1] * (kw - 1) + 1:
        dil = (1, 1)  # kw <= 3 <= w: the undilated window always fits
    tin = draw(st.sampled_from(ACT_TYPES))
    wt = QType(8, True, True, (2.0**-7,), 0) if draw(st.booleans()) else \
        QType(4, True, False, (2.0**-3,), draw(st.integers(-2, 2)))
    b = GraphBuilder("rand")
    shape = (c, w) if nd == 1 else (c, h, w)
    b.input("x", shape, FloatType())
    q = b.add("q", Quantize(tin), ["x"])
    wshape = (k, c // groups, kw) if nd == 1 else (k, c // groups, kh, kw)
    weight = _codes(rng, wshape, wt)
    bias = rng.integers(-2**12, 2**12, size=k).astype(np.int32) if draw(st.booleans()) else None
    sel = (lambda t: t[1:]) if nd == 1 else (lambda t: t)
    conv = b.add("conv", Conv(weight, bias, wt, sel(stride), sel(pads), sel(dil), groups,
                              acc_type(tin, wt)), [q.name])
    out_t = draw(st.sampled_from(ACT_TYPES[:2]))
    rq = b.add("rq", _requant(rng, k, draw(st.sampled_from(ROUNDINGS)), out_t, b.bound(conv.name),
                              weight[0].size), [conv.name])
    cur = rq
    outputs = []
    if draw(st.booleans()):  # a pool, possibly padded and overlapping
        pk = draw(st.integers(1, min(3, cur.shape[-1])))
        pkh = draw(st.integers(1, min(2, cur.shape[1]))) if nd == 2 else 1
        ps = draw(st.integers(1, 3))
        pp = draw(st.integers(0, pk - 1))
        kern = (pk,) if nd == 1 else (pkh, pk)
        strd = (ps,) if nd == 1 else (1, ps)
        pad = ((pp, draw(st.integers(0, pk - 1))),) if nd == 1 else ((0, 0), (pp, 0))
        cur = b.add("pool", MaxPool(kern, strd, pad, (1,) * nd), [cur.name])
    if draw(st.booleans()):  # a second reader of the pooled codes: blocks no fusion upstream
        outputs.append(cur.name)
    flat = b.add("flat", Reshape((int(np.prod(cur.shape)),)), [cur.name])
    w2t = QType(8, True, True, (2.0**-7,), 0)
    k2 = draw(st.integers(1, 9))
    d1 = b.add("fc1", Dense(_codes(rng, (k2, flat.shape[0]), w2t), None, w2t,
                            acc_type(flat.dtype, w2t)), [flat.name])
    if draw(st.booleans()):
        r2 = b.add("rq2", _requant(rng, k2, draw(st.sampled_from(ROUNDINGS)), ACT_TYPES[0],
                                   b.bound(d1.name), flat.shape[0]), [d1.name])
        d2 = b.add("fc2", Dense(_codes(rng, (3, k2), w2t), np.array([5, -7, 0], np.int32), w2t,
                                acc_type(r2.dtype, w2t)), [r2.name])
        outputs.append(b.add("out", Dequantize(), [d2.name]).name)
    else:
        outputs.append(d1.name)  # a raw accumulator as a graph output
    n = draw(st.sampled_from([1, 2, 3, 7]))
    x = rng.normal(0, 0.4 * max(abs(tin.lo), tin.hi) * tin.scale[0], size=(n, *shape))
    return b.build(outputs), x.astype(np.float32)


def _same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), np.argwhere(a != b)[:5]


VNNI = [False, True] if vnni.HAVE_VNNI else [False]


@settings(max_examples=60, deadline=None)
@given(graphs(), st.sampled_from([1, 2]), st.booleans(), st.sampled_from(VNNI))
def test_fused_plan_equals_reference(case, threads, squeeze, use_vnni):
    g, x = case
    want = run(g, x, "ref")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vnni, "HAVE_VNNI", use_vnni)
        if squeeze:  # many reduction blocks, one-image chunks and tiles, the threaded paths
            mp.setattr(fast, "F32_LIMIT", 2**11)
            mp.setattr(fast, "CHUNK_BYTES", 1024)
            mp.setattr(fast, "PARALLEL_MIN_MACS", 0)
            mp.setattr(fast, "SPLIT_MIN_MACS", 0)
            mp.setattr(fast, "SMALL_DENSE_BATCH", 2)
            mp.setattr(fast, "TILE_BYTES", 1)
        plan = fast.FastPlan(g, threads)
        if use_vnni and g.nodes[1].op.groups == 1:
            assert f"GEMM ({vnni.KERNEL})" in plan.describe()[1]
            # the conv writes fc1's input itself unless a second reader needs its codes
            assert ("writes fc1's input" in plan.describe()[1]) == (len(g.outputs) == 1)
        _same(plan(x), want)


def test_fusion_and_blocks_on_a_wide_dense():
    """A 4096-wide uint8 x int8 dense cannot be exact in one float32 product: the plan cuts its
    reduction into blocks whose bound stays below 2^24, and fuses conv/requant/pool."""
    rng = np.random.default_rng(0)
    u8 = QType(8, False, False, (2.0**-5,))
    w8 = QType(8, True, True, (2.0**-7,))
    b = GraphBuilder("wide")
    b.input("x", (4, 2048), FloatType())
    q = b.add("q", Quantize(u8), ["x"])
    c = b.add("conv", Conv(_codes(rng, (2, 4, 3), w8), None, w8, (1,), ((1, 1),), (1,), 1,
                           acc_type(u8, w8)), [q.name])
    r = b.add("rq", Requant(np.array([3]), np.array([9]), np.array([0]), u8, 0, 255), [c.name])
    p = b.add("pool", MaxPool((2,), (2,), ((0, 0),), (1,)), [r.name])
    f = b.add("flat", Reshape((2048,)), [p.name])
    w = np.full((3, 2048), 127, np.int32)
    d = b.add("fc", Dense(w, None, w8, acc_type(u8, w8)), [f.name])
    g = b.build([d.name])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vnni, "HAVE_VNNI", False)
        plan = fast.FastPlan(g, 1)
    lines = plan.describe()
    assert lines[1].startswith("conv+rq+pool: float32")
    # 255 * 127 * r < 2^24  <=>  r <= 518 entries per block -> ceil(2048 / 518) = 4 blocks
    assert lines[3] == "fc: float32 GEMM, 4 reduction block(s)"
    x = rng.normal(0, 4, size=(5, 4, 2048)).astype(np.float32)
    _same(plan(x), run(g, x, "ref"))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(0, 40), st.integers(1, 300))
def test_reduction_blocks_cover_and_respect_the_limit(seed, k, r, xb):
    rng = np.random.default_rng(seed)
    wabs = rng.integers(0, 200, size=(k, r))
    limit = 2**14
    blocks = fast.reduction_blocks(wabs, xb, limit)
    if blocks is None:
        assert (wabs * xb).max() >= limit
        return
    assert blocks[0][0] == 0 and blocks[-1][1] == r
    for (a0, a1), (b0, _) in zip(blocks, blocks[1:]):
        assert a1 == b0 and a0 < a1
    for r0, r1 in blocks:
        assert (xb * wabs[:, r0:r1].sum(axis=1)).max(initial=0) < limit
        # greedy: the next entry would not have fitted
        if r1 < r:
            assert (xb * wabs[:, r0:r1 + 1].sum(axis=1)).max() >= limit


@pytest.mark.parametrize("n,c,n0,nb", [(70, 45, 3, 65), (5, 1, 0, 5), (40, 100, 7, 33)])
def test_dense_cols_equals_the_1x1_im2col(n, c, n0, nb):
    """The Dense layer's im2col (a tiled transpose) writes what the general im2col writes for
    a 1 x 1 window on (N, C, 1, 1), and leaves the buffer's other columns alone."""
    from amchw.kernels.fused import dense_cols, im2col_chunk

    x = np.random.default_rng(n).integers(-128, 128, (n, c)).astype(np.int32)
    a = np.full((1, c, nb + 3), 7.0, np.float32)
    b = a.copy()
    dense_cols(x, n0, nb, 5, a)
    im2col_chunk(x.reshape(n, c, 1, 1), n0, nb, 5, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, b)
    assert np.array_equal(a, b) and np.all(a[..., nb:] == 7)


def test_input_codes_outside_their_type_are_refused():
    """The plan's exactness is proven for codes inside their types (float blocks bound by the
    type's range, one byte per code on the VNNI path): codes outside are an IRError."""
    from amchw.ir.types import IRError

    u8 = QType(8, False, False, (2.0**-5,))
    w8 = QType(8, True, True, (2.0**-7,))
    b = GraphBuilder("codes")
    b.input("x", (4,), u8)
    d = b.add("fc", Dense(np.ones((3, 4), np.int32), None, w8, acc_type(u8, w8)), ["x"])
    g = b.build([d.name])
    plan = fast.FastPlan(g, 1)
    ok = np.array([[255, 0, 1, 2]], np.int32)
    _same(plan(ok), run(g, ok, "ref"))
    with pytest.raises(IRError, match=r"outside the input type .*\[0, 255\]"):
        plan(np.array([[300, 0, 1, 2]], np.int32))


@st.composite
def conv_chains(draw):
    """conv -> requant [-> pool] -> conv -> requant [-> conv -> requant], rows of >= 48
    outputs: the later convolutions read channel quads their producer writes (implicit GEMM,
    kernels.vnni.convq_body). Channels and filters not multiples of 4 or 8, padding, height
    strides, dilations, per-channel requantization with every rounding mode, pools."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nd = draw(st.sampled_from([1, 2]))
    c = draw(st.integers(1, 6))
    h = draw(st.integers(1, 3)) if nd == 2 else 1
    w = draw(st.integers(48, 150))
    tin = draw(st.sampled_from(ACT_TYPES))
    w8 = QType(8, True, True, (2.0**-7,), 0)
    b = GraphBuilder("chain")
    shape = (c, w) if nd == 1 else (c, h, w)
    b.input("x", shape, FloatType())
    cur = b.add("q", Quantize(tin), ["x"])
    sel = (lambda t: t[1:]) if nd == 1 else (lambda t: t)
    for layer in range(draw(st.integers(2, 3))):
        cin = cur.shape[0]
        hh = cur.shape[1] if nd == 2 else 1
        k = draw(st.integers(1, 21))
        kh = draw(st.integers(1, min(hh, 2))) if nd == 2 else 1
        kw = draw(st.integers(1, 5))
        dil = (1, draw(st.integers(1, 2)))
        pads = ((draw(st.integers(0, 1)), draw(st.integers(0, 1))),
                (draw(st.integers(0, 3)), draw(st.integers(0, 3))))
        stride = (draw(st.integers(1, 2)), 1)
        weight = _codes(rng, (k, cin, kw) if nd == 1 else (k, cin, kh, kw), w8)
        bias = rng.integers(-2**12, 2**12, size=k).astype(np.int32) if draw(st.booleans()) \
            else None
        conv = b.add(f"conv{layer}", Conv(weight, bias, w8, sel(stride), sel(pads), sel(dil), 1,
                                          acc_type(cur.dtype, w8)), [cur.name])
        out_t = draw(st.sampled_from(ACT_TYPES[:2]))
        cur = b.add(f"rq{layer}", _requant(rng, k, draw(st.sampled_from(ROUNDINGS)), out_t,
                                           b.bound(conv.name), weight[0].size), [conv.name])
        if layer == 0 and draw(st.booleans()) and cur.shape[-1] >= 100:
            cur = b.add("pool", MaxPool((2,), (2,), ((0, 0),), (1,)) if nd == 1 else
                        MaxPool((1, 2), (1, 2), ((0, 0), (0, 0)), (1, 1)), [cur.name])
    out = b.add("out", Dequantize(), [cur.name])
    n = draw(st.sampled_from([1, 2, 5, 9]))
    x = rng.normal(0, 0.4 * max(abs(tin.lo), tin.hi) * tin.scale[0], size=(n, *shape))
    return b.build([out.name]), x.astype(np.float32)


@pytest.mark.skipif(not vnni.HAVE_VNNI, reason="no integer kernels for this CPU")
@settings(max_examples=40, deadline=None)
@given(conv_chains(), st.sampled_from([1, 2]), st.booleans())
def test_implicit_conv_chains_equal_reference(case, threads, squeeze):
    g, x = case
    want = run(g, x, "ref")
    with pytest.MonkeyPatch.context() as mp:
        if squeeze:  # one-image chunks and tiles, filters shared between the threads
            mp.setattr(fast, "CHUNK_BYTES", 1024)
            mp.setattr(fast, "PARALLEL_MIN_MACS", 0)
            mp.setattr(fast, "SPLIT_MIN_MACS", 0)
            mp.setattr(fast, "TILE_BYTES", 1)
        plan = fast.FastPlan(g, threads)
    text = " | ".join(plan.describe())
    # every later convolution whose rows fit reads channel quads
    for s in plan.steps[2:]:
        if isinstance(s, fast._Gemm) and s.vnni is not None and s.prepared:
            assert (s.vnni[0] == "convq") == vnni.convq_fits(s.vnni[1]), text
    _same(plan(x), want)


def test_implicit_conv_is_used_on_vtcnn2_shapes():
    """A conv of 256 filters over 2 x 132 positions feeding one of 80 filters (2 x 3): the
    second runs on channel quads."""
    rng = np.random.default_rng(5)
    u8 = QType(8, False, False, (2.0**-5,))
    w8 = QType(8, True, True, (2.0**-7,), 0)
    b = GraphBuilder("vt")
    b.input("x", (1, 2, 128), FloatType())
    b.add("q", Quantize(u8), ["x"])
    b.add("c1", Conv(_codes(rng, (16, 1, 1, 3), w8), None, w8, (1, 1), ((0, 0), (2, 2)),
                     (1, 1), 1, acc_type(u8, w8)), ["q"])
    b.add("r1", Requant(np.array([3]), np.array([8]), np.array([0]), u8, 0, 255), ["c1"])
    b.add("c2", Conv(_codes(rng, (10, 16, 2, 3), w8), None, w8, (1, 1), ((0, 0), (2, 2)),
                     (1, 1), 1, acc_type(u8, w8)), ["r1"])
    b.add("out", Dequantize(), ["c2"])
    g = b.build(["out"])
    plan = fast.FastPlan(g, 1)
    if vnni.HAVE_VNNI:
        assert "implicit: no im2col" in plan.describe()[2]
    x = rng.normal(0, 2, size=(3, 1, 2, 128)).astype(np.float32)
    _same(plan(x), run(g, x, "ref"))
