"""What the commands do with a model spec, as functions returning reports: verification
against Brevitas or another tool, simulation (with an early-exit model's exit rule run on a
data file), the side-by-side dataflow comparison. Nothing here prints or exits; a request
that cannot be met is an amchw.resolve.RequestError, other failures the library's own."""

from __future__ import annotations

import tempfile
from pathlib import Path

from amchw.resolve import (RequestError, frames_for_shape, graph_and_frames, load_model,
                           load_qonnx_file, model_and_frames, model_name, resolve_graph)

#: simulate's default exit threshold: the base-10 entropy of the exit's softmax
EXIT_THRESHOLD = 0.05


def verify_brevitas(spec: str, reference: str, scales: str, weight_bits: int, act_bits: int,
                    n_frames: int, seed: int):
    """Brevitas vs the IR interpreter vs the Numba kernels, layer by layer, on n_frames
    synthetic frames (amchw.verify.brevitas.verify_model). reference "auto": float32 for
    power-of-two scales, float64 for float scales."""
    import numpy as np

    from amchw.verify.brevitas import verify_model

    if reference == "auto":
        reference = "float32" if scales == "po2" else "float64"
    name, model, frames = model_and_frames(spec, scales, weight_bits, act_bits, n_frames, seed)
    return verify_model(model, np.asarray(frames), reference=reference, name=name)


def verify_against_tool(spec: str, reference: str, finn_python, n_frames: int, scales: str,
                        weight_bits: int, act_bits: int, seed: int):
    """(report, what the inputs are) of a QONNX file against qonnx's executor, or of any model
    against FINN (reference "finn") or qonnx's executor ("qonnx"); a zoo model or checkpoint
    is exported for it first (in FINN's form for FINN)."""
    from amchw.resolve import is_qonnx_file

    with tempfile.TemporaryDirectory(prefix="amchw-verify-") as tmp:
        path = Path(spec)
        if not is_qonnx_file(spec):
            from amchw.data.synthetic import frames_for
            from amchw.export.qonnx import ExportError, export_model
            from amchw.lower.common import LoweringError

            name = model_name(spec)
            frames = frames_for(name, 16, seed=seed)
            model = load_model(spec, scales, weight_bits, act_bits, frames, seed)
            path = Path(tmp) / f"{name}.qonnx"
            try:
                export_model(model, frames, path, name,
                             form="finn" if reference == "finn" else "qonnx")
            except (ExportError, LoweringError) as e:
                raise RequestError(str(e)) from None
        graph = load_qonnx_file(path)
        frames, what = frames_for_shape(graph, n_frames, seed)
        if reference == "finn":
            from amchw.verify.finn import FinnError, FinnUnavailable, compare_with_finn

            try:
                return compare_with_finn(path, frames, python=finn_python), what
            except (FinnUnavailable, FinnError) as e:
                raise RequestError(str(e)) from None
        from amchw.verify.qonnx import compare_with_qonnx

        return compare_with_qonnx(path, frames), what


def simulate_model(spec: str, target, dataflow, timing: str, batch: int, n_frames: int,
                   stepped: bool, scales: str, weight_bits: int, act_bits: int, seed: int,
                   sparse_format: str | None = None, min_sparsity: float = 0.0,
                   data_path: str | None = None, exit_threshold: float = EXIT_THRESHOLD,
                   max_frames: int = 2000, sweep_thresholds=()):
    """(simulation report with its integer check (and stepped check), {layer: why kept dense},
    early-exit result or None) of MODEL on `target`. With data_path (an early-exit model):
    the integer exit rule is added and run on the data file's frames, giving
    (sims.early_exit report, what the JSON adds)."""
    from amchw.sims.simulate import simulate, stepped_check

    r = resolve_graph(spec, scales, weight_bits, act_bits, seed)
    graph = r.graph
    if data_path:
        graph = with_exit_rule(spec, graph, exit_threshold)
    skipped = {}
    if sparse_format:
        from amchw.ir import IRError
        from amchw.ir.sparse import set_format

        try:
            graph, skipped = set_format(graph, sparse_format, min_sparsity)
        except IRError as e:
            raise RequestError(str(e), usage=True, option="--sparse-format") from None
    rep = simulate(graph, target, dataflow, timing, batch)
    done_to = {"exit_threshold": exit_threshold if data_path else None,
               "sparse_format": sparse_format, "min_sparsity": min_sparsity}
    rep.integer_check = cached_integer_check(r, graph, n_frames, done_to)
    if stepped:
        frames, _ = r.frames(max(n_frames, batch))
        stepped_check(rep, graph, frames)
    ee = None
    if data_path:
        ee = early_exit_run(spec, graph, rep, data_path, max_frames, seed, exit_threshold,
                            sweep_thresholds)
    return rep, skipped, ee


def cached_integer_check(r, graph, n_frames: int, done_to: dict) -> dict:
    """The integer check (Numba kernels against the IR interpreter) of `graph` on n_frames
    sample frames. A match is stored in the cache (amchw.cache) under the graph's key, the
    frames and what was done to the graph after loading (`done_to`); a later run on the same
    graph and frames reads it back instead of checking again, and the result says so
    ("cached": True). A mismatch is never stored."""
    from amchw import cache
    from amchw.sims.simulate import integer_check

    key = None
    if r.key:
        key = cache.make_key("integer-check", graph=r.key, frames=n_frames, seed=r.seed,
                             **done_to)
        hit = cache.load_result("checks", key)
        if hit is not None and hit.get("equal") is True:
            return {**hit, "cached": True}
    frames, what = r.frames(n_frames)
    ic = integer_check(graph, frames)
    ic["inputs"] = what
    if key and ic["equal"]:
        cache.store_result("checks", key, ic)
    return {**ic, "cached": False}


def with_exit_rule(spec: str, graph, threshold: float):
    """The graph of an early-exit model with its integer exit decision (a usage error for a
    model without an exit and a final output)."""
    from amchw.ir import IRError
    from amchw.ir.early_exit import add_exit_rule

    if len(graph.outputs) != 2:
        raise RequestError(f"--data needs an early-exit model (two outputs: the exit's and "
                           f"the final classifier's logits, e.g. ee-v1); {spec} has "
                           f"{len(graph.outputs)} output(s)", usage=True)
    try:
        return add_exit_rule(graph, threshold, exit_output=graph.outputs[0])
    except IRError as e:
        raise RequestError(f"{spec}: cannot add the exit rule: {e}") from None


def early_exit_frames(spec: str, shape, data_path: str, max_frames: int, seed: int):
    """(frames, labels, SNRs, class count, which frames) of the data file: a checkpoint's test
    split, all frames otherwise (amchw.checkpoint.split_frames)."""
    from amchw.checkpoint import load, split_frames
    from amchw.models import ZOO

    ck = None
    if spec not in ZOO and Path(spec).suffix.lower() not in (".npz", ".qonnx", ".onnx"):
        ck = load(spec)
        ck = ck if isinstance(ck, dict) else None
    x, y, snr, classes, which = split_frames(data_path, shape, ck, "test", max_frames, seed)
    return x, y, snr, len(classes), which


def early_exit_run(spec: str, graph, rep, data_path: str, max_frames: int, seed: int,
                   threshold: float, sweep_thresholds=()):
    """Run the integer graph with its exit rule on the data file; the early-exit report of
    sims.early_exit and what the JSON adds to it."""
    from amchw.data.radioml import DataFileMissing, DatasetError
    from amchw.ir import IRError
    from amchw.ir.early_exit import decide, error_bound, run_early_exit
    from amchw.sims.early_exit import early_exit, split_layers, sweep

    try:
        x, y, snr, n_cls, which = early_exit_frames(spec, graph.inputs[0].shape, data_path,
                                                     max_frames, seed)
    except (DatasetError, OSError, ValueError, KeyError) as e:
        msg = str(e)
        raise RequestError(msg if msg.startswith(f"{data_path}:") else f"{data_path}: {msg}",
                           usage=isinstance(e, DataFileMissing), option="--data") from None
    n_logits = graph.values()[graph.outputs[0]].shape[0]
    if n_cls != n_logits:
        raise RequestError(f"{data_path}: {n_cls} classes but {spec} has {n_logits} outputs")
    try:
        r = run_early_exit(graph, x, "fast", exit_output=graph.outputs[0])
        split = split_layers(graph, rep, exit_output=graph.outputs[0])
    except (IRError, ValueError) as e:
        raise RequestError(str(e)) from None
    pe, pf = r["exit_logits"].argmax(axis=1), r["final_logits"].argmax(axis=1)
    ee = early_exit(split, r["flags"], snr, y, pe, pf, threshold=threshold)
    if sweep_thresholds:
        ee.sweep = sweep(split, {t: decide(graph, r["codes"], t) for t in sweep_thresholds},
                         y, pe, pf)
    return ee, {"data": str(data_path), "data_split": which, "frames": int(x.shape[0]),
                "error_bound": error_bound(graph)}


def compare(specs, target, timing: str, batch: int, scales: str, weight_bits: int,
            act_bits: int, seed: int, min_sparsity: float) -> list[dict]:
    """Rows of `amchw simulate --compare`: every MODEL[@FORMAT] simulated in os, ws and is
    (cycles, energy, weight bytes, MACs, DRAM bytes); @FORMAT stores its weights so."""
    from amchw.ir import IRError
    from amchw.ir.sparse import set_format
    from amchw.sims.simulate import SimulationError, simulate

    rows = []
    for item in specs:
        spec, _, fmt = item.partition("@")
        graph, _, _ = graph_and_frames(spec, scales, weight_bits, act_bits, 16, seed)
        kept: dict = {}
        if fmt:
            try:
                graph, kept = set_format(graph, fmt, min_sparsity)
            except IRError as e:
                raise RequestError(f"{item}: {e}", usage=True, option="--compare") from None
        stored = sorted({n.name for n in graph.nodes
                         if str(getattr(n.op, "w_format", "dense")) != "dense"})
        for df in ("os", "ws", "is"):
            try:
                rep = simulate(graph, target, df, timing, batch)
            except SimulationError as e:
                raise RequestError(f"{item}: {e}") from None
            tot = rep.totals()
            rows.append({"model": item, "format": fmt or "dense", "dataflow": df,
                         "stored_in_format": stored, "kept_dense": kept,
                         "cycles": rep.cycles, "energy_uj": tot["energy_per_inference_uj"],
                         "weight_bytes": tot["weight_bytes"], "macs": tot["macs"],
                         "dram_bytes": tot["dram_bytes"]})
    return rows


def zoo_summary() -> list[dict]:
    """One row per zoo model: input shape, classes, parameters, MACs, weight bytes at the
    default weight bit width, profile and description. Counting builds every model (torch,
    seconds); the table is kept in amchw.cache, keyed by the code and torch's version, so a
    second `amchw zoo` reads it back."""
    from amchw import cache

    key = cache.make_key("zoo-summary", versions=cache.framework_versions()) \
        if cache.enabled() else None
    hit = cache.load_result("tables", key) if key else None
    if hit is not None and isinstance(hit.get("rows"), list):
        return hit["rows"]
    from amchw.models import ZOO, QuantConfig, build, count_macs, count_params, weight_count

    rows = []
    for name, e in ZOO.items():
        m = build(name, seed=0)
        w_bits = QuantConfig().weight_bits
        rows.append({"name": name, "input_shape": list(e.input_shape), "classes": e.num_classes,
                     "params": count_params(m), "macs": count_macs(m, e.input_shape),
                     "weight_bytes": weight_count(m) * w_bits // 8, "weight_bits": w_bits,
                     "profile": e.profile, "description": e.description})
    if key:
        cache.store_result("tables", key, {"rows": rows})
    return rows
