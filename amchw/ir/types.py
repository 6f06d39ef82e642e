"""Typed integer tensors of the IR.

A QType says how an int32-held code maps to a real value: real = (code - zero_point) * scale,
with the code confined to the range that bits/signed/narrow allow. Batch is never part of a shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np


class IRError(ValueError):
    """A malformed or unsupported IR graph; the message names the node at fault."""


@dataclass(frozen=True)
class QType:
    """Integer tensor type.

    bits: 1..32; signed: two's complement if True; narrow: drop the most negative code
    (signed [-2^(b-1)+1, 2^(b-1)-1]) or the largest code (unsigned [0, 2^b-2]) as Brevitas/QONNX do.
    scale: one float (per tensor) or one per channel along `axis` (the channel axis, 1 for
    (N, C, ...) tensors counting the batch). zero_point: one integer for the whole tensor.
    """

    bits: int
    signed: bool
    narrow: bool = False
    scale: tuple[float, ...] = (1.0,)
    zero_point: int = 0
    axis: int | None = None

    def __post_init__(self) -> None:
        if not (1 <= self.bits <= 32):
            raise IRError(f"QType bits must be in 1..32, got {self.bits}")
        scale = tuple(float(s) for s in np.atleast_1d(np.asarray(self.scale, dtype=np.float64)))
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", int(self.zero_point))
        if not scale or not all(math.isfinite(s) and s > 0 for s in scale):
            raise IRError(f"QType scale must be positive and finite, got {scale[:4]}")
        if len(scale) > 1 and self.axis is None:
            object.__setattr__(self, "axis", 1)
        if not (self.lo <= self.zero_point <= self.hi):
            raise IRError(f"zero point {self.zero_point} outside the code range "
                          f"[{self.lo}, {self.hi}]")

    @property
    def lo(self) -> int:
        if self.signed:
            return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)
        return 0

    @property
    def hi(self) -> int:
        if self.signed:
            return 2 ** (self.bits - 1) - 1
        return 2**self.bits - 1 - (1 if self.narrow else 0)

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    def scale_array(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64)

    def max_abs_centered(self) -> int:
        """Largest |code - zero_point| a value of this type can hold."""
        return max(abs(self.hi - self.zero_point), abs(self.lo - self.zero_point))

    def with_(self, **changes) -> "QType":
        return replace(self, **changes)

    def short(self) -> str:
        """Compact spelling: i8, u8, i8n (narrow), i32, with scale and zero point."""
        base = f"{'i' if self.signed else 'u'}{self.bits}{'n' if self.narrow else ''}"
        return base

    def describe_scale(self) -> str:
        if self.per_channel:
            return f"scale[{len(self.scale)}]@axis{self.axis}"
        return f"scale={format_scale(self.scale[0])}"


@dataclass(frozen=True)
class FloatType:
    """A real tensor: the float32 frames entering the graph, or dequantized outputs (float64)."""

    bits: int = 32

    def short(self) -> str:
        return f"f{self.bits}"


def format_scale(s: float) -> str:
    """Exact, stable spelling of a scale: 2^k for powers of two, else the shortest repr."""
    m, e = math.frexp(s)
    if m == 0.5:
        return f"2^{e - 1}"
    return repr(float(s))


def is_pow2(s: float) -> bool:
    return math.frexp(s)[0] == 0.5


def exact(x: float) -> Fraction:
    """The exact rational value of a float (scales are float32 or float64 numbers)."""
    return Fraction(float(x))


@dataclass(frozen=True)
class Value:
    """A named tensor in the graph: shape without batch, and its type."""

    name: str
    shape: tuple[int, ...]
    dtype: QType | FloatType = field(default_factory=FloatType)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
