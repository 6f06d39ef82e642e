"""Shape/type inference and the validator: a graph it accepts cannot overflow its int32
accumulators or int64 requantization intermediates, for any input codes its types allow."""

from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import (GRU, Add, AvgPool, Concat, Conv, Dense, Dequantize, EntropyExit, GateMix, Lut,
                  MaxPool, Mul, Op, Quantize, Requant, Reshape, exit_int64_bounds, exit_params)
from .types import FloatType, IRError, QType, Value

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def acc_type(x: QType, w: QType) -> QType:
    """Type of a Conv/Dense accumulator: int32, scale s_x * s_w (exact in float64), zero point 0."""
    scale = x.scale_array() * w.scale_array()
    return QType(32, True, False, tuple(scale), 0, 1 if len(scale) > 1 else None)


def window_out(size: int, k: int, s: int, pad: tuple[int, int], d: int = 1) -> int:
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def _q(name: str, op: Op, v: Value, what: str = "input") -> QType:
    if not isinstance(v.dtype, QType):
        raise IRError(f"node {name!r} ({op.kind}): {what} {v.name!r} must be an integer tensor, "
                      f"got {v.dtype.short()}")
    return v.dtype


def _channels_ok(name: str, op: Op, n: int, channels: int, what: str) -> None:
    if n not in (1, channels):
        raise IRError(f"node {name!r} ({op.kind}): {what} has {n} entries for {channels} channels")


def _spatial(name, op, shape, kernel, stride, padding, dilation) -> tuple[int, ...]:
    nd = len(kernel)
    if len(shape) != nd + 1:
        raise IRError(f"node {name!r} ({op.kind}): input shape {shape} does not match a "
                      f"{nd}-D window (expected (C, {'L' if nd == 1 else 'H, W'}))")
    out = tuple(window_out(shape[1 + i], kernel[i], stride[i], padding[i], dilation[i])
                for i in range(nd))
    if min(out) < 1:
        raise IRError(f"node {name!r} ({op.kind}): window {kernel} does not fit input {shape}")
    return out


def out_bound(op: Op, ins: list[Value], in_bounds: list[int]) -> int | None:
    """Largest |int - zero point| the op's output can hold, for inputs within in_bounds:
    the weight-exact bound for accumulators (max_k |bias_k| + max|x - zx| * sum|w_k - zw|)."""
    if isinstance(op, (Conv, Dense)):
        w = op.weight.reshape(op.weight.shape[0], -1).astype(np.int64)
        wabs = np.abs(w - op.w_type.zero_point).sum(axis=1) * in_bounds[0]
        if op.bias is not None:
            wabs = wabs + np.abs(op.bias.astype(np.int64))
        return int(wabs.max(initial=0))
    if isinstance(op, AvgPool) and op.mode == "sum":
        return op.window * in_bounds[0]
    if isinstance(op, (MaxPool, Reshape)):
        return in_bounds[0]
    if isinstance(op, Mul):
        return in_bounds[0] * in_bounds[1]
    if isinstance(op, GateMix):  # |(k - z) n + z h| <= k max|n| + |z| (|h| + |n|) ...
        bz, bn, bh = in_bounds
        return op.k * bn + bz * (bh + bn)
    return None  # codes: the type's range


def _bounds(ins: list[Value], in_bounds) -> list[int]:
    out = []
    for i, v in enumerate(ins):
        b = in_bounds[i] if in_bounds is not None and in_bounds[i] is not None else None
        if b is None:
            b = v.dtype.max_abs_centered() if isinstance(v.dtype, QType) else 0
        out.append(b)
    return out


def infer(name: str, op: Op, ins: list[Value], in_bounds=None) -> tuple[tuple[int, ...], QType | FloatType]:
    """Output shape and type of `op` applied to `ins`; IRError naming the node otherwise.
    in_bounds: for each input, the largest |int - zero point| it can hold (None: its type's)."""
    bnd = _bounds(ins, in_bounds)
    if op.n_inputs >= 0 and len(ins) != op.n_inputs:
        raise IRError(f"node {name!r} ({op.kind}): expects {op.n_inputs} input(s), got {len(ins)}")
    if isinstance(op, Quantize):
        x = ins[0]
        if not isinstance(x.dtype, FloatType):
            raise IRError(f"node {name!r} (Quantize): input must be float, got {x.dtype.short()}")
        _channels_ok(name, op, len(op.out.scale), x.shape[0] if x.shape else 1, "scale")
        return x.shape, op.out
    if isinstance(op, (Conv, Dense)):
        x = ins[0]
        xt = _q(name, op, x)
        if xt.bits > 16:
            raise IRError(f"node {name!r} ({op.kind}): input codes of {xt.bits} bits; at most 16 "
                          "(requantize the accumulator first)")
        w = op.weight
        K = w.shape[0]
        _channels_ok(name, op, len(op.w_type.scale), K, "weight scale")
        if w.size and (w.min() < op.w_type.lo or w.max() > op.w_type.hi):
            raise IRError(f"node {name!r} ({op.kind}): weight codes [{w.min()}, {w.max()}] outside "
                          f"{op.w_type.short()} range [{op.w_type.lo}, {op.w_type.hi}]")
        if op.bias is not None and op.bias.shape != (K,):
            raise IRError(f"node {name!r} ({op.kind}): bias shape {op.bias.shape}, expected ({K},)")
        if isinstance(op, Conv):
            C = x.shape[0]
            if C != w.shape[1] * op.groups or K % op.groups:
                raise IRError(f"node {name!r} (Conv): {C} input channels, weight {w.shape} "
                              f"with groups={op.groups} do not agree")
            spatial = _spatial(name, op, x.shape, op.kernel, op.stride, op.padding, op.dilation)
            shape = (K, *spatial)
        else:
            if x.shape != (w.shape[1],):
                raise IRError(f"node {name!r} (Dense): input shape {x.shape} but weight {w.shape} "
                              "(flatten first)")
            shape = (K,)
        from .sparse import check_format

        check_format(name, op)
        want = acc_type(xt, op.w_type)
        if op.out != want:
            raise IRError(f"node {name!r} ({op.kind}): output type must be the int32 accumulator "
                          f"with scale s_x*s_w, got {op.out}")
        # worst case |acc| over every input the type allows: per output channel,
        # max|x - zx| * sum|w - zw| + |bias|
        bound = out_bound(op, ins, [xt.max_abs_centered()])
        if bound > INT32_MAX:
            raise IRError(f"node {name!r} ({op.kind}): accumulator can reach {bound} > 2^31-1 "
                          f"(reduction {w[0].size}, {xt.short()} x {op.w_type.short()}); "
                          "it would overflow int32")
        return shape, want
    if isinstance(op, Requant):
        x = ins[0]
        xt = _q(name, op, x)
        C = x.shape[0] if x.shape else 1
        for what in ("multiplier", "shift", "offset"):
            _channels_ok(name, op, len(getattr(op, what)), C, what)
        _channels_ok(name, op, len(op.out.scale), C, "output scale")
        bound = bnd[0] * int(np.abs(op.multiplier).max()) + int(np.abs(op.offset).max())
        if bound > INT64_MAX:
            raise IRError(f"node {name!r} (Requant): int64 intermediate can reach {bound} > 2^63-1")
        return x.shape, op.out
    if isinstance(op, MaxPool):
        x = ins[0]
        _q(name, op, x)
        sp = _spatial(name, op, x.shape, op.kernel, op.stride, op.padding, op.dilation)
        for i, k in enumerate(op.kernel):
            if max(op.padding[i]) >= op.dilation[i] * (k - 1) + 1:
                raise IRError(f"node {name!r} (MaxPool): padding {op.padding[i]} leaves windows "
                              "with no real element")
        return (x.shape[0], *sp), x.dtype
    if isinstance(op, AvgPool):
        x = ins[0]
        xt = _q(name, op, x)
        sp = _spatial(name, op, x.shape, op.kernel, op.stride, op.padding, (1,) * len(op.kernel))
        if op.window * bnd[0] > INT32_MAX:
            raise IRError(f"node {name!r} (AvgPool): window sum can overflow int32")
        scale = tuple(s / op.window for s in xt.scale)
        dtype = QType(32, True, False, scale, 0, xt.axis) if op.mode == "sum" else xt
        if op.out is not None and op.out != dtype:
            raise IRError(f"node {name!r} (AvgPool): declared output type {op.out} != {dtype}")
        return (x.shape[0], *sp), dtype
    if isinstance(op, Add):
        a, b = ins
        at, bt = _q(name, op, a, "input a"), _q(name, op, b, "input b")
        if a.shape != b.shape:
            raise IRError(f"node {name!r} (Add): input shapes {a.shape} and {b.shape} differ")
        if at.per_channel or bt.per_channel or op.out.per_channel:
            raise IRError(f"node {name!r} (Add): per-channel scales are not supported")
        bound = bnd[0] * abs(op.ma) + bnd[1] * abs(op.mb) + abs(op.offset)
        if bound > INT64_MAX:
            raise IRError(f"node {name!r} (Add): int64 intermediate can overflow")
        return a.shape, op.out
    if isinstance(op, Concat):
        if len(ins) < 1 or len(ins) != len(op.multipliers):
            raise IRError(f"node {name!r} (Concat): {len(ins)} inputs but "
                          f"{len(op.multipliers)} multipliers")
        ax = op.axis - 1
        ref = ins[0].shape
        if not 0 <= ax < len(ref):
            raise IRError(f"node {name!r} (Concat): axis {op.axis} out of range for shape {ref}")
        total = 0
        for j, (v, m) in enumerate(zip(ins, op.multipliers)):
            t = _q(name, op, v)
            if t.per_channel:
                raise IRError(f"node {name!r} (Concat): input {v.name!r} has per-channel scales")
            if len(v.shape) != len(ref) or any(v.shape[i] != ref[i] for i in range(len(ref)) if i != ax):
                raise IRError(f"node {name!r} (Concat): shapes {ref} and {v.shape} differ off the axis")
            if bnd[j] * abs(m) > INT64_MAX:
                raise IRError(f"node {name!r} (Concat): int64 intermediate can overflow")
            total += v.shape[ax]
        shape = list(ref)
        shape[ax] = total
        return tuple(shape), op.out
    if isinstance(op, Reshape):
        x = ins[0]
        xt = _q(name, op, x)
        if int(np.prod(op.shape)) != int(np.prod(x.shape)):
            raise IRError(f"node {name!r} (Reshape): cannot reshape {x.shape} to {op.shape}")
        if xt.per_channel and (not op.shape or op.shape[0] != x.shape[0]):
            raise IRError(f"node {name!r} (Reshape): per-channel type would lose its channel axis")
        return op.shape, xt
    if isinstance(op, Lut):
        x = ins[0]
        xt = _q(name, op, x)
        if xt.per_channel or op.out.per_channel:
            raise IRError(f"node {name!r} (Lut): per-channel types are not supported")
        if op.table.size != xt.hi - xt.lo + 1:
            raise IRError(f"node {name!r} (Lut): {op.table.size} table entries for the "
                          f"{xt.hi - xt.lo + 1} codes of {xt.short()}")
        if op.table.size and (op.table.min() < op.out.lo or op.table.max() > op.out.hi):
            raise IRError(f"node {name!r} (Lut): table entries outside {op.out.short()}")
        return x.shape, op.out
    if isinstance(op, Mul):
        a, b = ins
        at, bt = _q(name, op, a, "input a"), _q(name, op, b, "input b")
        if a.shape != b.shape:
            raise IRError(f"node {name!r} (Mul): input shapes {a.shape} and {b.shape} differ")
        if at.per_channel or bt.per_channel:
            raise IRError(f"node {name!r} (Mul): per-channel scales are not supported")
        if bnd[0] * bnd[1] > INT32_MAX:
            raise IRError(f"node {name!r} (Mul): the product can overflow int32")
        return a.shape, QType(32, True, False, (at.scale[0] * bt.scale[0],), 0)
    if isinstance(op, GateMix):
        z, n, h = ins
        zt, nt, ht = (_q(name, op, v, w) for v, w in zip(ins, ("gate z", "input n", "state h")))
        if not (z.shape == n.shape == h.shape):
            raise IRError(f"node {name!r} (GateMix): shapes {z.shape}, {n.shape}, {h.shape} "
                          "differ")
        if zt.per_channel or nt.per_channel or ht.per_channel:
            raise IRError(f"node {name!r} (GateMix): per-channel scales are not supported")
        if ht.scale != nt.scale:
            raise IRError(f"node {name!r} (GateMix): h and n must share one scale")
        if zt.scale[0] * op.k != 1.0:
            raise IRError(f"node {name!r} (GateMix): gate scale {zt.scale[0]} is not 1/{op.k}")
        if out_bound(op, ins, bnd) > INT32_MAX:
            raise IRError(f"node {name!r} (GateMix): the mix can overflow int32")
        return z.shape, QType(32, True, False, (zt.scale[0] * nt.scale[0],), 0)
    if isinstance(op, GRU):
        return _infer_gru(name, op, ins, bnd)
    if isinstance(op, EntropyExit):
        return _infer_exit(name, op, ins)
    if isinstance(op, Dequantize):
        x = ins[0]
        _q(name, op, x)
        if op.bias is not None:
            _channels_ok(name, op, len(op.bias), x.shape[0] if x.shape else 1, "bias")
        return x.shape, FloatType(64)
    raise IRError(f"node {name!r}: unknown op {type(op).__name__}")


#: the type of EntropyExit's per-frame flag (codes 0 and 1)
EXIT_FLAG = QType(8, False, False, (1.0,), 0)


def _infer_exit(name: str, op: EntropyExit, ins: list[Value]):
    """EntropyExit: per-tensor 1-D logit codes; the tables and constants must be exactly the
    ones its (threshold, scale, n, F, G, r, M) define, and its int64 products must fit."""
    x = ins[0]
    xt = _q(name, op, x, "logits")
    if len(x.shape) != 1 or x.shape[0] < 1:
        raise IRError(f"node {name!r} (EntropyExit): logits must be 1-D (n,), got {x.shape}")
    if xt.per_channel:
        raise IRError(f"node {name!r} (EntropyExit): per-channel logit scales are not "
                      "supported (the logits' differences need one scale)")
    n, s = x.shape[0], xt.scale[0]
    if op.offset is not None:
        if op.offset.shape != (n,):
            raise IRError(f"node {name!r} (EntropyExit): offset has {op.offset.size} entries "
                          f"for {n} logits")
        if np.abs(op.offset).max() >= 2**31:
            raise IRError(f"node {name!r} (EntropyExit): offsets must lie in (-2^31, 2^31)")
    try:
        want = exit_params(op.threshold, s, n, op.frac_bits, op.g_bits, op.shift, op.ln_bits)
        bounds = exit_int64_bounds(s, n, op.frac_bits, op.g_bits, op.shift, op.ln_bits)
    except IRError as e:
        raise IRError(f"node {name!r} (EntropyExit): {e}") from None
    for k, v in want.items():
        got = getattr(op, k)
        same = (np.array_equal(got, v) and got.dtype == v.dtype) if isinstance(v, np.ndarray) \
            else got == v
        if not same:
            raise IRError(f"node {name!r} (EntropyExit): {k} is not the one threshold "
                          f"{op.threshold!r}, logit scale {s!r}, {n} logits, F={op.frac_bits}, "
                          f"G={op.g_bits}, r={op.shift}, M={op.ln_bits} define")
    for k, v in bounds.items():
        if v > INT64_MAX:
            raise IRError(f"node {name!r} (EntropyExit): int64 intermediate {k} can reach {v} "
                          "> 2^63-1")
    return (), EXIT_FLAG


def _infer_gru(name: str, op: GRU, ins: list[Value], bnd: list[int]):
    cell = op.cell
    if not isinstance(cell, Graph):
        raise IRError(f"node {name!r} (GRU): cell is not a graph")
    if tuple(v.name for v in cell.inputs) != GRU.CELL_INPUTS or len(cell.outputs) != 1:
        raise IRError(f"node {name!r} (GRU): the cell must have inputs {GRU.CELL_INPUTS} and "
                      "one output")
    shape = ins[0].shape
    if len(shape) != 2 or any(v.shape != shape for v in ins):
        raise IRError(f"node {name!r} (GRU): inputs must share one (C, T) shape, got "
                      f"{[v.shape for v in ins]}")
    for v, c in zip(ins, cell.inputs):
        _q(name, op, v)
        if c.shape != shape[:1] or c.dtype != v.dtype:
            raise IRError(f"node {name!r} (GRU): cell input {c.name!r} is {c.shape} "
                          f"{c.dtype} but gets ({shape[0]},) {v.dtype} per step")
    h = cell.inputs[3]
    out = cell.values()[cell.outputs[0]]
    if out.shape != h.shape or out.dtype != h.dtype:
        raise IRError(f"node {name!r} (GRU): the cell maps h {h.shape} {h.dtype} to "
                      f"{out.shape} {out.dtype}; the state must keep its shape and type")
    # the cell, validated with the bounds of this node's inputs
    validate(cell, dict(zip(GRU.CELL_INPUTS[:3], bnd)))
    return shape, h.dtype


def value_bounds(graph: Graph) -> dict[str, int]:
    """For every integer value of a validated graph, the largest |int - zero point| it can hold
    for any input codes: the propagated bound where the op gives one (accumulators, pooling,
    reshape), else its type's range. Float values are left out."""
    bounds: dict[str, int | None] = {}
    out: dict[str, int] = {}
    vals = graph.values()
    for v in graph.inputs:
        if isinstance(v.dtype, QType):
            out[v.name] = v.dtype.max_abs_centered()
    for n in graph.nodes:
        ins = [vals[i] for i in n.inputs]
        b = out_bound(n.op, ins, _bounds(ins, [bounds.get(i) for i in n.inputs]))
        bounds[n.output.name] = b
        if isinstance(n.output.dtype, QType):
            out[n.output.name] = b if b is not None else n.output.dtype.max_abs_centered()
    return out


def validate(graph: Graph, input_bounds: dict[str, int] | None = None) -> Graph:
    """Re-infer every node; check declared shapes/types and overflow bounds. Returns the graph.
    input_bounds: a tighter largest |int - zero point| for some graph inputs (a GRU cell's
    per-step accumulators) than their types allow."""
    vals = {v.name: v for v in graph.inputs}
    bounds: dict[str, int | None] = dict(input_bounds or {})
    for n in graph.nodes:
        ins = [vals[i] for i in n.inputs]
        in_b = [bounds.get(i) for i in n.inputs]
        shape, dtype = infer(n.name, n.op, ins, in_b)
        bounds[n.output.name] = out_bound(n.op, ins, _bounds(ins, in_b))
        if n.output.shape != shape or n.output.dtype != dtype:
            raise IRError(f"node {n.name!r} ({n.op.kind}): declared output {n.output.shape} "
                          f"{n.output.dtype} but the op gives {shape} {dtype}")
        vals[n.output.name] = n.output
    return graph
