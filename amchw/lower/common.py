"""What every lowering shares (no torch): the states a tensor can be in while a model is
lowered (codes, an exact affine view of integers, the float input), and an emitter that turns
an affine view into one requantization with an exact fixed-point map."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from amchw.ir import (Dequantize, GraphBuilder, QType, Requant, fixed_multiplier, fixed_offset,
                      validate)
from amchw.ir.graph import Graph
from amchw.ir.types import exact


class LoweringError(ValueError):
    """A module, node or pattern that cannot be lowered to integers exactly; names it."""


@dataclass
class Codes:
    """An IR value holding codes: real = (code - zp) * scale."""
    name: str


@dataclass
class Affine:
    """A float tensor the model computed from integers: real[c] = (int - zx) * S[c] + B[c],
    with `name` an IR integer value (an accumulator or codes) and S, B exact rationals."""
    name: str
    S: list[Fraction]
    B: list[Fraction]


@dataclass
class FloatIn:
    """The float frames entering the graph."""
    name: str


def bn_affine(gamma, beta, mean, var, eps: float) -> tuple[list[float], list[float]]:
    """BatchNorm as y = x * a + b per channel, in float64 numpy (IEEE, correctly rounded, the
    same on every machine): a = gamma / sqrt(var + eps) (as 1/sqrt then a product), b = beta -
    mean * a. Both lowerings call this, so they fold BatchNorm identically."""
    inv = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    a = inv * np.asarray(gamma, np.float64)
    b = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * a
    return [float(v) for v in a], [float(v) for v in b]


class Emitter:
    """Builds the IR graph of a lowering."""

    def __init__(self, name: str, mantissa_bits: int | None = None):
        self.mantissa_bits = mantissa_bits
        self.b = GraphBuilder(name)

    def vtype(self, name: str) -> QType:
        return self.b.value(name).dtype

    def affine_of(self, h, where: str) -> Affine:
        if isinstance(h, Affine):
            return h
        if isinstance(h, Codes):
            t = self.vtype(h.name)
            C = self.b.value(h.name).shape[0] if self.b.value(h.name).shape else 1
            S = [exact(s) for s in t.scale] if t.per_channel else [exact(t.scale[0])] * C
            return Affine(h.name, S, [Fraction(0)] * len(S))
        raise LoweringError(f"{where}: expects a quantized input, got a float tensor")

    def requant(self, name: str, src: Affine, out: QType, lo: int, hi: int, where: str,
                rounding: str = "half_even") -> Codes:
        """One rounding: q = clamp(round((int - zx)*S/s_out + B/s_out) + zo)."""
        so = [exact(s) for s in out.scale]
        C = len(src.S)
        if len(so) not in (1, C):
            raise LoweringError(f"{where}: output scale has {len(so)} entries for {C} channels")
        # mantissa width: int32 when asked; otherwise as wide as int64 provably allows for
        # this input's worst case, so the fixed-point map is exact to ~2^-(62 - log2 bound)
        bound = self.b.bound(src.name)
        bits = self.mantissa_bits or max(24, 61 - bound.bit_length())
        while True:
            mult, shift, off = [], [], []
            for c in range(C):
                s_out = so[c if len(so) > 1 else 0]
                M = src.S[c] / s_out
                m, s = fixed_multiplier(M, strip=src.B[c] == 0, bits=bits)
                mult.append(m)
                shift.append(s)
                off.append(fixed_offset(src.B[c] / s_out, s))
            worst = bound * max(abs(v) for v in mult) + max(abs(v) for v in off)
            if worst < 2**63 or bits <= 16 or self.mantissa_bits:
                break
            bits -= 1
        if len(set(zip(mult, shift, off))) == 1:
            mult, shift, off = mult[:1], shift[:1], off[:1]
        op = Requant(np.array(mult), np.array(shift), np.array(off), out, lo, hi, rounding)
        return Codes(self.b.add(name, op, [src.name], where).name)

    @staticmethod
    def scale_shift(aff: Affine, a: list[float], b: list[float], where: str) -> Affine:
        """y = x * a + b per channel (a folded BatchNorm): S' = S*a, B' = B*a + b, exactly."""
        if len(a) != len(aff.S):
            raise LoweringError(f"{where}: {len(a)} channels of scale for {len(aff.S)} input "
                                "channels")
        S = [s * exact(ai) for s, ai in zip(aff.S, a)]
        B = [bb * exact(ai) + exact(bi) for bb, ai, bi in zip(aff.B, a, b)]
        return Affine(aff.name, S, B)

    def finish(self, final, meta: dict) -> Graph:
        """Dequantize the model's result(s) into the graph output(s) and validate the graph.

        `final` is one handle, or a list of them for a model with several outputs (an early-
        exit network's exit and final classifiers): outputs "out" or "out0", "out1", ..."""
        finals = list(final) if isinstance(final, (list, tuple)) else [final]
        names = ["out"] if len(finals) == 1 else [f"out{i}" for i in range(len(finals))]
        outs = []
        for i, (h, name) in enumerate(zip(finals, names)):
            which = "model output" if len(finals) == 1 else f"model output {i}"
            if isinstance(h, Codes):
                out = self.b.add(name, Dequantize(None), [h.name], "output")
            elif isinstance(h, Affine):
                t = self.vtype(h.name)
                scales = t.scale * (len(h.S) if not t.per_channel else 1)
                if any(exact(s) != S for s, S in zip(scales, h.S)):
                    raise LoweringError(f"{which}: a float op (e.g. BatchNorm) after the last "
                                        "quantized layer has no integer lowering; quantize the "
                                        "output")
                out = self.b.add(name, Dequantize(np.array([float(v) for v in h.B])),
                                 [h.name], "output")
            else:
                raise LoweringError(f"{which} is the float input itself, or a float tensor "
                                    "with no integer form")
            outs.append(out.name)
        return validate(self.b.build(outs, meta=meta))
