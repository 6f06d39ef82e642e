"""Sparse weights in the IR: a Conv/Dense layer's weights as a (K, R) matrix (row = output,
R = reduction in (c, i, j) order), its zeros (codes equal to the zero point), the storage
formats of ops.WEIGHT_FORMATS and their checks, and a pass that chooses a format per layer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .graph import Graph, Node
from .ops import Conv, Dense, format_error, parse_nm, parse_pq
from .types import IRError


def weight_matrix(op) -> np.ndarray:
    """The (K, R) weight codes of a Conv (per group, R = C/g * taps) or Dense."""
    return op.weight.reshape(op.weight.shape[0], -1)


def nonzero_mask(op) -> np.ndarray:
    """True where a weight is not zero (its code differs from the zero point)."""
    return weight_matrix(op) != op.w_type.zero_point


def sparsity(op) -> float:
    """Fraction of zero weights."""
    m = nonzero_mask(op)
    return 1.0 - float(m.mean()) if m.size else 0.0


def index_extent(op) -> int:
    """How many positions one stored index must address: R (csr: a reduction position per
    output row) or K (csc: an output per reduction column)."""
    k_, r_ = weight_matrix(op).shape
    return r_ if op.w_format == "csr" else k_ if op.w_format == "csc" else 0


def min_index_bits(extent: int) -> int:
    """The fewest bits that address `extent` positions (at least 1)."""
    return max(1, int(extent - 1).bit_length())


def index_bits(op) -> int:
    """Bits per stored index of a csr/csc layer (its `index_bits`, or the fewest that work);
    log2(M) for N:M offsets; 0 for dense and gated storage."""
    nm = parse_nm(op.w_format) or parse_pq(op.w_format)
    if nm is not None:  # N:M offsets, PQ codes
        return max(1, (nm[1] - 1).bit_length())
    ext = index_extent(op)
    if not ext:
        return 0
    return op.index_bits or min_index_bits(ext)


def check_format(name: str, op) -> None:
    """IRError naming the node if its weights do not fit its storage format."""
    fmt = op.w_format
    ext = index_extent(op)
    if ext and op.index_bits and op.index_bits < min_index_bits(ext):
        raise IRError(f"node {name!r} ({op.kind}): {op.index_bits}-bit {fmt} indices cannot "
                      f"address {ext} positions (need {min_index_bits(ext)})")
    pq = parse_pq(fmt)
    if pq is not None:
        pq_codebooks(op, name)  # raises if the weights are not that product quantization
        return
    nm = parse_nm(fmt)
    if nm is None:
        return
    n, m = nm
    mask = nonzero_mask(op)
    k_, r_ = mask.shape
    if r_ % m:
        raise IRError(f"node {name!r} ({op.kind}): {n}:{m} needs a reduction length that is "
                      f"a multiple of {m}, got {r_}")
    counts = mask.reshape(k_, r_ // m, m).sum(axis=2)
    if counts.size and counts.max() > n:
        k, g = np.unravel_index(int(np.argmax(counts > n)), counts.shape)
        raise IRError(f"node {name!r} ({op.kind}): output {k}, group {g} holds "
                      f"{int(counts[k, g])} nonzero weights, more than {n}:{m} allows")


def pq_codebooks(op, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(codes int32 (M, P), codebooks int32 (P, K, d)) of a Dense layer stored "pqP:K": its
    weight (N outputs x M inputs) is the seed's W (M x N) transposed; for each subspace p (the
    outputs p*d .. p*d + d - 1) every input's d-vector must be one of at most K distinct
    vectors, which become the codebook (sorted; unused entries repeat the first). IRError
    otherwise."""
    P, K = parse_pq(op.w_format)
    w = op.weight
    n_out, m_in = w.shape
    where = f"node {name!r} (Dense)" if name else "Dense"
    if n_out % P:
        raise IRError(f"{where}: {n_out} outputs do not split into {P} subspaces")
    d = n_out // P
    codes = np.empty((m_in, P), np.int32)
    books = np.empty((P, K, d), np.int32)
    for p in range(P):
        sub = np.ascontiguousarray(w[p * d:(p + 1) * d].T)  # (M, d): each input's sub-vector
        uniq, inv = np.unique(sub, axis=0, return_inverse=True)
        if len(uniq) > K:
            raise IRError(f"{where}: subspace {p} has {len(uniq)} distinct sub-vectors, more "
                          f"than the {K} centroids of {op.w_format}")
        books[p, :len(uniq)] = uniq
        books[p, len(uniq):] = uniq[0]
        codes[:, p] = inv.ravel()
    return codes, books


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
    least `min_sparsity` zero weights store them in `fmt`; an N:M format goes only to layers
    whose weights fit it. Returns (graph, {node: why it was left as it was})."""
    from .validate import validate

    err = format_error(fmt)
    if err:
        raise IRError(f"unknown {err}")
    skipped: dict[str, str] = {}
    nodes = []
    wanted = None if layers is None else set(layers)
    for n in graph.nodes:
        op = n.op
        if isinstance(op, (Conv, Dense)) and (wanted is None or n.name in wanted):
            sp = sparsity(op)
            if sp < min_sparsity:
                skipped[n.name] = f"sparsity {sp:.1%} < {min_sparsity:.1%}"
            elif not fits(op, fmt):
                skipped[n.name] = f"its weights do not fit {fmt}"
            else:
                op = replace(op, w_format=fmt, index_bits=index_bits if fmt in ("csr", "csc")
                             else 0)
        nodes.append(Node(n.name, op, n.inputs, n.output, n.source) if op is not n.op else n)
    if wanted is not None:
        missing = wanted - {n.name for n in graph.nodes if isinstance(n.op, (Conv, Dense))}
        if missing:
            raise IRError(f"graph {graph.name!r} has no Conv/Dense layer named "
                          f"{', '.join(sorted(missing))}")
    return validate(Graph(graph.name, graph.inputs, tuple(nodes), graph.outputs,
                          graph.meta)), skipped
