"""Post-training quantization (compression seed, Table III's "Optimized and Quantized"): a
float-trained checkpoint (amchw train --float-only) quantized to INT8 weights and activations
with int32 biases, its activation ranges calibrated on frames of its validation split, no
retraining (amchw.compress.ptq; the run is amchw.compress.pipeline.post_training_quantization).
Stored under the checkpoint's "ptq" key; in a report, a ptq experiment starts from a train
experiment with float_only = true, and its section sets the INT8 model beside the FP32 one as
the compression seed's Table III does."""

from __future__ import annotations

from amchw import seeds
from amchw.compress.defaults import PTQ_CALIBRATION_FRAMES
from amchw.compress.registry import Method, Option, Report, Section, Storage, register

OPTIONS = (
    Option("start", type="ref", required=True, argument="CHECKPOINT"),
    Option("frames", PTQ_CALIBRATION_FRAMES,
           "Calibration frames, drawn from the checkpoint's validation split (held out "
           "from training).", "int", min=1),
    Option("data", None, "Data file (default: the checkpoint's).", "data", recipe=False),
    Option("seed", 0, "Seed of the calibration frames drawn.", type="int", recipe=False),
)


def run(inputs: dict, out: str, o: dict, log=print) -> dict:
    from amchw.compress.pipeline import post_training_quantization

    return post_training_quantization(inputs["start"], out, o["frames"], o["data"], o["seed"])


def figures(info: dict) -> list[str]:
    return [f"post-training INT8 quantization of {info['start']} "
            f"({'float-only training' if info['float_only_start'] else 'its float weights'}),"
            f" calibrated on {info['calibration_frames']:,} {info['split']} frames"]


def check_recipe(e: dict, earlier: dict) -> str | None:
    start = earlier.get(e.get("start"), {})
    if start.get("kind") != "train" or not start.get("float_only"):
        return "start a ptq from a train experiment with float_only = true"
    return None


def section(ctx, cks) -> None:
    """The compression seed's Table III, FP32 then INT8 by post-training quantization."""
    pct = ctx.pct
    ctx.page.h(2, "Post-training INT8 quantization: the compression seed's Table III")
    rows = []
    for c in cks:
        start = ctx.final[ctx.exps[c.experiment]["start"]]
        f32, i8 = ctx.acc(start, "float"), ctx.acc(c)
        model = c.info["model"]
        s, sq = (seeds.COMPRESSION_TABLE_III.get(k) for k in (model, model + " int8"))
        rows.append([c.label, model, c.info["calibration_frames"], pct(f32, 2), pct(i8, 2),
                     f"{100 * (i8 - f32):+.2f}", pct(ctx.acc(c, "float"), 2),
                     "-" if s is None else f"{100 * s[1]:.2f}",
                     "-" if sq is None else f"{100 * sq[1]:.2f}",
                     "-" if s is None or sq is None else f"{100 * (sq[1] - s[1]):+.2f}"]
                    + ctx.hw_vals(c))
    ctx.page.table(["checkpoint", "model", "calibration frames", "FP32 acc %",
                    "INT8 (integer IR) acc %", "INT8 - FP32 (pp)", "INT8 (Brevitas) acc %",
                    "seed FP32 %", "seed INT8 %", "seed INT8 - FP32 (pp)"] + ctx.hw_cols(),
                   rows)
    ctx.page.p("FP32: the float-only training (quantizers off) on its test split; INT8: the "
               "same weights quantized after training, activation ranges from the calibration "
               "frames (validation split), no retraining.")


METHOD = register(Method(
    name="ptq",
    help="Post-training quantization (compression seed): a float-trained checkpoint "
         "(amchw train --float-only) to INT8 weights and activations, int32 biases, "
         "activation ranges calibrated on held-out frames; no retraining.",
    options=OPTIONS,
    runner=run,
    storage=Storage("ptq"),
    summary=lambda info, o, out: figures(info) + [f"wrote {out}"],
    figures=figures,
    report=Report(sections=(Section(62, section),)),
    check_recipe=check_recipe,
))
