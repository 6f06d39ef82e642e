"""VGG10 of the hardware-efficient AMC challenge (ITU-T ML5G 2021) for RadioML 2018.01A.

Input (N, 2, 1024), 24 classes, 160,536 parameters. The model is one nn.Sequential whose named
children form a linear chain built only from the project's quantizers (amchw.models.quant).
"""
from __future__ import annotations

from collections import OrderedDict

from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs

INPUT_SHAPE = (2, 1024)
NUM_CLASSES = 24
N_CONV = 7
FILTERS = 64
FC_UNITS = 128


def vgg10(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES) -> nn.Sequential:
    """Build VGG10.

    Chain: inp; 7 x [conv{i} (k=3, pad 1, no bias, 64 filters), bn{i}, relu{i}, pool{i} (2)];
    flatten; fc8 (512->128, no bias), bn8, relu8; fc9 (128->128, no bias), bn9, relu9;
    fc10 (128->num_classes, Int32 bias). The time axis halves 7 times: 1024 -> 8, 64 x 8 = 512.
    """
    config = config or QuantConfig()
    wq, aq = weight_kwargs(config), relu_kwargs(config)
    layers: list[tuple[str, nn.Module]] = [("inp", QuantIdentity(**input_kwargs(config)))]
    in_ch = INPUT_SHAPE[0]
    for i in range(1, N_CONV + 1):
        layers += [
            (f"conv{i}", QuantConv1d(in_ch, FILTERS, kernel_size=3, padding=1, bias=False, **wq)),
            (f"bn{i}", nn.BatchNorm1d(FILTERS)),
            (f"relu{i}", QuantReLU(**aq)),
            (f"pool{i}", nn.MaxPool1d(2)),
        ]
        in_ch = FILTERS
    flat = FILTERS * (INPUT_SHAPE[1] >> N_CONV)
    layers += [
        ("flatten", nn.Flatten()),
        ("fc8", QuantLinear(flat, FC_UNITS, bias=False, **wq)),
        ("bn8", nn.BatchNorm1d(FC_UNITS)),
        ("relu8", QuantReLU(**aq)),
        ("fc9", QuantLinear(FC_UNITS, FC_UNITS, bias=False, **wq)),
        ("bn9", nn.BatchNorm1d(FC_UNITS)),
        ("relu9", QuantReLU(**aq)),
        ("fc10", QuantLinear(FC_UNITS, num_classes, bias=True, **wq)),
    ]
    return nn.Sequential(OrderedDict(layers))
