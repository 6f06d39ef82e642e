"""`amchw export` (QONNX, FINN-ready by default, self-checked before writing) and `amchw cost`
(MACs, BOPs, weight bits, memory, the AMC challenge score)."""

from __future__ import annotations

import json

import click

from .common import command, fail, quant_options


@command("export")
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
@quant_options
def export_cmd(model_spec, out_path, form, dynamo, n_frames, as_json, scales, weight_bits,
               act_bits, seed):
    """Export MODEL (zoo name or checkpoint) to QONNX (FINN-ready by default), checked before
    writing."""
    from amchw.export.qonnx import ExportError, export_model
    from amchw.lower.common import LoweringError
    from amchw.resolve import model_and_frames

    name, model, frames = model_and_frames(model_spec, scales, weight_bits, act_bits,
                                           max(n_frames, 16), seed)
    try:
        rep = export_model(model, frames, out_path, name, dynamo=dynamo, check_frames=n_frames,
                           form=form)
    except (ExportError, LoweringError, OSError) as e:
        fail(str(e))
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


@command("cost")
@click.argument("model_spec", metavar="MODEL")
@click.option("--no-discount", is_flag=True,
              help="Count zero weights too (qonnx's discount_sparsity=False).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@quant_options
def cost_cmd(model_spec, no_discount, as_json, scales, weight_bits, act_bits, seed):
    """MACs, BOPs, weight bits, memory and the AMC challenge score of MODEL (.qonnx, zoo
    name, checkpoint or IR graph), per layer and in total."""
    from amchw.export.cost import CHALLENGE_BOPS, CHALLENGE_WEIGHT_BITS, cost
    from amchw.resolve import graph_and_frames

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
