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

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from amchw import kernels as K
from amchw.kernels import _checks
from amchw.kernels import vnni as V
from amchw.kernels.quantize import _dequantize_kernel as dequantize_kernel
from amchw.kernels.quantize import _quantize_kernel as quantize_kernel
from amchw.kernels.fused import (dense_acc_small, dense_cols, gemm_epilogue, im2col_chunk,
                                 requant_f32_params)

from .backends import check_input, eval_node, kernels_for
from .graph import Graph
from .ops import Conv, Dense, Dequantize, MaxPool, Quantize, Requant, Reshape
from .ops.base import pair as _pair
from .types import IRError, QType
from .validate import value_bounds

F32_LIMIT = 2**24
F64_LIMIT = 2**53
# Budget for one worker's im2col buffer: small enough to stay in the caches.
CHUNK_BYTES = 2097152
# Batch tiling (FastPlan.__call__): a tile's largest intermediate value stays below this.
TILE_BYTES = 4 * 2**20
MAX_TILE = 64
# Below this many multiply-accumulates a step runs on the calling thread alone.
PARALLEL_MIN_MACS = 4_000_000
# A VNNI step on fewer images than threads shares its filters among the threads from here
# (measured on 2 cores: below it the wake-up of a pool thread costs more than it saves).
SPLIT_MIN_MACS = 64_000_000
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
    vnni: tuple | None = None     # the VNNI form when it applies (see _vnni_form)
    fq: np.ndarray | None = None  # kernels.fused.requant_f32_params of the Requant (or none)
    # a VNNI step whose codes only the next VNNI step reads writes them straight into that
    # step's unsigned input (FastPlan._link): feeds is that step, prm_feed its parameters
    # with the output range moved to u = code - xmin; prepared marks the reading step
    feeds: "_Gemm | None" = None
    prm_feed: np.ndarray | None = None
    prepared: bool = False


@dataclass
class _Direct:
    """A Quantize or Dequantize node whose per-channel parameters were checked and broadcast
    once, when the plan was built (the public kernels check them on every call, which costs
    more than the arithmetic at batch 1); it runs the same Numba kernel."""
    names: tuple[str, ...]
    x: str
    out: str
    kind: str
    args: tuple

    @classmethod
    def of(cls, n, types) -> "_Direct":
        shape = types[n.inputs[0]].shape
        channels = shape[0]
        args: tuple
        if isinstance(n.op, Quantize):
            t = n.op.out
            scale = _checks.channel_param(t.scale_array(), channels, "scale", "float")
            zp = _checks.channel_param(np.int64(t.zero_point), channels, "zp", "int")
            args = (scale, zp, int(t.lo), int(t.hi), K.ROUNDING_NAMES[n.op.rounding])
        else:
            t = types[n.inputs[0]].dtype
            bias = n.op.bias if n.op.bias is not None else np.zeros(1)
            args = (_checks.channel_param(t.scale_array(), channels, "scale", "float"),
                    _checks.channel_param(np.int64(t.zero_point), channels, "zp", "int"),
                    _checks.channel_param(bias, channels, "bias", "float"))
        return cls((n.name,), n.inputs[0], n.output.name, n.op.kind, args)

    def run(self, x: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
        if self.kind == "Quantize":
            if x.dtype not in (np.float32, np.float64):
                raise IRError(f"node {self.names[0]!r} (Quantize): input must be float32 or "
                              f"float64, got {x.dtype}")
            if not np.isfinite(flat).all():
                raise IRError("input frames contain NaN or infinity")
            return quantize_kernel(flat, *self.args).reshape(x.shape)
        return dequantize_kernel(flat, *self.args).reshape(x.shape)


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
        self._types = types
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
            elif isinstance(n.op, (Quantize, Dequantize)) and types[n.inputs[0]].shape:
                step = _Direct.of(n, types)
            if step is None:
                self.steps.append(n)
            else:
                fused.update(step.names)
                self.steps.append(step)
        self._link(users)
        # images per tile: the largest value a step makes, tile images of it, fits TILE_BYTES
        # (values as int32, except those a step writes as the next step's bytes; values
        # inside a fused step are never held)
        held = [4 * int(np.prod(types[graph.inputs[0].name].shape))]
        for s in self.steps:
            if isinstance(s, _Gemm) and s.feeds is not None:
                held.append(self._input_bytes(s.feeds))
            else:
                out = s.out if isinstance(s, (_Gemm, _Direct)) else s.output.name
                held.append(4 * int(np.prod(types[out].shape)))
        biggest = max(held)
        tile = int(min(MAX_TILE, max(1, TILE_BYTES // max(biggest, 1))))
        # a multiple of the dense kernels' row tile where it can be
        self.tile = tile - tile % V.ROW_MR if tile >= V.ROW_MR else tile
        self.uses_blas = any(isinstance(s, _Gemm) and s.vnni is None for s in self.steps)
        if self.uses_blas:
            # float products want whole batches (a dense layer re-reads its float weights
            # per call): no tiles, as before the VNNI path
            self.tile = 2**62
        sizes = [0, 0, 0, 0]   # xp, a32, acc, a8 of the largest VNNI chunk
        for s in self.steps:
            if isinstance(s, _Gemm) and s.vnni is not None:
                kind, prm, _, _, chunk = s.vnni
                if kind == "dense":
                    a8, acc = V.dense_scratch(prm, chunk)
                    need = (0, 0, acc, a8)
                else:
                    need = (*V.conv_scratch(prm, types[s.x].shape[0], chunk), 0)
                sizes = [max(a, b) for a, b in zip(sizes, need)]
        self._vnni_sizes = sizes
        self._impl = kernels_for("fast")
        self.last_use = {}
        for k, s in enumerate(self.steps):
            for i in ([s.x] if isinstance(s, (_Gemm, _Direct)) else s.inputs):
                self.last_use[i] = k

    # ------------------------------------------------------------------ planning
    def _link(self, users) -> None:
        """Let a VNNI step write its codes straight into the unsigned input of the VNNI step
        that alone reads them (directly, or a dense layer through a Reshape that alone reads
        them): the int32 value between them, the padding pass of a convolution and the
        conversion of a dense layer's input disappear. The Reshape step goes."""
        graph = self.graph
        by_out = {s.out: s for s in self.steps if isinstance(s, _Gemm)}
        dropped = set()
        for s2 in self.steps:
            if not (isinstance(s2, _Gemm) and s2.vnni is not None):
                continue
            v = s2.x
            sole = [u.name for u in users.get(v, [])] == [s2.names[0]]
            if v in graph.outputs or not sole:
                continue
            s1 = by_out.get(v)
            reshape = None
            if s1 is None and s2.vnni[0] == "dense":
                node = next((n for n in self.steps if not isinstance(n, (_Gemm, _Direct))
                             and n.output.name == v and isinstance(n.op, Reshape)), None)
                if node is not None:
                    u = node.inputs[0]
                    if u not in graph.outputs and len(users.get(u, [])) == 1:
                        s1, reshape = by_out.get(u), node
            if s1 is None or s1.vnni is None or s1.feeds is not None:
                continue
            xmin = int(s2.vnni[1][V.P_XMIN])
            prm = s1.vnni[1].copy()
            prm[V.P_ZO] -= xmin
            prm[V.P_LO] -= xmin
            prm[V.P_HI] -= xmin
            if not (prm[V.P_HAS_RQ] and 0 <= prm[V.P_LO] <= prm[V.P_HI] <= 255):
                continue
            s1.feeds, s1.prm_feed, s2.prepared = s2, prm, True
            if reshape is not None:
                dropped.add(reshape.name)
            kind2, prm2, chan2, w2, chunk2 = s2.vnni
            if kind2 == "conv" and V.convq_fits(prm2):
                # its producer writes channel quads: an implicit GEMM, no im2col
                c_ = int(self._types[s2.x].shape[0])
                wq, _ = V.pack_conv_q(w2, c_, int(prm2[V.P_KH]), int(prm2[V.P_KW]))
                s2.vnni = ("convq", prm2, chan2, wq, chunk2)
                prm[V.P_QTOP], prm[V.P_QLEFT] = prm2[V.P_TOP], prm2[V.P_LEFT]
                prm[V.P_QOH], prm[V.P_QOW] = s1.out_shape[1], s1.out_shape[2]
        self.steps = [s for s in self.steps if isinstance(s, (_Gemm, _Direct))
                      or s.name not in dropped]

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
        vnni = _vnni_form(nd, groups, xt, wc, bias, xshape, (kh, kw, sh, sw, dh, dw, top, left),
                          (oh_n, ow_n), rqp, pool)
        fq = requant_f32_params(*rqp[1:8]) if rqp[0] else np.zeros((6, 0))
        return _Gemm(tuple(names), n.inputs[0], out_v.name, nd,
                     (kh, kw, sh, sw, dh, dw, top, left, groups, oh_n, ow_n),
                     (k_, poh, pow_), tuple(out_v.shape), ftype, wblocks, blocks,
                     np.ascontiguousarray(bias, dtype=np.int32), int(xt.zero_point), rqp, pool,
                     k_ * taps * oh_n * ow_n, w16, vnni, fq)

    def describe(self) -> list[str]:
        """One line per step: the fused nodes, the float type and the number of blocks."""
        lines = []
        for s in self.steps:
            if isinstance(s, _Gemm) and s.vnni is not None:
                feeds = f", writes {s.feeds.names[0]}'s input" if s.feeds is not None else ""
                how = ", implicit: no im2col" if s.vnni[0] == "convq" else ""
                lines.append(f"{'+'.join(s.names)}: u8 x s8 -> int32 GEMM ({V.KERNEL}{how})"
                             f"{feeds}")
            elif isinstance(s, _Direct):
                lines.append(f"{s.names[0]}: {s.kind} (parameters checked once)")
            elif isinstance(s, _Gemm):
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
                      hi, rounding, has_pool, pkh, pkw, psh, psw, pdh, pdw, ptop, pleft, out, s.fq)

    def _input_bytes(self, s2: _Gemm) -> int:
        """Bytes per image of the prepared VNNI step s2's input buffer (_input_buffer)."""
        assert s2.vnni is not None
        kind, prm = s2.vnni[0], s2.vnni[1]
        c_ = int(self._types[s2.x].shape[0]) if kind != "dense" else 0
        if kind == "convq":
            return int(prm[V.P_HP]) * 4 * -(-c_ // 4) * int(prm[V.P_WP])
        if kind == "conv":
            return c_ * int(prm[V.P_HP]) * int(prm[V.P_WP])
        return 4 * int(prm[V.P_K4])

    def _input_buffer(self, s2: _Gemm, n_: int) -> np.ndarray:
        """This thread's unsigned input of the prepared VNNI step s2 for n_ images: a
        convolution's padded (n_, C, HP, WP), whose border holds the code that adds 0 (filled
        once: epilogues write only the inside), or a dense layer's rows (n_, 4*k4), zero
        beyond R."""
        store = self._local.__dict__.setdefault("inputs", {})
        key = id(s2)
        buf = store.get(key)
        if buf is None or buf.shape[0] < n_:
            assert s2.vnni is not None
            prm = s2.vnni[1]
            if s2.vnni[0] == "convq":
                buf = V.convq_input(n_, prm, int(self._types[s2.x].shape[0]))
            elif s2.vnni[0] == "conv":
                c_ = int(self._types[s2.x].shape[0])
                buf = np.full((n_, c_, int(prm[V.P_HP]), int(prm[V.P_WP])),
                              int(prm[V.P_ZX] - prm[V.P_XMIN]), dtype=np.uint8)
            else:
                buf = np.zeros((n_, 4 * int(prm[V.P_K4])), dtype=np.uint8)
            store[key] = buf
        return buf[:n_]

    def _run_feeding(self, s: _Gemm, x, workers: int) -> np.ndarray:
        """Run s with its epilogue writing u = code - xmin into the input buffer of the step
        it feeds, and return that buffer."""
        s2 = s.feeds
        assert s2 is not None and s2.vnni is not None
        n_ = x.shape[0]
        buf = self._input_buffer(s2, n_)
        k_, oh2, ow2 = s.out_shape
        if s2.vnni[0] == "convq":  # channel quads (N, HP, C4, WP, 4): the whole buffer
            out = buf
        elif s2.vnni[0] == "conv":
            prm2 = s2.vnni[1]
            top, left = int(prm2[V.P_TOP]), int(prm2[V.P_LEFT])
            out = buf[:, :, top:top + oh2, left:left + ow2]
        else:  # a dense layer's rows: the codes in (K, OH, OW) order, as the Reshape had them
            out = np.lib.stride_tricks.as_strided(
                buf, (n_, k_, oh2, ow2), (buf.strides[0], oh2 * ow2, ow2, 1))
        self._run_vnni(s, self._as4(s, x), out, workers, s.prm_feed)
        return buf

    @staticmethod
    def _as4(s: _Gemm, x: np.ndarray) -> np.ndarray:
        """The step's input as int32 (N, C, H, W), or the prepared buffer as it is."""
        if s.prepared:
            return x
        n_ = x.shape[0]
        x4 = x.reshape((n_, x.shape[1], 1, x.shape[2])) if s.nd == 1 else (
            x.reshape((n_, x.shape[1], 1, 1)) if s.nd == 0 else x)
        return np.ascontiguousarray(x4, dtype=np.int32)

    def _run_gemm(self, s: _Gemm, x: np.ndarray, workers: int) -> np.ndarray:
        n_ = x.shape[0]
        if s.vnni is not None:
            out = np.empty((n_, *s.out_shape), dtype=np.int32)
            self._run_vnni(s, self._as4(s, x), out, workers, s.vnni[1])
            return out.reshape((n_, *s.final_shape))
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

    def _vnni_buffers(self):
        """This thread's scratch for every VNNI step (sized for the largest chunk)."""
        bufs = self._local.__dict__.get("vnni")
        if bufs is None:
            bufs = tuple(np.empty(max(n, 1), dtype=t) for n, t in
                         zip(self._vnni_sizes, (np.uint8, np.uint32, np.int32, np.uint8)))
            self._local.vnni = bufs
        return bufs

    def _run_vnni(self, s: _Gemm, x4, out, workers: int, prm) -> None:
        """A step on amchw.kernels.vnni (x4: int32 (N, C, H, W), or the prepared unsigned
        input): images split over threads, in chunks that keep the scratch small."""
        n_ = x4.shape[0]
        assert s.vnni is not None
        kind, _, chan, w, chunk = s.vnni
        fq = s.fq
        k_ = s.out_shape[0]
        if kind == "convq" or (kind == "dense" and s.prepared):
            # the prepared input as it is: channel quads, or a dense layer's rows
            body = V.convq_body if kind == "convq" else V.dense_body

            def part(a, b, k_lo=0, k_hi=k_):
                xp, a32, acc, a8 = self._vnni_buffers()
                for n0 in range(a, b, chunk):
                    n1 = min(n0 + chunk, b)
                    body(x4[n0:n1], n0, n1 - n0, prm, chan, fq, w, acc, out, k_lo, k_hi)
        elif kind == "dense":
            x2 = x4.reshape(n_, -1)

            def part(a, b, k_lo=0, k_hi=k_):
                xp, a32, acc, a8 = self._vnni_buffers()
                for n0 in range(a, b, chunk):
                    V.dense_chunk(x2, n0, min(chunk, b - n0), prm, chan, fq, w, a8, acc, out,
                                  k_lo, k_hi)
        elif s.prepared:
            def part(a, b, k_lo=0, k_hi=k_):
                xp, a32, acc, a8 = self._vnni_buffers()
                for n0 in range(a, b, chunk):
                    n1 = min(n0 + chunk, b)
                    V.conv_body(x4[n0:n1], n0, n1 - n0, prm, chan, fq, w, a32, acc, out, k_lo,
                                k_hi)
        else:
            def part(a, b, k_lo=0, k_hi=k_):
                xp, a32, acc, a8 = self._vnni_buffers()
                for n0 in range(a, b, chunk):
                    V.conv_chunk(x4, n0, min(chunk, b - n0), prm, chan, fq, w, xp, a32, acc, out,
                                 k_lo, k_hi)

        if workers <= 1 or s.macs_per_image * n_ < PARALLEL_MIN_MACS:
            part(0, n_)
        elif n_ < workers:
            # fewer images than threads: for a large layer the threads share the filters
            # (whole weight tiles; waking a sleeping thread costs tens of microseconds, so a
            # small layer runs on the calling thread alone), which takes the first share
            if s.macs_per_image * n_ < SPLIT_MIN_MACS:
                part(0, n_)
            else:
                unit = V.ROW_W if kind == "dense" else V.POS_MR
                tiles = -(-k_ // unit)
                cuts = sorted({unit * (tiles * i // workers) for i in range(workers + 1)})
                pool = self._executor()
                futures = [pool.submit(part, 0, n_, c0, c1) for c0, c1 in zip(cuts[1:-1],
                                                                               cuts[2:])]
                part(0, n_, cuts[0], cuts[1])
                for f in futures:
                    f.result()
        else:
            edges = np.linspace(0, n_, workers + 1).astype(int)
            list(self._executor().map(part, edges[:-1], edges[1:]))

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix="amchw-fast")
        return self._pool

    def step_names(self) -> list[str]:
        """A label per step: the fused node names joined by '+'."""
        return ["+".join(s.names) if isinstance(s, (_Gemm, _Direct)) else s.name
                for s in self.steps]

    def __call__(self, x: np.ndarray, timings: dict | None = None):
        """Run the graph on x; with a dict `timings`, add each step's seconds to
        timings[label] (labels from step_names).

        A batch larger than `tile` images runs tile by tile, each through the whole graph
        (every op acts frame by frame), so that the intermediate values of a tile stay in
        the caches instead of crossing main memory once per layer; threads take disjoint
        runs of tiles. A batch of at most `tile` images runs in one pass, its steps split over
        threads by images."""
        x = check_input(self.graph, x)
        n_ = x.shape[0]
        t = self.graph.inputs[0].dtype
        if isinstance(t, QType) and x.size and (int(x.min()) < t.lo or int(x.max()) > t.hi):
            # the plan's exactness (float blocks, bytes) is proven for codes of the type
            raise IRError(f"graph {self.graph.name!r}: input codes span [{int(x.min())}, "
                          f"{int(x.max())}], outside the input type {t.short()} "
                          f"[{t.lo}, {t.hi}]")
        limit = (_blas_controller().limit(limits=1, user_api="blas") if self.uses_blas
                 else contextlib.nullcontext())
        with self._lock, limit:
            tile = self.tile
            if n_ <= tile:
                return self._pass(x, timings, self.threads)
            starts = list(range(0, n_, tile))
            workers = min(self.threads, len(starts))

            def run_tiles(group):
                return [(a, self._pass(x[a:a + tile], timings, 1)) for a in group]

            if workers <= 1 or timings is not None:
                done = run_tiles(starts)
            else:
                groups = [starts[i::workers] for i in range(workers)]
                done = [r for part in self._executor().map(run_tiles, groups) for r in part]
            done.sort(key=lambda r: r[0])
            parts = [r if isinstance(r, tuple) else (r,) for _, r in done]
            outs = tuple(np.concatenate([p[j] for p in parts]) for j in range(len(parts[0])))
        return outs[0] if len(outs) == 1 else outs

    def _pass(self, x: np.ndarray, timings: dict | None, workers: int):
        """One pass of every step over the batch x (steps split over `workers` threads)."""
        graph = self.graph
        types = self._types
        env = {graph.inputs[0].name: x}
        labels = self.step_names() if timings is not None else None
        for k, s in enumerate(self.steps):
            t0 = time.perf_counter()
            if isinstance(s, _Gemm) and s.feeds is not None:
                env[s.feeds.x] = self._run_feeding(s, env[s.x], workers)
                inputs = [s.x]
            elif isinstance(s, _Gemm):
                env[s.out] = self._run_gemm(s, env[s.x], workers)
                inputs = [s.x]
            elif isinstance(s, _Direct):
                env[s.out] = s.run(env[s.x])
                inputs = [s.x]
            else:
                env[s.output.name] = eval_node(s, [env[i] for i in s.inputs],
                                               [types[i].dtype for i in s.inputs], self._impl)
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


def _vnni_form(nd, groups, xt: QType, wc, bias, xshape, geom, oshape, rqp, pool):
    """(kind, parameters, per-channel rows, packed weights, images per chunk) of a step for
    amchw.kernels.vnni, or None where that path does not apply: no VNNI on this CPU (or
    AMCHW_VNNI=off), grouped convolutions, inputs of more than 8 bits or whose zero point lies
    outside their codes, centred weights outside [-128, 127]."""
    if not V.HAVE_VNNI or groups != 1 or not isinstance(xt, QType) or xt.bits > 8:
        return None
    xmin = int(xt.lo)
    if not 0 <= int(xt.zero_point) - xmin <= 255 or int(xt.hi) - xmin > 255:
        return None
    if wc.size and (int(wc.min()) < -128 or int(wc.max()) > 127):
        return None
    zx = int(xt.zero_point)
    if nd == 0:
        prm, chan, w, per_image = V.dense_plan(wc, bias, xmin, zx, rqp)
        return ("dense", prm, chan, w, max(1, 8 * CHUNK_BYTES // per_image))
    in_shape = (xshape[0], 1, xshape[1]) if nd == 1 else tuple(xshape)
    prm, chan, w, per_image = V.conv_plan(wc, bias, xmin, zx, in_shape, geom, oshape, rqp, pool)
    return ("conv", prm, chan, w, max(1, CHUNK_BYTES // per_image))


def plan_for(graph: Graph) -> FastPlan:
    """The graph's cached FastPlan (rebuilt when the Numba thread count changes)."""
    threads = numba.get_num_threads()
    plan = graph.__dict__.get("_fast_plan")
    if plan is None or plan.threads != threads:
        plan = FastPlan(graph, threads)
        object.__setattr__(graph, "_fast_plan", plan)
    return plan
