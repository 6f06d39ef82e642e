"""The MATLAB-style AMC CNN and its slimmed 7-layer variant (the compression seed's Table I,
docs/sources.md), for 11 classes of 2x1024 frames (the MATLAB example's frame length and its
classes, which are RadioML 2016's: profile "rml2016-1024").

Original: 6 x [conv 1-D 'same' (MATLAB's [1 k] on a 1 x 1024 x 2 image), BN, ReLU, pool];
filters 16, 24, 32, 48, 64, 96. Table I prints the kernels as [1 4] but its parameter counts
(272 = 16 x 2 x 8 + 16, 3096 = 24 x 16 x 8 + 24, ...) need [1 8], as in MATLAB's example:
kernels of 8 it is. Max pool 2 after the first five blocks, a global average pool after the
sixth, FC 96 -> 11: 97,395 parameters (with BN and biases).
Optimized: 7 blocks, filters 16, 24, 32, 48, 64, 96, 128, kernel 4 then 2 (Table I's counts
144, 792, 1568, 3120, 6208, 12384, 24704 match exactly); max pool 2 after the first six,
global average pool, FC 128 -> 11: 51,155 parameters.
The global average pool is followed by an unsigned quantizer so the FC layer reads codes.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs

# torch notes that 'same' padding of an even kernel copies the input; that is what MATLAB does
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")

INPUT_SHAPE = (2, 1024)
NUM_CLASSES = 11
ORIGINAL = ((16, 8), (24, 8), (32, 8), (48, 8), (64, 8), (96, 8))
OPTIMIZED = ((16, 4), (24, 2), (32, 2), (48, 2), (64, 2), (96, 2), (128, 2))


def _cnn(blocks, config: QuantConfig | None, num_classes: int) -> nn.Sequential:
    config = config or QuantConfig()
    wq, aq = weight_kwargs(config), relu_kwargs(config)
    layers: list[tuple[str, nn.Module]] = [("inp", QuantIdentity(**input_kwargs(config)))]
    in_ch, length = INPUT_SHAPE
    for i, (filters, k) in enumerate(blocks, start=1):
        layers += [
            (f"conv{i}", QuantConv1d(in_ch, filters, kernel_size=k, padding="same", bias=True,
                                     **wq)),
            (f"bn{i}", nn.BatchNorm1d(filters)),
            (f"relu{i}", QuantReLU(**aq)),
        ]
        if i < len(blocks):
            layers.append((f"pool{i}", nn.MaxPool1d(2)))
            length //= 2
        in_ch = filters
    layers += [
        ("gap", nn.AvgPool1d(length)),
        ("qgap", QuantReLU(**aq)),
        ("flatten", nn.Flatten()),
        ("fc", QuantLinear(in_ch, num_classes, bias=True, **wq)),
    ]
    return nn.Sequential(OrderedDict(layers))


def cnn_matlab(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES):
    """The original 6-block CNN of Table I (97,395 parameters)."""
    return _cnn(ORIGINAL, config, num_classes)


def cnn_slim(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES):
    """The optimized 7-block CNN of Table I (51,155 parameters)."""
    return _cnn(OPTIMIZED, config, num_classes)
