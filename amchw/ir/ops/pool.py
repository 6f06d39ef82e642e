"""Window ops on codes: MaxPool (type unchanged) and AvgPool (an exact window sum, or a
rounded average)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amchw import kernels as K

from ..types import IRError, QType, is_pow2
from .base import (INT32_MAX, Op, Vector, check_rounding, norm_window, pads, pair, qtype,
                   register, spatial, to2d)


@register
@dataclass(frozen=True, eq=False)
class MaxPool(Op):
    """q[n,c,p] = max over the window of x (padded positions are ignored); type unchanged."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    kind = "MaxPool"
    kernels = {"maxpool": ("maxpool2d_i32_ref", "maxpool2d_i32", "maxpool2d_i32")}

    def __post_init__(self) -> None:
        norm_window(self)

    def infer(self, name, ins, bnd):
        x = ins[0]
        qtype(name, self, x)
        sp = spatial(name, self, x.shape, self.kernel, self.stride, self.padding, self.dilation)
        for i, k in enumerate(self.kernel):
            if max(self.padding[i]) >= self.dilation[i] * (k - 1) + 1:
                raise IRError(f"node {name!r} (MaxPool): padding {self.padding[i]} leaves "
                              "windows with no real element")
        return (x.shape[0], *sp), x.dtype

    def out_bound(self, ins, in_bounds):
        return in_bounds[0]

    def run(self, args, in_types, impl):
        nd = len(self.kernel)
        y = impl["maxpool"](np.ascontiguousarray(to2d(args[0], nd)), pair(self.kernel),
                            pair(self.stride), pads(self.padding), pair(self.dilation))
        return y[:, :, 0, :] if nd == 1 else y

    def work(self, in_shapes, out_shape):
        return Vector(int(np.prod(self.kernel)))  # one compare per window element


@register
@dataclass(frozen=True, eq=False)
class AvgPool(Op):
    """Window average of codes, padding holds the code zx and counts (count_include_pad).

    mode "sum": acc = sum(x - zx) over the window, int32 with scale s_x / window size
    (exact; a following Requant rounds once). mode "average": q = round_div(sum(x - zx),
    window size, rounding) + zx, same type as x. A global average pool is the window = the
    whole spatial extent (kernel None in the text form is written out by the builder).
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    mode: str = "sum"
    rounding: str = "half_even"
    out: QType | None = None
    kind = "AvgPool"
    kernels = {"sumpool": ("sumpool2d_i32_ref", "sumpool2d_i32", "sumpool2d_i32"),
               "avgpool": ("avgpool2d_i32_ref", "avgpool2d_i32", "avgpool2d_i32")}

    def __post_init__(self) -> None:
        check_rounding(self.rounding)
        if self.mode not in ("sum", "average"):
            raise IRError(f"AvgPool mode must be 'sum' or 'average', got {self.mode!r}")
        norm_window(self, dilation=False)

    @property
    def window(self) -> int:
        return int(np.prod(self.kernel))

    def infer(self, name, ins, bnd):
        x = ins[0]
        xt = qtype(name, self, x)
        sp = spatial(name, self, x.shape, self.kernel, self.stride, self.padding,
                     (1,) * len(self.kernel))
        if self.window * bnd[0] > INT32_MAX:
            raise IRError(f"node {name!r} (AvgPool): window sum can overflow int32")
        scale = tuple(s / self.window for s in xt.scale)
        dtype = QType(32, True, False, scale, 0, xt.axis) if self.mode == "sum" else xt
        if self.out is not None and self.out != dtype:
            raise IRError(f"node {name!r} (AvgPool): declared output type {self.out} != {dtype}")
        return (x.shape[0], *sp), dtype

    def out_bound(self, ins, in_bounds):
        return self.window * in_bounds[0] if self.mode == "sum" else None

    def run(self, args, in_types, impl):
        nd = len(self.kernel)
        x2 = np.ascontiguousarray(to2d(args[0], nd))
        zx = in_types[0].zero_point
        if self.mode == "sum":
            y = impl["sumpool"](x2, pair(self.kernel), pair(self.stride), pads(self.padding), zx)
        else:
            y = impl["avgpool"](x2, pair(self.kernel), pair(self.stride), pads(self.padding),
                                zx, K.ROUNDING_NAMES[self.rounding])
        return y[:, :, 0, :] if nd == 1 else y

    def work(self, in_shapes, out_shape):
        return Vector(int(np.prod(self.kernel)))  # one add per window element

    def f32_exact(self, in_types, ins_exact):
        return ins_exact and is_pow2(float(self.window))
