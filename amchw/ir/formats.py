"""Weight storage formats of Conv/Dense: one typed value, parsed once, and the checks that a
layer's weights fit its format. A format never changes a result, only what hardware stores
and skips (docs/ir.md, "Weight formats")."""

from __future__ import annotations

import re

import numpy as np

from .types import IRError

#: How a Conv/Dense stores its weights (a deployment choice; the result never depends on it):
#: "dense" every weight; "gated" every weight, zero operands gate the multiplier (energy saved,
#: cycles not); "csr" the nonzeros per output (row), "csc" per reduction position (column), with
#: `index_bits` per index; "N:M" (e.g. "2:4") at most N nonzeros in every M consecutive
#: reduction positions, stored with log2(M)-bit offsets. A weight is zero when it equals zw.
#: "pqP:K" (Dense only, e.g. "pq2:256"): product quantization, the outputs split into P
#: subspaces, each input's sub-vector one of K centroids (log2(K)-bit codes, kernels/pq.py).
WEIGHT_FORMATS = ("dense", "gated", "csr", "csc", "N:M", "pqP:K")

_NM = re.compile(r"(\d+):(\d+)")
_PQ = re.compile(r"pq(\d+):(\d+)")


class WeightFormat(str):
    """A weight format: its text (it is a str, so it prints, saves and compares as before)
    with the parse held beside it: `family` ("dense", "gated", "csr", "csc", "nm", "pq"),
    `nm` (N, M) or None, `pq` (P, K) or None. WeightFormat(text) raises IRError on a text that
    is not a format."""

    family: str
    nm: tuple[int, int] | None
    pq: tuple[int, int] | None

    def __new__(cls, text) -> "WeightFormat":
        if isinstance(text, WeightFormat):
            return text
        err = format_error(text)
        if err:
            raise IRError(err)
        self = super().__new__(cls, text)
        m, p = _NM.fullmatch(text), _PQ.fullmatch(text)
        self.nm = (int(m.group(1)), int(m.group(2))) if m else None
        self.pq = (int(p.group(1)), int(p.group(2))) if p else None
        self.family = "nm" if m else "pq" if p else str(text)
        return self

    @property
    def compressed(self) -> bool:
        """Stored without its zeros (csr, csc, N:M) or as PQ codes: the zero-skipping or
        table-lookup kernels run it."""
        return self.family not in ("dense", "gated")

    def __reduce__(self):
        return (WeightFormat, (str(self),))


def format_error(fmt) -> str | None:
    """Why `fmt` is not a weight format, or None."""
    if not isinstance(fmt, str):
        return f"weight format must be a string, got {fmt!r}"
    m, p = _NM.fullmatch(fmt), _PQ.fullmatch(fmt)
    if fmt in WEIGHT_FORMATS[:4] or (m is not None and 1 <= int(m.group(1)) <= int(m.group(2))
                                     <= 64):
        return None
    if p is not None and int(p.group(1)) >= 1 and int(p.group(2)) >= 2 \
            and int(p.group(2)) & (int(p.group(2)) - 1) == 0:
        return None
    return (f"weight format must be dense, gated, csr, csc, N:M (1 <= N <= M <= 64) or pqP:K "
            f"(K a power of two), got {fmt!r}")


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
    log2(M) for N:M offsets; log2(K) for PQ codes; 0 for dense and gated storage."""
    fmt = WeightFormat(op.w_format)
    nm = fmt.nm or fmt.pq
    if nm is not None:
        return max(1, (nm[1] - 1).bit_length())
    ext = index_extent(op)
    if not ext:
        return 0
    return op.index_bits or min_index_bits(ext)


def check_format(name: str, op) -> None:
    """IRError naming the node if its weights do not fit its storage format."""
    fmt = WeightFormat(op.w_format)
    ext = index_extent(op)
    if ext and op.index_bits and op.index_bits < min_index_bits(ext):
        raise IRError(f"node {name!r} ({op.kind}): {op.index_bits}-bit {fmt} indices cannot "
                      f"address {ext} positions (need {min_index_bits(ext)})")
    if fmt.pq is not None:
        pq_codebooks(op, name)  # raises if the weights are not that product quantization
        return
    if fmt.nm is None:
        return
    n, m = fmt.nm
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
    fmt = WeightFormat(op.w_format)
    if fmt.pq is None:
        raise IRError(f"{op.kind}: weight format {fmt} is not product quantization")
    P, K = fmt.pq
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
