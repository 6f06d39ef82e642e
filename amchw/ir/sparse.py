"""Sparse weights in the IR: the pass that chooses a storage format per Conv/Dense layer.
A layer's weights as a (K, R) matrix, its zeros and the format checks live in formats.py
(re-exported here)."""

from __future__ import annotations

from dataclasses import replace

from .formats import (WeightFormat, check_format, format_error, index_bits, index_extent,
                      min_index_bits, nonzero_mask, pq_codebooks, sparsity, weight_matrix)
from .graph import Graph, Node
from .ops import GRU, Conv, Dense
from .types import IRError
from .validate import validate

__all__ = ["fits", "set_format", "check_format", "format_error", "index_bits", "index_extent",
           "min_index_bits", "nonzero_mask", "pq_codebooks", "sparsity", "weight_matrix"]


def fits(op, fmt: str) -> bool:
    """Whether `op`'s weights can be stored in `fmt`."""
    try:
        check_format("", replace(op, w_format=fmt, index_bits=0))
    except IRError:
        return False
    return True


def set_format(graph: Graph, fmt: str, min_sparsity: float = 0.0, index_bits: int = 0,
               layers=None) -> tuple[Graph, dict[str, str]]:
    """A copy of `graph` whose Conv/Dense layers (all, or those named in `layers`) with at
    least `min_sparsity` zero weights (any, for a PQ format) store them in `fmt`; an N:M
    format goes only to layers whose weights fit it. With no `layers` named, a GRU's
    recurrent layers (inside its cell) are formatted too. Returns (graph, {node: why it was
    left as it was}; a cell's nodes as GRU/node)."""
    err = format_error(fmt)
    if err:
        raise IRError(f"unknown {err}")
    skipped: dict[str, str] = {}
    nodes = []
    wanted = None if layers is None else set(layers)
    for n in graph.nodes:
        op = n.op
        if isinstance(op, GRU) and wanted is None:
            # the recurrent layers inside the cell, costed once per step, are layers too
            cell, why = set_format(op.cell, fmt, min_sparsity, index_bits)
            skipped.update({f"{n.name}/{k}": v for k, v in why.items()})
            op = replace(op, cell=cell)
        elif isinstance(op, (Conv, Dense)) and (wanted is None or n.name in wanted):
            sp = sparsity(op)
            if sp < min_sparsity and WeightFormat(fmt).pq is None:   # PQ is not about zeros
                skipped[n.name] = f"sparsity {sp:.1%} < {min_sparsity:.1%}"
            elif not fits(op, fmt):
                skipped[n.name] = f"its weights do not fit {fmt}"
            else:
                bits = index_bits if fmt in ("csr", "csc") else 0
                op = replace(op, w_format=WeightFormat(fmt), index_bits=bits)
        nodes.append(Node(n.name, op, n.inputs, n.output, n.source) if op is not n.op else n)
    if wanted is not None:
        missing = wanted - {n.name for n in graph.nodes if isinstance(n.op, (Conv, Dense))}
        if missing:
            raise IRError(f"graph {graph.name!r} has no Conv/Dense layer named "
                          f"{', '.join(sorted(missing))}")
    return validate(Graph(graph.name, graph.inputs, tuple(nodes), graph.outputs,
                          graph.meta)), skipped
