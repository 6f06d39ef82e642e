"""The fused, multi-threaded "fast" executor of a whole graph.

A FastPlan is built once per graph (run(graph, x, "fast") caches it on the graph). It fuses
every Conv/Dense with the Requant that alone reads its accumulator and the MaxPool that alone
reads that Requant's codes into one step, so the int32 accumulators and the pre-pool codes are
never stored. Each step is: im2col of a few images into a small float buffer, one BLAS matrix
product per reduction block, and kernels.fused.gemm_epilogue. Work is split over threads by
images while BLAS itself is held to one thread, so the Python threads, BLAS and Numba do not
fight over the cores (a batch smaller than the thread count instead gives BLAS the threads).

Exactness (the result equals the reference interpreter bit for bit, and tests check it): the
reduction of every filter is cut into contiguous blocks such that
    max|x - zx| * sum_{r in block} |w_kr - zw| < 2^24        (float32; 2^53 for float64)
for every filter k, where max|x - zx| is the validator's bound on the input value (its type's
range, or tighter). Then every product and every partial sum BLAS forms inside a block is an
integer it represents exactly, whatever its order or blocking; the epilogue adds the block
sums and the bias in int64 and wraps to int32 once, which equals wrapping after every addition.
A reduction that no such blocking makes exact in float64 runs on the Numba loop kernels."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from amchw import kernels as K
from amchw.kernels.fused import dense_acc_small, dense_cols, gemm_epilogue, im2col_chunk

from .backends import check_input, eval_node, kernels_for
from .graph import Graph
from .ops import Conv, Dense, MaxPool, Requant
from .ops.base import pair as _pair
from .types import QType
from .validate import value_bounds

F32_LIMIT = 2**24
F64_LIMIT = 2**53
# Budget for one worker's im2col buffer: small enough to stay in the caches.
CHUNK_BYTES = 2 * 2**20
# Below this many multiply-accumulates a step runs on the calling thread alone.
PARALLEL_MIN_MACS = 4_000_000
# Dense layers on at most this many images use the int16 weight kernel (reads 2 bytes per weight).
SMALL_DENSE_BATCH = 4


def reduction_blocks(wabs: np.ndarray, x_bound: int, limit: int) -> list[tuple[int, int]] | None:
    """Cut the reduction axis of wabs (filters, R) = |w - zw| into contiguous [r0, r1) blocks,
    greedily as long as possible, such that x_bound * (row sum of each block) < limit for every
    filter. None if a single reduction entry already reaches the limit."""
    k_, r_ = wabs.shape
    if r_ == 0:
        return [(0, 0)]
    cols = wabs.astype(np.int64) * int(x_bound)
    if int(cols.max(initial=0)) >= limit:
        return None
    blocks = []
    start = 0
    cum = np.zeros(k_, dtype=np.int64)
    for r in range(r_):
        nxt = cum + cols[:, r]
        if int(nxt.max(initial=0)) >= limit:
            blocks.append((start, r))
            start = r
            cum = cols[:, r].copy()
        else:
            cum = nxt
    blocks.append((start, r_))
    return blocks


@dataclass
class _Gemm:
    """One fused Conv/Dense [-> Requant [-> MaxPool]] step."""
    names: tuple[str, ...]       # the fused nodes
    x: str                        # input value
    out: str                      # value it produces
    nd: int                       # spatial dims of the conv (0 for Dense)
    geom: tuple                   # kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n
    out_shape: tuple              # per-image (K, OH2, OW2) as computed (4-D view)
    final_shape: tuple            # per-image shape of the produced value
    ftype: type
    wblocks: list                 # per block: float (G, Kg, rows) contiguous
    blocks: list                  # per block: (r0, r1)
    bias: np.ndarray
    zx: int
    rq: tuple                     # has_rq, mult, shift, offset, zx, zo, lo, hi, rounding
    pool: tuple                   # has_pool, kh, kw, sh, sw, dh, dw, top, left
    macs_per_image: int
    w16: np.ndarray | None        # Dense only: centred weights as int16 when they fit, for
                                  # small batches (int32 accumulation, exact by acc_bound)


def _per_channel(v, k_: int) -> np.ndarray:
    a = np.atleast_1d(np.asarray(v, dtype=np.int64))
    return np.ascontiguousarray(np.broadcast_to(a, (k_,)) if a.size == 1 else a)


def _pads(padding) -> tuple[int, int]:
    """(top, left) of an IR padding (the fused kernels need only the leading pads)."""
    if len(padding) == 1:
        return 0, padding[0][0]
    return padding[0][0], padding[1][0]


class FastPlan:
    """A graph compiled for the fused executor. Call it like interp.run(graph, x, "fast")."""

    def __init__(self, graph: Graph, threads: int | None = None):
        self.graph = graph
        self.threads = int(threads or numba.get_num_threads())
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        bounds = value_bounds(graph)
        types = graph.values()
        users: dict[str, list] = {}
        for n in graph.nodes:
            for i in n.inputs:
                users.setdefault(i, []).append(n)

        def only_user(value: str, kind):
            us = users.get(value, [])
            if value in graph.outputs or len(us) != 1 or not isinstance(us[0].op, kind):
                return None
            return us[0]

        fused: set[str] = set()
        self.steps: list = []
        for n in graph.nodes:
            if n.name in fused:
                continue
            step = None
            if isinstance(n.op, (Conv, Dense)):
                rq = only_user(n.output.name, Requant)
                mp = only_user(rq.output.name, MaxPool) if rq is not None else None
                step = self._gemm_step(n, rq, mp, types, bounds)
            if step is None:
                self.steps.append(n)
            else:
                fused.update(step.names)
                self.steps.append(step)
        self.last_use = {}
        for k, s in enumerate(self.steps):
            for i in ([s.x] if isinstance(s, _Gemm) else s.inputs):
                self.last_use[i] = k

    # ------------------------------------------------------------------ planning
    def _gemm_step(self, n, rq, mp, types, bounds):
        op = n.op
        xt: QType = types[n.inputs[0]].dtype
        xshape = types[n.inputs[0]].shape
        x_bound = bounds[n.inputs[0]]
        k_ = op.weight.shape[0]
        if isinstance(op, Conv):
            nd = op.ndim
            w4 = op.weight if nd == 2 else op.weight[:, :, None, :]
            groups = op.groups
            kh, kw = w4.shape[2:]
            sh, sw = _pair(op.stride)
            dh, dw = _pair(op.dilation)
            top, left = _pads(op.padding)
            oshape = n.output.shape
            oh_n, ow_n = (1, oshape[1]) if nd == 1 else oshape[1:]
        else:
            nd = 0
            w4 = op.weight[:, :, None, None]
            groups, kh, kw, sh, sw, dh, dw, top, left, oh_n, ow_n = 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1
            if len(xshape) != 1:
                return None
        kg = k_ // groups
        taps = w4.shape[1] * kh * kw
        wc = w4.astype(np.int64).reshape(k_, taps) - op.w_type.zero_point
        ftype = np.float32
        blocks = reduction_blocks(np.abs(wc), x_bound, F32_LIMIT)
        if blocks is None:
            ftype = np.float64
            blocks = reduction_blocks(np.abs(wc), x_bound, F64_LIMIT)
            if blocks is None:
                return None
        wg = wc.reshape(groups, kg, taps)
        wblocks = [np.ascontiguousarray(wg[:, :, r0:r1].astype(ftype)) for r0, r1 in blocks]
        bias = op.bias if op.bias is not None else np.zeros(k_, np.int32)
        w16 = None
        # int32 accumulation is exact when no partial sum can leave int32 (bias excluded: the
        # epilogue adds it in int64); int16 holds the centred codes of up to 16-bit types
        acc_bound = x_bound * int(np.abs(wc).sum(axis=1).max(initial=0))
        if (nd == 0 and acc_bound < 2**31 and x_bound < 2**15
                and int(np.abs(wc).max(initial=0)) < 2**15):
            w16 = np.ascontiguousarray(wc.astype(np.int16))
        names = [n.name]
        out_v = n.output
        if rq is not None:
            names.append(rq.name)
            out_v = rq.output
            r = rq.op
            rqp = (True, _per_channel(r.multiplier, k_), _per_channel(r.shift, k_),
                   _per_channel(r.offset, k_), int(n.output.dtype.zero_point),
                   int(r.out.zero_point), int(r.clamp_lo), int(r.clamp_hi),
                   K.ROUNDING_NAMES[r.rounding])
        else:
            z = np.zeros(k_, np.int64)
            rqp = (False, z, z, z, 0, 0, 0, 0, 0)
        poh, pow_ = oh_n, ow_n
        pool = (False, 1, 1, 1, 1, 1, 1, 0, 0)
        if mp is not None and nd > 0:
            names.append(mp.name)
            out_v = mp.output
            p = mp.op
            pkh, pkw = _pair(p.kernel)
            psh, psw = _pair(p.stride)
            pdh, pdw = _pair(p.dilation)
            ptop, pleft = _pads(p.padding)
            poh, pow_ = (1, mp.output.shape[1]) if nd == 1 else mp.output.shape[1:]
            pool = (True, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft)
        return _Gemm(tuple(names), n.inputs[0], out_v.name, nd,
                     (kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n),
                     (k_, poh, pow_), tuple(out_v.shape), ftype, wblocks, blocks,
                     np.ascontiguousarray(bias, dtype=np.int32), int(xt.zero_point), rqp, pool,
                     k_ * taps * oh_n * ow_n, w16)

    def describe(self) -> list[str]:
        """One line per step: the fused nodes, the float type and the number of blocks."""
        lines = []
        for s in self.steps:
            if isinstance(s, _Gemm):
                lines.append(f"{'+'.join(s.names)}: {np.dtype(s.ftype).name} GEMM, "
                             f"{len(s.blocks)} reduction block(s)")
            else:
                lines.append(f"{s.name}: {s.op.kind}")
        return lines

    # ------------------------------------------------------------------ execution
    def _scratch(self, key: str, size: int, dtype) -> np.ndarray:
        store = self._local.__dict__.setdefault("buf", {})
        buf = store.get(key)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(max(size, 1), dtype=dtype)
            store[key] = buf
        return buf[:size]

    def _chunk(self, s: _Gemm, x, out, n0, nb):
        """Images n0 .. n0+nb-1 of one step, in this thread's scratch buffers."""
        kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n = s.geom
        cols_n = nb * oh_n * ow_n
        taps = s.blocks[-1][1]
        cols = self._scratch("cols", groups * taps * cols_n, s.ftype).reshape(groups, taps, cols_n)
        if s.nd == 0:
            dense_cols(x.reshape(x.shape[0], -1), n0, nb, s.zx, cols)
        else:
            im2col_chunk(x, n0, nb, s.zx, kh, kw, sh, sw, dh, dw, top, left, groups, oh_n,
                         ow_n, cols)
        kg = s.out_shape[0] // groups
        acc = self._scratch("acc", len(s.blocks) * groups * kg * cols_n, s.ftype)
        acc = acc.reshape(len(s.blocks), groups, kg, cols_n)
        for b, (r0, r1) in enumerate(s.blocks):
            np.matmul(s.wblocks[b], cols[:, r0:r1, :], out=acc[b])
        self._epilogue(s, acc, n0, out)

    @staticmethod
    def _epilogue(s: _Gemm, acc, n0, out):
        kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n = s.geom
        has_rq, mult, shift, offset, zx, zo, lo, hi, rounding = s.rq
        has_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft = s.pool
        gemm_epilogue(acc, s.bias, 0, n0, oh_n, ow_n, has_rq, mult, shift, offset, zx, zo, lo,
                      hi, rounding, has_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, out)

    def _run_gemm(self, s: _Gemm, x: np.ndarray) -> np.ndarray:
        n_ = x.shape[0]
        x4 = x.reshape((n_, x.shape[1], 1, x.shape[2])) if s.nd == 1 else (
            x.reshape((n_, x.shape[1], 1, 1)) if s.nd == 0 else x)
        x4 = np.ascontiguousarray(x4, dtype=np.int32)
        out = np.empty((n_, *s.out_shape), dtype=np.int32)
        k_ = s.out_shape[0]
        if s.w16 is not None and n_ <= SMALL_DENSE_BATCH:
            xc = (x4.reshape(n_, -1) - s.zx).astype(np.int16)
            acc = np.empty((1, 1, k_, n_), dtype=np.int32)
            dense_acc_small(xc, s.w16, acc)
            self._epilogue(s, acc, 0, out)
            return out.reshape((n_, *s.final_shape))
        groups, oh_n, ow_n = s.geom[8:]
        # im2col buffer + block accumulators of one image
        per_image = ((groups * s.blocks[-1][1] + len(s.blocks) * k_) * oh_n * ow_n
                     * np.dtype(s.ftype).itemsize)
        # a dense layer re-reads all its weights per chunk: give it a larger budget
        budget = CHUNK_BYTES if s.nd else 8 * CHUNK_BYTES
        chunk = max(1, budget // max(per_image, 1))
        workers = self.threads

        def part(a, b):
            for n0 in range(a, b, chunk):
                self._chunk(s, x4, out, n0, min(chunk, b - n0))

        if workers <= 1 or s.macs_per_image * n_ < PARALLEL_MIN_MACS:
            part(0, n_)
        elif n_ >= workers:
            edges = np.linspace(0, n_, workers + 1).astype(int)
            list(self._executor().map(part, edges[:-1], edges[1:]))
        else:  # fewer images than threads: BLAS gets the threads for the chunk's product
            with _blas_controller().limit(limits=workers, user_api="blas"):
                part(0, n_)
        return out.reshape((n_, *s.final_shape))

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix="amchw-fast")
        return self._pool

    def step_names(self) -> list[str]:
        """A label per step: the fused node names joined by '+'."""
        return ["+".join(s.names) if isinstance(s, _Gemm) else s.name for s in self.steps]

    def __call__(self, x: np.ndarray, timings: dict | None = None):
        """Run the graph on x; with a dict `timings`, add each step's seconds to
        timings[label] (labels from step_names)."""
        graph = self.graph
        x = check_input(graph, x)
        impl = kernels_for("fast")
        types = graph.values()
        env = {graph.inputs[0].name: x}
        with self._lock, _blas_controller().limit(limits=1, user_api="blas"):
            labels = self.step_names() if timings is not None else None
            for k, s in enumerate(self.steps):
                t0 = time.perf_counter()
                if isinstance(s, _Gemm):
                    env[s.out] = self._run_gemm(s, env[s.x])
                    inputs = [s.x]
                else:
                    env[s.output.name] = eval_node(s, [env[i] for i in s.inputs],
                                                   [types[i].dtype for i in s.inputs], impl)
                    inputs = s.inputs
                if labels is not None and timings is not None:
                    timings[labels[k]] = timings.get(labels[k], 0.0) + time.perf_counter() - t0
                for i in inputs:
                    if self.last_use.get(i) == k and i not in graph.outputs:
                        env.pop(i, None)
        outs = tuple(env[o] for o in graph.outputs)
        return outs[0] if len(outs) == 1 else outs

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


_CONTROLLER = None


def _blas_controller() -> ThreadpoolController:
    """One inspection of the loaded BLAS libraries (threadpool_limits() redoes it per call)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def plan_for(graph: Graph) -> FastPlan:
    """The graph's cached FastPlan (rebuilt when the Numba thread count changes)."""
    threads = numba.get_num_threads()
    plan = graph.__dict__.get("_fast_plan")
    if plan is None or plan.threads != threads:
        plan = FastPlan(graph, threads)
        object.__setattr__(graph, "_fast_plan", plan)
    return plan
