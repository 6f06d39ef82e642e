"""The stepped array: a cycle-by-cycle model of an R x C systolic array running one GEMM
O (M x N) = init + A (M x K) . B (K x N), moving one operand per register per cycle.

It is the reference the closed-form timing model (sims.timing) is tested against, and a user
can run a whole model through it (`amchw simulate --stepped`). Nothing in here reads the
closed form: cycle counts come out of a controller that starts work only when the hardware it
needs is free, and the array checks its own invariants (an operand meets the operand it must
meet, a stationary value is in place when the stream reaches it, a load never overwrites a tile
that has not been used yet) and stops with an error if one fails.

Operand registers hold 16-bit values: an 8-bit code after its zero point is subtracted (a uint8
code with a zero point needs 9 bits). PEs accumulate in int32 and wrap like the kernels.

Two kernels cover the three dataflows (see sims.timing for the mapping):
  _run_os:          output-stationary. Row i of the tile is fed L[row, k] from the left at
                    start + k + i, column j is fed U[k, col] from the top at start + k + j; PE
                    (i, j) multiplies the two tokens that meet there (they carry (fold, k) tags
                    that must agree), starts from init on k = 0 and writes its output on k = T-1.
  _run_stationary:  weight-/input-stationary. A tile W[r0:r0+R, c0:c0+C] is shifted down each
                    column into shadow registers (R cycles, column j starting j cycles after
                    column 0), a PE swaps it into its active register when the first token of
                    that fold reaches it, S[t, row] enters row i at start + t + i, and partial
                    sums flow down: row 0 starts them from init (first row fold) or from the
                    output buffer (later row folds); row R-1 writes them back. Folds go column
                    fold by column fold, row folds innermost.
ws runs S = A, W = B; is runs S = B^T, W = A^T and transposes the result.

Controller policies (`pipelined` = 1 / `scalesim` = 0):
  scalesim:  a fold starts only when the array is empty (no token in any register); a
             stationary fold first loads its tile, then streams. Padded rows and columns of a
             ragged fold carry null tokens, as SCALE-Sim pads with null requests.
  pipelined: os: the next fold streams as soon as the current one has fed its last operand.
             ws/is: the next tile starts loading into the shadow registers as soon as the
             current tile starts being used (its first token reaches PE (0, 0)) and the load
             chain is free; a fold streams when the stream port is free and its tile's
             column 0 has finished loading.
The count reported is the number of cycles from the first to the last busy cycle (pipelined),
or the index of the last busy cycle counted from 0 (scalesim, SCALE-Sim v2's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from amchw.kernels.rounding import wrap_i32

from .hardware import DATAFLOWS
from .timing import TIMINGS

# counters returned by the kernels, in this order
COUNTERS = ("macs", "a_reads", "b_reads", "out_writes", "psum_reads", "pe_cycles")


@njit(cache=True, inline="always")
def _os_order(koff, rf, cf):
    """The folds that run, in order (row fold major); a fold whose column fold streams no
    step is not run."""
    order = np.empty(rf * cf, np.int64)
    F = 0
    for f in range(rf * cf):
        if koff[f % cf + 1] > koff[f % cf]:
            order[F] = f
            F += 1
    return order, F


@njit(cache=True, inline="always")
def _os_controller(t, started, pending, tokens, F, pipelined, order, starts, koff, cf, R, C):
    """The os controller at cycle t: may the next fold (in `order`) start streaming? Returns
    (started, pending). scalesim: only when every operand of the previous fold was fed and
    none is left in the array (`tokens`); pipelined: as soon as row 0's and column 0's feed
    ports fed the previous fold's final operand (rows and columns further out follow with
    their skew)."""
    if started < F:
        if started == 0:
            go = True
        elif pipelined:
            fp = order[started - 1] % cf
            go = t >= starts[started - 1] + koff[fp + 1] - koff[fp]
        else:
            go = pending == 0 and not tokens
        if go:
            starts[started] = t
            fc = order[started] % cf
            started += 1
            pending += (R + C) * (koff[fc + 1] - koff[fc])
    return started, pending


@njit(cache=True, inline="always")
def _stationary_controller(t, streamed, loaded, pending, tokens, F, T, R, pipelined, starts,
                           loads):
    """The ws/is controller at cycle t; returns (streamed, loaded, pending). A fold streams
    when the stream port is free and its tile's column 0 has finished loading. A tile starts
    loading: pipelined, once the previous tile is in use (its wave of swaps runs ahead of this
    load's wave) and the load chain is free; scalesim, once the previous fold has streamed
    everything and drained (no token left, `tokens`)."""
    if streamed < loaded:
        ready = t >= loads[streamed] + R
        if streamed > 0:
            ready = ready and t >= starts[streamed - 1] + T
        if ready:
            starts[streamed] = t
            streamed += 1
            pending += R * T
    if loaded < F:
        if loaded == 0:
            go = True
        elif pipelined:
            go = streamed == loaded and t >= loads[loaded - 1] + R
        else:
            go = streamed == loaded and pending == 0 and not tokens
        if go:
            loads[loaded] = t
            loaded += 1
    return streamed, loaded, pending


@njit(cache=True)
def _run_os_shift(L, U, init, R, C, pipelined, kidx, koff):
    """L (Sr x K), U (K x Sc), init (Sr x Sc): returns out, last busy cycle, counters.

    Column fold c streams the reduction steps kidx[koff[c]:koff[c+1]] (all K of them for a
    dense run; for zero skipping, only the steps where a column of the fold has a nonzero),
    so fold f lasts T_f = koff[c+1] - koff[c] steps; a fold with no step is not run and its
    outputs are their init."""
    Sr = L.shape[0]
    Sc = U.shape[1]
    rf = (Sr + R - 1) // R
    cf = (Sc + C - 1) // C
    order, F = _os_order(koff, rf, cf)   # the folds that run, in order
    out = np.zeros((Sr, Sc), dtype=np.int32)
    for f in range(rf * cf):  # outputs of folds that do not run keep their init
        if koff[f % cf + 1] == koff[f % cf]:
            for i in range(R):
                for j in range(C):
                    row = (f // cf) * R + i
                    col = (f % cf) * C + j
                    if row < Sr and col < Sc:
                        out[row, col] = init[row, col]
    # token registers: fold (-1 = empty), k, value, valid (a padded row/column carries nulls)
    a_f = np.full((R, C), -1, np.int64)
    a_k = np.zeros((R, C), np.int64)
    a_v = np.zeros((R, C), np.int16)
    a_ok = np.zeros((R, C), np.bool_)
    b_f = np.full((R, C), -1, np.int64)
    b_k = np.zeros((R, C), np.int64)
    b_v = np.zeros((R, C), np.int16)
    b_ok = np.zeros((R, C), np.bool_)
    acc = np.zeros((R, C), np.int64)
    starts = np.full(max(F, 1), -1, np.int64)
    cnt = np.zeros(6, np.int64)
    started = 0
    pending = 0       # operands of started folds not yet fed into the array
    t = 0
    last_busy = -1
    while True:
        # 1. shift: operands move one PE right (A) and one PE down (B)
        for i in range(R - 1, -1, -1):
            for j in range(C - 1, -1, -1):
                if j > 0:
                    a_f[i, j] = a_f[i, j - 1]
                    a_k[i, j] = a_k[i, j - 1]
                    a_v[i, j] = a_v[i, j - 1]
                    a_ok[i, j] = a_ok[i, j - 1]
                else:
                    a_f[i, j] = -1
                if i > 0:
                    b_f[i, j] = b_f[i - 1, j]
                    b_k[i, j] = b_k[i - 1, j]
                    b_v[i, j] = b_v[i - 1, j]
                    b_ok[i, j] = b_ok[i - 1, j]
                else:
                    b_f[i, j] = -1
        tokens = 0
        for i in range(R):
            for j in range(C):
                if a_f[i, j] >= 0 or b_f[i, j] >= 0:
                    tokens += 1
        # 2. controller: may the next fold start streaming this cycle?
        started, pending = _os_controller(t, started, pending, tokens > 0, F, pipelined,
                                          order, starts, koff, cf, R, C)
        # 3. inject at the left edge (row i) and the top edge (column j), skewed by i and j
        for i in range(R):
            for s in range(started - 1, -1, -1):
                f = order[s]
                c = f % cf
                k = t - starts[s] - i
                if k >= koff[c + 1] - koff[c]:
                    break
                if k >= 0:
                    r0 = (f // cf) * R
                    row = r0 + i
                    a_f[i, 0] = f
                    a_k[i, 0] = k
                    pending -= 1
                    if row < Sr:
                        a_v[i, 0] = L[row, kidx[koff[c] + k]]
                        a_ok[i, 0] = True
                        cnt[1] += 1
                    else:
                        a_v[i, 0] = 0
                        a_ok[i, 0] = False
                    break
        for j in range(C):
            for s in range(started - 1, -1, -1):
                f = order[s]
                c = f % cf
                k = t - starts[s] - j
                if k >= koff[c + 1] - koff[c]:
                    break
                if k >= 0:
                    c0 = c * C
                    col = c0 + j
                    b_f[0, j] = f
                    b_k[0, j] = k
                    pending -= 1
                    if col < Sc:
                        b_v[0, j] = U[kidx[koff[c] + k], col]
                        b_ok[0, j] = True
                        cnt[2] += 1
                    else:
                        b_v[0, j] = 0
                        b_ok[0, j] = False
                    break
        # 4. every PE holding a token pair multiplies and accumulates
        busy = False
        for i in range(R):
            for j in range(C):
                fa = a_f[i, j]
                fb = b_f[i, j]
                if fa < 0 and fb < 0:
                    continue
                busy = True
                if fa != fb or a_k[i, j] != b_k[i, j]:
                    raise RuntimeError("stepped os: operands from different steps met in a PE")
                k = a_k[i, j]
                if a_ok[i, j] and b_ok[i, j]:
                    row = (fa // cf) * R + i
                    col = (fa % cf) * C + j
                    if k == 0:
                        acc[i, j] = init[row, col]
                    acc[i, j] = wrap_i32(acc[i, j] + np.int64(a_v[i, j]) * np.int64(b_v[i, j]))
                    cnt[0] += 1
                    if k == koff[fa % cf + 1] - koff[fa % cf] - 1:
                        out[row, col] = acc[i, j]
                        cnt[3] += 1
        if busy:
            last_busy = t
            cnt[5] += R * C
        elif started == F and pending == 0:
            break
        t += 1
    return out, last_busy, cnt


@njit(cache=True)
def _run_os(L, U, init, R, C, pipelined, kidx, koff):
    """The output-stationary array of _run_os_shift, with the same controller, injections,
    checks and counters, but registers kept as injection histories instead of being shifted:
    operands move one PE per cycle, so the A register of PE (i, j) at cycle t holds what row i
    was fed at cycle t - j, and the B register what column j was fed at t - i. Histories are
    stored newest first, so the PEs of a row read consecutive positions and one cycle of the
    array is a plain loop the compiler vectorises (tag check, multiply-accumulate, counts).
    A token's tag is fold * KT + step (KT: the longest fold's steps), kept in 32 bits (it
    wraps past 2^31: two tokens that meet with different steps still differ unless their
    tags are a multiple of 2^32 apart). A fold's first step reaches PE (i, j) on the
    anti-diagonal i + j = t - start, its last on i + j = t - start - (T - 1): accumulators are
    cleared there before the products and read out there after them, each after checking the
    PE's tag. Returns what _run_os_shift returns, bit for bit (tests/sims/test_stepped.py)."""
    Sr = L.shape[0]
    Sc = U.shape[1]
    rf = (Sr + R - 1) // R
    cf = (Sc + C - 1) // C
    order, F = _os_order(koff, rf, cf)
    out = np.zeros((Sr, Sc), dtype=np.int32)
    KT = 1
    for c in range(cf):
        KT = max(KT, koff[c + 1] - koff[c])
    for f in range(rf * cf):  # outputs of folds that do not run keep their init
        if koff[f % cf + 1] == koff[f % cf]:
            for i in range(R):
                for j in range(C):
                    row = (f // cf) * R + i
                    col = (f % cf) * C + j
                    if row < Sr and col < Sc:
                        out[row, col] = init[row, col]
    # row i's token fed at cycle t sits at ha_*[i, pa(t)], pa(t) = oa - t, so PE (i, j)
    # reads ha_*[i, pa(t) + j]; column j's at hb_*[pb(t), j], pb(t) = ob - t, PE (i, j)
    # reading hb_*[pb(t) + i, j]. Empty: tag -1, value 0, not valid.
    W = 512 + R + C
    ha_t = np.full((R, W), -1, np.int32)
    ha_v = np.zeros((R, W), np.int16)     # operand registers are 16 bits wide
    ha_ok = np.zeros((R, W), np.uint8)
    hb_t = np.full((W, C), -1, np.int32)
    hb_v = np.zeros((W, C), np.int16)
    hb_ok = np.zeros((W, C), np.uint8)
    oa = W - C
    ob = W - R
    acc = np.zeros((R, C), np.int32)
    starts = np.full(max(F, 1), -1, np.int64)
    cnt = np.zeros(6, np.int64)
    started = 0
    pending = 0
    t = 0
    last_busy = -1
    last_a = -(1 << 40)   # last cycle a row was fed a token, and a column
    last_b = -(1 << 40)
    while True:
        # slide the windows when the newest position would fall off the front
        if oa - t < 0:
            for i in range(R):
                for q in range(C - 1):
                    ha_t[i, W - C + 1 + q] = ha_t[i, q]
                    ha_v[i, W - C + 1 + q] = ha_v[i, q]
                    ha_ok[i, W - C + 1 + q] = ha_ok[i, q]
            oa = t + W - C
        if ob - t < 0:
            for q in range(R - 1):
                for j in range(C):
                    hb_t[W - R + 1 + q, j] = hb_t[q, j]
                    hb_v[W - R + 1 + q, j] = hb_v[q, j]
                    hb_ok[W - R + 1 + q, j] = hb_ok[q, j]
            ob = t + W - R
        pa = oa - t
        pb = ob - t
        # 1. tokens in the array after this cycle's shift (fed within the last C - 1 cycles
        # to a row, or R - 1 to a column)
        tokens = last_a >= t - C + 1 or last_b >= t - R + 1
        # 2. controller (shared with _run_os_shift)
        started, pending = _os_controller(t, started, pending, tokens, F, pipelined, order,
                                          starts, koff, cf, R, C)
        # 3. feed row i and column j (skewed by i and j): row i takes the newest fold that
        # has reached it (started at or before t - i), if that fold still has a step for it;
        # so fold s feeds rows (t - starts[s + 1], t - starts[s]] less those it is done with.
        # Nothing fed: an empty token.
        for i in range(R):
            ha_t[i, pa] = -1
            ha_v[i, pa] = 0
            ha_ok[i, pa] = 0
        for j in range(C):
            hb_t[pb, j] = -1
            hb_v[pb, j] = 0
            hb_ok[pb, j] = 0
        newer = t + 1                 # start of the next newer fold (none yet: past t)
        for s in range(started - 1, -1, -1):
            if t - newer + 1 > R - 1 and t - newer + 1 > C - 1:
                break                 # every row and column is taken by newer folds
            f = order[s]
            c = f % cf
            T = koff[c + 1] - koff[c]
            d = t - starts[s]         # row i / column j gets step d - i / d - j
            lo = max(t - newer + 1, d - T + 1, 0)
            r0 = (f // cf) * R
            for i in range(lo, min(d, R - 1) + 1):
                k = d - i
                ha_t[i, pa] = np.int32(f * KT + k)
                last_a = t
                pending -= 1
                if r0 + i < Sr:
                    ha_v[i, pa] = L[r0 + i, kidx[koff[c] + k]]
                    ha_ok[i, pa] = 1
                    cnt[1] += 1
            c0 = c * C
            for j in range(lo, min(d, C - 1) + 1):
                k = d - j
                hb_t[pb, j] = np.int32(f * KT + k)
                last_b = t
                pending -= 1
                if c0 + j < Sc:
                    hb_v[pb, j] = U[kidx[koff[c] + k], c0 + j]
                    hb_ok[pb, j] = 1
                    cnt[2] += 1
            newer = starts[s]
        busy = last_a >= t - C + 1 or last_b >= t - R + 1
        if busy:
            # 4a. a fold's first step clears the accumulators it reaches (anti-diagonal
            # i + j = t - start); folds end in start order, so older ones are further out
            for s in range(started - 1, -1, -1):
                d = t - starts[s]
                f = order[s]
                T = koff[f % cf + 1] - koff[f % cf]
                if d - (T - 1) > R + C - 2:
                    break
                if d > R + C - 2:
                    continue
                for i in range(max(0, d - C + 1), min(R - 1, d) + 1):
                    if ha_t[i, pa + d - i] != np.int32(f * KT):
                        raise RuntimeError("stepped os: a fold's first step is not where it "
                                           "must be")
                    acc[i, d - i] = 0
            # 4b. every PE: both tokens carry the same tag; valid pairs multiply and
            # accumulate (invalid tokens hold 0; int32 accumulators wrap)
            bad = 0
            macs = 0
            ta = ha_t[:, pa:pa + C]       # the A and B registers of every PE, (R, C)
            va = ha_v[:, pa:pa + C]
            oka = ha_ok[:, pa:pa + C]
            tb = hb_t[pb:pb + R]
            vb = hb_v[pb:pb + R]
            okb = hb_ok[pb:pb + R]
            for i in range(R):
                for j in range(C):
                    bad += ta[i, j] != tb[i, j]
                    macs += oka[i, j] & okb[i, j]
                    acc[i, j] += va[i, j] * vb[i, j]
            if bad:
                raise RuntimeError("stepped os: operands from different steps met in a PE")
            cnt[0] += macs
            # 5. a fold's last step reads the accumulators out (i + j = t - start - T + 1)
            for s in range(started - 1, -1, -1):
                f = order[s]
                c = f % cf
                last = koff[c + 1] - koff[c] - 1
                e = t - starts[s] - last
                if e > R + C - 2:
                    break
                if e < 0:
                    continue
                r0 = (f // cf) * R
                for i in range(max(0, e - C + 1), min(R - 1, e) + 1):
                    j = e - i
                    if ha_t[i, pa + j] != np.int32(f * KT + last):
                        raise RuntimeError("stepped os: a fold's last step is not where it "
                                           "must be")
                    if r0 + i < Sr and c * C + j < Sc:
                        out[r0 + i, c * C + j] = np.int64(init[r0 + i, c * C + j]) \
                            + np.int64(acc[i, j])
                        cnt[3] += 1
            last_busy = t
            cnt[5] += R * C
        elif started == F and pending == 0:
            break
        t += 1
    return out, last_busy, cnt


@njit(cache=True)
def _run_stationary_shift(S, W, init, R, C, pipelined):
    """S (T x Sr) streamed, W (Sr x Sc) stationary, init (T x Sc): out = init + S . W.
    The plain model: every streamed register shifts every cycle (the twin of
    _run_stationary)."""
    T, Sr = S.shape
    Sc = W.shape[1]
    rf = (Sr + R - 1) // R
    cf = (Sc + C - 1) // C
    F = rf * cf
    # fold f: column fold f // rf, row fold f % rf (row folds innermost, so that only the
    # T x C partial sums of one column fold are live in the output buffer)
    out = np.zeros((T, Sc), dtype=np.int32)
    # streamed tokens: fold (-1 empty), index t, value, valid
    x_f = np.full((R, C), -1, np.int64)
    x_t = np.zeros((R, C), np.int64)
    x_v = np.zeros((R, C), np.int16)
    x_ok = np.zeros((R, C), np.bool_)
    # partial sums leaving each PE this cycle
    ps = np.zeros((R, C), np.int64)
    # active stationary register and shadow (load chain) register: fold, destination row, value
    w_f = np.full((R, C), -1, np.int64)
    w_v = np.zeros((R, C), np.int16)
    w_ok = np.zeros((R, C), np.bool_)
    s_f = np.full((R, C), -1, np.int64)
    s_d = np.full((R, C), -1, np.int64)
    s_v = np.zeros((R, C), np.int16)
    s_ok = np.zeros((R, C), np.bool_)
    starts = np.full(max(F, 1), -1, np.int64)      # stream start of each fold
    loads = np.full(F, -1, np.int64)       # load start (column 0) of each fold's tile
    cnt = np.zeros(6, np.int64)
    streamed = 0
    loaded = 0
    pending = 0       # tokens of started folds not yet fed into the array
    t = 0
    last_busy = -1
    while True:
        # 1. streamed tokens move one PE right (those in column C-1 leave the array)
        tokens = 0
        for i in range(R):
            for j in range(C - 1, 0, -1):
                x_f[i, j] = x_f[i, j - 1]
                x_t[i, j] = x_t[i, j - 1]
                x_v[i, j] = x_v[i, j - 1]
                x_ok[i, j] = x_ok[i, j - 1]
                if x_f[i, j] >= 0:
                    tokens += 1
            x_f[i, 0] = -1
        # 2. controller: which fold streams, which tile starts loading
        streamed, loaded, pending = _stationary_controller(
            t, streamed, loaded, pending, tokens > 0, F, T, R, pipelined, starts, loads)
        # 3. new tokens enter each row, skewed by the row
        for i in range(R):
            for f in range(streamed - 1, -1, -1):
                tt = t - starts[f] - i
                if tt >= T:
                    break
                if tt >= 0:
                    row = (f % rf) * R + i
                    x_f[i, 0] = f
                    x_t[i, 0] = tt
                    pending -= 1
                    if row < Sr:
                        x_v[i, 0] = S[tt, row]
                        x_ok[i, 0] = True
                        cnt[1] += 1
                    else:
                        x_v[i, 0] = 0
                        x_ok[i, 0] = False
                    break
        # 4. PEs, bottom row first so that each reads the partial sum its upper neighbour
        #    produced in the previous cycle; a token swaps in its fold's tile on arrival
        busy = False
        for i in range(R - 1, -1, -1):
            for j in range(C):
                f = x_f[i, j]
                if f < 0:
                    ps[i, j] = 0
                    continue
                busy = True
                if w_f[i, j] != f:
                    if s_f[i, j] != f or s_d[i, j] != i:
                        raise RuntimeError("stepped stationary: a token reached a PE before its "
                                           "tile was loaded")
                    w_f[i, j] = f
                    w_v[i, j] = s_v[i, j]
                    w_ok[i, j] = s_ok[i, j]
                tt = x_t[i, j]
                col = (f // rf) * C + j
                rfold = f % rf
                if i == 0:
                    if col < Sc:
                        if rfold == 0:
                            p = np.int64(init[tt, col])
                        else:
                            p = np.int64(out[tt, col])
                            cnt[4] += 1
                    else:
                        p = 0
                else:
                    p = ps[i - 1, j]
                if x_ok[i, j] and w_ok[i, j]:
                    p = wrap_i32(p + np.int64(x_v[i, j]) * np.int64(w_v[i, j]))
                    cnt[0] += 1
                ps[i, j] = p
                if i == R - 1 and col < Sc:
                    out[tt, col] = p
                    cnt[3] += 1
        # 5. load chains: column j of tile f shifts down one row per cycle from loads[f] + j;
        #    the value entering at step c is for row R-1-c, and rows below the wave stay put
        for f in range(loaded - 1, -1, -1):
            if t >= loads[f] + C - 1 + R:
                break
            r0 = (f % rf) * R
            c0 = (f // rf) * C
            for j in range(C):
                c = t - loads[f] - j
                if c < 0 or c >= R:
                    continue
                busy = True
                for i in range(c, 0, -1):
                    if i == c and s_f[i, j] >= 0 and s_f[i, j] != w_f[i, j]:
                        raise RuntimeError("stepped stationary: a load overwrote a tile that "
                                           "was never used")
                    s_f[i, j] = s_f[i - 1, j]
                    s_d[i, j] = s_d[i - 1, j]
                    s_v[i, j] = s_v[i - 1, j]
                    s_ok[i, j] = s_ok[i - 1, j]
                if c == 0 and s_f[0, j] >= 0 and s_f[0, j] != w_f[0, j]:
                    raise RuntimeError("stepped stationary: a load overwrote a tile that was "
                                       "never used")
                row = r0 + R - 1 - c
                col = c0 + j
                s_f[0, j] = f
                s_d[0, j] = R - 1 - c
                if row < Sr and col < Sc:
                    s_v[0, j] = W[row, col]
                    s_ok[0, j] = True
                    cnt[2] += 1
                else:
                    s_v[0, j] = 0
                    s_ok[0, j] = False
        if busy:
            last_busy = t
            cnt[5] += R * C
        elif streamed == F and pending == 0:
            break
        t += 1
    return out, last_busy, cnt


@njit(cache=True)
def _run_stationary(S, W, init, R, C, pipelined):
    """S (T x Sr) streamed, W (Sr x Sc) stationary, init (T x Sc): out = init + S . W.

    The model of _run_stationary_shift (same controller, checks and counters) with nothing
    shifted. Returns what _run_stationary_shift returns, bit for bit
    (tests/sims/test_stepped.py). How each kind of register is held:

    streamed tokens: PE (i, j) holds at cycle t what row i was fed at t - j. One flat history,
      cycle major, row minor, newest cycle first: row i's token fed at cycle t sits at
      h*[(oa - t) * R + i], so PE (i, j) reads position pa + j * R + i (pa = (oa - t) * R) and
      the whole array is the block h*[pa:pa + R * C], column major. The stationary registers
      are held in the same order (PE (i, j) at k = j * R + i), so a cycle of the array is one
      loop over k that the compiler vectorises: every token must meet its fold's tile, a PE
      without a token passes 0 down. Partial sums go from PE k - 1 to k (one row down) and are
      double-buffered (ps0: last cycle's, ps1: this cycle's, PE k's at index k + 1), so the
      loop order does not matter; row 0 takes the bias or the stored partial sum instead of
      the sum from above and is redone after the loop.
    row 0 and the bottom row: folds stream one after another (the controller starts a fold
      only after the previous one fed its T tokens), so at cycle t a fold started at s holds
      row 0's PEs j with 0 <= t - s - j < T, token t - s - j, and the bottom row's with
      0 <= t - s - (R - 1) - j < T: each fold is one run of columns there, taken as a run
      (each PE's fold tag checked).
    shadow (load chain) registers: a chain takes one load at a time (the controller starts a
      load R cycles after the previous one at the earliest), and the value that enters column
      j at step c of load f is for row R - 1 - c. So column j is held as the tiles of its last
      two loads, tb[f & 1, j, row] (packed, as below), and the register at row i is, c steps
      into load f (c = R once complete): the value for row R - c + i of load f if i < c (it
      entered at step c - 1 - i and moved down i rows), else load f - 1's value for row i
      (below the wave nothing moved). cl[j] is the last load that entered column j.
      A value is packed in an int64: (fold + 1) << 32 | destination row << 18 | valid << 16 |
      the 16-bit value (0: empty).
    MACs: PE (i, j) swaps tile f in when fold f's first token reaches it (anti-diagonal
      i + j = t - start, where its shadow value is checked) and then multiplies that tile with
      each of the fold's T tokens in row i (every token is checked to meet its fold's tile), so
      it counts its T MACs there when both the row's tokens (row in S) and the value (in W)
      are valid. Invalid tokens and values hold 0, so a product needs no mask."""
    T, Sr = S.shape
    Sc = W.shape[1]
    rf = (Sr + R - 1) // R
    cf = (Sc + C - 1) // C
    F = rf * cf
    RC = R * C
    if R >= 1 << 14 or F >= 1 << 30:
        raise ValueError("stepped stationary: array or fold count too large to model")
    out = np.zeros((T, Sc), dtype=np.int32)
    # fold f: its tile's first row (row fold f % rf) and first column (column fold f // rf)
    frow = np.empty(max(F, 1), np.int64)
    fcol = np.empty(max(F, 1), np.int64)
    for f in range(F):
        frow[f] = (f % rf) * R
        fcol[f] = (f // rf) * C
    # streamed tokens: fold (-1 = empty) and value, PE k's at h*[pa + k]
    Wn = 512 + C
    h_f = np.full(Wn * R, -1, np.int32)
    h_v = np.zeros(Wn * R, np.int16)       # operand registers are 16 bits wide
    oa = Wn - C
    ps0 = np.zeros(RC + 1, np.int32)       # partial sums PE k passed down last cycle, at k + 1
    ps1 = np.zeros(RC + 1, np.int32)       # and this cycle
    w_f = np.full(RC, -1, np.int32)        # active stationary register: fold, value
    w_v = np.zeros(RC, np.int16)
    tb = np.zeros((2, C, R), np.int64)     # load chains: the tiles of each column's last loads
    cl = np.full(C, -1, np.int64)
    starts = np.full(max(F, 1), -1, np.int64)
    loads = np.full(F, -1, np.int64)
    cnt = np.zeros(6, np.int64)
    streamed = 0
    loaded = 0
    pending = 0
    t = 0
    last_busy = -1
    last_a = -(1 << 40)   # last cycle a row was fed a token
    while True:
        if oa - t < 0:    # slide the window
            for q in range((C - 1) * R):
                h_f[(Wn - C + 1) * R + q] = h_f[q]
                h_v[(Wn - C + 1) * R + q] = h_v[q]
            oa = t + Wn - C
        pa = (oa - t) * R
        # 1. tokens in the array after this cycle's shift
        tokens = last_a >= t - C + 1
        # 2. controller (shared with _run_stationary_shift)
        streamed, loaded, pending = _stationary_controller(
            t, streamed, loaded, pending, tokens, F, T, R, pipelined, starts, loads)
        # 3. row i takes the newest fold that has reached it, if it still has a token for it:
        # fold f feeds rows lo..hi their tokens d - i, the valid ones (rows of S) from S
        for i in range(R):
            h_f[pa + i] = -1
            h_v[pa + i] = 0
        newer = t + 1
        for f in range(streamed - 1, -1, -1):
            if t - newer + 1 > R - 1:
                break
            d = t - starts[f]
            r0 = frow[f]
            lo = max(t - newer + 1, d - T + 1, 0)
            hi = min(d, R - 1)
            if lo <= hi:
                last_a = t
                pending -= hi - lo + 1
                for i in range(lo, hi + 1):
                    h_f[pa + i] = f
                hv = min(hi, Sr - 1 - r0)
                for i in range(lo, hv + 1):
                    h_v[pa + i] = S[d - i, r0 + i]
                cnt[1] += max(0, hv - lo + 1)
            newer = starts[f]
        busy = last_a >= t - C + 1
        if busy:
            # 4a. a fold's first token swaps its tile in (anti-diagonal i + j = t - start),
            # after checking that the shadow register holds the tile's value for its row
            for f in range(streamed - 1, -1, -1):
                d = t - starts[f]
                if d - (T - 1) > R + C - 2:
                    break
                if d > R + C - 2:
                    continue
                for i in range(max(0, d - C + 1), min(R - 1, d) + 1):
                    j = d - i
                    g = cl[j]
                    c = min(R, t - loads[g] - j) if g >= 0 else 0
                    x = tb[g & 1, j, R - c + i] if i < c else tb[(g - 1) & 1, j, i]
                    if (x >> 32) - 1 != f or (x >> 18) & 0x3FFF != i:
                        raise RuntimeError("stepped stationary: a token reached a PE before "
                                           "its tile was loaded")
                    w_f[j * R + i] = f
                    w_v[j * R + i] = ((x & 0xFFFF) ^ 0x8000) - 0x8000
                    if (x >> 16) & 1 and frow[f] + i < Sr:
                        cnt[0] += T
            # 4b. every PE as if it sat below another (row 0 is redone below): its token must
            # meet its fold's tile; the partial sum from above plus the product (int32:
            # wraps) goes down; a PE without a token passes 0
            xf = h_f[pa:pa + RC]
            xv = h_v[pa:pa + RC]
            bad = False
            for k in range(RC):
                g = xf[k]
                bad |= (g >= 0) & (w_f[k] != g)
                p = ps0[k] + xv[k] * w_v[k]
                ps1[k + 1] = p if g >= 0 else 0
            # 4c. row 0 starts from the bias (first row fold) or the stored partial sum;
            # padded columns (past Sc) from 0
            for f in range(streamed - 1, -1, -1):
                d = t - starts[f]
                if d - (T - 1) > C - 1:
                    break
                lo = max(0, d - T + 1)
                hi = min(C - 1, d)
                c0 = fcol[f]
                hv = min(hi, Sc - 1 - c0)
                if frow[f] == 0:
                    for j in range(lo, hv + 1):
                        bad |= xf[j * R] != f
                        ps1[j * R + 1] = init[d - j, c0 + j] + xv[j * R] * w_v[j * R]
                else:
                    for j in range(lo, hv + 1):
                        bad |= xf[j * R] != f
                        ps1[j * R + 1] = out[d - j, c0 + j] + xv[j * R] * w_v[j * R]
                    cnt[4] += max(0, hv - lo + 1)
                for j in range(max(lo, hv + 1), hi + 1):
                    bad |= xf[j * R] != f
                    ps1[j * R + 1] = xv[j * R] * w_v[j * R]
            # the bottom row writes its partial sums back
            for f in range(streamed - 1, -1, -1):
                e = t - starts[f] - (R - 1)
                if e - (T - 1) > C - 1:
                    break
                c0 = fcol[f]
                lo = max(0, e - T + 1)
                hi = min(C - 1, e, Sc - 1 - c0)
                for j in range(lo, hi + 1):
                    bad |= xf[j * R + R - 1] != f
                    out[e - j, c0 + j] = ps1[j * R + R]
                cnt[3] += max(0, hi - lo + 1)
            if bad:
                raise RuntimeError("stepped stationary: a token met another fold's tile")
            ps0, ps1 = ps1, ps0
        # 5. load chains: column j of tile f takes step c = t - loads[f] - j (0 <= c < R),
        # the value for row R - 1 - c entering; row c, the first the wave overwrites, must
        # not hold a tile that was never used (it holds load f - 1's value for row c)
        for f in range(loaded - 1, -1, -1):
            if t >= loads[f] + C - 1 + R:
                break
            r0 = frow[f]
            c0 = fcol[f]
            for j in range(max(0, t - loads[f] - R + 1), min(C - 1, t - loads[f]) + 1):
                c = t - loads[f] - j
                busy = True
                o = (tb[(f - 1) & 1, j, c] >> 32) - 1
                if o >= 0 and o != w_f[j * R + c]:
                    raise RuntimeError("stepped stationary: a load overwrote a tile that was "
                                       "never used")
                row = r0 + R - 1 - c
                col = c0 + j
                x = (np.int64(f) + 1) << 32 | np.int64(R - 1 - c) << 18
                if row < Sr and col < Sc:
                    x |= np.int64(1) << 16 | (np.int64(W[row, col]) & 0xFFFF)
                    cnt[2] += 1
                tb[f & 1, j, R - 1 - c] = x
                if c == 0:
                    cl[j] = f
        if busy:
            last_busy = t
            cnt[5] += R * C
        elif streamed == F and pending == 0:
            break
        t += 1
    return out, last_busy, cnt


@dataclass(frozen=True)
class SteppedResult:
    out: np.ndarray        # (M x N) int32: init + A . B, wrapped like a 32-bit accumulator
    cycles: int            # in the convention of the timing mode (see module docstring)
    counts: dict           # macs, a_reads, b_reads, out_writes, psum_reads, pe_cycles


def _operand(x, name):
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError(f"stepped array: {name} must be a 2-D integer matrix, got "
                         f"{x.dtype} {x.shape}")
    if x.size and (x.min() < -(1 << 15) or x.max() >= (1 << 15)):
        raise ValueError(f"stepped array: {name} holds values outside the 16-bit operand "
                         f"registers ({x.min()}..{x.max()})")
    return np.ascontiguousarray(x, dtype=np.int16)


def skip_steps(B: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray]:
    """os zero skipping (docs/decisions/0004, CSC on os): for each column fold of B (K x N),
    the reduction steps where one of its columns holds a nonzero. Returns (kidx, koff)."""
    nz = np.asarray(B) != 0
    steps, off = [], [0]
    for c0 in range(0, nz.shape[1], C):
        ks = np.flatnonzero(nz[:, c0:c0 + C].any(axis=1))
        steps.append(ks)
        off.append(off[-1] + ks.size)
    return (np.concatenate(steps).astype(np.int64) if steps else np.zeros(0, np.int64),
            np.asarray(off, np.int64))


def stepped_gemm(A, B, init, R: int, C: int, dataflow: str,
                 timing: str = "pipelined", skip_zeros: bool = False) -> SteppedResult:
    """Run O = init + A . B on the stepped R x C array. A (M x K) and B (K x N) are zero-point
    corrected operands, init (M x N) or (N,) the accumulators' start (the bias).
    skip_zeros (os only): each column fold streams only the reduction steps where one of its
    columns of B has a nonzero weight (B's zeros are zero-point corrected, i.e. real zeros)."""
    A = _operand(A, "A")
    B = _operand(B, "B")
    M, K = A.shape
    if B.shape[0] != K:
        raise ValueError(f"stepped array: A is {A.shape} but B is {B.shape}")
    N = B.shape[1]
    if M < 1 or K < 1 or N < 1:
        raise ValueError(f"stepped array: empty GEMM {M}x{K}x{N}")
    for name, v in (("R", R), ("C", C)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"stepped array: {name} must be a positive integer, got {v!r}")
    if timing not in TIMINGS:
        raise ValueError(f"unknown timing {timing!r}; choose from {TIMINGS}")
    init = np.broadcast_to(np.asarray(init, dtype=np.int64), (M, N))
    if init.size and (init.min() < -(1 << 31) or init.max() >= (1 << 31)):
        raise ValueError("stepped array: init must fit int32")
    init = np.ascontiguousarray(init, dtype=np.int32)
    pipe = timing == "pipelined"
    if skip_zeros and dataflow != "os":
        raise ValueError("stepped array: zero skipping is modelled for the os dataflow only "
                         "(ws and is gate zeros; docs/decisions/0004)")
    if dataflow == "os":
        if skip_zeros:
            kidx, koff = skip_steps(B, int(C))
        else:
            cf = -(-N // int(C))
            kidx = np.tile(np.arange(K, dtype=np.int64), cf)
            koff = np.arange(cf + 1, dtype=np.int64) * K
        out, last, cnt = _run_os(A, B, init, int(R), int(C), pipe, kidx, koff)
        a_reads, b_reads = cnt[1], cnt[2]
    elif dataflow == "ws":
        out, last, cnt = _run_stationary(A, B, init, int(R), int(C), pipe)
        a_reads, b_reads = cnt[1], cnt[2]
    elif dataflow == "is":
        out, last, cnt = _run_stationary(np.ascontiguousarray(B.T), np.ascontiguousarray(A.T),
                                         np.ascontiguousarray(init.T), int(R), int(C), pipe)
        out = np.ascontiguousarray(out.T)
        a_reads, b_reads = cnt[2], cnt[1]
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}; choose from {DATAFLOWS}")
    cycles = max(0, int(last) + 1 if pipe else int(last))
    counts = {"macs": int(cnt[0]), "a_reads": int(a_reads), "b_reads": int(b_reads),
              "out_writes": int(cnt[3]), "psum_reads": int(cnt[4]), "pe_cycles": int(cnt[5])}
    return SteppedResult(out, cycles, counts)

