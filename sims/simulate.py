"""simulate(): an IR graph on a hardware target -> cycles, memory traffic and energy per layer.

Per GEMM layer (sims.mapping): closed-form compute cycles of each group (sims.timing, groups
run one after the other), memory traffic (sims.memory), DRAM stall cycles in pipelined mode
(the DRAM link moves dram_bytes_per_cycle while the array computes; a layer lasts
max(compute, DRAM transfer) cycles), energy (sims.energy). Per vector layer:
ceil(ops / vector_lanes) cycles on the vector unit, with the same stall rule. Layers run one
after the other. `scalesim` timing reports compute cycles only (no stalls), as the SCALE-Sim v2
comparison assumes an ideal memory.

Optionally (stepped_check) each GEMM of the batch runs on the stepped array with the real
integer operands of sample frames; its accumulators must equal the kernels' and its cycles the
closed form's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from amchw.ir.graph import Graph
from amchw.ir.ops import GRU, Conv, Dense, Requant, Reshape

from .energy import Energy, energy
from .hardware import DATAFLOW_NAMES, DATAFLOWS, Target, TargetError
from .mapping import GemmView, VectorOp, layers
from .memory import Traffic, gemm_traffic, vector_traffic
from .sparse import SparseCost, sparse_gemm
from .timing import TIMINGS, gemm_cycles

SCHEMA = "amchw.simulate/1"


class SimulationError(ValueError):
    """A model the target cannot run as described (names the layer and the limit)."""


@dataclass
class LayerReport:
    node: str
    op: str
    unit: str                  # "array" or "vector"
    M: int = 0
    K: int = 0
    N: int = 0
    groups: int = 0
    folds: int = 0             # per group
    row_folds: int = 0
    col_folds: int = 0
    macs: int = 0
    vector_ops: int = 0
    compute_cycles: int = 0
    stall_cycles: int = 0
    cycles: int = 0
    utilization: float = 0.0          # macs / (cycles * R * C) (array layers)
    mapping_efficiency: float = 0.0   # used PE slots of the folds (array layers)
    weight_bytes: int = 0
    traffic: Traffic = field(default_factory=Traffic)
    energy: Energy = field(default_factory=Energy)
    stepped_cycles: int | None = None
    stepped_outputs_equal: bool | None = None
    sparse: SparseCost | None = None  # a layer whose weights are stored sparse (sims.sparse)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sparse"] = self.sparse.to_dict() if self.sparse is not None else None
        d["traffic"] = self.traffic.to_dict()
        d["traffic"]["sram_bytes"] = self.traffic.sram_bytes
        d["traffic"]["dram_bytes"] = self.traffic.dram_bytes
        d["energy_pj"] = self.energy.to_dict()
        del d["energy"]
        return d


@dataclass
class SimReport:
    model: str
    target: Target
    dataflow: str
    timing: str
    batch: int
    layers: list
    integer_check: dict | None = None
    stepped: dict | None = None

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.layers)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def energy(self) -> Energy:
        e = Energy()
        for r in self.layers:
            e = e + r.energy
        return e

    @property
    def latency_s(self) -> float:
        return self.cycles / (self.target.freq_mhz * 1e6)

    @property
    def inferences_per_s(self) -> float:
        return self.batch / self.latency_s

    @property
    def physical_limit_fraction(self) -> float:
        """(MACs / (R*C)) / cycles: how close the run comes to every PE busy every cycle."""
        return self.macs / self.target.pes / self.cycles

    def totals(self) -> dict:
        e = self.energy
        return {
            "cycles": self.cycles,
            "stall_cycles": sum(r.stall_cycles for r in self.layers),
            "latency_us": self.latency_s * 1e6,
            "inferences_per_s": self.inferences_per_s,
            "macs": self.macs,
            "macs_per_inference": self.macs // self.batch,
            "physical_limit_fraction": self.physical_limit_fraction,
            "sram_bytes": sum(r.traffic.sram_bytes for r in self.layers),
            "dram_bytes": sum(r.traffic.dram_bytes for r in self.layers),
            "weight_bytes": sum(r.weight_bytes for r in self.layers),
            "energy_pj": e.to_dict(),
            "energy_per_inference_uj": e.total / self.batch * 1e-6,
        }

    def to_dict(self) -> dict:
        t = self.target
        return {
            "schema": SCHEMA,
            "model": self.model,
            "target": t.name,
            "array": {"rows": t.rows, "cols": t.cols},
            "dataflow": self.dataflow,
            "timing": self.timing,
            "batch": self.batch,
            "freq_mhz": t.freq_mhz,
            "layers": [r.to_dict() for r in self.layers],
            "totals": self.totals(),
            "integer_check": self.integer_check,
            "stepped": self.stepped,
            "hardware": t.to_dict(),
        }


def _root(graph: Graph) -> dict:
    """Value -> the value it is a view of (Reshape outputs alias their input)."""
    root: dict[str, str] = {}
    for n in graph.nodes:
        if isinstance(n.op, Reshape):
            root[n.output.name] = root.get(n.inputs[0], n.inputs[0])
    return root


def _dram_values(graph: Graph, target: Target) -> set:
    """Values that cross DRAM (sims.memory): graph input/outputs, GEMM inputs, and values too
    large for the ofmap buffer, except GEMM accumulators that a lone Requant consumes."""
    root = _root(graph)
    vals = graph.values()
    out = {v.name for v in graph.inputs}
    out |= {root.get(o, o) for o in graph.outputs}
    cap = target.ofmap_sram_kib * 1024
    readers: dict = {}
    for n in graph.nodes:
        for i in n.inputs:
            readers.setdefault(root.get(i, i), []).append(n)
        if isinstance(n.op, (Conv, Dense)):
            out.add(root.get(n.inputs[0], n.inputs[0]))
    # accumulators read by a lone Requant are requantized as they leave the array; a GRU's
    # input projections are consumed step by step (computed interleaved with the recurrence)
    streamed = {n.output.name for n in graph.nodes
                if isinstance(n.op, (Conv, Dense)) and n.output.name not in out
                and [type(r.op) for r in readers.get(n.output.name, [])] in ([Requant], [GRU])}
    for name, v in vals.items():
        if name not in root and name not in streamed:
            nbytes = -(-int(np.prod(v.shape)) * v.dtype.bits // 8)
            if nbytes > cap:
                out.add(name)
    return out


def _cell_nodes(graph: Graph) -> dict:
    """'<gru>/<cell node>' -> (cell node, cell values), the names sims.mapping gives them."""
    out = {}
    for n in graph.nodes:
        if isinstance(n.op, GRU):
            cvals = n.op.cell.values()
            for cn in n.op.cell.nodes:
                out[f"{n.name}/{cn.name}"] = (cn, cvals)
    return out


def _repeated(tr: Traffic, repeat: int, weights_once: bool = False) -> Traffic:
    """The traffic of `repeat` runs of a layer; weights that fit their buffer are fetched from
    DRAM once and stay resident across the runs (a recurrent cell's steps)."""
    if repeat == 1:
        return tr
    f = {k: v * repeat for k, v in asdict(tr).items()}
    if weights_once:
        f["sram_write_weights"] = tr.sram_write_weights
        f["dram_read_weights"] = tr.dram_read_weights
    return Traffic(**f)


def _check_operands(graph: Graph, target: Target) -> None:
    vals = graph.values()
    for n in graph.nodes:
        if isinstance(n.op, (Conv, Dense)):
            xt = vals[n.inputs[0]].dtype
            for what, bits in (("activations", getattr(xt, "bits", None)),
                               ("weights", n.op.w_type.bits)):
                if bits is None or bits > target.operand_bits:
                    raise SimulationError(
                        f"layer {n.name!r}: {bits}-bit {what} do not fit the "
                        f"{target.operand_bits}-bit operands of target {target.name!r}")


def simulate(graph: Graph, target: Target, dataflow: str | None = None,
             timing: str = "pipelined", batch: int = 1) -> SimReport:
    """Cycles, traffic and energy of `graph` on `target` for a batch of `batch` frames."""
    dataflow = dataflow or target.dataflow
    if dataflow not in DATAFLOWS:
        raise TargetError(f"--dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    if timing not in TIMINGS:
        raise TargetError(f"--timing must be one of {TIMINGS}, got {timing!r}")
    if not isinstance(batch, int) or batch < 1:
        raise TargetError(f"--batch must be a positive integer, got {batch!r}")
    _check_operands(graph, target)
    R, C = target.rows, target.cols
    root = _root(graph)
    in_dram = _dram_values(graph, target)
    vals = graph.values()
    bw = target.dram_bytes_per_cycle
    reports = []
    inner = _cell_nodes(graph)
    for item in layers(graph, batch):
        if item.node in inner:  # a recurrent cell's node: its values stay on chip
            node, nvals = inner[item.node]
            src, out_dram = list(node.inputs), False
        else:
            node, nvals = graph.node(item.node), vals
            src = [root.get(i, i) for i in node.inputs]
            out_dram = node.output.name in in_dram
        if isinstance(item, GemmView):
            g: GemmView = item
            ft = gemm_cycles(g.M, g.K, g.N, R, C, dataflow, timing)
            compute = g.repeat * g.groups * ft.cycles
            sc = None
            macs, slots = g.macs, g.macs
            if node.op.w_format != "dense":
                # sparse storage (docs/decisions/0004): its cycles, MACs actually multiplied,
                # PE-slots spent, and the stored weights plus metadata in place of the dense
                sc = sparse_gemm(node.op, g.M, R, C, dataflow, timing)
                # PQ bin-accumulate's adds run on the vector unit before the array's GEMMs
                compute = g.repeat * (sc.cycles + math.ceil(sc.vector_adds
                                                            / target.vector_lanes))
                # MACs multiplied: the nonzero products (zeros gated or skipped); PQ computes
                # every product of its GEMMs
                pq = sc.handling in ("lookup", "bins")
                macs = g.repeat * (sc.slots if pq else sc.actual_macs)
                slots = g.repeat * sc.slots
                stored = -(-(sc.weight_bits + sc.metadata_bits) // 8)
                g = replace(g, w_bytes=stored)
            a_bits = nvals[node.inputs[0]].dtype.bits
            tr = gemm_traffic(g, ft, dataflow, target, a_bits, src[0] in in_dram, out_dram)
            if sc is not None and sc.handling in ("lookup", "bins"):
                # PQ: lookup reads a centroid (d values) and its code per input and subspace;
                # bins reads the codes, then each codebook once per row of the batch
                P = node.op.w_format.pq[0]
                d = g.N // P
                wb = node.op.w_type.bits
                bits = (sc.table_reads * (d * wb + sc.index_bits) if sc.handling == "lookup"
                        else sc.vector_adds * sc.index_bits + g.M * sc.weight_bits)
                tr = replace(tr, sram_read_weights=-(-bits // 8))
            elif sc is not None:  # weight reads scale with what is stored (values + indices)
                dense_bits = sc.algorithmic_macs // g.M * node.op.w_type.bits
                tr = replace(tr, sram_read_weights=-(-tr.sram_read_weights
                                                      * (sc.weight_bits + sc.metadata_bits)
                                                      // max(1, dense_bits)))
            tr = _repeated(tr, g.repeat, weights_once=g.w_bytes <= target.filter_sram_kib * 1024)
            stationary = ({"os": 0, "ws": g.K * g.N, "is": g.M * g.K}[dataflow] * g.groups
                          * g.repeat)
            stall = 0
            if timing == "pipelined":
                stall = max(0, math.ceil(tr.dram_bytes / bw) - compute)
            cycles = compute + stall
            e = energy(target, macs=macs, reg_accesses=3 * slots + stationary,
                       sram_bytes=tr.sram_bytes, dram_bytes=tr.dram_bytes, cycles=cycles,
                       vector_ops=g.repeat * sc.vector_adds if sc is not None else 0)
            reports.append(LayerReport(
                node=g.node, op=g.op, unit="array", M=g.M, K=g.K, N=g.N, groups=g.groups,
                folds=ft.folds, row_folds=ft.row_folds, col_folds=ft.col_folds, macs=macs,
                compute_cycles=compute, stall_cycles=stall, cycles=cycles,
                utilization=macs / (cycles * R * C) if cycles else 0.0,
                mapping_efficiency=ft.mapping_efficiency,
                weight_bytes=g.w_bytes, traffic=tr, energy=e, sparse=sc))
        else:
            v: VectorOp = item
            compute = math.ceil(v.ops / target.vector_lanes)
            dram_in = sum(-(-batch * int(np.prod(nvals[i].shape)) * nvals[i].dtype.bits // 8)
                          for i, s in zip(node.inputs, src) if s in in_dram
                          and item.node not in inner)
            tr = _repeated(vector_traffic(v.in_bytes - dram_in, dram_in, v.out_bytes, out_dram),
                           v.repeat)
            stall = 0
            if timing == "pipelined":
                stall = max(0, math.ceil(tr.dram_bytes / bw) - compute)
            cycles = compute + stall
            e = energy(target, vector_ops=v.ops, sram_bytes=tr.sram_bytes,
                       dram_bytes=tr.dram_bytes, cycles=cycles)
            reports.append(LayerReport(node=v.node, op=v.op, unit="vector", vector_ops=v.ops,
                                       compute_cycles=compute, stall_cycles=stall,
                                       cycles=cycles, traffic=tr, energy=e))
    return SimReport(graph.name, target, dataflow, timing, batch, reports)


# ------------------------------------------------------------------ integer runs on sample frames

def integer_check(graph: Graph, frames: np.ndarray) -> dict:
    """Run the frames through the Numba kernels and the reference interpreter; every value of
    every node must be equal."""
    from amchw.ir.interp import run

    ref = run(graph, frames, "ref", keep=True)
    ker = run(graph, frames, "numba", keep=True)
    compared = mismatched = 0
    first = None
    for n in graph.nodes:
        a, b = ref[n.output.name], ker[n.output.name]
        compared += a.size
        bad = int(np.count_nonzero(a != b)) if a.shape == b.shape else a.size
        if bad and first is None:
            first = n.name
        mismatched += bad
    return {"frames": int(frames.shape[0]), "nodes": len(graph.nodes), "values": compared,
            "mismatches": mismatched, "first_mismatch": first, "equal": mismatched == 0}


def gemm_operands(node, x: np.ndarray, x_zp: int):
    """(A, B, bias) per group of a Conv/Dense node on input codes x (batch first):
    A = im2col(x) - zx (M x K), B = w - zw (K x N), bias (N,). Written with numpy windows,
    independently of the kernels' im2col."""
    op = node.op
    zw = op.w_type.zero_point
    w = op.weight.astype(np.int64) - zw
    k_ = w.shape[0]
    bias = np.zeros(k_, np.int64) if op.bias is None else op.bias.astype(np.int64)
    x = x.astype(np.int64) - x_zp
    if isinstance(op, Dense):
        return [(x.reshape(x.shape[0], -1), w.T, bias)], None
    nd = op.ndim
    if nd == 1:
        x = x[:, :, None, :]
        w = w[:, :, None, :]
        pads = ((0, 0),) + tuple(op.padding)
        stride, dil = (1,) + tuple(op.stride), (1,) + tuple(op.dilation)
    else:
        pads, stride, dil = tuple(op.padding), tuple(op.stride), tuple(op.dilation)
    # padding holds the code zx, i.e. 0 after the zero point is subtracted
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    kh, kw = w.shape[2], w.shape[3]
    span = ((kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dil[0], ::dil[1]]
    n_, _, oh, ow = win.shape[:4]
    g = op.groups
    cg = w.shape[1]
    kg = k_ // g
    out = []
    for gi in range(g):
        a = win[:, gi * cg:(gi + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n_ * oh * ow, -1)
        b = w[gi * kg:(gi + 1) * kg].reshape(kg, -1).T
        out.append((a, b, bias[gi * kg:(gi + 1) * kg]))
    return out, (n_, oh, ow)


def stepped_check(report: SimReport, graph: Graph, frames: np.ndarray) -> dict:
    """Run every GEMM of the report's batch (the first `batch` frames) on the stepped array;
    fill each layer's stepped_cycles and stepped_outputs_equal, return a summary."""
    import time

    from amchw.ir.interp import run

    from .stepped import stepped_gemm

    t = report.target
    frames = frames[:report.batch]
    if frames.shape[0] != report.batch:
        raise SimulationError(f"--stepped needs {report.batch} frames, got {frames.shape[0]}")
    env = run(graph, frames, "numba", keep=True)
    types = graph.values()
    by_name = {r.node: r for r in report.layers}
    pe_cycles = 0
    t0 = time.perf_counter()
    all_eq = all_cyc = True
    for n in graph.nodes:
        if not isinstance(n.op, (Conv, Dense)):
            continue
        zx = getattr(types[n.inputs[0]].dtype, "zero_point", 0)  # codes: a Conv/Dense input
        parts, geo = gemm_operands(n, env[n.inputs[0]], zx)
        want = env[n.output.name]
        cycles = 0
        eq = True
        kg = n.op.weight.shape[0] // len(parts)
        lr = by_name[n.name]
        # CSC weights on os: the stepped array skips the zero steps (its zero-skipping mode);
        # every other sparse storage runs dense and is compared with the dense closed form
        skip = n.op.w_format == "csc" and report.dataflow == "os"
        for gi, (a, b, bias) in enumerate(parts):
            res = stepped_gemm(a, b, bias, t.rows, t.cols, report.dataflow, report.timing,
                               skip_zeros=skip)
            cycles += res.cycles
            pe_cycles += res.counts["pe_cycles"]
            if geo is None:
                got = res.out
                ref = want[:, gi * kg:(gi + 1) * kg]
            else:
                n_, oh, ow = geo
                got = res.out.reshape(n_, oh, ow, kg)
                ref = want[:, gi * kg:(gi + 1) * kg].reshape(n_, kg, oh, ow).transpose(0, 2, 3, 1)
            eq = eq and np.array_equal(got, ref)
        lr.stepped_cycles = cycles
        lr.stepped_outputs_equal = bool(eq)
        all_eq = all_eq and eq
        closed = lr.compute_cycles if lr.sparse is None or skip else \
            lr.groups * gemm_cycles(lr.M, lr.K, lr.N, t.rows, t.cols, report.dataflow,
                                    report.timing).cycles
        all_cyc = all_cyc and cycles == closed
    seconds = time.perf_counter() - t0
    summary = {"frames": int(frames.shape[0]), "outputs_equal": bool(all_eq),
               "cycles_equal_closed_form": bool(all_cyc), "pe_cycles": int(pe_cycles),
               "seconds": seconds, "pe_cycles_per_s": pe_cycles / seconds if seconds else None}
    report.stepped = summary
    return summary


def dataflow_name(df: str) -> str:
    return DATAFLOW_NAMES[df]
