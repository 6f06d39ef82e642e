"""The IR against FINN itself: FINN's front end and CPU build steps run on a QONNX file in
FINN's own virtual environment (verify/finn_worker.py), and FINN's execution
(finn.core.onnx_exec.execute_onnx) after every step is compared with amchw's integer run.

FINN is located by `--finn-python`, else $AMCHW_FINN_PYTHON, else `.finn-venv/bin/python` in
the repository (scripts/finn-venv.sh builds it). Compared, bit for bit:
- every step's output (the float logits FINN computes) with the IR's dequantized output in
  float32 (power-of-two scales make both exact), and its argmax;
- after streamlining, each MultiThreshold's codes with the IR quantizer in the same place
  (Quantize/Requant in graph order; FINN's channels-last layout transposed back), the layer
  by layer view that FINN's graph allows. Where FINN folds a BatchNorm or float bias into
  its thresholds it computes them in float32: a 1-LSB difference at a near-tie of the exact
  value is allowed there and counted (as against Brevitas in float32, docs/verification.md).
The IR follows the file's tie rule (`amchw.ties`; FINN's: halves up). From streamlining on,
FINN's graph is what its hardware computes (integer accumulators against thresholds that
absorbed every scale, bias and BatchNorm): there a FINN export must show 0 mismatches. The
two steps before it still evaluate BatchNorm and scales as float32 ops, which can round a
near-tie the other way; their differences are shown but counted apart (`float_stage_...`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw", "dataflow_partition")
#: the steps whose graph holds only integer arithmetic and thresholds (FINN's hardware)
EXACT_STEPS = ("streamline", "convert_to_hw", "dataflow_partition")
#: nodes FINN leaves outside its HW layers by design: the input's NCHW -> NHWC transpose
#: (a host-side layout change before the accelerator's first stream)
BY_DESIGN = ("Transpose",)
WORKER = Path(__file__).with_name("finn_worker.py")


class FinnUnavailable(RuntimeError):
    """No FINN installation was found or it does not start; says how to get one."""


class FinnError(RuntimeError):
    """FINN's worker failed before reporting (a crash outside the build steps)."""


def finn_python(explicit: str | None = None) -> str:
    """The Python interpreter of FINN's virtual environment, or FinnUnavailable."""
    cands = [explicit] if explicit else []
    if not explicit:
        if os.environ.get("AMCHW_FINN_PYTHON"):
            cands.append(os.environ["AMCHW_FINN_PYTHON"])
        root = Path(__file__).resolve().parents[2]
        cands.append(str(root / ".finn-venv" / "bin" / "python"))
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise FinnUnavailable(
        "FINN was not found: build it with `bash scripts/finn-venv.sh` (a virtual environment "
        "in .finn-venv/) or point --finn-python / AMCHW_FINN_PYTHON at the python of an "
        "environment with finn-plus 1.6.1" + (f" (tried {', '.join(cands)})" if cands else ""))


@dataclass
class LayerMatch:
    finn_node: str
    ir_node: str
    shape: tuple
    compared: int
    mismatches: int
    exact: bool = True              # FINN's thresholds exact here: any difference forbidden
    forbidden: int = 0
    max_tie_distance: float | None = None


@dataclass
class StepResult:
    step: str
    ok: bool
    error: str = ""
    ops: dict = field(default_factory=dict)
    non_hw: list = field(default_factory=list)       # [name, op type] left outside HW layers
    outputs_compared: int = 0
    output_mismatches: int = 0
    argmax_agreement: float = 0.0
    seconds: float = 0.0


@dataclass
class FinnReport:
    file: str
    frames: int
    ties: str
    streamlining: str = ""                           # "standard" or "forks"
    steps: list = field(default_factory=list)
    layers: list = field(default_factory=list)       # streamlined MultiThresholds vs the IR
    layer_note: str = ""

    @property
    def mismatches(self) -> int:
        """Differences where FINN computes as its hardware does: outputs (on FINN's codes)
        and forbidden layer differences (must be 0)."""
        return (sum(s.output_mismatches for s in self.steps if s.step in EXACT_STEPS)
                + sum(m.forbidden for m in self.layers))

    @property
    def near_ties(self) -> int:
        """1-LSB layer differences at a near-tie of a float32-folded threshold (allowed)."""
        return sum(m.mismatches - m.forbidden for m in self.layers)

    @property
    def float_stage_mismatches(self) -> int:
        """Differences in the steps that still run float32 BatchNorm/scale ops."""
        return sum(s.output_mismatches for s in self.steps if s.step not in EXACT_STEPS)

    @property
    def unexpected_non_hw(self) -> list:
        last = self.steps[-1] if self.steps else None
        if last is None or last.step != "dataflow_partition":
            return []
        return [n for n in last.non_hw if n[1] not in BY_DESIGN]

    @property
    def ok(self) -> bool:
        return (len(self.steps) == len(STEPS) and all(s.ok for s in self.steps)
                and self.mismatches == 0 and not self.unexpected_non_hw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(mismatches=self.mismatches, near_ties=self.near_ties,
                 float_stage_mismatches=self.float_stage_mismatches,
                 unexpected_non_hw=self.unexpected_non_hw, ok=self.ok)
        return d


def run_finn(path, inputs: np.ndarray, python: str | None = None, timeout: float = 1800,
             workdir=None, execute: bool = True, standard_streamline: bool = False
             ) -> tuple[dict, dict]:
    """FINN's steps and executions on `inputs` (N, *file input shape): (report, arrays);
    execute=False runs the steps only (which FINN builds, not what it computes). A graph that
    forks is streamlined with FINN's fork reorderings first (finn_worker.step_streamline_forks)
    unless standard_streamline=True."""
    py = finn_python(python)
    with tempfile.TemporaryDirectory(prefix="amchw-finn-", dir=workdir) as tmp:
        np.save(os.path.join(tmp, "inputs.npy"), np.ascontiguousarray(inputs, np.float32))
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        try:
            proc = subprocess.run([py, str(WORKER), str(Path(path).resolve()),
                                   os.path.join(tmp, "inputs.npy"), os.path.join(tmp, "out")]
                                  + ([] if execute else ["--no-exec"])
                                  + (["--standard-streamline"] if standard_streamline else []),
                                  capture_output=True, text=True, timeout=timeout, env=env,
                                  cwd=tmp)
        except subprocess.TimeoutExpired:
            raise FinnError(f"{path}: FINN did not finish within {timeout:.0f} s") from None
        except OSError as e:
            raise FinnUnavailable(f"{py}: cannot start FINN's python ({e})") from None
        rep_path = os.path.join(tmp, "out", "finn.json")
        if proc.returncode != 0 or not os.path.exists(rep_path):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            raise FinnError(f"{path}: FINN's worker failed (exit {proc.returncode}):\n  "
                            + "\n  ".join(tail))
        with open(rep_path) as f:
            report = json.load(f)
        with np.load(os.path.join(tmp, "out", "finn.npz")) as z:
            arrays = {k: z[k] for k in z.files}
    return report, arrays


def finn_steps(path, python: str | None = None, standard_streamline: bool = False
               ) -> FinnReport:
    """FINN's build steps on the file, without executing it: which steps pass and what stays
    outside FINN's HW layers."""
    from amchw.lower.qonnx import load_qonnx

    graph = load_qonnx(path)
    report, _ = run_finn(path, np.zeros((1,) + tuple(graph.inputs[0].shape), np.float32),
                         python, execute=False, standard_streamline=standard_streamline)
    rep = FinnReport(str(path), 0, graph.meta.get("ties", "half_even"),
                     streamlining=report.get("streamlining", ""))
    rep.steps = [_step_result(s) for s in report["steps"]]
    return rep


def _step_result(s: dict) -> StepResult:
    """A step of the worker's report, before any comparison."""
    return StepResult(s["step"], bool(s["ok"]), s.get("error", ""), s.get("ops", {}),
                      s.get("non_hw", []),
                      seconds=float(s.get("seconds_transform", 0) + s.get("seconds_execute", 0)))


def _as_ir_layout(finn_codes: np.ndarray, ir_shape: tuple) -> np.ndarray | None:
    """FINN's tensor in the IR's (N, C, ...) layout: as is, or channels-last transposed back."""
    if finn_codes.shape == ir_shape:
        return finn_codes
    if finn_codes.ndim == 4 and len(ir_shape) == 4:
        t = finn_codes.transpose(0, 3, 1, 2)
        if t.shape == ir_shape:
            return t
    if finn_codes.ndim == 3 and len(ir_shape) == 3:
        t = finn_codes.transpose(0, 2, 1)
        if t.shape == ir_shape:
            return t
    return None


def _pair_thresholds(graph, quant, thresholds, arrays, x) -> dict | None:
    """{IR value: (i, MultiThreshold i)}: each FINN MultiThreshold paired with the IR quantizer
    it computes. In a chain both orders agree; where the graph branches FINN may order the
    branches otherwise, so each MultiThreshold (in FINN's order) takes, among the unpaired
    quantizers of its shape, the one whose codes (on the IR's own run) agree most with its
    own. None when some MultiThreshold has no quantizer of its shape left."""
    from amchw.ir.interp import run

    plain = run(graph, x, "ref", keep=True)
    free = list(quant)
    out = {}
    for i, mt in enumerate(thresholds):
        best = None
        for n in free:
            ours = plain[n.output.name]
            theirs = _as_ir_layout(arrays[f"streamline/mt{i}"], ours.shape)
            if theirs is None:
                continue
            bad = int(np.count_nonzero(np.rint(theirs).astype(np.int64)
                                       + n.output.dtype.zero_point != ours))
            if best is None or bad < best[0]:
                best = (bad, n)
            if bad == 0:
                break
        if best is None:
            return None
        free.remove(best[1])
        out[best[1].output.name] = (i, mt)
    return out


def compare_with_finn(path, frames: np.ndarray, python: str | None = None,
                      ties: str | None = None, finn_run: tuple | None = None) -> FinnReport:
    """Run FINN on the QONNX file `path` and compare with amchw's integer run on `frames`.

    Layer by layer (streamlined graph): the IR is evaluated node by node and at each quantizer
    FINN's codes are compared with ours, then replace ours, so that a difference stays local.
    A difference is forbidden where FINN's thresholds are exact (power-of-two requantization,
    no folded BatchNorm or float bias); elsewhere FINN computes its thresholds in float32 and
    a 1-LSB difference is allowed only at a near-tie of the exact value (|frac - 1/2| <=
    TIE_TOL), and counted. Every step's output is compared, bit for bit, with the IR's output
    on FINN's codes (or, where no layer-by-layer view exists, on its own). `finn_run`: the
    (report, arrays) of an earlier run_finn on the same file and frames, to compare again
    (e.g. under another tie rule) without running FINN twice."""
    from amchw.ir import Quantize, Requant
    from amchw.ir.interp import check_input, eval_node, kernels_for, run
    from amchw.lower.qonnx import load_qonnx
    from amchw.verify.qonnx import classify_difference

    graph = load_qonnx(path, ties=ties)
    shape = tuple(graph.inputs[0].shape)
    x = np.asarray(frames, np.float32).reshape((len(frames),) + shape)
    report, arrays = finn_run if finn_run is not None else run_finn(path, x, python)
    rep = FinnReport(str(path), int(len(x)), graph.meta.get("ties", "half_even"),
                     streamlining=report.get("streamlining", ""))
    outs = None
    st = next((s for s in report["steps"] if s["step"] == "streamline" and s["ok"]), None)
    quant = [n for n in graph.nodes if isinstance(n.op, (Quantize, Requant))]
    finn_at: dict = {}
    if st is not None and len(st.get("thresholds", [])) != len(quant):
        rep.layer_note = (f"FINN's streamlined graph has {len(st.get('thresholds', []))} "
                          f"MultiThresholds, the IR {len(quant)} quantizers: outputs compared "
                          "only")
    elif st is not None:
        finn_at = _pair_thresholds(graph, quant, st["thresholds"], arrays, x)
        if finn_at is None:
            rep.layer_note = ("FINN's MultiThresholds do not map one to one onto the IR's "
                              "quantizers by shape: outputs compared only")
    if finn_at:
        vals = graph.values()
        impl = kernels_for("ref")
        env = {graph.inputs[0].name: check_input(graph, x)}
        for node in graph.nodes:
            ins = [env[i] for i in node.inputs]
            ours = eval_node(node, ins, [vals[i].dtype for i in node.inputs], impl)
            env[node.output.name] = ours
            if node.output.name not in finn_at:
                continue
            i, mt = finn_at[node.output.name]
            theirs = _as_ir_layout(arrays[f"streamline/mt{i}"], ours.shape)
            if theirs is None:
                rep.layer_note = (f"{mt['node']}: shape {arrays[f'streamline/mt{i}'].shape} "
                                  f"does not map onto {node.name} {ours.shape}")
                rep.layers = []
                break
            t = node.output.dtype
            theirs = np.rint(theirs).astype(np.int64) + t.zero_point
            d = classify_difference(node, ins[0], vals[node.inputs[0]].dtype, ours, theirs)
            m = LayerMatch(mt["node"], node.name, tuple(ours.shape[1:]), int(ours.size),
                           d["mismatches"], exact=d["exact"], forbidden=d["forbidden"],
                           max_tie_distance=d["max_tie_distance"])
            if m.mismatches and theirs.min() >= t.lo and theirs.max() <= t.hi:
                env[node.output.name] = theirs.astype(np.int32)
            rep.layers.append(m)
        else:
            outs = [env[o] for o in graph.outputs]
    if outs is None:
        v = run(graph, x, "ref")
        outs = list(v) if isinstance(v, tuple) else [v]
    for s in report["steps"]:
        r = _step_result(s)
        if r.ok:
            same = np.ones(len(x), bool)
            for i, ours in enumerate(outs):
                theirs = arrays[f"{s['step']}/out{i}"].reshape(ours.shape)
                r.outputs_compared += int(ours.size)
                r.output_mismatches += int(np.count_nonzero(
                    ours.astype(np.float32) != theirs.astype(np.float32)))
                same &= ours.reshape(len(x), -1).argmax(1) == theirs.reshape(len(x), -1).argmax(1)
            r.argmax_agreement = float(same.mean())
        rep.steps.append(r)
    return rep


def format_finn_report(rep: FinnReport) -> str:
    lines = [f"{rep.file}: FINN on {rep.frames} frames, IR tie rule {rep.ties}, "
             f"{rep.streamlining} streamlining"
             + (" (step_streamline_forks: the graph forks)" if rep.streamlining == "forks"
                else "")]
    lines.append(f"{'step':<20} {'ok':<4} {'outputs':>8} {'mismatch':>8} {'argmax':>7}  "
                 "outside FINN's HW layers")
    for s in rep.steps:
        nh = ", ".join(f"{a} ({b})" for a, b in s.non_hw) if s.non_hw else ""
        if s.step not in EXACT_STEPS:
            nh = (nh + "; " if nh else "") + "float32 BatchNorm/scales, not counted"
        lines.append(f"{s.step:<20} {'yes' if s.ok else 'NO':<4} {s.outputs_compared:>8,} "
                     f"{s.output_mismatches:>8,} {s.argmax_agreement:>7.1%}  {nh}")
        if not s.ok:
            lines.append(f"  error: {s.error}")
    if rep.layers:
        lines.append(f"streamlined, layer by layer ({len(rep.layers)} MultiThresholds):")
        for m in rep.layers:
            what = f"{m.mismatches} mismatches"
            if m.mismatches:
                what += (f" ({m.forbidden} forbidden; all within "
                         f"{m.max_tie_distance:.1e} of a tie)"
                         if not m.exact else " (forbidden: exact thresholds)")
            lines.append(f"  {m.finn_node:<18} = {m.ir_node:<14} {str(m.shape):<16} "
                         f"{m.compared:>9,} codes, {what}"
                         + ("" if m.exact else ", float32 thresholds"))
    if rep.layer_note:
        lines.append(f"layers: {rep.layer_note}")
    lines.append(("OK" if rep.ok else "FAILED") + f": {rep.mismatches} mismatches"
                 + (f", {rep.near_ties} near-tie differences at float32 thresholds"
                    if rep.near_ties else "")
                 + (f"; unexpected nodes outside HW: {rep.unexpected_non_hw}"
                    if rep.unexpected_non_hw else ""))
    return "\n".join(lines)
