"""The project's quantizers, defined once: every zoo model builds its Brevitas layers from here.

Invariant: activation quantizers return QuantTensors (so a following biased layer can use
Int32Bias, scale = s_in * s_w), quant conv/linear layers return plain float tensors (so a
BatchNorm after them is an ordinary float op), and zero points are 0 everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from brevitas.core.scaling import ScalingImplType
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
# Not re-exported by brevitas.quant in 0.13.4, but defined next to its per-tensor sibling.
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint

__all__ = [
    "INPUT_RANGE",
    "SCALE_MODES",
    "QuantConfig",
    "weight_quantizer",
    "act_quantizer",
    "relu_quantizer",
    "input_quantizer",
    "input_scale",
    "input_narrow_range",
    "weight_kwargs",
    "act_kwargs",
    "relu_kwargs",
    "input_kwargs",
]

#: Fixed input range of the AMC challenge: frames are quantised over [-2, 2].
INPUT_RANGE = 2.0
#: "po2": power-of-two scales (Brevitas *FixedPoint quantizers); "float": float32 scales.
SCALE_MODES = ("po2", "float")
_MIN_BITS, _MAX_BITS = 2, 8


def _check_bits(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"QuantConfig.{name} must be an int, got {value!r}")
    if not _MIN_BITS <= value <= _MAX_BITS:
        raise ValueError(
            f"QuantConfig.{name} must be in [{_MIN_BITS}, {_MAX_BITS}], got {value}"
        )


@dataclass(frozen=True)
class QuantConfig:
    """How a zoo model is quantized.

    weight_bits: signed narrow weights, codes in [-(2^(b-1)-1), 2^(b-1)-1].
    act_bits: unsigned activations after every ReLU, codes in [0, 2^b - 1].
    input_bits: signed input quantizer over the fixed range [-2, 2] (see `input_scale`).
    scales: "po2" (every scale a power of two, requantization is a shift) or "float".
    per_channel: weights scaled per output channel instead of per tensor.
    Biases are always Int32Bias: q_b = round(b / (s_in * s_w)), 32-bit.
    """

    weight_bits: int = 8
    act_bits: int = 8
    input_bits: int = 8
    scales: str = "po2"
    per_channel: bool = False

    def __post_init__(self) -> None:
        _check_bits("weight_bits", self.weight_bits)
        _check_bits("act_bits", self.act_bits)
        _check_bits("input_bits", self.input_bits)
        if self.scales not in SCALE_MODES:
            raise ValueError(
                f"QuantConfig.scales must be one of {SCALE_MODES}, got {self.scales!r}"
            )
        if not isinstance(self.per_channel, bool):
            raise ValueError(f"QuantConfig.per_channel must be a bool, got {self.per_channel!r}")


# --- quantizer classes (Brevitas' own, selected per role) ------------------------------------


def weight_quantizer(config: QuantConfig) -> type:
    """Weight quantizer class: signed, narrow, scale from max |w| (per tensor or per channel)."""
    if config.scales == "po2":
        if config.per_channel:
            return Int8WeightPerChannelFixedPoint
        return Int8WeightPerTensorFixedPoint
    return Int8WeightPerChannelFloat if config.per_channel else Int8WeightPerTensorFloat


def act_quantizer(config: QuantConfig) -> type:
    """Signed activation quantizer class (learned per-tensor scale, initialised from stats)."""
    return Int8ActPerTensorFixedPoint if config.scales == "po2" else Int8ActPerTensorFloat


def relu_quantizer(config: QuantConfig) -> type:
    """Unsigned activation quantizer class for QuantReLU (learned per-tensor scale)."""
    return Uint8ActPerTensorFixedPoint if config.scales == "po2" else Uint8ActPerTensorFloat


def input_narrow_range(config: QuantConfig) -> bool:
    """po2: full range [-2^(b-1), 2^(b-1)-1]; float: narrow [-(2^(b-1)-1), 2^(b-1)-1]."""
    return config.scales == "float"


def input_scale(config: QuantConfig) -> float:
    """The constant input scale.

    po2:   2^(1-(b-1)) = 2 / 2^(b-1) (2^-6 for 8 bits): codes [-2^(b-1), 2^(b-1)-1] cover
           [-2, 2 - s]; this is the AMC challenge's input quantizer (its scale is a power of two).
    float: 2 / (2^(b-1) - 1) (2/127 for 8 bits) with a narrow range: codes
           [-(2^(b-1)-1), 2^(b-1)-1] cover exactly [-2, 2]; a non-power-of-two scale, so the
           float-scale pipeline is exercised from the first layer on.
    """
    half = 2 ** (config.input_bits - 1)
    if config.scales == "po2":
        return INPUT_RANGE / half
    return INPUT_RANGE / (half - 1)


def input_quantizer(config: QuantConfig) -> type:
    """Signed input quantizer with a constant (not learned) scale, `input_scale(config)`.

    Brevitas computes scale = threshold / int_scale with threshold = max(|min_val|, |max_val|)
    = 2 and int_scale = 2^(b-1) (non-narrow) or 2^(b-1)-1 (narrow).
    """
    base = Int8ActPerTensorFixedPoint if config.scales == "po2" else Int8ActPerTensorFloat
    return base.let(
        scaling_impl_type=ScalingImplType.CONST,
        min_val=-INPUT_RANGE,
        max_val=INPUT_RANGE,
        narrow_range=input_narrow_range(config),
        bit_width=config.input_bits,
    )


# --- kwargs for Brevitas layers ---------------------------------------------------------------


def weight_kwargs(config: QuantConfig) -> dict:
    """Kwargs for QuantConv1d/QuantConv2d/QuantLinear.

    Bias (if the layer has one) is Int32Bias, which needs the layer's input to be a QuantTensor;
    the output is a plain float tensor (return_quant_tensor=False).
    """
    return {
        "weight_quant": weight_quantizer(config),
        "weight_bit_width": config.weight_bits,
        "bias_quant": Int32Bias,
        "return_quant_tensor": False,
    }


def act_kwargs(config: QuantConfig) -> dict:
    """Kwargs for a signed QuantIdentity between layers (learned scale)."""
    return {
        "act_quant": act_quantizer(config),
        "bit_width": config.act_bits,
        "return_quant_tensor": True,
    }


def relu_kwargs(config: QuantConfig) -> dict:
    """Kwargs for QuantReLU (unsigned, learned scale, returns a QuantTensor)."""
    return {
        "act_quant": relu_quantizer(config),
        "bit_width": config.act_bits,
        "return_quant_tensor": True,
    }


def input_kwargs(config: QuantConfig) -> dict:
    """Kwargs for the model's input QuantIdentity (constant scale over [-2, 2])."""
    return {"act_quant": input_quantizer(config), "return_quant_tensor": True}
