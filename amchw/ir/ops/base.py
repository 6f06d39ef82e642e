"""What every IR op is: a frozen dataclass (its schema) whose class also holds its shape and
type inference, its value bound, its kernel roles per backend, its run, its cost mapping and
its verification hooks. The registry OPS (kind -> class) is what validate, interp,
sims.mapping, verify and io dispatch through; an op that lacks a role is an error."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from amchw.kernels.modes import ROUNDING_NAMES

from ..types import FloatType, IRError, QType, Value

ROUNDINGS = tuple(ROUNDING_NAMES)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
#: the backends of the interpreter: "ref" (vectorised numpy twins, the definition), "numba"
#: (loop kernels; compressed weight formats through the zero-skipping kernels), "fast" (exact
#: GEMM variants)
BACKENDS = ("ref", "numba", "fast")

#: kind -> op class, filled by @register
OPS: dict[str, type["Op"]] = {}


def register(cls):
    """Class decorator: enter an op class in OPS under its kind."""
    if cls.kind in OPS:
        raise IRError(f"op kind {cls.kind!r} registered twice")
    OPS[cls.kind] = cls
    return cls


# ------------------------------------------------------------------ cost mapping (data)
# What an op asks of the hardware, per frame; sims.mapping turns it into a GemmView or a
# VectorOp with bytes and batch. The IR states the work, the simulator prices it.

@dataclass(frozen=True)
class Gemm:
    """Multiply-accumulate work: `groups` products (pixels x K) . (K x N) per frame."""
    label: str           # Conv1d / Conv2d / Dense
    pixels: int          # output positions per frame (M = batch * pixels)
    K: int               # reduction length
    N: int               # outputs per group
    groups: int
    w_count: int         # weights stored
    w_bits: int


@dataclass(frozen=True)
class Vector:
    """Vector-unit work: `ops_per_element` operations per output element."""
    ops_per_element: int


@dataclass(frozen=True)
class Free:
    """No work: a view of the same codes (Reshape)."""


@dataclass(frozen=True)
class Recur:
    """The work of `graph`, once per step, `steps` times (a recurrent cell)."""
    graph: Any
    steps: int


# ------------------------------------------------------------------ the base class

class Op:
    """Base: every op is a frozen dataclass; arrays compare by value.

    An op class defines (the "roles"; tests/ir/test_op_registry.py checks each is present):
      infer(name, ins, bounds) -> (shape, dtype)   the validator's rule, IRError naming `name`
      run(args, in_types, impl) -> array           its semantics, on the backend's kernels
      work(in_shapes, out_shape) -> Gemm | Vector | Free | Recur   its cost mapping
      kernels: {role: (ref, numba, fast) kernel names in amchw.kernels}
    and may refine out_bound (the largest |int - zero point| its output can hold), tie_distance
    and f32_exact (the verification hooks: how a float tool can differ from it)."""

    kind = "op"
    n_inputs = 1
    #: role -> kernel function names for the backends ("ref", "numba", "fast")
    kernels: dict[str, tuple[str, str, str]] = {}

    def fields(self) -> tuple:
        """The op's dataclass fields (every concrete op is a frozen dataclass)."""
        return fields(self)  # type: ignore[arg-type]

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in self.fields()
                if isinstance(getattr(self, f.name), np.ndarray)}

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in self.fields()
                if not isinstance(getattr(self, f.name), np.ndarray)}

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return False
        for f in self.fields():
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or not (a.dtype == b.dtype and np.array_equal(a, b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # equal by value, so unhashable

    # -- roles every op defines
    def infer(self, name: str, ins: list[Value], bnd: list[int]):
        raise IRError(f"node {name!r}: op {self.kind} has no inference rule")

    def run(self, args: list[np.ndarray], in_types: list, impl: dict) -> np.ndarray:
        raise IRError(f"no implementation for {self.kind}")

    def work(self, in_shapes: list[tuple], out_shape: tuple):
        raise IRError(f"op {self.kind} has no cost mapping")

    # -- refinements with defaults
    def out_bound(self, ins: list[Value], in_bounds: list[int]) -> int | None:
        """Largest |int - zero point| the output can hold for inputs within in_bounds; None:
        the output type's range."""
        return None

    def tie_distance(self, x: np.ndarray, in_type, channel: np.ndarray) -> np.ndarray:
        """|frac - 1/2| of the exact value the op rounds at some output elements, given their
        inputs `x` (1-D) and channels `channel` (axis 1; 0 for a 1-D tensor); inf where the op
        does not round its input elementwise. See `ties_at`."""
        return np.full(np.shape(x), np.inf)

    def f32_exact(self, in_types: list, ins_exact: bool) -> bool:
        """Does a float32 evaluation (Brevitas, qonnx) give this op's output exactly, given
        inputs it holds exactly (`ins_exact`)?"""
        return ins_exact


def ties_at(op: Op, x_in: np.ndarray, in_type, mask: np.ndarray) -> np.ndarray:
    """op.tie_distance at the elements where `mask` is true (e.g. where two tools differ), in
    the order of x_in[mask]; only those elements are computed (exact arithmetic is slow)."""
    x_in = np.asarray(x_in)
    idx = np.nonzero(mask)
    channel = idx[1] if x_in.ndim > 1 else np.zeros(len(idx[0]), np.intp)
    return op.tie_distance(x_in[idx], in_type, channel)


def defines(cls, role: str) -> bool:
    """Whether op class `cls` defines `role` itself (not the base's refusal)."""
    return getattr(cls, role) is not getattr(Op, role)


# ------------------------------------------------------------------ helpers of the ops

def check_rounding(rounding: str) -> None:
    if rounding not in ROUNDING_NAMES:
        raise IRError(f"unknown rounding {rounding!r}; expected one of {ROUNDINGS}")


def i64(a) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_1d(np.asarray(a, dtype=np.int64)))


def norm_window(op, dilation: bool = True) -> None:
    nd = len(op.kernel)
    object.__setattr__(op, "kernel", tuple(int(k) for k in op.kernel))
    object.__setattr__(op, "stride", tuple(int(s) for s in op.stride))
    object.__setattr__(op, "padding", tuple((int(a), int(b)) for a, b in op.padding))
    if dilation:
        object.__setattr__(op, "dilation", tuple(int(d) for d in op.dilation))
    if nd not in (1, 2) or len(op.stride) != nd or len(op.padding) != nd:
        raise IRError(f"{op.kind}: kernel/stride/padding must all have 1 or 2 entries")
    if min(op.kernel) < 1 or min(op.stride) < 1:
        raise IRError(f"{op.kind}: kernel and stride must be positive")


def acc_type(x: QType, w: QType) -> QType:
    """Type of a Conv/Dense accumulator: int32, scale s_x * s_w (exact in float64), zero point 0."""
    scale = x.scale_array() * w.scale_array()
    return QType(32, True, False, tuple(scale), 0, 1 if len(scale) > 1 else None)


def window_out(size: int, k: int, s: int, pad: tuple[int, int], d: int = 1) -> int:
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def qtype(name: str, op: Op, v: Value, what: str = "input") -> QType:
    """v's integer type, or IRError: the op needs codes there."""
    if not isinstance(v.dtype, QType):
        raise IRError(f"node {name!r} ({op.kind}): {what} {v.name!r} must be an integer tensor, "
                      f"got {v.dtype.short()}")
    return v.dtype


def channels_ok(name: str, op: Op, n: int, channels: int, what: str) -> None:
    if n not in (1, channels):
        raise IRError(f"node {name!r} ({op.kind}): {what} has {n} entries for {channels} channels")


def spatial(name, op, shape, kernel, stride, padding, dilation) -> tuple[int, ...]:
    """Output spatial size of a window op, or IRError when the window does not fit."""
    nd = len(kernel)
    if len(shape) != nd + 1:
        raise IRError(f"node {name!r} ({op.kind}): input shape {shape} does not match a "
                      f"{nd}-D window (expected (C, {'L' if nd == 1 else 'H, W'}))")
    out = tuple(window_out(shape[1 + i], kernel[i], stride[i], padding[i], dilation[i])
                for i in range(nd))
    if min(out) < 1:
        raise IRError(f"node {name!r} ({op.kind}): window {kernel} does not fit input {shape}")
    return out


def type_bounds(ins: list[Value], in_bounds) -> list[int]:
    """Each input's largest |int - zero point|: the given bound, else its type's range."""
    out = []
    for i, v in enumerate(ins):
        b = in_bounds[i] if in_bounds is not None and in_bounds[i] is not None else None
        if b is None:
            b = v.dtype.max_abs_centered() if isinstance(v.dtype, QType) else 0
        out.append(b)
    return out


def infer(name: str, op: Op, ins: list[Value], in_bounds=None):
    """Output shape and type of `op` applied to `ins`; IRError naming the node otherwise.
    in_bounds: for each input, the largest |int - zero point| it can hold (None: its type's)."""
    if type(op) not in OPS.values():
        raise IRError(f"node {name!r}: unknown op {type(op).__name__}")
    if op.n_inputs >= 0 and len(ins) != op.n_inputs:
        raise IRError(f"node {name!r} ({op.kind}): expects {op.n_inputs} input(s), got {len(ins)}")
    return op.infer(name, ins, type_bounds(ins, in_bounds))


def eval_node(node, args, in_types, impl) -> np.ndarray:
    """Evaluate one node on given input arrays (every executor and the layer-by-layer
    verification); an error names the node."""
    try:
        return node.op.run(args, in_types, impl)
    except (ValueError, IRError) as e:
        raise IRError(f"node {node.name!r} ({node.op.kind}): {e}") from e


def check_nodes(inputs, nodes, input_bounds: dict[str, int] | None = None) -> None:
    """Re-infer every node in order; check declared shapes/types and overflow bounds.
    input_bounds: a tighter largest |int - zero point| for some inputs than their types allow."""
    vals = {v.name: v for v in inputs}
    bounds: dict[str, int | None] = dict(input_bounds or {})
    for n in nodes:
        ins = [vals[i] for i in n.inputs]
        in_b = [bounds.get(i) for i in n.inputs]
        shape, dtype = infer(n.name, n.op, ins, in_b)
        bounds[n.output.name] = n.op.out_bound(ins, type_bounds(ins, in_b))
        if n.output.shape != shape or n.output.dtype != dtype:
            raise IRError(f"node {n.name!r} ({n.op.kind}): declared output {n.output.shape} "
                          f"{n.output.dtype} but the op gives {shape} {dtype}")
        vals[n.output.name] = n.output


# ------------------------------------------------------------------ kernel-call helpers

def to2d(x: np.ndarray, nd: int) -> np.ndarray:
    """A 1-D (N, C, L) tensor as unit-height 2-D (N, C, 1, L) for the 2-D kernels."""
    return x[:, :, None, :] if nd == 1 else x


def pads(padding) -> tuple[int, int, int, int]:
    if len(padding) == 1:
        return (0, 0, padding[0][0], padding[0][1])
    return (padding[0][0], padding[0][1], padding[1][0], padding[1][1])


def pair(t, fill=1) -> tuple[int, int]:
    return (fill, t[0]) if len(t) == 1 else (t[0], t[1])


__all__ = ["OPS", "Op", "register", "defines", "Gemm", "Vector", "Free", "Recur", "BACKENDS",
           "ROUNDINGS", "INT32_MAX", "INT64_MAX", "acc_type", "window_out", "infer",
           "check_nodes", "type_bounds", "FloatType"]
