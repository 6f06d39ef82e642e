"""`amchw verify`: the IR against Brevitas layer by layer, or against qonnx's executor or
FINN."""

from __future__ import annotations

import json
import sys

import click

from .common import command, fail


@command("verify")
@click.argument("model_arg", metavar="MODEL", required=False)
@click.option("--model", "model_opt", default=None,
              help="Same as MODEL (the older spelling): a zoo name (random weights calibrated "
                   "on synthetic frames), a checkpoint or a QONNX file.")
@click.option("--scales", type=click.Choice(["po2", "float"]), default="po2", show_default=True,
              help="Scale kind for zoo models: power-of-two or float.")
@click.option("--weight-bits", type=click.IntRange(2, 8), default=8, show_default=True,
              help="Weight width of a zoo model (signed, narrow range).")
@click.option("--act-bits", type=click.IntRange(2, 8), default=8, show_default=True,
              help="Activation width of a zoo model (unsigned after each ReLU).")
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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of a zoo model's weights and of the synthetic frames.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(model_arg, model_opt, scales, weight_bits, act_bits, n_frames, reference,
               finn_python, seed, as_json):
    """Brevitas vs the IR interpreter vs the Numba kernels, layer by layer, for MODEL (a zoo
    name, a checkpoint, or a QONNX file against qonnx's executor, or any model against FINN);
    exit 1 on a forbidden mismatch."""
    from amchw.resolve import is_qonnx_file
    from amchw.runs import verify_against_tool, verify_brevitas

    if model_arg and model_opt and model_arg != model_opt:
        raise click.UsageError("give MODEL or --model, not two different models")
    model_spec = model_arg or model_opt
    if not model_spec:
        raise click.UsageError("missing MODEL (a zoo name, a checkpoint or a QONNX file)")

    if is_qonnx_file(model_spec) or reference in ("qonnx", "finn"):
        rep, what = verify_against_tool(model_spec, reference, finn_python, n_frames, scales,
                                        weight_bits, act_bits, seed)
        if as_json:
            click.echo(json.dumps(rep.to_dict() | {"inputs": what}, indent=2))
        else:
            if reference == "finn":
                from amchw.verify.finn import format_finn_report as fmt
            else:
                from amchw.verify.qonnx import format_qonnx_report as fmt
            click.echo(f"inputs: {what}\n{fmt(rep)}")
        sys.exit(0 if rep.ok else 1)
    try:
        rep = verify_brevitas(model_spec, reference, scales, weight_bits, act_bits, n_frames,
                              seed)
    except ValueError as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        click.echo(format_report(rep))
    sys.exit(0 if rep.ok else 1)


def format_report(rep) -> str:
    """The text of `amchw verify`'s Brevitas report (amchw.verify.brevitas.VerifyReport)."""
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
