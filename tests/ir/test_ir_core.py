"""IR unit tests: fixed-point requant exactness, validator errors naming nodes, printer and
save/load round trips. The requant test compares against exact rational arithmetic."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amchw.ir import (Conv, Dense, FloatType, GraphBuilder, IRError, QType, Quantize, Requant,
                      Reshape, acc_type, fixed_multiplier, fixed_offset)
from amchw.ir.interp import run
from amchw.ir.io import load, save
from amchw.ir.printer import to_text
from amchw.kernels import ROUND_HALF_EVEN, ROUNDING_NAMES, requant_i32_ref

I8 = QType(8, True, False, (2.0**-6,))
W8 = QType(8, True, True, (2.0**-7,))


def exact_requant(acc: int, M: Fraction, B: Fraction, lo: int, hi: int) -> int:
    """The exact rational result: clamp(round_half_even(acc * M + B))."""
    return max(lo, min(hi, round(acc * M + B)))


@settings(max_examples=300, deadline=None)
@given(acc=st.integers(-2**31, 2**31 - 1), k=st.integers(-40, 20))
def test_requant_pow2_reproduces_exact_rational(acc, k):
    # power-of-two multipliers (what po2 scales give) are represented exactly, ties included
    M = Fraction(2) ** k
    m, s = fixed_multiplier(M)
    assert Fraction(m, 2**s) == M
    got = requant_i32_ref(np.array([[acc]], np.int32), np.array([m]), np.array([s]),
                          np.array([0]), 0, 0, -2**31, 2**31 - 1, ROUND_HALF_EVEN)[0, 0]
    assert got == exact_requant(acc, M, Fraction(0), -2**31, 2**31 - 1)


@settings(max_examples=300, deadline=None)
@given(acc=st.integers(-2**22, 2**22), num=st.integers(1, 2**40), den=st.integers(1, 2**40),
       bnum=st.integers(-2**30, 2**30))
def test_requant_wide_mantissa_matches_rational_off_ties(acc, num, den, bnum):
    # a general rational multiplier with the lowering's wide mantissa: equal to the exact
    # result unless the exact value lies within the proven error bound of a tie
    M, B = Fraction(num, den), Fraction(bnum, 2**20)
    assume(M < 2**20)  # larger multipliers do not fit the mantissa (fixed_multiplier refuses)
    assume(abs(B) <= M * 2**22)  # an offset within the accumulator range (the lowering's case)
    bits = 61 - (2**22).bit_length()
    m, s = fixed_multiplier(M, strip=False, bits=bits)
    o = fixed_offset(B, s)
    got = int(requant_i32_ref(np.array([[acc]], np.int32), np.array([m]), np.array([s]),
                              np.array([o]), 0, 0, -2**31, 2**31 - 1, ROUND_HALF_EVEN)[0, 0])
    v = acc * M + B
    err = abs(acc * (Fraction(m, 2**s) - M)) + abs(Fraction(o, 2**s) - B)
    tie_dist = abs(v - (v.__floor__() + Fraction(1, 2)))
    if tie_dist > err:
        assert got == exact_requant(acc, M, B, -2**31, 2**31 - 1)
    # rounding the mantissa and offset errs by at most half a unit of 2^-s each
    assert err <= Fraction(abs(acc) + 1, 2 ** (s + 1))
    if s < 62:  # normalised: the relative error of the multiplier is below 2^-(bits-1)
        assert abs(m) >= 2 ** (bits - 1)


def test_ties_follow_the_rounding_field():
    # 5/2 and -5/2 with every rounding mode, through the IR op on a 1-channel tensor
    for rounding, want in [("half_even", [2, -2]), ("half_up", [3, -2]),
                           ("half_away", [3, -3]), ("floor", [2, -3])]:
        op = Requant(np.array([1]), np.array([1]), np.array([0]), QType(8, True), -128, 127,
                     rounding)
        got = requant_i32_ref(np.array([[5], [-5]], np.int32), op.multiplier, op.shift,
                              op.offset, 0, 0, -128, 127, ROUNDING_NAMES[rounding])
        assert got.ravel().tolist() == want, rounding


def small_graph(bias=None, w=None):
    b = GraphBuilder("small")
    b.input("x", (2, 8), FloatType())
    q = b.add("q", Quantize(I8), ["x"])
    w = np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3) if w is None else w
    c = b.add("conv", Conv(w, bias, W8, (1,), ((1, 1),), (1,), 1, acc_type(I8, W8)), [q.name])
    r = b.add("relu", Requant(np.array([1]), np.array([7]), np.array([0]),
                              QType(8, False, False, (2.0**-6,)), 0, 255), [c.name])
    f = b.add("flat", Reshape((16,)), [r.name])
    d = b.add("fc", Dense(np.ones((3, 16), np.int32), np.array([1, 2, 3], np.int32),
                          QType(8, True, True, (0.5,)),
                          acc_type(f.dtype, QType(8, True, True, (0.5,)))), [f.name])
    return b.build([d.name])


def test_interpreter_computes_conv_by_hand():
    g = small_graph()
    x = np.zeros((1, 2, 8), np.float32)
    x[0, 0, 3] = 1.0  # code 64 at channel 0, position 3
    env = run(g, x, keep=True)
    assert env["q"][0, 0, 3] == 64
    w = g.node("conv").op.weight
    # output position p sees input p-1+r for r in 0..2 (padding 1): p = 2, 3, 4 use r = 2, 1, 0
    for p, r in [(2, 2), (3, 1), (4, 0)]:
        assert env["conv"][0, 1, p] == 64 * w[1, 0, r]


def test_validator_rejects_accumulator_overflow_naming_the_node():
    b = GraphBuilder("ovf")
    b.input("x", (4096,), FloatType())
    q = b.add("q", Quantize(QType(16, True, False, (1.0,))), ["x"])
    w16 = QType(16, True, True, (1.0,))
    with pytest.raises(IRError, match="'big'.*overflow int32"):
        b.add("big", Dense(np.full((1, 4096), 32767, np.int32), None, w16,
                           acc_type(q.dtype, w16)), [q.name])


def test_validator_rejects_shape_and_dtype_errors():
    b = GraphBuilder("bad")
    b.input("x", (2, 8), FloatType())
    with pytest.raises(IRError, match="'conv'.*integer tensor"):
        b.add("conv", Conv(np.zeros((1, 2, 3), np.int32), None, W8, (1,), ((0, 0),), (1,), 1,
                           acc_type(I8, W8)), ["x"])
    q = b.add("q", Quantize(I8), ["x"])
    with pytest.raises(IRError, match="'conv2'.*input channels"):
        b.add("conv2", Conv(np.zeros((1, 3, 3), np.int32), None, W8, (1,), ((0, 0),), (1,), 1,
                            acc_type(I8, W8)), [q.name])
    with pytest.raises(IRError, match="'conv3'.*weight codes"):
        b.add("conv3", Conv(np.full((1, 2, 3), -128, np.int32), None, W8, (1,), ((0, 0),), (1,),
                            1, acc_type(I8, W8)), [q.name])
    with pytest.raises(IRError, match="'fc'.*flatten first"):
        b.add("fc", Dense(np.zeros((1, 16), np.int32), None, W8, acc_type(I8, W8)), [q.name])


def test_printer_is_stable_and_save_load_round_trips(tmp_path):
    g = small_graph(bias=np.array([5, -5], np.int32))
    text = to_text(g)
    assert text == to_text(small_graph(bias=np.array([5, -5], np.int32)))
    assert "Conv1d" in text and "scale=2^-6" in text
    p = save(g, tmp_path / "g.npz")
    g2 = load(p)
    assert g2 == g
    assert to_text(g2) == text
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves nothing behind


def test_load_rejects_a_corrupt_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(IRError, match="bad.npz"):
        load(bad)


def _branchy(order):
    """One shared requantizer (source "shared") called on two branches, then a concat; the
    branches are emitted in `order`, as two lowerings of one model may do."""
    from amchw.ir import Concat

    U8 = QType(8, False, False, (2.0**-6,))
    b = GraphBuilder("branchy")
    b.input("x", (2, 8), FloatType())
    q = b.add("q", Quantize(I8), ["x"])
    w = {"a": np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3),
         "b": np.arange(6, -6, -1, dtype=np.int32).reshape(2, 2, 3)}
    req = {}
    for br in order:
        c = b.add(f"conv_{br}", Conv(w[br], None, W8, (1,), ((1, 1),), (1,), 1,
                                     acc_type(I8, W8)), [q.name], f"conv_{br}")
        req[br] = b.add("shared", Requant(np.array([1]), np.array([7]), np.array([0]), U8,
                                          0, 255), [c.name], "shared").name
    cat = b.add("cat", Concat(1, (1, 1), (0, 0), U8), [req["a"], req["b"]], "cat")
    return b.build([cat.name])


def test_branch_order_and_shared_module_names_are_canonical():
    g1, g2 = _branchy("ab"), _branchy("ba")
    assert to_text(g1) == to_text(g2)
    # the first name goes to the call reading the smallest input name
    assert g1.node("shared").inputs == ("conv_a",)
    assert g1.node("shared_2").inputs == ("conv_b",)
    # ties between ready nodes are broken by name: conv_a, conv_b, then the requantizers
    assert [n.name for n in g1.nodes] == ["q", "conv_a", "conv_b", "shared", "shared_2", "cat"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 2, 8)).astype(np.float32)
    assert np.array_equal(run(g1, x), run(g2, x))
    # a chain keeps its emission order and names
    g = small_graph()
    assert [n.name for n in g.nodes] == ["q", "conv", "relu", "flat", "fc"]
