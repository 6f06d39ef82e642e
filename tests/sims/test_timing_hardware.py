"""Closed-form cycle model against SCALE-Sim v2's own reports, MAC counts of the GEMM mapping
against layer formulas, and the hardware description's refusals of impossible values."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from amchw.sims import hardware as hw
from amchw.sims.mapping import GemmView, VectorOp, layers
from amchw.sims.timing import gemm_cycles

DATA = Path(__file__).parent / "data" / "scalesim_v2_cycles.json"


def _cases():
    d = json.loads(DATA.read_text())
    return [c for c in d["cases"] if "error" not in c]


def test_reference_data_was_produced_by_scalesim_v2():
    d = json.loads(DATA.read_text())
    assert d["meta"]["commit"] == "22f88b17f1dd3160e18bff5df165035bf8146e83"
    assert len(d["cases"]) == 144
    # one case (1x1x1 GEMM on a 1x1 OS array) makes SCALE-Sim v2 divide by a 0-cycle total
    assert [c["name"] for c in d["cases"] if "error" in c] == ["g3"]
    assert all(c["stall_cycles"] == 0 for c in _cases())


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['name']}-{c['rows']}x{c['cols']}-"
                                                          f"{c['dataflow']}")
def test_scalesim_mode_reproduces_scalesim_v2(case):
    t = gemm_cycles(case["M"], case["K"], case["N"], case["rows"], case["cols"],
                    case["dataflow"], "scalesim")
    assert t.cycles == case["total_cycles"]
    assert t.mapping_efficiency * 100 == pytest.approx(case["mapping_efficiency_pct"], rel=1e-9)


def test_pipelined_equals_scalesim_plus_one_for_a_single_fold():
    for df in ("os", "ws", "is"):
        a = gemm_cycles(3, 4, 2, 4, 4, df, "pipelined")
        b = gemm_cycles(3, 4, 2, 4, 4, df, "scalesim")
        assert a.folds == b.folds == 1
        assert a.cycles == b.cycles + 1


def test_pipelined_never_slower_than_sequential_folds():
    rng = np.random.default_rng(0)
    for _ in range(300):
        M, K, N, R, C = (int(v) for v in rng.integers(1, 40, size=5))
        for df in ("os", "ws", "is"):
            p = gemm_cycles(M, K, N, R, C, df, "pipelined").cycles
            s = gemm_cycles(M, K, N, R, C, df, "scalesim").cycles
            assert p <= s + 1


def test_gemm_views_count_macs_by_formula():
    from amchw.ir import Conv, Dense, FloatType, GraphBuilder, QType, Quantize, Requant, acc_type
    from amchw.ir import Reshape

    i8 = QType(8, True, False, (2.0**-6,))
    w8 = QType(8, True, True, (2.0**-7,))
    b = GraphBuilder("m")
    b.input("x", (4, 6, 9), FloatType())
    q = b.add("q", Quantize(i8), ["x"])
    w = np.ones((6, 2, 3, 3), np.int32)  # 6 filters, groups 2 -> 2 input channels per group
    c = b.add("conv", Conv(w, None, w8, (1, 2), ((1, 1), (0, 0)), (1, 1), 2, acc_type(i8, w8)),
              [q.name])
    r = b.add("rq", Requant(np.array([1]), np.array([8]), np.array([0]), i8, -128, 127),
              [c.name])
    f = b.add("flat", Reshape((int(np.prod(r.shape)),)), [r.name])
    d = b.add("fc", Dense(np.ones((5, f.shape[0]), np.int32), None, w8, acc_type(i8, w8)),
              [f.name])
    g = b.build([d.name])
    ls = layers(g, batch=3)
    conv, fc = [x for x in ls if isinstance(x, GemmView)]
    oh, ow = 6, 4  # (6 + 2 - 3) + 1, (9 - 3) // 2 + 1
    # one MAC per weight of a group per output position, per image
    assert conv.macs == 3 * 6 * oh * ow * 2 * 3 * 3
    assert (conv.M, conv.K, conv.N, conv.groups) == (3 * oh * ow, 2 * 3 * 3, 3, 2)
    assert fc.macs == 3 * 5 * f.shape[0]
    # bytes: int8 input codes, int8 weights, int32 accumulators out
    assert conv.in_bytes == 3 * 4 * 6 * 9
    assert conv.w_bytes == 6 * 2 * 3 * 3
    assert conv.out_bytes == 3 * 6 * oh * ow * 4
    vec = [x for x in ls if isinstance(x, VectorOp)]
    assert [v.node for v in vec] == ["q", "rq"]
    assert vec[1].elements == 3 * 6 * oh * ow


def test_parse_array_and_impossible_targets():
    assert hw.parse_array("4x4") == (4, 4)
    assert hw.parse_array("16X8") == (16, 8)
    for bad in ("0x4", "4x0", "-1x4", "4", "4x4x4", "ax4"):
        with pytest.raises(hw.TargetError, match="--array"):
            hw.parse_array(bad)
    base = hw.PRESETS["edge-asic-45nm"]
    with pytest.raises(hw.TargetError, match="freq_mhz"):
        hw.target_from_dict({"base": base.name, "freq_mhz": -100})
    with pytest.raises(hw.TargetError, match="rows"):
        hw.target_from_dict({"base": base.name, "rows": 0})
    with pytest.raises(hw.TargetError, match="ofmap_sram_kib.*smaller than one tile"):
        hw.target_from_dict({"base": base.name, "rows": 64, "cols": 64, "ofmap_sram_kib": 1})
    with pytest.raises(hw.TargetError, match="unknown field"):
        hw.target_from_dict({"base": base.name, "colums": 3})
    with pytest.raises(hw.TargetError, match="energy.mac_pj"):
        hw.target_from_dict({"base": base.name, "energy": {"mac_pj": -1}})


def test_targets_from_files_override_a_preset(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('base = "zynq7020"\nname = "mine"\nrows = 4\n[energy]\nmac_pj = 1.5\n')
    t = hw.load_target(str(p))
    assert (t.name, t.rows, t.cols, t.energy.mac_pj) == ("mine", 4, 14, 1.5)
    assert t.energy.static_mw == hw.PRESETS["zynq7020"].energy.static_mw
    j = tmp_path / "t.json"
    j.write_text("{not json")
    with pytest.raises(hw.TargetError, match="t.json.*cannot parse"):
        hw.load_target(str(j))
    with pytest.raises(hw.TargetError, match="does not exist"):
        hw.load_target(str(tmp_path / "missing.json"))


def test_presets_cite_a_source_for_every_energy_figure():
    for t in hw.PRESETS.values():
        for k in ("mac_pj", "reg_pj", "sram_pj_per_byte", "dram_pj_per_byte", "vector_op_pj",
                  "static_mw"):
            assert t.energy.sources.get(k), (t.name, k)
    # Accelergy 45 nm: 128 KiB SRAM, 32.4 pJ per 64-bit read; LPDDR4 8 pJ/bit
    asic = hw.PRESETS["edge-asic-45nm"].energy
    assert asic.sram_pj_per_byte * 8 == 32.4 and asic.dram_pj_per_byte == 64.0
    # Zynq-7020 has 220 DSP48E1: the preset's array must fit in them (one MAC per DSP)
    z = hw.PRESETS["zynq7020"]
    assert z.rows * z.cols <= 220
    # ZCU104: 1,728 DSP48E2, two int8 MACs per DSP with packing
    assert hw.PRESETS["zcu104"].pes <= 2 * 1728
    assert math.isfinite(z.freq_mhz)


def test_scalesim_mode_reproduces_scalesim_v2_on_zoo_layers():
    """83 VGG10/VTCNN2 layers on 4x4 and 16x16 arrays, as SCALE-Sim v2 ran them in
    benchmarks/bench_simulator.py (up to 1.1M cycles per case)."""
    d = json.loads((DATA.parent / "scalesim_v2_zoo_cycles.json").read_text())
    assert d["meta"]["commit"] == "22f88b17f1dd3160e18bff5df165035bf8146e83"
    assert len(d["cases"]) == 83
    for c in d["cases"]:
        t = gemm_cycles(c["M"], c["K"], c["N"], c["rows"], c["cols"], c["dataflow"], "scalesim")
        assert t.cycles == c["total_cycles"], c
