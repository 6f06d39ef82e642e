"""VTCNN2 (O'Shea, Corgan & Clancy 2016) for RadioML 2016.10A, quantized.

Input (N, 1, 2, 128), 11 classes, 2,830,427 parameters (the 10560 -> 256 dense layer holds
2,703,616 of them). One nn.Sequential of named children forming a linear chain.
"""
from __future__ import annotations

from collections import OrderedDict

from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs

INPUT_SHAPE = (1, 2, 128)
NUM_CLASSES = 11


def vtcnn2(
    config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES, dropout: float = 0.5
) -> nn.Sequential:
    """Build VTCNN2.

    Chain: inp; conv1 (1->256, (1,3), pad (0,2)), relu1, drop1; conv2 (256->80, (2,3),
    pad (0,2)), relu2, drop2; flatten; fc3 (10560->256), relu3, drop3; fc4 (256->num_classes).
    All four weight layers have Int32 biases. Widths: 128 -> 130 (conv1) -> 132 (conv2), the
    height 2 collapses to 1 in conv2, so the flattened size is 80 x 132 = 10560.
    """
    config = config or QuantConfig()
    wq, aq = weight_kwargs(config), relu_kwargs(config)
    width = INPUT_SHAPE[2] + 2 * 2 - 3 + 1  # conv1
    width = width + 2 * 2 - 3 + 1  # conv2
    layers = [
        ("inp", QuantIdentity(**input_kwargs(config))),
        ("conv1", QuantConv2d(1, 256, (1, 3), padding=(0, 2), bias=True, **wq)),
        ("relu1", QuantReLU(**aq)),
        ("drop1", nn.Dropout(dropout)),
        ("conv2", QuantConv2d(256, 80, (2, 3), padding=(0, 2), bias=True, **wq)),
        ("relu2", QuantReLU(**aq)),
        ("drop2", nn.Dropout(dropout)),
        ("flatten", nn.Flatten()),
        ("fc3", QuantLinear(80 * width, 256, bias=True, **wq)),
        ("relu3", QuantReLU(**aq)),
        ("drop3", nn.Dropout(dropout)),
        ("fc4", QuantLinear(256, num_classes, bias=True, **wq)),
    ]
    return nn.Sequential(OrderedDict(layers))
