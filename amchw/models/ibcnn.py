"""IBCNN teacher of the distillation seed (docs/sources.md, Seed papers): an image-based
two-stage network for RadioML 2018's 24 classes of 2x1024 frames.

What the seed says: in the SBCNN + IBCNN approach, features extracted by an SBCNN are turned
into images that train an image-based CNN (its reference [6]); the combination classifies
better but costs more computation and memory. The IBCNN "follows a similar design to the
SBCNN": an input layer, one A-type block, one B-type block, two C-type blocks, global average
pooling, a dense layer and a 20% dropout layer; its blocks A0, B0, C0 and C1 are convolutions,
BatchNorm and ReLU. The figures with the block internals are not in the seed's text.

What amchw infers (its choices, documented as such):
- Stage 1, feature extraction: the SBCNN's blocks A and B (amchw.models.sbcnn: the I/Q rows
  merged, 64 channels, time 1024 -> 256), output (64, 1, 256).
- The feature image: the (64, 1, 256) feature map read as a one-channel 64 x 256 image
  (channels as rows, time as columns): a reshape, the same values in the same order
  (ToImage: one reshape, lowered to one IR Reshape).
- Stage 2, the image CNN, 2-D 3x3 convolutions on that image at 16 / 32 channels:
  A0: conv 16 3x3 stride 2 (64 x 256 -> 32 x 128), BN, ReLU; conv 16 3x3, BN, ReLU;
      max pool 2x2 (-> 16 x 64);
  B0: conv 16 3x3 and conv 16 5x5 in parallel, BN each, one shared ReLU, concatenated to 32
      channels; max pool 2x2 (-> 8 x 32);
  C0, C1: residual units at 32 channels (conv 3x3, BN, ReLU, conv 3x3, BN, + input, ReLU),
      each followed by max pool 2x2 (-> 4 x 16 -> 2 x 8);
  global average pooling, dropout 0.2, dense 24.
Both stages are one module trained end to end (the seed trains its teacher, then distils).
"""
from __future__ import annotations

from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs
from .sbcnn import WIDTH_A, WIDTH_B, BlockA, BlockB, BlockC
from .west import _Net

INPUT_SHAPE = (1, 2, 1024)
NUM_CLASSES = 24
WIDTH = 16     # stage 2: A0 and each B0 branch; C0, C1 at 2 x WIDTH
FEATURES = (2 * WIDTH_B, 256)   # the feature image: channels x time after blocks A and B


def _conv(cin, cout, kernel, config, stride=1):
    return QuantConv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False,
                       **weight_kwargs(config))


class ToImage(nn.Module):
    """The (C, 1, T) feature map as a (1, C, T) image: one reshape (the same values in the same
    order), of a QuantTensor too (Brevitas' reshape keeps its per-tensor scale), so the
    image's codes and scale reach the first 2-D convolution. Lowered to one IR Reshape
    (amchw.lower.brevitas), as the exported ONNX Reshape reads back."""

    def __init__(self, shape=(1, *FEATURES)):
        super().__init__()
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class BlockA0(nn.Module):
    def __init__(self, config: QuantConfig):
        super().__init__()
        self.conv1 = _conv(1, WIDTH, 3, config, stride=2)
        self.bn1 = nn.BatchNorm2d(WIDTH)
        self.relu1 = QuantReLU(**relu_kwargs(config))
        self.conv2 = _conv(WIDTH, WIDTH, 3, config)
        self.bn2 = nn.BatchNorm2d(WIDTH)
        self.relu2 = QuantReLU(**relu_kwargs(config))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.pool(self.relu2(self.bn2(self.conv2(x))))


def ibcnn_teacher(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
                  dropout: float = 0.2) -> nn.Module:
    """Stage 1 (SBCNN blocks A, B) -> the 64 x 256 feature image -> stage 2 (A0, B0, C0, C1,
    GAP, dropout, dense); see the module docstring."""
    config = config or QuantConfig()
    layers = [
        ("inp", QuantIdentity(**input_kwargs(config))),
        ("a", BlockA(config)),
        ("b", BlockB(WIDTH_A, config)),
        ("image", ToImage()),
        ("a0", BlockA0(config)),
        ("b0", BlockB(WIDTH, config, WIDTH, kernels=((3, 3), (5, 5)), pool=2)),
        ("c0", BlockC(2 * WIDTH, config, pool=2)),
        ("c1", BlockC(2 * WIDTH, config, pool=2)),
        ("gap", nn.AvgPool2d((FEATURES[0] >> 5, FEATURES[1] >> 5))),
        ("qgap", QuantReLU(**relu_kwargs(config))),
        ("flatten", nn.Flatten()),
        ("drop", nn.Dropout(dropout)),
        ("fc", QuantLinear(2 * WIDTH, num_classes, bias=True, **weight_kwargs(config))),
    ]
    return _Net(layers)
