"""Lowering from QONNX to the integer IR (onnx + numpy, no torch).

The ONNX graph is walked in topological order and every tensor is classified: a float
constant, a quantized constant (weights: codes + scale), the float input, IR codes, an exact
affine view of IR integers (accumulators after Conv/MatMul/Gemm, BatchNorm, bias adds,
constant scalings), or a ReLU of one of these awaiting the next quantizer. Each QONNX `Quant`
on a non-constant becomes one IR Quantize or Requant, as in the Brevitas lowering, so both
paths produce the same graph. Anything else (an unknown op, a float op between quantizers, a
layout change that is not a reshape) raises QonnxImportError naming the file, the node and
its op type. Nothing here depends on how the file was written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from amchw.ir import (Add, AvgPool, Concat, Conv, Dense, FloatType, MaxPool, QType, Quantize,
                      Reshape, acc_type, fixed_multiplier)
from amchw.ir.types import IRError, exact, is_pow2

from .common import Affine, Codes, Emitter, FloatIn, LoweringError, bn_affine

QUANT_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
ROUNDINGS = {"ROUND": "half_even", "HALF_EVEN": "half_even", "FLOOR": "floor",
             "HALF_UP": "half_away"}   # QONNX's HALF_UP rounds halves away from zero
# internal sub-modules of a Brevitas layer, skipped when a node's module path is recovered
_QUANT_PARTS = {"act_quant", "weight_quant", "bias_quant", "input_quant", "output_quant",
                "export_handler", "activation_impl", "fused_activation_quant_proxy",
                "tensor_quant", "act_impl"}


class QonnxImportError(LoweringError):
    """A QONNX file that cannot be read or lowered exactly; names the file and the node."""


@dataclass
class QConst:
    """A quantized constant: real = (codes - zp) * scale, scale broadcastable to codes."""
    codes: np.ndarray
    scale: np.ndarray
    zp: int
    bits: int
    signed: bool
    narrow: bool


@dataclass
class Relu:
    """max(inner, 0) of an affine view or codes, waiting for the quantizer that absorbs it."""
    inner: object


@dataclass
class ScaledIn:
    """The float input times a constant (qonnx's ExtractQuantScaleZeroPt moves a quantizer's
    scale into a Div before it): real = x * k."""
    inner: FloatIn
    k: float


@dataclass
class ReshapedIn:
    """The float input reshaped (FINN's TFC flattens its images before quantizing): a
    per-tensor quantizer commutes with the reshape, so it becomes Quantize then Reshape."""
    inner: FloatIn
    shape: tuple


@dataclass
class Sum:
    """The float sum of two quantized tensors, waiting for its output quantizer."""
    a: Codes
    b: Codes


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def module_path(node) -> str | None:
    """The torch module a node was exported from, if the file says: amchw's exporter records
    it (amchw.module); torch's dynamo exporter keeps name scopes; the TorchScript exporter
    names nodes /module/path/Op."""
    for p in node.metadata_props:
        if p.key == "amchw.module":
            return p.value
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            import ast

            try:
                scopes = [s for s in ast.literal_eval(p.value) if s][:-1]
            except (ValueError, SyntaxError):
                return None
            keep = [s for s in scopes if not (set(s.split(".")) & _QUANT_PARTS)]
            return keep[-1] if keep else None
    name = node.name or ""
    if name.startswith("/"):
        mod = []
        for s in name.split("/")[1:-1]:
            if s in _QUANT_PARTS:
                break
            mod.append(s)
        return ".".join(mod) or None
    return None


def is_input_quant(node) -> bool:
    """Whether a node belongs to a layer's input quantizer (Brevitas' QuantEltwiseAdd, ...)."""
    for p in node.metadata_props:
        if p.key == "amchw.role":
            return p.value == "input_quant"
        if p.key == "pkg.torch.onnx.name_scopes":
            return ".input_quant" in p.value
    return "/input_quant/" in (node.name or "")


class _Importer(Emitter):
    def __init__(self, model, where: str, name: str, mantissa_bits):
        super().__init__(name, mantissa_bits)
        self.where = where
        self.model = model
        self.state: dict[str, object] = {}
        self.node = None
        self.points: list[tuple[str, str]] = []  # (ONNX tensor, IR value) holding the same codes
        self.input_quants: dict[str, int] = {}

    # -- errors and lookups
    def fail(self, msg: str):
        n = self.node
        at = f"node {n.name or '(unnamed)'!r} ({n.op_type})" if n is not None else "graph"
        raise QonnxImportError(f"{self.where}: {at}: {msg}")

    def get(self, name: str):
        if name not in self.state:
            self.fail(f"input {name!r} is not produced by any node, initializer or graph input")
        return self.state[name]

    def const(self, name: str, what: str) -> np.ndarray:
        v = self.get(name)
        if not isinstance(v, np.ndarray):
            self.fail(f"{what} ({name!r}) must be a constant")
        return v

    def scalar(self, name: str, what: str) -> float:
        v = self.const(name, what)
        if v.size != 1:
            self.fail(f"{what} must be a scalar, got shape {v.shape}")
        return float(v.ravel()[0])

    def path_name(self, default: str) -> tuple[str, str]:
        path = module_path(self.node) or default
        return path.replace(".", "_"), path

    def shape(self, h) -> tuple:
        """Shape without batch of an IR-backed state."""
        while isinstance(h, Relu):
            h = h.inner
        if not isinstance(h, (Codes, Affine, FloatIn)):
            self.fail(f"expects an activation tensor, got a {type(h).__name__}")
        return self.b.value(h.name).shape

    def per_channel(self, c: np.ndarray, shape: tuple, what: str) -> list[float]:
        """A constant broadcast over a (C, ...) tensor that varies only along C: its C values."""
        full_shape = (1,) + tuple(shape)
        try:
            if np.broadcast_shapes(c.shape, full_shape) != full_shape:
                raise ValueError
            full = np.broadcast_to(c, full_shape).reshape(shape[0] if shape else 1, -1)
        except ValueError:
            self.fail(f"{what} of shape {c.shape} does not broadcast over {full_shape}")
        if not np.all(full == full[:, :1]):
            self.fail(f"{what} varies along a spatial axis: only per-channel constants have an "
                      "integer form")
        return [float(v) for v in full[:, 0]]

    # -- quantized constants
    def quant_params(self, node):
        a = _attrs(node)
        scale = self.const(node.input[1], "Quant scale")
        zp = self.const(node.input[2], "Quant zero point")
        bits = self.scalar(node.input[3], "Quant bit width")
        if bits != int(bits) or not 1 <= bits <= 32:
            self.fail(f"bit width must be an integer in 1..32, got {bits}")
        if zp.size != 1 or float(zp.ravel()[0]) != int(zp.ravel()[0]):
            self.fail("only a single integer zero point is supported")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            self.fail("scales must be finite and positive")
        rounding = str(a.get("rounding_mode", "ROUND")).upper()
        if rounding not in ROUNDINGS:
            self.fail(f"rounding_mode {rounding!r} has no IR equivalent "
                      f"(supported: {sorted(ROUNDINGS)})")
        return (scale, int(zp.ravel()[0]), int(bits), bool(a.get("signed", 1)),
                bool(a.get("narrow", 0)), ROUNDINGS[rounding])

    def qtype(self, scale: np.ndarray, zp, bits, signed, narrow, shape) -> QType:
        if scale.size == 1:
            sc = (float(scale.ravel()[0]),)
        else:
            sc = tuple(self.per_channel(scale, shape, "Quant scale"))
        try:
            return QType(bits, signed, narrow, sc, zp, 1 if len(sc) > 1 else None)
        except IRError as e:
            self.fail(str(e))

    def quantize_const(self, x: np.ndarray, node) -> QConst:
        scale, zp, bits, signed, narrow, rounding = self.quant_params(node)
        if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
            self.fail("the quantized constant must hold finite floats")
        if bits == 1 and signed:
            self.fail("1-bit signed Quant is bipolar; write it as BipolarQuant")
        t = QType(bits, signed, narrow, (1.0,), zp)
        # the arithmetic of qonnx's own executor, in the file's precision
        y = x / scale.astype(x.dtype) + x.dtype.type(zp)
        y = np.clip(y, t.lo, t.hi)
        y = {"half_even": np.round, "floor": np.floor,
             "half_away": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)}[rounding](y)
        return QConst(y.astype(np.int64), np.asarray(scale, np.float64), zp, bits, signed,
                      narrow)

    def weight(self, q: QConst, axis: int, what: str) -> tuple[np.ndarray, QType]:
        """Codes and QType of a weight whose output channels lie on `axis` of q.codes."""
        s = np.broadcast_to(q.scale, q.codes.shape) if q.scale.size > 1 else q.scale
        if q.scale.size == 1:
            sc = (float(q.scale.ravel()[0]),)
        else:
            moved = np.moveaxis(s, axis, 0).reshape(q.codes.shape[axis], -1)
            if not np.all(moved == moved[:, :1]):
                self.fail(f"{what} scale is not per output channel")
            sc = tuple(float(v) for v in moved[:, 0])
        codes = q.codes
        if codes.min(initial=0) < -2**31 or codes.max(initial=0) >= 2**31:
            self.fail(f"{what} codes exceed int32")
        return codes.astype(np.int32), QType(q.bits, q.signed, q.narrow, sc, q.zp,
                                             1 if len(sc) > 1 else None)

    # -- handlers
    def h_quant(self, node):
        src = self.get(node.input[0])
        if isinstance(src, np.ndarray):
            return self.quantize_const(src, node)
        scale, zp, bits, signed, narrow, rounding = self.quant_params(node)
        if bits == 1 and signed:
            self.fail("a 1-bit (bipolar) activation quantizer needs a sign op the IR does not "
                      "have")
        name, path = self.path_name("quant")
        if isinstance(src, ScaledIn):
            # codes round(x * k / s) are those of an IR quantizer of scale s / k; the Quant's
            # output, codes x s, is k times the IR value: an affine view of the codes
            if scale.size != 1:
                self.fail("a per-channel scale after a scaled input is not supported")
            s_q = float(scale.ravel()[0])
            t = self.qtype(np.asarray(s_q / src.k), zp, bits, signed, narrow,
                           self.b.value(src.inner.name).shape)
            v = self.b.add(name, Quantize(t, rounding), [src.inner.name], path)
            C = v.shape[0] if v.shape else 1
            return Affine(v.name, [exact(s_q)] * C, [Fraction(0)] * C)
        if isinstance(src, FloatIn):
            t = self.qtype(scale, zp, bits, signed, narrow, self.b.value(src.name).shape)
            return Codes(self.b.add(name, Quantize(t, rounding), [src.name], path).name)
        if isinstance(src, ReshapedIn):
            if scale.size != 1:
                self.fail("a per-channel quantizer after reshaping the input")
            t = self.qtype(scale, zp, bits, signed, narrow, self.b.value(src.inner.name).shape)
            q = self.b.add(name, Quantize(t, rounding), [src.inner.name], path)
            return self.reshape_to(Codes(q.name), src.shape)
        if isinstance(src, Sum):
            return self.add_codes(src, scale, zp, bits, signed, narrow, rounding, name, path)
        relu = isinstance(src, Relu)
        inner = src.inner if relu else src
        if isinstance(inner, Relu):
            inner = inner.inner
        if not isinstance(inner, (Codes, Affine)):
            self.fail("Quant input is not derived from quantized values")
        t = self.qtype(scale, zp, bits, signed, narrow, self.shape(inner))
        lo = max(t.lo, t.zero_point) if relu else t.lo
        if is_input_quant(node):  # named as the Brevitas lowering names a layer's input requant
            k = self.input_quants[path] = self.input_quants.get(path, -1) + 1
            name = f"{name}_in{k}"
        return self.requant(name, self.affine_of(inner, self.where), t, lo, t.hi, path,
                            rounding)

    def h_bipolar(self, node):
        src = self.get(node.input[0])
        if not isinstance(src, np.ndarray):
            self.fail("BipolarQuant of an activation needs a sign op the IR does not have; "
                      "only bipolar weights are supported")
        scale = self.const(node.input[1], "BipolarQuant scale")
        codes = np.where(src / scale.astype(src.dtype) >= 0, 1, -1).astype(np.int64)
        return QConst(codes, np.asarray(scale, np.float64), 0, 2, True, True)

    def h_trunc(self, node):
        src = self.get(node.input[0])
        if not isinstance(src, Codes):
            self.fail("Trunc input must be quantized codes")
        a = _attrs(node)
        rounding = str(a.get("rounding_mode", "FLOOR")).upper()
        if rounding not in ROUNDINGS:
            self.fail(f"rounding_mode {rounding!r} has no IR equivalent")
        xt = self.vtype(src.name)
        zp = self.scalar(node.input[2], "Trunc zero point")
        in_bits = self.scalar(node.input[3], "Trunc input bit width")
        if zp != 0 or xt.zero_point != 0:
            self.fail("Trunc with a nonzero zero point is not supported")
        s_in = self.const(node.input[1], "Trunc scale")
        if len(node.input) >= 6:   # Trunc v2: output scale and bit width
            s_out = self.const(node.input[4], "Trunc output scale")
            out_bits = self.scalar(node.input[5], "Trunc output bit width")
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            ratio = s_out.astype(np.float64) / s_in.astype(np.float64)
            k = np.round(np.log2(ratio))
            if not np.all(ratio == 2.0**k):
                self.fail("Trunc output scale / input scale must be a power of two")
            shift = int(k.ravel()[0])
            out_scale = s_out
        else:                      # Trunc v1: codes shift right, the scale stays
            out_bits = self.scalar(node.input[4], "Trunc output bit width")
            signed, narrow = xt.signed, False
            shift = int(in_bits - out_bits)
            out_scale = s_in
        if shift < 0:
            self.fail("Trunc cannot widen")
        t = self.qtype(np.asarray(out_scale, np.float64), 0, int(out_bits), signed, narrow,
                       self.b.value(src.name).shape)
        aff = self.affine_of(src, self.where)
        # codes q / 2^shift of the output scale: view q as worth s_out / 2^shift each, so the
        # requantization multiplies by exactly 2^-shift
        so = [exact(s) for s in t.scale] * (1 if t.per_channel else len(aff.S))
        S = [s / (1 << shift) for s in so]
        name, path = self.path_name("trunc")
        return self.requant(name, Affine(aff.name, S, aff.B), t, t.lo, t.hi, path,
                            ROUNDINGS[rounding])

    def as_codes(self, h):
        """Codes for an affine view that is only a rescaling of codes (zero offsets): qonnx's
        ExtractQuantScaleZeroPt leaves Quant(scale 1) followed by Mul(scale). The new scale is
        a relabelling: one identity Requant (multiplier 1, shift 0)."""
        if not isinstance(h, Affine) or any(b != 0 for b in h.B):
            return h
        v = self.b.value(h.name)
        t = v.dtype
        if not isinstance(t, QType) or t.bits > 16:
            return h
        own = [exact(x) for x in t.scale] * (1 if t.per_channel else len(h.S))
        if t.zero_point == 0 and own == list(h.S):
            return Codes(h.name)  # the view is the value's own scale
        sc = [float(x) for x in h.S]
        if any(Fraction(f) != x for f, x in zip(sc, h.S)) or any(f <= 0 for f in sc):
            return h
        per = len(set(sc)) > 1
        out = QType(t.bits, t.signed, t.narrow, tuple(sc) if per else (sc[0],), t.zero_point,
                    1 if per else None)
        name, path = self.path_name("rescale")
        return self.requant(name, h, out, out.lo, out.hi, path)

    def conv_like_input(self, what: str) -> tuple[Codes, QType]:
        h = self.as_codes(self.get(self.node.input[0]))
        if not isinstance(h, Codes):
            kind = "the float input" if isinstance(h, FloatIn) else "a float tensor"
            self.fail(f"{what} input is {kind}, not quantized codes (a float op between "
                      "quantizers has no integer form)")
        xt = self.vtype(h.name)
        if xt.per_channel:
            self.fail(f"{what} input has per-channel scales")
        return h, xt

    def qweight(self, name: str, what: str) -> QConst:
        w = self.get(name)
        if not isinstance(w, QConst):
            self.fail(f"{what} must be a quantized constant (a Quant on an initializer)")
        return w

    def bias(self, name: str | None, acc: QType, K: int, beta: float = 1.0):
        """int32 bias codes (scale = input x weight scale) or float offsets B."""
        if not name:
            return None, [Fraction(0)] * K
        v = self.get(name)
        if isinstance(v, QConst) and beta == 1.0:
            bs = np.broadcast_to(v.scale, v.codes.shape).ravel() if v.scale.size > 1 \
                else np.full(K, float(v.scale.ravel()[0]))
            want = np.broadcast_to(np.asarray(acc.scale, np.float64), (K,))
            if v.codes.size == K and v.zp == 0 and np.all(np.abs(bs - want) <= 1e-6 * want):
                codes = v.codes.ravel()
                if codes.min() < -2**31 or codes.max() >= 2**31:
                    self.fail("bias codes exceed int32")
                return codes.astype(np.int32), [Fraction(0)] * K
            real = (v.codes - v.zp) * v.scale
            return None, [exact(b) * exact(beta) for b in np.broadcast_to(real.ravel(), (K,))]
        if isinstance(v, np.ndarray):
            vals = np.broadcast_to(v.ravel(), (K,)) if v.size in (1, K) else None
            if vals is None:
                self.fail(f"bias of shape {v.shape} for {K} outputs")
            return None, [exact(b) * exact(beta) for b in vals]
        self.fail("bias must be a constant")

    def h_conv(self, node):
        h, xt = self.conv_like_input("Conv")
        q = self.qweight(node.input[1], "Conv weight")
        w, wt = self.weight(q, 0, "Conv weight")
        nd = w.ndim - 2
        if nd not in (1, 2):
            self.fail(f"only 1-D and 2-D convolutions are supported (weight {w.shape})")
        a = _attrs(node)
        kernel = tuple(w.shape[2:])
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != kernel:
            self.fail(f"kernel_shape {a['kernel_shape']} does not match the weight {w.shape}")
        stride = tuple(a.get("strides", (1,) * nd))
        dil = tuple(a.get("dilations", (1,) * nd))
        auto = a.get("auto_pad", "NOTSET")
        xs = self.b.value(h.name).shape
        if auto in ("NOTSET", ""):
            p = tuple(a.get("pads", (0,) * (2 * nd)))
            pads = tuple((int(p[i]), int(p[i + nd])) for i in range(nd))
        elif auto == "VALID":
            pads = ((0, 0),) * nd
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for i in range(nd):
                out = -(-xs[1 + i] // stride[i])
                total = max(0, (out - 1) * stride[i] + dil[i] * (kernel[i] - 1) + 1 - xs[1 + i])
                lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
                pads.append((lo, total - lo))
            pads = tuple(pads)
        else:
            self.fail(f"auto_pad {auto!r}")
        K = w.shape[0]
        acc = acc_type(xt, wt)
        bias, B = self.bias(node.input[2] if len(node.input) > 2 else None, acc, K)
        name, path = self.path_name("conv")
        try:
            op = Conv(w, bias, wt, stride, pads, dil, int(a.get("group", 1)), acc)
            v = self.b.add(name, op, [h.name], path)
        except IRError as e:
            self.fail(str(e))
        S = [exact(s) for s in acc.scale] if acc.per_channel else [exact(acc.scale[0])] * K
        return Affine(v.name, S, B)

    def dense(self, x: Codes, xt: QType, w_kc: QConst, bias_name, alpha=1.0, beta=1.0):
        w, wt = self.weight(w_kc, 0, "weight")
        if self.b.value(x.name).shape != (w.shape[1],):
            self.fail(f"input of shape {self.b.value(x.name).shape} for a weight {w.shape}")
        K = w.shape[0]
        acc = acc_type(xt, wt)
        bias, B = self.bias(bias_name, acc, K, beta)
        S = [exact(s) for s in acc.scale] if acc.per_channel else [exact(acc.scale[0])] * K
        if alpha != 1.0 and bias is not None:
            # Y = alpha * (A . W) + beta * C: an integer bias would be scaled by alpha too, so
            # it becomes a float offset instead
            B = [int(c) * s for c, s in zip(bias, S)]
            bias = None
        name, path = self.path_name("fc")
        v = self.b.add(name, Dense(w, bias, wt, acc), [x.name], path)
        if alpha != 1.0:
            S = [s * exact(alpha) for s in S]
        return Affine(v.name, S, B)

    @staticmethod
    def transposed(q: QConst) -> QConst:
        sc = q.scale.T if q.scale.ndim == 2 else q.scale
        return QConst(q.codes.T, sc, q.zp, q.bits, q.signed, q.narrow)

    def h_matmul(self, node):
        h, xt = self.conv_like_input("MatMul")
        q = self.qweight(node.input[1], "MatMul weight")
        if q.codes.ndim != 2:
            self.fail(f"MatMul weight must be 2-D, got {q.codes.shape}")
        if q.scale.ndim > 2:
            self.fail("MatMul weight scale must be a scalar or 2-D")
        return self.dense(h, xt, self.transposed(q), None)

    def h_gemm(self, node):
        a = _attrs(node)
        if a.get("transA", 0):
            self.fail("transA=1 is not supported")
        h, xt = self.conv_like_input("Gemm")
        q = self.qweight(node.input[1], "Gemm weight")
        if q.codes.ndim != 2:
            self.fail(f"Gemm weight must be 2-D, got {q.codes.shape}")
        if not a.get("transB", 0):
            q = self.transposed(q)
        bias = node.input[2] if len(node.input) > 2 else None
        return self.dense(h, xt, q, bias, float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)))

    def affine_in(self, what: str) -> Affine:
        h = self.get(self.node.input[0])
        if isinstance(h, (Codes, Affine)):
            return self.affine_of(h, self.where)
        self.fail(f"{what} needs a quantized or affine input")

    def h_bn(self, node):
        a = _attrs(node)
        if a.get("training_mode", 0):
            self.fail("training_mode=1")
        aff = self.affine_in("BatchNormalization")
        g, beta, mean, var = (self.const(n, w).astype(np.float64) for n, w in
                              zip(node.input[1:5], ("scale", "B", "mean", "var")))
        # the epsilon attribute is a float32; the shortest decimal that rounds to it is how it
        # was written in the source model (1e-5), and the value Brevitas/torch used
        eps = float(str(np.float32(a.get("epsilon", 1e-5))))
        a_, b_ = bn_affine(g, beta, mean, var, eps)
        return self.scale_shift(aff, a_, b_, f"{self.where}: node {node.name!r}")

    @staticmethod
    def dequantized(v):
        """A quantized constant as the float values it stands for (exact in float64)."""
        if isinstance(v, QConst):
            return (v.codes - v.zp).astype(np.float64) * v.scale
        return v

    def binary_const(self, node):
        """(state, constant) of a binary op with one constant input, in either order."""
        x, y = (self.dequantized(self.get(i)) for i in node.input[:2])
        if isinstance(y, np.ndarray) and not isinstance(x, np.ndarray):
            return x, y, False
        if isinstance(x, np.ndarray) and not isinstance(y, np.ndarray):
            return y, x, True
        return None

    def fold(self, node):
        """A binary op of two constants, computed as the file's executor would (numpy)."""
        a, b = (self.get(i) for i in node.input[:2])
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return None
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
        with np.errstate(all="raise"):
            try:
                return f[node.op_type](a, b)
            except FloatingPointError as e:
                self.fail(f"constant folding: {e}")

    def h_add(self, node):
        folded = self.fold(node)
        if folded is not None:
            return folded
        pair = self.binary_const(node)
        if pair is None:
            x, y = self.get(node.input[0]), self.get(node.input[1])
            if isinstance(x, Codes) and isinstance(y, Codes):
                return Sum(x, y)
            self.fail("adds two tensors that are not both quantized codes")
        h, c, _ = pair
        if not isinstance(h, (Codes, Affine)):
            self.fail("adds a constant to a tensor that is not quantized")
        aff = self.affine_of(h, self.where)
        vals = self.per_channel(c, self.shape(h), "added constant")
        sign = -1 if node.op_type == "Sub" else 1
        if node.op_type == "Sub" and pair[2]:
            self.fail("constant minus tensor is not supported")
        return Affine(aff.name, aff.S, [b + sign * exact(v) for b, v in zip(aff.B, vals)])

    def h_mul(self, node):
        folded = self.fold(node)
        if folded is not None:
            return folded
        q, c = self.get(node.input[0]), self.get(node.input[1])
        if isinstance(q, QConst) and isinstance(c, np.ndarray):
            # a quantized constant rescaled (ExtractQuantScaleZeroPt on weights)
            if np.any(c <= 0):
                self.fail("a quantized constant scaled by a non-positive constant")
            k = c.astype(np.float64)
            return QConst(q.codes, q.scale * k if node.op_type == "Mul" else q.scale / k, q.zp,
                          q.bits, q.signed, q.narrow)
        pair = self.binary_const(node)
        if pair is None:
            self.fail("multiplies two non-constant tensors")
        h, c, rev = pair
        if isinstance(h, (FloatIn, ScaledIn)) and c.size == 1:
            k = float(c.ravel()[0])
            if node.op_type == "Div":
                if rev or k == 0:
                    self.fail("division by a tensor or by zero")
                k = 1.0 / k if is_pow2(k) else self.fail("the float input divided by a "
                                                         "constant that is not a power of two")
            inner = h.inner if isinstance(h, ScaledIn) else h
            return ScaledIn(inner, k * (h.k if isinstance(h, ScaledIn) else 1.0))
        relu = isinstance(h, Relu)
        inner = h.inner if relu else h
        if not isinstance(inner, (Codes, Affine)):
            self.fail("scales a tensor that is not quantized")
        aff = self.affine_of(inner, self.where)
        vals = self.per_channel(c, self.shape(inner), "scale constant")
        if node.op_type == "Div":
            if rev or any(v == 0 for v in vals):
                self.fail("division by a tensor or by zero")
            k = [1 / exact(v) for v in vals]
        else:
            k = [exact(v) for v in vals]
        if relu and any(m <= 0 for m in k):
            self.fail("a ReLU output scaled by a non-positive constant")
        out = Affine(aff.name, [s * m for s, m in zip(aff.S, k)],
                     [b * m for b, m in zip(aff.B, k)])
        return Relu(out) if relu else out  # ReLU commutes with a positive scaling

    def h_relu(self, node):
        h = self.get(node.input[0])
        if isinstance(h, Relu):
            return h
        if not isinstance(h, (Codes, Affine)):
            self.fail("Relu of a tensor that is not derived from quantized values")
        return Relu(h)

    def window(self, node, nd: int):
        a = _attrs(node)
        k = tuple(a["kernel_shape"])
        if len(k) != nd:
            self.fail(f"kernel_shape {k} on a {nd}-D input")
        s = tuple(a.get("strides", (1,) * nd))
        p = tuple(a.get("pads", (0,) * (2 * nd)))
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID"):
            self.fail(f"auto_pad {a['auto_pad']!r} is not supported for pooling")
        if a.get("ceil_mode", 0):
            self.fail("ceil_mode=1 is not supported")
        return a, k, s, tuple((int(p[i]), int(p[i + nd])) for i in range(nd))

    def h_maxpool(self, node):
        h = self.get(node.input[0])
        relu = isinstance(h, Relu)
        inner = h.inner if relu else h
        if not isinstance(inner, (Codes, Affine)):
            self.fail("MaxPool of a tensor that is not quantized")
        nd = len(self.shape(inner)) - 1
        a, k, s, p = self.window(node, nd)
        if len(node.output) > 1 and node.output[1]:
            self.fail("MaxPool indices output is not supported")
        op = MaxPool(k, s, p, tuple(a.get("dilations", (1,) * nd)))
        name, path = self.path_name("pool")
        if isinstance(inner, Affine):
            if not all(v > 0 for v in inner.S) or any(any(x) for x in p):
                self.fail("max pool of a float tensor needs positive scales and no padding")
            v = self.b.add(name, op, [inner.name], path)
            out = Affine(v.name, inner.S, inner.B)
        else:
            out = Codes(self.b.add(name, op, [inner.name], path).name)
        return Relu(out) if relu else out

    def h_avgpool(self, node):
        h = self.get(node.input[0])
        if not isinstance(h, Codes):
            self.fail("average pool needs quantized codes as input")
        shape = self.b.value(h.name).shape
        nd = len(shape) - 1
        if node.op_type == "GlobalAveragePool":
            k, s, p = tuple(shape[1:]), tuple(shape[1:]), ((0, 0),) * nd
        else:
            a, k, s, p = self.window(node, nd)
            if any(any(x) for x in p) and not a.get("count_include_pad", 0):
                self.fail("padded average pool without count_include_pad is not supported")
        name, path = self.path_name("avgpool")
        v = self.b.add(name, AvgPool(k, s, p, "sum"), [h.name], path)
        t = self.vtype(h.name)
        win = int(np.prod(k))
        C = shape[0]
        S = [exact(sc) / win for sc in t.scale] if t.per_channel else \
            [exact(t.scale[0]) / win] * C
        return Affine(v.name, S, [Fraction(0)] * C)

    def reshape_to(self, h, target: tuple):
        if isinstance(h, (FloatIn, ReshapedIn)):
            inner = h if isinstance(h, FloatIn) else h.inner
            if int(np.prod(target)) != int(np.prod(self.shape(inner))):
                self.fail(f"cannot reshape {self.shape(inner)} to {target}")
            return ReshapedIn(inner, tuple(target))
        h = self.as_codes(h)
        if not isinstance(h, Codes):
            self.fail("reshape of a float tensor; quantize before reshaping")
        shape = self.b.value(h.name).shape
        if target == shape:
            return h
        if int(np.prod(target)) != int(np.prod(shape)):
            self.fail(f"cannot reshape {shape} to {target}")
        name, path = self.path_name("flatten")
        return Codes(self.b.add(name, Reshape(tuple(target)), [h.name], path).name)

    def h_flatten(self, node):
        h = self.get(node.input[0])
        if _attrs(node).get("axis", 1) != 1:
            self.fail("only Flatten(axis=1) keeps the batch apart")
        return self.reshape_to(h, (int(np.prod(self.shape(h))),))

    def h_reshape(self, node):
        h = self.get(node.input[0])
        if isinstance(h, np.ndarray):
            return h.reshape(self.const(node.input[1], "shape").astype(np.int64))
        tgt = [int(v) for v in self.const(node.input[1], "Reshape shape").ravel()]
        shape = self.shape(h)
        full = (1,) + tuple(shape)
        if not tgt or tgt[0] not in (1, -1, 0):
            self.fail(f"Reshape to {tgt} does not keep the batch dimension first")
        out = []
        for i, v in enumerate(tgt[1:], start=1):
            out.append(full[i] if v == 0 else v)
        if out.count(-1) > 1:
            self.fail(f"Reshape to {tgt}: more than one -1")
        if -1 in out:
            rest = int(np.prod([v for v in out if v != -1]))
            out[out.index(-1)] = int(np.prod(shape)) // max(rest, 1)
        return self.reshape_to(h, tuple(out))

    def h_transpose(self, node):
        h = self.get(node.input[0])
        perm = _attrs(node).get("perm")
        if isinstance(h, QConst):
            if perm is not None and h.codes.ndim != 2:
                self.fail("only 2-D weight transposes are supported")
            return self.transposed(h)
        if isinstance(h, np.ndarray):
            return np.transpose(h, perm)
        shape = (1,) + tuple(self.shape(h))
        perm = perm if perm is not None else list(range(len(shape)))[::-1]
        # a layout change only: the non-unit axes keep their order
        moved = [a for a in perm if shape[a] != 1]
        if moved != sorted(moved) or perm[0] != 0 and shape[0] != 1:
            self.fail(f"Transpose {list(perm)} of {shape[1:]} moves data; only layout changes "
                      "that keep the element order are supported")
        return self.reshape_to(h, tuple(shape[a] for a in perm)[1:])

    def h_squeeze(self, node):
        h = self.get(node.input[0])
        if isinstance(h, np.ndarray):
            self.fail("constant Squeeze/Unsqueeze are not folded")
        a = _attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = [int(v) for v in self.const(node.input[1], "axes").ravel()]
        shape = list((1,) + tuple(self.shape(h)))
        if node.op_type == "Squeeze":
            axes = [x % len(shape) for x in (axes or [i for i, v in enumerate(shape) if v == 1])]
            if 0 in axes:
                self.fail("cannot squeeze the batch dimension")
            out = [v for i, v in enumerate(shape) if i not in axes]
        else:
            out = list(shape)
            for x in sorted(x % (len(shape) + len(axes)) for x in axes):
                out.insert(x, 1)
        return self.reshape_to(h, tuple(out[1:]))

    def h_concat(self, node):
        hs = [self.get(i) for i in node.input]
        if not all(isinstance(h, Codes) for h in hs):
            self.fail("every input of a Concat must be quantized codes")
        ot = self.vtype(hs[0].name)
        if any(self.vtype(h.name) != ot for h in hs):
            self.fail("concatenated inputs must share one quantization")
        axis = int(_attrs(node).get("axis", 1))
        rank = len(self.b.value(hs[0].name).shape) + 1
        if axis % rank == 0:
            self.fail("concatenation along the batch axis")
        n = len(hs)
        name, path = self.path_name("cat")
        op = Concat(axis % rank, (1,) * n, (0,) * n, ot, "half_even")
        return Codes(self.b.add(name, op, [h.name for h in hs], path).name)

    def add_codes(self, s: Sum, scale, zp, bits, signed, narrow, rounding, name, path):
        ot = self.qtype(scale, zp, bits, signed, narrow, self.b.value(s.a.name).shape)
        ta, tb = self.vtype(s.a.name), self.vtype(s.b.name)
        if ta.per_channel or tb.per_channel or ot.per_channel:
            self.fail("a quantized add needs per-tensor scales")
        Ma, Mb = exact(ta.scale[0]) / exact(ot.scale[0]), exact(tb.scale[0]) / exact(ot.scale[0])
        _, sa = fixed_multiplier(Ma, strip=False)
        _, sb = fixed_multiplier(Mb, strip=False)
        sh = min(sa, sb)
        ma, mb = round(Ma * (1 << sh)), round(Mb * (1 << sh))
        op = Add(ma, mb, sh, 0, ot, ot.lo, ot.hi, rounding)
        return Codes(self.b.add(name, op, [s.a.name, s.b.name], path).name)

    def h_identity(self, node):
        return self.get(node.input[0])

    def h_constant(self, node):
        from onnx import helper, numpy_helper

        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_int", "value_floats", "value_ints"):
                return np.asarray(helper.get_attribute_value(a))
        self.fail("Constant without a value")

    HANDLERS = {
        "Quant": "h_quant", "IntQuant": "h_quant", "BipolarQuant": "h_bipolar",
        "Trunc": "h_trunc", "Conv": "h_conv", "MatMul": "h_matmul", "Gemm": "h_gemm",
        "BatchNormalization": "h_bn", "Add": "h_add", "Sub": "h_add", "Mul": "h_mul",
        "Div": "h_mul", "Relu": "h_relu", "MaxPool": "h_maxpool", "AveragePool": "h_avgpool",
        "GlobalAveragePool": "h_avgpool", "Flatten": "h_flatten", "Reshape": "h_reshape",
        "Transpose": "h_transpose", "Squeeze": "h_squeeze", "Unsqueeze": "h_squeeze",
        "Concat": "h_concat", "Identity": "h_identity", "Dropout": "h_identity",
        "Constant": "h_constant",
    }
    CUSTOM = {"Quant", "IntQuant", "BipolarQuant", "Trunc"}

    def run(self):
        g = self.model.graph
        from onnx import numpy_helper

        for init in g.initializer:
            try:
                self.state[init.name] = numpy_helper.to_array(init)
            except Exception as e:  # a corrupt tensor: name it
                raise QonnxImportError(f"{self.where}: initializer {init.name!r} cannot be "
                                       f"read: {e}") from None
        inputs = [i for i in g.input if i.name not in self.state]
        if len(inputs) != 1:
            raise QonnxImportError(f"{self.where}: expected one graph input (the frames), "
                                   f"found {len(inputs)}: {[i.name for i in inputs]}")
        if not g.output:
            raise QonnxImportError(f"{self.where}: the graph has no output")
        tt = inputs[0].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            raise QonnxImportError(f"{self.where}: input {inputs[0].name!r} needs a static "
                                   f"shape (N, ...), got {dims}")
        if tt.elem_type != 1:
            raise QonnxImportError(f"{self.where}: input {inputs[0].name!r} must be float32")
        x = self.b.input("x", tuple(dims[1:]), FloatType(32))
        self.state[inputs[0].name] = FloatIn(x.name)
        for node in _toposort(g, set(self.state), self.where):
            self.node = node
            h = self.HANDLERS.get(node.op_type)
            custom = node.domain in QUANT_DOMAINS
            if h is None or (node.op_type in self.CUSTOM) != custom or \
                    (not custom and node.domain not in ("", "ai.onnx")):
                self.fail(f"op type {node.op_type!r} (domain {node.domain or 'ai.onnx'!r}) has "
                          "no integer lowering in amchw; supported: "
                          + ", ".join(sorted(self.HANDLERS)))
            try:
                out = getattr(self, h)(node)
            except (IRError, LoweringError) as e:
                if isinstance(e, QonnxImportError):
                    raise
                self.fail(str(e))
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError,
                    OverflowError, AttributeError) as e:
                self.fail(f"malformed node ({type(e).__name__}: {e})")
            if not node.output:
                self.fail("node has no output")
            self.state[node.output[0]] = out
            if node.op_type in ("Quant", "IntQuant") and isinstance(out, Codes):
                self.points.append((node.output[0], out.name))
        self.node = None
        # a model returning a Brevitas QuantTensor also exports its scale, zero point and bit
        # width as outputs: constants, which carry nothing to compute; the others are the
        # model's outputs (several for an early-exit network)
        outs = [o for o in g.output if not isinstance(self.state.get(o.name), np.ndarray)]
        if not outs:
            raise QonnxImportError(f"{self.where}: every graph output is a constant")
        finals = []
        for o in outs:
            final = self.get(o.name)
            if isinstance(final, Affine) and final.name in {
                    n.output.name for n in self.b.nodes if n.op.kind in ("Requant", "Quantize")}:
                final = self.as_codes(final)
            if isinstance(final, (Relu, Sum, QConst, np.ndarray, FloatIn, ScaledIn)):
                raise QonnxImportError(f"{self.where}: the graph output {o.name!r} is a "
                                       f"{type(final).__name__} with no integer form; end the "
                                       "model with a quantizer or a Conv/Gemm")
            finals.append(final)
        try:
            graph = self.finish(finals if len(finals) > 1 else finals[0],
                                {"source": "qonnx", "file": self.where})
        except (IRError, LoweringError) as e:
            raise QonnxImportError(f"{self.where}: {e}") from None
        ren = self.b.renamed  # the graph's canonical names
        self.points = [(t, ren.get(v, v)) for t, v in self.points]
        self.points += [(o.name, v) for o, v in zip(outs, graph.outputs)]
        return graph


def _toposort(g, known: set, where: str) -> list:
    """Nodes in an order where every input is produced first; QonnxImportError on a cycle or a
    missing input."""
    nodes = list(g.node)
    produced = set(known)
    out, pending = [], nodes
    while pending:
        rest = []
        for n in pending:
            if all((not i) or i in produced for i in n.input):
                out.append(n)
                produced.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            n = rest[0]
            missing = [i for i in n.input if i and i not in produced]
            raise QonnxImportError(f"{where}: node {n.name or '(unnamed)'!r} ({n.op_type}) "
                                   f"reads {missing}, which no node, initializer or input "
                                   "produces (or the graph has a cycle)")
        pending = rest
    return out


def load_qonnx(src, name: str | None = None, mantissa_bits: int | None = None,
               with_points: bool = False, where: str | None = None, ties: str | None = None):
    """A QONNX file (path) or onnx.ModelProto -> a validated IR graph; with_points=True also
    returns [(ONNX tensor, IR value)] pairs that hold the same codes (quantizer outputs) and,
    last, the graph output.

    ties: whose tie rule the quantizers follow (ir.passes.TIES). "qonnx": the file's own
    rounding modes, as qonnx executes them; "finn": exact halves rounded up, as FINN's
    thresholds do. None: the file's `amchw.ties` metadata (amchw's FINN exports say "finn"),
    else "qonnx"."""
    from amchw.ir.passes import TIES, with_ties

    import onnx

    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        where = str(path)
        if not path.is_file():
            raise QonnxImportError(f"{where}: no such file")
        try:
            model = onnx.load_model_from_string(path.read_bytes())
        except Exception as e:  # protobuf raises several types for corrupt bytes
            raise QonnxImportError(f"{where}: not a readable ONNX model "
                                   f"({type(e).__name__}: {e})") from None
        default = path.stem
    else:
        model, default = src, "qonnx"
        where = where or "<model>"
    if not model.graph.node:
        raise QonnxImportError(f"{where}: the graph has no nodes")
    meta = {p.key: p.value for p in model.metadata_props}
    gname = name or meta.get("amchw.model") or default
    ties = ties or meta.get("amchw.ties") or "qonnx"
    if ties not in TIES:
        raise QonnxImportError(f"{where}: unknown tie rule {ties!r} (expected one of "
                               f"{', '.join(TIES)})")
    imp = _Importer(model, where, gname, mantissa_bits)
    graph = imp.run()
    if TIES[ties] != "half_even":
        graph = with_ties(graph, TIES[ties])
    return (graph, imp.points) if with_points else graph
