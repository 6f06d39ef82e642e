"""IR graph -> the work a MAC array and its vector unit do, layer by layer.

Every Conv and Dense becomes a GEMM view O (M x N) = A (M x K) . B (K x N) per group:
  Conv:  M = batch * output pixels, K = kernel taps x input channels per group, N = filters per
         group (im2col; a grouped conv is `groups` independent GEMMs, run one after the other);
  Dense: M = batch, K = inputs, N = outputs.
Everything else (Quantize, Requant, MaxPool, AvgPool, Add, Concat, Lut, Mul, GateMix,
Dequantize, EntropyExit) runs on the vector unit and is counted in element operations; Reshape
is free.
A GRU node becomes the views of its cell graph, named "<gru>/<cell node>", each repeated once
per time step (`repeat`): the recurrence runs its steps one after the other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amchw.ir.graph import Graph
from amchw.ir.ops import GRU, Add, AvgPool, Conv, Dense, EntropyExit, GateMix, MaxPool, Reshape


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
    return -(-batch * int(np.prod(v.shape)) * v.dtype.bits // 8)


def layers(graph: Graph, batch: int = 1) -> list:
    """GemmView or VectorOp per node, in graph order (Reshape skipped: a view)."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    return _layers(graph, batch, "", 1)


def _layers(graph: Graph, batch: int, prefix: str, repeat: int) -> list:
    vals = graph.values()
    out = []
    for n in graph.nodes:
        op = n.op
        if isinstance(op, GRU):
            out += _layers(op.cell, batch, f"{prefix}{n.name}/", repeat * n.output.shape[-1])
            continue
        ob = _bytes(n.output, batch)
        ib = sum(_bytes(vals[i], batch) for i in n.inputs)
        if isinstance(op, (Conv, Dense)):
            k_ = op.weight.shape[0]
            if isinstance(op, Conv):
                g = op.groups
                kred = int(np.prod(op.weight.shape[1:]))
                pix = int(np.prod(n.output.shape[1:]))
                name = f"Conv{op.ndim}d"
            else:
                g, kred, pix, name = 1, op.weight.shape[1], 1, "Dense"
            out.append(GemmView(prefix + n.name, name, batch * pix, kred, k_ // g, g, batch, ib,
                                -(-op.weight.size * op.w_type.bits // 8), ob, op.w_type.bits,
                                repeat))
        elif isinstance(op, Reshape):
            continue
        else:
            elems = batch * int(np.prod(n.output.shape))
            if isinstance(op, (MaxPool, AvgPool)):
                per = int(np.prod(op.kernel))  # one compare/add per window element
            elif isinstance(op, Add):
                per = 3  # two rescales and an add
            elif isinstance(op, GateMix):
                per = 2  # two multiply-adds
            elif isinstance(op, EntropyExit):
                # one flag per frame from n logits: 12 operations per logit (offset, max,
                # difference, split, two table reads, product and rounding shift, S and A
                # accumulations) and 16 per frame (leading bit, log interpolation, the two
                # products and the comparison): EntropyExit.ops_per_frame
                per = op.ops_per_frame(int(np.prod(vals[n.inputs[0]].shape)))
            else:  # Requant, Quantize, Dequantize, Concat: one multiply-add-shift-clamp;
                per = 1  # Lut: one table read; Mul: one multiply
            out.append(VectorOp(prefix + n.name, op.kind, elems, per, ib, ob, repeat))
    return out
