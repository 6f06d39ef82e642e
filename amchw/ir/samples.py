"""Sample inputs for any graph, whatever its input shape: what a timing run's integer check
feeds a model that no RadioML profile fits (a single layer, an image CNN, an MLP)."""

from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import Quantize
from .types import QType


def sample_inputs(graph: Graph, n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """(n inputs shaped (n, *input shape), a phrase saying what they are).

    A float input read by a Quantize gets seeded uniform values over the quantizer's range,
    [lo - 1/2, hi + 1/2] x scale (so every code, the clamped ends included, occurs); an
    integer input gets uniform codes over its type's range."""
    rng = np.random.default_rng(seed)
    inp = graph.inputs[0]
    shape = (int(n),) + tuple(inp.shape)
    if isinstance(inp.dtype, QType):
        t = inp.dtype
        x = rng.integers(t.lo, t.hi + 1, size=shape).astype(np.int32)
        return x, f"seeded uniform codes over [{t.lo}, {t.hi}], seed {seed}"
    q = next((nd for nd in graph.nodes if isinstance(nd.op, Quantize)
              and nd.inputs[0] == inp.name), None)
    if q is None:
        x = rng.standard_normal(shape).astype(np.float32)
        return x, f"seeded standard-normal values (no input quantizer), seed {seed}"
    t = q.op.out  # type: ignore[attr-defined]  # a Quantize
    scale = t.scale_array()
    if t.per_channel and len(shape) > 2:
        scale = scale.reshape((1, -1) + (1,) * (len(shape) - 2))
    lo, hi = (t.lo - t.zero_point - 0.5), (t.hi - t.zero_point + 0.5)
    x = (rng.uniform(lo, hi, size=shape) * scale).astype(np.float32)
    return x, (f"seeded uniform values over the input quantizer's range "
               f"[{lo:g}, {hi:g}] x scale, seed {seed}")
