"""The validator: a graph it accepts cannot overflow its int32 accumulators or int64
requantization intermediates, for any input codes its types allow. Each op's rule lives with
the op (ops/); this module walks graphs."""

from __future__ import annotations

from .graph import Graph
from .ops import EXIT_FLAG, INT32_MAX, INT64_MAX, Op, acc_type, check_nodes, infer, type_bounds
from .ops import window_out as window_out
from .types import QType, Value

__all__ = ["validate", "value_bounds", "infer", "out_bound", "acc_type", "window_out",
           "EXIT_FLAG", "INT32_MAX", "INT64_MAX"]


def out_bound(op: Op, ins: list[Value], in_bounds: list[int]) -> int | None:
    """Largest |int - zero point| the op's output can hold, for inputs within in_bounds (None:
    the output type's range)."""
    return op.out_bound(ins, in_bounds)


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
