"""Product quantization (edge-efficient seed, Algorithm 2) of one FC layer, optionally with the
seed's retraining (amchw.compress.pq; the run is amchw.compress.pipeline.product_quantization).
Stored under the checkpoint's "pq" key; the report simulates the layer stored pqP:K (codebook
look-ups) and prints the seed's Table II, with the one-shot result of a retrained run beside
it."""

from __future__ import annotations

from amchw import seeds
from amchw.compress.defaults import PQ_CENTROIDS, PQ_RETRAIN_EPOCHS, PQ_TRAIN_FRACTION
from amchw.compress.registry import (QUANT_OPTIONS, Method, Option, Report, Section, SeedRow,
                                     Storage, pq_storage, register, train_options, training)

SUBSPACES = Option("subspaces", None, "P: the outputs split into P subspaces.", "int", min=1,
                   required=True, hint="P")
CENTROIDS = Option("centroids", PQ_CENTROIDS, "K_s: centroids per subspace (a power of two).",
                   "int", min=2)

OPTIONS = (
    Option("start", type="ref", required=True, argument="MODEL"),
    Option("layer", None, "The FC layer, a QuantLinear (default: the first)."),
    SUBSPACES,
    CENTROIDS,
    Option("retrain_epochs", PQ_RETRAIN_EPOCHS,
           "Retrain the rest of the network with the PQ layer frozen (seed: 20).", "int", min=0),
    Option("train_fraction", PQ_TRAIN_FRACTION,
           "Fraction of the training frames for retraining.", "float", min=0, max=1,
           min_open=True),
    *QUANT_OPTIONS,
    *train_options(recipe=("batch_size", "lr")),
)


def check(o: dict) -> None:
    from amchw.resolve import RequestError

    if o["epochs"] is not None:
        raise RequestError("give --retrain-epochs, not --epochs", usage=True)


def run(inputs: dict, out: str, o: dict, log=print) -> dict:
    from amchw.compress.pipeline import product_quantization

    return product_quantization(
        inputs["start"], out, o["layer"], o["subspaces"], o["centroids"], o["retrain_epochs"],
        o["train_fraction"], o["data"], o["seed"], log=log,
        quant={k: o[k] for k in ("scales", "weight_bits", "act_bits")},
        **{k: v for k, v in training(o).items() if k != "epochs"})  # epochs: retrain_epochs


def figures(info: dict) -> list[str]:
    cq = ", ".join(f"{v:.2f} ({k[4:]})" for k, v in info.items() if k.startswith("C_Q"))
    return [f"PQ {info['layer']}: {info['inputs']} x {info['outputs']}, "
            f"P={info['subspaces']} K_s={info['centroids']}: C_Q {cq}"]


def summary(info: dict, o: dict, out: str) -> list[str]:
    lines = figures(info)
    if o["retrain_epochs"]:
        lines.append(f"without retraining: {info['no_retrain']}")
    return lines + [f"wrote {out}: {info['layer']} stored pq{o['subspaces']}:{o['centroids']}"]


def checkpoints(method, out, result, o, label, start):
    """The run's checkpoint and, when it retrained, the one-shot result before it."""
    from amchw.checkpoint import load

    info = dict(load(out).get("pq") or {})
    one_shot = [(" (no retraining)", info["no_retrain"], dict(info, retrain_epochs=0))] \
        if info.get("no_retrain") else []
    return one_shot + [("", out, info)]


def section(ctx, cks) -> None:
    """The edge-efficient seed's Table II."""
    ctx.page.h(2, "Product quantization: the edge-efficient seed's Table II")
    rows = []
    for c in cks:
        i = c.info
        s = seeds.EDGE_TABLE_II.get(i.get("model", ""), {}).get(i["subspaces"])
        rows.append([c.label, i.get("model", ""), i["layer"], i["subspaces"],
                     i["centroids"], f"{i['C_Q_64bit']:.2f}",
                     "-" if s is None else f"{s:.2f}", f"{i.get('C_Q_8bit', 0):.2f}",
                     i.get("retrain_epochs", 0), ctx.pct(ctx.acc(c))] + ctx.hw_vals(c))
    ctx.page.table(["checkpoint", "network", "layer", "P", "K_s", "C_Q (64-bit)", "seed C_Q",
                    "C_Q (8-bit)", "retrain epochs", "int acc %"] + ctx.hw_cols(), rows)
    ctx.page.p("C_Q = b M N / (b K_s N + log2(K_s) M P) (the seed's eq. 2) with b = 64 as the "
               "seed's float originals, and with b = 8 against our int8 weights.")


METHOD = register(Method(
    name="pq",
    help="Product quantization (edge-efficient seed, Algorithm 2) of one FC layer of MODEL, a "
         "checkpoint or a zoo name (random weights calibrated on synthetic frames; --scales, "
         "--weight-bits, --act-bits), with k-means per subspace, optionally with the seed's "
         "retraining; prints C_Q. The checkpoint written stores the layer pqP:K in the IR.",
    options=OPTIONS,
    runner=run,
    storage=Storage("pq", pq_storage),
    summary=summary,
    figures=figures,
    usage_errors=True,
    check=check,
    report=Report(sections=(Section(20, section),), checkpoints=checkpoints,
                  seed_row=SeedRow("PQ", "DQ", c_q=True)),
))
