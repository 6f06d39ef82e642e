"""Runs a graph on a batch of frames. Backend "ref" (vectorised numpy, the `_ref` twins) defines
the IR's semantics; "numba" (loop kernels) and "fast" (exact GEMM variants) must equal it."""

from __future__ import annotations

import numpy as np

from amchw import kernels as K
from amchw.kernels import sparse as SK

from .graph import Graph
from .ops import (GRU, Add, AvgPool, Concat, Conv, Dense, Dequantize, EntropyExit, GateMix, Lut,
                  MaxPool, Mul, Quantize, Requant, Reshape, parse_nm, parse_pq)
from .types import IRError, QType

BACKENDS = ("ref", "numba", "fast")

_IMPL = {
    # op kind -> kernel name per backend
    "ref": dict(conv="conv2d_i32_ref", dense="dense_i32_ref", requant="requant_i32_ref",
                quantize="quantize_f64_ref", dequantize="dequantize_f64_ref",
                maxpool="maxpool2d_i32_ref", sumpool="sumpool2d_i32_ref",
                avgpool="avgpool2d_i32_ref", add="add_i32_ref", lut="lut_i32_ref",
                mul="mul_i32_ref", gatemix="gatemix_i32_ref", exit="entropy_exit_i32_ref"),
    "numba": dict(conv="conv2d_i32", dense="dense_i32", requant="requant_i32",
                  quantize="quantize_f64", dequantize="dequantize_f64", maxpool="maxpool2d_i32",
                  sumpool="sumpool2d_i32", avgpool="avgpool2d_i32", add="add_i32", lut="lut_i32",
                  mul="mul_i32", gatemix="gatemix_i32", exit="entropy_exit_i32"),
    "fast": dict(conv="conv2d_i32_gemm", dense="dense_i32_gemm", requant="requant_i32",
                 quantize="quantize_f64", dequantize="dequantize_f64", maxpool="maxpool2d_i32",
                 sumpool="sumpool2d_i32", avgpool="avgpool2d_i32", add="add_i32", lut="lut_i32",
                 mul="mul_i32", gatemix="gatemix_i32", exit="entropy_exit_i32"),
}


def _to2d(x: np.ndarray, nd: int) -> np.ndarray:
    return x[:, :, None, :] if nd == 1 else x


def _pads(padding) -> tuple[int, int, int, int]:
    if len(padding) == 1:
        return (0, 0, padding[0][0], padding[0][1])
    return (padding[0][0], padding[0][1], padding[1][0], padding[1][1])


def _pair(t, fill=1) -> tuple[int, int]:
    return (fill, t[0]) if len(t) == 1 else (t[0], t[1])


def kernels_for(backend: str) -> dict:
    """The kernel functions a backend uses, by role. The numba backend runs compressed weight
    formats (csr, csc, N:M) through the zero-skipping kernels (`sparse`: True); ref and fast
    run every layer dense (the result is the same)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")
    impl = {k: getattr(K, v) for k, v in _IMPL[backend].items()}
    impl["sparse"] = backend == "numba"
    return impl


def eval_node(node, args, in_types, impl) -> np.ndarray:
    """Evaluate one node on given input arrays (used by run and by layer-wise verification)."""
    try:
        return _apply(node.op, args, in_types, impl)
    except (ValueError, IRError) as e:
        raise IRError(f"node {node.name!r} ({node.op.kind}): {e}") from e


def run(graph: Graph, x: np.ndarray, backend: str = "ref", keep: bool = False):
    """Run `graph` on x (N, *input shape). Returns the output array (one output) or a tuple;
    with keep=True returns a dict of every value by name (for per-layer comparison)."""
    impl = kernels_for(backend)
    if backend == "fast" and not keep:
        from .fast import plan_for

        return plan_for(graph)(x)
    x = check_input(graph, x)
    env: dict[str, np.ndarray] = {graph.inputs[0].name: x}
    types = graph.values()
    last_use = {i: k for k, n in enumerate(graph.nodes) for i in n.inputs}
    for k, node in enumerate(graph.nodes):
        env[node.output.name] = eval_node(node, [env[i] for i in node.inputs],
                                          [types[i].dtype for i in node.inputs], impl)
        if not keep:  # free what no later node reads
            for i in node.inputs:
                if last_use[i] == k and i not in graph.outputs:
                    env.pop(i, None)
    if keep:
        return env
    outs = tuple(env[o] for o in graph.outputs)
    return outs[0] if len(outs) == 1 else outs


def check_input(graph: Graph, x) -> np.ndarray:
    """x as an array shaped (N, *the graph's input shape); IRError otherwise."""
    inp = graph.inputs[0]
    x = np.asarray(x)
    if x.ndim != len(inp.shape) + 1 or tuple(x.shape[1:]) != inp.shape:
        raise IRError(f"graph {graph.name!r} expects input (N, {', '.join(map(str, inp.shape))}), "
                      f"got {x.shape}")
    return x


def _i64(v) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_1d(np.asarray(v, dtype=np.int64)))


def _apply(op, args, in_types, impl) -> np.ndarray:
    x = args[0]
    t: QType = in_types[0]
    if isinstance(op, Quantize):
        if not np.all(np.isfinite(x)):
            raise IRError("input frames contain NaN or infinity")
        return impl["quantize"](x, op.out.scale_array(), _i64(op.out.zero_point), op.out.lo,
                                op.out.hi, K.ROUNDING_NAMES[op.rounding])
    if isinstance(op, Conv):
        nd = op.ndim
        w = op.weight if nd == 2 else op.weight[:, :, None, :]
        bias = op.bias if op.bias is not None else np.zeros(op.weight.shape[0], np.int32)
        x2 = np.ascontiguousarray(_to2d(x, nd))
        if impl.get("sparse") and op.w_format not in ("dense", "gated"):
            y = _sparse_conv(op, x2, w, bias, t.zero_point)
        else:
            y = impl["conv"](x2, np.ascontiguousarray(w), bias, t.zero_point,
                             op.w_type.zero_point, _pair(op.stride), _pads(op.padding),
                             _pair(op.dilation), op.groups)
        return y[:, :, 0, :] if nd == 1 else y
    if isinstance(op, Dense):
        bias = op.bias if op.bias is not None else np.zeros(op.weight.shape[0], np.int32)
        if impl.get("sparse") and op.w_format not in ("dense", "gated"):
            return _sparse_dense(op, np.ascontiguousarray(x), bias, t.zero_point)
        return impl["dense"](np.ascontiguousarray(x), op.weight, bias, t.zero_point,
                             op.w_type.zero_point)
    if isinstance(op, Requant):
        return impl["requant"](np.ascontiguousarray(x), op.multiplier, op.shift, op.offset,
                               t.zero_point, op.out.zero_point, op.clamp_lo, op.clamp_hi,
                               K.ROUNDING_NAMES[op.rounding])
    if isinstance(op, MaxPool):
        nd = len(op.kernel)
        y = impl["maxpool"](np.ascontiguousarray(_to2d(x, nd)), _pair(op.kernel),
                            _pair(op.stride), _pads(op.padding), _pair(op.dilation))
        return y[:, :, 0, :] if nd == 1 else y
    if isinstance(op, AvgPool):
        nd = len(op.kernel)
        x2 = np.ascontiguousarray(_to2d(x, nd))
        if op.mode == "sum":
            y = impl["sumpool"](x2, _pair(op.kernel), _pair(op.stride), _pads(op.padding),
                                t.zero_point)
        else:
            y = impl["avgpool"](x2, _pair(op.kernel), _pair(op.stride), _pads(op.padding),
                                t.zero_point, K.ROUNDING_NAMES[op.rounding])
        return y[:, :, 0, :] if nd == 1 else y
    if isinstance(op, Add):
        a, b = args
        ta, tb = in_types
        return impl["add"](np.ascontiguousarray(a), np.ascontiguousarray(b), op.ma, op.mb,
                           op.shift, op.offset, ta.zero_point, tb.zero_point,
                           op.out.zero_point, op.out.lo, op.out.hi, K.ROUNDING_NAMES[op.rounding])
    if isinstance(op, Concat):
        parts = []
        for a, ta, m, s in zip(args, in_types, op.multipliers, op.shifts):
            parts.append(impl["requant"](np.ascontiguousarray(a), _i64(m), _i64(s), _i64(0),
                                         ta.zero_point, op.out.zero_point, op.out.lo, op.out.hi,
                                         K.ROUNDING_NAMES[op.rounding]))
        return np.concatenate(parts, axis=op.axis)
    if isinstance(op, Lut):
        return impl["lut"](np.ascontiguousarray(x), op.table, t.lo)
    if isinstance(op, Mul):
        return impl["mul"](np.ascontiguousarray(args[0]), np.ascontiguousarray(args[1]),
                           in_types[0].zero_point, in_types[1].zero_point)
    if isinstance(op, GateMix):
        z, n, h = (np.ascontiguousarray(a) for a in args)
        return impl["gatemix"](z, n, h, op.k, *(tt.zero_point for tt in in_types))
    if isinstance(op, GRU):
        return run_gru(op, args, impl)
    if isinstance(op, Reshape):
        return np.ascontiguousarray(x).reshape((x.shape[0], *op.shape))
    if isinstance(op, EntropyExit):
        off = op.offset if op.offset is not None else np.zeros(1, np.int64)
        return impl["exit"](np.ascontiguousarray(x), off, t.zero_point, op.shift, op.exp_hi,
                            op.exp_lo, op.frac_bits, op.ln_table, op.ln_bits, op.k_mult,
                            op.c_fix, op.ln2_fix)
    if isinstance(op, Dequantize):
        bias = op.bias if op.bias is not None else np.zeros(1)
        return impl["dequantize"](np.ascontiguousarray(x), t.scale_array(), _i64(t.zero_point),
                                  bias)
    raise IRError(f"no implementation for {op.kind}")


def _stored(op, make):
    """The op's weights in their storage format, converted once per op: kept beside the op's
    fields (a frozen dataclass compares and saves its fields only), so a layer run on many
    batches or time steps is not re-compressed each time."""
    cache = op.__dict__.setdefault("_stored", {})
    if op.w_format not in cache:
        cache[op.w_format] = make()
    return cache[op.w_format]


def _sparse_conv(op: Conv, x2, w, bias, zx) -> np.ndarray:
    """A Conv with compressed filters: the zero-skipping kernel walks each filter's nonzero
    taps."""
    zw = op.w_type.zero_point
    ip, ix, v = _stored(op, lambda: SK.csr_from_dense(
        np.ascontiguousarray(w.reshape(w.shape[0], -1)), zw))
    return SK.conv2d_i32_csr(x2, w.shape, ip, ix, v, bias, zx, zw, _pair(op.stride),
                             _pads(op.padding), _pair(op.dilation), op.groups)


def _sparse_dense(op: Dense, x, bias, zx) -> np.ndarray:
    """A Dense layer by the zero-skipping (or PQ) kernel of its weight format."""
    zw = op.w_type.zero_point
    pq = parse_pq(op.w_format)
    if pq is not None:  # bin-accumulate when the inputs outnumber the centroids
        from amchw.ir.sparse import pq_codebooks

        from amchw.kernels import pq as PQ

        codes, books = _stored(op, lambda: pq_codebooks(op))
        kern = PQ.pq_dense_bins if op.weight.shape[1] > pq[1] else PQ.pq_dense_lookup
        return kern(x, codes, books, bias, zx, zw)
    nm = parse_nm(op.w_format)
    if nm is not None:
        vals, offs = _stored(op, lambda: SK.nm_from_dense(op.weight, nm[0], nm[1], zw))
        return SK.dense_i32_nm(x, vals, offs, nm[1], bias, zx, zw)
    if op.w_format == "csc":
        ip, rows, v = _stored(op, lambda: SK.csc_from_dense(op.weight, zw))
        return SK.dense_i32_csc(x, ip, rows, v, bias, zx, zw, op.weight.shape[0])
    ip, ix, v = _stored(op, lambda: SK.csr_from_dense(op.weight, zw))
    return SK.dense_i32_csr(x, ip, ix, v, bias, zx, zw)


def run_gru(op: GRU, args, impl, trace: list | None = None) -> np.ndarray:
    """The recurrence: the cell graph once per step, each node by the backend's kernels, on
    the whole batch. `trace`, if given, receives each step's cell values (a dict per step)."""
    cell = op.cell
    types = cell.values()
    gi = [np.ascontiguousarray(a) for a in args]
    n, c, steps = gi[0].shape
    h_in = cell.inputs[3]
    h = np.full((n, c), h_in.dtype.zero_point, np.int32)
    out = np.empty((n, c, steps), np.int32)
    for t in range(steps):
        env = {"gi_r": gi[0][:, :, t], "gi_z": gi[1][:, :, t], "gi_n": gi[2][:, :, t], "h": h}
        for node in cell.nodes:
            env[node.output.name] = eval_node(node, [env[i] for i in node.inputs],
                                              [types[i].dtype for i in node.inputs], impl)
        h = env[cell.outputs[0]]
        out[:, :, t] = h
        if trace is not None:
            trace.append(env)
    return out
