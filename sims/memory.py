"""Memory traffic of one layer: what the array reads from and writes to its on-chip buffers
(SRAM), and what moves over the DRAM link, per operand (ifmap, weights, ofmap).

SRAM, from the fold structure (per group; Sr, Sc, T and rf x cf folds as in sims.timing):
    operand          os               ws               is
    A (ifmap)        cf * M * K       cf * M * K       M * K            elements read
    B (weights)      rf * K * N       K * N            cf * K * N       elements read
    ofmap writes     M * N            rf * M * N       rf * M * N       accumulators written
    ofmap reads      0                (rf-1) * M * N   (rf-1) * M * N   partial sums read back
A stationary operand is read once; a streamed one once per fold along the other spatial
dimension; partial sums of ws/is are accumulated in the output buffer across row folds. A and
B are read at their bit widths (im2col elements: the address generator reads the ifmap window
by window), accumulators at acc_bits. These are exactly the reads and writes the stepped array
makes (tests compare them).

DRAM, layer by layer (no fusion across GEMM layers):
  * weights: fetched once if the layer's weights fit the filter buffer, otherwise once per
    pass that re-reads them (os: rf passes, ws: 1, is: cf passes);
  * ifmap: the input tensor (not its im2col) once if it fits the ifmap buffer, otherwise once
    per pass that re-reads it (os and ws: cf passes, is: 1);
  * a value crosses DRAM (written once by its producer, read once by each consumer) when it
    is the graph input or an output, feeds a GEMM layer, or is larger than the ofmap buffer;
    other values stay on chip. A GEMM's accumulators read by a single Requant never cross:
    the requantizer takes each accumulator as it leaves the array;
  * ws/is run the row folds of one column fold back to back, so T x C partial sums are live
    at a time; when they do not fit the ofmap buffer they spill to DRAM: (rf-1) writes and
    reads of the accumulator tensor.
Fills from DRAM are also SRAM writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .hardware import Target
from .mapping import GemmView
from .timing import FoldTiming


@dataclass(frozen=True)
class Traffic:
    """Bytes moved by one layer (all groups, whole batch)."""
    sram_read_ifmap: int = 0
    sram_read_weights: int = 0
    sram_read_ofmap: int = 0      # partial sums read back (GEMM) or vector-unit inputs
    sram_write_ifmap: int = 0     # fills from DRAM
    sram_write_weights: int = 0
    sram_write_ofmap: int = 0
    dram_read_ifmap: int = 0
    dram_read_weights: int = 0
    dram_read_ofmap: int = 0      # spilled partial sums / values read back from DRAM
    dram_write_ofmap: int = 0

    @property
    def sram_bytes(self) -> int:
        return (self.sram_read_ifmap + self.sram_read_weights + self.sram_read_ofmap
                + self.sram_write_ifmap + self.sram_write_weights + self.sram_write_ofmap)

    @property
    def dram_bytes(self) -> int:
        return (self.dram_read_ifmap + self.dram_read_weights + self.dram_read_ofmap
                + self.dram_write_ofmap)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GemmAccesses:
    """Element accesses of the array to its buffers for one group (the stepped array's counts)."""
    a_reads: int
    b_reads: int
    out_writes: int
    psum_reads: int


def gemm_accesses(M: int, K: int, N: int, ft: FoldTiming, dataflow: str) -> GemmAccesses:
    rf, cf = ft.row_folds, ft.col_folds
    if dataflow == "os":
        return GemmAccesses(cf * M * K, rf * K * N, M * N, 0)
    if dataflow == "ws":
        return GemmAccesses(cf * M * K, K * N, rf * M * N, (rf - 1) * M * N)
    if dataflow == "is":
        return GemmAccesses(M * K, cf * K * N, rf * M * N, (rf - 1) * M * N)
    raise ValueError(f"unknown dataflow {dataflow!r}")


def _bytes(elements: int, bits: int) -> int:
    return -(-elements * bits // 8)


def gemm_traffic(g: GemmView, ft: FoldTiming, dataflow: str, target: Target, a_bits: int,
                 in_dram: bool, out_dram: bool) -> Traffic:
    """Traffic of one GEMM layer. in_dram: its input arrives from DRAM; out_dram: its
    accumulator tensor goes to DRAM (see the module docstring for the rule)."""
    acc = gemm_accesses(g.M, g.K, g.N, ft, dataflow)
    gr = g.groups
    rf, cf = ft.row_folds, ft.col_folds
    passes_a = {"os": cf, "ws": cf, "is": 1}[dataflow]
    passes_b = {"os": rf, "ws": 1, "is": cf}[dataflow]
    w_fits = g.w_bytes <= target.filter_sram_kib * 1024
    in_fits = g.in_bytes <= target.ifmap_sram_kib * 1024
    # ws/is run the row folds of one column fold back to back: T x C partial sums are live
    live_psums = _bytes(ft.T * min(target.cols, ft.Sc), target.acc_bits)
    psums_fit = live_psums <= target.ofmap_sram_kib * 1024
    dram_w = g.w_bytes * (1 if w_fits else passes_b)
    dram_in = (g.in_bytes * (1 if in_fits else passes_a)) if in_dram else 0
    spill = 0 if psums_fit else _bytes(gr * acc.psum_reads, target.acc_bits)
    return Traffic(
        sram_read_ifmap=_bytes(gr * acc.a_reads, a_bits),
        sram_read_weights=_bytes(gr * acc.b_reads, g.w_bits),
        sram_read_ofmap=_bytes(gr * acc.psum_reads, target.acc_bits),
        sram_write_ifmap=dram_in,
        sram_write_weights=dram_w,
        sram_write_ofmap=_bytes(gr * acc.out_writes, target.acc_bits),
        dram_read_ifmap=dram_in,
        dram_read_weights=dram_w,
        dram_read_ofmap=spill,
        dram_write_ofmap=spill + (g.out_bytes if out_dram else 0),
    )


def vector_traffic(in_bytes_on_chip: int, in_bytes_dram: int, out_bytes: int,
                   out_dram: bool) -> Traffic:
    """A vector-unit layer reads its inputs from the ofmap buffer (filled from DRAM for inputs
    that live there) and writes its output there (and to DRAM when the output crosses it)."""
    return Traffic(
        sram_read_ofmap=in_bytes_on_chip + in_bytes_dram,
        sram_write_ofmap=out_bytes + in_bytes_dram,
        dram_read_ofmap=in_bytes_dram,
        dram_write_ofmap=out_bytes if out_dram else 0,
    )
