"""The MAC layers: Conv (1-D and 2-D, grouped, dilated) and Dense, int32 accumulators; their
weights may be stored compressed (formats.WeightFormat), which the numba backend runs on the
zero-skipping and product-quantization kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amchw.kernels import pq as PQ
from amchw.kernels import sparse as SK

from ..formats import WeightFormat, check_format, pq_codebooks
from ..types import IRError, QType, is_pow2
from .base import (INT32_MAX, Gemm, Op, acc_type, channels_ok, pads, pair, qtype,
                   register, spatial, to2d)

#: float32 represents every integer below this exactly
F32_EXACT = 2**24


def _check_format(op) -> None:
    try:
        fmt = WeightFormat(op.w_format)
    except IRError as e:
        raise IRError(f"{op.kind} {e}") from None
    object.__setattr__(op, "w_format", fmt)
    if fmt.pq is not None and op.kind != "Dense":
        raise IRError(f"{op.kind}: product quantization (pq) is for Dense layers")
    object.__setattr__(op, "index_bits", int(op.index_bits))
    if not 0 <= op.index_bits <= 32:
        raise IRError(f"{op.kind} index_bits must be in 0..32, got {op.index_bits}")


def _stored(op, make):
    """The op's weights in their storage format, converted once per op: kept beside the op's
    fields (a frozen dataclass compares and saves its fields only), so a layer run on many
    batches or time steps is not re-compressed each time."""
    cache = op.__dict__.setdefault("_stored", {})
    if op.w_format not in cache:
        cache[op.w_format] = make()
    return cache[op.w_format]


class _MacLayer(Op):
    """What Conv and Dense share: int32 accumulators of (x - zx)(w - zw) plus bias."""

    weight: np.ndarray
    bias: np.ndarray | None
    w_type: QType
    out: QType
    w_format: WeightFormat
    index_bits: int

    def _normalise(self) -> None:
        """The weight format parsed, weights and bias as contiguous int32."""
        _check_format(self)
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.int32))
        if self.bias is not None:
            object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, dtype=np.int32))

    def _check_weights(self, name, x) -> QType:
        xt = qtype(name, self, x)
        if xt.bits > 16:
            raise IRError(f"node {name!r} ({self.kind}): input codes of {xt.bits} bits; at most "
                          "16 (requantize the accumulator first)")
        w = self.weight
        k_ = w.shape[0]
        channels_ok(name, self, len(self.w_type.scale), k_, "weight scale")
        if w.size and (w.min() < self.w_type.lo or w.max() > self.w_type.hi):
            raise IRError(f"node {name!r} ({self.kind}): weight codes [{w.min()}, {w.max()}] "
                          f"outside {self.w_type.short()} range [{self.w_type.lo}, "
                          f"{self.w_type.hi}]")
        if self.bias is not None and self.bias.shape != (k_,):
            raise IRError(f"node {name!r} ({self.kind}): bias shape {self.bias.shape}, "
                          f"expected ({k_},)")
        return xt

    def _check_acc(self, name, x, xt) -> QType:
        check_format(name, self)
        want = acc_type(xt, self.w_type)
        if self.out != want:
            raise IRError(f"node {name!r} ({self.kind}): output type must be the int32 "
                          f"accumulator with scale s_x*s_w, got {self.out}")
        # worst case |acc| over every input the type allows: per output channel,
        # max|x - zx| * sum|w - zw| + |bias|
        bound = self.out_bound([x], [xt.max_abs_centered()])
        if bound > INT32_MAX:
            raise IRError(f"node {name!r} ({self.kind}): accumulator can reach {bound} > 2^31-1 "
                          f"(reduction {self.weight[0].size}, {xt.short()} x "
                          f"{self.w_type.short()}); it would overflow int32")
        return want

    def out_bound(self, ins, in_bounds):
        """The weight-exact bound: max_k |bias_k| + max|x - zx| * sum|w_k - zw|."""
        w = self.weight.reshape(self.weight.shape[0], -1).astype(np.int64)
        wabs = np.abs(w - self.w_type.zero_point).sum(axis=1) * in_bounds[0]
        if self.bias is not None:
            wabs = wabs + np.abs(self.bias.astype(np.int64))
        return int(wabs.max(initial=0))

    def _bias(self) -> np.ndarray:
        return self.bias if self.bias is not None else np.zeros(self.weight.shape[0], np.int32)

    def f32_exact(self, in_types, ins_exact):
        # power-of-two scales and every partial sum below 2^24: float32 sums exactly
        xt = in_types[0]
        if not (all(is_pow2(s) for s in xt.scale) and all(is_pow2(s) for s in self.w_type.scale)):
            return False
        return ins_exact and self.out_bound([], [xt.max_abs_centered()]) < F32_EXACT

    def f32_tolerance(self, in_types, ir) -> np.ndarray:
        """float32 summation error bound, in accumulator LSBs: (K + 2) 2^-24 worst|acc| + 1."""
        w = self.weight.reshape(self.weight.shape[0], -1).astype(np.int64)
        bound = np.abs(w - self.w_type.zero_point).sum(axis=1) * in_types[0].max_abs_centered()
        shape = [1] * np.ndim(ir)
        shape[1] = -1
        return np.ceil((w.shape[1] + 2) * 2.0**-24 * bound.reshape(shape)) + 1


@register
@dataclass(frozen=True, eq=False)
class Conv(_MacLayer):
    """acc[n,k,p] = bias[k]
                 + sum_{c in group, r} (xp[n,c,p*stride + r*dilation] - zx) * (w[k,c,r] - zw)

    1-D (weight (K, C/g, KL)) or 2-D (weight (K, C/g, KH, KW)); xp is x padded with the code zx,
    so padding contributes exactly 0. int32 accumulation, wrap modulo 2^32 (never reached in a
    validated graph). Output: int32 accumulator with scale s_x * s_w[k], zero point 0.
    padding: (lo, hi) per spatial dim; stride, dilation: per spatial dim.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    w_type: QType
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int
    out: QType
    w_format: WeightFormat = WeightFormat("dense")  # weight storage (its text will do)
    index_bits: int = 0  # csr/csc: bits per stored index (0: the fewest that address it)
    kind = "Conv"
    kernels = {"conv": ("conv2d_i32_ref", "conv2d_i32", "conv2d_i32_gemm")}

    def __post_init__(self) -> None:
        self._normalise()
        nd = self.weight.ndim - 2
        if nd not in (1, 2):
            raise IRError(f"Conv weight must be 3-D or 4-D, got shape {self.weight.shape}")
        object.__setattr__(self, "stride", tuple(int(s) for s in self.stride))
        object.__setattr__(self, "dilation", tuple(int(s) for s in self.dilation))
        object.__setattr__(self, "padding", tuple((int(a), int(b)) for a, b in self.padding))
        for name in ("stride", "dilation", "padding"):
            if len(getattr(self, name)) != nd:
                raise IRError(f"Conv {name} needs {nd} entries, got {getattr(self, name)}")

    @property
    def ndim(self) -> int:
        return self.weight.ndim - 2

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    def infer(self, name, ins, bnd):
        x = ins[0]
        xt = self._check_weights(name, x)
        w = self.weight
        C = x.shape[0]
        if C != w.shape[1] * self.groups or w.shape[0] % self.groups:
            raise IRError(f"node {name!r} (Conv): {C} input channels, weight {w.shape} "
                          f"with groups={self.groups} do not agree")
        sp = spatial(name, self, x.shape, self.kernel, self.stride, self.padding, self.dilation)
        return (w.shape[0], *sp), self._check_acc(name, x, xt)

    def run(self, args, in_types, impl):
        nd = self.ndim
        w = self.weight if nd == 2 else self.weight[:, :, None, :]
        x2 = np.ascontiguousarray(to2d(args[0], nd))
        zx = in_types[0].zero_point
        if impl.get("sparse") and self.w_format.compressed:
            # the zero-skipping kernel walks each filter's nonzero taps
            zw = self.w_type.zero_point
            ip, ix, v = _stored(self, lambda: SK.csr_from_dense(
                np.ascontiguousarray(w.reshape(w.shape[0], -1)), zw))
            y = SK.conv2d_i32_csr(x2, w.shape, ip, ix, v, self._bias(), zx, zw,
                                  pair(self.stride), pads(self.padding), pair(self.dilation),
                                  self.groups)
        else:
            y = impl["conv"](x2, np.ascontiguousarray(w), self._bias(), zx,
                             self.w_type.zero_point, pair(self.stride), pads(self.padding),
                             pair(self.dilation), self.groups)
        return y[:, :, 0, :] if nd == 1 else y

    def work(self, in_shapes, out_shape):
        # im2col: M = output pixels, K = taps x input channels per group, N = filters per group
        g = self.groups
        return Gemm(f"Conv{self.ndim}d", int(np.prod(out_shape[1:])),
                    int(np.prod(self.weight.shape[1:])), self.weight.shape[0] // g, g,
                    self.weight.size, self.w_type.bits)


@register
@dataclass(frozen=True, eq=False)
class Dense(_MacLayer):
    """acc[n,k] = bias[k] + sum_c (x[n,c] - zx) * (w[k,c] - zw); int32 wrap as Conv.

    Output: int32 accumulator with scale s_x * s_w[k].
    """

    weight: np.ndarray
    bias: np.ndarray | None
    w_type: QType
    out: QType
    w_format: WeightFormat = WeightFormat("dense")  # weight storage (its text will do)
    index_bits: int = 0  # csr/csc: bits per stored index (0: the fewest that address it)
    kind = "Dense"
    kernels = {"dense": ("dense_i32_ref", "dense_i32", "dense_i32_gemm")}

    def __post_init__(self) -> None:
        self._normalise()
        if self.weight.ndim != 2:
            raise IRError(f"Dense weight must be 2-D, got shape {self.weight.shape}")

    def infer(self, name, ins, bnd):
        x = ins[0]
        xt = self._check_weights(name, x)
        if x.shape != (self.weight.shape[1],):
            raise IRError(f"node {name!r} (Dense): input shape {x.shape} but weight "
                          f"{self.weight.shape} (flatten first)")
        return (self.weight.shape[0],), self._check_acc(name, x, xt)

    def run(self, args, in_types, impl):
        x = np.ascontiguousarray(args[0])
        zx = in_types[0].zero_point
        if impl.get("sparse") and self.w_format.compressed:
            return self._run_compressed(x, zx)
        return impl["dense"](x, self.weight, self._bias(), zx, self.w_type.zero_point)

    def _run_compressed(self, x, zx) -> np.ndarray:
        """The zero-skipping (or PQ) kernel of the weight format."""
        zw, fmt, bias = self.w_type.zero_point, self.w_format, self._bias()
        if fmt.pq is not None:  # bin-accumulate when the inputs outnumber the centroids
            codes, books = _stored(self, lambda: pq_codebooks(self))
            kern = PQ.pq_dense_bins if self.weight.shape[1] > fmt.pq[1] else PQ.pq_dense_lookup
            return kern(x, codes, books, bias, zx, zw)
        if fmt.nm is not None:
            n, m = fmt.nm
            vals, offs = _stored(self, lambda: SK.nm_from_dense(self.weight, n, m, zw))
            return SK.dense_i32_nm(x, vals, offs, m, bias, zx, zw)
        if fmt == "csc":
            ip, rows, v = _stored(self, lambda: SK.csc_from_dense(self.weight, zw))
            return SK.dense_i32_csc(x, ip, rows, v, bias, zx, zw, self.weight.shape[0])
        ip, ix, v = _stored(self, lambda: SK.csr_from_dense(self.weight, zw))
        return SK.dense_i32_csr(x, ip, ix, v, bias, zx, zw)

    def work(self, in_shapes, out_shape):
        # M = frames, K = inputs, N = outputs
        return Gemm("Dense", 1, self.weight.shape[1], self.weight.shape[0], 1,
                    self.weight.size, self.w_type.bits)
