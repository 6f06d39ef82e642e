"""entropy_exit_i32 (the integer early-exit decision): loop kernel == vectorised ref == the same
fixed-point formula in Python integers (which cannot overflow, and where every intermediate is
checked against the int64 range); the flag equals the exact float rule beyond the stated error
bound, over random logit codes with ties, all-equal logits (H = 1), one dominant logit (H ~ 0)
and the ends of the int32 range."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.ir.ops import EntropyExit, exit_int64_bounds
from amchw.kernels import entropy_exit_i32, entropy_exit_i32_ref

PROFILE = settings.get_profile("amchw-kernels")
I64 = 2**63 - 1
# logit scales: the ee-v* exit heads' 2^-16, coarse and fine powers of two, float scales
SCALES = [2.0**-16, 2.0**-7, 2.0**-20, 0.75, 1.3e-5, 0.0123]  # 2^-20: F lowered to 22


def _args(op: EntropyExit, q, offset, zq):
    off = np.zeros(1, np.int64) if offset is None else offset
    return (q, off, zq, op.shift, op.exp_hi, op.exp_lo, op.frac_bits, op.ln_table,
            op.ln_bits, op.k_mult, op.c_fix, op.ln2_fix)


def python_flags(op: EntropyExit, q, offset, zq) -> np.ndarray:
    """The EntropyExit formula in Python integers, written from the docstring; asserts that
    every intermediate lies in int64 (the bound the kernels rely on)."""
    F, r, M = op.frac_bits, op.shift, op.ln_bits
    hi, lo, ln = ([int(v) for v in a] for a in (op.exp_hi, op.exp_lo, op.ln_table))
    out = []
    for row in q.tolist():
        off = [0] * len(row) if offset is None else [int(v) for v in offset]
        x = [v - zq + o for v, o in zip(row, off)]
        top = max(x)
        S = A = 0
        for xi in x:
            d = top - xi
            assert 0 <= d < 2**63
            j, k = divmod(d, 2**r)
            if j < len(hi):
                p = hi[j] * lo[k] + 2 ** (F - 1)
                assert p <= I64
                e = p // 2**F
                S += e
                A += e * d
        b = S.bit_length() - 1
        t, f = divmod(S, 2 ** (b - M))
        k = t - 2**M
        prod = (ln[k + 1] - ln[k]) * f
        lnS = (b - F) * op.ln2_fix + ln[k] + prod // 2 ** (b - M)
        h = op.c_fix - lnS
        for v in (S, A, op.k_mult * A, S * h, prod, lnS):
            assert abs(v) <= I64, v
        out.append(1 if op.k_mult * A <= S * h else 0)
    return np.array(out, np.int32)


def h10(z: np.ndarray) -> np.ndarray:
    """Base-10 entropy of softmax(z) in float64, computed independently of amchw."""
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, -p * np.log10(p), 0.0)
    return t.sum(axis=1)


def logit_rows(rng, n_rows, n, scale):
    """Codes with entropies over [0, 1]: spreads from far below to far above 1/scale, ties,
    all-equal rows, a dominant logit, and the int32 range's ends."""
    spread = rng.choice([0.3, 1, 3, 10, 40, 1e4], size=(n_rows, 1)) / scale
    q = np.clip(np.round(rng.normal(0, 1, (n_rows, n)) * spread), -2**31, 2**31 - 1)
    q = q.astype(np.int64)
    tie = rng.random(n_rows) < 0.2
    q[tie, 1 % n] = q[tie, 0]
    q[rng.random(n_rows) < 0.05] = int(rng.integers(-2**31, 2**31))   # all equal: H = 1
    dom = rng.random(n_rows) < 0.05
    q[dom, 0] = 2**31 - 1                                               # H ~ 0
    q[dom, 1:] = -2**31
    return q.astype(np.int32)


@PROFILE
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), si=st.integers(0, len(SCALES) - 1),
       threshold=st.sampled_from([-0.5, 0.0, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0, 2.0, math.inf]),
       with_offset=st.booleans())
def test_kernel_equals_ref_equals_python(seed, n, si, threshold, with_offset):
    rng = np.random.default_rng(seed)
    s = SCALES[si]
    q = logit_rows(rng, 6, n, s)
    zq = int(rng.choice([0, -2**31, 2**31 - 1, int(rng.integers(-100, 100))]))
    off = rng.integers(-2**31 + 1, 2**31, n).astype(np.int64) if with_offset else None
    op = EntropyExit.make(threshold, s, n, off)
    got = entropy_exit_i32(*_args(op, q, off, zq))
    ref = entropy_exit_i32_ref(*_args(op, q, off, zq))
    assert got.dtype == ref.dtype == np.int32 and got.shape == (6,)
    assert np.array_equal(got, ref)
    assert np.array_equal(got, python_flags(op, q, off, zq))


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("n", [1, 2, 10, 24])
def test_flag_is_the_float_rule_beyond_the_bound(s, n):
    rng = np.random.default_rng(n)
    q = logit_rows(rng, 400, n, s)
    x = q.astype(np.float64)
    h = h10((x - x.max(axis=1, keepdims=True)) * s)
    for T in (0.0, 0.03, 0.05, 0.1, 0.3, 0.6, 0.95):
        op = EntropyExit.make(T, s, n)
        eps = op.error_bound(s, n)
        assert 0 < eps < 1e-3
        flags = entropy_exit_i32_ref(*_args(op, q, None, 0))
        far = np.abs(h - T) > eps
        assert np.array_equal(flags[far] == 1, h[far] <= T), (T, np.flatnonzero(far & (
            (flags == 1) != (h <= T)))[:5])


@pytest.mark.parametrize("s", [2.0**-16, 1.3e-5, 0.0123])
@pytest.mark.parametrize("T", [0.05, 0.5])
def test_flag_next_to_the_threshold(s, T):
    # frames whose entropy lies a few error bounds from T: random directions v scaled to the
    # crossing (entropy falls as the logits are stretched), then codes around it
    n = 10
    rng = np.random.default_rng(7)
    op = EntropyExit.make(T, s, n)
    eps = op.error_bound(s, n)
    rows = []
    for _ in range(60):
        v = rng.normal(0, 1, n)
        lo, hi = 1e-3, 1e3
        for _ in range(60):                        # bisection on the stretch, in log space
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if h10((mid * v)[None])[0] > T else (lo, mid)
        rows.append(np.round(np.outer(1 + np.linspace(-3e-3, 3e-3, 61), lo * v / s)))
    q = np.concatenate(rows).astype(np.int32)
    x = q.astype(np.float64)
    h = h10((x - x.max(axis=1, keepdims=True)) * s)
    flags = entropy_exit_i32(*_args(op, q, None, 0))
    assert np.array_equal(flags, entropy_exit_i32_ref(*_args(op, q, None, 0)))
    far = np.abs(h - T) > eps
    near = np.abs(h - T) <= 100 * eps
    assert near.sum() > 50 and (near & far).sum() > 20   # the test does reach the edge
    assert np.array_equal(flags[far] == 1, h[far] <= T)


def test_all_equal_one_dominant_and_the_int32_ends():
    s, n = 2.0**-16, 10
    eq = np.full((3, n), 7, np.int32)
    eq[1], eq[2] = -2**31, 2**31 - 1
    dom = np.full((2, n), -2**31, np.int32)
    dom[:, 3] = 2**31 - 1
    dom[1, 5] = 2**31 - 2                     # a second logit one code below: no longer ~0
    for T, want_eq in ((1 - 1e-4, 0), (1 + 1e-4, 1), (1.0 - 2e-5, 0)):
        op = EntropyExit.make(T, s, n)
        assert op.error_bound(s, n) < 1e-5
        for fn in (entropy_exit_i32, entropy_exit_i32_ref):
            assert fn(*_args(op, eq, None, 0)).tolist() == [want_eq] * 3   # H10 = 1 exactly
    op = EntropyExit.make(0.05, s, n)
    for fn in (entropy_exit_i32, entropy_exit_i32_ref):
        # H of (2^32 - 1) s = 65536 apart: 0; two top logits 2^-16 apart: ~log10(2) = 0.30
        assert fn(*_args(op, dom, None, 0)).tolist() == [1, 0]
        assert fn(*_args(op, dom, None, -2**31)).tolist() == [1, 0]
    assert python_flags(op, dom, None, 2**31 - 1).tolist() == [1, 0]
    # T = 0: only a frame whose other logits are beyond the exp table (H < 1e-300) exits
    op0 = EntropyExit.make(0.0, s, n)
    assert entropy_exit_i32(*_args(op0, dom, None, 0)).tolist() == [1, 0]
    # thresholds outside [0, 1]: constant decisions
    rows = np.concatenate([eq, dom])
    for T, want in ((-1e-9, 0), (-math.inf, 0), (1.5, 1), (math.inf, 1)):
        op = EntropyExit.make(T, s, n)
        assert entropy_exit_i32(*_args(op, rows, None, 0)).tolist() == [want] * 5


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("n", [1, 2, 10, 64, 1000])
def test_int64_bounds_hold_with_margin(s, n):
    # the validator's worst cases (proved in amchw.ir.ops.exit_int64_bounds) stay below 2^62
    # for the G that make() picks, and the Python run above checks the same intermediates
    op = EntropyExit.make(0.05, s, n)
    b = exit_int64_bounds(s, n, op.frac_bits, op.g_bits, op.shift, op.ln_bits)
    assert max(b.values()) < 2**62
    assert len(op.exp_hi) <= 4096 and len(op.exp_lo) <= 4096
    # the worst-case frame: one logit at the top of int32, the others exactly where e*d peaks
    j = int(np.argmax([e * ((k + 1) * 2**op.shift - 1) for k, e in enumerate(op.exp_hi)]))
    d = (j + 1) * 2**op.shift - 1
    q = np.full((1, n), 2**31 - 1 - d, np.int64)
    q[0, 0] = 2**31 - 1
    q = np.clip(q, -2**31, 2**31 - 1).astype(np.int32)
    assert python_flags(op, q, None, -2**31).shape == (1,)


def test_argument_checks():
    op = EntropyExit.make(0.05, 2.0**-16, 4)
    q = np.zeros((2, 4), np.int32)
    with pytest.raises(ValueError, match="int32"):
        entropy_exit_i32(q.astype(np.int64), *_args(op, q, None, 0)[1:])
    with pytest.raises(ValueError, match="offset"):
        entropy_exit_i32(*_args(op, q, np.zeros(3, np.int64), 0))
    bad = list(_args(op, q, None, 0))
    bad[5] = op.exp_lo[:-1]
    with pytest.raises(ValueError, match="exp_lo"):
        entropy_exit_i32(*bad)
