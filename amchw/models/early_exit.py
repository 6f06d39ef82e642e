"""The early-exit networks V0-V3 of the early-exit seed (Mohammed, Mashaal & Abou-Zeid,
GLOBECOM 2023; docs/sources.md, Seed papers) and their baseline, for RadioML 2016.10B's
10 classes of 2x128 frames (profile "rml2016b").

Layer sizes follow the authors' public getModel.py (read, not copied). The baseline (119,418
parameters) is six 1-D convolutions of kernel 3 'same' with bias, each followed by BatchNorm
and ReLU: 64, 64, 64, 32, 32, 16 filters, with max pools of 2 after the first, second and
sixth (time 128 -> 64 -> 32 -> 16), then FC 256 -> 256 -> 64 -> 10 with dropout 0.5 and,
as in the original, no activation between the FC layers. An exit branch (68,010 parameters:
FC 1024 -> 64 -> 32 -> 10, the same shape everywhere) leaves the trunk at one of four places,
each giving it 1024 features:
- V0: after conv1 and its pool (64 x 64), through a max pool of 4;
- V1: after conv2, before its pool (64 x 64), through a max pool of 4;
- V2: after conv3 (64 x 32), through a max pool of 2;
- V3: after conv5 (32 x 32), directly.
Every version has 119,418 + 68,010 = 187,428 parameters. forward() returns
(exit logits, final logits).

Quantization: the FC layers read codes, so a signed quantizer (QuantIdentity) sits between
consecutive FC layers where the original has none (it changes no function but the rounding).
"""
from __future__ import annotations

from collections import OrderedDict

from brevitas.nn import QuantConv1d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from .quant import QuantConfig, act_kwargs, input_kwargs, relu_kwargs, weight_kwargs

INPUT_SHAPE = (2, 128)
NUM_CLASSES = 10
CONVS = (64, 64, 64, 32, 32, 16)
POOL_AFTER = (1, 2, 6)  # conv indices followed by a max pool of 2
#: version -> (the trunk layer the exit branch reads, the exit branch's max pool)
EXITS = {"v0": ("pool1", 4), "v1": ("relu2", 4), "v2": ("relu3", 2), "v3": ("relu5", 1)}


def _fc_stack(prefix: str, sizes, config: QuantConfig, dropout: float):
    """FC layers of `sizes` (in, ..., out) with a signed quantizer and dropout between them."""
    wq = weight_kwargs(config)
    out = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        out.append((f"{prefix}{i}", QuantLinear(a, b, bias=True, **wq)))
        if i < len(sizes) - 1:
            out += [(f"{prefix}q{i}", QuantIdentity(**act_kwargs(config))),
                    (f"{prefix}drop{i}", nn.Dropout(dropout))]
    return out


def _baseline_layers(config: QuantConfig, num_classes: int, dropout: float):
    wq = weight_kwargs(config)
    layers: list[tuple[str, nn.Module]] = []
    cin = INPUT_SHAPE[0]
    for i, c in enumerate(CONVS, start=1):
        layers += [(f"conv{i}", QuantConv1d(cin, c, 3, padding=1, bias=True, **wq)),
                   (f"bn{i}", nn.BatchNorm1d(c)),
                   (f"relu{i}", QuantReLU(**relu_kwargs(config)))]
        if i in POOL_AFTER:
            layers.append((f"pool{i}", nn.MaxPool1d(2)))
        cin = c
    flat = CONVS[-1] * (INPUT_SHAPE[1] >> len(POOL_AFTER))
    layers.append(("flatten", nn.Flatten()))
    return layers + _fc_stack("fc", (flat, 256, 64, num_classes), config, dropout)


class EarlyExitNet(nn.Module):
    """inp -> trunk -> (exit branch, rest of the network); returns (exit logits, final)."""

    def __init__(self, version: str, config: QuantConfig, num_classes: int, dropout: float):
        super().__init__()
        if version not in EXITS:
            raise ValueError(f"early-exit version must be one of {sorted(EXITS)}, "
                             f"got {version!r}")
        layers = _baseline_layers(config, num_classes, dropout)
        at, pool = EXITS[version]
        k = [n for n, _ in layers].index(at) + 1
        self.version = version
        self.inp = QuantIdentity(**input_kwargs(config))
        self.trunk = nn.Sequential(OrderedDict(layers[:k]))
        branch: list[tuple[str, nn.Module]] = []
        if pool > 1:
            branch.append(("pool", nn.MaxPool1d(pool)))
        branch.append(("flatten", nn.Flatten()))
        branch += _fc_stack("fc", (1024, 64, 32, num_classes), config, dropout)
        self.exit = nn.Sequential(OrderedDict(branch))
        self.rest = nn.Sequential(OrderedDict(layers[k:]))

    def forward(self, x):
        h = self.trunk(self.inp(x))
        return self.exit(h), self.rest(h)


def _factory(version: str):
    def build(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
              dropout: float = 0.5) -> nn.Module:
        return EarlyExitNet(version, config or QuantConfig(), num_classes, dropout)

    build.__name__ = f"early_exit_{version}"
    build.__doc__ = f"Early-exit network {version.upper()} (187,428 parameters)."
    return build


def ee_baseline(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
                dropout: float = 0.5) -> nn.Module:
    """The seed's baseline without exits (119,418 parameters)."""
    config = config or QuantConfig()
    return nn.Sequential(OrderedDict([("inp", QuantIdentity(**input_kwargs(config)))]
                                     + _baseline_layers(config, num_classes, dropout)))


EARLY_EXIT_BUILDERS = {v: _factory(v) for v in EXITS}
