"""Brevitas -> IR lowering and layer-by-layer verification (the issue's acceptance runs)."""

from collections import OrderedDict

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint,
                            Uint8ActPerTensorFixedPoint)
from torch import nn

from amchw.data.synthetic import frames_for
from amchw.ir.printer import to_text
from amchw.lower.brevitas import LoweringError, lower
from amchw.models import ZOO, QuantConfig, build, count_macs, count_params
from amchw.models.quant import input_kwargs
from amchw.models.gru import QuantGRU
from amchw.models.layers import Cat
from amchw.models.calibrate import calibrate
from amchw.verify.brevitas import verify_model


def zoo_model(name, scales, frames):
    return calibrate(build(name, scales=scales, seed=0), torch.as_tensor(frames), seed=0)


#: in the slow run only: models whose verification is long and whose layers other cases cover
#: (the IBCNN teacher: SBCNN blocks and residual units, 28M MACs per frame)
SLOW_VERIFY = ("ibcnn-teacher",)


@pytest.mark.parametrize("name,scales,reference", [
    pytest.param(name, scales, ref, marks=pytest.mark.slow) if name in SLOW_VERIFY
    else (name, scales, ref) for name in sorted(ZOO) if not name.startswith("gru-cnn-")
    for scales, ref in (("po2", "float32"), ("float", "float64"))])
def test_zoo_verifies_bit_exact(name, scales, reference):
    """The whole zoo: 0 forbidden mismatches against Brevitas, layer by layer, over 256 frames
    (fewer for the largest models, see below); of the GRU-CNN's cell-count variants (the
    same layers, narrower or wider) the 80-cell one."""
    # the GRU-CNN runs its 1024 steps one by one in Brevitas: 8 frames; models above 3M
    # parameters or 15M MACs per frame: 64 (the int64 reference run dominates)
    m0 = build(name)
    n = 8 if name == "gru-cnn" else 64 if (
        count_params(m0) > 3_000_000 or count_macs(m0, ZOO[name].input_shape) > 15_000_000) \
        else 256
    frames = frames_for(name, n, seed=1)
    model = zoo_model(name, scales, frames)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    rep = verify_model(model, frames, reference=reference, name=name)
    assert rep.frames == n
    assert rep.forbidden == 0, [(r.layer, r.forbidden) for r in rep.layers if r.forbidden]
    # interpreter and Numba kernels are equal at every node
    assert rep.kernels and all(r.mismatches == 0 for r in rep.kernels)
    if reference == "float64" or not has_bn:
        # float64 reference (and models with no float op between quantizers): no
        # difference at all, at any layer
        assert all(r.mismatches == 0 for r in rep.layers)
    else:
        # po2 models with BatchNorm in float32: only where BatchNorm rounds, each a near-tie
        for r in rep.layers:
            if r.mismatches:
                assert r.exactness == "float" and r.max_diff_lsb == 1
                assert r.max_tie_distance is not None and r.max_tie_distance < 1e-3
    if reference == "float64" or not has_bn:
        assert rep.argmax_agreement == 1.0
    else:  # an allowed near tie can flip a frame's top class further on (docs/verification.md)
        assert rep.argmax_agreement == 1.0 or (
            any(r.mismatches for r in rep.layers) and rep.argmax_agreement >= 0.98)
    # every quantizer and weight layer of the model was compared (a QuantGRU as a whole:
    # its state sequence)
    covered = {r.layer for r in rep.layers}
    grus = [n for n, m in model.named_modules() if isinstance(m, QuantGRU)]
    quantized = {n for n, m in model.named_modules()
                 if isinstance(m, (qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantLinear,
                                   qnn.QuantReLU, qnn.QuantIdentity, qnn.QuantEltwiseAdd,
                                   QuantGRU))
                 and not any(n.startswith(g + ".") for g in grus)}
    assert "inp" in covered and quantized <= covered, quantized - covered


def test_float32_reference_counts_near_ties_for_float_scales():
    frames = frames_for("vgg10", 64, seed=2)
    rep = verify_model(zoo_model("vgg10", "float", frames), frames, reference="float32")
    assert rep.forbidden == 0
    for r in rep.layers:
        if r.mismatches:
            assert r.exactness == "float"


def test_lowering_is_deterministic_and_int32_mantissa_option():
    frames = frames_for("vtcnn2", 16, seed=3)
    m = zoo_model("vtcnn2", "float", frames)
    x = torch.as_tensor(frames[:4])
    assert to_text(lower(m, x)) == to_text(lower(m, x))
    g31 = lower(m, x, mantissa_bits=31)
    for n in g31.nodes:
        if n.op.kind == "Requant":
            assert np.all(np.abs(n.op.multiplier) < 2**31)


def _residual_model():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            kw = dict(weight_quant=Int8WeightPerTensorFixedPoint, bias=False)
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint,
                                         return_quant_tensor=True)
            self.c1 = qnn.QuantConv1d(2, 4, 3, padding=1, **kw)
            self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.c2 = qnn.QuantConv1d(4, 4, 3, padding=1, **kw)
            self.r2 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.add = qnn.QuantEltwiseAdd(input_quant=Int8ActPerTensorFixedPoint,
                                           output_quant=Int8ActPerTensorFixedPoint,
                                           return_quant_tensor=True)
            # a constant-scale quantizer shared by both concatenated branches
            self.r3 = qnn.QuantIdentity(**input_kwargs(QuantConfig()))
            self.cat = Cat(dim=1)
            self.pool = nn.AvgPool1d(2)
            self.q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint,
                                       return_quant_tensor=True)

        def forward(self, x):
            a = self.r1(self.c1(self.inp(x)))
            b = self.r2(self.c2(a))
            s = self.r3(self.add(a, b))
            return self.q(self.pool(self.cat(s, self.r3(a))))

    torch.manual_seed(0)
    m = Res()
    x = torch.randn(32, 2, 16)
    from brevitas.graph.calibrate import calibration_mode

    m.eval()
    with torch.no_grad(), calibration_mode(m):
        m(x)
    return m.eval(), x.numpy()


def test_residual_add_concat_avgpool_lower_and_verify():
    m, x = _residual_model()
    g = lower(m, torch.as_tensor(x[:4]))
    kinds = [n.op.kind for n in g.nodes]
    assert {"Add", "Concat", "AvgPool"} <= set(kinds)
    rep = verify_model(m, x, reference="float64")
    assert rep.forbidden == 0 and all(r.mismatches == 0 for r in rep.layers)


def test_unsupported_module_names_its_path():
    m = nn.Sequential(OrderedDict(inp=qnn.QuantIdentity(return_quant_tensor=True), act=nn.GELU()))
    with pytest.raises(LoweringError, match="act: unsupported module GELU"):
        lower(m.eval(), torch.zeros(1, 4))


def test_functional_op_in_forward_is_refused():
    class F(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(return_quant_tensor=True)
            self.fc = qnn.QuantLinear(4, 2, bias=False)

        def forward(self, x):
            return self.fc(self.inp(x) * 2)

    with pytest.raises(LoweringError, match="fc: its input comes from an operation"):
        lower(F().eval(), torch.randn(2, 4))


def test_training_mode_is_refused():
    m = build("vtcnn2", seed=0)
    with pytest.raises(LoweringError, match="eval"):
        lower(m.train(), torch.zeros(1, 1, 2, 128))
