"""The interpreter's backends: which kernel runs each op's roles ("ref" the numpy twins that
define the semantics, "numba" the loop kernels, "fast" exact GEMM variants), gathered from the
ops' own declarations, and the one-node evaluator every executor shares."""

from __future__ import annotations

import numpy as np

from amchw import kernels as K

from .graph import Graph
from .ops import BACKENDS, OPS, eval_node
from .types import IRError

__all__ = ["BACKENDS", "kernels_for", "eval_node", "check_input"]


def kernels_for(backend: str) -> dict:
    """The kernel functions a backend uses, by role (every registered op's `kernels`). The
    numba backend runs compressed weight formats (csr, csc, N:M, pq) through the zero-skipping
    and table kernels (`sparse`: True); ref and fast run every layer dense (the same result)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")
    b = BACKENDS.index(backend)
    impl: dict = {}
    for cls in OPS.values():
        for role, names in cls.kernels.items():
            fn = getattr(K, names[b])
            if impl.setdefault(role, fn) is not fn:
                raise IRError(f"kernel role {role!r} is bound to two kernels on {backend}")
    impl["sparse"] = backend == "numba"
    return impl


def check_input(graph: Graph, x) -> np.ndarray:
    """x as an array shaped (N, *the graph's input shape); IRError otherwise."""
    inp = graph.inputs[0]
    x = np.asarray(x)
    if x.ndim != len(inp.shape) + 1 or tuple(x.shape[1:]) != inp.shape:
        raise IRError(f"graph {graph.name!r} expects input (N, {', '.join(map(str, inp.shape))}), "
                      f"got {x.shape}")
    return x
