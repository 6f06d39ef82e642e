"""The project's quantizers: config validation, quantizer choice, constant input scale, biases."""
import math

import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFixedPoint,
    Int8WeightPerTensorFloat,
    Int32Bias,
    Uint8ActPerTensorFixedPoint,
    Uint8ActPerTensorFloat,
)
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
from brevitas.quant_tensor import QuantTensor

from amchw.models.quant import (
    QuantConfig,
    act_quantizer,
    input_kwargs,
    input_scale,
    relu_kwargs,
    relu_quantizer,
    weight_kwargs,
    weight_quantizer,
)


def test_defaults():
    c = QuantConfig()
    assert (c.weight_bits, c.act_bits, c.input_bits) == (8, 8, 8)
    assert (c.scales, c.per_channel) == ("po2", False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_bits": 1}, "weight_bits"),
        ({"weight_bits": 9}, "weight_bits"),
        ({"act_bits": 0}, "act_bits"),
        ({"act_bits": 16}, "act_bits"),
        ({"input_bits": 1}, "input_bits"),
        ({"weight_bits": 8.0}, "weight_bits"),
        ({"act_bits": True}, "act_bits"),
        ({"scales": "int"}, "scales"),
        ({"per_channel": "yes"}, "per_channel"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantConfig(**kwargs)


def test_config_is_frozen():
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        QuantConfig().weight_bits = 4


@pytest.mark.parametrize(
    "scales, per_channel, wq, aq, rq",
    [
        ("po2", False, Int8WeightPerTensorFixedPoint, Int8ActPerTensorFixedPoint,
         Uint8ActPerTensorFixedPoint),
        ("po2", True, Int8WeightPerChannelFixedPoint, Int8ActPerTensorFixedPoint,
         Uint8ActPerTensorFixedPoint),
        ("float", False, Int8WeightPerTensorFloat, Int8ActPerTensorFloat, Uint8ActPerTensorFloat),
        ("float", True, Int8WeightPerChannelFloat, Int8ActPerTensorFloat, Uint8ActPerTensorFloat),
    ],
)
def test_quantizer_choice(scales, per_channel, wq, aq, rq):
    c = QuantConfig(scales=scales, per_channel=per_channel, weight_bits=5, act_bits=6)
    assert weight_quantizer(c) is wq
    assert act_quantizer(c) is aq
    assert relu_quantizer(c) is rq
    kw = weight_kwargs(c)
    assert kw["weight_quant"] is wq and kw["weight_bit_width"] == 5
    assert kw["bias_quant"] is Int32Bias and kw["return_quant_tensor"] is False
    rk = relu_kwargs(c)
    assert rk["act_quant"] is rq and rk["bit_width"] == 6 and rk["return_quant_tensor"] is True


@pytest.mark.parametrize("scales", ["po2", "float"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_input_quantizer_constant_scale(scales, bits):
    c = QuantConfig(scales=scales, input_bits=bits)
    half = 2 ** (bits - 1)
    expected = 2.0 / half if scales == "po2" else 2.0 / (half - 1)
    assert input_scale(c) == pytest.approx(expected, rel=0, abs=0)
    q = QuantIdentity(**input_kwargs(c))
    assert list(q.parameters()) == []  # nothing to learn
    x = torch.linspace(-3, 3, 101)
    q.train()
    for _ in range(3):  # training-mode passes must not move a constant scale
        q(10 * x)
    q.eval()
    out = q(x)
    assert isinstance(out, QuantTensor)
    assert out.scale.item() == pytest.approx(expected, rel=1e-7)
    assert out.bit_width.item() == bits and out.signed
    codes = torch.round(out.value / out.scale)
    lo = -half if scales == "po2" else -(half - 1)
    assert codes.min().item() == lo and codes.max().item() == half - 1
    # The range is [-2, 2]: -2 is representable in both modes, +2 only in the narrow float mode.
    assert out.value.min().item() == pytest.approx(-2.0)
    if scales == "float":
        assert out.value.max().item() == pytest.approx(2.0)
    else:
        assert math.log2(out.scale.item()).is_integer()


def _layers(c):
    kw = weight_kwargs(c)
    return [
        (QuantConv1d(3, 5, 3, padding=1, bias=True, **kw), (4, 3, 16), F.conv1d, {"padding": 1}),
        (
            QuantConv2d(3, 5, (1, 3), padding=(0, 2), bias=True, **kw),
            (4, 3, 2, 16),
            F.conv2d,
            {"padding": (0, 2)},
        ),
        (QuantLinear(16, 5, bias=True, **kw), (4, 16), F.linear, {}),
    ]


@pytest.mark.filterwarnings("ignore:No quant bias cache")  # from the rejected plain-input call
@pytest.mark.parametrize("scales", ["po2", "float"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_int32_bias_accepted_and_exact(scales, per_channel):
    torch.manual_seed(0)
    c = QuantConfig(scales=scales, per_channel=per_channel, weight_bits=6, act_bits=5)
    for layer, shape, fn, kw in _layers(c):
        with torch.no_grad():
            layer.bias.uniform_(-0.5, 0.5)
        inp = QuantIdentity(**input_kwargs(c)).eval()
        relu = QuantReLU(**relu_kwargs(c))
        layer.eval()
        x = torch.randn(shape)
        xq = inp(x)
        assert isinstance(xq, QuantTensor)
        y = layer(xq)
        assert type(y) is torch.Tensor  # a plain float tensor, so BatchNorm can follow
        assert isinstance(relu(y), QuantTensor)
        qw = layer.quant_weight()
        qb = layer.bias_quant(layer.bias, xq, qw)
        assert qb.bit_width.item() == 32
        bias_scale = (xq.scale * qw.scale).flatten()
        assert torch.allclose(qb.scale.flatten(), bias_scale)
        # q_b = round(b / (s_in * s_w)); the layer output is the float conv of the quantized parts.
        qb_int = torch.round(layer.bias / bias_scale)
        assert torch.equal(torch.round(qb.value / bias_scale), qb_int)
        ref = fn(xq.value.double(), qw.value.double(), (qb_int * bias_scale).double(), **kw)
        assert torch.allclose(y.double(), ref, atol=1e-5)
        with pytest.raises(RuntimeError, match="Input scale required"):
            layer(x)  # Int32Bias needs a QuantTensor input


def test_per_channel_weight_scales():
    for scales in ("po2", "float"):
        c = QuantConfig(scales=scales, per_channel=True)
        layer = QuantConv1d(2, 7, 3, bias=False, **weight_kwargs(c))
        s = layer.quant_weight().scale
        assert s.numel() == 7
        if scales == "po2":
            assert torch.equal(torch.log2(s), torch.round(torch.log2(s)))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_weight_bits_narrow(bits):
    c = QuantConfig(weight_bits=bits)
    layer = QuantLinear(32, 8, bias=False, **weight_kwargs(c))
    qw = layer.quant_weight()
    codes = torch.round(qw.value / qw.scale)
    assert qw.bit_width.item() == bits
    assert codes.abs().max().item() <= 2 ** (bits - 1) - 1  # narrow range
