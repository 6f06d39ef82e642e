"""What a weight storage format saves on a systolic array (docs/decisions/0004): algorithmic,
actual, gated and skipped MACs, compute cycles, PE-slot efficiency and index metadata of one
Conv/Dense node, from its weights.

In GEMM terms O (M x N) = A (M x K) . B (K x N) per group, B holds the weights: K = the
reduction (inputs, or channels x taps), N = the outputs. The IR's formats, in these terms:
csr lists each output's (column's) nonzero reduction positions, csc each reduction position's
(row's) nonzero outputs, N:M keeps at most N nonzeros in every M consecutive reduction positions
of an output.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, replace

import numpy as np

from amchw.ir.formats import WeightFormat
from amchw.ir.ops import Conv, Dense
from amchw.ir.sparse import index_bits

from .timing import ceil_div, gemm_cycles, spatial_temporal


@dataclass(frozen=True)
class SparseCost:
    format: str
    handling: str             # "none" (dense), "gated", "skipped" (cycles saved too)
    algorithmic_macs: int     # the dense count, all groups
    actual_macs: int          # products with a nonzero weight
    skipped_macs: int         # neither a cycle nor energy spent
    gated_macs: int           # a PE-slot spent, the multiplier gated (energy saved)
    slots: int                # PE-slots spent on the GEMM (mapped PEs x temporal steps)
    cycles: int               # compute cycles, all groups
    slot_efficiency: float    # actual / slots: the busiest-lane and padding losses
    weight_bits: int          # weight values stored (PQ: the codebooks)
    metadata_bits: int        # indices, offsets and pointers stored (PQ: the codes)
    index_bits: int           # bits per index (csr/csc), offset (N:M) or code (PQ); 0 if none
    vector_adds: int = 0      # PQ bin-accumulate: the integer adds into the bins
    table_reads: int = 0      # PQ: centroid (d-vector) reads from the codebooks
    metadata_bits_read: int = 0  # indices/offsets/codes (and pointers) read from SRAM

    def to_dict(self) -> dict:
        return asdict(self)


def _passes(dataflow: str, M: int, K: int, N: int, R: int, C: int) -> int:
    """How many times the weights are streamed from SRAM (sims.memory: os re-reads them per
    row fold, is per column fold, ws once)."""
    ft = gemm_cycles(M, K, N, R, C, dataflow)
    return {"os": ft.row_folds, "ws": 1, "is": ft.col_folds}[dataflow]


def gemm_weights(op) -> np.ndarray:
    """The weights as B (groups, K, N): reduction positions down, outputs across."""
    w = op.weight
    g = op.groups if isinstance(op, Conv) else 1
    kg = w.shape[0] // g
    return np.ascontiguousarray(w.reshape(g, kg, -1).transpose(0, 2, 1))


#: what a layer's weights give every simulation of it (its nonzero mask and count, and per
#: format and column-fold width the temporal lengths of its folds), keyed by the weight
#: array's id and checked against a weak reference to it: a sweep simulates one layer on
#: many arrays, and the weights never change (IR ops are immutable)
_WEIGHTS: dict[int, tuple] = {}


def _weight_facts(op) -> dict:
    w = op.weight
    key = id(w)
    hit = _WEIGHTS.get(key)
    if hit is not None and hit[0]() is w and hit[1] == (op.w_type.zero_point, _groups(op)):
        return hit[2]
    if len(_WEIGHTS) > 4096:   # forget the layers whose weights are gone
        for k in [k for k, v in _WEIGHTS.items() if v[0]() is None]:
            del _WEIGHTS[k]
    B = gemm_weights(op)
    nz = B != op.w_type.zero_point
    facts = {"shape": B.shape, "nz": nz, "nnz": int(nz.sum()), "folds": {}}
    _WEIGHTS[key] = (weakref.ref(w), (op.w_type.zero_point, _groups(op)), facts)
    return facts


def _groups(op) -> int:
    return op.groups if isinstance(op, Conv) else 1


def _fold_lengths(facts: dict, fmt: str, C: int) -> list:
    """Per group, (temporal length, width) of each column fold of C outputs (os): csc, the
    reduction steps with a nonzero in any column of the fold; csr, the busiest lane's
    nonzeros."""
    key = (str(fmt), C)
    if key not in facts["folds"]:
        nz = facts["nz"]
        g, _, N = nz.shape
        out = []
        for gi in range(g):
            widths = []
            for j in range(ceil_div(N, C)):
                cols = nz[gi, :, j * C:(j + 1) * C]
                if fmt == "csc":
                    T = int(cols.any(axis=1).sum())
                else:
                    T = int(cols.sum(axis=0).max(initial=0))
                widths.append((T, cols.shape[1]))
            out.append(widths)
        facts["folds"][key] = out
    return facts["folds"][key]


def _fold_cycles(Ts, R: int, C: int, timing: str) -> int:
    """os folds of temporal lengths Ts (0: the fold is not run), one after the other."""
    Ts = [t for t in Ts if t > 0]
    if not Ts:
        return 0
    if timing == "scalesim":
        return sum(t + R + C - 2 for t in Ts) - 1
    return sum(Ts) + R + C - 2


def pq_gemm(op, M: int, R: int, C: int, dataflow: str, timing: str = "pipelined",
            kernel: str = "auto") -> SparseCost:
    """A Dense layer stored "pqP:K" (M rows of inputs x K_red inputs -> N outputs per row):
    lookup-and-MAC reads K_red * P centroids per row and does the dense MACs on the array
    (a storage saving only); bin-accumulate adds each input into one of K bins per subspace
    (K_red * P vector adds per row) and multiplies the bins by the centroids: P GEMMs of
    M x K x d on the array. "auto": bins when the inputs outnumber the centroids."""
    P, K = op.w_format.pq  # the validator has checked the weights fit it
    n_out, k_red = op.weight.shape
    d = n_out // P
    if kernel == "auto":
        kernel = "bins" if k_red > K else "lookup"
    algorithmic = M * k_red * n_out
    wbits = P * K * d * op.w_type.bits
    ib = max(1, (K - 1).bit_length())
    meta = k_red * P * ib
    if kernel == "lookup":
        cyc = gemm_cycles(M, k_red, n_out, R, C, dataflow, timing).cycles
        # every product of the GEMM is computed (PQ does not skip zeros): actual = slots
        return SparseCost(op.w_format, "lookup", algorithmic, algorithmic, 0, 0, algorithmic,
                          cyc, 1.0, wbits, meta, ib, table_reads=M * k_red * P,
                          metadata_bits_read=M * k_red * P * ib)
    if kernel != "bins":
        raise ValueError(f"PQ kernel must be lookup, bins or auto, got {kernel!r}")
    macs = M * K * n_out
    cyc = P * gemm_cycles(M, K, d, R, C, dataflow, timing).cycles
    return SparseCost(op.w_format, "bins", algorithmic, macs, algorithmic - macs, 0, macs,
                      cyc, 1.0, wbits, meta, ib, vector_adds=M * k_red * P,
                      metadata_bits_read=M * k_red * P * ib)


def sparse_gemm(op, M: int, R: int, C: int, dataflow: str, timing: str = "pipelined",
                fmt: str | None = None) -> SparseCost:
    """The sparse cost of Conv/Dense `op` as an M x K x N GEMM per group (M = output pixels x
    batch) on an R x C array, for its weight format (or `fmt`)."""
    if fmt is None and op.w_format.pq is not None:
        return pq_gemm(op, M, R, C, dataflow, timing)
    if not isinstance(op, (Conv, Dense)):
        raise TypeError("sparse_gemm takes a Conv or Dense op")
    fmt = WeightFormat(fmt or op.w_format)
    facts = _weight_facts(op)
    g, K, N = facts["shape"]
    nnz_total = facts["nnz"]
    algorithmic = g * M * K * N
    actual = M * nnz_total
    wbits = op.w_type.bits
    dense_cycles = g * gemm_cycles(M, K, N, R, C, dataflow, timing).cycles
    nm = fmt.nm
    ib = 0
    if fmt == "dense":
        return SparseCost(fmt, "none", algorithmic, actual, 0, 0, algorithmic, dense_cycles,
                          actual / algorithmic if algorithmic else 1.0, g * K * N * wbits, 0, 0)
    if nm is not None:
        n, m = nm
        Kp = K * n // m
        slots = g * M * Kp * N
        cycles = g * gemm_cycles(M, Kp, N, R, C, dataflow, timing).cycles
        ib = max(1, (m - 1).bit_length())
        return SparseCost(fmt, "skipped", algorithmic, actual, algorithmic - slots,
                          slots - actual, slots, cycles, actual / slots if slots else 1.0,
                          g * Kp * N * wbits, g * Kp * N * ib, ib,
                          metadata_bits_read=_passes(dataflow, M, Kp, N, R, C) * g * Kp * N * ib)
    if fmt in ("csr", "csc"):
        ib = index_bits(op if fmt == op.w_format else replace(op, w_format=fmt, index_bits=0))
        ptr_bits = max(1, nnz_total.bit_length())
        n_ptr = g * ((N + 1) if fmt == "csr" else (K + 1))
        meta = nnz_total * ib + n_ptr * ptr_bits
        stored = nnz_total * wbits
        meta_read = _passes(dataflow, M, K, N, R, C) * meta  # every pass reads the index
        if dataflow != "os":  # the stationary tile serves a shared stream: gated only
            return SparseCost(fmt, "gated", algorithmic, actual, 0, algorithmic - actual,
                              algorithmic, dense_cycles,
                              actual / algorithmic if algorithmic else 1.0, stored, meta, ib,
                              metadata_bits_read=meta_read)
        Sr, Sc, _ = spatial_temporal("os", M, K, N)
        rf = ceil_div(Sr, R)
        cycles = slots = 0
        # csc: the steps with a nonzero in any column of the fold; csr: each lane walks its
        # own nonzeros and the busiest one sets the time
        for widths in _fold_lengths(facts, fmt, C):
            Ts = [T for T, _ in widths for _ in range(rf)]
            cycles += _fold_cycles(Ts, R, C, timing)
            slots += sum(M * w * T for T, w in widths)
        return SparseCost(fmt, "skipped", algorithmic, actual, algorithmic - slots,
                          slots - actual, slots, cycles, actual / slots if slots else 1.0,
                          stored, meta, ib, metadata_bits_read=meta_read)
    if fmt == "gated":
        return SparseCost(fmt, "gated", algorithmic, actual, 0, algorithmic - actual,
                          algorithmic, dense_cycles, actual / algorithmic if algorithmic else 1.0,
                          g * K * N * wbits, 0, 0)
    raise ValueError(f"unknown weight format {fmt!r}")
