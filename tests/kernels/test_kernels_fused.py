"""kernels.fused == the unfused kernels' _ref twins bit for bit: gemm_epilogue against
wrap_i32_ref -> requant_i32_ref -> maxpool2d_i32_ref on random block sums (small shifts, so
that rounding ties are common), im2col_chunk against a strided-window construction, and
dense_acc_small against an int64 matrix product. The requantization runs both in int64 and,
where requant_f32_params admits it, in float32 lanes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.kernels import ROUNDING_NAMES, maxpool2d_i32_ref, requant_i32_ref, wrap_i32_ref
from amchw.kernels.fused import (dense_acc_small, gemm_epilogue, im2col_chunk,
                                 requant_f32_params)

PROFILE = settings.get_profile("amchw-kernels")
SEED = st.integers(0, 2**32 - 1)


@st.composite
def epilogue_cases(draw):
    groups = draw(st.integers(1, 3))
    kg = draw(st.integers(1, 4))
    kk0 = draw(st.integers(0, kg - 1))
    kgs = draw(st.integers(1, kg - kk0))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    pool = None
    if draw(st.booleans()):
        pkh, pkw = draw(st.integers(1, oh)), draw(st.integers(1, ow))
        psh, psw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        if draw(st.booleans()):  # the non-overlapping 1-D case has its own loop
            pkh, psh, psw = 1, 1, pkw
        ptop, pleft = draw(st.integers(0, pkh - 1)), draw(st.integers(0, pkw - 1))
        pbot, pright = draw(st.integers(0, pkh - 1)), draw(st.integers(0, pkw - 1))
        pool = (pkh, pkw, psh, psw, ptop, pbot, pleft, pright)
    return dict(groups=groups, kg=kg, kk0=kk0, kgs=kgs, oh=oh, ow=ow, pool=pool,
                nblk=draw(st.integers(1, 3)), nb=draw(st.integers(1, 3)),
                n0=draw(st.integers(0, 2)), rq=draw(st.booleans()),
                rounding=draw(st.sampled_from(sorted(ROUNDING_NAMES))),
                f64=draw(st.booleans()), f32rq=draw(st.booleans()))


@PROFILE
@given(c=epilogue_cases(), seed=SEED)
def test_gemm_epilogue_equals_unfused_refs(c, seed, kgen):
    rng = np.random.default_rng(seed)
    g, kg, kgs, kk0 = c["groups"], c["kg"], c["kgs"], c["kk0"]
    k_ = g * kg
    plane = c["oh"] * c["ow"]
    nb, n0 = c["nb"], c["n0"]
    ftype = np.float64 if c["f64"] else np.float32
    lim = 2**40 if c["f64"] else 2**23
    acc = rng.integers(-lim, lim, size=(c["nblk"], g, kgs, nb * plane), endpoint=True)
    acc[rng.random(acc.shape) < 0.1] = lim  # extremes: with the bias they wrap int32
    big = rng.random() < 0.3  # int32-range biases (wrap) and multipliers, else moderate ones
    bias = kgen.codes(rng, (k_,), *((-2**31, 2**31 - 1) if big else (-2**10, 2**10)))
    mult = rng.integers(*((-2**31, 2**31) if big else (-2**6, 2**6)), size=k_)
    shift = rng.integers(0, 4, size=k_)  # small shifts: many exact ties
    offset = rng.integers(-8, 8, size=k_)
    zx, zo = int(rng.integers(-3, 4)), int(rng.integers(-3, 4))
    if c["f32rq"]:  # a requantization that the float32 form holds exactly
        mult = rng.integers(1, 2**6, size=k_)
        lo, hi = sorted(int(v) for v in rng.integers(-2**10, 2**10, size=2))
    elif rng.random() < 0.5:
        lo, hi = -2**31, 2**31 - 1
    else:
        lo, hi = sorted(int(v) for v in rng.integers(-2**27, 2**27, size=2))
    rnd = ROUNDING_NAMES[c["rounding"]]
    fq = requant_f32_params(mult, shift, offset, zx, zo, lo, hi)
    assert fq.shape == (6, k_ if c["f32rq"] else fq.shape[1])
    if not c["f32rq"]:
        fq = np.zeros((6, 0))
    # reference: wrap(sum of blocks + bias) -> requant -> max-pool, image by image
    ks = np.array([gg * kg + kk0 + kk for gg in range(g) for kk in range(kgs)])
    s = acc.sum(axis=0).reshape(g * kgs, nb, c["oh"], c["ow"]).transpose(1, 0, 2, 3)
    a = wrap_i32_ref(s + bias[ks][None, :, None, None].astype(np.int64))
    q = requant_i32_ref(a, mult[ks], shift[ks], offset[ks], zx, zo, lo, hi, rnd) if c["rq"] else a
    if c["pool"]:
        pkh, pkw, psh, psw, pt, pb, pl, pr = c["pool"]
        q = maxpool2d_i32_ref(q, (pkh, pkw), (psh, psw), (pt, pb, pl, pr))
    out = np.full((n0 + nb + 1, k_, *q.shape[2:]), -7, np.int32)
    want = out.copy()
    want[n0:n0 + nb, ks] = q
    has_pool = c["pool"] is not None
    pkh, pkw, psh, psw, pt, _, pl, _ = c["pool"] or (1, 1, 1, 1, 0, 0, 0, 0)
    gemm_epilogue(acc.astype(ftype), bias, kk0, n0, c["oh"], c["ow"], c["rq"], mult, shift,
                  offset, zx, zo, lo, hi, rnd, has_pool, pkh, pkw, psh, psw, 1, 1, pt, pl, out, fq)
    kgen.same(out, want)


@PROFILE
@given(seed=SEED, groups=st.integers(1, 3), cg=st.integers(1, 3), h=st.integers(1, 4),
       w=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 3), s=st.integers(1, 2),
       d=st.integers(1, 2), top=st.integers(0, 2), left=st.integers(0, 2))
def test_im2col_chunk_equals_window_construction(seed, groups, cg, h, w, kh, kw, s, d, top,
                                                 left, kgen):
    rng = np.random.default_rng(seed)
    n_, c_ = 3, groups * cg
    x, zx = kgen.code_tensor(rng, (n_, c_, h, w), int(rng.integers(0, 5)))
    kh = min(kh, h + top)
    kw = min(kw, w + left)
    oh_n = (h + top - d * (kh - 1) - 1) // s + 1
    ow_n = (w + left - d * (kw - 1) - 1) // s + 1
    if oh_n < 1 or ow_n < 1:
        return
    xp = np.zeros((n_, c_, h + top + kh * d, w + left + kw * d), np.int64)
    xp[:, :, top:top + h, left:left + w] = x.astype(np.int64) - zx
    want = np.empty((groups, cg * kh * kw, 2 * oh_n * ow_n))
    for nn, n in enumerate((1, 2)):
        for gg in range(groups):
            for cc in range(cg):
                for i in range(kh):
                    for j in range(kw):
                        win = xp[n, gg * cg + cc, i * d::s, j * d::s][:oh_n, :ow_n]
                        want[gg, (cc * kh + i) * kw + j,
                             nn * oh_n * ow_n:(nn + 1) * oh_n * ow_n] = win.ravel()
    cols = np.full((groups, cg * kh * kw, 2 * oh_n * ow_n), np.nan)
    im2col_chunk(x, 1, 2, zx, kh, kw, s, s, d, d, top, left, groups, oh_n, ow_n, cols)
    assert np.array_equal(cols, want)


@PROFILE
@given(seed=SEED, n=st.integers(1, 4), k=st.integers(1, 9), r=st.integers(0, 300))
def test_dense_acc_small_equals_int64_product(seed, n, k, r, kgen):
    rng = np.random.default_rng(seed)
    xc = kgen.codes(rng, (n, r), -255, 255).astype(np.int16)
    w = kgen.codes(rng, (k, r), -255, 255).astype(np.int16)
    acc = np.empty((1, 1, k, n), np.int32)
    dense_acc_small(xc, w, acc)
    want = (w.astype(np.int64) @ xc.astype(np.int64).T).astype(np.int32)
    kgen.same(acc[0, 0], want)


def test_requant_f32_params_refuses_what_float32_cannot_hold():
    k = np.array
    ok = requant_f32_params(k([1, 3]), k([7, 2]), k([0, -5]), 0, 0, 0, 255)
    assert ok.shape == (6, 2)
    # a_lo, a_hi bracket the codes: R(a_lo) <= lo - 1 and R(a_hi) >= hi + 1
    assert ok[0, 0] * 1 / 2**7 <= -1 and ok[1, 0] / 2**7 >= 256
    assert requant_f32_params(k([-1]), k([3]), k([0]), 0, 0, 0, 255).shape == (6, 0)
    assert requant_f32_params(k([0]), k([3]), k([0]), 0, 0, 0, 255).shape == (6, 0)
    # BatchNorm-folded multipliers (about 2^44, shift 48) need int64
    assert requant_f32_params(k([2**44]), k([48]), k([2**54]), 0, 0, 0, 255).shape == (6, 0)
    # a 16-bit output range times a shift of 10 leaves float32's exact integers
    assert requant_f32_params(k([1]), k([10]), k([0]), 0, 0, -2**15, 2**15 - 1).shape == (6, 0)
