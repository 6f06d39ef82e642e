"""Runs a graph on a batch of frames. Backend "ref" (vectorised numpy, the `_ref` twins) defines
the IR's semantics; "numba" (loop kernels) and "fast" (exact GEMM variants) must equal it.
Each op's run lives with the op (ops/); this module walks the graph."""

from __future__ import annotations

import numpy as np

from .backends import BACKENDS, check_input, eval_node, kernels_for
from .fast import plan_for
from .graph import Graph

__all__ = ["BACKENDS", "run", "check_input", "eval_node", "kernels_for"]


def run(graph: Graph, x: np.ndarray, backend: str = "ref", keep: bool = False):
    """Run `graph` on x (N, *input shape). Returns the output array (one output) or a tuple;
    with keep=True returns a dict of every value by name (for per-layer comparison)."""
    impl = kernels_for(backend)
    if backend == "fast" and not keep:
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

