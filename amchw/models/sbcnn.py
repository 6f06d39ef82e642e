"""SBCNN teacher and single-block student of the distillation seed (docs/sources.md, Seed papers),
for RadioML 2018's 24 classes of 2x1024 frames.

The seed gives the layout only: the teacher is [A, B, C, C, global average pool, dense], the
student [A, global average pool, dense]; its blocks are conv + BatchNorm + ReLU (after Kim et
al., IEEE Access 2020, whose figures with the block internals are not reproduced in the seed).
Our blocks, documented as our choice:
- A (stem): conv 32 (2,3) padding (0,1), which merges the I and Q rows (height 2 -> 1),
  BN, ReLU; conv 32 (1,3) 'same', BN, ReLU; max pool (1,2).
- B (multi-scale): conv 32 (1,3) and conv 32 (1,5) in parallel, each with BN, through one shared
  ReLU quantizer, concatenated to 64 channels; max pool (1,2).
- C (residual): the residual unit of models.west (conv, BN, ReLU, conv, BN, + skip, ReLU) at 64
  channels; max pool (1,2).
The frame (2, 1024) is read as a (1, 2, 1024) image: I and Q as rows, time as columns (the
seed's (time, channel, 1) Keras layout, transposed to PyTorch's NCHW).
Teacher: 62,936 parameters (A 3,392, B 8,320, each C 24,832, dense 1,560); student: 4,184.
"""
from __future__ import annotations

from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .layers import Cat
from .quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs
from .west import ResidualUnit, _Net

INPUT_SHAPE = (1, 2, 1024)
NUM_CLASSES = 24
WIDTH_A = 32
WIDTH_B = 32  # per branch; the block outputs 2 x WIDTH_B


def _conv(cin, cout, kernel, padding, config):
    return QuantConv2d(cin, cout, kernel, padding=padding, bias=False, **weight_kwargs(config))


class BlockA(nn.Module):
    def __init__(self, config: QuantConfig):
        super().__init__()
        self.conv1 = _conv(1, WIDTH_A, (2, 3), (0, 1), config)
        self.bn1 = nn.BatchNorm2d(WIDTH_A)
        self.relu1 = QuantReLU(**relu_kwargs(config))
        self.conv2 = _conv(WIDTH_A, WIDTH_A, (1, 3), (0, 1), config)
        self.bn2 = nn.BatchNorm2d(WIDTH_A)
        self.relu2 = QuantReLU(**relu_kwargs(config))
        self.pool = nn.MaxPool2d((1, 2))

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.pool(self.relu2(self.bn2(self.conv2(x))))


class BlockB(nn.Module):
    """Two convolutions in parallel (kernels k3 and k5, 'same' padding), each with BN, through
    one shared ReLU quantizer, concatenated to 2 x width channels; max pool `pool`. SBCNN's
    B (1x3 and 1x5 along time); the IBCNN's B0 gives 3x3 and 5x5 (amchw.models.ibcnn)."""

    def __init__(self, cin: int, config: QuantConfig, width: int = WIDTH_B,
                 kernels=((1, 3), (1, 5)), pool=(1, 2)):
        super().__init__()
        k3, k5 = kernels
        self.conv3 = _conv(cin, width, k3, tuple(k // 2 for k in k3), config)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv5 = _conv(cin, width, k5, tuple(k // 2 for k in k5), config)
        self.bn5 = nn.BatchNorm2d(width)
        self.relu = QuantReLU(**relu_kwargs(config))  # shared: one scale for the concat
        self.cat = Cat(dim=1)
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x):
        a = self.relu(self.bn3(self.conv3(x)))
        b = self.relu(self.bn5(self.conv5(x)))
        return self.pool(self.cat(a, b))


class BlockC(nn.Module):
    """A residual unit, then max pool `pool` (SBCNN's C; the IBCNN's C0 and C1 pool 2x2)."""

    def __init__(self, channels: int, config: QuantConfig, pool=(1, 2)):
        super().__init__()
        self.res = ResidualUnit(channels, config)
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x):
        return self.pool(self.res(x))


def _tail(channels: int, length: int, config: QuantConfig, num_classes: int):
    return [
        ("gap", nn.AvgPool2d((1, length))),
        ("qgap", QuantReLU(**relu_kwargs(config))),
        ("flatten", nn.Flatten()),
        ("fc", QuantLinear(channels, num_classes, bias=True, **weight_kwargs(config))),
    ]


def sbcnn_teacher(config: QuantConfig | None = None, *,
                  num_classes: int = NUM_CLASSES) -> nn.Module:
    """[A, B, C, C, GAP, dense]: time 1024 -> 512 -> 256 -> 128 -> 64 (62,936 parameters)."""
    config = config or QuantConfig()
    layers = [("inp", QuantIdentity(**input_kwargs(config))), ("a", BlockA(config)),
              ("b", BlockB(WIDTH_A, config)), ("c1", BlockC(2 * WIDTH_B, config)),
              ("c2", BlockC(2 * WIDTH_B, config))]
    return _Net(layers + _tail(2 * WIDTH_B, INPUT_SHAPE[2] >> 4, config, num_classes))


def sbcnn_student(config: QuantConfig | None = None, *,
                  num_classes: int = NUM_CLASSES) -> nn.Module:
    """[A, GAP, dense] (4,184 parameters)."""
    config = config or QuantConfig()
    layers = [("inp", QuantIdentity(**input_kwargs(config))), ("a", BlockA(config))]
    return _Net(layers + _tail(WIDTH_A, INPUT_SHAPE[2] >> 1, config, num_classes))
