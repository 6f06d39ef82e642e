"""Elementwise and layout ops: Add (residual, one rounding), Concat (requantize then join),
Reshape (a view), Lut (a tabulated function of one code), Mul and GateMix (the GRU's exact
products)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amchw import kernels as K

from ..types import IRError, QType, is_pow2
from .base import (INT32_MAX, INT64_MAX, Free, Op, Vector, check_rounding, i64, qtype,
                   register)


def _pow2_scales(in_types, out: QType) -> bool:
    """Every input and output scale a power of two: a float32 rescale is then exact."""
    return all(is_pow2(s) for t in in_types for s in t.scale) and all(is_pow2(s)
                                                                     for s in out.scale)


@register
@dataclass(frozen=True, eq=False)
class Add(Op):
    """q = clamp(round_shift((a - za) * ma + (b - zb) * mb + offset, shift) + zo,
                 clamp_lo, clamp_hi)

    Residual add with both inputs requantized to the output scale in one rounding:
    ma = s_a / s_o * 2^shift, mb = s_b / s_o * 2^shift (the lowering uses 31-bit mantissas; the
    validator proves the int64 sum cannot overflow); per tensor.
    """

    ma: int
    mb: int
    shift: int
    offset: int
    out: QType
    clamp_lo: int
    clamp_hi: int
    rounding: str = "half_even"
    kind = "Add"
    n_inputs = 2
    kernels = {"add": ("add_i32_ref", "add_i32", "add_i32")}

    def __post_init__(self) -> None:
        check_rounding(self.rounding)
        for name in ("ma", "mb", "shift", "offset", "clamp_lo", "clamp_hi"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if abs(self.ma) >= 2**62 or abs(self.mb) >= 2**62:
            raise IRError("Add multipliers must be below 2^62 in magnitude")
        if not 0 <= self.shift <= 62:
            raise IRError("Add shift must be in 0..62")
        if not (self.out.lo <= self.clamp_lo <= self.clamp_hi <= self.out.hi):
            raise IRError("Add clamp outside the output range")

    def infer(self, name, ins, bnd):
        a, b = ins
        at, bt = qtype(name, self, a, "input a"), qtype(name, self, b, "input b")
        if a.shape != b.shape:
            raise IRError(f"node {name!r} (Add): input shapes {a.shape} and {b.shape} differ")
        if at.per_channel or bt.per_channel or self.out.per_channel:
            raise IRError(f"node {name!r} (Add): per-channel scales are not supported")
        bound = bnd[0] * abs(self.ma) + bnd[1] * abs(self.mb) + abs(self.offset)
        if bound > INT64_MAX:
            raise IRError(f"node {name!r} (Add): int64 intermediate can overflow")
        return a.shape, self.out

    def run(self, args, in_types, impl):
        a, b = args
        ta, tb = in_types
        return impl["add"](np.ascontiguousarray(a), np.ascontiguousarray(b), self.ma, self.mb,
                           self.shift, self.offset, ta.zero_point, tb.zero_point,
                           self.out.zero_point, self.out.lo, self.out.hi,
                           K.ROUNDING_NAMES[self.rounding])

    def work(self, in_shapes, out_shape):
        return Vector(3)  # two rescales and an add

    def f32_exact(self, in_types, ins_exact):
        return ins_exact and _pow2_scales(in_types, self.out)


@register
@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenation along `axis` (counting the batch) after requantizing input i to `out`:
    q_i = clamp(round_shift((x_i - z_i) * multipliers[i], shifts[i]) + zo, lo, hi).
    Inputs already in the output type use multiplier 1, shift 0 (an exact copy)."""

    axis: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    out: QType
    rounding: str = "half_even"
    kind = "Concat"
    n_inputs = -1  # variadic
    kernels = {"requant": ("requant_i32_ref", "requant_i32", "requant_i32")}

    def __post_init__(self) -> None:
        check_rounding(self.rounding)
        object.__setattr__(self, "multipliers", tuple(int(m) for m in self.multipliers))
        object.__setattr__(self, "shifts", tuple(int(s) for s in self.shifts))
        if len(self.multipliers) != len(self.shifts):
            raise IRError("Concat needs one multiplier and one shift per input")

    def infer(self, name, ins, bnd):
        if len(ins) < 1 or len(ins) != len(self.multipliers):
            raise IRError(f"node {name!r} (Concat): {len(ins)} inputs but "
                          f"{len(self.multipliers)} multipliers")
        ax = self.axis - 1
        ref = ins[0].shape
        if not 0 <= ax < len(ref):
            raise IRError(f"node {name!r} (Concat): axis {self.axis} out of range for shape {ref}")
        total = 0
        for j, (v, m) in enumerate(zip(ins, self.multipliers)):
            t = qtype(name, self, v)
            if t.per_channel:
                raise IRError(f"node {name!r} (Concat): input {v.name!r} has per-channel scales")
            if len(v.shape) != len(ref) or any(v.shape[i] != ref[i] for i in range(len(ref))
                                               if i != ax):
                raise IRError(f"node {name!r} (Concat): shapes {ref} and {v.shape} differ off "
                              "the axis")
            if bnd[j] * abs(m) > INT64_MAX:
                raise IRError(f"node {name!r} (Concat): int64 intermediate can overflow")
            total += v.shape[ax]
        shape = list(ref)
        shape[ax] = total
        return tuple(shape), self.out

    def run(self, args, in_types, impl):
        parts = []
        for a, ta, m, s in zip(args, in_types, self.multipliers, self.shifts):
            parts.append(impl["requant"](np.ascontiguousarray(a), i64(m), i64(s), i64(0),
                                         ta.zero_point, self.out.zero_point, self.out.lo,
                                         self.out.hi, K.ROUNDING_NAMES[self.rounding]))
        return np.concatenate(parts, axis=self.axis)

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one multiply-shift-clamp per element

    def f32_exact(self, in_types, ins_exact):
        return ins_exact and _pow2_scales(in_types, self.out)


@register
@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Row-major reshape of the non-batch dims (Flatten is Reshape to (prod(shape),)); codes
    unchanged."""

    shape: tuple[int, ...]
    kind = "Reshape"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def infer(self, name, ins, bnd):
        x = ins[0]
        xt = qtype(name, self, x)
        if int(np.prod(self.shape)) != int(np.prod(x.shape)):
            raise IRError(f"node {name!r} (Reshape): cannot reshape {x.shape} to {self.shape}")
        if xt.per_channel and (not self.shape or self.shape[0] != x.shape[0]):
            raise IRError(f"node {name!r} (Reshape): per-channel type would lose its channel axis")
        return self.shape, xt

    def out_bound(self, ins, in_bounds):
        return in_bounds[0]

    def run(self, args, in_types, impl):
        x = args[0]
        return np.ascontiguousarray(x).reshape((x.shape[0], *self.shape))

    def work(self, in_shapes, out_shape):
        return Free()  # a view: the same codes, read in another order


@register
@dataclass(frozen=True, eq=False)
class Lut(Op):
    """q_out = table[q_in - lo_in]: an elementwise function of one code, tabulated over every
    code the input type allows (a sigmoid or tanh between two quantizers is exactly such a
    table). `table` has hi_in - lo_in + 1 entries, each a code of `out`."""

    table: np.ndarray
    out: QType
    kind = "Lut"
    kernels = {"lut": ("lut_i32_ref", "lut_i32", "lut_i32")}

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", i64(self.table))

    def infer(self, name, ins, bnd):
        x = ins[0]
        xt = qtype(name, self, x)
        if xt.per_channel or self.out.per_channel:
            raise IRError(f"node {name!r} (Lut): per-channel types are not supported")
        if self.table.size != xt.hi - xt.lo + 1:
            raise IRError(f"node {name!r} (Lut): {self.table.size} table entries for the "
                          f"{xt.hi - xt.lo + 1} codes of {xt.short()}")
        if self.table.size and (self.table.min() < self.out.lo
                                or self.table.max() > self.out.hi):
            raise IRError(f"node {name!r} (Lut): table entries outside {self.out.short()}")
        return x.shape, self.out

    def run(self, args, in_types, impl):
        return impl["lut"](np.ascontiguousarray(args[0]), self.table, in_types[0].lo)

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one table read per element


@register
@dataclass(frozen=True, eq=False)
class Mul(Op):
    """acc = (a - za) * (b - zb): the exact elementwise product of two code tensors of one
    shape, an int32 value with scale s_a * s_b and zero point 0 (a Requant follows)."""

    kind = "Mul"
    n_inputs = 2
    kernels = {"mul": ("mul_i32_ref", "mul_i32", "mul_i32")}

    def infer(self, name, ins, bnd):
        a, b = ins
        at, bt = qtype(name, self, a, "input a"), qtype(name, self, b, "input b")
        if a.shape != b.shape:
            raise IRError(f"node {name!r} (Mul): input shapes {a.shape} and {b.shape} differ")
        if at.per_channel or bt.per_channel:
            raise IRError(f"node {name!r} (Mul): per-channel scales are not supported")
        if bnd[0] * bnd[1] > INT32_MAX:
            raise IRError(f"node {name!r} (Mul): the product can overflow int32")
        return a.shape, QType(32, True, False, (at.scale[0] * bt.scale[0],), 0)

    def out_bound(self, ins, in_bounds):
        return in_bounds[0] * in_bounds[1]

    def run(self, args, in_types, impl):
        return impl["mul"](np.ascontiguousarray(args[0]), np.ascontiguousarray(args[1]),
                           in_types[0].zero_point, in_types[1].zero_point)

    def work(self, in_shapes, out_shape):
        return Vector(1)  # one multiply per element


@register
@dataclass(frozen=True, eq=False)
class GateMix(Op):
    """acc = k (n - zn) + (z - zz) ((h - zh) - (n - zn)): the GRU update (1 - z) n + z h in
    units of s_z s_n, for a gate z of scale s_z = 1/k and h of n's scale. Inputs (z, n, h);
    an int32 value with scale s_z * s_n (a Requant follows)."""

    k: int
    kind = "GateMix"
    n_inputs = 3
    kernels = {"gatemix": ("gatemix_i32_ref", "gatemix_i32", "gatemix_i32")}

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", int(self.k))
        if self.k < 1:
            raise IRError("GateMix k must be a positive integer")

    def infer(self, name, ins, bnd):
        z, n, h = ins
        zt, nt, ht = (qtype(name, self, v, w) for v, w in zip(ins, ("gate z", "input n",
                                                                     "state h")))
        if not (z.shape == n.shape == h.shape):
            raise IRError(f"node {name!r} (GateMix): shapes {z.shape}, {n.shape}, {h.shape} "
                          "differ")
        if zt.per_channel or nt.per_channel or ht.per_channel:
            raise IRError(f"node {name!r} (GateMix): per-channel scales are not supported")
        if ht.scale != nt.scale:
            raise IRError(f"node {name!r} (GateMix): h and n must share one scale")
        if zt.scale[0] * self.k != 1.0:
            raise IRError(f"node {name!r} (GateMix): gate scale {zt.scale[0]} is not 1/{self.k}")
        if self.out_bound(ins, bnd) > INT32_MAX:
            raise IRError(f"node {name!r} (GateMix): the mix can overflow int32")
        return z.shape, QType(32, True, False, (zt.scale[0] * nt.scale[0],), 0)

    def out_bound(self, ins, in_bounds):
        # |(k - z) n + z h| <= k max|n| + |z| (|h| + |n|)
        bz, bn, bh = in_bounds
        return self.k * bn + bz * (bh + bn)

    def run(self, args, in_types, impl):
        z, n, h = (np.ascontiguousarray(a) for a in args)
        return impl["gatemix"](z, n, h, self.k, *(tt.zero_point for tt in in_types))

    def work(self, in_shapes, out_shape):
        return Vector(2)  # two multiply-adds per element
