"""FINN's front end on one QONNX file, run inside FINN's own virtual environment.

This file imports only FINN, qonnx, onnx and numpy (never amchw): amchw.verify.finn runs it
as `FINN_PYTHON finn_worker.py MODEL INPUTS.npy OUTDIR [--no-exec] [--standard-streamline]`.
A graph that forks is streamlined with `step_streamline_forks` (below) unless
--standard-streamline asks for FINN's step alone. It applies FINN's build steps in
order (QONNX -> FINN-ONNX, tidy-up, streamline, convert to HW layers, dataflow partition),
executes the model with FINN's own executor (finn.core.onnx_exec.execute_onnx) after each
step on the given inputs, and writes OUTDIR/finn.json (per step: ok or the error, op census,
the nodes left outside FINN's HW layers) and OUTDIR/finn.npz (per step the outputs; for the
streamlined model also every MultiThreshold output, in graph order).
"""

import os
import sys

# run as a script, this folder would come first on sys.path and its qonnx.py would shadow the
# qonnx package: drop it before anything imports qonnx
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _here]

import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw", "dataflow_partition")
HW_DOMAIN = "finn.custom_op.fpgadataflow"


def step_streamline_forks(model, cfg):
    """FINN's streamlining for graphs that fork (early exits, residual and multi-branch
    blocks): FINN's own fork and join reorderings first, so that no scale multiply is left
    at a fork, then FINN's standard streamlining step (the route FINN's residual examples
    take with custom steps). Usable as a step in any FINN build:
    `steps=["step_qonnx_to_finn", "step_tidy_up", step_streamline_forks, ...]`."""
    from finn.builder.build_dataflow_steps import step_streamline
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.absorb import (AbsorbConsecutiveTransposes,
                                                       AbsorbTransposeIntoMultiThreshold)
    from finn.transformation.streamline.reorder import (MoveAffinePastJoinConcat,
                                                        MoveLinearPastFork,
                                                        MoveMulPastJoinAdd,
                                                        MoveScalarLinearPastFork,
                                                        MoveTransposePastFork,
                                                        MoveTransposePastJoinAdd,
                                                        MoveTransposePastJoinConcat)
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes

    # not MoveLinearPastEltwiseAdd / MoveAddPastJoinAdd: they carry a signed quantizer's
    # -2^(b-1) bias past a residual join, and the HW conversion then refuses the signed
    # MultiThreshold left without it
    moves = (MoveScalarLinearPastFork, MoveLinearPastFork, MoveMulPastJoinAdd,
             MoveAffinePastJoinConcat)
    for _ in range(3):  # a move can expose another: a few rounds reach the fixed point
        for t in moves:
            model = model.transform(t())
            model = model.transform(GiveUniqueNodeNames())
            model = model.transform(GiveReadableTensorNames())
            model = model.transform(InferDataTypes())
        model = model.transform(Streamline())
    model = step_streamline(model, cfg)
    for t in (MoveTransposePastFork, MoveTransposePastJoinAdd, MoveTransposePastJoinConcat,
              AbsorbTransposeIntoMultiThreshold, AbsorbConsecutiveTransposes):
        model = model.transform(t())
    return step_streamline(model, cfg)


def has_fork(model) -> bool:
    """Whether some computed tensor is read by two nodes."""
    inits = {i.name for i in model.graph.initializer}
    seen: dict = {}
    for n in model.graph.node:
        for i in n.input:
            if i and i not in inits:
                seen[i] = seen.get(i, 0) + 1
    return any(v > 1 for v in seen.values())


def _census(model) -> dict:
    ops: dict = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ops


def _execute(model, inputs: np.ndarray, keep=()) -> tuple[list, dict]:
    """Frame by frame (FINN's graphs keep the exported batch of 1): outputs and kept tensors."""
    from finn.core.onnx_exec import execute_onnx

    name = model.graph.input[0].name
    want = tuple(model.graph.input[0].type.tensor_type.shape.dim)
    shape = tuple(int(d.dim_value) for d in want)
    outs = [[] for _ in model.graph.output]
    kept = {t: [] for t in keep}
    for x in inputs:
        ctx = execute_onnx(model, {name: np.ascontiguousarray(x.reshape(shape), np.float32)},
                           return_full_exec_context=bool(keep))
        for i, o in enumerate(model.graph.output):
            outs[i].append(np.asarray(ctx[o.name]))
        for t in kept:
            kept[t].append(np.asarray(ctx[t]))
    return ([np.concatenate(o) for o in outs],
            {t: np.concatenate(v) for t, v in kept.items()})


def _outside(model) -> list:
    """Nodes that are not FINN HW layers: (name, op type)."""
    return [[n.name, n.op_type] for n in model.graph.node if not n.domain.startswith(HW_DOMAIN)]


def main(argv) -> int:
    model_path, inputs_path, out_dir = argv[1:4]
    execute = "--no-exec" not in argv[4:]   # --no-exec: the steps only, no execution
    os.makedirs(out_dir, exist_ok=True)
    build = tempfile.mkdtemp(prefix="finn-build-", dir=out_dir)
    os.environ.setdefault("FINN_BUILD_DIR", build)
    import finn.xsi
    finn.xsi.SimEngine = None  # the CPU steps never simulate RTL; this keeps Vivado optional
    from finn.builder import build_dataflow_steps as S
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.modelwrapper import ModelWrapper

    inputs = np.load(inputs_path)
    cfg = DataflowBuildConfig(output_dir=os.path.join(build, "out"), target_fps=1000,
                              save_intermediate_models=True, verify_steps=[])
    model = ModelWrapper(model_path)
    forks = has_fork(model) and "--standard-streamline" not in argv[4:]
    report: dict = {"model": model_path, "frames": int(len(inputs)), "steps": [],
                    "streamlining": "forks" if forks else "standard"}
    arrays: dict = {}
    for step in STEPS:
        t0 = time.perf_counter()
        rec: dict = {"step": step}
        try:
            if step == "streamline" and forks:
                model = step_streamline_forks(model, cfg)
            else:
                model = getattr(S, "step_" + (step if step != "dataflow_partition"
                                              else "create_dataflow_partition"))(model, cfg)
            run_model = model
            if step == "dataflow_partition":
                parent = os.path.join(cfg.get_intermediate_models_directory(),
                                      "dataflow_parent.onnx")
                run_model = ModelWrapper(parent)
                rec["outside_partition"] = [[n.name, n.op_type] for n in run_model.graph.node
                                            if n.op_type != "StreamingDataflowPartition"]
                rec["partitions"] = sum(n.op_type == "StreamingDataflowPartition"
                                        for n in run_model.graph.node)
                rec["partition_ops"] = _census(model)
            rec["ops"] = _census(run_model)
            if step in ("convert_to_hw", "dataflow_partition"):
                rec["non_hw"] = _outside(model if step == "convert_to_hw" else run_model)
            rec["seconds_transform"] = time.perf_counter() - t0
            keep = ()
            if step == "streamline":
                keep = tuple(n.output[0] for n in run_model.graph.node
                             if n.op_type == "MultiThreshold")
                rec["thresholds"] = [
                    {"node": n.name, "tensor": n.output[0],
                     "layout": _layout(run_model, n.output[0]),
                     "out_dtype": str(run_model.get_tensor_datatype(n.output[0]))}
                    for n in run_model.graph.node if n.op_type == "MultiThreshold"]
            if execute:
                t1 = time.perf_counter()
                outs, kept = _execute(run_model, inputs, keep)
                rec["seconds_execute"] = time.perf_counter() - t1
                for i, o in enumerate(outs):
                    arrays[f"{step}/out{i}"] = o
                for i, t in enumerate(keep):
                    arrays[f"{step}/mt{i}"] = kept[t]
            rec["ok"] = True
        except Exception as e:  # noqa: BLE001 - FINN raises many types; the step records it
            rec["ok"] = False
            rec["error"] = f"{type(e).__name__}: {e}"
            rec["traceback"] = traceback.format_exc(limit=6)
            report["steps"].append(rec)
            break
        report["steps"].append(rec)
    np.savez(os.path.join(out_dir, "finn.npz"), **arrays)
    with open(os.path.join(out_dir, "finn.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


def _layout(model, tensor) -> str:
    try:
        lay = model.get_tensor_layout(tensor)
    except Exception:  # noqa: BLE001
        return ""
    return "".join(lay) if lay else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
