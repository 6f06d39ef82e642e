"""Early exit in the IR: add_exit_rule() appends to an early-exit graph the integer decision
(EntropyExit) on its exit head's logit codes, as one more output; float_exit() and entropy10()
are the early-exit seed's float rule (softmax, base-10 entropy, <= T) it is checked against.
A graph without the rule is unchanged and runs as before."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from .graph import Graph, Node
from .ops import Dequantize, EntropyExit
from .types import IRError, QType, Value
from .ops import EXIT_FLAG
from .validate import validate

#: the name of the flag output add_exit_rule appends
EXIT_OUTPUT = "exit"
#: the seed's default threshold on the base-10 entropy
DEFAULT_THRESHOLD = 0.05


def entropy10(logits) -> np.ndarray:
    """-sum p log10 p of softmax(logits) over the last axis, in float64 (H = ln Z - sum p z
    with z shifted to max 0, so nothing overflows); 1 for ten equal logits."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    u = np.exp(z)
    Z = u.sum(axis=-1)
    h = np.log(Z) - (u * z).sum(axis=-1) / Z
    return np.maximum(h, 0.0) / np.log(10.0)


def float_exit(logits, threshold: float) -> np.ndarray:
    """The seed's rule: a frame leaves at the exit when entropy10(logits) <= threshold."""
    return entropy10(logits) <= threshold


def exit_node(graph: Graph) -> Node | None:
    """The graph's EntropyExit node, or None."""
    found = [n for n in graph.nodes if isinstance(n.op, EntropyExit)]
    if len(found) > 1:
        raise IRError(f"graph {graph.name!r} has {len(found)} exit decisions; expected one")
    return found[0] if found else None


def _folded_offset(dq: Node, t: QType, n: int) -> np.ndarray | None:
    """The Dequantize's float bias as integer codes: None when it is absent or zero; IRError
    naming the node when it is not an exact multiple of the logit scale."""
    b = getattr(dq.op, "bias", None)
    if b is None or not np.any(b):
        return None
    b = np.broadcast_to(b, (n,))
    s = Fraction(t.scale[0])
    out = []
    for i, v in enumerate(b):
        k = Fraction(float(v)) / s
        if k.denominator != 1 or abs(k) >= 2**31:
            raise IRError(f"node {dq.name!r} (Dequantize): float bias {float(v)!r} of logit {i} "
                          f"is not an integer multiple (below 2^31) of the logit scale "
                          f"{t.scale[0]!r}; the integer exit decision cannot fold it "
                          "(quantize the exit head's bias)")
        out.append(int(k))
    return np.array(out, np.int64)


def add_exit_rule(graph: Graph, threshold: float = DEFAULT_THRESHOLD,
                  exit_output: str = "out0", name: str = EXIT_OUTPUT, frac_bits: int = 24,
                  ln_bits: int = 8) -> Graph:
    """`graph` with an EntropyExit node `name` on the logit codes that feed `exit_output`'s
    Dequantize, placed right after it, and `name` appended to the outputs (uint8 flag per
    frame, 1 = leave at the exit)."""
    if exit_output not in graph.outputs:
        raise IRError(f"graph {graph.name!r} has no output {exit_output!r} (outputs: "
                      f"{', '.join(graph.outputs)})")
    if exit_node(graph) is not None:
        raise IRError(f"graph {graph.name!r} already has an exit decision")
    vals = graph.values()
    if name in vals:
        raise IRError(f"graph {graph.name!r} already has a value named {name!r}")
    k = next(i for i, n in enumerate(graph.nodes) if n.output.name == exit_output)
    dq = graph.nodes[k]
    if not isinstance(dq.op, Dequantize):
        raise IRError(f"output {exit_output!r} comes from node {dq.name!r} ({dq.op.kind}), not "
                      "a Dequantize of logit codes")
    src = vals[dq.inputs[0]]
    t = src.dtype
    if not isinstance(t, QType) or len(src.shape) != 1:
        raise IRError(f"node {dq.name!r}: the exit logits {src.name!r} must be 1-D codes")
    if t.per_channel:
        raise IRError(f"node {dq.name!r}: the exit logits {src.name!r} have per-channel scales; "
                      "the entropy decision needs one scale")
    n = src.shape[0]
    op = EntropyExit.make(threshold, t.scale[0], n, _folded_offset(dq, t, n),
                          frac_bits=frac_bits, ln_bits=ln_bits)
    node = Node(name, op, (src.name,), Value(name, (), EXIT_FLAG), f"exit rule on {exit_output}")
    nodes = graph.nodes[:k + 1] + (node,) + graph.nodes[k + 1:]
    return validate(Graph(graph.name, graph.inputs, nodes, graph.outputs + (name,),
                          dict(graph.meta)))


def with_threshold(graph: Graph, threshold: float) -> Graph:
    """The graph with its exit decision moved to another threshold (only c_fix changes)."""
    node, op, scale, n = _need_exit(graph)
    op = op.with_threshold(threshold, scale, n)
    nodes = tuple(replace(n, op=op) if n is node else n for n in graph.nodes)
    return validate(replace(graph, nodes=nodes))


def _need_exit(graph: Graph) -> tuple[Node, EntropyExit, float, int]:
    """The exit node, its op, and its logits' scale and count."""
    node = exit_node(graph)
    if node is None or not isinstance(node.op, EntropyExit):
        raise IRError(f"graph {graph.name!r} has no exit decision (add_exit_rule)")
    src = graph.values()[node.inputs[0]]
    if not isinstance(src.dtype, QType):
        raise IRError(f"graph {graph.name!r}: the exit decision reads a float tensor")
    return node, node.op, src.dtype.scale[0], src.shape[0]


def error_bound(graph: Graph) -> float:
    """The margin in base-10 entropy beyond which the graph's integer flag is exact."""
    _, op, scale, n = _need_exit(graph)
    return op.error_bound(scale, n)


def run_early_exit(graph: Graph, x: np.ndarray, backend: str = "fast",
                   exit_output: str = "out0", batch: int = 512) -> dict:
    """Run a graph with an exit rule on frames x, `batch` at a time: "flags" (int32 0/1),
    "exit_logits" and "final_logits" (float64 outputs), "codes" (the exit's int32 logit
    codes, for re-deciding at other thresholds with decide())."""
    from .interp import run

    node = _need_exit(graph)[0]
    finals = [o for o in graph.outputs if o not in (exit_output, node.output.name)]
    if len(finals) != 1:
        raise IRError(f"graph {graph.name!r}: expected one final output besides "
                      f"{exit_output!r} and {node.output.name!r}, got {finals}")
    want = (exit_output, finals[0], node.output.name, node.inputs[0])
    probe = replace(graph, outputs=tuple(dict.fromkeys(graph.outputs + want[3:])))
    pos = [probe.outputs.index(w) for w in want]
    parts = []
    for a in range(0, x.shape[0], batch):
        outs = run(probe, x[a:a + batch], backend)
        parts.append([outs[i] for i in pos])
    if not parts:
        n = graph.values()[node.inputs[0]].shape[0]
        parts = [[np.zeros((0, n)), np.zeros((0, n)), np.zeros(0, np.int32),
                  np.zeros((0, n), np.int32)]]
    cat = [np.concatenate([p[i] for p in parts]) for i in range(4)]
    return {"exit_logits": cat[0], "final_logits": cat[1], "flags": cat[2], "codes": cat[3]}


def decide(graph: Graph, codes: np.ndarray, threshold: float | None = None,
           backend: str = "fast") -> np.ndarray:
    """The graph's exit decision (at `threshold`, default its own) on logit codes (N, n)."""
    from .interp import eval_node, kernels_for

    g = graph if threshold is None else with_threshold(graph, threshold)
    node = _need_exit(g)[0]
    t = g.values()[node.inputs[0]].dtype
    return eval_node(node, [np.ascontiguousarray(codes, dtype=np.int32)], [t],
                     kernels_for(backend))


def exit_path(graph: Graph, exit_output: str) -> Graph:
    """The subgraph a frame that leaves at the exit runs: the nodes that the exit head's
    logits (`exit_output`) and the decision of add_exit_rule need (trunk, exit head,
    EntropyExit), with those two as its outputs."""
    from .graph import needed_by

    dec, _, _, _ = _need_exit(graph)
    need = needed_by(graph, [exit_output, dec.output.name])
    nodes = tuple(n for n in graph.nodes if n.name in need)
    return Graph(f"{graph.name}-exit", graph.inputs, nodes, (exit_output, dec.output.name),
                 dict(graph.meta))


def path_times(graph: Graph, x: np.ndarray, exit_output: str, batches=(1, 256),
               min_time: float = 0.5) -> dict[str, float]:
    """Measured CPU time per frame (ms) of the exit path (exit_path) and of the whole graph,
    each run by the fused integer executor on the first b frames of x for each b in
    `batches`: the median of at least 5 timed calls spanning at least `min_time` seconds,
    after one untimed call. Keys "exit@b" and "full@b"."""
    import statistics
    import time

    from .interp import run

    out = {}
    for path, g in (("exit", exit_path(graph, exit_output)), ("full", graph)):
        for b in batches:
            xb = np.ascontiguousarray(x[:b])
            run(g, xb, "fast")
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < 5 or time.perf_counter() - start < min_time:
                t = time.perf_counter()
                run(g, xb, "fast")
                times.append(time.perf_counter() - t)
            out[f"{path}@{xb.shape[0]}"] = statistics.median(times) / xb.shape[0] * 1000
    return out
