"""sims.early_exit on a small two-head graph with an exit rule: the split into common and rest
layers, the decision layer's cost, expected cycles and energy against the formula computed
here from the per-layer reports, exit fractions against direct counts, the two extremes
(threshold +inf: everything exits, C_common; below 0: nothing exits, the full cost), and the
JSON keys against docs/simulator.md."""

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from amchw.ir import (Conv, Dense, Dequantize, FloatType, GraphBuilder, MaxPool, QType, Quantize,
                      Requant, Reshape, acc_type)
from amchw.ir.early_exit import add_exit_rule, run_early_exit, with_threshold
from amchw.sims import hardware as hw
from amchw.sims.early_exit import (early_exit, format_early_exit, needed_by, split_layers,
                                   sweep)
from amchw.sims.simulate import SimulationError, simulate

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
I8 = QType(8, True, False, (2.0**-6,))
U8 = QType(8, False, False, (2.0**-4,))
W8 = QType(8, True, True, (2.0**-7,))


def ee_graph():
    """x -> Quantize -> conv (trunk) -> exit head (pool, flatten, Dense -> out0) and rest (conv,
    pool, flatten, Dense -> out1)."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("ee-small")
    b.input("x", (2, 32), FloatType())
    q = b.add("inp", Quantize(I8), ["x"])

    def conv(name, src, cin, k):
        w = rng.integers(-127, 128, (k, cin, 3)).astype(np.int32)
        c = b.add(name, Conv(w, None, W8, (1,), ((1, 1),), (1,), 1,
                             acc_type(b.value(src).dtype, W8)), [src])
        return b.add(name + "_r", Requant(np.array([1]), np.array([9]), np.array([0]), U8, 0,
                                          255), [c.name]).name

    def head(prefix, src):
        p = b.add(prefix + "_pool", MaxPool((4,), (4,), ((0, 0),), (1,)), [src])
        f = b.add(prefix + "_flat", Reshape((int(np.prod(p.shape)),)), [p.name])
        w = rng.integers(-127, 128, (10, f.shape[0])).astype(np.int32)
        return b.add(prefix + "_fc", Dense(w, None, W8, acc_type(U8, W8)), [f.name]).name

    t = conv("trunk_conv", q.name, 2, 8)
    o0 = b.add("out0", Dequantize(None), [head("exit", t)]).name
    o1 = b.add("out1", Dequantize(None), [head("rest", conv("rest_conv", t, 8, 8))]).name
    return b.build([o0, o1])


def target():
    return replace(hw.PRESETS["zynq7020"], rows=4, cols=4)


def setup(threshold=0.3, batch=1):
    g = add_exit_rule(ee_graph(), threshold)
    rep = simulate(g, target(), "os", "pipelined", batch)
    return g, rep


def test_split_and_the_decision_cost():
    g, rep = setup()
    sp = split_layers(g, rep)
    assert set(sp.common) == {"inp", "trunk_conv", "trunk_conv_r", "exit_pool", "exit_fc",
                              "out0", "exit"}
    assert set(sp.rest) == {"rest_conv", "rest_conv_r", "rest_pool", "rest_fc", "out1"}
    assert needed_by(g, ["out1"]) >= {"trunk_conv", "rest_fc", "out1"} and \
        "exit" not in needed_by(g, ["out1"])
    by = {r.node: r for r in rep.layers}
    assert sp.common_cycles == sum(by[n].cycles for n in sp.common)
    assert sp.rest_cycles == sum(by[n].cycles for n in sp.rest)
    assert sp.common_cycles + sp.rest_cycles == rep.cycles
    assert sp.common_energy_pj + sp.rest_energy_pj == pytest.approx(rep.energy.total)
    # the decision is a vector layer: 12 operations per logit and 16 per frame
    ex = by["exit"]
    assert ex.unit == "vector" and ex.op == "EntropyExit"
    assert ex.vector_ops == 1 * (12 * 10 + 16)
    assert ex.compute_cycles == math.ceil(ex.vector_ops / rep.target.vector_lanes)
    rep4 = simulate(g, target(), "os", "pipelined", batch=4)
    assert next(r for r in rep4.layers if r.node == "exit").vector_ops == 4 * (12 * 10 + 16)
    with pytest.raises(SimulationError, match="exit decisions"):
        split_layers(ee_graph(), simulate(ee_graph(), target()))


@pytest.mark.parametrize("batch", [1, 3])
def test_expected_costs_follow_the_formula(batch):
    g, rep = setup(batch=batch)
    sp = split_layers(g, rep)
    by = {r.node: r for r in rep.layers}
    c_common = sum(by[n].cycles for n in ("inp", "trunk_conv", "trunk_conv_r", "exit_pool",
                                          "exit_fc", "out0", "exit"))
    c_rest = sum(by[n].cycles for n in ("rest_conv", "rest_conv_r", "rest_pool", "rest_fc",
                                        "out1"))
    e_common = sum(by[n].energy.total for n in sp.common)
    x = np.random.default_rng(3).normal(0, 2, (240, 2, 32)).astype(np.float32)
    r = run_early_exit(g, x, "fast")
    snr = np.repeat([-10, 0, 10], 80)
    labels = np.random.default_rng(4).integers(0, 10, 240)
    pe, pf = r["exit_logits"].argmax(1), r["final_logits"].argmax(1)
    rep_ee = early_exit(sp, r["flags"], snr, labels, pe, pf, threshold=0.3)
    assert [row.snr for row in rep_ee.rows] == [-10, 0, 10, "all"]
    for row in rep_ee.rows:
        m = np.ones(240, bool) if row.snr == "all" else snr == row.snr
        f = np.count_nonzero(r["flags"][m]) / m.sum()            # a direct count
        assert row.frames == m.sum() and row.exit_fraction == f
        assert row.expected_cycles == pytest.approx((c_common + (1 - f) * c_rest) / batch)
        assert row.expected_energy_uj == pytest.approx(
            (e_common + (1 - f) * (rep.energy.total - e_common)) / batch * 1e-6)
        pred = np.where(r["flags"][m] == 1, pe[m], pf[m])
        assert row.accuracy == np.mean(pred == labels[m])
        assert row.final_accuracy == np.mean(pf[m] == labels[m])
        assert row.cycles_saving == pytest.approx(1 - row.expected_cycles * batch / rep.cycles)
    assert 0 < rep_ee.rows[-1].exit_fraction < 1
    # the extremes: +inf -> everything exits, C_common; below 0 -> nothing, the full cost
    for T, f, cyc in ((math.inf, 1.0, c_common), (-0.5, 0.0, c_common + c_rest)):
        flags = run_early_exit(with_threshold(g, T), x, "fast")["flags"]
        row = early_exit(sp, flags).rows[-1]
        assert row.exit_fraction == f and row.expected_cycles == pytest.approx(cyc / batch)
    assert sp.full_cycles == pytest.approx(rep.cycles / batch)
    assert sp.full_energy_uj == pytest.approx(rep.totals()["energy_per_inference_uj"])
    text = format_early_exit(rep_ee)
    assert "no exit" in text and text.count("\n") == 7


def _documented_keys() -> set:
    return set(re.findall(r"`([A-Za-z_0-9]+)`", DOC.read_text()))


def test_json_keys_are_documented():
    g, rep = setup()
    sp = split_layers(g, rep)
    flags = np.array([1, 0, 1])
    lab = np.array([1, 2, 3])
    r = early_exit(sp, flags, np.array([0, 0, 5]), lab, lab, lab, threshold=0.3)
    r.sweep = sweep(sp, {0.1: flags, 0.5: np.ones(3)}, lab, lab, lab)
    d = r.to_dict()
    keys = set(d) | set(d["split"]) | set(d["rows"][0]) | set(d["sweep"][0]) | {"early_exit"}
    missing = sorted(keys - _documented_keys())
    assert not missing, f"docs/simulator.md does not document {missing}"
    assert [s["exit_fraction"] for s in d["sweep"]] == [2 / 3, 1.0]
