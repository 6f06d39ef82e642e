"""The IR against qonnx's own executor (qonnx.core.onnx_exec.execute_onnx) on a QONNX file.

The file is cleaned with qonnx's cleanup_model, then imported (lower.qonnx) and executed by
qonnx node by node in float32 through onnxruntime. At every quantizer output the executor's
float value divided by its scale gives codes, compared with the IR's. A difference is
forbidden where the float32 evaluation is exact (power-of-two scales, no float offset, as in
docs/verification.md); elsewhere it is allowed only at a near-tie of the exact value the IR
rounds (|frac - 1/2| <= TIE_TOL), and counted. The float output is compared as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amchw.ir.interp import check_input, eval_node, kernels_for, run
from amchw.ir.ops import defines, ties_at
from amchw.verify import TIE_TOL, Verdict



@dataclass
class PointReport:
    tensor: str            # ONNX tensor (after qonnx cleanup)
    value: str             # IR value
    op: str
    compared: int = 0
    mismatches: int = 0
    forbidden: int = 0
    max_diff_lsb: int = 0
    max_tie_distance: float | None = None
    exact: bool = True     # float32 evaluation exact here: any difference is forbidden


@dataclass
class QonnxReport(Verdict):
    file: str
    frames: int
    points: list[PointReport] = field(default_factory=list)
    output_max_abs_diff: float = 0.0
    output_equal: bool = False
    argmax_agreement: float = 0.0

    @property
    def forbidden(self) -> int:
        return sum(p.forbidden for p in self.points)



def _exact_point(node) -> bool:
    """Is another tool's float32 evaluation exact at this quantizer (Op.f32_exact with exact
    inputs)? Only ops that round their input (a tie_distance of their own) can be."""
    op = node.op
    if not defines(type(op), "tie_distance"):
        return False
    return op.f32_exact([None] * len(node.inputs), True)


def classify_difference(node, x_in: np.ndarray, in_type, ours: np.ndarray,
                        theirs: np.ndarray) -> dict:
    """Codes of another tool (`theirs`) against the IR's (`ours`) at one quantizer node.

    Where the other tool's float32 evaluation is exact at this node (_exact_point) every
    difference is forbidden; elsewhere a difference is allowed only as 1 LSB at a near-tie of
    the exact value the node rounds (|frac - 1/2| <= TIE_TOL). Returns mismatches, forbidden,
    max_diff_lsb, max_tie_distance (None without differences) and exact."""
    diff = np.abs(theirs.astype(np.int64) - ours)
    bad = diff != 0
    out = {"mismatches": int(bad.sum()), "forbidden": 0, "max_diff_lsb": 0,
           "max_tie_distance": None, "exact": _exact_point(node)}
    if bad.any():
        tie = ties_at(node.op, x_in, in_type, bad)
        out["max_diff_lsb"] = int(diff.max())
        out["max_tie_distance"] = float(tie.max())
        out["forbidden"] = int(bad.sum()) if out["exact"] else \
            int((~((diff[bad] == 1) & (tie <= TIE_TOL))).sum())
    return out


def qonnx_execute(model, frames: np.ndarray, tensors) -> dict:
    """Run qonnx's executor frame by frame (the file's batch is 1); the named tensors, stacked."""
    from qonnx.core.onnx_exec import execute_onnx

    from amchw.export.compat import capped_ir_version

    name = model.graph.input[0].name
    out = {t: [] for t in dict.fromkeys(tensors)}
    with capped_ir_version():
        for f in frames:
            ctx = execute_onnx(model, {name: np.ascontiguousarray(f[None], np.float32)},
                               return_full_exec_context=True)
            for t in out:
                out[t].append(ctx[t])
    return {t: np.concatenate(v) for t, v in out.items()}


def compare_with_qonnx(path, frames: np.ndarray) -> QonnxReport:
    """Import `path` and compare the IR with qonnx's executor on `frames` (N, *input shape)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    from amchw.export.compat import capped_ir_version
    from amchw.lower.qonnx import load_qonnx

    with capped_ir_version():
        model = cleanup_model(ModelWrapper(str(path)))
    graph, points = load_qonnx(model.model, with_points=True, where=str(path), ties="qonnx")
    ref = qonnx_execute(model, frames, [t for t, _ in points])
    at = {v: t for t, v in points[:-len(graph.outputs)]}  # the last ones are the outputs
    vals = graph.values()
    impl = kernels_for("ref")
    rep = QonnxReport(str(path), int(frames.shape[0]))
    # node by node; at each quantizer the executor's codes replace ours after the comparison,
    # so that a difference stays local to the node where it arose
    env = {graph.inputs[0].name: check_input(graph, frames)}
    for node in graph.nodes:
        ins = [env[i] for i in node.inputs]
        ours = eval_node(node, ins, [vals[i].dtype for i in node.inputs], impl)
        env[node.output.name] = ours
        tensor = at.get(node.output.name)
        if tensor is None:
            continue
        t = node.output.dtype
        shape = (1, -1) + (1,) * (ours.ndim - 2) if t.per_channel else ()
        scale = t.scale_array().reshape(shape) if t.per_channel else t.scale[0]
        q_ref = np.round(ref[tensor].astype(np.float64) / scale) + t.zero_point
        d = classify_difference(node, ins[0], vals[node.inputs[0]].dtype, ours, q_ref)
        pr = PointReport(tensor, node.output.name, node.op.kind, compared=int(ours.size),
                         mismatches=d["mismatches"], forbidden=d["forbidden"],
                         max_diff_lsb=d["max_diff_lsb"],
                         max_tie_distance=d["max_tie_distance"], exact=d["exact"])
        if d["mismatches"] and q_ref.min() >= t.lo and q_ref.max() <= t.hi:
            env[node.output.name] = q_ref.astype(np.int32)
        rep.points.append(pr)
    # the float output(s) of a plain IR run (not the node-by-node one fed with the executor's
    # codes); the importer's last points pair each graph output with its ONNX tensor
    n_out = len(graph.outputs)
    outs = run(graph, frames, "ref")
    outs = outs if isinstance(outs, tuple) else (outs,)
    diff, equal, same = 0.0, True, np.ones(len(frames), bool)
    for (out_t, _), a in zip(points[-n_out:], outs):
        a, b = a.astype(np.float64), ref[out_t].astype(np.float64)
        diff = max(diff, float(np.max(np.abs(a - b))))
        equal &= bool(np.array_equal(a.astype(np.float32), b.astype(np.float32)))
        n = len(frames)  # argmax over each frame's outputs (any output shape)
        same &= a.reshape(n, -1).argmax(1) == b.reshape(n, -1).argmax(1)
    rep.output_max_abs_diff, rep.output_equal = diff, equal
    rep.argmax_agreement = float(np.mean(same))
    return rep


def format_qonnx_report(rep: QonnxReport) -> str:
    """The comparison as a table: one row per quantizer, then the output and the verdict."""
    lines = [f"verify {rep.file}: qonnx's executor vs IR interpreter, {rep.frames} frames, "
             "quantizer by quantizer"]
    lines.append(f"{'tensor':<22} {'IR value':<14} {'op':<9} {'compared':>10} {'mismatch':>8} "
                 f"{'forbid':>6} {'maxLSB':>6} {'near-tie':>9} class")
    for p in rep.points:
        tie = "" if p.max_tie_distance is None else f"{p.max_tie_distance:.1e}"
        lines.append(f"{p.tensor[:22]:<22} {p.value[:14]:<14} {p.op:<9} {p.compared:>10} "
                     f"{p.mismatches:>8} {p.forbidden:>6} {p.max_diff_lsb:>6} {tie:>9} "
                     f"{'exact' if p.exact else 'float'}")
    lines.append(f"output: max |difference| {rep.output_max_abs_diff:.3g}, "
                 f"{'equal in float32' if rep.output_equal else 'not bit-equal'}; top-1 "
                 f"agreement {rep.argmax_agreement:.4f}")
    lines.append(("OK" if rep.ok else "FAILED") + f": {rep.forbidden} forbidden mismatches "
                 "(near-ties allowed only where qonnx rounds a float32 value)")
    return "\n".join(lines)
