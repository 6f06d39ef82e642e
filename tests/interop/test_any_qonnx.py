"""QONNX that amchw did not write: single Brevitas layers of shapes no RadioML profile has,
an image CNN (FINN's CNV pattern), an MLP (FINN's TFC pattern) and a residual 1-D network,
each exported by Brevitas itself. They import, simulate (sample inputs over the input
quantizer's range), agree with qonnx's own executor at every quantizer, and a single GEMM
layer's cycles in --timing scalesim equal SCALE-Sim v2's own report for that GEMM."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from brevitas.nn import (QuantConv1d, QuantConv2d, QuantEltwiseAdd, QuantIdentity, QuantLinear,
                         QuantReLU)
from click.testing import CliRunner
from torch import nn

from amchw.cli import main
from amchw.ir.samples import sample_inputs
from amchw.lower.qonnx import load_qonnx
from amchw.models.quant import (QuantConfig, act_quantizer, input_kwargs, relu_kwargs,
                                weight_kwargs)
from amchw.verify.qonnx import compare_with_qonnx

SCALESIM = Path(__file__).parents[1] / "sims" / "data" / "scalesim_v2_cycles.json"
CFG = QuantConfig()


def _export(model, shape, path) -> Path:
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():  # a few batches so the learned activation scales are set
        model.train()
        for _ in range(3):
            model(torch.randn((8, *shape)))
        model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.randn((1, *shape)), export_path=str(path), dynamo=False)
    return path


def _layer(kind: str):
    """(model, input shape, GEMM (M, N, K)) for one quantized layer and its input quantizer."""
    torch.manual_seed(0)
    wq = weight_kwargs(CFG)
    if kind == "conv1d":      # 3 channels, 12 samples, k 3 -> M 10 outputs, N 3, K 9  (g2)
        layer, shape, gemm = QuantConv1d(3, 3, 3, bias=True, **wq), (3, 12), (10, 3, 9)
    elif kind == "conv2d":    # 1 x 5 x 5, 3 x 3, 9 filters -> M 9, N 9, K 9             (g8)
        layer, shape, gemm = QuantConv2d(1, 9, 3, bias=True, **wq), (1, 5, 5), (9, 9, 9)
    elif kind == "conv1d-k3": # 1 channel, 9 samples, 5 filters -> M 7, N 5, K 3           (g1)
        layer, shape, gemm = QuantConv1d(1, 5, 3, bias=False, **wq), (1, 9), (7, 5, 3)
    else:                     # 17 -> 9 -> M 1, N 9, K 17                                  (g7)
        layer, shape, gemm = QuantLinear(17, 9, bias=True, **wq), (17,), (1, 9, 17)
    return nn.Sequential(QuantIdentity(**input_kwargs(CFG)), layer), shape, gemm


@pytest.mark.parametrize("kind", ["conv1d", "conv2d", "conv1d-k3", "linear"])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_one_layer_simulates_with_scalesims_cycles(tmp_path, kind, dataflow):
    model, shape, (M, N, K) = _layer(kind)
    path = _export(model, shape, tmp_path / f"{kind}.qonnx")
    r = CliRunner().invoke(main, ["simulate", str(path), "--array", "4x4", "--dataflow",
                                  dataflow, "--timing", "scalesim", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    gemm = [layer for layer in d["layers"] if layer["unit"] == "array"]
    assert len(gemm) == 1 and (gemm[0]["M"], gemm[0]["N"], gemm[0]["K"]) == (M, N, K)
    ref = [c for c in json.loads(SCALESIM.read_text())["cases"]
           if (c["M"], c["N"], c["K"], c["rows"], c["cols"], c["dataflow"])
           == (M, N, K, 4, 4, dataflow)]
    assert len(ref) == 1
    assert gemm[0]["cycles"] == ref[0]["total_cycles"]     # SCALE-Sim v2's own count
    ic = d["integer_check"]
    assert ic["equal"] and "input quantizer's range" in ic["inputs"]
    # the text form says which inputs the integer check used
    r = CliRunner().invoke(main, ["simulate", str(path), "--array", "4x4"])
    assert r.exit_code == 0 and "seeded uniform values over the input quantizer" in r.output


def test_sample_inputs_cover_the_input_quantizers_codes(tmp_path):
    model, shape, _ = _layer("conv2d")
    g = load_qonnx(_export(model, shape, tmp_path / "c.qonnx"))
    x, what = sample_inputs(g, 64, seed=3)
    assert x.shape == (64, *shape) and "seed 3" in what
    t = g.nodes[0].op.out
    codes = np.clip(np.round(x / t.scale[0]), t.lo, t.hi)
    assert codes.min() == t.lo and codes.max() == t.hi    # both clamped ends occur
    y, _ = sample_inputs(g, 64, seed=3)
    assert np.array_equal(x, y)                            # seeded


def _cnv():
    """FINN's CNV pattern, small: two 3x3 conv pairs with max pools on 3 x 16 x 16, two FCs."""
    wq, aq = weight_kwargs(CFG), relu_kwargs(CFG)
    return nn.Sequential(
        QuantIdentity(**input_kwargs(CFG)),
        QuantConv2d(3, 8, 3, bias=False, **wq), nn.BatchNorm2d(8), QuantReLU(**aq),
        QuantConv2d(8, 8, 3, bias=False, **wq), nn.BatchNorm2d(8), QuantReLU(**aq),
        nn.MaxPool2d(2),
        QuantConv2d(8, 16, 3, bias=False, **wq), nn.BatchNorm2d(16), QuantReLU(**aq),
        nn.MaxPool2d(2), nn.Flatten(),
        QuantLinear(16 * 2 * 2, 32, bias=False, **wq), nn.BatchNorm1d(32), QuantReLU(**aq),
        QuantLinear(32, 10, bias=True, **wq)), (3, 16, 16)


def _tfc():
    """FINN's TFC pattern: an MLP on 28 x 28 images, 64-64-64-10."""
    wq, aq = weight_kwargs(CFG), relu_kwargs(CFG)
    layers = [nn.Flatten(), QuantIdentity(**input_kwargs(CFG))]
    n = 28 * 28
    for _ in range(3):
        layers += [QuantLinear(n, 64, bias=False, **wq), nn.BatchNorm1d(64), QuantReLU(**aq)]
        n = 64
    layers.append(QuantLinear(64, 10, bias=True, **wq))
    return nn.Sequential(*layers), (1, 28, 28)


class _Res1d(nn.Module):
    """A residual 1-D network: conv, then a unit whose two convs add back onto its input."""

    def __init__(self):
        super().__init__()
        wq, aq = weight_kwargs(CFG), relu_kwargs(CFG)
        self.inp = QuantIdentity(**input_kwargs(CFG))
        self.c0 = QuantConv1d(2, 8, 3, padding=1, bias=True, **wq)
        self.r0 = QuantReLU(**aq)
        self.c1 = QuantConv1d(8, 8, 3, padding=1, bias=True, **wq)
        self.r1 = QuantReLU(**aq)
        self.c2 = QuantConv1d(8, 8, 3, padding=1, bias=True, **wq)
        # both addends requantized to one signed scale; a signed output quantizer
        self.add = QuantEltwiseAdd(input_quant=act_quantizer(CFG), input_bit_width=8,
                                   output_quant=act_quantizer(CFG), output_bit_width=8,
                                   return_quant_tensor=True)
        self.fc = QuantLinear(8 * 40, 5, bias=True, **wq)

    def forward(self, x):
        a = self.r0(self.c0(self.inp(x)))
        b = self.c2(self.r1(self.c1(a)))
        return self.fc(torch.flatten(self.add(a, b), 1))


@pytest.mark.parametrize("which", ["cnv", "tfc", "res1d"])
def test_brevitas_networks_beyond_the_zoo(tmp_path, which):
    model, shape = {"cnv": _cnv, "tfc": _tfc, "res1d": lambda: (_Res1d(), (2, 40))}[which]()
    path = _export(model, shape, tmp_path / f"{which}.qonnx")
    g = load_qonnx(path)
    assert g.inputs[0].shape == shape
    x, _ = sample_inputs(g, 6, seed=0)
    rep = compare_with_qonnx(path, x)
    assert rep.forbidden == 0, [p for p in rep.points if p.forbidden]
    assert len(rep.points) >= 3
    for cmd in (["simulate", str(path), "--array", "4x4", "--json"], ["cost", str(path)]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 0, r.output


def test_verify_a_qonnx_file_against_qonnx_and_a_missing_finn(tmp_path):
    model, shape, _ = _layer("conv2d")
    path = _export(model, shape, tmp_path / "c.qonnx")
    r = CliRunner().invoke(main, ["verify", "--model", str(path), "--frames", "4"])
    assert r.exit_code == 0, r.output
    assert "qonnx's executor vs IR interpreter" in r.output and "OK: 0 forbidden" in r.output
    assert "input quantizer's range" in r.output
    r = CliRunner().invoke(main, ["verify", "--model", str(path), "--reference", "finn",
                                  "--finn-python", str(tmp_path / "nope" / "python")])
    assert r.exit_code == 1 and "FINN was not found" in r.output and "finn-venv.sh" in r.output
    assert "Traceback" not in r.output
