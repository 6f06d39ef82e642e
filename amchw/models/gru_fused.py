"""The quantized GRU's recurrence as one autograd Function: forward and backward written out,
so a training step costs a few dozen tensor operations per time step instead of Brevitas' proxy
machinery (or autograd's bookkeeping) for each of the cell's dozen quantizers.

The forward is the arithmetic of amchw.models.gru.QuantGRU's per-module path, op for op (three
F.linear calls, each quantizer as Brevitas' IntQuant computes it: x / s, round half to even,
clamp, * s), so its values are the same bits (a test checks them against the per-module path
and the lowered IR). The backward recomputes each step's intermediates from the stored hidden
states (memory: the output only) and applies the same rules autograd applies to the
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
        H = torch.empty((n, c, steps), dtype=gi_r.dtype)
        h = h0
        for t in range(steps):
            h = step.forward(gi_r[:, :, t], gi_z[:, :, t], gi_n[:, :, t], h, lin)
            H[:, :, t] = h
        ctx.bounds = bounds
        ctx.save_for_backward(gi_r, gi_z, gi_n, h0, w_r, b_r, w_z, b_z, w_n, b_n, scales, H)
        return H

    @staticmethod
    def backward(ctx, dH):
        gi_r, gi_z, gi_n, h0, w_r, b_r, w_z, b_z, w_n, b_n, scales, H = ctx.saved_tensors
        lin = ((w_r, b_r), (w_z, b_z), (w_n, b_n))
        W = torch.cat([w_r, w_z, w_n])            # (3C, C): one matmul for the three gates
        # the scale gradients worth accumulating: learned ones (sigmoid and tanh have constant
        # output scales, and float warm-up none)
        learned = {name for name in QUANTIZERS
                   if ctx.needs_input_grad[10] and name not in ("sig_r", "sig_z", "tanh_n")}
        step = _Step(scales, ctx.bounds)
        n, c, steps = H.shape
        dgr, dgz, dgn = (torch.zeros_like(g) for g in (gi_r, gi_z, gi_n))
        dW = torch.zeros_like(W)
        db = torch.zeros(3 * c, dtype=H.dtype)
        ds = torch.zeros((len(QUANTIZERS), n, c), dtype=H.dtype)
        dh = torch.zeros((n, c), dtype=H.dtype)
        zero = torch.zeros((), dtype=H.dtype)

        def bq(dy, name, key=None):
            """The gradient through quantizer `name`: straight through where round(x / s)
            was inside the bounds, zero where clamped; its scale's gradient accumulated."""
            u, v, w = step.saved[key or name]
            inside = v == w
            if name in learned:
                ds[_I[name]].addcmul_(torch.where(inside, w - u, w), dy)
            return torch.where(inside, dy, zero)

        for t in range(steps - 1, -1, -1):
            h_prev = H[:, :, t - 1] if t > 0 else h0
            step.forward(gi_r[:, :, t], gi_z[:, :, t], gi_n[:, :, t], h_prev, lin)
            dy = bq(dH[:, :, t] + dh, "q_h")
            dn = dy * (1 - step.z)
            dz = dy * (h_prev - step.n)
            dh = dy * step.z
            # n = q(tanh(q_out(q_in(gn) + q_in(rhn))))
            dpn = bq(bq(dn, "tanh_n") * (1 - step.tn * step.tn), "out_n")
            dgn[:, :, t] = bq(dpn, "in_n")
            drhn = bq(dpn, "in_n", "in_n'")
            dprod = bq(drhn, "q_mul")
            dr = dprod * step.qhn
            dhn = bq(dprod * step.r, "q_hn")
            # z, r = q(sigmoid(q_out(q_in(g) + q_in(h W^T + b))))
            dpz = bq(bq(dz, "sig_z") * step.sz * (1 - step.sz), "out_z")
            dgz[:, :, t] = bq(dpz, "in_z")
            dhz = bq(dpz, "in_z", "in_z'")
            dpr = bq(bq(dr, "sig_r") * step.sr * (1 - step.sr), "out_r")
            dgr[:, :, t] = bq(dpr, "in_r")
            dhr = bq(dpr, "in_r", "in_r'")
            g = torch.cat([dhr, dhz, dhn], dim=1)  # (N, 3C)
            dW.addmm_(g.t(), h_prev)
            db += g.sum(0)
            dh = dh.addmm(g, W)
        dscales = ds.sum(dim=(1, 2)) if ctx.needs_input_grad[10] else None
        return (dgr, dgz, dgn, dh, dW[:c], db[:c], dW[c:2 * c], db[c:2 * c], dW[2 * c:],
                db[2 * c:], dscales, None)
