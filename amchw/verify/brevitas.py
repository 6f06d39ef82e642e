"""Layer-by-layer bit-exactness of the IR against Brevitas, and of the Numba kernels against
the reference interpreter.

Each IR node is evaluated on Brevitas' own inputs where Brevitas has them (so a difference is
local to the layer, never inherited), and compared with Brevitas' output. What counts as a
forbidden mismatch follows docs/verification.md:
- interpreter vs Numba kernels: every difference;
- reference float64 (model.double()): every difference;
- reference float32: differences at points whose float32 evaluation is exact (power-of-two
  scales, no float affine, |acc| < 2^24); elsewhere a 1-LSB code difference is allowed only
  when the exact value is a near-tie (|frac - 1/2| <= TIE_TOL), and an accumulator recovered
  from a float32 output only within the float32 summation error bound.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from amchw.ir.interp import eval_node, kernels_for
from amchw.ir.ops import defines, ties_at
from amchw.lower.brevitas import Point, lower_with_points
from amchw.verify import TIE_TOL, Verdict



@dataclass
class LayerReport:
    layer: str
    node: str
    op: str
    shape: list[int]
    compared: int = 0
    mismatches: int = 0
    forbidden: int = 0
    max_diff_lsb: int = 0
    first_mismatch: list[int] | None = None
    max_tie_distance: float | None = None  # max |frac - 0.5| over mismatches (codes only)
    exactness: str = "exact"  # "exact": float32 evaluation is exact; "float": it rounds


@dataclass
class VerifyReport(Verdict):
    model: str
    reference: str
    frames: int
    layers: list[LayerReport] = field(default_factory=list)
    kernels: list[LayerReport] = field(default_factory=list)  # interpreter vs Numba
    argmax_agreement: float = 0.0

    @property
    def forbidden(self) -> int:
        return sum(r.forbidden for r in self.layers) + sum(r.forbidden for r in self.kernels)



def _exact_value(node, vals, exact_val) -> bool:
    """Does float32 Brevitas hold this node's output exactly (given the IR's integers)? The op
    says (Op.f32_exact): codes leaving a quantizer are exact by construction unless the
    rounding saw a float32 error; accumulators are exact for power-of-two scales while
    |acc| < 2^24."""
    ins_exact = all(exact_val.get(i, True) for i in node.inputs)
    return node.op.f32_exact([vals[i].dtype for i in node.inputs], ins_exact)


class _Recorder:
    def __init__(self, model, paths):
        self.out = {}
        mods = dict(model.named_modules())
        self.hooks = [mods[p].register_forward_hook(self._mk(p)) for p in paths]

    def _mk(self, path):
        def hook(mod, args, output):
            self.out.setdefault(path, []).append(output)
        return hook

    def close(self):
        for h in self.hooks:
            h.remove()


def _reference_ints(point: Point, output, zx: int) -> np.ndarray:
    if point.kind == "codes":
        return output.int().detach().cpu().numpy().astype(np.int64)
    val = output.value if hasattr(output, "value") else output
    val = val.detach().cpu().numpy().astype(np.float64)
    shape = [1] * val.ndim
    shape[1] = -1
    S = point.S.reshape(shape)
    B = point.B.reshape(shape)
    return (np.rint((val - B) / S) + zx).astype(np.int64)


def verify_model(model, frames: np.ndarray, reference: str = "float64", batch_size: int = 64,
                 backends=("ref", "numba"), name: str | None = None) -> VerifyReport:
    """Compare Brevitas, the reference interpreter and the Numba kernels layer by layer."""
    if reference not in ("float64", "float32"):
        raise ValueError(f"--reference must be float64 or float32, got {reference!r}")
    dtype = torch.float64 if reference == "float64" else torch.float32
    m = copy.deepcopy(model).eval()
    m = m.double() if dtype == torch.float64 else m.float()
    frames = np.asarray(frames)
    sample = torch.as_tensor(frames[: min(len(frames), 8)], dtype=dtype)
    graph, points = lower_with_points(m, sample, name)
    vals = graph.values()
    exact_val: dict[str, bool] = {}
    rep = VerifyReport(graph.name, reference, len(frames))
    rows: dict[tuple[str, str], LayerReport] = {}
    krows: dict[str, LayerReport] = {}
    impls = {b: kernels_for(b) for b in backends}
    agree = 0
    for i0 in range(0, len(frames), batch_size):
        xb = frames[i0:i0 + batch_size]
        rec = _Recorder(m, sorted({p.path for p in points}))
        try:
            with torch.no_grad():
                y = m(torch.as_tensor(xb, dtype=dtype))
        finally:
            rec.close()
        # reference integers per IR value (the last point recorded for a value wins as input)
        refs: dict[str, list[tuple[Point, np.ndarray]]] = {}
        for p in points:
            zx = vals[p.value].dtype.zero_point
            ref_ints = _reference_ints(p, rec.out[p.path][p.call], zx)
            refs.setdefault(p.value, []).append((p, ref_ints))
        # 1) layer-wise: each node on Brevitas' inputs, against Brevitas' output
        impl = impls[backends[0]]
        xin = xb.astype(np.float32 if dtype == torch.float32 else np.float64)
        env = {graph.inputs[0].name: xin}
        for node in graph.nodes:
            args = []
            for i in node.inputs:  # Brevitas' own codes where it has them (exact integers)
                codes = [ref for p, ref in refs.get(i, []) if p.kind == "codes"]
                args.append(codes[-1].astype(np.int32) if codes else env[i])
            in_types = [vals[i].dtype for i in node.inputs]
            out = eval_node(node, args, in_types, impl)
            env[node.output.name] = out
            exact_val[node.output.name] = _exact_value(node, vals, exact_val)
            for p, ref in refs.get(node.output.name, []):
                strict = reference == "float64" or _exact_point(p, node, exact_val)
                _compare_point(rows, node, p, out, ref, args, in_types, strict, vals)
            if any(p.kind == "codes" for p, _ in refs.get(node.output.name, [])):
                exact_val[node.output.name] = True  # later nodes read Brevitas' own codes
        # 2) interpreter vs kernels, end to end (no substitution)
        runs = {}
        for b, imp in impls.items():
            e = {graph.inputs[0].name: xb}
            for node in graph.nodes:
                e[node.output.name] = eval_node(node, [e[i] for i in node.inputs],
                                                [vals[i].dtype for i in node.inputs], imp)
            runs[b] = e
        base = runs[backends[0]]
        for b in backends[1:]:
            for node in graph.nodes:
                a, c = base[node.output.name], runs[b][node.output.name]
                r = krows.setdefault(f"{node.name}:{b}", LayerReport(
                    f"{backends[0]} vs {b}", node.name, node.op.kind, list(node.output.shape)))
                _count(r, a, c, forbidden_all=True)
        # a frame agrees when every output (one, or each exit of an early-exit network)
        # has the model's argmax
        n = len(xb)
        ys = y if isinstance(y, (tuple, list)) and not hasattr(y, "value") else (y,)
        same = np.ones(n, bool)
        for o, yo in zip(graph.outputs, ys):
            yv = (yo.value if hasattr(yo, "value") else yo).detach().cpu().numpy()
            same &= (np.argmax(base[o].reshape(n, -1), axis=1)
                     == np.argmax(yv.reshape(n, -1), axis=1))
        agree += int(same.sum())
    rep.layers = list(rows.values())
    rep.kernels = list(krows.values())
    rep.argmax_agreement = agree / max(1, len(frames))
    return rep


def _count(r: LayerReport, a: np.ndarray, b: np.ndarray, forbidden_all: bool,
           allowed=None) -> np.ndarray:
    a = np.asarray(a)
    b = np.asarray(b)
    r.compared += a.size
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        diff = a.astype(np.float64) != b.astype(np.float64)
    else:
        diff = a.astype(np.int64) != b.astype(np.int64)
    n = int(diff.sum())
    if n:
        r.mismatches += n
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        r.max_diff_lsb = max(r.max_diff_lsb, int(np.ceil(d.max())))
        if r.first_mismatch is None:
            r.first_mismatch = [int(v) for v in np.argwhere(diff)[0]]
        if forbidden_all:
            r.forbidden += n
        else:
            r.forbidden += int((diff & ~allowed).sum())
    return diff


def _exact_point(p: Point, node, exact_val) -> bool:
    if not exact_val[node.output.name]:
        return False
    if p.kind == "codes":
        return True
    scale = node.output.dtype.scale_array()
    return bool(np.all(p.B == 0) and np.all(np.broadcast_to(scale, p.S.shape) == p.S))


def _compare_point(rows, node, p: Point, ir, ref, args, in_types, strict: bool, vals):
    key = (p.path, p.kind, p.call)
    r = rows.get(key)
    if r is None:
        layer = p.path + (f"[{p.call}]" if p.call else "")
        r = rows[key] = LayerReport(layer, node.name, node.op.kind, list(node.output.shape))
    if not strict:
        r.exactness = "float"
    if strict:
        _count(r, ir, ref, forbidden_all=True)
        return
    diff_mask = np.asarray(ir, np.int64) != ref
    allowed = np.zeros_like(diff_mask)
    if diff_mask.any():
        if p.kind == "codes":
            if defines(type(node.op), "tie_distance"):  # the op rounds: how near a tie?
                td = ties_at(node.op, args[0], in_types[0], diff_mask)
                r.max_tie_distance = float(td.max()) if r.max_tie_distance is None else max(
                    r.max_tie_distance, float(td.max()))
                one = np.abs(np.asarray(ir, np.int64) - ref)[diff_mask] == 1
                allowed[diff_mask] = one & (td <= TIE_TOL)
        else:
            allowed = np.abs(np.asarray(ir, np.int64) - ref) <= _f32_acc_tol(node, vals, ir)
    _count(r, ir, ref, forbidden_all=False, allowed=allowed)


def _f32_acc_tol(node, vals, ir) -> np.ndarray:
    """float32 summation error bound, in accumulator LSBs: the op's own (Conv/Dense: (K + 2) *
    2^-24 * worst |acc| + 1), else 2^-20 of the value plus one."""
    tol = getattr(node.op, "f32_tolerance", None)
    if tol is not None:
        return tol([vals[i].dtype for i in node.inputs], ir)
    return np.ceil(np.abs(np.asarray(ir, np.float64)) * 2.0**-20) + 1
