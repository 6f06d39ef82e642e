"""`amchw simulate`: cycles, memory traffic and energy on a MAC array; --compare side by side;
--data an early-exit model's exit rule on a data file."""

from __future__ import annotations

import json
import sys

import click

from amchw.runs import EXIT_THRESHOLD

from .common import command, fail


@command("simulate")
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
@click.option("--scales", type=click.Choice(["po2", "float"]), default="po2", show_default=True,
              help="Scale kind of a zoo model: power-of-two or float.")
@click.option("--weight-bits", type=click.IntRange(2, 8), default=8, show_default=True,
              help="Weight width of a zoo model (signed, narrow range).")
@click.option("--act-bits", type=click.IntRange(2, 8), default=8, show_default=True,
              help="Activation width of a zoo model (unsigned after each ReLU).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of a zoo model's weights and of the sample frames.")
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
                   f"most this  [default: {EXIT_THRESHOLD:g}]")
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
    from amchw.runs import simulate_model
    from amchw.sims.hardware import TargetError, get_target, parse_array
    from amchw.sims.report import format_table, write_csv, write_plot
    from amchw.sims.simulate import SimulationError

    try:
        target = get_target(target_name)
        if array:
            target = target.with_array(*parse_array(array))
    except TargetError as e:
        fail(str(e))
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
    threshold = EXIT_THRESHOLD if exit_threshold is None else exit_threshold
    try:
        rep, skipped, ee = simulate_model(
            spec, target, dataflow, timing, batch, n_frames, stepped, scales, weight_bits,
            act_bits, seed, sparse_format, min_sparsity, data_path, threshold, max_frames,
            sweep_ts)
    except (SimulationError, TargetError) as e:
        fail(str(e))
    try:
        if csv_path:
            write_csv(rep, csv_path)
        if plot_path:
            write_plot(rep, plot_path)
    except (OSError, RuntimeError) as e:
        fail(str(e))
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


def _compare(specs, target, timing, batch, scales, weight_bits, act_bits, seed, min_sparsity,
             as_json):
    """amchw simulate --compare: every MODEL[@FORMAT] in os, ws and is."""
    from amchw.runs import compare
    from amchw.sims.report import compare_table

    rows = compare(specs, target, timing, batch, scales, weight_bits, act_bits, seed,
                   min_sparsity)
    if as_json:
        click.echo(json.dumps({"target": target.name, "array": [target.rows, target.cols],
                               "timing": timing, "batch": batch, "rows": rows}, indent=2))
    else:
        click.echo(compare_table(rows, target, timing))
