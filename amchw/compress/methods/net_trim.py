"""Net-Trim (edge-efficient seed, Algorithm 1): the L1-minimal weights of one FC layer whose
ReLU outputs stay within epsilon of the original (amchw.compress.nettrim; the run is
amchw.compress.pipeline.net_trim). Stored under the checkpoint's "net_trim" key; the report
simulates the pruned layers in the sparse format and prints the seed's Table I."""

from __future__ import annotations

from amchw import seeds
from amchw.compress.defaults import (NET_TRIM_EPSILON, NET_TRIM_FRAMES, NET_TRIM_MAX_ITER,
                                     NET_TRIM_RHO)
from amchw.compress.registry import (Method, Option, Report, Section, SeedRow, Storage,
                                     register, sparse_storage)

EPSILON = Option("epsilon", NET_TRIM_EPSILON,
                 "Relative bound on the layer's ReLU output change, ||Y^ - Y||_F <= epsilon "
                 "||Y||_F.", "float", min=0, min_open=True)
FRAMES = Option("frames", None, f"Training frames whose activations form X (default: the "
                f"seed's {NET_TRIM_FRAMES:,}, or the layer's input width P if larger: with "
                "fewer frames than P the L1 problem is underdetermined and the sparsity "
                "follows the frame count, not epsilon).", "int", min=2)

OPTIONS = (
    Option("start", type="ref", required=True, argument="CHECKPOINT"),
    Option("layer", None, "The FC layer (default: the first)."),
    EPSILON,
    FRAMES,
    Option("data", None, "Data file (default: the checkpoint's).", "data", recipe=False),
    Option("rho", NET_TRIM_RHO, "ADMM penalty.", "float", min=0, min_open=True),
    Option("max_iter", NET_TRIM_MAX_ITER, "Cap on the sparse ADMM phase's iterations.", "int",
           min=1),
    Option("keep_unconverged", False, "Keep the ADMM iterate (repaired to meet the constraint) "
           "when it stops at --max-iter before its tolerance, instead of failing.", "flag"),
    Option("seed", 0, "Seed of the frames collected for the solve.", type="int", recipe=False),
)


def run(inputs: dict, out: str, o: dict, log=print) -> dict:
    from amchw.compress.pipeline import net_trim

    admm = {"rho": o["rho"], "max_iter": o["max_iter"],
            "keep_unconverged": bool(o["keep_unconverged"])}
    return net_trim(inputs["start"], out, o["layer"], o["epsilon"], o["frames"], o["data"],
                    o["seed"], **admm)


def figures(info: dict) -> list[str]:
    return [f"Net-Trim {info['layer']} (epsilon {info['epsilon']:g}, {info['frames']} "
            f"frames, {info['iterations']} ADMM iterations"
            f"{'' if info['converged'] else ', NOT converged: the iterate kept'}"
            f"{', repair ' + info['repair'] if info.get('repair') else ''})",
            f"  n_T {info['n_T']:,}  n_b {info['n_b']:,}  n_a {info['n_a']:,}  "
            f"p_e {100 * info['p_e']:.2f}%  output discrepancy "
            f"{info['discrepancy']:.4f} (<= epsilon)"] + (
        [f"  warning: {info['frames']:,} frames < {info['P']:,} inputs: the problem is "
         "underdetermined and p_e follows the frame count more than epsilon"]
        if info.get("P") and info["frames"] < info["P"] else [])


def section(ctx, cks) -> None:
    """The edge-efficient seed's Table I."""
    pct, acc = ctx.pct, ctx.acc
    ctx.page.h(2, "Net-Trim: the edge-efficient seed's Table I")
    rows = []
    for c in cks:
        i, s = c.info, seeds.EDGE_TABLE_I.get(c.info["model"], {})
        start = ctx.final[ctx.exps[c.experiment]["start"]]
        rows.append([c.label, c.info["model"], i["layer"], f"{i['epsilon']:g}",
                     f"{i['frames']:,}" + (" (< P)" if i["frames"] < i.get("P", 0) else ""),
                     f"{i['iterations']:,}" + ("" if i["converged"] else " (NOT converged)")
                     + (f", {i['repair']}" if i.get("repair") else ""),
                     f"{i['n_T']:,}", f"{i['n_b']:,}", f"{i['n_a']:,}", pct(i["p_e"], 2),
                     f"{i['discrepancy']:.4f}", pct(acc(c)),
                     f"{100 * (acc(c) - acc(start)):+.1f}",
                     s.get("n_T", "-"), s.get("n_a", "-"), pct(s.get("p_e"), 2)]
                    + ctx.hw_vals(c))
    ctx.page.table(["checkpoint", "network", "layer", "epsilon", "frames N", "ADMM iterations",
                    "n_T", "n_b", "n_a", "p_e %",
                    "output discrepancy", "int acc %", "vs start (pp)", "seed n_T", "seed n_a",
                    f"seed p_e % (eps {seeds.EDGE_TABLE_I_EPSILON})"] + ctx.hw_cols(), rows)


METHOD = register(Method(
    name="net-trim",
    help="Net-Trim (edge-efficient seed, Algorithm 1): the L1-minimal weights of one FC layer "
         "whose ReLU outputs on training frames stay within epsilon of the original (ADMM).",
    options=OPTIONS,
    runner=run,
    storage=Storage("net_trim", sparse_storage),
    summary=lambda info, o, out: figures(info) + [f"wrote {out}"],
    figures=figures,
    report=Report(sections=(Section(10, section),), seed_row=SeedRow("NT", "DP", p_e=True)),
))
