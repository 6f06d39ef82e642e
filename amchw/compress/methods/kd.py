"""Knowledge distillation (edge-efficient seed, Algorithm 3): a zoo student trained from scratch
against a trained teacher (amchw.compress.distill; the run is amchw.compress.pipeline.distill).
The objective is stored under the checkpoint's "method" key; the report prints the seed's
Table III, the student against its benchmark (the recipe's `benchmark`, else the first trained
network of the same model on the same data)."""

from __future__ import annotations

from amchw import seeds
from amchw.compress.defaults import KD_ALPHA, KD_CONVENTION, KD_CONVENTIONS, KD_TEMPERATURE
from amchw.compress.registry import (Method, Option, Report, Section, SeedRow, Storage,
                                     register, train_options, training)

#: the teacher, the student and the loss (also DP's and DQ's first stage)
OPTIONS = (
    Option("teacher", None, "The trained teacher checkpoint.", "ref", required=True),
    Option("student", None, "The zoo model to distil into.", "model", required=True),
    Option("temperature", KD_TEMPERATURE, "Softmax temperature T.", "float", min=0,
           min_open=True, flags=("--temperature", "-T")),
    Option("alpha", KD_ALPHA, "The weight alpha (on the distillation term in the edge "
                              "convention, on the cross-entropy in the hinton convention).",
           "float", min=0, max=1),
    Option("convention", KD_CONVENTION, "edge: L = a KL + (1-a) CE(soft student) "
                                        "(edge-efficient seed, Algorithm 3); hinton: L = a CE + "
                                        "(1-a) T^2 KL (the slides).",
           "choice", choices=KD_CONVENTIONS),
    Option("float_epochs", None, "Epochs of float training (quantizers off, the teacher as "
                                 "trained) before QAT, as a benchmark student trained with "
                                 "--float-epochs.", "int", min=0),
)


def run(inputs: dict, out: str, o: dict, log=print) -> dict:
    from amchw.compress.pipeline import distill

    return distill(inputs["teacher"], o["student"], out, o["data"], o["temperature"],
                   o["alpha"], o["convention"], log=log, **training(o),
                   **({"float_epochs": o["float_epochs"]} if o.get("float_epochs") else {}))


def summary(info: dict, o: dict, out: str) -> list[str]:
    return [f"KD: {info['student']} <- {info['teacher_model']} (T={o['temperature']:g}, "
            f"alpha={o['alpha']:g}, {o['convention']}), {info['epochs']} epochs: {out}"]


def section(ctx, cks) -> None:
    """The edge-efficient seed's Table III."""
    pct, acc = ctx.pct, ctx.acc
    ctx.page.h(2, "Knowledge distillation: the edge-efficient seed's Table III")
    rows = []
    for c in cks:
        e = ctx.exps[c.experiment]
        teacher = ctx.final[e["teacher"]]
        bench = ctx.benchmark(c)
        ratio = c.info["total_parameters"] / teacher.info["total_parameters"]
        s = seeds.EDGE_TABLE_III.get((e["student"], teacher.info["model"]))
        m = c.info.get("objective") or {}  # the distillation settings the run recorded
        rows.append([c.label, e["student"], teacher.info["model"], f"{ratio:.2f}",
                     "-" if s is None else f"{s[1]:.2f} (case {s[0]})",
                     f"T={m.get('temperature', KD_TEMPERATURE):g} "
                     f"alpha={m.get('alpha', KD_ALPHA):g} {m.get('convention', KD_CONVENTION)}",
                     pct(acc(c)), pct(acc(bench)) if bench else "-",
                     pct(acc(teacher)), "-" if s is None else s[2]])
    ctx.page.table(["checkpoint", "student", "teacher", "reduction ratio", "seed ratio",
                    "T, alpha, loss", "distilled int acc %", "benchmark student %",
                    "teacher %", "seed: vs benchmark"], rows)


METHOD = register(Method(
    name="kd",
    help="Knowledge distillation: a zoo student trained against a trained teacher.",
    options=OPTIONS + train_options() + (
        Option("benchmark", type="ref", cli=False),   # the report's comparison network
    ),
    runner=run,
    storage=Storage("method"),
    summary=summary,
    output_help="The student checkpoint to write.",
    report=Report(sections=(Section(30, section),), seed_row=SeedRow("KD")),
))
