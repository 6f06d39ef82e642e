"""Net-Trim: convex layer-wise pruning of a fully connected ReLU layer, solved by ADMM.

After Aghasi et al., "Net-Trim: Convex Pruning of Deep Neural Networks with Performance
Guarantee" (NIPS 2017), as used by the edge-efficient AMC seed (its Algorithm 1). No training.

Problem. For one layer with inputs X (N frames x P), weights W0 (M x P, torch Linear layout)
and bias b (M,), kept fixed and unpruned, the original outputs are Y = relu(X W0^T + b). Find

    min ||U||_1   subject to   ||relu(X U^T + b) - Y||_F <= eps_abs.

The ReLU constraint is not convex; Net-Trim replaces it by a convex subset. With
Omega = {(n, m): Y[n, m] > 0} and Z = X U^T + b,

    C = {Z : ||(Z - Y)[Omega]||_F <= eps_abs  and  Z[not Omega] <= 0}.

Any U with Z in C meets the ReLU constraint: relu is 1-Lipschitz and Y >= 0 on Omega, and off
Omega relu(Z) = 0 = Y. W0 itself lies in C (discrepancy 0).

Epsilon. The seed's epsilons (0.02, 0.08) are relative: eps_abs = epsilon * ||Y||_F, and the
result's `discrepancy` is ||relu(X U^T + b) - Y||_F / ||Y||_F (<= epsilon).

Scaling (conditioning only; the minimiser is unchanged). Each input column j is divided by
col_j = s d_j: d_j is its norm (floored at 1e-6 of the largest, so dead inputs stay finite;
all ones with precondition=False) and s^2 = ||X D^-1||_F^2 / min(N, P), the mean eigenvalue of
the smaller Gram matrix of X D^-1, so X~ = X diag(1/col) has unit rms singular value. (Scaling
by the LARGEST singular value instead was tried and converges 5-10x slower: ReLU activations
have one dominant mean direction, which then squeezes the bulk of the spectrum towards 0.) The
outputs are divided by c = rms(Y): Y~ = Y / c, b~ = b / c, eps~ = eps_abs / c. The variable is
V = diag(col) U^T / c (P x M) and ||U||_1 = (c / r) sum_j w_j ||V_j||_1 with w_j = r / col_j,
r the median of col over the live inputs (those above the floor; the median over all of them
is the floor itself when most inputs are dead, and the live weights' L1 terms would then
weigh ~1e-6 and the ADMM's duals stay near 0), so the weighted L1 of V has the same
minimiser; the soft threshold of row j is w_j / rho. Weights are recovered as
U = c V^T diag(1/col) (exact zeros stay exact).
X~ is never formed (products go through X and 1/col), so there is no N x P copy of X.

Dead inputs. An input that is 0 in every frame (a ReLU channel that never fires on the
collected frames: in a trained VTCNN2 most of fc3's 10,560 inputs are) changes no output, so
the constraint does not involve its weights and the L1 minimum sets them to 0. The problem is
therefore solved on the live inputs alone, exactly the same minimiser at a fraction of the
cost (an iteration is two N x P_live x M products), and the dead inputs' weights are 0 in the
result (`dead_inputs` counts them; n_a and p_e are over all P inputs, as the seed's).

ADMM. Variables V (P x M, stored transposed), W (copy of V carrying the L1 term), Z (N x M,
carrying the indicator of C); constraints V = W and Z = X~ V + b~; scaled duals A (P x M) and
B (N x M); penalty rho. The augmented Lagrangian
    sum_j w_j ||W_j||_1 + I_C(Z) + rho/2 ||V - W + A||^2 + rho/2 ||X~ V + b~ - Z + B||^2
is minimised in two blocks, V and then (W, Z) jointly (they separate):

* V-update, a ridge least squares: (I + X~^T X~) V = (W - A) + X~^T (Z - b~ - B). The matrix
  does not depend on rho, so it is formed and Cholesky-factored ONCE (and inverted from the
  factor; its condition number, 1 + the largest eigenvalue of X~^T X~, is modest, so the
  explicit inverse is as accurate as the triangular solves and each iteration is one matrix
  product). When N < P the N x N form is used (push-through identity
  (I + X~^T X~)^-1 = I - X~^T (I + H)^-1 X~, H = X~ X~^T): with
  Rw = W - A and Rz = Z - b~ - B, S = (I + H)^-1 (X~ Rw - Rz) + Rz, then X~ V = S and
  V = Rw + X~^T (Rz - S). Otherwise the P x P matrix I + X~^T X~ is used. An iteration costs
  two N x P x M products and one min(N, P)^2 x M product; memory beyond X is one
  min(N, P)^2 matrix and a few (N + P) x M arrays.
* over-relaxation (alpha = `relax`, 1.6 by default): V^ = alpha V + (1 - alpha) W,
  (X~ V)^ = alpha X~ V + (1 - alpha)(Z - b~).
* W-update: soft-thresholding, W = sign(V^ + A) max(|V^ + A| - w/rho, 0) (exact zeros).
* Z-update: projection onto C of Q = (X~ V)^ + b~ + B: on Omega the entries are projected
  jointly onto the Frobenius ball of radius eps~ around Y~[Omega]; off Omega, min(Q, 0).
* duals: A += V^ - W, B += (X~ V)^ + b~ - Z.

Stopping: primal residual r = ||(V - W, X~ V + b~ - Z)||_F and the dual residual measured in
the consensus variables, s = rho ||(W - W_prev, Z - Z_prev)||_F (the usual
rho ||W - W_prev + X~^T (Z - Z_prev)|| is at most ||[I; X~]|| s, and costs one more N x P x M
product per iteration); stop when r <= sqrt(d) atol + tol max(||(V, X~ V)||, ||(W, Z - b~)||)
and s <= sqrt(d) atol + tol rho ||(A, B)|| (d = (P + N) M), or after max_iter iterations. rho
starts at 1 and is adapted by residual balancing (x2 or /2 when one residual exceeds ten times
the other, the scaled duals rescaled), which needs no refactorisation. tol = 1e-3 by default:
on test problems 1e-4 took 2-3x the iterations for an L1 norm within 0.3% and a support a few
per cent LARGER (the tail of tiny entries grows back), the repair below taking care of
feasibility either way.

The ADMM targets a slightly smaller ball, (1 - margin) eps_abs, so that its approximately
feasible iterates have slack. Final selection and repair, every candidate checked against the
TRUE constraint ||relu(X U^T + b) - Y||_F <= eps_abs (1 - 1e-9) in float64 (after rounding to
`weight_dtype` when given, so the weights written back are the weights checked), and
accepted only if its L1 norm is at most that of W0 (never worse than W0 in the objective):

1. "admm": the sparse iterate W;
2. "polished": on the support of W, the same ADMM with the soft-threshold replaced by the
   projection onto that support (no L1 shrinkage bias), warm started;
3. "grown(k)": the support grown by the k entries of largest magnitude (of the dense V) not in
   it, doubling k from 1% of the rest, polished again, until feasible or full;
4. "original": W0, always feasible (discrepancy 0).

The first feasible candidate is returned; `repair` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla

from .defaults import NET_TRIM_MAX_ITER, NET_TRIM_RHO
from .errors import PruneError


@dataclass
class NetTrimResult:
    """The pruned weights of one layer and how they were obtained."""

    weight: np.ndarray  # (M, P) float64, the pruned weights
    n_total: int  # n_T: weights of the layer (M*P)
    n_before: int  # n_b: non-zero weights before pruning
    n_after: int  # n_a: non-zero weights after
    p_e: float  # 1 - n_a / n_T (the seed's pruning efficiency, eq. 3)
    epsilon: float  # relative epsilon asked
    discrepancy: float  # ||relu(X U^T + b) - Y||_F / ||Y||_F achieved (<= epsilon)
    iterations: int  # ADMM iterations, the polishing ones included
    converged: bool  # the sparse (L1) ADMM phase met its stopping rule
    frames: int  # N
    repair: str = ""  # which candidate was returned: admm, polished, grown(k) or original
    # the sparse phase's last residuals and their stopping thresholds (primal r <= eps_pri
    # and dual s <= eps_dual is convergence)
    residuals: dict | None = None
    dead_inputs: int = 0  # inputs zero in every frame: weight 0, left out of the ADMM


# --- helpers ---------------------------------------------------------------------------------


def _relu_gap(X, Ut, bias, Y):
    """||relu(X Ut + b) - Y||_F in float64 (Ut is P x M)."""
    Z = X @ Ut
    Z += bias
    np.maximum(Z, 0.0, out=Z)
    Z -= Y
    return float(np.sqrt(np.einsum("ij,ij->", Z, Z)))


def _sq(a):
    return float(np.einsum("ij,ij->", a, a))


class _Solver:
    """Solves (I + X~^T X~) V = Rw + X~^T Rz and returns (V, X~ V), with X~ = X / col, `col`
    the per-input scale (see the module docstring), never formed: products go through X.

    The Gram matrix of the smaller side is formed once, Cholesky-factored once and inverted
    from its factor (LAPACK potrf + potri): I + X~^T X~ is well conditioned, so the explicit
    inverse is as accurate as the triangular solves, and each iteration then needs one matrix
    product instead of two triangular solves (and the N x N form no H = X~ X~^T)."""

    def __init__(self, X, system="auto", precondition=True, block=1024):
        n, p = X.shape
        if system == "auto":
            system = "nxn" if n < p else "pxp"
        if system not in ("nxn", "pxp"):
            raise ValueError(f"system must be auto, nxn or pxp, got {system!r}")
        self.X, self.system = X, system
        norms = np.sqrt(np.einsum("ij,ij->j", X, X))  # column norms, no copy of X
        top = float(norms.max()) if p else 0.0
        d = np.maximum(norms, 1e-6 * top) if precondition and top > 0 else np.ones(p)
        # s^2 = the mean eigenvalue of the smaller Gram of X / d, so that X~ = X / (s d)
        ms = float(np.sum((norms / d) ** 2)) / min(n, p)
        self.col = d * (math.sqrt(ms) if ms > 0 else 1.0)
        live = norms > 1e-6 * top
        self.ref_col = float(np.median(self.col[live] if live.any() else self.col))
        if system == "nxn":
            G = np.zeros((n, n))
            for j0 in range(0, p, block):
                Xb = X[:, j0:j0 + block] / self.col[j0:j0 + block]
                G += Xb @ Xb.T
        else:
            G = X.T @ X
            G /= self.col[:, None]
            G /= self.col[None, :]
        G[np.diag_indices_from(G)] += 1.0
        self.Kinv = _spd_inverse(G)

    def xt(self, a):  # X~^T a
        out = self.X.T @ a
        out /= self.col[:, None]
        return out

    def x(self, a):  # X~ a
        return self.X @ (a / self.col[:, None])

    def solve(self, Rw, Rz):
        if self.system == "pxp":
            V = self.Kinv @ (Rw + self.xt(Rz))
            return V, self.x(V)
        # S = (I + H)^-1 (X~ Rw + H Rz) = (I + H)^-1 (X~ Rw - Rz) + Rz, H = X~ X~^T
        t = self.x(Rw)
        t -= Rz
        S = self.Kinv @ t
        S += Rz
        t = Rz - S
        return Rw + self.xt(t), S


def _spd_inverse(K, block=1024):
    """Inverse of a symmetric positive definite K, overwriting K: one Cholesky factorisation
    (potrf), its inverse (potri), then the upper triangle filled from the lower in blocks."""
    L, info = sla.lapack.dpotrf(K.T, lower=1, clean=0, overwrite_a=1)  # K.T: Fortran view
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info})")
    inv, info = sla.lapack.dpotri(L, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from Cholesky failed (info={info})")
    n = inv.shape[0]
    for j0 in range(0, n, block):
        j1 = min(n, j0 + block)
        inv[j0:j1, j1:] = inv[j1:, j0:j1].T
        d = inv[j0:j1, j0:j1]
        iu = np.triu_indices(j1 - j0, 1)
        d[iu] = d.T[iu]
    return inv


class _Admm:
    """State and iterations of the scaled problem (see the module docstring)."""

    def __init__(self, solver, Vt0, bias, Y, omega, radius, rho, relax, l1w):
        self.sv, self.b, self.Y, self.omega, self.radius = solver, bias, Y, omega, radius
        self.l1w = l1w[:, None]  # the L1 weight of each input (row of V)
        self.rho, self.relax = float(rho), float(relax)
        self.V = Vt0.copy()
        self.W = Vt0.copy()
        self.XV = solver.x(Vt0)
        self.Z = self._project(self.XV + bias)
        self.A = np.zeros_like(Vt0)
        self.B = np.zeros_like(self.Z)
        self.last: dict = {}

    def _project(self, Q):
        off = ~self.omega
        Q[off] = np.minimum(Q[off], 0.0)
        d = Q[self.omega] - self.Y[self.omega]
        nd = float(np.linalg.norm(d))
        if nd > self.radius:
            Q[self.omega] = self.Y[self.omega] + d * (self.radius / nd)
        return Q

    def run(self, iters, tol, atol, mask=None, callback=None):
        """Up to `iters` iterations; soft-thresholding, or projection onto `mask` if given.
        Returns (iterations done, converged)."""
        a = self.relax
        dim = math.sqrt(self.V.size + self.Z.size)
        for k in range(1, iters + 1):
            self.V, self.XV = self.sv.solve(self.W - self.A, self.Z - self.b - self.B)
            Vh = a * self.V + (1.0 - a) * self.W
            XVh = a * self.XV + (1.0 - a) * (self.Z - self.b)
            T = Vh + self.A
            if mask is None:  # soft threshold; |T| <= lam gives T - T = exactly 0
                lam = self.l1w / self.rho
                W = T - np.clip(T, -lam, lam)
            else:
                W = np.where(mask, T, 0.0)
            Z = self._project(XVh + self.b + self.B)
            self.A += Vh - W
            self.B += XVh + self.b - Z
            r = math.sqrt(_sq(self.V - W) + _sq(self.XV + self.b - Z))
            s = self.rho * math.sqrt(_sq(W - self.W) + _sq(Z - self.Z))
            self.W, self.Z = W, Z
            eps_pri = dim * atol + tol * max(math.sqrt(_sq(self.V) + _sq(self.XV)),
                                             math.sqrt(_sq(W) + _sq(Z - self.b)))
            eps_dual = dim * atol + tol * self.rho * math.sqrt(_sq(self.A) + _sq(self.B))
            if callback is not None:
                callback("l1" if mask is None else "polish", k, r, s, self.rho)
            self.last = {"primal": r, "dual": s, "eps_pri": eps_pri, "eps_dual": eps_dual}
            if r <= eps_pri and s <= eps_dual:
                return k, True
            if r > 10.0 * s:
                self.rho *= 2.0
                self.A /= 2.0
                self.B /= 2.0
            elif s > 10.0 * r:
                self.rho /= 2.0
                self.A *= 2.0
                self.B *= 2.0
        return iters, False


# --- the solver ------------------------------------------------------------------------------


class NotConverged(PruneError):
    """The sparse ADMM phase stopped at max_iter before meeting its tolerance."""

    def __init__(self, message: str, residuals: dict):
        super().__init__(message)
        self.residuals = residuals


def net_trim(X, weight, bias, epsilon, rho=NET_TRIM_RHO, max_iter=NET_TRIM_MAX_ITER, tol=1e-3,
             atol=1e-9, margin=0.05, relax=1.6, polish_iter=300, system="auto",
             precondition=True, weight_dtype=None, callback=None,
             keep_unconverged=False, drop_dead=True) -> NetTrimResult:
    """Net-Trim one fully connected ReLU layer. Pure numpy.

    X (N, P) inputs, weight (M, P), bias (M,) or None (kept fixed), epsilon >= 0 relative
    (eps_abs = epsilon ||Y||_F). rho: initial ADMM penalty (adapted); max_iter, tol, atol: the
    stopping rule of the sparse phase; margin: the ADMM targets (1 - margin) eps_abs; relax:
    over-relaxation; polish_iter: iterations of each support-restricted polish; system:
    "auto" (N x N when N < P, else P x P), "nxn" or "pxp"; weight_dtype: if given (e.g.
    np.float32), candidates are rounded to it before their feasibility check; callback: if
    given, called each iteration as callback(phase, k, primal, dual, rho), phase "l1" or
    "polish"; keep_unconverged: without it a sparse phase that stops at max_iter before its
    tolerance raises NotConverged (the iterate's support then reflects where the iterations
    stopped, not epsilon); with it the iterate goes on to the repair below and the result
    says converged=False; drop_dead: solve on the live inputs only (module docstring, "Dead
    inputs"; False keeps them in the ADMM, for tests). The returned weights always satisfy
    the constraint (module docstring); at worst max_iter + 9 polish_iter iterations run
    before W0 itself (its dead inputs' weights zeroed) is returned."""
    X = np.asarray(X, dtype=np.float64)
    W0 = np.asarray(weight, dtype=np.float64)
    if X.ndim != 2 or W0.ndim != 2 or X.shape[1] != W0.shape[1]:
        raise ValueError(f"X must be (N, P) and weight (M, P); got {X.shape} and {W0.shape}")
    n, p = X.shape
    m = W0.shape[0]
    b = np.zeros(m) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.shape != (m,):
        raise ValueError(f"bias must have {m} entries, got {b.shape}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    if not (0.0 <= margin < 1.0):
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    if n < 1:
        raise ValueError("X has no frames")

    live = np.flatnonzero(np.any(X != 0.0, axis=0)) if drop_dead else np.arange(p)
    if live.size < p:  # dead inputs: weight 0, the same problem on the live ones
        U = np.zeros((m, p))
        if live.size:
            r = net_trim(X[:, live], W0[:, live], b, epsilon, rho, max_iter, tol, atol, margin,
                         relax, polish_iter, system, precondition, weight_dtype, callback,
                         keep_unconverged, drop_dead=False)
            U[:, live] = r.weight
        else:  # no input reaches the layer: relu(b) whatever the weights
            r = NetTrimResult(U, 0, 0, 0, 1.0, float(epsilon), 0.0, 0, True, n, "admm")
        n_a = int(np.count_nonzero(U))
        return replace(r, weight=U, n_total=m * p, n_before=int(np.count_nonzero(W0)),
                       n_after=n_a, p_e=1.0 - n_a / (m * p), dead_inputs=p - live.size)

    Y = X @ W0.T
    Y += b
    np.maximum(Y, 0.0, out=Y)
    ynorm = float(np.linalg.norm(Y))
    eps_abs = epsilon * ynorm

    def rounded(Ut):
        U = Ut.T
        return U if weight_dtype is None else U.astype(weight_dtype).astype(np.float64)

    def result(U, iters, conv, how, residuals=None):
        gap = _relu_gap(X, U.T, b, Y)
        if gap > eps_abs:  # cannot happen: every candidate below was checked already
            raise RuntimeError(f"Net-Trim produced an infeasible result ({gap} > {eps_abs})")
        rel = gap / ynorm if ynorm > 0 else 0.0
        n_a = int(np.count_nonzero(U))
        return NetTrimResult(weight=np.ascontiguousarray(U), n_total=m * p,
                             n_before=int(np.count_nonzero(W0)), n_after=n_a,
                             p_e=1.0 - n_a / (m * p), epsilon=float(epsilon), discrepancy=rel,
                             iterations=iters, converged=conv, frames=n, repair=how,
                             residuals=residuals)

    if eps_abs == 0.0:
        return result(W0.copy(), 0, True, "original")

    solver = _Solver(X, system, precondition)
    c = ynorm / math.sqrt(Y.size)
    scale = solver.col[:, None] / c  # V = scale * U^T, row by row
    # ||U||_1 = (c / ref) sum l1w |V|, ref the median scale of the LIVE inputs: with more
    # than half the inputs dead (all-zero columns, common in a ReLU network), the median of
    # all of them would be the dead floor and weigh every live weight's L1 term by ~1e-6
    l1w = solver.ref_col / solver.col
    admm = _Admm(solver, W0.T * scale, b / c, Y / c, Y > 0, (1.0 - margin) * eps_abs / c,
                 rho, relax, l1w)
    iters, converged = admm.run(max_iter, tol, atol, callback=callback)
    residuals = dict(admm.last)
    if not converged and not keep_unconverged:
        raise NotConverged(
            f"the ADMM did not converge in {max_iter} iterations (primal residual "
            f"{residuals['primal']:.3g} vs {residuals['eps_pri']:.3g}, dual "
            f"{residuals['dual']:.3g} vs {residuals['eps_dual']:.3g})", residuals)
    Vdense = admm.V.copy()

    limit = eps_abs * (1.0 - 1e-9)  # a hair inside, so a re-evaluation cannot round over

    l1_max = float(np.abs(W0).sum())

    def feasible(Wt):  # meets the constraint, and is no worse than W0 in the objective
        U = rounded(Wt / scale)
        ok = np.abs(U).sum() <= l1_max and _relu_gap(X, U.T, b, Y) <= limit
        return U if ok else None

    U = feasible(admm.W)
    if U is not None:
        return result(U, iters, converged, "admm", residuals)
    mask = admm.W != 0
    k_done, _ = admm.run(polish_iter, tol, atol, mask=mask, callback=callback)
    iters += k_done
    U = feasible(admm.W)
    if U is not None:
        return result(U, iters, converged, "polished", residuals)
    rest = int((~mask).sum())
    k = max(1, math.ceil(0.01 * rest))
    while rest > 0:
        k = min(k, rest)
        order = np.argsort(-np.where(mask, -np.inf, np.abs(Vdense)), axis=None, kind="stable")
        mask.flat[order[:k]] = True
        rest -= k
        k_done, _ = admm.run(polish_iter, tol, atol, mask=mask, callback=callback)
        iters += k_done
        U = feasible(admm.W)
        if U is not None:
            return result(U, iters, converged, f"grown({int(mask.sum())})", residuals)
        k *= 2
    return result(W0.copy(), iters, converged, "original", residuals)


# --- on a model ------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _linear(model, layer_name: str):
    from torch import nn

    mods = dict(model.named_modules())
    if layer_name not in mods:
        linears = [k for k, v in mods.items() if isinstance(v, nn.Linear)]
        raise PruneError(f"no layer named {layer_name!r}; Linear layers: {', '.join(linears)}")
    layer = mods[layer_name]
    if not isinstance(layer, nn.Linear):
        raise PruneError(f"{layer_name}: Net-Trim needs a Linear layer, got "
                         f"{type(layer).__name__}")
    return layer


def collect_activations(model, layer_name, frames, batch_size=512) -> np.ndarray:
    """The float64 input X (N, P) that reaches `layer_name` when `model` (eval mode, no grad)
    runs on `frames`; a QuantTensor input contributes its `.value`. The forward pass is cut
    short at the layer."""
    import torch

    with torch.no_grad():
        return _collect(model, layer_name, frames, batch_size)


def _collect(model, layer_name, frames, batch_size) -> np.ndarray:
    import torch

    layer = _linear(model, layer_name)
    p = layer.in_features
    chunks = []

    def hook(_mod, args):
        x = args[0]
        x = x.value if hasattr(x, "value") else x
        chunks.append(x.detach().reshape(-1, p).to("cpu", torch.float64).numpy())
        raise _Stop

    modes = [(mod, mod.training) for mod in model.modules()]
    model.eval()
    handle = layer.register_forward_pre_hook(hook)
    out = None
    row = 0
    try:
        for i in range(0, frames.shape[0], batch_size):
            try:
                model(frames[i:i + batch_size])
            except _Stop:
                pass
            if not chunks:
                raise PruneError(f"{layer_name}: the forward pass never reached this layer")
            x = chunks.pop()
            if out is None:  # rows per frame known now; one array for all frames
                per = x.shape[0] // max(1, min(batch_size, frames.shape[0] - i))
                out = np.empty((frames.shape[0] * per, p), dtype=np.float64)
            out[row:row + x.shape[0]] = x
            row += x.shape[0]
    finally:
        handle.remove()
        for mod, mode in modes:
            mod.train(mode)
    if out is None:
        return np.empty((0, p), dtype=np.float64)
    return out[:row]


def net_trim_layer(model, layer_name, frames, epsilon, **admm) -> NetTrimResult:
    """Net-Trim the Linear layer `layer_name` of `model` in place on the activations of
    `frames`: its float weight (for a QuantLinear the trained `weight` parameter, not
    quant_weight) is replaced by the pruned one, the bias kept. Returns the result."""
    import torch

    with torch.no_grad():
        return _trim_layer(model, layer_name, frames, epsilon, admm)


def _trim_layer(model, layer_name, frames, epsilon, admm) -> NetTrimResult:
    import torch

    layer = _linear(model, layer_name)
    if frames.shape[0] < 2:
        raise PruneError(f"{layer_name}: Net-Trim needs at least 2 frames, got "
                         f"{frames.shape[0]}")
    X = collect_activations(model, layer_name, frames)
    w = layer.weight
    bias = None if layer.bias is None else layer.bias.detach().cpu().double().numpy()
    admm.setdefault("weight_dtype", {torch.float16: np.float16, torch.float32: np.float32,
                                     torch.float64: np.float64}.get(w.dtype))
    res = net_trim(X, w.detach().cpu().double().numpy(), bias, epsilon, **admm)
    w.copy_(torch.from_numpy(res.weight).to(w.dtype))
    return res


def first_fc(model) -> str:
    """The name of the first nn.Linear in named_modules() order (the seed's default layer)."""
    from torch import nn

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            return name
    raise PruneError("the model has no Linear layer for Net-Trim")
