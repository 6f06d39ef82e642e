"""A sweep's model variants: each model resolved and lowered once (amchw.resolve), then each
weight format applied to its integer graph, and, with the spec's data file, each variant's
accuracy measured by running its integer graph on the test frames.

Formats on the IR (no retraining: a sweep asks what the hardware does with such weights; a
trained compressed checkpoint given as a model carries its own):
- gated@S, csr@S, csc@S: each Conv/Dense layer's weights magnitude-pruned to sparsity S (the
  round(S x size) codes nearest the zero point set to it, ties broken by position), then stored
  in that format (docs/compression.md: how each format skips zeros);
- N:M: in every group of M consecutive reduction positions the N largest magnitudes kept;
- pqP:K: the first Dense layer with at least K inputs and outputs divisible by P product-
  quantized as the edge-efficient seed's Algorithm 2 on its integer codes: per subspace,
  k-means (K centroids) over the inputs' sub-vectors, centroids rounded to codes.
A checkpoint's or file's weights that already have zeros are pruned further only where S asks
for more. A format that cannot apply (no layer fits) makes the variant an error row."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .spec import Spec, parse_format


@dataclass
class Variant:
    model: str
    format: str
    graph: object | None = None
    error: str | None = None
    skipped: dict = field(default_factory=dict)   # layer -> why it kept dense storage
    accuracy: float | None = None
    acc_by_snr: dict = field(default_factory=dict)
    # an early-exit model with data: threshold -> (exit fraction, accuracy, {snr: accuracy})
    # of the exit rule on the test frames; `graph` then carries the rule (EntropyExit)
    exits: dict | None = None
    exit_output: str | None = None


def _mac_nodes(graph):
    from amchw.ir.ops import Conv, Dense

    return [n for n in graph.nodes if isinstance(n.op, (Conv, Dense))]


def _with_ops(graph, ops: dict):
    """A copy of graph with the ops of the nodes named in `ops` replaced."""
    from amchw.ir.graph import Node

    nodes = tuple(Node(n.name, ops[n.name], n.inputs, n.output, n.source) if n.name in ops
                  else n for n in graph.nodes)
    return replace(graph, nodes=nodes)


def prune_codes(w: np.ndarray, zp: int, sparsity: float) -> np.ndarray:
    """w with its round(sparsity x size) codes of smallest |w - zp| set to zp (stable)."""
    flat = w.reshape(-1)
    k = int(round(sparsity * flat.size))
    if k <= int((flat == zp).sum()):
        return w
    order = np.argsort(np.abs(flat.astype(np.int64) - zp), kind="stable")
    out = flat.copy()
    out[order[:k]] = zp
    return out.reshape(w.shape)


def prune_nm(w: np.ndarray, zp: int, n: int, m: int) -> np.ndarray:
    """w (K, ...) keeping, in each group of m consecutive reduction positions, the n codes of
    largest |w - zp| (the earliest on ties); the rest set to zp."""
    k = w.shape[0]
    mat = w.reshape(k, -1)
    r = mat.shape[1]
    if r % m:
        raise ValueError(f"reduction length {r} is not a multiple of {m}")
    g = mat.reshape(k, r // m, m)
    mag = np.abs(g.astype(np.int64) - zp)
    order = np.argsort(-mag, axis=2, kind="stable")
    keep = np.zeros(g.shape, bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    return np.where(keep, g, zp).astype(w.dtype).reshape(w.shape)


def pq_codes(w: np.ndarray, p: int, k: int, lo: int, hi: int, seed: int = 0) -> np.ndarray:
    """A Dense weight (N outputs x M inputs) product-quantized: for each of the p subspaces of
    the outputs, the inputs' sub-vectors clustered into k centroids (k-means, seeded), each
    replaced by its centroid rounded to a code in [lo, hi]."""
    from sklearn.cluster import KMeans

    n_out, m_in = w.shape
    d = n_out // p
    out = w.copy()
    for s in range(p):
        sub = w[s * d:(s + 1) * d].T.astype(np.float64)   # (M, d)
        if len(np.unique(sub, axis=0)) <= k:
            continue   # already at most k distinct sub-vectors
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(sub)
        cent = np.clip(np.rint(km.cluster_centers_), lo, hi).astype(w.dtype)
        out[s * d:(s + 1) * d] = cent[km.labels_].T
    return out


def apply_format(graph, text: str, seed: int = 0):
    """(graph with the format applied, {layer: why it kept its storage}). ValueError when the
    format applies to no layer."""
    from amchw.ir.ops import Dense
    from amchw.ir.sparse import set_format

    fmt, s = parse_format(text)
    if fmt == "dense":
        return graph, {}
    nodes = _mac_nodes(graph)
    if fmt.startswith("pq"):
        p, k = (int(v) for v in fmt[2:].split(":"))
        dense = [n for n in nodes if isinstance(n.op, Dense) and n.op.weight.shape[1] >= k
                 and n.op.weight.shape[0] % p == 0]
        if not dense:
            raise ValueError(f"{fmt}: no Dense layer with at least {k} inputs and outputs "
                             f"divisible by {p}")
        n = dense[0]
        t = n.op.w_type
        w = pq_codes(n.op.weight, p, k, t.lo, t.hi, seed)
        g = _with_ops(graph, {n.name: replace(n.op, weight=w)})
        g2, skipped = set_format(g, fmt, 0.0, layers=[n.name])
        return g2, skipped
    ops = {}
    if s is not None:   # prune to S, then the zero-skipping format
        for n in nodes:
            w = prune_codes(n.op.weight, n.op.w_type.zero_point, s)
            if w is not n.op.weight:
                ops[n.name] = replace(n.op, weight=w)
    else:               # N:M
        nn, mm = (int(v) for v in fmt.split(":"))
        for n in nodes:
            try:
                w = prune_nm(n.op.weight, n.op.w_type.zero_point, nn, mm)
            except ValueError:
                continue   # set_format records why this layer stays dense
            ops[n.name] = replace(n.op, weight=w)
    g = _with_ops(graph, ops) if ops else graph
    g2, skipped = set_format(g, fmt, 0.0)
    if len(skipped) >= len(nodes):
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise ValueError(f"{text}: no layer can be stored so ({why})")
    return g2, skipped


def resolve(spec: Spec, log=print) -> list[Variant]:
    """Every (model, format) variant of the spec, in grid order, each model lowered once; a
    model or format that fails is a Variant with its error (the sweep records it per point)."""
    from amchw.resolve import RequestError, graph_and_frames

    out = []
    for m, data in spec.models:
        data = data or spec.data
        try:
            graph, _, _ = graph_and_frames(m, spec.scales, spec.weight_bits, spec.act_bits, 4,
                                           spec.seed)
            err = None
        except (RequestError, OSError, ValueError) as e:
            graph, err = None, str(e)
        log(f"[model] {m}" + (f": {err}" if err else ""))
        frames = None
        for f in spec.formats:
            v = Variant(m, f)
            if err:
                v.error = err
            else:
                try:
                    v.graph, v.skipped = apply_format(graph, f, spec.seed)
                except ValueError as e:
                    v.error = f"{m}: {e}"
            if v.graph is not None and data:
                if frames is None:
                    frames = _test_frames(m, graph, data, spec)
                if isinstance(frames, str):
                    v.error = frames
                else:
                    _accuracy(v, *frames)
                    if spec.exit_thresholds != (None,) and len(v.graph.outputs) == 2:
                        _exits(v, spec.exit_thresholds, *frames)
            out.append(v)
    return out


def _test_frames(model: str, graph, data: str, spec: Spec):
    """(x, y, snr) of the data file for this model (a checkpoint's test split, else all
    frames; at most eval_frames), or the error text."""
    from amchw.data.radioml import DatasetError
    from amchw.runs import early_exit_frames

    shape = tuple(graph.inputs[0].shape)
    try:
        x, y, snr, _, _ = early_exit_frames(model, shape, data, spec.eval_frames, spec.seed)
    except (DatasetError, OSError, ValueError) as e:
        return str(e) if str(e).startswith(f"{data}:") else f"{data}: {e}"
    return x, y, snr


def _exits(v: Variant, thresholds, x, y, snr) -> None:
    """An early-exit variant: its integer exit rule (amchw.ir.early_exit) added and run once
    on the test frames; at each threshold, the fraction of frames that leave at the exit and
    the accuracy of the combined decision (the exit's class where it exits, the final one
    elsewhere), overall and per SNR."""
    from amchw.ir.early_exit import add_exit_rule, decide, run_early_exit

    out = v.graph.outputs[0]
    g = add_exit_rule(v.graph, float(thresholds[0]), exit_output=out)
    r = run_early_exit(g, x, "fast", exit_output=out)
    pe, pf = r["exit_logits"].argmax(1), r["final_logits"].argmax(1)
    v.exits = {}
    for t in thresholds:
        flags = decide(g, r["codes"], float(t)).astype(bool)
        ok = np.where(flags, pe, pf) == y
        v.exits[float(t)] = (float(flags.mean()), float(ok.mean()),
                             {int(s): float(ok[snr == s].mean()) for s in np.unique(snr)})
    v.graph, v.exit_output = g, out


def _accuracy(v: Variant, x, y, snr) -> None:
    from amchw.ir.interp import run

    out = run(v.graph, x, "fast")
    logits = out[-1] if isinstance(out, (list, tuple)) else out   # several: the final one
    ok = logits.argmax(axis=1) == y
    v.accuracy = float(ok.mean())
    v.acc_by_snr = {int(s): float(ok[snr == s].mean()) for s in np.unique(snr)}
