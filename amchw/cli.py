"""The `amchw` command line: thin commands that parse options, call one library function and
print. Heavy imports (torch, brevitas, numba) happen inside the commands.
Exit codes: 0 ok, 1 a failed check or runtime error, 2 usage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

#: amchw.data.synthetic.PROFILES' names, spelled here so the CLI starts without numpy
#: (a test checks they agree)
PROFILE_NAMES = ("rml2016", "rml2016-1024", "rml2016b", "rml2018")


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="amchw")
def main() -> None:
    """amchw: quantized AMC networks lowered to an integer IR, verified bit-exact, costed on hardware."""


@main.command("zoo")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def zoo_cmd(as_json: bool) -> None:
    """List the model zoo: input shape, classes, parameters and MACs."""
    from amchw.models import ZOO, QuantConfig, build, count_macs, count_params, weight_count

    rows = []
    for name, e in ZOO.items():
        m = build(name, seed=0)
        w_bits = QuantConfig().weight_bits
        rows.append({"name": name, "input_shape": list(e.input_shape), "classes": e.num_classes,
                     "params": count_params(m), "macs": count_macs(m, e.input_shape),
                     "weight_bytes": weight_count(m) * w_bits // 8, "weight_bits": w_bits,
                     "profile": e.profile, "description": e.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    w = max([5] + [len(r["name"]) for r in rows])
    click.echo(f"{'model':<{w}} {'input':<8} {'classes':>7} {'params':>11} {'MACs':>12} "
               f"{'weights w8':>11}  description")
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        click.echo(f"{r['name']:<{w}} {shape:<8} {r['classes']:>7} {r['params']:>11,} "
                   f"{r['macs']:>12,} {r['weight_bytes']:>9,} B  {r['description']}")


@main.command("targets")
@click.option("--file", "target_file", default=None,
              help="also show a target defined in this JSON/TOML file")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def targets_cmd(target_file, as_json: bool) -> None:
    """List the hardware targets (presets, plus one from --file)."""
    from amchw.sims.hardware import PRESETS, TargetError, load_target

    targets = list(PRESETS.values())
    if target_file:
        try:
            targets.append(load_target(target_file))
        except TargetError as e:
            _fail(str(e))
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in targets], indent=2))
        return
    click.echo(f"{'target':<16} {'kind':<5} {'array':>7} {'df':>3} {'MHz':>6} "
               f"{'SRAM KiB i/w/o':>16} {'DRAM B/cyc':>10} {'MAC pJ':>7} {'static mW':>9}")
    for t in targets:
        sram = f"{t.ifmap_sram_kib:g}/{t.filter_sram_kib:g}/{t.ofmap_sram_kib:g}"
        click.echo(f"{t.name:<16} {t.kind:<5} {f'{t.rows}x{t.cols}':>7} {t.dataflow:>3} "
                   f"{t.freq_mhz:>6g} {sram:>16} {t.dram_bytes_per_cycle:>10g} "
                   f"{t.energy.mac_pj:>7g} {t.energy.static_mw:>9g}")
    for t in targets:
        click.echo(f"\n{t.name}: {t.description}")
        for k, v in t.energy.sources.items():
            click.echo(f"  {k}: {v}")


def checkpoint_model_name(spec: str) -> str:
    """The zoo architecture a checkpoint file was saved from."""
    from amchw.checkpoint import load

    path = Path(spec)
    if not path.is_file():
        from amchw.models import ZOO

        raise click.BadParameter(f"{spec!r} is neither a zoo model ({', '.join(ZOO)}) nor a file",
                                 param_hint="--model")
    try:
        return str(load(path)["model"])
    except Exception as e:  # any unreadable file is a user error naming the file
        _fail(f"{path}: not an amchw checkpoint ({type(e).__name__}: {e})")


def load_model(spec: str, scales: str, weight_bits: int, act_bits: int, frames, seed: int):
    """A zoo name (random weights, calibrated on `frames`) or a checkpoint file."""
    import torch

    from amchw.models import ZOO, QuantConfig, build
    from amchw.models.calibrate import calibrate

    if spec in ZOO:
        cfg = QuantConfig(weight_bits=weight_bits, act_bits=act_bits, scales=scales)
        model = build(spec, cfg, seed=seed)
        return calibrate(model, torch.as_tensor(frames), seed=seed)
    return checkpoint_model(spec)[0]


def checkpoint_model(spec: str):
    """(model in eval mode, checkpoint dict) of an amchw checkpoint file, read once."""
    from amchw.models import ZOO
    from amchw.checkpoint import model_from_checkpoint

    path = Path(spec)
    if not path.exists():
        raise click.BadParameter(f"{spec!r} is neither a zoo model ({', '.join(ZOO)}) nor a file",
                                 param_hint="--model")
    try:
        return model_from_checkpoint(path)
    except ValueError as e:
        _fail(str(e))


@main.command("verify")
@click.option("--model", "model_spec", required=True,
              help="Zoo name (random weights calibrated on synthetic frames) or checkpoint file.")
@click.option("--scales", type=click.Choice(["po2", "float"]), default="po2", show_default=True,
              help="Scale kind for zoo models: power-of-two or float.")
@click.option("--weight-bits", type=int, default=8, show_default=True)
@click.option("--act-bits", type=int, default=8, show_default=True)
@click.option("--frames", "n_frames", type=click.IntRange(1), default=256, show_default=True,
              help="Synthetic frames to compare on.")
@click.option("--reference", type=click.Choice(["auto", "float64", "float32", "qonnx", "finn"]),
              default="auto", show_default=True,
              help="What to compare the IR with: Brevitas in float64 or float32 (auto: float32 "
                   "for po2, float64 for float; a QONNX file: qonnx's executor), qonnx's "
                   "executor, or FINN's build steps and execution (a zoo model or checkpoint "
                   "is exported for FINN first).")
@click.option("--finn-python", default=None,
              help="With --reference finn: the python of FINN's virtual environment "
                   "[default: $AMCHW_FINN_PYTHON, else .finn-venv/bin/python]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(model_spec, scales, weight_bits, act_bits, n_frames, reference, finn_python,
               seed, as_json):
    """Brevitas vs the IR interpreter vs the Numba kernels, layer by layer (or a QONNX file
    against qonnx's executor, or any model against FINN); exit 1 on a forbidden mismatch."""
    import numpy as np

    from amchw.data.synthetic import frames_for
    from amchw.models import ZOO
    from amchw.verify.brevitas import verify_model

    qonnx_file = model_spec not in ZOO and Path(model_spec).suffix.lower() in (".qonnx", ".onnx")
    if qonnx_file or reference in ("qonnx", "finn"):
        _verify_against_tool(model_spec, qonnx_file, reference, finn_python, n_frames, scales,
                             weight_bits, act_bits, seed, as_json)
        return
    name = model_spec if model_spec in ZOO else checkpoint_model_name(model_spec)
    if reference == "auto":
        reference = "float32" if scales == "po2" else "float64"
    frames = frames_for(name, n_frames, seed=seed)
    try:
        model = load_model(model_spec, scales, weight_bits, act_bits, frames, seed)
        rep = verify_model(model, np.asarray(frames), reference=reference, name=name)
    except ValueError as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        click.echo(format_report(rep))
    sys.exit(0 if rep.ok else 1)


def _verify_against_tool(spec, qonnx_file, reference, finn_py, n_frames, scales, weight_bits,
                         act_bits, seed, as_json):
    """`amchw verify` against qonnx's executor or FINN (a QONNX file, or a zoo model or
    checkpoint exported for it first)."""
    import tempfile

    from amchw.lower.qonnx import QonnxImportError, load_qonnx

    with tempfile.TemporaryDirectory(prefix="amchw-verify-") as tmp:
        path = Path(spec)
        if not qonnx_file:
            from amchw.data.synthetic import frames_for
            from amchw.export.qonnx import ExportError, export_model
            from amchw.lower.common import LoweringError
            from amchw.models import ZOO

            name = spec if spec in ZOO else checkpoint_model_name(spec)
            frames = frames_for(name, 16, seed=seed)
            model = load_model(spec, scales, weight_bits, act_bits, frames, seed)
            path = Path(tmp) / f"{name}.qonnx"
            try:
                export_model(model, frames, path, name,
                             form="finn" if reference == "finn" else "qonnx")
            except (ExportError, LoweringError) as e:
                _fail(str(e))
        try:
            graph = load_qonnx(path)
        except QonnxImportError as e:
            _fail(str(e))
        frames, what = _frames_for_shape(graph, n_frames, seed)
        if reference == "finn":
            from amchw.verify.finn import (FinnError, FinnUnavailable, compare_with_finn,
                                           format_finn_report)

            try:
                rep = compare_with_finn(path, frames, python=finn_py)
            except (FinnUnavailable, FinnError) as e:
                _fail(str(e))
            text = format_finn_report(rep)
        else:
            from amchw.verify.qonnx import compare_with_qonnx, format_qonnx_report

            rep = compare_with_qonnx(path, frames)
            text = format_qonnx_report(rep)
    if as_json:
        click.echo(json.dumps(rep.to_dict() | {"inputs": what}, indent=2))
    else:
        click.echo(f"inputs: {what}\n{text}")
    sys.exit(0 if rep.ok else 1)


def _frames_for_shape(graph, n: int, seed: int):
    """(sample inputs, what they are) for a graph read from a file: synthetic RadioML frames
    of the profile with that many samples per frame, else seeded values over the input
    quantizer's range (any input shape: a single layer, an image CNN, an MLP)."""
    import numpy as np

    from amchw.data.synthetic import PROFILES, frames_for
    from amchw.ir.samples import sample_inputs
    from amchw.ir.types import QType

    shape = graph.inputs[0].shape
    size = int(np.prod(shape))
    if not isinstance(graph.inputs[0].dtype, QType):
        for prof in PROFILES:
            f = frames_for(prof, n, seed=seed)
            if f[0].size == size:
                return f.reshape((n, *shape)), f"synthetic {prof} frames, seed {seed}"
    return sample_inputs(graph, n, seed)


def graph_and_frames(spec: str, scales: str, weight_bits: int, act_bits: int, n_frames: int,
                     seed: int):
    """MODEL -> (IR graph, sample frames). MODEL: a zoo name, an amchw checkpoint (.pt), an
    IR graph saved by amchw (.npz) or a QONNX file (.qonnx/.onnx)."""
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.ir.io import load as load_ir
    from amchw.ir.types import IRError
    from amchw.lower.brevitas import LoweringError, lower
    from amchw.models import ZOO

    path = Path(spec)
    if spec not in ZOO and path.suffix.lower() in (".qonnx", ".onnx"):
        from amchw.lower.qonnx import QonnxImportError, load_qonnx

        try:
            graph = load_qonnx(path)
        except QonnxImportError as e:
            _fail(str(e))
        return (graph, *_frames_for_shape(graph, n_frames, seed))
    if spec not in ZOO and path.suffix.lower() == ".npz":
        if not path.is_file():
            _fail(f"{spec}: no such file")
        try:
            graph = load_ir(path)
        except (IRError, OSError, ValueError, KeyError) as e:
            _fail(f"{spec}: {e}")
        return (graph, *_frames_for_shape(graph, n_frames, seed))
    name = spec if spec in ZOO else checkpoint_model_name(spec)
    frames = frames_for(name, max(n_frames, 16), seed=seed)
    model = load_model(spec, scales, weight_bits, act_bits, frames, seed)
    try:
        graph = lower(model, torch.as_tensor(frames[:4]), name=name)
    except (LoweringError, IRError) as e:
        _fail(f"{spec}: cannot lower to the IR: {e}")
    return graph, frames[:n_frames], f"synthetic {name} frames, seed {seed}"


@main.command("simulate")
@click.argument("model_args", metavar="MODEL...", nargs=-1)
@click.option("--model", "model_opt", default=None,
              help="Same as MODEL: a zoo name, a checkpoint (.pt), an IR graph (.npz) or a "
                   "QONNX file (.qonnx/.onnx).")
@click.option("--array", "array", default=None,
              help="Array size RxC (e.g. 4x4, 16x8); default: the target's.")
@click.option("--dataflow", type=click.Choice(["ws", "os", "is"]), default=None,
              help="Dataflow; default: the target's.")
@click.option("--target", "target_name", default="edge-asic-45nm", show_default=True,
              help="Hardware preset (amchw targets) or a .json/.toml target file.")
@click.option("--timing", type=click.Choice(["pipelined", "scalesim"]), default="pipelined",
              show_default=True, help="pipelined: double-buffered array with DRAM stalls; "
              "scalesim: SCALE-Sim v2's sequential folds, compute cycles only.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Frames per inference batch.")
@click.option("--stepped", is_flag=True,
              help="Also run every GEMM cycle by cycle on the stepped array and compare.")
@click.option("--frames", "n_frames", type=click.IntRange(1), default=16, show_default=True,
              help="Sample frames for the integer check.")
@click.option("--scales", type=click.Choice(["po2", "float"]), default="po2", show_default=True)
@click.option("--weight-bits", type=int, default=8, show_default=True)
@click.option("--act-bits", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON "
              "(schema amchw.simulate/1, docs/simulator.md).")
@click.option("--csv", "csv_path", default=None, help="Write the per-layer table to this CSV.")
@click.option("--plot", "plot_path", default=None, help="Write cycles and energy per layer "
              "to this PNG.")
@click.option("--sparse-format", default=None,
              help="Store the weights of layers with enough zeros as gated, csr, csc or N:M "
                   "(e.g. 2:4); docs/compression.md.")
@click.option("--min-sparsity", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="With --sparse-format: only layers with at least this fraction of zeros.")
@click.option("--compare", is_flag=True,
              help="Compare the MODELs side by side in every dataflow (cycles, energy, weight "
                   "bytes); MODEL@FORMAT stores that model's weights in FORMAT (e.g. "
                   "pruned.pt@csr, pq.pt@pq2:256).")
@click.option("--data", "data_path", default=None,
              help="Early-exit model (ee-v*): add the integer exit rule, run it on this "
                   "RadioML-layout HDF5 file's frames (a checkpoint's test split, else all) and "
                   "report per SNR the exit fraction, accuracy and expected cycles and energy.")
@click.option("--exit-threshold", type=float, default=None,
              help="With --data: exit when the base-10 entropy of the exit's softmax is at "
                   "most this  [default: 0.05]")
@click.option("--max-frames", type=click.IntRange(1), default=2000, show_default=True,
              help="With --data: at most this many frames (a seeded random subset).")
@click.option("--exit-sweep", default=None,
              help="With --data: comma-separated thresholds for a trade-off table (exit "
                   "fraction, accuracy, expected cycles and energy), e.g. 0,0.05,0.1,0.5.")
def simulate_cmd(model_args, model_opt, array, dataflow, target_name, timing, batch, stepped,
                 n_frames, scales, weight_bits, act_bits, seed, as_json, csv_path, plot_path,
                 sparse_format, min_sparsity, compare, data_path, exit_threshold, max_frames,
                 exit_sweep):
    """Cycles, memory traffic and energy of MODEL on a MAC array, layer by layer; with --data,
    the early-exit costs of an early-exit model per SNR."""
    from amchw.sims.hardware import TargetError, get_target, parse_array
    from amchw.sims.report import format_table, write_csv, write_plot
    from amchw.sims.simulate import SimulationError, integer_check, simulate, stepped_check

    try:
        target = get_target(target_name)
        if array:
            target = target.with_array(*parse_array(array))
    except TargetError as e:
        _fail(str(e))
    sweep_ts = _exit_options(data_path, exit_threshold, exit_sweep, compare)
    if compare:
        specs = list(model_args) + ([model_opt] if model_opt else [])
        if not specs:
            raise click.UsageError("--compare needs at least one MODEL")
        _compare(specs, target, timing, batch, scales, weight_bits, act_bits, seed,
                 min_sparsity, as_json)
        return
    if len(model_args) > 1:
        raise click.UsageError("several MODELs need --compare")
    model_arg = model_args[0] if model_args else None
    if model_arg and model_opt and model_arg != model_opt:
        raise click.UsageError("give MODEL or --model, not two different models")
    spec = model_arg or model_opt
    if not spec:
        raise click.UsageError("missing MODEL (a zoo name, a checkpoint, an IR graph or a "
                               "QONNX file)")
    graph, frames, frames_what = graph_and_frames(spec, scales, weight_bits, act_bits,
                                                  max(n_frames, batch), seed)
    threshold = 0.05 if exit_threshold is None else exit_threshold
    if data_path:
        graph = _with_exit_rule(spec, graph, threshold)
    skipped = {}
    if sparse_format:
        from amchw.ir import IRError
        from amchw.ir.sparse import set_format

        try:
            graph, skipped = set_format(graph, sparse_format, min_sparsity)
        except IRError as e:
            raise click.BadParameter(str(e), param_hint="--sparse-format") from None
    try:
        rep = simulate(graph, target, dataflow, timing, batch)
        rep.integer_check = integer_check(graph, frames[:n_frames])
        rep.integer_check["inputs"] = frames_what
        if stepped:
            stepped_check(rep, graph, frames)
    except (SimulationError, TargetError) as e:
        _fail(str(e))
    ee = None
    if data_path:
        ee = _early_exit_run(spec, graph, rep, data_path, max_frames, seed, threshold, sweep_ts)
    try:
        if csv_path:
            write_csv(rep, csv_path)
        if plot_path:
            write_plot(rep, plot_path)
    except (OSError, RuntimeError) as e:
        _fail(str(e))
    if as_json:
        d = rep.to_dict()
        if ee is not None:
            d["early_exit"] = ee[0].to_dict() | ee[1]
        click.echo(json.dumps(d, indent=2))
    else:
        click.echo(format_table(rep))
        for name, why in skipped.items():
            click.echo(f"{name}: kept dense ({why})")
        if ee is not None:
            from amchw.sims.early_exit import format_early_exit

            info = ee[1]
            click.echo(f"\n{info['data']}: {info['frames']:,} frames ({info['data_split']}); "
                       f"integer exit decision, error bound {info['error_bound']:.1e} in "
                       "base-10 entropy")
            click.echo(format_early_exit(ee[0]))
    ok = rep.integer_check["equal"] and (
        rep.stepped is None
        or (rep.stepped["outputs_equal"] and rep.stepped["cycles_equal_closed_form"]))
    sys.exit(0 if ok else 1)


def _exit_options(data_path, exit_threshold, exit_sweep, compare) -> list[float]:
    """simulate's early-exit options checked together; the --exit-sweep thresholds."""
    if data_path is None:
        for name, v in (("--exit-threshold", exit_threshold), ("--exit-sweep", exit_sweep)):
            if v is not None:
                raise click.UsageError(f"{name} needs --data")
        return []
    if compare:
        raise click.UsageError("--data does not combine with --compare")
    if exit_threshold is not None and exit_threshold != exit_threshold:
        raise click.BadParameter("not a number", param_hint="--exit-threshold")
    if exit_sweep is None:
        return []
    try:
        ts = [float(v) for v in exit_sweep.split(",")]
    except ValueError:
        raise click.BadParameter(f"{exit_sweep!r} is not a comma-separated list of numbers",
                                 param_hint="--exit-sweep") from None
    if any(t != t for t in ts):
        raise click.BadParameter("thresholds must be numbers", param_hint="--exit-sweep")
    return ts


def _with_exit_rule(spec, graph, threshold):
    """The graph of an early-exit model with its integer exit decision (usage error for a
    model without an exit and a final output)."""
    from amchw.ir import IRError
    from amchw.ir.early_exit import add_exit_rule

    if len(graph.outputs) != 2:
        raise click.UsageError(f"--data needs an early-exit model (two outputs: the exit's and "
                               f"the final classifier's logits, e.g. ee-v1); {spec} has "
                               f"{len(graph.outputs)} output(s)")
    try:
        return add_exit_rule(graph, threshold, exit_output=graph.outputs[0])
    except IRError as e:
        _fail(f"{spec}: cannot add the exit rule: {e}")


def _early_exit_frames(spec, shape, data_path, max_frames, seed):
    """(frames, labels, SNRs, class count, which frames) of the data file: a checkpoint's test
    split, all frames otherwise (amchw.checkpoint.split_frames)."""
    from amchw.models import ZOO
    from amchw.checkpoint import load, split_frames

    ck = None
    if spec not in ZOO and Path(spec).suffix.lower() not in (".npz", ".qonnx", ".onnx"):
        ck = load(spec)
        ck = ck if isinstance(ck, dict) else None
    x, y, snr, classes, which = split_frames(data_path, shape, ck, "test", max_frames, seed)
    return x, y, snr, len(classes), which


def _early_exit_run(spec, graph, rep, data_path, max_frames, seed, threshold, sweep_ts):
    """Run the integer graph with its exit rule on the data file; the early-exit report of
    sims.early_exit and what the JSON adds to it."""
    from amchw.data.radioml import DatasetError
    from amchw.ir import IRError
    from amchw.ir.early_exit import decide, error_bound, run_early_exit
    from amchw.sims.early_exit import early_exit, split_layers, sweep

    try:
        x, y, snr, n_cls, which = _early_exit_frames(spec, graph.inputs[0].shape, data_path,
                                                      max_frames, seed)
    except (DatasetError, OSError, ValueError, KeyError) as e:
        _fail(f"{data_path}: {e}")
    n_logits = graph.values()[graph.outputs[0]].shape[0]
    if n_cls != n_logits:
        _fail(f"{data_path}: {n_cls} classes but {spec} has {n_logits} outputs")
    try:
        r = run_early_exit(graph, x, "fast", exit_output=graph.outputs[0])
        split = split_layers(graph, rep, exit_output=graph.outputs[0])
    except (IRError, ValueError) as e:
        _fail(str(e))
    pe, pf = r["exit_logits"].argmax(axis=1), r["final_logits"].argmax(axis=1)
    ee = early_exit(split, r["flags"], snr, y, pe, pf, threshold=threshold)
    if sweep_ts:
        ee.sweep = sweep(split, {t: decide(graph, r["codes"], t) for t in sweep_ts}, y, pe, pf)
    return ee, {"data": str(data_path), "data_split": which, "frames": int(x.shape[0]),
                "error_bound": error_bound(graph)}


def _compare(specs, target, timing, batch, scales, weight_bits, act_bits, seed,
             min_sparsity, as_json):
    """amchw simulate --compare: every MODEL[@FORMAT] in os, ws and is."""
    from amchw.ir import IRError
    from amchw.ir.sparse import set_format
    from amchw.sims.report import compare_table
    from amchw.sims.simulate import SimulationError, simulate

    rows = []
    for item in specs:
        spec, _, fmt = item.partition("@")
        graph, _, _ = graph_and_frames(spec, scales, weight_bits, act_bits, 16, seed)
        if fmt:
            try:
                graph, _ = set_format(graph, fmt, min_sparsity)
            except IRError as e:
                raise click.BadParameter(f"{item}: {e}", param_hint="--compare") from None
        for df in ("os", "ws", "is"):
            try:
                rep = simulate(graph, target, df, timing, batch)
            except SimulationError as e:
                _fail(f"{item}: {e}")
            tot = rep.totals()
            rows.append({"model": item, "format": fmt or "dense", "dataflow": df,
                         "cycles": rep.cycles, "energy_uj": tot["energy_per_inference_uj"],
                         "weight_bytes": tot["weight_bytes"], "macs": tot["macs"],
                         "dram_bytes": tot["dram_bytes"]})
    if as_json:
        click.echo(json.dumps({"target": target.name, "array": [target.rows, target.cols],
                               "timing": timing, "batch": batch, "rows": rows}, indent=2))
    else:
        click.echo(compare_table(rows, target, timing))


_QUANT_OPTS = [
    click.option("--scales", type=click.Choice(["po2", "float"]), default="po2",
                 show_default=True, help="Scale kind for zoo models."),
    click.option("--weight-bits", type=int, default=8, show_default=True),
    click.option("--act-bits", type=int, default=8, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
]


def _quant_options(f):
    for opt in reversed(_QUANT_OPTS):
        f = opt(f)
    return f


def pq_options(f):
    """PQ's P and K_s (amchw pq and amchw compress pq)."""
    f = click.option("--centroids", "K", type=click.IntRange(2), default=256, show_default=True,
                     help="K_s: centroids per subspace (a power of two).")(f)
    return click.option("--subspaces", "P", type=click.IntRange(1), required=True,
                        help="P: the outputs split into P subspaces.")(f)


def _compression_source(spec, scales, weight_bits, act_bits, seed, prepare=None):
    """(model, checkpoint dict, prepare's result) for the compression commands. A zoo name is
    built, `prepare`d (e.g. pruned), then calibrated on synthetic frames; a checkpoint is loaded
    and `prepare`d, keeping its trained scales."""
    from dataclasses import asdict

    import torch

    from amchw.data.synthetic import PROFILES, frames_for
    from amchw.models import ZOO, QuantConfig, build
    from amchw.models.calibrate import calibrate

    if spec in ZOO:
        cfg = QuantConfig(weight_bits=weight_bits, act_bits=act_bits, scales=scales)
        model = build(spec, cfg, seed=seed)
        done = prepare(model) if prepare else None
        model = calibrate(model, torch.as_tensor(frames_for(spec, 256, seed=seed)), seed=seed)
        return model, {"model": spec, "config": asdict(cfg),
                       "classes": list(PROFILES[ZOO[spec].profile].classes)}, done
    model, ck = checkpoint_model(spec)
    return model, ck, prepare(model) if prepare else None


def _save_checkpoint(output, ck: dict, model, **extra) -> None:
    """Write `ck` with the model's state and `extra` entries to `output` atomically."""
    from amchw.checkpoint import save_checkpoint

    try:
        save_checkpoint(output, ck, model, **extra)
    except OSError as e:
        _fail(f"{output}: {e}")


@main.command("prune")
@click.argument("model_spec", metavar="MODEL")
@click.option("--sparsity", type=float, default=None,
              help="Fraction of each layer's weights to zero (unstructured).")
@click.option("--pattern", default="unstructured", show_default=True,
              help="unstructured, or N:M (keep the N largest of every M consecutive weights).")
@click.option("--layers", default=None,
              help="Comma-separated layer paths to prune (default: every Conv/Linear).")
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
@_quant_options
def prune_cmd(model_spec, sparsity, pattern, layers, output, scales, weight_bits, act_bits, seed):
    """Magnitude-prune MODEL (zoo name or checkpoint) and write a checkpoint that lowers,
    verifies and simulates. A zoo model is pruned, then calibrated on synthetic frames; a
    checkpoint keeps its trained scales."""
    from amchw.compress import PruneError, magnitude_prune

    names = [v.strip() for v in layers.split(",")] if layers else None
    try:
        model, ck, done = _compression_source(
            model_spec, scales, weight_bits, act_bits, seed,
            prepare=lambda m: magnitude_prune(m, sparsity, pattern, names))
    except PruneError as e:
        raise click.BadParameter(str(e)) from None
    _save_checkpoint(output, ck, model,
                     pruning={"pattern": pattern, "sparsity": sparsity, "layers": done})
    w = max(len(n) for n in done) if done else 5
    for n, sp in done.items():
        click.echo(f"{n:<{w}}  {sp:7.2%} zero")
    click.echo(f"wrote {output}: {ck['model']}, {pattern} pruning of {len(done)} layers")


@main.command("pq")
@click.argument("model_spec", metavar="MODEL")
@click.option("--layer", required=True, help="The QuantLinear layer to quantize (e.g. fc3).")
@pq_options
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
@_quant_options
def pq_cmd(model_spec, layer, P, K, output, scales, weight_bits, act_bits, seed):
    """Product-quantize one fully connected layer of MODEL (zoo name or checkpoint) with k-means
    per subspace, and write a checkpoint whose layer is stored pqP:K in the IR."""
    from amchw.compress import PruneError, product_quantize

    model, ck, _ = _compression_source(model_spec, scales, weight_bits, act_bits, seed)
    mods = dict(model.named_modules())
    if layer not in mods:
        raise click.BadParameter(f"no layer {layer!r} in {ck['model']}", param_hint="--layer")
    try:
        info = product_quantize(mods[layer], layer, P, K, seed)
    except PruneError as e:
        raise click.BadParameter(str(e)) from None
    summary = {k: v for k, v in info.items() if k not in ("codes", "codebooks")}
    _save_checkpoint(output, ck, model, pq=summary)
    cq = ", ".join(f"{v:.2f} ({k[4:]})" for k, v in summary.items() if k.startswith("C_Q"))
    click.echo(f"{layer}: {info['inputs']} x {info['outputs']} -> {P} subspaces x {K} "
               f"centroids; compression rate C_Q {cq}")
    click.echo(f"wrote {output}: {ck['model']} with {layer} stored pq{P}:{K}")


@main.command("export")
@click.argument("model_spec", metavar="MODEL")
@click.option("-o", "--output", "out_path", required=True, help="The .qonnx file to write.")
@click.option("--dynamo/--no-dynamo", default=False, show_default=True,
              help="torch's dynamo exporter instead of the TorchScript one.")
@click.option("--frames", "n_frames", type=click.IntRange(1), default=16, show_default=True,
              help="Synthetic frames for the self-check.")
@click.option("--for", "form", type=click.Choice(["finn", "qonnx"]), default="finn",
              show_default=True,
              help="finn: the form FINN builds (1-D layers as unit-height 2-D, FINN's tie "
                   "rule), refused with the reasons if FINN would not build it; qonnx: the "
                   "plain cleaned QONNX of the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_quant_options
def export_cmd(model_spec, out_path, form, dynamo, n_frames, as_json, scales, weight_bits,
               act_bits, seed):
    """Export MODEL (zoo name or checkpoint) to QONNX (FINN-ready by default), checked before
    writing."""
    from amchw.data.synthetic import frames_for
    from amchw.export.qonnx import ExportError, export_model
    from amchw.lower.common import LoweringError
    from amchw.models import ZOO

    name = model_spec if model_spec in ZOO else checkpoint_model_name(model_spec)
    frames = frames_for(name, max(n_frames, 16), seed=seed)
    model = load_model(model_spec, scales, weight_bits, act_bits, frames, seed)
    try:
        rep = export_model(model, frames, out_path, name, dynamo=dynamo, check_frames=n_frames,
                           form=form)
    except (ExportError, LoweringError, OSError) as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
        return
    ops = ", ".join(f"{k} {v}" for k, v in rep.ops.items())
    if rep.form == "finn":
        rules = (f"FINN form: input {rep.input_shape}, exact halves rounded up as FINN's "
                 "thresholds do; FINN rules all met")
        if rep.forks:
            rules += (f"\n  the graph forks at {rep.forks} tensor(s): build it with the "
                      "fork-aware streamlining step (step_streamline_forks, docs/qonnx.md) in "
                      "place of FINN's step_streamline")
    else:
        rules = ("plain QONNX; FINN would not build it as it is:\n    "
                 + "\n    ".join(rep.finn_problems) if rep.finn_problems
                 else "plain QONNX; FINN rules all met")
    click.echo(f"wrote {rep.path}: {rep.model}, {rep.exporter} exporter "
               f"({rep.export_seconds:.2f} s), IR version {rep.ir_version}, opsets "
               f"{rep.opsets}\n  nodes: {ops}\n  {rules}\n  self-check on "
               f"{rep.frames} frames: re-imported file and Brevitas lowering give identical IR "
               f"text and {rep.values_compared:,} equal integer values "
               f"({rep.check_seconds:.2f} s)")


@main.command("cost")
@click.argument("model_spec", metavar="MODEL")
@click.option("--no-discount", is_flag=True,
              help="Count zero weights too (qonnx's discount_sparsity=False).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_quant_options
def cost_cmd(model_spec, no_discount, as_json, scales, weight_bits, act_bits, seed):
    """MACs, BOPs, weight bits, memory and the AMC challenge score of MODEL (.qonnx, zoo
    name, checkpoint or IR graph), per layer and in total."""
    from amchw.export.cost import CHALLENGE_BOPS, CHALLENGE_WEIGHT_BITS, cost

    graph, _, _ = graph_and_frames(model_spec, scales, weight_bits, act_bits, 16, seed)
    rep = cost(graph, discount_sparsity=not no_discount)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
        return
    click.echo(f"cost of {rep.model} per frame "
               f"({'zero weights discounted' if rep.discount_sparsity else 'dense'})")
    click.echo(f"{'layer':<10} {'op':<7} {'MACs':>12} {'a x w bits':>10} {'BOPs':>15} "
               f"{'weights':>10} {'nonzero':>10} {'weight bits':>12}")
    for r in rep.layers:
        click.echo(f"{r.node:<10} {r.op:<7} {r.macs:>12,} {f'{r.a_bits}x{r.w_bits}':>10} "
                   f"{r.bops:>15,} {r.weights:>10,} {r.nonzero_weights:>10,} "
                   f"{r.weight_bits:>12,}")
    t = rep.totals()
    click.echo(f"{'total':<10} {'':<7} {t['macs']:>12,} {'':>10} {t['bops']:>15,} "
               f"{t['weights']:>10,} {t['nonzero_weights']:>10,} {t['weight_bits']:>12,}")
    click.echo(f"memory: weights {t['weight_bytes']:,} B (dense at their bit width), biases "
               f"{t['bias_bytes']:,} B, largest activation {t['activation_bytes']:,} B; "
               f"sparsity {100 * t['sparsity']:.2f}%")
    click.echo(f"AMC challenge score {t['challenge_score']:.4f} = 0.5 x {t['bops']:,} / "
               f"{CHALLENGE_BOPS:,} + 0.5 x {t['weight_bits']:,} / {CHALLENGE_WEIGHT_BITS:,} "
               "(VGG10 w8a8 baseline = 1)")


@main.group("data")
def data_group() -> None:
    """Synthetic RadioML data: generate files, inspect files."""


@data_group.command("synth")
@click.option("--profile", type=click.Choice(sorted(PROFILE_NAMES)), default="rml2016",
              show_default=True, help="Class list, frame length and SNR grid to imitate.")
@click.option("--per-class-snr", "per", type=click.IntRange(1), required=True,
              help="Frames per (class, SNR) pair.")
@click.option("--snrs", default=None,
              help="Comma-separated SNRs in dB (default: the profile's grid).")
@click.option("--channel", type=click.Choice(["radioml", "awgn"]), default="radioml",
              show_default=True, help="radioml: RML2016's channel; awgn: carrier phase + noise.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", "out_path", required=True, help="HDF5 file to write.")
def data_synth_cmd(profile, per, snrs, channel, seed, out_path):
    """Write synthetic frames in the RadioML 2018.01A HDF5 layout (X (N, L, 2), Y one-hot,
    Z SNR, class names as an attribute), class by class with a progress bar, atomically."""
    from amchw.data.synthetic import PROFILES
    from amchw.data.radioml import synth_to_h5

    try:
        snr_list = PROFILES[profile].snrs if snrs is None else tuple(
            int(v) for v in snrs.split(","))
    except ValueError:
        raise click.BadParameter(f"{snrs!r} is not a comma-separated list of integers",
                                 param_hint="--snrs") from None
    n_cls = len(PROFILES[profile].classes)
    with click.progressbar(length=n_cls, label=f"{profile}: {n_cls} classes x "
                           f"{len(snr_list)} SNRs x {per}", file=sys.stderr) as bar:
        try:
            info = synth_to_h5(out_path, profile, per, snr_list, seed=seed, channel=channel,
                               progress=bar.update)
        except (OSError, ValueError) as e:
            _fail(str(e))
    click.echo(f"wrote {out_path}: {info['frames']:,} frames of {info['length']} samples, "
               f"{info['classes']} classes, SNRs {min(snr_list)}..{max(snr_list)} dB, "
               f"{info['seconds']:.1f} s ({info['frames'] / info['seconds']:,.0f} frames/s)")


@data_group.command("info")
@click.argument("path")
def data_info_cmd(path):
    """Describe a RadioML 2018-layout HDF5 file or a RadioML 2016 pickle."""
    import numpy as np

    from amchw.data.radioml import DatasetError, H5Frames, read_rml2016

    try:
        if path.endswith((".pkl", ".dat", ".pickle")):
            X, y, snr, classes = read_rml2016(path)
            n, length = X.shape[0], X.shape[2]
        else:
            with H5Frames(path) as r:
                y, snr, classes, n, length = r.labels, r.snrs, r.classes, r.n, r.length
    except DatasetError as e:
        _fail(str(e))
    counts = np.bincount(y, minlength=len(classes))
    click.echo(f"{path}: {n:,} frames of 2 x {length}, {len(classes)} classes, "
               f"SNR {snr.min()}..{snr.max()} dB")
    for c, k in zip(classes, counts):
        click.echo(f"  {c:<10} {k:>9,}")


@main.command("train")
@click.option("--model", "model_name", required=True, help="Zoo model to train.")
@click.option("--data", default=None,
              help="RadioML-layout HDF5 file (default: a synthetic file of the model's "
                   "profile, written beside --out).")
@click.option("--per-class-snr", type=click.IntRange(1), default=None,
              help="Frames per (class, SNR) of the default synthetic file "
                   "(default 200 for rml2016, 40 for rml2018).")
@click.option("-o", "--out", "out_path", required=True,
              help="Checkpoint to write (and to resume from if it exists).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(2), default=256, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--patience", type=click.IntRange(1), default=3, show_default=True,
              help="Stop after this many epochs without a better validation loss.")
@click.option("--max-train", type=click.IntRange(2), default=None,
              help="Use at most this many training frames.")
@click.option("--per-channel", is_flag=True, help="Per-output-channel weight scales.")
@_quant_options
def train_cmd(model_name, data, per_class_snr, out_path, epochs, batch_size, lr, weight_decay,
              patience, max_train, per_channel, scales, weight_bits, act_bits, seed):
    """Quantization-aware training of a zoo model; resumes from --out if it exists."""
    import math

    from amchw.data.radioml import DatasetError, synth_to_h5
    from amchw.data.synthetic import PROFILES
    from amchw.models import ZOO
    from amchw.train import TrainConfig, train

    if model_name not in ZOO:
        raise click.BadParameter(f"unknown zoo model {model_name!r}; choose from "
                                 f"{', '.join(sorted(ZOO))}", param_hint="--model")
    if data is None:
        prof = ZOO[model_name].profile
        per = per_class_snr or (200 if PROFILES[prof].length <= 128 else 40)
        data = f"{out_path}.{prof}-{per}-seed{seed}.h5"
        if not Path(data).exists():
            click.echo(f"writing synthetic {prof} data ({per} frames per class and SNR) to "
                       f"{data}", err=True)
            synth_to_h5(data, prof, per, PROFILES[prof].snrs, seed=seed)
    cfg = TrainConfig(model=model_name, data=data, out=out_path, epochs=epochs,
                      batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      patience=patience, seed=seed, max_train=max_train,
                      quant={"weight_bits": weight_bits, "act_bits": act_bits,
                             "scales": scales, "per_channel": per_channel})
    bar = {"b": None}   # the current epoch's progress bar, opened by its first batch

    def progress(kind, n):
        if bar["b"] is None:
            bar["b"] = click.progressbar(length=per_epoch, label="epoch", file=sys.stderr)
            bar["b"].__enter__()
        bar["b"].update(n)

    def log(msg):
        if bar["b"] is not None:
            bar["b"].__exit__(None, None, None)
            bar["b"] = None
        click.echo(msg, err=True)

    try:
        from amchw.data.radioml import H5Frames
        from amchw.checkpoint import split_indices

        with H5Frames(data) as r:
            n_train = split_indices(r, seed, cfg.val_fraction)[0].size
        per_epoch = math.ceil(min(n_train, max_train or n_train) / batch_size)
        ck = train(cfg, progress=progress, log=log)
    except (DatasetError, ValueError, OSError) as e:
        _fail(str(e))
    best = ck["history"][ck["best_epoch"]] if ck["history"] else None
    click.echo(f"wrote {out_path}: {model_name}, {len(ck['history'])} epochs, best epoch "
               f"{ck['best_epoch'] + 1}" + (f" (val acc {best['val_acc']:.4f})" if best else ""))


@main.command("eval")
@click.argument("checkpoints", nargs=-1, required=True)
@click.option("--data", required=True, help="RadioML-layout HDF5 file.")
@click.option("--split", type=click.Choice(["test", "val", "all"]), default="test",
              show_default=True)
@click.option("--max-frames", type=click.IntRange(1), default=None)
@click.option("--confusion", "show_confusion", is_flag=True,
              help="Print the confusion matrices (integer model) as well.")
@click.option("--confusion-snr", "confusion_snrs", type=int, multiple=True,
              help="Also a confusion matrix at this SNR in dB (repeatable).")
@click.option("--plot-accuracy", default=None,
              help="PNG: accuracy vs SNR, one line per checkpoint, float and integer.")
@click.option("--plot-confusion", default=None,
              help="PNG: the first checkpoint's integer confusion matrix as a heat map; each "
                   "--confusion-snr S adds FILE with .snrS before the suffix.")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(checkpoints, data, split, max_frames, show_confusion, confusion_snrs,
             plot_accuracy, plot_confusion, as_json):
    """Accuracy of checkpoints, float (Brevitas) and integer (IR), overall, per SNR and as
    confusion matrices."""
    from amchw.data.radioml import DatasetError
    from amchw.evaluate import evaluate_checkpoint

    results = []
    for ck in checkpoints:
        try:
            r = evaluate_checkpoint(ck, data, split, max_frames,
                                    confusion_snrs=tuple(confusion_snrs))
        except (DatasetError, ValueError, OSError, KeyError) as e:
            _fail(f"{ck}: {e}")
        r["label"] = Path(ck).stem
        results.append(r)
    written = []
    try:
        if plot_accuracy:
            from amchw.plots import accuracy_vs_snr

            written.append(accuracy_vs_snr(results, plot_accuracy))
        if plot_confusion:
            from amchw.plots import confusion_heatmap

            r = results[0]
            written.append(confusion_heatmap(
                r["confusion_int"], r["classes"], plot_confusion,
                f"{r['label']} integer, all SNRs ({r['frames']:,} frames)"))
            p = Path(plot_confusion)
            for snr, m in r["confusion_by_snr"].items():
                written.append(confusion_heatmap(
                    m["int"], r["classes"], p.with_name(f"{p.stem}.snr{snr}{p.suffix}"),
                    f"{r['label']} integer, SNR {snr} dB"))
    except (RuntimeError, OSError) as e:
        _fail(str(e))
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return
    for r in results:
        click.echo(f"{r['model']} ({r['label']}) on {data} ({r['split']}, {r['frames']:,} "
                   f"frames): float {r['float_acc']:.4f}, integer {r['int_acc']:.4f}, "
                   f"float/integer agreement {r['agreement']:.4f}; trained {r['epochs']} "
                   f"epochs in {r['train_seconds']:.0f} s")
        click.echo(f"{'SNR dB':>7} {'float':>7} {'integer':>8}")
        for snr in sorted(r["float_by_snr"]):
            click.echo(f"{snr:>7} {r['float_by_snr'][snr]:>7.4f} {r['int_by_snr'][snr]:>8.4f}")
        if show_confusion:
            click.echo(_format_confusion(r["confusion_int"], r["classes"], "all SNRs"))
            for snr, m in r["confusion_by_snr"].items():
                click.echo(_format_confusion(m["int"], r["classes"], f"SNR {snr} dB"))
    for w in written:
        click.echo(f"wrote {w}")


def _format_confusion(m, classes, where: str) -> str:
    w = max(5, max(len(c) for c in classes))
    lines = [f"confusion matrix, integer model, {where} (rows true, columns predicted)",
             " " * (w + 1) + " ".join(f"{i:>5}" for i in range(len(classes)))]
    for i, (c, row) in enumerate(zip(classes, m)):
        lines.append(f"{c:>{w}} " + " ".join(f"{v:>5}" for v in row) + f"   {i}")
    return "\n".join(lines)


def format_report(rep) -> str:
    lines = [f"verify {rep.model}: Brevitas ({rep.reference}) vs IR interpreter, "
             f"{rep.frames} frames, layer by layer"]
    hdr = (f"{'layer':<10} {'op':<9} {'shape':<14} {'compared':>10} {'mismatch':>8} "
           f"{'forbid':>6} {'maxLSB':>6} {'near-tie':>9} {'class':<6} first")
    lines.append(hdr)
    for r in rep.layers:
        shape = "x".join(map(str, r.shape))
        tie = "" if r.max_tie_distance is None else f"{r.max_tie_distance:.1e}"
        first = "" if r.first_mismatch is None else str(tuple(r.first_mismatch))
        lines.append(f"{r.layer:<10} {r.op:<9} {shape:<14} {r.compared:>10} {r.mismatches:>8} "
                     f"{r.forbidden:>6} {r.max_diff_lsb:>6} {tie:>9} {r.exactness:<6} {first}")
    kc = sum(r.compared for r in rep.kernels)
    km = sum(r.mismatches for r in rep.kernels)
    lines.append(f"interpreter vs Numba kernels: {len(rep.kernels)} node outputs, {kc} values "
                 f"compared, {km} mismatches")
    lines.append(f"top-1 agreement IR vs Brevitas: {rep.argmax_agreement:.4f}")
    verdict = "OK" if rep.ok else "FAILED"
    lines.append(f"{verdict}: {rep.forbidden} forbidden mismatches "
                 f"({sum(r.mismatches for r in rep.layers)} differences in all; near-ties "
                 "are allowed only where float32 Brevitas rounds)")
    return "\n".join(lines)


from amchw.cli_compress import compress_group, report_cmd  # noqa: E402 (uses the helpers above)

main.add_command(compress_group)
main.add_command(report_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
