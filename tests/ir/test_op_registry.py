"""Each op has one home (amchw/ir/ops/): its class holds every role, and the places that
dispatch through the registry refuse an op that lacks one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import amchw.ir as ir
from amchw import kernels as K
from amchw.ir import OPS, FloatType, Graph, IRError, Node, Op, QType, Value
from amchw.ir.backends import kernels_for
from amchw.ir.formats import WeightFormat
from amchw.ir.ops import BACKENDS, defines
from amchw.sims.mapping import layers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ir.md"
ROLES = ("infer", "run", "work")


@pytest.mark.parametrize("kind", sorted(OPS))
def test_every_op_has_every_role(kind):
    cls = OPS[kind]
    missing = [r for r in ROLES if not defines(cls, r)]
    assert not missing, f"{kind} lacks {missing}"
    assert getattr(ir, kind) is cls  # exported where users look for it
    for role, names in cls.kernels.items():
        assert len(names) == len(BACKENDS), (kind, role)
        for b, name in zip(BACKENDS, names):
            assert callable(getattr(K, name, None)), f"{kind}: {role} on {b}: no {name}"
        assert names[0].endswith("_ref"), f"{kind}: the ref backend runs the _ref twin"


@pytest.mark.parametrize("kind", sorted(OPS))
def test_every_op_has_a_row_in_docs_ir_md(kind):
    """docs/ir.md's op table is the spec: a row per op, naming the kernels the op declares."""
    rows = [ln for ln in DOCS.read_text().splitlines() if ln.startswith(f"| **{kind}**")]
    assert rows, f"docs/ir.md has no row for {kind}"
    for names in OPS[kind].kernels.values():
        for name in names:
            assert any(name in r for r in rows), f"docs/ir.md's {kind} row omits {name}"


def test_backends_bind_each_role_once():
    for b in BACKENDS:
        impl = kernels_for(b)
        roles = {r for cls in OPS.values() for r in cls.kernels}
        assert roles <= set(impl)
    with pytest.raises(ValueError, match="unknown backend"):
        kernels_for("gpu")


@dataclass(frozen=True, eq=False)
class _Half(Op):
    """A made-up op with inference and semantics but no cost mapping (never registered)."""

    kind = "Half"

    def infer(self, name, ins, bnd):
        return ins[0].shape, ins[0].dtype

    def run(self, args, in_types, impl):
        return args[0] // 2


def _graph_with(op) -> Graph:
    t = QType(8, True, False, (1.0,), 0)
    x = Value("x", (4,), t)
    y = Value("y", (4,), t)
    return Graph("g", (x,), (Node("y", op, ("x",), y),), ("y",), {})


def test_an_op_without_cost_mapping_is_an_error_not_one_op_per_element():
    with pytest.raises(IRError, match="Half has no cost mapping"):
        layers(_graph_with(_Half()))


def test_an_unregistered_op_is_refused_by_the_validator():
    with pytest.raises(IRError, match="unknown op _Half"):
        ir.validate(_graph_with(_Half()))


def test_weight_format_is_parsed_once_and_still_a_string():
    f = WeightFormat("2:4")
    assert (f.family, f.nm, f.pq, f.compressed) == ("nm", (2, 4), None, True)
    assert f == "2:4" and isinstance(f, str) and WeightFormat(f) is f
    p = WeightFormat("pq2:256")
    assert (p.family, p.pq, p.nm) == ("pq", (2, 256), None)
    assert WeightFormat("dense").compressed is False
    for bad in ("3:2", "pq2:100", "sparse", "0:4"):
        with pytest.raises(IRError, match="weight format must be"):
            WeightFormat(bad)
    w = np.zeros((4, 8), np.int32)
    t = QType(8, True, False, (1.0,), 0)
    d = ir.Dense(w, None, t, ir.acc_type(t, t), w_format="csr")
    assert type(d.w_format) is WeightFormat and d.w_format.family == "csr"
    assert re.fullmatch(r"\w+", str(d.w_format))


def test_float_values_need_no_bounds():
    # a float input has no code bound (0); the registry's infer still names the node
    x = Value("x", (2,), FloatType(32))
    with pytest.raises(IRError, match="node 'q' \\(Requant\\)"):
        ir.ops.infer("q", ir.Requant(1, 0, 0, QType(8, True, False, (1.0,), 0), -128, 127),
                     [x])


def test_tie_distance_of_the_rounding_ops_is_the_exact_fraction():
    """Requant's and Quantize's tie distance at chosen elements, against Fraction arithmetic:
    |frac(v) - 1/2| of the value each rounds."""
    from fractions import Fraction

    from amchw.ir.ops import ties_at

    rng = np.random.default_rng(3)
    t8 = QType(8, True, False, (0.5, 0.25, 0.125), 0, 1)
    rq = ir.Requant([3, 5, 7], [4, 2, 0], [1, -3, 0], t8, -128, 127)
    x = rng.integers(-2**20, 2**20, size=(2, 3, 5)).astype(np.int32)
    xt = QType(32, True, False, (1.0,), 0)
    mask = rng.random(x.shape) < 0.5
    got = ties_at(rq, x, xt, mask)
    want = [abs(Fraction((int(x[n, c, i]) * [3, 5, 7][c] + [1, -3, 0][c]), 2 ** [4, 2, 0][c])
                % 1 - Fraction(1, 2)) for n, c, i in zip(*np.nonzero(mask))]
    assert got.tolist() == [float(w) for w in want]
    q = ir.Quantize(t8)
    xf = rng.standard_normal((2, 3, 5))
    got = ties_at(q, xf, FloatType(64), mask)
    want = [abs((xf[n, c, i] / t8.scale[c]) % 1 - 0.5) for n, c, i in zip(*np.nonzero(mask))]
    assert np.array_equal(got, np.array(want))
    assert np.all(np.isinf(ties_at(ir.Mul(), x, xt, mask)))  # Mul rounds nothing
