"""The model zoo: Brevitas QAT models built from the project's quantizers (models/quant.py).

Invariant: every zoo model is built only from modules the Brevitas lowering handles
(amchw.lower.brevitas.supported_modules), its first child being the input quantizer `inp`;
chains are nn.Sequential, residual and Inception models are modules whose blocks add (Brevitas'
QuantEltwiseAdd) and concatenate (amchw.models.layers.Cat).
"""
from __future__ import annotations

import functools

from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

import torch
from torch import nn

from amchw.data.model_inputs import MODEL_INPUTS, add_model_input

from .quant import QuantConfig
from .matlab_cnn import cnn_matlab, cnn_slim
from .vgg10 import vgg10
from .vtcnn2 import vtcnn2
from .early_exit import EARLY_EXIT_BUILDERS, ee_baseline
from .gru import QuantGRU, gru_cnn
from .ibcnn import ibcnn_teacher
from .sbcnn import sbcnn_student, sbcnn_teacher
from .west import inception, resnet

__all__ = [
    "ZOO",
    "QuantConfig",
    "UnknownModelError",
    "ZooEntry",
    "build",
    "count_macs",
    "count_params",
    "weight_count",
    "register",
]

# Modules whose own parameters count as model parameters (quantizer parameters excluded).
_COUNTED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: `builder(config, **overrides)` returns the nn.Module."""

    name: str
    builder: Callable[..., nn.Module]
    input_shape: tuple[int, ...]  # without the batch dimension
    num_classes: int
    profile: str  # synthetic/dataset profile: "rml2016" or "rml2018"
    description: str


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    """Add a model to ZOO (names are unique); its input is recorded on the data side
    (amchw.data.model_inputs), where frames_for finds it."""
    if entry.name in ZOO:
        raise ValueError(f"zoo model {entry.name!r} is already registered")
    add_model_input(entry.name, entry.profile, entry.input_shape)
    ZOO[entry.name] = entry
    return entry


def _reads(name: str) -> dict:
    """The input_shape and profile fields of a built-in model, from amchw.data.model_inputs."""
    inp = MODEL_INPUTS[name]
    return {"input_shape": inp.input_shape, "profile": inp.profile}


register(
    ZooEntry(
        name="vgg10",
        builder=vgg10,
        num_classes=24,
        **_reads("vgg10"),
        description="VGG10 of the AMC challenge: 7 x [conv k3 64, BN, ReLU, maxpool 2], "
        "FC 512-128-128-24; 160,536 parameters",
    )
)
register(
    ZooEntry(
        name="vtcnn2",
        builder=vtcnn2,
        num_classes=11,
        **_reads("vtcnn2"),
        description="VTCNN2 (O'Shea 2016): conv 256 (1,3), conv 80 (2,3), FC 10560-256-11, "
        "dropout 0.5; 2,830,427 parameters",
    )
)


def count_params(model: nn.Module) -> int:
    """Parameters of the conv, linear and BatchNorm modules (weights, biases, BN affine).

    Quantizer parameters (learned scales) are excluded: they live in submodules of the layers
    and are not counted because only each module's own parameters (recurse=False) are summed.
    """
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, _COUNTED)
        for p in m.parameters(recurse=False)
    )


register(
    ZooEntry(
        name="cnn-matlab",
        builder=cnn_matlab,
        num_classes=11,
        **_reads("cnn-matlab"),
        description="MATLAB-style CNN (compression seed, Table I original): 6 x [conv k8 "
        "'same' 16-24-32-48-64-96, BN, ReLU, pool], GAP, FC 96-11; 97,395 parameters",
    )
)
register(
    ZooEntry(
        name="cnn-slim",
        builder=cnn_slim,
        num_classes=11,
        **_reads("cnn-slim"),
        description="slimmed 7-layer CNN (compression seed, Table I optimized): conv k4 then "
        "k2, 16-...-128 filters, BN, ReLU, pool, GAP, FC 128-11; 51,155 parameters",
    )
)


register(
    ZooEntry(
        name="resnet",
        builder=resnet,
        num_classes=11,
        **_reads("resnet"),
        description="ResNet after West & O'Shea 2017 (edge-efficient seed): stem conv 50, 4 "
        "residual units, conv 50, FC 13200-256-11; 3,450,933 parameters",
    )
)
register(
    ZooEntry(
        name="inception",
        builder=inception,
        num_classes=11,
        **_reads("inception"),
        description="InceptionNet after West & O'Shea 2017 (edge-efficient seed): stem conv "
        "50 (1,31), 3 Inception modules of 4 x 50, FC 39200-256-11; 10,136,821 parameters",
    )
)

register(
    ZooEntry(
        name="sbcnn-teacher",
        builder=sbcnn_teacher,
        num_classes=24,
        **_reads("sbcnn-teacher"),
        description="SBCNN teacher (distillation seed): blocks A (stem), B (two-scale), 2 x C "
        "(residual), GAP, dense 24; 62,936 parameters",
    )
)
register(
    ZooEntry(
        name="sbcnn-student",
        builder=sbcnn_student,
        num_classes=24,
        **_reads("sbcnn-student"),
        description="SBCNN single-block student (distillation seed): block A, GAP, dense 24; "
        "4,184 parameters",
    )
)

register(
    ZooEntry(
        name="ibcnn-teacher",
        builder=ibcnn_teacher,
        num_classes=24,
        **_reads("ibcnn-teacher"),
        description="IBCNN teacher (distillation seed, inferred): SBCNN blocks A, B; the "
        "64 x 256 feature map as an image; 2-D blocks A0, B0, C0, C1, GAP, dropout 0.2, "
        "dense 24",
    )
)

register(
    ZooEntry(
        name="gru-cnn",
        builder=gru_cnn,
        num_classes=24,
        **_reads("gru-cnn"),
        description="GRU-CNN hybrid (GRU-CNN seed): quantized GRU of 80 cells (table sigmoid/"
        "tanh), conv 16 k3, avg pool, conv 24 k3, GAP, BN; 25,480 parameters",
    )
)
for _cells in (50, 60, 70, 90):   # the seed's Table 2 cell counts (80 is gru-cnn)
    register(
        ZooEntry(
            name=f"gru-cnn-{_cells}",
            builder=functools.partial(gru_cnn, cells=_cells),
            num_classes=24,
            **_reads(f"gru-cnn-{_cells}"),
            description=f"GRU-CNN with {_cells} GRU cells (GRU-CNN seed, Table 2); "
            f"{3 * (4 * _cells + _cells * _cells) + 50 * _cells + 1320:,} "
            "parameters",
        )
    )
register(
    ZooEntry(
        name="ee-baseline",
        builder=ee_baseline,
        num_classes=10,
        **_reads("ee-baseline"),
        description="early-exit seed's baseline: 6 x [conv k3 64-64-64-32-32-16, BN, ReLU] with "
        "3 pools, FC 256-256-64-10; 119,418 parameters",
    )
)
for _v, _b in EARLY_EXIT_BUILDERS.items():
    register(
        ZooEntry(
            name=f"ee-{_v}",
            builder=_b,
            num_classes=10,
            **_reads(f"ee-{_v}"),
            description=f"early-exit {_v.upper()} (early-exit seed): the baseline plus an exit "
            "branch FC 1024-64-32-10 (68,010) after "
            + {"v0": "conv1", "v1": "conv2", "v2": "conv3", "v3": "conv5"}[_v]
            + "; outputs (exit, final); 187,428 parameters",
        )
    )


def count_macs(model: nn.Module, input_shape) -> int:
    """Multiply-accumulates of one frame: each conv output element costs (in channels / groups)
    x kernel taps, each linear output its input size, a QuantGRU 3 C^2 per step on top of its
    input projections (hooks on one forward pass in eval mode)."""
    total = 0

    def hook(m, args, out):
        nonlocal total
        o = out.value if hasattr(out, "value") else out
        if isinstance(m, nn.modules.conv._ConvNd):
            per = (m.in_channels // m.groups) * int(torch.tensor(m.kernel_size).prod())
        else:
            per = m.in_features
        total += int(o[0].numel()) * per

    def gru_hook(m, args, out):  # the recurrent products, C x C per gate and step
        nonlocal total
        total += 3 * m.hidden_size * m.hidden_size * int(out.shape[-1])

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    hs += [m.register_forward_hook(gru_hook) for m in model.modules() if isinstance(m, QuantGRU)]
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        model.train(was)
        for h in hs:
            h.remove()
    return total


def weight_count(model: nn.Module) -> int:
    """Weights of the conv and linear layers (what the weight quantizer stores)."""
    return sum(m.weight.numel() for m in model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)))


class UnknownModelError(KeyError, ValueError):
    """A name that is not in ZOO (catchable as KeyError or ValueError)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_CONFIG_FIELDS = frozenset(f.name for f in fields(QuantConfig))


def build(
    name: str, config: QuantConfig | None = None, *, seed: int | None = None, **overrides
) -> nn.Module:
    """Build zoo model `name`.

    `seed` (optional) initialises the weights from torch.manual_seed(seed) inside
    torch.random.fork_rng, so the global RNG is left as it was; without it the weights come from
    the global torch RNG like any nn.Module.
    `overrides` that name a QuantConfig field (weight_bits, act_bits, input_bits, scales,
    per_channel) replace that field of `config`; the rest go to the builder (e.g. num_classes).
    The model carries `amchw_meta = {name, config (as a dict), input_shape, num_classes}`.
    """
    if name not in ZOO:
        raise UnknownModelError(
            f"unknown zoo model {name!r}; known models: {', '.join(sorted(ZOO))}"
        )
    entry = ZOO[name]
    config = config or QuantConfig()
    config_overrides = {k: v for k, v in overrides.items() if k in _CONFIG_FIELDS}
    builder_kwargs = {k: v for k, v in overrides.items() if k not in _CONFIG_FIELDS}
    if config_overrides:
        config = replace(config, **config_overrides)
    if seed is None:
        model = entry.builder(config, **builder_kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(config, **builder_kwargs)
    model.amchw_meta = {
        "name": name,
        "config": asdict(config),
        "input_shape": tuple(entry.input_shape),
        "num_classes": int(builder_kwargs.get("num_classes", entry.num_classes)),
        "profile": entry.profile,
    }
    return model
