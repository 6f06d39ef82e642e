"""Closed-form cycle models of an R x C systolic array running one GEMM O = A (M x K) . B (K x N).

Dataflow -> (spatial rows Sr, spatial columns Sc, temporal T), as in SCALE-Sim v2:
    os: (M, N, K)   each PE keeps one output; A rows enter from the left, B columns from the top
    ws: (K, N, M)   each PE keeps one weight; A streams in from the left, partial sums go down
    is: (K, M, N)   each PE keeps one input;  B streams in from the left, partial sums go down
The GEMM is cut into folds = ceil(Sr/R) * ceil(Sc/C) tiles of at most R x C.

"scalesim" mode reproduces SCALE-Sim v2's compute-cycle accounting: folds run one after another,
each padded to the full array and paying its own fill and drain,
    os: T + R + C - 2 cycles per fold;  ws, is: 2R + C + T - 2 (R more to load the tile),
    total = folds * per_fold - 1 (SCALE-Sim reports the index of the last cycle, counted from 0).

"pipelined" mode is a double-buffered array: the next fold's operands follow the current fold's
without a gap, so the skew of the wavefront is paid once, and a stationary tile is loaded into
shadow registers while the previous one computes:
    os: F*T + R + C - 2         (outputs move to shadow registers and are read out in parallel)
    ws, is: R + (F - 1)*max(T, R) + T + R + C - 2
          (first load R; then a new fold every max(T, R) cycles: the stream port is busy T
           cycles and the next tile's R-cycle load can only start when the previous one
           becomes active; the last fold drains through R + C - 2 PEs)
With F = 1 both modes agree except for SCALE-Sim's -1. docs/simulator.md derives them; the
stepped array (sims.stepped) moves operands register by register and must reach the same
counts.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMINGS = ("pipelined", "scalesim")


def spatial_temporal(dataflow: str, M: int, K: int, N: int) -> tuple[int, int, int]:
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    if dataflow == "is":
        return K, M, N
    raise ValueError(f"unknown dataflow {dataflow!r}; choose os, ws or is")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FoldTiming:
    Sr: int
    Sc: int
    T: int
    row_folds: int
    col_folds: int
    cycles: int                # compute cycles of one GEMM (one group)
    mapping_efficiency: float  # useful PE-slots / (folds * R * C) over the spatial dims

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds


def gemm_cycles(M: int, K: int, N: int, R: int, C: int, dataflow: str,
                timing: str = "pipelined") -> FoldTiming:
    """Compute cycles of one GEMM on an R x C array (no memory stalls)."""
    for name, v in (("M", M), ("K", K), ("N", N), ("R", R), ("C", C)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    Sr, Sc, T = spatial_temporal(dataflow, M, K, N)
    rf, cf = ceil_div(Sr, R), ceil_div(Sc, C)
    folds = rf * cf
    if timing == "scalesim":
        per = T + R + C - 2 if dataflow == "os" else 2 * R + C + T - 2
        cycles = folds * per - 1
    elif timing == "pipelined":
        if dataflow == "os":
            cycles = folds * T + R + C - 2
        else:
            cycles = R + (folds - 1) * max(T, R) + T + R + C - 2
    else:
        raise ValueError(f"unknown timing {timing!r}; choose from {TIMINGS}")
    eff = (Sr * Sc) / (folds * R * C)
    return FoldTiming(Sr, Sc, T, rf, cf, cycles, eff)
