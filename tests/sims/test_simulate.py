"""simulate(): per-layer cycles, traffic and energy against formulas computed here, the report's
totals, the JSON schema against docs/simulator.md, and the stepped/integer checks on a graph."""

import csv
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from amchw.ir import (Conv, Dense, FloatType, GraphBuilder, MaxPool, QType, Quantize, Requant,
                      Reshape, acc_type)
from amchw.sims import hardware as hw
from amchw.sims.energy import PARTS, energy
from amchw.sims.simulate import (SimulationError, integer_check, simulate, stepped_check)
from amchw.sims.timing import ceil_div, gemm_cycles

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def small_graph(act_bits=8):
    """Quantize -> grouped Conv2d -> Requant -> MaxPool -> Reshape -> Dense -> Requant."""
    rng = np.random.default_rng(0)
    xt = QType(act_bits, True, False, (2.0**-6,))
    u8 = QType(8, False, False, (2.0**-4,))
    w8 = QType(8, True, True, (2.0**-7,))
    b = GraphBuilder("small")
    b.input("x", (4, 6, 9), FloatType())
    q = b.add("q", Quantize(xt), ["x"])
    w = rng.integers(-127, 128, (6, 2, 3, 3)).astype(np.int32)
    c = b.add("conv", Conv(w, rng.integers(-99, 99, 6).astype(np.int32), w8, (1, 1),
                           ((1, 1), (0, 0)), (1, 1), 2, acc_type(xt, w8)), [q.name])
    r = b.add("rq", Requant(np.array([1]), np.array([9]), np.array([0]), u8, 0, 255), [c.name])
    p = b.add("pool", MaxPool((2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)), [r.name])
    f = b.add("flat", Reshape((int(np.prod(p.shape)),)), [p.name])
    d = b.add("fc", Dense(rng.integers(-127, 128, (5, f.shape[0])).astype(np.int32), None, w8,
                          acc_type(u8, w8)), [f.name])
    r2 = b.add("rq2", Requant(np.array([1]), np.array([10]), np.array([0]), xt, -128, 127),
               [d.name])
    return b.build([r2.name])


def target(**kw):
    return replace(hw.PRESETS["zynq7020"], **{"rows": 4, "cols": 3, **kw})


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("timing", ["pipelined", "scalesim"])
def test_layers_follow_the_formulas(df, timing):
    g = small_graph()
    t = target()
    rep = simulate(g, t, df, timing, batch=3)
    assert [r.node for r in rep.layers] == ["q", "conv", "rq", "pool", "fc", "rq2"]
    for r in rep.layers:
        if r.unit == "array":
            ft = gemm_cycles(r.M, r.K, r.N, 4, 3, df, timing)
            assert r.compute_cycles == r.groups * ft.cycles
            assert r.macs == r.groups * r.M * r.K * r.N
            assert r.utilization == r.macs / (r.cycles * 12)
            # energy parts are count x table entry
            stationary = {"os": 0, "ws": r.K * r.N, "is": r.M * r.K}[df] * r.groups
            assert r.energy.mac == r.macs * t.energy.mac_pj
            assert r.energy.reg == (3 * r.macs + stationary) * t.energy.reg_pj
        else:
            assert r.compute_cycles == ceil_div(r.vector_ops, t.vector_lanes)
            assert r.energy.vector == r.vector_ops * t.energy.vector_op_pj
        assert r.energy.sram == r.traffic.sram_bytes * t.energy.sram_pj_per_byte
        assert r.energy.dram == r.traffic.dram_bytes * t.energy.dram_pj_per_byte
        # static: 150 mW for cycles / 100 MHz, in pJ
        assert r.energy.static == pytest.approx(0.150 * r.cycles / 100e6 * 1e12, rel=1e-12)
        if timing == "scalesim":
            assert r.stall_cycles == 0
        else:
            need = math.ceil(r.traffic.dram_bytes / t.dram_bytes_per_cycle)
            assert r.stall_cycles == max(0, need - r.compute_cycles)
        assert r.cycles == r.compute_cycles + r.stall_cycles
    conv = rep.layers[1]
    assert (conv.M, conv.K, conv.N, conv.groups) == (3 * 6 * 7, 18, 3, 2)
    tot = rep.totals()
    assert tot["cycles"] == sum(r.cycles for r in rep.layers)
    assert tot["macs"] == 3 * (6 * 6 * 7 * 18 + 5 * 54)
    assert tot["inferences_per_s"] == pytest.approx(3 * 100e6 / tot["cycles"], rel=1e-12)
    assert tot["physical_limit_fraction"] == pytest.approx(tot["macs"] / 12 / tot["cycles"])
    assert tot["energy_pj"]["total"] == pytest.approx(sum(r.energy.total for r in rep.layers))


def test_energy_is_linear_in_every_count():
    t = target()
    counts = dict(macs=1234, reg_accesses=5678, sram_bytes=91011, dram_bytes=1213,
                  vector_ops=1415, cycles=1617)
    e1 = energy(t, **counts)
    e2 = energy(t, **{k: 2 * v for k, v in counts.items()})
    for p in PARTS:
        assert getattr(e2, p) == 2 * getattr(e1, p)
    for k in counts:  # one count at a time moves one part
        e = energy(t, **{k: counts[k]})
        assert sum(getattr(e, p) != 0 for p in PARTS) == 1
    assert e1.mac == 1234 * 0.315 and e1.dram == 1213 * 64.0


def test_dram_traffic_rules():
    g = small_graph()
    big = dict(ifmap_sram_kib=1024, filter_sram_kib=1024, ofmap_sram_kib=1024)
    rep = simulate(g, target(**big), "ws", "scalesim", batch=2)
    conv, fc = rep.layers[1], rep.layers[4]
    # weights once, the ifmap once (the int8 codes, not the im2col), nothing spilled
    assert conv.traffic.dram_read_weights == 6 * 2 * 9
    assert conv.traffic.dram_read_ifmap == 2 * 4 * 6 * 9
    assert conv.traffic.dram_read_ofmap == 0
    # the conv accumulators go straight to the requantizer: never to DRAM
    assert conv.traffic.dram_write_ofmap == 0
    # the pooled codes feed a Dense: written to DRAM once, read back by fc
    assert rep.layers[3].traffic.dram_write_ofmap == 2 * 54
    assert fc.traffic.dram_read_ifmap == 2 * 54
    # SRAM reads of ws: A once per column fold, B once, partial sums read back (rf - 1) times
    rf, cf = ceil_div(18, 4), ceil_div(3, 3)
    assert conv.traffic.sram_read_ifmap == 2 * cf * conv.M * 18
    assert conv.traffic.sram_read_weights == 2 * 18 * 3
    assert conv.traffic.sram_read_ofmap == 2 * (rf - 1) * conv.M * 3 * 4
    # a filter buffer smaller than fc's weights: is re-fetches them once per column fold
    tiny = dict(big, filter_sram_kib=0.05)  # 51 bytes >= one 4x3 tile, < fc's 270 bytes
    rep = simulate(g, target(**tiny), "is", "scalesim", batch=2)
    fc = rep.layers[4]
    assert fc.traffic.dram_read_weights == 270 * ceil_div(2, 3)
    rep = simulate(g, target(**tiny), "os", "scalesim", batch=7)
    assert rep.layers[4].traffic.dram_read_weights == 270 * ceil_div(7, 4)
    # partial sums that do not fit the ofmap buffer spill: (rf - 1) writes and reads
    small_o = dict(big, ofmap_sram_kib=0.05)
    rep = simulate(g, target(**small_o), "ws", "scalesim", batch=2)
    conv = rep.layers[1]
    spill = 2 * (rf - 1) * conv.M * 3 * 4
    assert conv.traffic.dram_read_ofmap == spill and conv.traffic.dram_write_ofmap == spill


def test_a_slow_dram_link_stalls_pipelined_mode_only():
    g = small_graph()
    slow = target(dram_bytes_per_cycle=0.01)
    assert simulate(g, slow, "ws", "pipelined").totals()["stall_cycles"] > 0
    assert simulate(g, slow, "ws", "scalesim").totals()["stall_cycles"] == 0


def test_operands_wider_than_the_array_are_refused():
    with pytest.raises(SimulationError, match="'conv'.*16-bit activations.*8-bit operands"):
        simulate(small_graph(act_bits=16), target())
    with pytest.raises(hw.TargetError, match="--dataflow"):
        simulate(small_graph(), target(), "xs")
    with pytest.raises(hw.TargetError, match="--batch"):
        simulate(small_graph(), target(), batch=0)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("timing", ["pipelined", "scalesim"])
def test_stepped_check_and_integer_check(df, timing):
    g = small_graph()
    x = np.random.default_rng(1).normal(0, 1, (5, 4, 6, 9)).astype(np.float32)
    rep = simulate(g, target(), df, timing, batch=2)
    s = stepped_check(rep, g, x)
    assert s["outputs_equal"] and s["cycles_equal_closed_form"]
    for r in rep.layers:
        if r.unit == "array":
            assert r.stepped_cycles == r.compute_cycles and r.stepped_outputs_equal
    ic = integer_check(g, x)
    assert ic["equal"] and ic["values"] > 0 and ic["frames"] == 5


def _documented_keys() -> set:
    return set(re.findall(r"`([A-Za-z_0-9]+)`", DOC.read_text()))


def test_json_schema_is_documented():
    rep = simulate(small_graph(), target())
    d = rep.to_dict()
    keys = set(d) | set(d["layers"][0]) | set(d["totals"]) | set(d["layers"][0]["traffic"]) \
        | set(d["layers"][0]["energy_pj"])
    missing = sorted(keys - _documented_keys())
    assert not missing, f"docs/simulator.md does not document {missing}"
    assert d["schema"] == "amchw.simulate/1"


def test_csv_and_plot(tmp_path):
    from amchw.sims.report import format_table, write_csv, write_plot

    rep = simulate(small_graph(), target(), "os")
    p = write_csv(rep, tmp_path / "s.csv")
    rows = list(csv.DictReader(p.open()))
    assert [r["node"] for r in rows] == [r.node for r in rep.layers]
    assert sum(int(r["cycles"]) for r in rows) == rep.cycles
    png = write_plot(rep, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_csv(rep, tmp_path / "new" / "s.csv").read_text() == p.read_text()  # folder made
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="a file of that name is in the way"):
        write_csv(rep, tmp_path / "f" / "s.csv")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f", "new", "s.csv", "s.png"]
    assert "total cycles" in format_table(rep)


def test_a_graph_simulated_again_gives_the_same_report():
    """The layer views are kept with the graph (a sweep simulates one graph many times): a
    second simulation, on another array and batch, then the first again, are identical to
    fresh ones on a copy that has no cached views."""
    import pickle

    from amchw.resolve import graph_and_frames
    from amchw.sims.hardware import get_target
    from amchw.sims.simulate import simulate

    g, _, _ = graph_and_frames("ee-v1", "po2", 8, 8, 2, 0)
    t = get_target("edge-asic-45nm")
    first = simulate(g, t, "ws", "pipelined", 1).to_dict()
    simulate(g, t.with_array(4, 8), "os", "pipelined", 4)
    assert simulate(g, t, "ws", "pipelined", 1).to_dict() == first
    fresh = pickle.loads(pickle.dumps(g))
    assert "_layer_views" not in fresh.__dict__
    assert simulate(fresh, t, "ws", "pipelined", 1).to_dict() == first
