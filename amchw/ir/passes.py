"""Graph -> Graph passes that change how a graph is laid out or rounded, never what it
computes on the values it keeps.

- `with_ties(graph, rounding)`: every requantizing op that rounds half to even rounds by
  `rounding` instead. FINN turns each activation quantizer into thresholds at
  (k + 1/2) x scale and counts x >= threshold, so an exact tie goes up (toward +infinity):
  `with_ties(g, "half_up")` is the graph FINN builds. Truncations (floor) are left alone.
- `unit_height(graph)`: a graph of 1-D layers over (C, W) values as the 2-D graph over
  (C, 1, W) with (1, k) windows that FINN maps; the values are the same numbers in the same
  row-major order (the QONNX export writes the file in this form, docs/qonnx.md).
- `pools_per_branch(graph)`: a max pool read by several branches as one pool per branch (the
  form FINN builds; export.finn_form writes the file the same way).
- `avgpool_as_depthwise(graph)`: a summing average pool as the depthwise convolution with unit
  weights of scale 1/N (2-bit narrow) that FINN builds in its place; same accumulators, same
  scale, so the requantizer after it is unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .graph import Graph, GraphBuilder
from .ops import AvgPool, Concat, Conv, MaxPool, acc_type
from .types import IRError, QType, Value

#: tie rules by consumer: what each one builds from a round-half-to-even quantizer
TIES = {"brevitas": "half_even", "qonnx": "half_even", "finn": "half_up"}


def with_ties(graph: Graph, rounding: str) -> Graph:
    """The graph with every half-to-even rounding replaced by `rounding` (meta records it)."""
    nodes = []
    for n in graph.nodes:
        op = n.op
        if getattr(op, "rounding", None) == "half_even":
            op = replace(op, rounding=rounding)  # type: ignore[type-var]
        nodes.append(replace(n, op=op))
    meta = dict(graph.meta)
    meta["ties"] = rounding
    return Graph(graph.name, graph.inputs, tuple(nodes), graph.outputs, meta)


def _is_1d(graph: Graph) -> bool:
    return any(isinstance(n.op, (Conv, MaxPool, AvgPool)) and len(n.op.stride) == 1
               for n in graph.nodes)


def unit_height(graph: Graph) -> Graph:
    """1-D convolutions and pools as 2-D ones with unit height; (C, W) values become
    (C, 1, W). A graph without 1-D layers is returned as it is."""
    if not _is_1d(graph):
        return graph
    b = GraphBuilder(graph.name)
    vals = graph.values()
    for v in graph.inputs:
        shape = v.shape
        if len(shape) == 2:
            shape = (shape[0], 1, shape[1])
        elif len(shape) != 1:
            raise IRError(f"unit_height: input {v.name!r} of shape {v.shape} is not 1-D")
        b.input(v.name, shape, v.dtype)
    for n in graph.nodes:
        op = n.op
        rank_in = [len(vals[i].shape) for i in n.inputs]
        if isinstance(op, Conv) and op.ndim == 1:
            w = op.weight.reshape(op.weight.shape[:2] + (1,) + op.weight.shape[2:])
            op = replace(op, weight=w, stride=(1,) + op.stride,
                         padding=((0, 0),) + op.padding, dilation=(1,) + op.dilation)
        elif isinstance(op, MaxPool) and len(op.kernel) == 1:
            op = replace(op, kernel=(1,) + op.kernel, stride=(1,) + op.stride,
                         padding=((0, 0),) + op.padding, dilation=(1,) + op.dilation)
        elif isinstance(op, AvgPool) and len(op.kernel) == 1:
            op = replace(op, kernel=(1,) + op.kernel, stride=(1,) + op.stride,
                         padding=((0, 0),) + op.padding)
        elif isinstance(op, Concat) and rank_in and rank_in[0] == 2:
            axis = op.axis if op.axis >= 0 else op.axis + 3
            op = replace(op, axis=axis + 1 if axis == 2 else axis)
        elif rank_in and max(rank_in) == 2 and n.op.kind not in (
                "Quantize", "Requant", "Add", "Reshape", "Dequantize", "Mul", "Lut"):
            raise IRError(f"unit_height: node {n.name!r} ({n.op.kind}) has no unit-height "
                          "2-D form")
        out = b.add(n.name, op, n.inputs, n.source)
        if out.name != n.output.name:
            raise IRError(f"unit_height: node {n.name!r} renamed to {out.name!r}")
    g = b.build(graph.outputs, dict(graph.meta))
    for n in g.nodes:  # every value kept its numbers: same size, and rank up by one at most
        old = vals[n.output.name]
        if int(np.prod(old.shape)) != int(np.prod(n.output.shape)):
            raise IRError(f"unit_height: node {n.name!r} changed size {old.shape} -> "
                          f"{n.output.shape}")
    return g


def avgpool_as_depthwise(graph: Graph) -> Graph:
    """Every AvgPool in "sum" mode as Conv(groups = channels, unit weights, scale 1/N)."""
    if not any(isinstance(n.op, AvgPool) for n in graph.nodes):
        return graph
    b = GraphBuilder(graph.name)
    for v in graph.inputs:
        b.input(v.name, v.shape, v.dtype)
    for n in graph.nodes:
        op = n.op
        if isinstance(op, AvgPool):
            if op.mode != "sum" or any(any(p) for p in op.padding):
                raise IRError(f"avgpool_as_depthwise: node {n.name!r} is not an unpadded sum")
            xt = b.value(n.inputs[0]).dtype
            if not isinstance(xt, QType):
                raise IRError(f"avgpool_as_depthwise: node {n.name!r} reads a float tensor")
            C = b.value(n.inputs[0]).shape[0]
            win = int(np.prod(op.kernel))
            wt = QType(2, True, True, (float(np.float32(1.0 / win)),), 0, None)
            op = Conv(np.ones((C, 1) + tuple(op.kernel), np.int32), None, wt, op.stride,
                       op.padding, (1,) * len(op.kernel), C, acc_type(xt, wt))
        out = b.add(n.name, op, n.inputs, n.source)
        if out.name != n.output.name:
            raise IRError(f"avgpool_as_depthwise: node {n.name!r} renamed to {out.name!r}")
    return b.build(graph.outputs, dict(graph.meta))


def pools_per_branch(graph: Graph) -> Graph:
    """Every MaxPool read by several nodes as one MaxPool per reader (readers sorted by
    source, then name); copy k is named from the source `<pool source>.r<k>`, as the QONNX
    import names the copies export.finn_form.pools_per_branch writes."""
    readers: dict = {}
    for n in graph.nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)
    split = {n.output.name: n for n in graph.nodes
             if isinstance(n.op, MaxPool) and len(readers.get(n.output.name, ())) > 1}
    if not split:
        return graph
    if any(o in split for o in graph.outputs):
        raise IRError("pools_per_branch: a max pool read by branches is a graph output")
    copy_of: dict = {}           # (pool value, reader name) -> the copy's value name
    b = GraphBuilder(graph.name)
    for v in graph.inputs:
        b.input(v.name, v.shape, v.dtype)
    for n in graph.nodes:
        if n.output.name in split:
            rs = sorted(readers[n.output.name], key=lambda r: (r.source, r.name))
            for k, r in enumerate(rs):
                src = f"{n.source}.r{k}"
                out = b.add(src.replace(".", "_"), n.op, n.inputs, src)
                copy_of[(n.output.name, r.name)] = out.name
            continue
        ins = [copy_of.get((i, n.name), i) for i in n.inputs]
        out = b.add(n.name, n.op, ins, n.source)
        if out.name != n.output.name:
            raise IRError(f"pools_per_branch: node {n.name!r} renamed to {out.name!r}")
    return b.build(graph.outputs, dict(graph.meta))


__all__ = ["TIES", "avgpool_as_depthwise", "pools_per_branch", "unit_height", "with_ties",
           "Value"]
