"""The quantizers: Quantize (float frames -> codes), Requant (accumulator -> codes),
Dequantize (codes -> float64 leaving the graph)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amchw import kernels as K

from ..types import FloatType, IRError, QType, is_pow2
from .base import INT64_MAX, Op, Vector, channels_ok, check_rounding, i64, qtype, register


@register
@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """q = clamp(round(float64(x) / scale[c]) + zp, lo, hi): float frames in, codes out.

    The division is a true float64 division (Brevitas divides; a reciprocal multiply differs);
    round follows `rounding` (Brevitas and QONNX ROUND: half_even). Non-finite input is an error.
    """

    out: QType
    rounding: str = "half_even"
    kind = "Quantize"
    kernels = {"quantize": ("quantize_f64_ref", "quantize_f64", "quantize_f64")}

    def __post_init__(self) -> None:
        check_rounding(self.rounding)

    def infer(self, name, ins, bnd):
        x = ins[0]
        if not isinstance(x.dtype, FloatType):
            raise IRError(f"node {name!r} (Quantize): input must be float, got {x.dtype.short()}")
        channels_ok(name, self, len(self.out.scale), x.shape[0] if x.shape else 1, "scale")
        return x.shape, self.out

    def run(self, args, in_types, impl):
        x = args[0]
        if not np.all(np.isfinite(x)):
            raise IRError("input frames contain NaN or infinity")
        return impl["quantize"](x, self.out.scale_array(), i64(self.out.zero_point),
                                self.out.lo, self.out.hi, K.ROUNDING_NAMES[self.rounding])

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one multiply-add-shift-clamp per element

    def tie_distance(self, x, in_type, channel):
        s = self.out.scale_array()
        v = np.asarray(x, np.float64) / (s[channel] if self.out.per_channel else s[0])
        return np.abs(v - np.floor(v) - 0.5)

    def f32_exact(self, in_types, ins_exact):
        # the float input is what it is; the codes are exact when the division by the scale is
        return all(is_pow2(s) for s in self.out.scale)


@register
@dataclass(frozen=True, eq=False)
class Requant(Op):
    """q = clamp(round_shift((x - zx) * multiplier[c] + offset[c], shift[c]) + zo,
                 clamp_lo, clamp_hi)

    int64 intermediate, exact; round_shift(t, s) = t / 2^s rounded by `rounding`.
    multiplier: integer mantissa, |m| < 2^62 (an int32 hardware requantizer uses |m| < 2^31:
    see `mantissa_bits`); shift 0..62; offset int64 in units of 2^-shift output LSBs (carries
    a folded float bias or BatchNorm shift). One entry or one per channel. The validator proves
    |(x - zx) * m + offset| < 2^63 for every input the type allows.
    clamp_lo/clamp_hi lie inside the output type's range; ReLU is clamp_lo = zo.
    """

    multiplier: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    out: QType
    clamp_lo: int
    clamp_hi: int
    rounding: str = "half_even"
    kind = "Requant"
    kernels = {"requant": ("requant_i32_ref", "requant_i32", "requant_i32")}

    def __post_init__(self) -> None:
        check_rounding(self.rounding)
        m, s, o = i64(self.multiplier), i64(self.shift), i64(self.offset)
        n = max(len(m), len(s), len(o))
        for name, a in (("multiplier", m), ("shift", s), ("offset", o)):
            if len(a) not in (1, n):
                raise IRError(f"Requant {name} has {len(a)} entries; expected 1 or {n}")
        object.__setattr__(self, "multiplier", m)
        object.__setattr__(self, "shift", s)
        object.__setattr__(self, "offset", o)
        object.__setattr__(self, "clamp_lo", int(self.clamp_lo))
        object.__setattr__(self, "clamp_hi", int(self.clamp_hi))
        if np.any(np.abs(m) >= 2**62):
            raise IRError("Requant multiplier must be below 2^62 in magnitude")
        if np.any(s < 0) or np.any(s > 62):
            raise IRError("Requant shift must be in 0..62")
        if not (self.out.lo <= self.clamp_lo <= self.clamp_hi <= self.out.hi):
            raise IRError(f"Requant clamp [{self.clamp_lo}, {self.clamp_hi}] outside "
                          f"the output range [{self.out.lo}, {self.out.hi}]")

    def infer(self, name, ins, bnd):
        x = ins[0]
        qtype(name, self, x)
        C = x.shape[0] if x.shape else 1
        for what in ("multiplier", "shift", "offset"):
            channels_ok(name, self, len(getattr(self, what)), C, what)
        channels_ok(name, self, len(self.out.scale), C, "output scale")
        bound = bnd[0] * int(np.abs(self.multiplier).max()) + int(np.abs(self.offset).max())
        if bound > INT64_MAX:
            raise IRError(f"node {name!r} (Requant): int64 intermediate can reach {bound} > 2^63-1")
        return x.shape, self.out

    def run(self, args, in_types, impl):
        return impl["requant"](np.ascontiguousarray(args[0]), self.multiplier, self.shift,
                               self.offset, in_types[0].zero_point, self.out.zero_point,
                               self.clamp_lo, self.clamp_hi, K.ROUNDING_NAMES[self.rounding])

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one multiply-add-shift-clamp per element

    def tie_distance(self, x, in_type, channel):
        # exact: t = (x - zx) m + offset in Python integers, its fraction below 2^shift
        zx = int(getattr(in_type, "zero_point", 0))

        def at(a: np.ndarray, c: int) -> int:
            return int(a[c if len(a) > 1 else 0])

        out = np.empty(len(x), np.float64)
        for i, (v, c) in enumerate(zip(np.asarray(x).tolist(), np.asarray(channel).tolist())):
            t = (int(v) - zx) * at(self.multiplier, c) + at(self.offset, c)
            den = 1 << at(self.shift, c)
            out[i] = abs((t % den) / den - 0.5)
        return out

    def f32_exact(self, in_types, ins_exact):
        # a power-of-two multiplier without offset scales exactly
        return (ins_exact and bool(np.all(self.offset == 0))
                and all(m != 0 and is_pow2(float(abs(int(m)))) for m in self.multiplier))


@register
@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """y = (q - zp) * scale[c] + bias[c] in float64: the real value leaving the integer graph.
    bias (optional, float64 per channel) is a float bias the model adds after its last layer."""

    bias: np.ndarray | None = None
    kind = "Dequantize"
    kernels = {"dequantize": ("dequantize_f64_ref", "dequantize_f64", "dequantize_f64")}

    def __post_init__(self) -> None:
        if self.bias is not None:
            object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, dtype=np.float64))

    def infer(self, name, ins, bnd):
        x = ins[0]
        qtype(name, self, x)
        if self.bias is not None:
            channels_ok(name, self, len(self.bias), x.shape[0] if x.shape else 1, "bias")
        return x.shape, FloatType(64)

    def run(self, args, in_types, impl):
        t = in_types[0]
        bias = self.bias if self.bias is not None else np.zeros(1)
        return impl["dequantize"](np.ascontiguousarray(args[0]), t.scale_array(),
                                  i64(t.zero_point), bias)

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one multiply-add per element
