"""ResNet and InceptionNet after West & O'Shea ("Deep architectures for modulation recognition",
DySPAN 2017), the two large benchmarks of the edge-efficient seed, for RadioML 2016's 2x128
frames and 11 classes.

The seed gives only sizes: about 3.45M and 10.14M parameters with the first FC layer holding
about 3.37M and 10.06M; West & O'Shea do not publish filter counts. The first FC layer's shape
is pinned by the seed's own Table II: its compression rates
C_Q = b*M*N / (b*K_s*N + log2(K_s)*M*P) (b = 64, K_s = 256) give, for N = 256 outputs,
M = 13,200 inputs for ResNet (42.92 at P = 8 and 36.76 at P = 16 to the printed digit; P = 2 gives
49.09 against a printed 49.56) and M = 39,200 for InceptionNet (133.20 at P = 2 and 95.81 at
P = 8; 69.72 at P = 16 against 69.76). The convolutional parts are our choice, sized so the
totals land on the seed's figures:

ResNet (3,450,933 parameters; FC1 13,200 x 256 + 256 = 3,379,456): a stem conv 50 (1,3) with
padding (0,2) (width 128 -> 130), four residual units [conv 50 (1,3) 'same', BN, ReLU, conv,
BN, + skip, ReLU], a conv 50 (1,3) with padding (0,2) (width 132), so 50 x 2 x 132 = 13,200;
FC 256 + ReLU + dropout 0.5, FC 11. The add requantizes both inputs to its output scale in one
rounding and its unsigned output quantizer is the unit's ReLU.

InceptionNet (10,136,821 parameters; FC1 39,200 x 256 + 256 = 10,035,456): a stem conv 50
(1,31) without padding (a 31-tap front-end filter: width 128 -> 98), three Inception modules of
four branches of 50 channels each [1x1; 1x1 reduce 24 -> (1,3); 1x1 reduce 24 -> (1,5);
max pool (1,3) stride 1 -> 1x1], concatenated to 200 channels, so 200 x 2 x 98 = 39,200;
FC 256 + ReLU + dropout 0.5, FC 11. The four branches share one output quantizer (one scale),
so the concatenation copies codes.

Convolutions have no bias (a BatchNorm follows each); the FC layers have Int32 biases.
"""
from __future__ import annotations

from brevitas.nn import QuantConv2d, QuantEltwiseAdd, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .layers import Cat
from .quant import QuantConfig, act_quantizer, input_kwargs, relu_kwargs, relu_quantizer, \
    weight_kwargs

INPUT_SHAPE = (1, 2, 128)
NUM_CLASSES = 11
FILTERS = 50
RES_UNITS = 4
INCEPTION_MODULES = 3
REDUCE = 24
STEM_TAPS = 31
FC_UNITS = 256


def _conv(cin, cout, k, pad, wq):
    return QuantConv2d(cin, cout, (1, k), padding=(0, pad), bias=False, **wq)


class ResidualUnit(nn.Module):
    """conv, BN, ReLU, conv, BN; add the unit's input; ReLU (the add's unsigned output
    quantizer)."""

    def __init__(self, channels: int, config: QuantConfig):
        super().__init__()
        wq = weight_kwargs(config)
        self.conv_a = _conv(channels, channels, 3, 1, wq)
        self.bn_a = nn.BatchNorm2d(channels)
        self.relu_a = QuantReLU(**relu_kwargs(config))
        self.conv_b = _conv(channels, channels, 3, 1, wq)
        self.bn_b = nn.BatchNorm2d(channels)
        # both addends are requantized to one signed scale, added exactly, then requantized
        # by the unsigned output quantizer, which is the unit's ReLU
        self.add = QuantEltwiseAdd(input_quant=act_quantizer(config),
                                   input_bit_width=config.act_bits,
                                   output_quant=relu_quantizer(config),
                                   output_bit_width=config.act_bits, return_quant_tensor=True)

    def forward(self, x):
        y = self.bn_b(self.conv_b(self.relu_a(self.bn_a(self.conv_a(x)))))
        return self.add(x, y)


class InceptionModule(nn.Module):
    """Four branches of `width` channels (1x1; reduce + (1,3); reduce + (1,5); max pool (1,3)
    + 1x1), each conv followed by BN; the branch outputs pass through one shared ReLU
    quantizer and are concatenated along the channels."""

    def __init__(self, cin: int, width: int, reduce: int, config: QuantConfig):
        super().__init__()
        wq = weight_kwargs(config)
        self.b1 = _conv(cin, width, 1, 0, wq)
        self.b1_bn = nn.BatchNorm2d(width)
        self.b3_reduce = _conv(cin, reduce, 1, 0, wq)
        self.b3_reduce_bn = nn.BatchNorm2d(reduce)
        self.b3_relu = QuantReLU(**relu_kwargs(config))
        self.b3 = _conv(reduce, width, 3, 1, wq)
        self.b3_bn = nn.BatchNorm2d(width)
        self.b5_reduce = _conv(cin, reduce, 1, 0, wq)
        self.b5_reduce_bn = nn.BatchNorm2d(reduce)
        self.b5_relu = QuantReLU(**relu_kwargs(config))
        self.b5 = _conv(reduce, width, 5, 2, wq)
        self.b5_bn = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d((1, 3), stride=1, padding=(0, 1))
        self.bp = _conv(cin, width, 1, 0, wq)
        self.bp_bn = nn.BatchNorm2d(width)
        self.out_relu = QuantReLU(**relu_kwargs(config))  # shared: one scale for the concat
        self.cat = Cat(dim=1)

    def forward(self, x):
        r = self.out_relu
        y1 = r(self.b1_bn(self.b1(x)))
        y3 = r(self.b3_bn(self.b3(self.b3_relu(self.b3_reduce_bn(self.b3_reduce(x))))))
        y5 = r(self.b5_bn(self.b5(self.b5_relu(self.b5_reduce_bn(self.b5_reduce(x))))))
        yp = r(self.bp_bn(self.bp(self.pool(x))))
        return self.cat(y1, y3, y5, yp)


def _head(flat: int, config: QuantConfig, num_classes: int, dropout: float):
    wq = weight_kwargs(config)
    return [
        ("flatten", nn.Flatten()),
        ("fc1", QuantLinear(flat, FC_UNITS, bias=True, **wq)),
        ("relu_fc1", QuantReLU(**relu_kwargs(config))),
        ("drop", nn.Dropout(dropout)),
        ("fc2", QuantLinear(FC_UNITS, num_classes, bias=True, **wq)),
    ]


class _Net(nn.Module):
    """Named children run in order (like nn.Sequential), kept as a plain Module so the
    residual and Inception blocks read as what they are."""

    def __init__(self, layers):
        super().__init__()
        for name, m in layers:
            self.add_module(name, m)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x


def resnet(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
           dropout: float = 0.5) -> nn.Module:
    """ResNet after West & O'Shea (3,450,933 parameters; see the module docstring)."""
    config = config or QuantConfig()
    wq = weight_kwargs(config)
    layers: list[tuple[str, nn.Module]] = [
        ("inp", QuantIdentity(**input_kwargs(config))),
        ("stem", _conv(1, FILTERS, 3, 2, wq)),
        ("stem_bn", nn.BatchNorm2d(FILTERS)),
        ("stem_relu", QuantReLU(**relu_kwargs(config))),
    ]
    layers += [(f"unit{i}", ResidualUnit(FILTERS, config)) for i in range(1, RES_UNITS + 1)]
    layers += [
        ("conv_out", _conv(FILTERS, FILTERS, 3, 2, wq)),
        ("bn_out", nn.BatchNorm2d(FILTERS)),
        ("relu_out", QuantReLU(**relu_kwargs(config))),
    ]
    width = INPUT_SHAPE[2] + 2 + 2  # two (1,3) convs padded by 2 on each side
    return _Net(layers + _head(FILTERS * INPUT_SHAPE[1] * width, config, num_classes, dropout))


def inception(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
              dropout: float = 0.5) -> nn.Module:
    """InceptionNet after West & O'Shea (10,136,821 parameters; see the module docstring)."""
    config = config or QuantConfig()
    wq = weight_kwargs(config)
    layers: list[tuple[str, nn.Module]] = [
        ("inp", QuantIdentity(**input_kwargs(config))),
        ("stem", _conv(1, FILTERS, STEM_TAPS, 0, wq)),
        ("stem_bn", nn.BatchNorm2d(FILTERS)),
        ("stem_relu", QuantReLU(**relu_kwargs(config))),
    ]
    cin = FILTERS
    for i in range(1, INCEPTION_MODULES + 1):
        layers.append((f"incep{i}", InceptionModule(cin, FILTERS, REDUCE, config)))
        cin = 4 * FILTERS
    width = INPUT_SHAPE[2] - STEM_TAPS + 1
    return _Net(layers + _head(cin * INPUT_SHAPE[1] * width, config, num_classes, dropout))
