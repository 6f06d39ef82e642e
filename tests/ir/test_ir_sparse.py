"""Weight storage formats in the IR: the validator checks them against the weights, the printer
and save/load keep them, the numba backend runs the zero-skipping kernels and equals the
reference, and set_format picks the layers that qualify."""

import numpy as np
import pytest
import torch

from amchw.ir import Conv, Dense, IRError, QType, acc_type
from amchw.ir.interp import run
from amchw.ir.io import load, save
from amchw.ir.printer import to_text
from amchw.ir.sparse import index_bits, set_format, sparsity
from amchw.lower.brevitas import lower
from amchw.models import build
from amchw.models.calibrate import calibrate
from amchw.data.synthetic import frames_for

I8 = QType(8, True, False, (2.0**-6,))
W8 = QType(8, True, True, (2.0**-7,))


def _pruned(name="vgg10", frac=0.8, seed=0):
    """A calibrated zoo model with the smallest `frac` of every layer's weights set to 0, by
    magnitude per layer, and 2:4 on vgg10's fc9 (every group of 4 keeps its largest 2)."""
    fr = frames_for(name, 16, seed=seed)
    m = calibrate(build(name, seed=seed), torch.as_tensor(fr), seed=seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                w = mod.weight
                cut = w.abs().flatten().kthvalue(max(1, int(frac * w.numel()))).values
                w[w.abs() <= cut] = 0
        if name == "vgg10":
            w = m.fc9.weight.view(128, 32, 4)
            keep = w.abs().argsort(dim=2, descending=True)[:, :, :2]
            mask = torch.zeros_like(w, dtype=torch.bool).scatter_(2, keep, True)
            w[~mask] = 0
    return m.eval(), fr


def test_formats_run_equal_and_survive_save_load(tmp_path):
    m, fr = _pruned()
    g = lower(m, torch.as_tensor(fr[:4]), name="vgg10")
    want = run(g, fr, "ref")
    for fmt in ("gated", "csr", "csc", "2:4"):
        g2, skipped = set_format(g, fmt, min_sparsity=0.5)
        changed = [n for n in g2.nodes if isinstance(n.op, (Conv, Dense)) and n.op.w_format == fmt]
        assert changed, fmt
        if fmt == "2:4":  # only fc9 fits 2:4 (the magnitude pruning above is unstructured)
            assert [n.name for n in changed] == ["fc9"]
            assert "do not fit 2:4" in skipped["fc8"]
        assert np.array_equal(run(g2, fr, "numba"), want), fmt
        assert np.array_equal(run(g2, fr, "fast"), want), fmt
        p = save(g2, tmp_path / f"{fmt.replace(':', '_')}.npz")
        assert to_text(load(p)) == to_text(g2)
        assert f"w_format={fmt}" in to_text(g2)
    assert "w_format" not in to_text(g)  # dense: the default is not printed


def test_validator_checks_the_format_against_the_weights():
    w = np.zeros((2, 8), np.int32)
    w[1, 0:3] = 5
    acc = acc_type(I8, W8)
    Dense(w, None, W8, acc, "3:4")  # fits
    from amchw.ir import GraphBuilder

    b = GraphBuilder("g")
    b.input("x", (8,), I8)
    with pytest.raises(IRError, match=r"'fc' \(Dense\): output 1, group 0 holds 3 nonzero "
                                      r"weights, more than 2:4 allows"):
        b.add("fc", Dense(w, None, W8, acc, "2:4"), ["x"])
    with pytest.raises(IRError, match="2-bit csr indices cannot address 8 positions"):
        b.add("fc2", Dense(w, None, W8, acc, "csr", 2), ["x"])
    with pytest.raises(IRError, match="weight format must be"):
        Dense(w, None, W8, acc, "bcsr")
    with pytest.raises(IRError, match="multiple of 3"):
        b.add("fc3", Dense(w, None, W8, acc, "1:3"), ["x"])


def test_sparsity_and_index_bits():
    w = np.zeros((4, 10), np.int32)
    w[0, 3] = w[2, 9] = 1
    acc = acc_type(I8, W8)
    d = Dense(w, None, W8, acc)
    assert sparsity(d) == 1 - 2 / 40
    assert index_bits(d) == 0
    assert index_bits(Dense(w, None, W8, acc, "csr")) == 4     # 10 columns -> 4 bits
    assert index_bits(Dense(w, None, W8, acc, "csc")) == 2     # 4 rows -> 2 bits
    assert index_bits(Dense(w, None, W8, acc, "csr", 16)) == 16
    assert index_bits(Dense(np.zeros((4, 8), np.int32), None, W8, acc, "2:4")) == 2
    c = Conv(np.zeros((3, 2, 3), np.int32), None, W8, (1,), ((1, 1),), (1,), 1, acc, "csr")
    assert index_bits(c) == 3  # 2 channels x 3 taps = 6 positions


def test_set_format_names_unknown_layers():
    m, fr = _pruned("vtcnn2", 0.9)
    g = lower(m, torch.as_tensor(fr[:2]), name="vtcnn2")
    g2, skipped = set_format(g, "csr", layers=["fc3"])
    fc3 = next(n for n in g2.nodes if n.name == "fc3")
    assert fc3.op.w_format == "csr" and sparsity(fc3.op) >= 0.9 - 1e-3
    assert all(n.op.w_format == "dense" for n in g2.nodes
               if isinstance(n.op, (Conv, Dense)) and n.name != "fc3")
    assert np.array_equal(run(g2, fr, "numba"), run(g, fr, "ref"))
    with pytest.raises(IRError, match="no Conv/Dense layer named fc99"):
        set_format(g, "csr", layers=["fc99"])


def test_a_pruned_grus_recurrent_layers_are_stored_sparse_and_cost_less():
    """set_format reaches the Dense layers inside a GRU's cell (costed once per time step):
    after pruning, they are stored in CSR, run to the same integers, and the simulator
    multiplies only their nonzero weights, step after step; what zero-skipping cannot shorten
    is the number of steps."""
    from amchw.compress.prune import magnitude_prune
    from amchw.ir import GRU
    from amchw.models import QuantConfig
    from amchw.models.gru import gru_cnn
    from amchw.sims.hardware import PRESETS
    from amchw.sims.simulate import simulate

    X = torch.as_tensor(frames_for("gru-cnn", 8, seed=2)[:, :, :48].copy())
    torch.manual_seed(0)
    m = calibrate(gru_cnn(QuantConfig(), cells=8), X, seed=0)
    magnitude_prune(m, 0.75)
    g = lower(m.eval(), X[:2])
    sp, why = set_format(g, "csr", min_sparsity=0.5)
    cell = next(n for n in sp.nodes if isinstance(n.op, GRU)).op.cell
    dense = [n for n in cell.nodes if isinstance(n.op, Dense)]
    assert len(dense) == 3 and all(n.op.w_format == "csr" for n in dense)
    assert np.array_equal(run(g, X.numpy(), "ref"), run(sp, X.numpy(), "ref"))
    target = PRESETS["edge-asic-45nm"]
    a, b = simulate(g, target), simulate(sp, target)
    steps = 48
    for n in dense:
        ra = next(r for r in a.layers if r.node.endswith(n.name))
        rb = next(r for r in b.layers if r.node.endswith(n.name))
        nnz = int((n.op.weight != 0).sum())
        assert ra.macs == steps * n.op.weight.size and rb.macs == steps * nnz
    assert b.totals()["energy_per_inference_uj"] < a.totals()["energy_per_inference_uj"]
