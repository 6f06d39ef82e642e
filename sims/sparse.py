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

from dataclasses import asdict, dataclass, replace

import numpy as np

from amchw.ir.ops import Conv, Dense, parse_nm
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
    weight_bits: int          # weight values stored
    metadata_bits: int        # indices, offsets and pointers stored
    index_bits: int           # bits per index (csr/csc) or offset (N:M); 0 if none

    def to_dict(self) -> dict:
        return asdict(self)


def gemm_weights(op) -> np.ndarray:
    """The weights as B (groups, K, N): reduction positions down, outputs across."""
    w = op.weight
    g = op.groups if isinstance(op, Conv) else 1
    kg = w.shape[0] // g
    return np.ascontiguousarray(w.reshape(g, kg, -1).transpose(0, 2, 1))


def _fold_cycles(Ts, R: int, C: int, timing: str) -> int:
    """os folds of temporal lengths Ts (0: the fold is not run), one after the other."""
    Ts = [t for t in Ts if t > 0]
    if not Ts:
        return 0
    if timing == "scalesim":
        return sum(t + R + C - 2 for t in Ts) - 1
    return sum(Ts) + R + C - 2


def sparse_gemm(op, M: int, R: int, C: int, dataflow: str, timing: str = "pipelined",
                fmt: str | None = None) -> SparseCost:
    """The sparse cost of Conv/Dense `op` as an M x K x N GEMM per group (M = output pixels x
    batch) on an R x C array, for its weight format (or `fmt`)."""
    if not isinstance(op, (Conv, Dense)):
        raise TypeError("sparse_gemm takes a Conv or Dense op")
    fmt = fmt or op.w_format
    B = gemm_weights(op)
    g, K, N = B.shape
    nz = B != op.w_type.zero_point
    nnz_total = int(nz.sum())
    algorithmic = g * M * K * N
    actual = M * nnz_total
    wbits = op.w_type.bits
    dense_cycles = g * gemm_cycles(M, K, N, R, C, dataflow, timing).cycles
    nm = parse_nm(fmt)
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
                          g * Kp * N * wbits, g * Kp * N * ib, ib)
    if fmt in ("csr", "csc"):
        ib = index_bits(op if fmt == op.w_format else replace(op, w_format=fmt, index_bits=0))
        ptr_bits = max(1, nnz_total.bit_length())
        n_ptr = g * ((N + 1) if fmt == "csr" else (K + 1))
        meta = nnz_total * ib + n_ptr * ptr_bits
        stored = nnz_total * wbits
        if dataflow != "os":  # the stationary tile serves a shared stream: gated only
            return SparseCost(fmt, "gated", algorithmic, actual, 0, algorithmic - actual,
                              algorithmic, dense_cycles,
                              actual / algorithmic if algorithmic else 1.0, stored, meta, ib)
        Sr, Sc, _ = spatial_temporal("os", M, K, N)
        rf = ceil_div(Sr, R)
        cycles = slots = 0
        for gi in range(g):
            Ts, widths = [], []
            for j in range(ceil_div(N, C)):
                cols = nz[gi, :, j * C:(j + 1) * C]
                if fmt == "csc":  # steps with a nonzero in any column of the fold
                    T = int(cols.any(axis=1).sum())
                else:  # each lane walks its own nonzeros; the busiest one sets the time
                    T = int(cols.sum(axis=0).max(initial=0))
                Ts += [T] * rf
                widths.append((T, cols.shape[1]))
            cycles += _fold_cycles(Ts, R, C, timing)
            slots += sum(M * w * T for T, w in widths)
        return SparseCost(fmt, "skipped", algorithmic, actual, algorithmic - slots,
                          slots - actual, slots, cycles, actual / slots if slots else 1.0,
                          stored, meta, ib)
    if fmt == "gated":
        return SparseCost(fmt, "gated", algorithmic, actual, 0, algorithmic - actual,
                          algorithmic, dense_cycles, actual / algorithmic if algorithmic else 1.0,
                          g * K * N * wbits, 0, 0)
    raise ValueError(f"unknown weight format {fmt!r}")
