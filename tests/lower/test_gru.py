"""The quantized GRU: its parameter counts against the seed's Table 2, its lowering to a GRU
node whose cell is built from Lut, Mul and GateMix ops, bit-exact against Brevitas on short
sequences (both scale kinds), the ops' kernels against their reference twins, the cell's
validation, save/load and simulation."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw import kernels as K
from amchw.data.synthetic import synthesize
from amchw.ir import GRU, GateMix, IRError, Lut, Mul, QType, validate
from amchw.ir.interp import run
from amchw.ir.io import load, save
from amchw.ir.printer import to_text
from amchw.lower.brevitas import lower
from amchw.models import QuantConfig, count_macs, count_params, weight_count
from amchw.models.calibrate import calibrate
from amchw.models.gru import gru_cnn
from amchw.verify.brevitas import verify_model


@pytest.mark.parametrize("cells,params", [(50, 11_920), (60, 15_840), (70, 20_360),
                                          (80, 25_480), (90, 31_200)])
def test_parameters_match_the_seeds_table_two(cells, params):
    """3 (2C + C^2 + 2C) for the GRU (reset-after: two bias vectors per gate), conv 16 k3 and
    conv 24 k3 with bias, BatchNorm x 2 per channel; the seed prints these for 50-90 cells."""
    m = gru_cnn(cells=cells)
    assert count_params(m) == params
    gru = 3 * (2 * cells + cells * cells + 2 * cells)
    assert params == gru + (16 * cells * 3 + 16) + (24 * 16 * 3 + 24) + 2 * (cells + 16 + 24 + 24)


def _short(scales, cells=8, steps=40, n=24):
    X, _, _ = synthesize("rml2018", 1, [0, 10, 20], seed=4)
    X = np.ascontiguousarray(X[:n, :, :steps])
    m = gru_cnn(QuantConfig(scales=scales), cells=cells)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for p in m.parameters():
            p.data.uniform_(-0.6, 0.6)
    return calibrate(m, torch.as_tensor(X), seed=0), X


@pytest.mark.parametrize("scales,reference", [("po2", "float32"), ("float", "float64")])
def test_lowered_gru_is_bit_exact_against_brevitas(scales, reference):
    m, X = _short(scales)
    rep = verify_model(m, X, reference=reference)
    assert rep.forbidden == 0
    # the GRU's whole state sequence: no difference at all; elsewhere only float32 BatchNorm
    # near-ties (allowed, 1 LSB)
    assert next(r for r in rep.layers if r.layer == "gru").mismatches == 0
    for r in rep.layers:
        assert r.mismatches == 0 or (reference == "float32" and r.exactness == "float"
                                     and r.max_diff_lsb == 1)
    assert rep.kernels and all(r.mismatches == 0 for r in rep.kernels)
    assert "gru" in {r.layer for r in rep.layers}
    g = lower(m.eval(), torch.as_tensor(X[:4]))
    gru = [n for n in g.nodes if isinstance(n.op, GRU)]
    assert len(gru) == 1 and gru[0].output.shape == (8, 40)
    kinds = [n.op.kind for n in gru[0].op.cell.nodes]
    assert kinds.count("Lut") == 3 and kinds.count("Dense") == 3
    assert {"Mul", "GateMix", "Add"} <= set(kinds)
    # the state sequence is h_t codes; with power-of-two scales h spreads over the tanh range
    # (the float-scale calibration of these random weights leaves it near 0)
    env = run(g, X, "ref", keep=True)
    h = env[gru[0].name]
    assert h.min() >= -128 and h.max() <= 127
    if scales == "po2":
        assert len(np.unique(h)) > 20


def test_lut_is_the_quantized_function_and_the_update_is_exact():
    """The sigmoid table equals round(sigmoid(code * s_in) / 2^-8) (computed here in float64);
    the GRU update equals round(((1 - z) n + z h) / 2^-7) from the codes, exactly."""
    m, X = _short("po2")
    g = lower(m.eval(), torch.as_tensor(X[:4]))
    cell = next(n.op.cell for n in g.nodes if isinstance(n.op, GRU))
    vals = cell.values()
    lut = next(n for n in cell.nodes if n.name.endswith("sig_r"))
    t = vals[lut.inputs[0]].dtype
    codes = np.arange(t.lo, t.hi + 1)
    want = np.clip(np.round(1 / (1 + np.exp(-codes * t.scale[0])) / 2**-8), 0, 255)
    assert np.array_equal(lut.op.table, want)
    mix = next(n for n in cell.nodes if isinstance(n.op, GateMix))
    assert mix.op.k == 256
    z, nn_, hh = np.meshgrid(np.arange(256), np.arange(-128, 128), np.arange(-128, 128),
                             indexing="ij")
    z, nn_, hh = (a.ravel().astype(np.int32) for a in (z, nn_, hh))
    raw = K.gatemix_i32_ref(z, nn_, hh, 256, 0, 0, 0)
    exact = (1 - z / 256) * nn_ + z / 256 * hh   # in units of 2^-7
    assert np.array_equal(raw, (256 * exact).astype(np.int64))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 64), st.integers(0, 2**31 - 1))
def test_cell_kernels_equal_their_twins(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, n).astype(np.int32)
    b = rng.integers(-128, 128, n).astype(np.int32)
    z = rng.integers(0, 256, n).astype(np.int32)
    table = rng.integers(-5, 300, 256)
    assert np.array_equal(K.lut_i32(a, table, -128), K.lut_i32_ref(a, table, -128))
    assert np.array_equal(K.lut_i32_ref(a, table, -128), table[a + 128])
    za, zb = int(rng.integers(-3, 4)), int(rng.integers(-3, 4))
    assert np.array_equal(K.mul_i32(a, b, za, zb), K.mul_i32_ref(a, b, za, zb))
    assert np.array_equal(K.mul_i32_ref(a, b, za, zb), (a - za) * (b - zb))
    assert np.array_equal(K.gatemix_i32(z, a, b, 256, 1, 2, 3),
                          K.gatemix_i32_ref(z, a, b, 256, 1, 2, 3))
    with pytest.raises(ValueError, match="outside the table"):
        K.lut_i32(np.append(a, 10).astype(np.int32), table[:10], 0)


def test_cell_validation_names_the_problem(tmp_path):
    m, X = _short("po2")
    g = lower(m.eval(), torch.as_tensor(X[:4]))
    node = next(n for n in g.nodes if isinstance(n.op, GRU))
    cell = node.op.cell
    # save/load keeps the nested cell; the text shows it
    p = save(g, tmp_path / "g.npz")
    g2 = load(p)
    assert to_text(g2) == to_text(g) and "graph " + cell.name in to_text(g)
    assert np.array_equal(run(g2, X, "numba"), run(g, X, "ref"))
    # a table of the wrong size, a gate scale that is not 1/k
    from amchw.ir import GraphBuilder

    b = GraphBuilder("bad")
    b.input("x", (4,), QType(8, True, False, (2.0**-6,)))
    with pytest.raises(IRError, match="Lut.*10 table entries"):
        b.add("l", Lut(np.zeros(10), QType(8, False, False, (2.0**-8,))), ["x"])
    b2 = GraphBuilder("bad2")
    for nm, t in (("z", QType(8, False, False, (2.0**-7,))),
                  ("n", QType(8, True, False, (2.0**-7,))),
                  ("h", QType(8, True, False, (2.0**-7,)))):
        b2.input(nm, (4,), t)
    with pytest.raises(IRError, match="gate scale .* is not 1/256"):
        b2.add("m", GateMix(256), ["z", "n", "h"])
    b2.add("p", Mul(), ["n", "h"])
    # the GRU node checks its cell against its inputs
    with pytest.raises(IRError, match="GRU"):
        b3 = GraphBuilder("bad3")
        for nm in ("a", "b", "c"):
            b3.input(nm, (3, 5), QType(32, True, False, (1.0,)))
        b3.add("gru", GRU(cell), ["a", "b", "c"])
    validate(g)


def test_macs_and_simulation_count_every_step():
    """count_macs (torch hooks + 3 C^2 per step) equals the simulator's views, whose recurrent
    GEMMs repeat once per step; the cycles of a recurrent Dense are steps x one step's."""
    from amchw.sims import simulate, layers
    from amchw.sims.hardware import get_target
    from amchw.sims.timing import gemm_cycles

    m, X = _short("po2")
    g = lower(m.eval(), torch.as_tensor(X[:4]))
    views = layers(g, 1)
    macs = count_macs(m, (2, 40))
    assert macs == sum(getattr(v, "macs", 0) for v in views)
    assert macs == 3 * 2 * 8 * 40 + 3 * 8 * 8 * 40 + 16 * 8 * 3 * 38 + 24 * 16 * 3 * 17
    assert weight_count(m) == sum(v.w_bytes for v in views if hasattr(v, "w_bytes"))
    t = get_target("edge-asic-45nm")
    rep = simulate(g, t)
    row = next(r for r in rep.layers if r.node.endswith("/gru_w_hr"))
    one = gemm_cycles(1, 8, 8, t.rows, t.cols, rep.dataflow, rep.timing)
    assert row.compute_cycles == 40 * one.cycles and row.macs == 40 * 64
    # recurrent weights are fetched from DRAM once, read from SRAM every step
    assert row.traffic.dram_read_weights == 64
    assert row.traffic.sram_read_weights >= 40 * 64
