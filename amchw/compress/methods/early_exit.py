"""Early-exit networks (the early-exit seed): an ee-v* model trained with the seed's
multi-branch rule, the exit loss updating the trunk and the exit branch, the final loss only
the long branch (amchw.compress.multibranch; the run is amchw.compress.pipeline.early_exit).
The objective is stored under the checkpoint's "method" key; the report adds the integer exit
decision on test frames (per-SNR exit table at `threshold`, and a `sweep` of thresholds) with
its expected cycles and energy per frame on each target."""

from __future__ import annotations

from amchw.compress.defaults import (EARLY_EXIT_BATCH_SIZE, EARLY_EXIT_EPOCHS, EARLY_EXIT_LR,
                                     EARLY_EXIT_PATIENCE, EARLY_EXIT_SWEEP,
                                     EARLY_EXIT_THRESHOLD)
from amchw.compress.registry import Method, Option, Report, Section, Storage, register

OPTIONS = (
    Option("model", None, "The exit placement.", "model", required=True,
           choices=("ee-v0", "ee-v1", "ee-v2", "ee-v3")),
    Option("data", None, "RadioML-layout HDF5 file (10 classes, 2 x 128).", "data",
           required=True),
    Option("epochs", EARLY_EXIT_EPOCHS, "Training epochs (at most; early stopping may end "
           "sooner).", type="int", min=1),
    Option("batch_size", EARLY_EXIT_BATCH_SIZE, "Frames per training step.", type="int", min=2),
    Option("lr", EARLY_EXIT_LR, "Adam learning rate.", type="float"),
    Option("patience", EARLY_EXIT_PATIENCE, "Stop after this many epochs without a better "
           "validation loss.", type="int", min=1),
    Option("max_train", None, "Train on at most this many frames of the training split.",
           type="int", min=2),
    Option("joint", False, "Sum both losses into every parameter instead of the seed's "
                           "multi-branch rule.", "flag"),
    Option("seed", 0, "Seed of the split, the weights and the batches.", type="int"),
    # the report's measurement: the per-SNR table's entropy threshold and the sweep
    Option("threshold", EARLY_EXIT_THRESHOLD, type="float", cli=False),
    Option("sweep", EARLY_EXIT_SWEEP, type="floats", cli=False),
)


def run(inputs: dict, out: str, o: dict, log=print) -> dict:
    from amchw.compress.pipeline import early_exit

    return early_exit(o["model"], o["data"], out, o["epochs"], o["batch_size"], o["lr"],
                      o["patience"], o["max_train"], o["joint"], o["seed"], log=log)


def summary(info: dict, o: dict, out: str) -> list[str]:
    return [f"wrote {out}: {o['model']}, {info['epochs']} epochs, "
            f"{info['method']['objective']['name']}"]


def checkpoints(method, out, result, o, label, start):
    return [("", out, {"model": o["model"]})]


def measure(ck, graph, frames, o: dict, targets) -> None:
    """The exit decision in the integer IR on the test frames: per SNR at the threshold, and
    the sweep, with each target's expected cost (ck.early_exit)."""
    from amchw.ir.early_exit import (add_exit_rule, decide, error_bound, path_times,
                                     run_early_exit)
    from amchw.sims.early_exit import early_exit, split_layers, sweep
    from amchw.sims.simulate import simulate

    x, y, snr, which = frames
    thr = float(o["threshold"])
    g = add_exit_rule(graph, thr, exit_output=graph.outputs[0])
    r = run_early_exit(g, x, "fast", exit_output=graph.outputs[0])
    pe, pf = r["exit_logits"].argmax(1), r["final_logits"].argmax(1)
    ck.early_exit = {"threshold": thr, "frames": int(x.shape[0]), "which": which,
                     "error_bound": error_bound(g), "targets": {},
                     # the early-exit seed measures inference time per exit path: ours on
                     # this CPU (fused integer executor), next to the simulated cycles
                     "cpu_ms": path_times(g, x, graph.outputs[0], (1, min(256, len(x))))}
    ts = [float(v) for v in o["sweep"]]
    for t in targets:
        split = split_layers(g, simulate(g, t), exit_output=graph.outputs[0])
        rep = early_exit(split, r["flags"], snr, y, pe, pf, threshold=thr)
        rep.sweep = sweep(split, {v: decide(g, r["codes"], v) for v in ts}, y, pe, pf)
        ck.early_exit["targets"][t.name] = rep.to_dict()


def section(ctx, ee) -> None:
    """The trade-off (threshold sweep), the measured time of each path, and, per network,
    the per-SNR table and plot."""
    pct, page, targets = ctx.pct, ctx.page, ctx.targets
    page.h(2, "Early exits: the early-exit seed's trade-off on the simulated hardware")
    t0 = targets[0]
    rows = []
    for c in ee:
        for r in c.early_exit["targets"][t0]["sweep"]:
            rows.append([c.label, f"{r['threshold']:g}", pct(r["exit_fraction"]),
                         pct(r["accuracy"]), f"{r['expected_cycles']:,.0f}",
                         f"{r['expected_energy_uj']:.3f}", pct(r["cycles_saving"])])
    page.table(["network", "entropy threshold", "exit %", "int acc %",
                f"{t0} cycles/frame", f"{t0} uJ/frame", "cycles saved %"], rows)
    _times(ctx, ee)
    for c in ee:
        d = c.early_exit
        page.h(3, f"{c.label}: per SNR at threshold {d['threshold']:g}")
        rows = []
        for t in targets:
            for r in d["targets"][t]["rows"]:
                rows.append([t, r["snr"], r["frames"], pct(r["exit_fraction"]),
                             pct(r["accuracy"]), pct(r["final_accuracy"]),
                             f"{r['expected_cycles']:,.0f}",
                             f"{r['expected_energy_uj']:.3f}", pct(r["energy_saving"])])
        page.table(["target", "SNR dB", "frames", "exit %", "int acc %", "final-only acc %",
                    "cycles/frame", "uJ/frame", "energy saved %"], rows)
        page.p(f"The integer exit decision equals the float entropy rule wherever the "
               f"entropy is more than {d['error_bound']:.1e} from the threshold "
               f"({d['frames']} frames, {d['which']}).")
    png = ctx.out / "early_exit.png"
    _exit_plot(ee, t0, png)
    page.img(png.name, "exit fraction vs SNR")


def _times(ctx, ee) -> None:
    """Measured CPU time per frame of the exit path and of the whole network (the early-exit
    seed's measure) beside the simulated cycles of the same split."""
    ee = [c for c in ee if c.early_exit.get("cpu_ms")]
    if not ee:
        return
    rows = []
    for c in ee:
        cpu = c.early_exit["cpu_ms"]
        big = max(int(k.split("@")[1]) for k in cpu)
        sims = []
        for t in ctx.targets:
            sp = c.early_exit["targets"][t]["split"]
            sims.append(f"{sp['exit_cycles']:,.0f} / {sp['full_cycles']:,.0f} = "
                        f"{sp['exit_cycles'] / sp['full_cycles']:.2f}")
        rows.append([c.label] + [f"{cpu[f'exit@{b}']:.4f} / {cpu[f'full@{b}']:.4f} = "
                                 f"{cpu[f'exit@{b}'] / cpu[f'full@{b}']:.2f}"
                                 for b in (1, big)] + sims)
    ctx.page.table(["network", "CPU ms/frame exit / full, batch 1", f"CPU ms/frame exit / full,"
                    f" batch {big}"] + [f"{t} cycles/frame exit / full" for t in ctx.targets],
                   rows)
    ctx.page.p("Measured: the integer IR run by amchw's fused executor on this machine's CPU "
               "(median of timed calls, per frame); 'exit' is the path a frame leaving at the "
               "exit runs (trunk, exit head, decision), 'full' the whole network. Simulated: "
               "the same split of the target's cycles.")


def _exit_plot(ee, target: str, path) -> None:
    from amchw.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for i, c in enumerate(ee):
        rows = [r for r in c.early_exit["targets"][target]["rows"] if r["snr"] != "all"]
        ax.plot([r["snr"] for r in rows], [100 * r["exit_fraction"] for r in rows], "-o",
                ms=3, color=f"C{i % 10}", label=c.label)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("frames leaving at the exit (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, plt, path)


METHOD = register(Method(
    name="early-exit",
    help="Train an early-exit network with the early-exit seed's multi-branch rule: the exit "
         "loss updates the trunk and the exit branch, the final loss only the long branch.",
    options=OPTIONS,
    runner=run,
    storage=Storage("method"),
    summary=summary,
    report=Report(sections=(Section(70, section),), reruns=True, checkpoints=checkpoints,
                  measure=measure),
))
