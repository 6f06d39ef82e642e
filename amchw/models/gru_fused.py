"""The quantized GRU's recurrence as one autograd Function: forward and backward written out,
so a training step costs a few dozen tensor operations per time step instead of Brevitas' proxy
machinery (or autograd's bookkeeping) for each of the cell's dozen quantizers.

The forward is the arithmetic of amchw.models.gru.QuantGRU's per-module path, op for op (three
F.linear calls, each quantizer as Brevitas' IntQuant computes it: x / s, round half to even,
clamp, * s), so its values are the same bits (a test checks them against the per-module path
and the lowered IR); it runs time-major, so every step touches contiguous (N, C) blocks. The
backward recomputes the intermediates from the stored hidden states (memory: the output and
one chunk of steps), a chunk of steps at a time in single vectorized passes, so only a few
operations per step remain sequential; it applies the same rules autograd applies to the
per-module path: round is straight-through, clamp passes the gradient inside its bounds, and
a quantizer y = clamp(round(x / s)) * s gives dy/ds = clamp(round(x / s)) - [inside] * x / s
(the learned-scale gradient of LSQ / Brevitas). Gradients equal autograd's up to the order of
float additions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: the cell's quantizers, in the order of the `scales` and `bounds` arguments
QUANTIZERS = ("in_r", "out_r", "in_z", "out_z", "in_n", "out_n", "sig_r", "sig_z", "tanh_n",
              "q_hn", "q_mul", "q_h")
_I = {k: i for i, k in enumerate(QUANTIZERS)}
#: elements (steps x batch x cells) in one chunk of the backward's vectorized recomputation
_CHUNK = 1 << 18


class _Step:
    """One time step's forward, keeping what the backward needs."""

    def __init__(self, s, bounds):
        self.s, self.bounds = s, bounds

    def q(self, x, name, key=None):
        """Quantizer `name` on x, its (x / s, round, clamp) kept under `key` (default: name;
        an add's second addend goes through the same quantizer and is kept as name')."""
        i = _I[name]
        lo, hi = self.bounds[i]
        u = x / self.s[i]
        v = torch.round(u)
        w = torch.clamp(v, lo, hi)
        self.saved[key or name] = (u, v, w)
        return w * self.s[i]

    def forward(self, gr, gz, gn, h, lin):
        self.saved = {}
        q = self.q
        hr, hz, hn = (F.linear(h, w, b) for w, b in lin)
        self.pr = q(q(gr, "in_r") + q(hr, "in_r", "in_r'"), "out_r")
        self.sr = torch.sigmoid(self.pr)
        r = q(self.sr, "sig_r")
        self.pz = q(q(gz, "in_z") + q(hz, "in_z", "in_z'"), "out_z")
        self.sz = torch.sigmoid(self.pz)
        z = q(self.sz, "sig_z")
        qhn = q(hn, "q_hn")
        rhn = q(r * qhn, "q_mul")
        self.pn = q(q(gn, "in_n") + q(rhn, "in_n", "in_n'"), "out_n")
        self.tn = torch.tanh(self.pn)
        n = q(self.tn, "tanh_n")
        self.r, self.z, self.qhn, self.n, self.h = r, z, qhn, n, h
        return q((1 - z) * n + z * h, "q_h")


class FusedQuantGRU(torch.autograd.Function):
    """H = the recurrence over gi_r, gi_z, gi_n (N, C, T) from h0 (N, C); `lin` the recurrent
    (weight, bias) pairs of r, z, n; `scales` (12,) the cell's quantizer scales in QUANTIZERS
    order, `bounds` their integer (lo, hi)."""

    @staticmethod
    def forward(ctx, gi_r, gi_z, gi_n, h0, w_r, b_r, w_z, b_z, w_n, b_n, scales, bounds):
        lin = ((w_r, b_r), (w_z, b_z), (w_n, b_n))
        step = _Step(scales, bounds)
        n, c, steps = gi_r.shape
        # time-major copies: every step then reads and writes contiguous (N, C) blocks (a
        # strided [:, :, t] slice costs several times more per elementwise op)
        gr, gz, gn = (g.permute(2, 0, 1).contiguous() for g in (gi_r, gi_z, gi_n))
        H = torch.empty((steps, n, c), dtype=gi_r.dtype)
        h = h0
        for t in range(steps):
            h = step.forward(gr[t], gz[t], gn[t], h, lin)
            H[t] = h
        ctx.bounds = bounds
        ctx.save_for_backward(gr, gz, gn, h0, w_r, b_r, w_z, b_z, w_n, b_n, scales, H)
        return H.permute(1, 2, 0)

    @staticmethod
    def backward(ctx, dH):
        gi_r, gi_z, gi_n, h0, w_r, b_r, w_z, b_z, w_n, b_n, scales, H = ctx.saved_tensors
        lin = ((w_r, b_r), (w_z, b_z), (w_n, b_n))
        W = torch.cat([w_r, w_z, w_n])            # (3C, C): one matmul for the three gates
        dH = dH.permute(2, 0, 1).contiguous()     # time-major (T, N, C), as the forward kept
        steps, n, c = H.shape
        # the scale gradients worth accumulating: learned ones (sigmoid and tanh have constant
        # output scales, and float warm-up none)
        learned = ctx.needs_input_grad[10]
        dgr, dgz, dgn = (torch.empty_like(g) for g in (gi_r, gi_z, gi_n))
        dW = torch.zeros_like(W)
        db = torch.zeros(3 * c, dtype=H.dtype)
        ds = torch.zeros(len(QUANTIZERS), dtype=H.dtype)
        dh = torch.zeros((n, c), dtype=H.dtype)
        # Backwards over chunks of L steps. Given the stored hidden states, a chunk's forward
        # intermediates do not depend on each other, so they are recomputed for the whole
        # chunk at once; the gradient is linear in the incoming dh, so each step's part of
        # the recurrence is dy = m * (dH + dh), g = dy * K, dh = dy * z + g W with the factors
        # m, K, z precomputed; the rest (input, weight and scale gradients) is again one
        # vectorized pass over the chunk.
        chunk = max(1, _CHUNK // max(1, n * c))
        for t1 in range(steps, 0, -chunk):
            t0 = max(0, t1 - chunk)
            hp = H[t0 - 1:t1 - 1] if t0 > 0 else torch.cat([h0[None], H[:t1 - 1]])
            st = _Step(scales, ctx.bounds)
            st.forward(gi_r[t0:t1], gi_z[t0:t1], gi_n[t0:t1], hp, lin)

            def m(key):
                """1 where quantizer use `key` passed its gradient (not clamped), else 0."""
                _, v, w = st.saved[key]
                return (v == w).to(H.dtype)

            f_r = m("sig_r") * st.sr * (1 - st.sr) * m("out_r")     # d pr / d r
            f_z = m("sig_z") * st.sz * (1 - st.sz) * m("out_z")
            f_n = m("tanh_n") * (1 - st.tn * st.tn) * m("out_n")    # d pn / d n
            a = (1 - st.z) * f_n * m("in_n'") * m("q_mul")         # d prod / d y
            k_r = a * st.qhn                                        # d r / d y
            K = torch.cat([k_r * f_r * m("in_r'"), (hp - st.n) * f_z * m("in_z'"),
                           a * st.r * m("q_hn")], dim=2)            # d(hr, hz, hn) / d y
            mq, z = m("q_h"), st.z
            up = torch.empty_like(mq)       # the gradient arriving at q_h, per step
            G = torch.empty_like(K)
            for i in range(t1 - t0 - 1, -1, -1):
                torch.add(dH[t0 + i], dh, out=up[i])
                dy = mq[i] * up[i]
                torch.mul(dy.repeat(1, 3), K[i], out=G[i])
                dh = torch.addmm(dy * z[i], G[i], W)
            dy = mq * up
            # the chunk's input gradients, following the chain the factors above fold
            dn, dz = dy * (1 - z), dy * (hp - st.n)
            dpn = dn * f_n
            dgn[t0:t1] = dpn * m("in_n")
            drhn = dpn * m("in_n'")
            dprod = drhn * m("q_mul")
            dr = dprod * st.qhn
            dpr = dr * f_r
            dgr[t0:t1] = dpr * m("in_r")
            dpz = dz * f_z
            dgz[t0:t1] = dpz * m("in_z")
            dW.addmm_(G.reshape(-1, 3 * c).t(), hp.reshape(-1, c))
            db += G.sum(dim=(0, 1))
            if learned:
                # y = clamp(round(x / s)) * s: dy/ds = w - u where inside, w where clamped
                def acc(key, grad):
                    u, v, w = st.saved[key]
                    name = key.rstrip("'")
                    ds[_I[name]] += (torch.where(v == w, w - u, w) * grad).sum()

                acc("q_h", up)
                acc("out_n", dn * m("tanh_n") * (1 - st.tn * st.tn))
                acc("in_n", dpn)
                acc("in_n'", dpn)
                acc("q_mul", drhn)
                acc("q_hn", dprod * st.r)
                acc("out_z", dz * m("sig_z") * st.sz * (1 - st.sz))
                acc("in_z", dpz)
                acc("in_z'", dpz)
                acc("out_r", dr * m("sig_r") * st.sr * (1 - st.sr))
                acc("in_r", dpr)
                acc("in_r'", dpr)
        dscales = ds if learned else None
        dgr, dgz, dgn = (g.permute(1, 2, 0) for g in (dgr, dgz, dgn))
        return (dgr, dgz, dgn, dh, dW[:c], db[:c], dW[c:2 * c], db[c:2 * c], dW[2 * c:],
                db[2 * c:], dscales, None)
