"""Iterative magnitude pruning with QAT (GRU-CNN seed): stages of gradual pruning and
retraining, each from the previous stage (amchw.compress.imp; the run is
amchw.compress.pipeline.imp). Writes a directory of stage checkpoints, each recording its
pruning schedule under the "method" key; the report measures every stage, simulates them in
the sparse format and prints the seed's Table 3."""

from __future__ import annotations

from amchw import seeds
from amchw.compress.defaults import (IMP_FREQUENCY, IMP_INITIAL_SPARSITY, IMP_POWER,
                                     IMP_PRUNE_EPOCHS, IMP_SCHEDULE)
from amchw.compress.registry import (Method, Option, Report, Section, Storage, register,
                                     sparse_storage, train_options, training)

OPTIONS = (
    Option("start", type="ref", required=True, argument="CHECKPOINT"),
    Option("schedule", IMP_SCHEDULE, "Target sparsities of the successive stages.", "floats"),
    Option("prune_epochs", IMP_PRUNE_EPOCHS,
           "Epochs of each stage over which the sparsity rises to its target.", "int", min=1),
    Option("initial_sparsity", IMP_INITIAL_SPARSITY, "Where the first stage's schedule starts.",
           "float", min=0, max=1),
    Option("frequency", IMP_FREQUENCY, "Optimizer steps between pruning steps.", "int", min=1),
    Option("power", IMP_POWER, "Exponent of the polynomial schedule.", "float"),
    Option("layers", None, "Comma-separated layers (default: every Conv/Linear/GRU weight).",
           "names"),
    *train_options(),
)


def run(inputs: dict, out: str, o: dict, log=print) -> list:
    from amchw.compress.pipeline import imp

    return imp(inputs["start"], o["schedule"], out, o["prune_epochs"], o["initial_sparsity"],
               o["frequency"], o["power"], o["layers"], o["data"], log=log, **training(o))


def summary(stages: list, o: dict, out: str) -> list[str]:
    lines = [f"{'stage':<6} {'target':>7} {'sparsity':>9} {'parameters':>11} "
             f"{'footprint kB':>13}  checkpoint"]
    for k, r in enumerate(stages, 1):
        lines.append(f"{k:<6} {r.target:>7.2f} {r.sparsity:>9.4f} {r.parameters:>11,} "
                     f"{r.footprint_bytes / 1000:>13.1f}  {r.checkpoint}")
    return lines


def checkpoints(method, out, stages, o, label, start):
    """One checkpoint per stage, each naming the model it was pruned from."""
    made, prev = [], start
    for st in stages:
        suffix = f" s={st.target:g}"
        made.append((suffix, st.checkpoint,
                      {"target": st.target, "sparsity": st.sparsity,
                       "parameters": st.parameters, "total_parameters": st.total_parameters,
                       "footprint_bytes": st.footprint_bytes, "original": prev}))
        prev = label + suffix
    return made


def check_recipe(e: dict, earlier: dict) -> str | None:
    from amchw.compress.defaults import IMP_PRUNE_EPOCHS

    if earlier.get(e.get("start"), {}).get("kind") == "imp":
        return "start an imp from a trained model, not from an imp"
    prune = e.get("prune_epochs", IMP_PRUNE_EPOCHS)
    if "epochs" in e and e["epochs"] <= prune:
        return (f"epochs ({e['epochs']}) must exceed prune_epochs ({prune}): each stage "
                "prunes for prune_epochs, then retrains for the rest")
    return None


def section(ctx, cks) -> None:
    """The GRU-CNN seed's Table 3."""
    pct, acc = ctx.pct, ctx.acc
    ctx.page.h(2, "Iterative magnitude pruning with QAT: the GRU-CNN seed's Table 3")
    rows = []
    for c in cks:
        i = c.info
        s = seeds.GRU_TABLE_3.get(i["target"])
        by = c.eval["int_by_snr"]
        rows.append([c.label, i["original"], f"{i['target']:g}", f"{i['sparsity']:.4f}",
                     f"{i['parameters']:,}", pct(acc(c), 2), pct(max(by.values()), 2),
                     f"{i['footprint_bytes'] / 1000:.1f}",
                     "-" if s is None else f"{s[1]:,}", "-" if s is None else f"{s[2]}",
                     "-" if s is None else f"{s[3]}", "-" if s is None else f"{s[4]}"]
                    + ctx.hw_vals(c))
    ctx.page.table(["pruned model", "original model", "target sparsity", "sparsity",
                    "parameters", "average acc %", "highest acc %", "footprint kB",
                    "seed parameters", "seed avg %", "seed highest %", "seed kB"]
                   + ctx.hw_cols(), rows)
    ctx.page.p("Parameters: non-zero weights, biases and BatchNorm scales and shifts; "
               "footprint: one byte per parameter at 8 bits (the seed's count). The cycles and "
               "energy use the compressed storage (indices included), which the footprint "
               "leaves out.")


METHOD = register(Method(
    name="imp",
    help="Iterative magnitude pruning with QAT (GRU-CNN seed): each stage prunes the previous "
         "stage's model to its target over --prune-epochs and retrains it (early stopping); "
         "prints the seed's Table 3 (parameters, sparsity, memory footprint at the weight bit "
         "width).",
    options=OPTIONS,
    runner=run,
    storage=Storage("method", sparse_storage),
    summary=summary,
    output_help="Directory for the stage checkpoints.",
    check_recipe=check_recipe,
    report=Report(sections=(Section(40, section),), reruns=True, stages=True,
                  checkpoints=checkpoints),
))
