"""GRU: a recurrence whose step is a graph of the other ops (its cell)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import IRError
from .base import Op, Recur, check_nodes, eval_node, qtype, register


@register
@dataclass(frozen=True, eq=False)
class GRU(Op):
    """A recurrence over the last axis. Inputs gi_r, gi_z, gi_n (C, T): the input projections
    of every step (accumulators). The state h starts at its type's zero point; at step t the
    `cell` graph (inputs gi_r, gi_z, gi_n of shape (C,) and h, one output: the new h, of h's
    type) gives the next state. Output (C, T): h after every step."""

    cell: Any  # an amchw.ir.graph.Graph (graph.py imports the ops, so it is not named here)
    kind = "GRU"
    n_inputs = 3
    # no kernels of its own: each cell node runs on its op's kernels

    CELL_INPUTS = ("gi_r", "gi_z", "gi_n", "h")

    def infer(self, name, ins, bnd):
        cell = self.cell
        if not all(hasattr(cell, a) for a in ("inputs", "nodes", "outputs", "values")):
            raise IRError(f"node {name!r} (GRU): cell is not a graph")
        if tuple(v.name for v in cell.inputs) != GRU.CELL_INPUTS or len(cell.outputs) != 1:
            raise IRError(f"node {name!r} (GRU): the cell must have inputs {GRU.CELL_INPUTS} "
                          "and one output")
        shape = ins[0].shape
        if len(shape) != 2 or any(v.shape != shape for v in ins):
            raise IRError(f"node {name!r} (GRU): inputs must share one (C, T) shape, got "
                          f"{[v.shape for v in ins]}")
        for v, c in zip(ins, cell.inputs):
            qtype(name, self, v)
            if c.shape != shape[:1] or c.dtype != v.dtype:
                raise IRError(f"node {name!r} (GRU): cell input {c.name!r} is {c.shape} "
                              f"{c.dtype} but gets ({shape[0]},) {v.dtype} per step")
        h = cell.inputs[3]
        out = cell.values()[cell.outputs[0]]
        if out.shape != h.shape or out.dtype != h.dtype:
            raise IRError(f"node {name!r} (GRU): the cell maps h {h.shape} {h.dtype} to "
                          f"{out.shape} {out.dtype}; the state must keep its shape and type")
        # the cell, validated with the bounds of this node's inputs
        check_nodes(cell.inputs, cell.nodes, dict(zip(GRU.CELL_INPUTS[:3], bnd)))
        return shape, h.dtype

    def run(self, args, in_types, impl, trace: list | None = None):
        """The recurrence: the cell graph once per step, each node by the backend's kernels, on
        the whole batch. `trace`, if given, receives each step's cell values (a dict a step)."""
        cell = self.cell
        types = cell.values()
        gi = [np.ascontiguousarray(a) for a in args]
        n, c, steps = gi[0].shape
        h = np.full((n, c), cell.inputs[3].dtype.zero_point, np.int32)
        out = np.empty((n, c, steps), np.int32)
        for t in range(steps):
            env = {"gi_r": gi[0][:, :, t], "gi_z": gi[1][:, :, t], "gi_n": gi[2][:, :, t],
                   "h": h}
            for node in cell.nodes:
                env[node.output.name] = eval_node(node, [env[i] for i in node.inputs],
                                                 [types[i].dtype for i in node.inputs], impl)
            h = env[cell.outputs[0]]
            out[:, :, t] = h
            if trace is not None:
                trace.append(env)
        return out

    def work(self, in_shapes, out_shape):
        return Recur(self.cell, out_shape[-1])  # the cell's work, once per time step

