"""The torch.nn counterpart of a Brevitas layer, for the benchmarks' float peers
(bench_inference's float mirror, bench_training's float twin): the same shapes, holding the
Brevitas layer's float weights or its dequantized ones."""

from __future__ import annotations

from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn


class FloatGRU(nn.Module):
    """torch's nn.GRU (the same reset-after cell as amchw's QuantGRU) on (N, I, T) input,
    returning (N, C, T) as QuantGRU does."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x):
        return self.gru(x.transpose(1, 2))[0].transpose(1, 2)


def float_layer(name: str, m: nn.Module, dequantized: bool = False) -> nn.Module:
    """nn.Conv1d/2d or nn.Linear with m's weights (its float `weight`, or with `dequantized`
    the quantized weight's value) and float bias; nn.ReLU for QuantReLU, nn.Identity for
    QuantIdentity; FloatGRU (fresh weights) for amchw's QuantGRU; ValueError naming the layer
    for anything else."""
    import torch

    from amchw.models.gru import QuantGRU

    if isinstance(m, QuantGRU):
        return FloatGRU(m.input_size, m.hidden_size)

    if isinstance(m, (QuantConv1d, QuantConv2d)):
        cls = nn.Conv1d if isinstance(m, QuantConv1d) else nn.Conv2d
        f = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                padding=m.padding, dilation=m.dilation, groups=m.groups,
                bias=m.bias is not None, padding_mode=m.padding_mode)
    elif isinstance(m, QuantLinear):
        f = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    elif isinstance(m, QuantReLU):
        return nn.ReLU()
    elif isinstance(m, QuantIdentity):
        return nn.Identity()
    else:
        raise ValueError(f"{name}: no float counterpart for {type(m).__name__} in the "
                         "benchmarks")
    w = m.quant_weight().value if dequantized else m.weight
    with torch.no_grad():
        f.weight.copy_(w.detach().float())
        if m.bias is not None:
            f.bias.copy_(m.bias.detach().float())
    return f
