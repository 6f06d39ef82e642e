"""The validator: a graph it accepts cannot overflow its int32 accumulators or int64
requantization intermediates, for any input codes its types allow. Each op's rule lives with
the op (ops/); this module walks graphs."""

from __future__ import annotations

from .graph import Graph
from .ops import check_nodes, type_bounds
from .types import QType

__all__ = ["validate", "value_bounds"]


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
        b = n.op.out_bound(ins, type_bounds(ins, [bounds.get(i) for i in n.inputs]))
        bounds[n.output.name] = b
        if isinstance(n.output.dtype, QType):
            out[n.output.name] = b if b is not None else n.output.dtype.max_abs_centered()
    return out


def validate(graph: Graph, input_bounds: dict[str, int] | None = None) -> Graph:
    """Re-infer every node; check declared shapes/types and overflow bounds. Returns the graph.
    input_bounds: a tighter largest |int - zero point| for some graph inputs (a GRU cell's
    per-step accumulators) than their types allow."""
    check_nodes(graph.inputs, graph.nodes, input_bounds)
    return graph
