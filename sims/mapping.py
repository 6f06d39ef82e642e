"""IR graph -> the work a MAC array and its vector unit do, layer by layer.

Every Conv and Dense becomes a GEMM view O (M x N) = A (M x K) . B (K x N) per group:
  Conv:  M = batch * output pixels, K = kernel taps x input channels per group, N = filters per
         group (im2col; a grouped conv is `groups` independent GEMMs, run one after the other);
  Dense: M = batch, K = inputs, N = outputs.
Everything else runs on the vector unit and is counted in element operations; Reshape is free.
Each op states its work itself (`Op.work`: Gemm, Vector, Free or Recur, in ir/ops/); this module
prices it in bytes for a batch. A GRU node becomes the views of its cell graph, named
"<gru>/<cell node>", each repeated once per time step (`repeat`): the recurrence runs its steps
one after the other."""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np

from amchw.ir.graph import Graph
from amchw.ir.ops import Free, Gemm, Recur, Vector
from amchw.ir.types import IRError


@dataclass(frozen=True)
class GemmView:
    """One compute layer as GEMMs: `groups` products of (M x K) . (K x N)."""
    node: str
    op: str              # Conv1d / Conv2d / Dense
    M: int               # output pixels x batch
    K: int               # reduction length
    N: int               # filters (per group)
    groups: int
    batch: int
    in_bytes: int        # bytes of the layer's input tensor (the ifmap, not its im2col)
    w_bytes: int         # bytes of the weights
    out_bytes: int       # bytes of the output tensor the array writes (int32 accumulators)
    w_bits: int
    repeat: int = 1      # times the GEMM runs (a recurrent cell's steps); sizes are per run

    @property
    def macs(self) -> int:
        return self.repeat * self.groups * self.M * self.K * self.N


@dataclass(frozen=True)
class VectorOp:
    """A non-GEMM layer: `elements` output elements, `ops_per_element` vector operations each."""
    node: str
    op: str
    elements: int
    ops_per_element: int
    in_bytes: int
    out_bytes: int
    repeat: int = 1      # times the op runs (a recurrent cell's steps); sizes are per run

    @property
    def ops(self) -> int:
        return self.repeat * self.elements * self.ops_per_element


def _bytes(v, batch: int) -> int:
    return -(-batch * math.prod(v.shape) * v.dtype.bits // 8)


def layers(graph: Graph, batch: int = 1) -> list:
    """GemmView or VectorOp per node, in graph order (Reshape skipped: a view)."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    # a graph is immutable: its views per batch size are kept with it (a sweep simulates one
    # graph on many targets; pickling drops the cache, amchw.ir.graph.Graph.__getstate__)
    cache = graph.__dict__.get("_layer_views")
    if cache is None:
        cache = {}
        object.__setattr__(graph, "_layer_views", cache)
    if batch not in cache:
        cache[batch] = tuple(_layers(graph, batch, "", 1))
    return list(cache[batch])


def _layers(graph: Graph, batch: int, prefix: str, repeat: int) -> list:
    vals = graph.values()
    out = []
    for n in graph.nodes:
        work = n.op.work([vals[i].shape for i in n.inputs], n.output.shape)
        if isinstance(work, Recur):  # a recurrent cell: its views once per step
            out += _layers(work.graph, batch, f"{prefix}{n.name}/", repeat * work.steps)
            continue
        if isinstance(work, Free):
            continue
        ob = _bytes(n.output, batch)
        ib = sum(_bytes(vals[i], batch) for i in n.inputs)
        if isinstance(work, Gemm):
            out.append(GemmView(prefix + n.name, work.label, batch * work.pixels, work.K, work.N,
                                work.groups, batch, ib, -(-work.w_count * work.w_bits // 8), ob,
                                work.w_bits, repeat))
        elif isinstance(work, Vector):
            elems = batch * int(np.prod(n.output.shape))
            out.append(VectorOp(prefix + n.name, n.op.kind, elems, work.ops_per_element, ib, ob,
                                repeat))
        else:
            raise IRError(f"node {n.name!r} ({n.op.kind}): cost mapping gave {work!r}, not "
                          "a Gemm, Vector, Free or Recur")
    return out
