"""Integer GEMMs on the VNNI instruction VPDPBUSD (or AVX2's VPMADDWD), for the fused executor.

VPDPBUSD multiplies, in each 32-bit lane, four unsigned bytes of one operand by the four
signed bytes at the same place in the other, and adds the four products to the lane's int32
(modulo 2^32, no saturation). With activations as unsigned bytes and weights as signed bytes
this is a u8 x s8 -> int32 dot product: 64 multiply-accumulates per instruction on 512-bit
registers (AVX-512 VNNI), 32 on 256-bit ones (AVX-VNNI, or AVX-512 VNNI with VL).

Exactness. An input code x of a type of at most 8 bits is held as u = x - xmin in [0, 255]
(xmin: the least code of its type), a centred weight w - zw in [-128, 127] as a signed byte.
Since x - zx = u + (xmin - zx),

    sum_r (x_r - zx)(w_r - zw) = sum_r u_r (w_r - zw) + (xmin - zx) * sum_r (w_r - zw),

and the second term is one constant per filter, folded into the bias here. All of it is
computed modulo 2^32, which is what the reference int32 accumulator does (conv2d_i32 wraps at
every addition; a wrap at the end gives the same bits). A padded input position holds u =
zx - xmin, that is x = zx: it adds exactly 0, as in the reference. Reduction entries added to
make the reduction a multiple of 4, and filters added to fill a register, have weight 0.

Without VNNI (AVX2 only), the same tiles compute each lane's four products as two VPMADDWD
pair sums of the bytes widened to 16 bits, in two accumulators added by one VPHADDD at the
end (`EMULATED`; exact: |u * w| < 2^15 and a pair sum fits int32).

Two micro-kernels, both one generated LLVM function (numba intrinsic) that keeps an MR x NR
tile of <L x i32> accumulators (L = LANES: 16 or 8) in registers over the whole reduction:
- `_tile_pos` (convolutions): a vector holds L output positions, the weights of one filter
  are broadcast. A block is 8 filters x 48 positions: one tile on 512-bit registers, four of
  4 x 24 on 256-bit ones, twelve of 2 x 16 on AVX2. Activations come packed by
  `im2col_panels` as [r/4][position][4], or, for a convolution whose input another integer
  step writes, straight from channel quads (`convq_body`: implicit GEMM, tap by tap, the
  taps adding up through `_tile_pos_add`).
- `_tile_row1` .. `_tile_row3`, `_tile_big` (dense layers): a vector holds L filters, the
  activations of one image are broadcast. Weights are packed by `pack_dense` as
  [panel][r/4][64 filters][4]; a tile covers 64 filters (512-bit), 32 (256-bit) or 16 (AVX2).

The epilogues (`_epilogue`) requantize in float32 lanes, or in int64 in one pass per row
(`_epi_i64`), or through kernels.fused.gemm_epilogue, into the step's output, the next
step's bytes or its channel quads.

The form is chosen once per process by _isa (`ISA`, `KERNEL`; `HAVE_VNNI` when there is
one): where none exists, or Numba compiles for another CPU, amchw.ir.fast keeps its exact
float path. Nothing here is compiled before its first call, so a machine without the
instructions never meets them."""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _isa
from .fused import _rq_f32, gemm_epilogue
from .modes import ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP

POS_MR = 8        # filters per convolution tile
ACC_BLOCK_BYTES = 65536   # accumulators of one filter block of conv_body
POS_W = 48        # output positions per convolution panel (3 vectors of 16)
ROW_W = 64        # filters per dense panel (4 vectors of 16)


# AMCHW_VNNI=off forces the portable float path (tests compare the two); without the JIT
# (NUMBA_DISABLE_JIT=1) the intrinsics cannot run at all. See _isa for the choice.
ISA = _isa.ISA
HAVE_VNNI = ISA is not None
LANES = 16 if ISA == "avx512" else 8     # int32 lanes of one vector register
_DOT = {"avx512": "llvm.x86.avx512.vpdpbusd.512",
        "avx256": "llvm.x86.avx512.vpdpbusd.256"}.get(ISA or "avx512")
EMULATED = ISA == "avx2"                  # VPMADDWD on 16-bit halves instead of VPDPBUSD
KERNEL = {"avx512": "VNNI, 512-bit", "avx256": "VNNI, 256-bit",
          "avx2": "AVX2 VPMADDWD"}.get(ISA or "", "none")

_I8 = ir.IntType(8)
_I16 = ir.IntType(16)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_I32, LANES)
_B32 = ir.VectorType(_I8, 32)
_W16 = ir.VectorType(_I16, 16)
_W32 = ir.VectorType(_I16, 32)
# VPHADDD of the two pair-sum accumulators leaves lanes in the order 0 1 4 5 2 3 6 7 (it adds
# within 128-bit halves); this shuffle (its own inverse) restores them
_PHADD_ORDER = [0, 1, 4, 5, 2, 3, 6, 7]


def _emulated_ops(builder):
    """The AVX2 form of the tile's arithmetic: a VPDPBUSD lane (four u8 x s8 products summed)
    is computed as two VPMADDWD pair sums of the bytes widened to 16 bits (exact: |u*s| <
    2^15, and a pair sum fits int32), kept in two accumulators per output vector (bytes 0-15
    and 16-31 of the operands) and added across pairs with one VPHADDD at the end."""
    pmadd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_W16, _W16]),
                                           "llvm.x86.avx2.pmadd.wd")
    phadd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC, _VEC]),
                                           "llvm.x86.avx2.phadd.d")
    lo = ir.Constant(ir.VectorType(_I32, 16), list(range(16)))
    hi = ir.Constant(ir.VectorType(_I32, 16), list(range(16, 32)))

    def widen(v, unsigned):   # <8 x i32> holding 32 bytes -> its two <16 x i16> halves
        b = builder.bitcast(v, _B32)
        w = builder.zext(b, _W32) if unsigned else builder.sext(b, _W32)
        return (builder.shuffle_vector(w, ir.Constant(_W32, None), lo),
                builder.shuffle_vector(w, ir.Constant(_W32, None), hi))

    def widen_bcast(v, unsigned):  # a broadcast word: both halves are the same
        b = builder.shuffle_vector(builder.bitcast(v, _B32), ir.Constant(_B32, None), lo)
        w = builder.zext(b, _W16) if unsigned else builder.sext(b, _W16)
        return (w, w)

    def dot(accs2, q2, p2):    # accs2: the two accumulator slots; q2, p2: widened halves
        for h in range(2):
            acc = builder.load(accs2[h])
            builder.store(builder.add(acc, builder.call(pmadd, [q2[h], p2[h]])), accs2[h])

    def final(accs2):
        r = builder.call(phadd, [builder.load(accs2[0]), builder.load(accs2[1])])
        return builder.shuffle_vector(r, ir.Constant(_VEC, None),
                                      ir.Constant(_VEC, _PHADD_ORDER))

    return widen, widen_bcast, dot, final


def _make_tile(mr: int, nr: int, vector_is_unsigned: bool, accumulate: bool = False):
    """An intrinsic tile(P, p_off, ldp, Q, q_off, ldq, kq, C, c_off, ldc) computing, with
    L = LANES,

        C[c_off + i*ldc + L*v + l] = sum_{kk < kq} sum_{b < 4}
            P[p_off + i*ldp + 4*kk + b] * Q[q_off + kk*ldq + 4*L*v + 4*l + b]

    for i < mr, v < nr, lanes l < L, in int32 modulo 2^32 (offsets in elements; P and Q are
    byte arrays, C an int32 array). P's four bytes are broadcast to every lane; Q's 4*L bytes
    are one vector. With vector_is_unsigned, Q holds the unsigned bytes and P the signed
    ones; otherwise the reverse. With accumulate, the sums are added to what C holds (C +=
    instead of C =). The caller keeps every index in bounds."""
    lanes = LANES
    vec = _VEC
    emulated = EMULATED

    @intrinsic
    def tile(typingctx, P, p_off, ldp, Q, q_off, ldq, kq, C, c_off, ldc):
        sig = types.void(P, p_off, ldp, Q, q_off, ldq, kq, C, c_off, ldc)

        def codegen(context, builder, signature, args):
            a = signature.args
            pd = cgutils.create_struct_proxy(a[0])(context, builder, value=args[0]).data
            qd = cgutils.create_struct_proxy(a[3])(context, builder, value=args[3]).data
            cd = cgutils.create_struct_proxy(a[7])(context, builder, value=args[7]).data
            (p_off, ldp, q_off, ldq, kq, c_off, ldc) = (
                context.cast(builder, args[j], a[j], types.int64) for j in (1, 2, 4, 5, 6, 8, 9))
            zero = ir.Constant(vec, [0] * lanes)
            slots = 2 if emulated else 1
            accs = [[[cgutils.alloca_once_value(builder, zero) for _ in range(slots)]
                     for _ in range(nr)] for _ in range(mr)]
            splat = ir.Constant(vec, [0] * lanes)
            if emulated:
                widen, widen_bcast, edot, final = _emulated_ops(builder)
            else:
                dp = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec, [vec, vec, vec]), _DOT)

            def const(v):
                return ir.Constant(_I64, v)

            with cgutils.for_range(builder, kq) as loop:
                kk = loop.index
                qbase = builder.add(q_off, builder.mul(kk, ldq))
                qv = []
                for v in range(nr):
                    ptr = builder.gep(qd, [builder.add(qbase, const(4 * lanes * v))])
                    q = builder.load(builder.bitcast(ptr, vec.as_pointer()), align=1)
                    qv.append(widen(q, vector_is_unsigned) if emulated else q)
                pbase = builder.add(p_off, builder.mul(kk, const(4)))
                for i in range(mr):
                    ptr = builder.gep(pd, [builder.add(pbase, builder.mul(ldp, const(i)))])
                    word = builder.load(builder.bitcast(ptr, _I32.as_pointer()), align=1)
                    one = builder.insert_element(ir.Constant(vec, None), word,
                                                 ir.Constant(_I32, 0))
                    bc = builder.shuffle_vector(one, ir.Constant(vec, None), splat)
                    if emulated:
                        bc = widen_bcast(bc, not vector_is_unsigned)
                    for v in range(nr):
                        if emulated:
                            edot(accs[i][v], qv[v], bc)
                            continue
                        acc = builder.load(accs[i][v][0])
                        ops = [acc, qv[v], bc] if vector_is_unsigned else [acc, bc, qv[v]]
                        builder.store(builder.call(dp, ops), accs[i][v][0])
            for i in range(mr):
                for v in range(nr):
                    off = builder.add(c_off, builder.add(builder.mul(ldc, const(i)),
                                                         const(lanes * v)))
                    ptr = builder.bitcast(builder.gep(cd, [off]), vec.as_pointer())
                    val = final(accs[i][v]) if emulated else builder.load(accs[i][v][0])
                    if accumulate:
                        val = builder.add(val, builder.load(ptr, align=4))
                    builder.store(val, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


# Tiles: a convolution tile covers CT_MR filters x CT_W positions of a POS_MR x POS_W block,
# a dense tile DT_W filters of a ROW_W panel for up to ROW_BIG images. With 512-bit registers
# one tile is the whole block (24 accumulators); with 256-bit ones (16 registers) a quarter
# of it (12 accumulators), and the dense tiles are half a panel wide; emulated on AVX2 (two
# accumulators each, and the widened operands) 2 x 2 vectors: 2 filters x 16 positions, or
# 16 filters x 2 images.
if LANES == 16:
    CT_MR, CT_W, DT_W, ROW_BIG = 8, 48, 64, 6
elif not EMULATED:
    CT_MR, CT_W, DT_W, ROW_BIG = 4, 24, 32, 3
else:   # two accumulators per output vector
    CT_MR, CT_W, DT_W, ROW_BIG = 2, 16, 16, 2
_tile_pos = _make_tile(CT_MR, CT_W // LANES, True)
_tile_pos_add = _make_tile(CT_MR, CT_W // LANES, True, True)
_tile_row1 = _make_tile(1, DT_W // LANES, False)
_tile_row2 = _make_tile(2, DT_W // LANES, False)
_tile_row3 = _make_tile(3, DT_W // LANES, False)
_tile_big = _make_tile(ROW_BIG, DT_W // LANES, False)
ROW_MR = 6        # images per dense tile (fewer for the last ones); a multiple of ROW_BIG


# ---------------------------------------------------------------------------- packing
def pack_conv(wc: np.ndarray) -> tuple[np.ndarray, int]:
    """Centred weights (K, R) int64 in [-128, 127] -> (int8 (Kp, 4*k4), k4): rows padded with
    zero filters to a multiple of POS_MR, the reduction with zeros to a multiple of 4."""
    k_, r_ = wc.shape
    k4 = max(1, -(-r_ // 4))
    kp = -(-k_ // POS_MR) * POS_MR
    out = np.zeros((kp, 4 * k4), dtype=np.int8)
    out[:k_, :r_] = wc
    return out, k4


def pack_dense(wc: np.ndarray) -> tuple[np.ndarray, int]:
    """Centred weights (K, R) int64 in [-128, 127] -> (int8 flat, k4) laid out as
    [panel][r/4][ROW_W filters][4] (filters padded with zeros to a multiple of ROW_W, the
    reduction to a multiple of 4)."""
    k_, r_ = wc.shape
    k4 = max(1, -(-r_ // 4))
    kp = -(-k_ // ROW_W) * ROW_W
    w = np.zeros((kp, 4 * k4), dtype=np.int8)
    w[:k_, :r_] = wc
    packed = w.reshape(kp // ROW_W, ROW_W, k4, 4).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(packed).reshape(-1), k4


def folded_bias(bias: np.ndarray, wc: np.ndarray, xmin: int, zx: int) -> np.ndarray:
    """bias + (xmin - zx) * sum_r (w - zw), the constant that moves the products from
    u = x - xmin back to x - zx (int64; the epilogue wraps to int32)."""
    return (bias.astype(np.int64) + (int(xmin) - int(zx)) * wc.astype(np.int64).sum(axis=1))


# ---------------------------------------------------------------------------- convolution
@njit(cache=True, inline="always")
def _to_u8(src, dst, xmin):
    for i in range(src.size):
        dst[i] = np.uint8(src[i] - xmin)


@njit(cache=True, nogil=True)
def pad_u8(x, n0, nb, xmin, zx, top, left, hp, wp, xp):
    """xp[nn, c, top + h, left + w] = x[n0 + nn, c, h, w] - xmin, and zx - xmin (a code that
    adds 0) everywhere else. x: int32 (N, C, H, W); xp: uint8 (>= nb, C, hp, wp)."""
    _, c_, h_, w_ = x.shape
    pad = np.uint8(zx - xmin)
    xm = np.int32(xmin)
    for nn in range(nb):
        for c in range(c_):
            xp[nn, c] = pad
            for h in range(h_):
                _to_u8(x[n0 + nn, c, h], xp[nn, c, top + h, left:left + w_], xm)


@njit(cache=True, inline="always")
def _word(b0, b1, b2, b3):
    """The low bytes of b0, b1, b2, b3 as one little-endian 32-bit word."""
    return ((np.uint32(b0) & np.uint32(255)) | ((np.uint32(b1) & np.uint32(255)) << np.uint32(8))
            | ((np.uint32(b2) & np.uint32(255)) << np.uint32(16))
            | (np.uint32(b3) << np.uint32(24)))


@njit(cache=True, inline="always")
def _pack4(s0, s1, s2, s3, dst):
    """dst[u] = the bytes s0[u], s1[u], s2[u], s3[u] as one little-endian word."""
    for u in range(dst.size):
        dst[u] = (np.uint32(s0[u]) | (np.uint32(s1[u]) << np.uint32(8))
                  | (np.uint32(s2[u]) << np.uint32(16)) | (np.uint32(s3[u]) << np.uint32(24)))


@njit(cache=True, nogil=True)
def im2col_panels(xp, nb, kh, kw, sh, sw, dh, dw, oh_n, ow_n, r_, k4, ldm, a32):
    """Pack the convolution windows of nb padded images xp (uint8 (nb, C, HP, WP)) for
    _tile_pos: a32 (uint32, viewed as bytes by the kernel) gets, for the output position m =
    nn*OH*OW + oh*OW + ow and reduction index r = (c*KH + i)*KW + j,

        byte r % 4 of a32[(r // 4)*ldm + m] = xp[nn, c, oh*sh + i*dh, ow*sw + j*dw]

    (ldm >= nb*OH*OW: the row length, a multiple of 48 so that every panel of 48 positions
    is whole). Reduction indices r >= r_ (padding to a multiple of 4) read the first tap:
    their weights are zero. Four taps are packed into one 32-bit store, along a row of
    output positions. Returns OH*OW."""
    c_, hp, wp = xp.shape[1], xp.shape[2], xp.shape[3]
    plane = oh_n * ow_n
    img = c_ * hp * wp
    flat = xp.reshape(-1)
    offs = np.empty(4 * k4, dtype=np.int64)
    for r in range(4 * k4):
        rr = r if r < r_ else 0
        c = rr // (kh * kw)
        t = rr - c * kh * kw
        i = t // kw
        j = t - i * kw
        offs[r] = (c * hp + i * dh) * wp + j * dw
    span = (ow_n - 1) * sw + 1
    for rq in range(k4):
        o0 = offs[4 * rq]
        o1 = offs[4 * rq + 1]
        o2 = offs[4 * rq + 2]
        o3 = offs[4 * rq + 3]
        row = rq * ldm
        for nn in range(nb):
            for oh in range(oh_n):
                s = nn * img + oh * sh * wp
                e = s + span
                dst = row + nn * plane + oh * ow_n
                if sw == 1:
                    _pack4(flat[s + o0:e + o0], flat[s + o1:e + o1], flat[s + o2:e + o2],
                           flat[s + o3:e + o3], a32[dst:dst + ow_n])
                else:
                    _pack4(flat[s + o0:e + o0:sw], flat[s + o1:e + o1:sw],
                           flat[s + o2:e + o2:sw], flat[s + o3:e + o3:sw], a32[dst:dst + ow_n])
    return plane


@njit(cache=True, nogil=True)
def conv_gemm(wp, k4, a8, ldm, npanels, acc):
    """acc[k, m] = the int32 dot product of filter k (rows of wp, int8 (Kp, 4*k4)) with the
    packed window of position m (a8: the bytes of im2col_panels' output, rows of ldm
    words), for all Kp filters and the positions of npanels panels of 48. acc: int32
    (Kp, >= npanels*48), C-contiguous."""
    kp = wp.shape[0]
    ldp = wp.shape[1]
    ldc = acc.shape[1]
    w8 = wp.reshape(-1)
    c = acc.reshape(-1)
    for p in range(npanels):
        for k0 in range(0, kp, CT_MR):
            for q0 in range(p * POS_W, (p + 1) * POS_W, CT_W):
                _tile_pos(w8, k0 * ldp, ldp, a8, 4 * q0, 4 * ldm, k4, c, k0 * ldc + q0, ldc)


# The scalar parameters of a step travel as one int64 array (a Numba call checks the type of
# every argument, and 40 of them cost more than a small layer's arithmetic). Indices:
P_XMIN, P_ZX, P_KH, P_KW, P_SH, P_SW, P_DH, P_DW, P_TOP, P_LEFT, P_HP, P_WP, P_OH, P_OW = range(14)
P_R, P_K, P_K4, P_KP = 14, 15, 16, 17
P_HAS_RQ, P_AZP, P_ZO, P_LO, P_HI, P_ROUND = 18, 19, 20, 21, 22, 23
P_HAS_POOL, P_PKH, P_PKW, P_PSH, P_PSW, P_PDH, P_PDW, P_PTOP, P_PLEFT = range(24, 33)
# where a step writes the channel-quad input of the next (convq_body): that input's top and
# left padding and the step's output plane (after its pool)
P_QTOP, P_QLEFT, P_QOH, P_QOW = range(33, 37)
N_PARAMS = 37


@njit(cache=True, nogil=True)
def _epilogue(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, fq, out):
    """kernels.fused.gemm_epilogue on acc (int32 (>= k_, >= nb*OH*OW): filters k0 ..
    k0+k_-1) with the step's parameters: chan = (folded bias, multiplier, shift, offset)
    rows of length K; fq: kernels.fused.requant_f32_params of the requantization (or
    none). out: the step's output (N, K, OH2, OW2), or the whole channel-quad input buffer
    (N, HP, C4, WP, 4) of the next step (convq_body), which _quads fills."""
    if _i64_applies(acc, k0, k_, oh_n, ow_n, prm, chan, fq, out):
        _epi_i64(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, out)
        return
    if out.ndim == 5:
        if prm[P_HAS_RQ] != 0 and prm[P_HAS_POOL] == 0 and fq.shape[1] > 0:
            q4 = k_ - k_ % 4
            _quads_f32(acc, n0, nb, k0, q4, oh_n, ow_n, prm, chan, fq, out)
            if q4 < k_:
                _quads(acc[q4:], n0, nb, k0 + q4, k_ - q4, oh_n, ow_n, prm, chan, fq, out)
        else:
            _quads(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, fq, out)
        return
    a4 = acc.reshape(1, 1, acc.shape[0], acc.shape[1])
    gemm_epilogue(a4, chan[0], k0, n0, oh_n, ow_n, prm[P_HAS_RQ] != 0, chan[1], chan[2], chan[3],
                  prm[P_AZP], prm[P_ZO], prm[P_LO], prm[P_HI], prm[P_ROUND],
                  prm[P_HAS_POOL] != 0, prm[P_PKH], prm[P_PKW], prm[P_PSH], prm[P_PSW],
                  prm[P_PDH], prm[P_PDW], prm[P_PTOP], prm[P_PLEFT], out, fq, nb, k_)


@njit(cache=True, inline="always")
def _put_quad_row(t, kb, flat, w32, row):
    """Channels b < kb of a channel quad, the rows t[b] (int32 codes in [0, 255]), into
    byte b of the words w32[row + u] of a channel-quad buffer (flat: its bytes): one 32-bit
    store per place for a whole quad, the bytes alone for a partial one."""
    n = t.shape[1]
    if kb == 4:
        t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
        d = w32[row:row + n]
        for u in range(n):
            d[u] = _word(t0[u], t1[u], t2[u], t3[u])
    else:
        for b in range(kb):
            tb = t[b]
            for u in range(n):
                flat[4 * (row + u) + b] = tb[u]


@njit(cache=True, inline="always")
def _i64_applies(acc, k0, k_, oh_n, ow_n, prm, chan, fq, out):
    """Whether _epi_i64 takes the step: an int64 requantization (not float32 lanes) that
    _i64_rows cleared for every channel, and no pool or a 1-D one of disjoint windows."""
    if prm[P_HAS_RQ] == 0 or fq.shape[1] > 0:
        return False
    for k in range(k0, k0 + k_):
        if chan[7, k] == 0:
            return False
    if prm[P_HAS_POOL] == 0:
        return True
    pow_n = out.shape[3] if out.ndim == 4 else prm[P_QOW]
    poh = out.shape[2] if out.ndim == 4 else prm[P_QOH]
    return (oh_n == 1 and poh == 1 and prm[P_PKH] == 1 and prm[P_PSW] == prm[P_PKW]
            and prm[P_PDW] == 1 and prm[P_PLEFT] == 0 and pow_n * prm[P_PKW] <= ow_n)


@njit(cache=True, inline="always")
def _rq_i64(a, a_lo, a_hi, m, off, s, half, z, lo, hi, mode):
    """clamp(round_shift(a*m + off, s) + zo, lo, hi) for an int32 a, with a clamped to
    [a_lo, a_hi] first (exact: see _i64_rows), the rounding written per mode (s >= 1)."""
    t = np.int64(min(max(a, a_lo), a_hi)) * m + off
    if mode == ROUND_HALF_EVEN:
        q = (t + (half - 1) + ((t >> s) & 1)) >> s
    elif mode == ROUND_HALF_UP:
        q = (t + half) >> s
    elif mode == ROUND_HALF_AWAY:
        u = (abs(t) + half) >> s
        q = -u if t < 0 else u
    else:
        q = t >> s
    return np.int32(min(max(q + z, lo), hi))


@njit(cache=True, inline="always")
def _i64_row(src, b32, c, pkw, tr, mode):
    """tr[u] = _rq_i64 of the max over window u (pkw entries, disjoint) of wrap_i32(src + b32);
    c: (a_lo, a_hi, m, off, s, half, zo, lo, hi) as int64 locals."""
    a_lo, a_hi, m, off = np.int32(c[0]), np.int32(c[1]), c[2], c[3]
    s, half, z, lo, hi = c[4], c[5], c[6], c[7], c[8]
    n = tr.size
    if pkw == 1:
        for u in range(n):
            tr[u] = _rq_i64(np.int32(src[u] + b32), a_lo, a_hi, m, off, s, half, z, lo, hi, mode)
    elif pkw == 2:
        for u in range(n):
            a = max(np.int32(src[2 * u] + b32), np.int32(src[2 * u + 1] + b32))
            tr[u] = _rq_i64(a, a_lo, a_hi, m, off, s, half, z, lo, hi, mode)
    else:
        for u in range(n):
            a = np.int32(src[u * pkw] + b32)
            for j in range(1, pkw):
                a = max(a, np.int32(src[u * pkw + j] + b32))
            tr[u] = _rq_i64(a, a_lo, a_hi, m, off, s, half, z, lo, hi, mode)


@njit(cache=True, nogil=True)
def _epi_i64(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, out):
    """The epilogue (wrap with the bias, 1-D pool of disjoint windows or none, requantization
    in int64) in one pass per output row, into out (N, K, OH2, OW2) or a channel-quad buffer
    (see _quads): the fast form of gemm_epilogue for the cases _i64_applies admits."""
    quads = out.ndim == 5
    pkw = prm[P_PKW] if prm[P_HAS_POOL] != 0 else 1
    pow_n = out.shape[3] if not quads else prm[P_QOW]
    rows = oh_n
    plane = oh_n * ow_n
    mode = prm[P_ROUND]
    tr = np.empty((4, pow_n), dtype=np.int32)
    c = np.empty(9, dtype=np.int64)
    c[6], c[7], c[8] = prm[P_ZO], prm[P_LO], prm[P_HI]
    if quads:
        top, left = prm[P_QTOP], prm[P_QLEFT]
        hp, c4, wp = out.shape[1], out.shape[2], out.shape[3]
        flat = out.reshape(-1)
        w32 = flat.view(np.uint32)
    for q0 in range(0, k_, 4):
        kb = min(4, k_ - q0)
        for nn in range(nb):
            for oh in range(rows):
                a = nn * plane + oh * ow_n
                for b in range(kb):
                    k = k0 + q0 + b
                    c[0], c[1], c[2], c[3] = chan[4, k], chan[5, k], chan[1, k], chan[6, k]
                    c[4] = chan[2, k]
                    c[5] = np.int64(1) << (c[4] - 1)
                    b32 = np.int32(chan[0, k])
                    src = acc[q0 + b, a:a + ow_n]
                    if mode == ROUND_HALF_EVEN:   # one loop per mode, the mode a constant
                        _i64_row(src, b32, c, pkw, tr[b], ROUND_HALF_EVEN)
                    elif mode == ROUND_HALF_UP:
                        _i64_row(src, b32, c, pkw, tr[b], ROUND_HALF_UP)
                    elif mode == ROUND_HALF_AWAY:
                        _i64_row(src, b32, c, pkw, tr[b], ROUND_HALF_AWAY)
                    else:
                        _i64_row(src, b32, c, pkw, tr[b], ROUND_FLOOR)
                if quads:
                    row = (((n0 + nn) * hp + top + oh) * c4 + (k0 + q0) // 4) * wp + left
                    _put_quad_row(tr, kb, flat, w32, row)
                else:
                    for b in range(kb):
                        d = out[n0 + nn, k0 + q0 + b, oh]
                        t = tr[b]
                        for u in range(pow_n):
                            d[u] = t[u]


@njit(cache=True, inline="always")
def _rq4_row(r0, r1, r2, r3, bs, c, d, mode):
    """d[u] = the word of the four channels' float32-lane requantizations of
    wrap_i32(r_b[u] + bs[b]) (rows of equal length, slices: LLVM vectorises these loops
    better than offset indexing); c: (4, 8) float32 rows per channel (unused, a_lo,
    a_hi, m, off, half, 2^-s, -), with zo, lo, hi in c[0, 7], c[1, 7], c[2, 7]. Every
    constant is read into a local first (w32 could alias c as far as LLVM knows)."""
    z, flo, fhi = c[0, 7], c[1, 7], c[2, 7]
    b0, b1, b2, b3 = bs[0], bs[1], bs[2], bs[3]
    l0, l1, l2, l3 = np.int32(c[0, 1]), np.int32(c[1, 1]), np.int32(c[2, 1]), np.int32(c[3, 1])
    h0, h1, h2, h3 = np.int32(c[0, 2]), np.int32(c[1, 2]), np.int32(c[2, 2]), np.int32(c[3, 2])
    m0, m1, m2, m3 = c[0, 3], c[1, 3], c[2, 3], c[3, 3]
    o0, o1, o2, o3 = c[0, 4], c[1, 4], c[2, 4], c[3, 4]
    f0, f1, f2, f3 = c[0, 5], c[1, 5], c[2, 5], c[3, 5]
    s0, s1, s2, s3 = c[0, 6], c[1, 6], c[2, 6], c[3, 6]
    for u in range(d.size):
        v0 = _rq_f32(np.int32(r0[u] + b0), l0, h0, m0, o0, f0, s0, z, flo, fhi, mode)
        v1 = _rq_f32(np.int32(r1[u] + b1), l1, h1, m1, o1, f1, s1, z, flo, fhi, mode)
        v2 = _rq_f32(np.int32(r2[u] + b2), l2, h2, m2, o2, f2, s2, z, flo, fhi, mode)
        v3 = _rq_f32(np.int32(r3[u] + b3), l3, h3, m3, o3, f3, s3, z, flo, fhi, mode)
        d[u] = _word(v0, v1, v2, v3)


@njit(cache=True, nogil=True)
def _quads_f32(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, fq, buf):
    """_quads for a requantization in float32 lanes without a pool (k_ a multiple of 4): each
    word of four channels made in one pass from the accumulators, no intermediate block."""
    top, left = prm[P_QTOP], prm[P_QLEFT]
    hp, c4, wp = buf.shape[1], buf.shape[2], buf.shape[3]
    w32 = buf.reshape(-1).view(np.uint32)
    plane = oh_n * ow_n
    mode = prm[P_ROUND]
    c = np.zeros((4, 8), dtype=np.float32)
    bs = np.zeros(4, dtype=np.int32)
    c[0, 7], c[1, 7], c[2, 7] = prm[P_ZO], prm[P_LO], prm[P_HI]
    for q0 in range(0, k_, 4):
        for b in range(4):
            k = k0 + q0 + b
            bs[b] = np.int32(chan[0, k])   # the folded bias, wrapped as the accumulator wraps
            for j in range(6):
                c[b, 1 + j] = fq[j, k]
        kq = (k0 + q0) // 4
        r0, r1, r2, r3 = acc[q0], acc[q0 + 1], acc[q0 + 2], acc[q0 + 3]
        for nn in range(nb):
            for oh in range(oh_n):
                a = nn * plane + oh * ow_n
                e = a + ow_n
                dst = (((n0 + nn) * hp + top + oh) * c4 + kq) * wp + left
                d = w32[dst:dst + ow_n]
                s0, s1, s2, s3 = r0[a:e], r1[a:e], r2[a:e], r3[a:e]
                if mode == ROUND_HALF_EVEN:   # one loop per mode, the mode a constant
                    _rq4_row(s0, s1, s2, s3, bs, c, d, ROUND_HALF_EVEN)
                elif mode == ROUND_HALF_UP:
                    _rq4_row(s0, s1, s2, s3, bs, c, d, ROUND_HALF_UP)
                elif mode == ROUND_HALF_AWAY:
                    _rq4_row(s0, s1, s2, s3, bs, c, d, ROUND_HALF_AWAY)
                else:
                    _rq4_row(s0, s1, s2, s3, bs, c, d, ROUND_FLOOR)


@njit(cache=True, nogil=True)
def _quads(acc, n0, nb, k0, k_, oh_n, ow_n, prm, chan, fq, buf):
    """_epilogue into a channel-quad buffer: four channels at a time, gemm_epilogue into a
    small int32 block, then the four planes interleaved into the bytes of buf[n, PT + oh,
    k // 4, PL + ow, k % 4] (PT, PL = prm[P_QTOP], prm[P_QLEFT]; k0 a multiple of 4)."""
    qoh, qow = prm[P_QOH], prm[P_QOW]
    top, left = prm[P_QTOP], prm[P_QLEFT]
    hp, c4, wp = buf.shape[1], buf.shape[2], buf.shape[3]
    flat = buf.reshape(-1)
    w32 = flat.view(np.uint32)
    tmp = np.empty((nb, 4, qoh, qow), dtype=np.int32)
    cols = acc.shape[1]
    for q0 in range(0, k_, 4):
        kb = min(4, k_ - q0)
        a4 = acc[q0:q0 + kb].reshape(1, 1, kb, cols)
        lo_, hi_ = k0 + q0, k0 + q0 + kb
        fqq = fq[:, lo_:hi_] if fq.shape[1] > 0 else fq
        gemm_epilogue(a4, chan[0, lo_:hi_], 0, 0, oh_n, ow_n, prm[P_HAS_RQ] != 0,
                      chan[1, lo_:hi_], chan[2, lo_:hi_], chan[3, lo_:hi_], prm[P_AZP],
                      prm[P_ZO], prm[P_LO], prm[P_HI], prm[P_ROUND], prm[P_HAS_POOL] != 0,
                      prm[P_PKH], prm[P_PKW], prm[P_PSH], prm[P_PSW], prm[P_PDH], prm[P_PDW],
                      prm[P_PTOP], prm[P_PLEFT], tmp, fqq, nb, kb)
        kq = (k0 + q0) // 4
        for nn in range(nb):
            for oh in range(qoh):
                row = (((n0 + nn) * hp + top + oh) * c4 + kq) * wp + left
                _put_quad_row(tmp[nn, :, oh], kb, flat, w32, row)


@njit(cache=True, nogil=True)
def conv_chunk(x, n0, nb, prm, chan, fq, wp, xp_buf, a32_buf, acc_buf, out, k_lo, k_hi):
    """One fused Conv [-> Requant [-> MaxPool]] step for images n0 .. n0+nb-1 and filters
    k_lo .. k_hi-1 (k_lo a multiple of 8; two threads can share a layer by filters): pad,
    then conv_body. x: int32 (N, C, H, W); prm: the P_* parameters; chan: int64 (4, K); wp:
    pack_conv's weights; scratch (flat, large enough): xp_buf uint8, a32_buf uint32,
    acc_buf int32."""
    c_ = x.shape[1]
    hp, wpad = prm[P_HP], prm[P_WP]
    xp = xp_buf[:nb * c_ * hp * wpad].reshape(nb, c_, hp, wpad)
    pad_u8(x, n0, nb, prm[P_XMIN], prm[P_ZX], prm[P_TOP], prm[P_LEFT], hp, wpad, xp)
    conv_body(xp, n0, nb, prm, chan, fq, wp, a32_buf, acc_buf, out, k_lo, k_hi)


@njit(cache=True, nogil=True)
def conv_body(xp, n0, nb, prm, chan, fq, wp, a32_buf, acc_buf, out, k_lo, k_hi):
    """conv_chunk from the padded unsigned codes xp (uint8 (nb, C, HP, WP): pad_u8's form,
    or what a previous step's epilogue wrote there): pack, multiply on VNNI, then
    kernels.fused.gemm_epilogue with the folded bias into out[n0 .. n0+nb-1] (int32, or
    the next step's uint8 input)."""
    oh_n, ow_n = prm[P_OH], prm[P_OW]
    k4, kp = prm[P_K4], prm[P_KP]
    plane = oh_n * ow_n
    m_total = nb * plane
    npanels = -(-m_total // POS_W)
    ldm = npanels * POS_W
    a32 = a32_buf[:k4 * ldm]
    acc = acc_buf[:kp * ldm].reshape(kp, ldm)
    im2col_panels(xp, nb, prm[P_KH], prm[P_KW], prm[P_SH], prm[P_SW], prm[P_DH], prm[P_DW],
                  oh_n, ow_n, prm[P_R], k4, ldm, a32)
    # positions past the last image (up to the panel's end) are multiplied but never read
    k_hi = min(k_hi, prm[P_K])
    # filters in blocks whose accumulators (about ACC_BLOCK_BYTES) are still in the caches
    # when the epilogue reads them
    kb = max(POS_MR, ACC_BLOCK_BYTES // (4 * ldm) // POS_MR * POS_MR)
    for k0 in range(k_lo, k_hi, kb):
        k1 = min(k0 + kb, k_hi)
        kt = -(-(k1 - k0) // POS_MR) * POS_MR
        conv_gemm(wp[k0:k0 + kt], k4, a32.view(np.uint8), ldm, npanels, acc[:kt])
        _epilogue(acc[:kt], n0, nb, k0, k1 - k0, oh_n, ow_n, prm, chan, fq, out)


# ---------------------------------------------------------------------------- implicit conv
# A convolution whose input another VNNI step writes can skip im2col: that step writes the codes
# in channel quads, xq[n, h, c // 4, w, c % 4] (uint8 (N, HP, C4, WP, 4)), so that the four bytes
# of a 32-bit word are four channels at one place, and the words of one channel quad along a
# row are consecutive. With the reduction ordered (i, j, channel) and the weights packed so
# (pack_conv_q), a tile of 48 consecutive output positions of one row, for tap (i, j), reads
# its activation vectors straight from that buffer (stride 1 along the row); the taps add up
# in the accumulators (_tile_pos_add). Needs a stride of 1 along W and rows of >= 48 outputs
# (the last tile of a row starts at OW - 48, recomputing a few positions with the same sums).


def pack_conv_q(w: np.ndarray, c_: int, kh: int, kw: int) -> tuple[np.ndarray, int]:
    """pack_conv's weights (Kp, 4*k4), reduction in (c, i, j) order, -> (int8 (Kp, KH*KW*4*C4),
    C4) in (i, j, c) order with the channels padded with zero weights to 4*C4."""
    kp = w.shape[0]
    c4 = -(-c_ // 4)
    w4 = w[:, :c_ * kh * kw].reshape(kp, c_, kh, kw).transpose(0, 2, 3, 1)
    out = np.zeros((kp, kh, kw, 4 * c4), dtype=np.int8)
    out[..., :c_] = w4
    return out.reshape(kp, -1), c4


@njit(cache=True, nogil=True)
def convq_body(xq, n0, nb, prm, chan, fq, wq, acc_buf, out, k_lo, k_hi):
    """conv_body on the channel-quad input xq (uint8 (nb, HP, C4, WP, 4), C-contiguous, border
    and padded channels holding zx - xmin) with pack_conv_q's weights wq: implicit GEMM, then
    kernels.fused.gemm_epilogue into out[n0 .. n0+nb-1]. Needs prm[P_SW] == 1 and OW >= 48."""
    kh, kw, sh, dh, dw = prm[P_KH], prm[P_KW], prm[P_SH], prm[P_DH], prm[P_DW]
    oh_n, ow_n = prm[P_OH], prm[P_OW]
    hp, c4, wp = xq.shape[1], xq.shape[2], xq.shape[3]
    plane = oh_n * ow_n
    ldc = nb * plane
    k_hi = min(k_hi, prm[P_K])
    kt = -(-(k_hi - k_lo) // POS_MR) * POS_MR
    acc = acc_buf[:kt * ldc].reshape(kt, ldc)
    c = acc.reshape(-1)
    x8 = xq.reshape(-1)
    w8 = wq.reshape(-1)
    ldp = wq.shape[1]
    rowb = 4 * c4 * wp
    ntile = -(-ow_n // POS_W)
    for nn in range(nb):
        for oh in range(oh_n):
            for t in range(ntile):
                ow0 = min(t * POS_W, ow_n - POS_W)
                m0 = nn * plane + oh * ow_n + ow0
                for k0 in range(0, kt, CT_MR):
                    for q in range(0, POS_W, CT_W):
                        for i in range(kh):
                            base = (nn * hp + oh * sh + i * dh) * rowb + 4 * (ow0 + q)
                            for j in range(kw):
                                poff = (k_lo + k0) * ldp + 4 * c4 * (i * kw + j)
                                qoff = base + 4 * j * dw
                                if i == 0 and j == 0:
                                    _tile_pos(w8, poff, ldp, x8, qoff, 4 * wp, c4, c,
                                              k0 * ldc + m0 + q, ldc)
                                else:
                                    _tile_pos_add(w8, poff, ldp, x8, qoff, 4 * wp, c4, c,
                                                  k0 * ldc + m0 + q, ldc)
    _epilogue(acc[:kt], n0, nb, k_lo, k_hi - k_lo, oh_n, ow_n, prm, chan, fq, out)


def convq_fits(prm) -> bool:
    """Whether convq_body applies to a convolution of conv_plan's parameters: stride 1 along
    W, rows of at least 48 outputs, and at most 1/8 of the products recomputed."""
    ow_n = int(prm[P_OW])
    return (int(prm[P_SW]) == 1 and ow_n >= POS_W
            and -(-ow_n // POS_W) * POS_W * 8 <= 9 * ow_n)


def convq_input(n_: int, prm, channels: int) -> np.ndarray:
    """A channel-quad input buffer for n_ images, every byte the code that adds 0."""
    c4 = -(-channels // 4)
    return np.full((n_, int(prm[P_HP]), c4, int(prm[P_WP]), 4), int(prm[P_ZX] - prm[P_XMIN]),
                   dtype=np.uint8)


def _params(wc, bias, xmin, zx, rq, pool):
    """The P_* array and the per-channel rows shared by conv_plan and dense_plan."""
    k_, r_ = wc.shape
    has_rq, mult, shift, offset, azp, zo, lo, hi, rounding = rq
    prm = np.zeros(N_PARAMS, np.int64)
    prm[P_XMIN], prm[P_ZX], prm[P_R], prm[P_K] = xmin, zx, r_, k_
    prm[P_HAS_RQ:P_ROUND + 1] = (int(has_rq), azp, zo, lo, hi, rounding)
    prm[P_HAS_POOL:P_PLEFT + 1] = [int(v) for v in pool]
    ones = np.ones(k_, np.int64)
    chan = np.zeros((8, k_), np.int64)
    chan[:4] = np.stack([folded_bias(np.asarray(bias), wc, xmin, zx), np.asarray(mult) * ones,
                         np.asarray(shift) * ones, np.asarray(offset) * ones])
    if has_rq:
        chan[4:] = _i64_rows(chan[1], chan[2], chan[3], int(azp), int(zo), int(lo), int(hi))
    return prm, chan


def _i64_rows(mult, shift, offset, azp, zo, lo, hi) -> np.ndarray:
    """Rows (a_lo, a_hi, off, ok) per channel for _epi_i64: with m > 0 the requantization
    R(a) = round_shift(a*m + off, s) + zo (off = offset - azp*m) is monotone, so clamping a to
    [a_lo, a_hi] (R(a_lo) <= lo - 1, R(a_hi) >= hi + 1) changes no output; ok where m > 0,
    1 <= s <= 62 and every t = a*m + off formed there, plus 2^s, stays below 2^62."""
    out = np.zeros((4, mult.shape[0]), np.int64)
    for k in range(mult.shape[0]):
        m, s = int(mult[k]), int(shift[k])
        if m <= 0 or not 1 <= s <= 62:
            continue
        off = int(offset[k]) - azp * m
        a_lo = max(((lo - zo - 1) * 2**s - off) // m, -2**31)
        a_hi = min(-((-((hi - zo + 1) * 2**s - off)) // m), 2**31 - 1)
        if max(abs(a_lo * m + off), abs(a_hi * m + off)) + 2**s >= 2**62 or abs(off) >= 2**62:
            continue
        out[:, k] = (a_lo, a_hi, off, 1)
    return out


def conv_plan(wc, bias, xmin, zx, in_shape, geom, out_hw, rq, pool):
    """(parameters, per-channel rows, packed weights, bytes of scratch per image) of a
    convolution for conv_chunk. wc: centred weights (K, C*KH*KW) in [-128, 127]; bias (K,);
    the input codes lie in [xmin, xmin + 255] with zero point zx; in_shape (C, H, W); geom
    (kh, kw, sh, sw, dh, dw, top, left); out_hw (OH, OW); rq (has_rq, multiplier, shift,
    offset, accumulator zero point, zo, lo, hi, rounding); pool (has_pool, kh, kw, sh, sw,
    dh, dw, top, left), as kernels.fused.gemm_epilogue takes them."""
    prm, chan = _params(wc, bias, xmin, zx, rq, pool)
    kh, kw, sh, sw, dh, dw, top, left = geom
    oh_n, ow_n = out_hw
    c_, h_, w_ = in_shape
    hp = max(top + h_, (oh_n - 1) * sh + (kh - 1) * dh + 1)
    wpad = max(left + w_, (ow_n - 1) * sw + (kw - 1) * dw + 1)
    w, k4 = pack_conv(wc)
    prm[P_KH:P_OW + 1] = (kh, kw, sh, sw, dh, dw, top, left, hp, wpad, oh_n, ow_n)
    prm[P_K4], prm[P_KP] = k4, w.shape[0]
    return prm, chan, w, c_ * hp * wpad + oh_n * ow_n * (4 * k4 + 4 * w.shape[0])


def conv_scratch(prm, channels: int, nb: int) -> tuple[int, int, int]:
    """Element counts of conv_chunk's three scratch buffers for nb images."""
    npanels = -(-(nb * int(prm[P_OH]) * int(prm[P_OW])) // POS_W)
    return (nb * channels * int(prm[P_HP]) * int(prm[P_WP]), npanels * int(prm[P_K4]) * POS_W,
            int(prm[P_KP]) * npanels * POS_W)


# ---------------------------------------------------------------------------- dense
@njit(cache=True, nogil=True)
def dense_gemm(pw, k4, kp, a8, m_, acc):
    """acc[m, k] = the int32 dot product of activation row m (a8: uint8 (>= m_ rounded up to
    6, 4*k4)) with filter k of the packed weights pw (pack_dense), for m < m_ and all kp
    filters (padded). acc: int32 (>= m_ rounded up to 6, kp), C-contiguous."""
    lda = a8.shape[1]
    a = a8.reshape(-1)
    c = acc.reshape(-1)
    panel = k4 * 4 * ROW_W
    for p in range(kp // ROW_W):
        for f0 in range(p * ROW_W, (p + 1) * ROW_W, DT_W):
            q0 = p * panel + 4 * (f0 - p * ROW_W)
            m0 = 0
            while m0 < m_:
                left = m_ - m0
                if left >= ROW_BIG:
                    _tile_big(a, m0 * lda, lda, pw, q0, 4 * ROW_W, k4, c, m0 * kp + f0, kp)
                    m0 += ROW_BIG
                elif left >= 3:
                    _tile_row3(a, m0 * lda, lda, pw, q0, 4 * ROW_W, k4, c, m0 * kp + f0, kp)
                    m0 += 3
                elif left == 2:
                    _tile_row2(a, m0 * lda, lda, pw, q0, 4 * ROW_W, k4, c, m0 * kp + f0, kp)
                    m0 += 2
                else:
                    _tile_row1(a, m0 * lda, lda, pw, q0, 4 * ROW_W, k4, c, m0 * kp + f0, kp)
                    m0 += 1


def dense_plan(wc, bias, xmin, zx, rq):
    """(parameters, per-channel rows, packed weights, bytes of scratch per image) of a dense
    layer for dense_chunk (arguments as in conv_plan)."""
    prm, chan = _params(wc, bias, xmin, zx, rq, (0, 1, 1, 1, 1, 1, 1, 0, 0))
    w, k4 = pack_dense(wc)
    prm[P_K4], prm[P_KP] = k4, -(-wc.shape[0] // ROW_W) * ROW_W
    return prm, chan, w, 4 * k4 + 8 * int(prm[P_KP])


def dense_scratch(prm, nb: int) -> tuple[int, int]:
    """Element counts of dense_chunk's two scratch buffers for nb images."""
    return nb * 4 * int(prm[P_K4]), 2 * nb * int(prm[P_KP])


@njit(cache=True, nogil=True)
def dense_chunk(x, n0, nb, prm, chan, fq, pw, a8_buf, acc_buf, out, k_lo, k_hi):
    """One fused Dense [-> Requant] step for images n0 .. n0+nb-1 and filters k_lo .. k_hi-1
    (k_lo a multiple of 64, the filters of a weight panel): x (int32 (N, R)) becomes rows of
    u = x - xmin (zero beyond R), then dense_body. Scratch (flat): a8_buf uint8
    (>= nb*4*k4), acc_buf int32 (>= 2*nb*kp: the accumulators, then their transpose)."""
    r_, k4 = prm[P_R], prm[P_K4]
    xmin = np.int32(prm[P_XMIN])
    a8 = a8_buf[:nb * 4 * k4].reshape(nb, 4 * k4)
    for nn in range(nb):
        _to_u8(x[n0 + nn], a8[nn, :r_], xmin)
        a8[nn, r_:] = 0
    dense_body(a8, n0, nb, prm, chan, fq, pw, acc_buf, out, k_lo, k_hi)


@njit(cache=True, nogil=True)
def dense_body(a8, n0, nb, prm, chan, fq, pw, acc_buf, out, k_lo, k_hi):
    """dense_chunk from the rows of unsigned codes a8 (uint8 (nb, 4*k4), zero beyond R:
    dense_chunk's form, or what a previous step's epilogue wrote there): VNNI product, then
    kernels.fused.gemm_epilogue with the folded bias into out[n0 .. n0+nb-1]."""
    k_, k4 = prm[P_K], prm[P_K4]
    k_hi = min(k_hi, k_)
    kt = -(-(k_hi - k_lo) // ROW_W) * ROW_W
    acc = acc_buf[:nb * kt].reshape(nb, kt)
    dense_gemm(pw[k_lo * 4 * k4:(k_lo + kt) * 4 * k4], k4, kt, a8, nb, acc)
    acc_t = acc_buf[nb * kt:2 * nb * kt].reshape(kt, nb)
    for nn in range(nb):
        for k in range(k_hi - k_lo):
            acc_t[k, nn] = acc[nn, k]
    _epilogue(acc_t, n0, nb, k_lo, k_hi - k_lo, 1, 1, prm, chan, fq, out)
