"""The report's "Seed claims" section: each claim a seed paper makes about a method, the seed's
figure, ours on the recipe's checkpoints, and whether the claim holds here by a stated
criterion. A claim is judged only when the recipe has the checkpoints it needs.

The criteria turn the papers' words into numbers (integer-model accuracy over all SNRs of the
test split, differences in percentage points):
- "keeps accuracy": within 1 pp of the network it starts from (the edge-efficient seed's own
  reading of "minimal loss": within 1% of the benchmark); "comparable" (KD case III): no
  more than 1 pp below the benchmark;
- "improved", "marginally improved": above the benchmark student;
- the compression seed's "< 0.5 pp": its own bound;
- early exits "without accuracy loss": at 10 dB and above, the exit rule's accuracy within
  1 pp of the final classifier's on the same frames, with energy saved.
Next to each difference is its standard error, sqrt(a (1 - a) / n) for each of the two
accuracies on n test frames combined as if independent (an upper bound for two models scored
on the same frames), so that a difference smaller than about twice it is read with care."""

from __future__ import annotations

import math
from dataclasses import dataclass

from amchw import seeds

HIGH_SNR = 10  # dB: the early-exit seed's "moderate to high SNRs"


@dataclass
class Claim:
    seed: str
    claim: str
    seed_figure: str
    ours: str
    holds: bool
    criterion: str


def _pp(a: float, b: float) -> float:
    """a - b in percentage points (rounded to 1e-6 pp, so that a bound is not missed by a
    float's last bit)."""
    return round(100 * (a - b), 6)


def _se(a, b) -> float:
    """Standard error (pp) of the difference of two checkpoints' accuracies."""
    v = 0.0
    for c in (a, b):
        p, n = c.eval["int_acc"], max(1, int(c.eval.get("frames") or 1))
        v += p * (1 - p) / n
    return 100 * math.sqrt(v)


def _delta(c, ref) -> tuple[float, str]:
    """(difference in pp, its text) of c's integer accuracy against ref's."""
    d = _pp(c.eval["int_acc"], ref.eval["int_acc"])
    return d, (f"{100 * c.eval['int_acc']:.1f}% vs {100 * ref.eval['int_acc']:.1f}% "
               f"({ref.label}): {d:+.1f} pp (s.e. {_se(c, ref):.1f})")


def _start(ctx, c):
    e = ctx.exps[c.experiment]
    return ctx.final[e["start"]] if "start" in e else None


def _net_trim(ctx) -> list[Claim]:
    out = []
    nts = [c for c in ctx.cks if c.kind == "net-trim" and not ctx.distilled(c)]
    for c in nts:
        model, eps = c.info["model"], float(c.info["epsilon"])
        s = seeds.EDGE_TABLE_I.get(model)
        if s is None or abs(eps - seeds.EDGE_TABLE_I_EPSILON) > 1e-12:
            continue
        d, text = _delta(c, _start(ctx, c))
        out.append(Claim(seeds.EDGE, f"Net-Trim (epsilon 0.08) keeps {model}'s accuracy at "
                         f"p_e ~{100 * s['p_e']:.1f}%",
                         f"p_e {100 * s['p_e']:.1f}%, accuracy comparable (Table I, Fig. 1)",
                         f"p_e {100 * c.info['p_e']:.2f}%; {text}",
                         c.info["p_e"] >= 0.95 and d >= -1.0,
                         "p_e >= 95% and accuracy within 1 pp of the start"))
    if nts:
        low = min(nts, key=lambda c: c.info["p_e"])
        out.append(Claim(seeds.EDGE, "Net-Trim reaches p_e >= 90% at every epsilon",
                         "p_e >= 90% for epsilon 0.02 and 0.08",
                         f"lowest p_e {100 * low.info['p_e']:.2f}% ({low.label})",
                         low.info["p_e"] >= 0.90, "every Net-Trim checkpoint's p_e >= 90%"))
    return out


def _pq(ctx) -> list[Claim]:
    out = []
    for c in ctx.cks:
        if c.kind != "pq" or ctx.distilled(c):
            continue
        model, p = c.info["model"], c.info["subspaces"]
        s = seeds.EDGE_TABLE_II.get(model, {}).get(p)
        if s is None:
            continue
        d, text = _delta(c, _start(ctx, c))
        out.append(Claim(seeds.EDGE, f"PQ (P = {p}) keeps {model}'s accuracy at C_Q {s}",
                         f"C_Q {s}, within 1% of the benchmark (Table II, Fig. 2)",
                         f"{c.label}: C_Q {c.info['C_Q_64bit']:.2f}; {text}",
                         d >= -1.0, "accuracy within 1 pp of the start (C_Q is the "
                                    "network's structure, shown, not judged)"))
    return out


def _kd(ctx) -> list[Claim]:
    out = []
    for c in ctx.cks:
        if c.kind != "kd":
            continue
        teacher = ctx.final[ctx.exps[c.experiment]["teacher"]]
        s = seeds.EDGE_TABLE_III.get((c.info["model"], teacher.info["model"]))
        bench = ctx.benchmark(c)
        if s is None or bench is None:
            continue
        d, text = _delta(c, bench)
        improved = s[2] == "Improved"
        out.append(Claim(seeds.EDGE, f"KD case {s[0]} ({c.info['model']} <- "
                         f"{teacher.info['model']}): the student is {s[2].lower()}",
                         f"{s[2]} vs the benchmark (Table III, Fig. 3)",
                         f"{text}; teacher {100 * teacher.eval['int_acc']:.1f}%",
                         d > 0 if improved else d >= -1.0,
                         "above the benchmark student" if improved else
                         "no more than 1 pp below the benchmark student"))
    return out


def _combined(ctx) -> list[Claim]:
    out = []
    nt = {c.info["model"]: c for c in ctx.cks if c.kind == "net-trim"
          and not ctx.distilled(c) and abs(float(c.info["epsilon"]) - 0.08) < 1e-12}
    for c in ctx.cks:
        if c.kind not in ("net-trim", "pq") or not ctx.distilled(c):
            continue
        method = "DP" if c.kind == "net-trim" else "DQ"
        bench = ctx.benchmark(c)
        if bench is None:
            continue
        d, text = _delta(c, bench)
        s = seeds.EDGE_TABLE_IV[method]
        out.append(Claim(seeds.EDGE, f"{method} marginally improves on the benchmark "
                         f"{c.info['model']}", f"{s[2]} (Table IV, Fig. 4)", text, d > 0,
                         "above the benchmark student"))
        ref = nt.get(c.info["model"])
        if method == "DP" and ref is not None:
            out.append(Claim(seeds.EDGE, "DP reaches a higher p_e than Net-Trim alone",
                             f"p_e {100 * s[0]:.1f}% vs {100 * seeds.EDGE_TABLE_IV['NT'][0]:.1f}%"
                             " (Table IV)",
                             f"p_e {100 * c.info['p_e']:.2f}% vs {100 * ref.info['p_e']:.2f}% "
                             f"({ref.label})", c.info["p_e"] > ref.info["p_e"],
                             "DP's p_e above Net-Trim's at the same epsilon"))
    return out


def _imp(ctx) -> list[Claim]:
    out = []
    for c in ctx.cks:
        if c.kind != "imp" or abs(float(c.info.get("target", -1)) - 0.7) > 1e-9:
            continue
        start = ctx.final[ctx.exps[c.experiment]["start"]]
        d, text = _delta(c, start)
        s = seeds.GRU_TABLE_3[0.7]
        out.append(Claim(seeds.GRU, "IMP to sparsity 0.7 keeps the accuracy",
                         f"{s[2]}% at 0.7 vs {seeds.GRU_TABLE_2[80][0]}% dense (GRU-CNN, "
                         "Tables 2-3)", f"{c.label}: {text}", d >= -1.0,
                         "accuracy within 1 pp of the dense start (on this recipe's "
                         "network, which may not be the GRU-CNN)"))
    return out


def _compression(ctx) -> list[Claim]:
    out = []
    trained = {c.info["model"]: c for c in ctx.cks if c.kind == "train"
               and not c.info.get("float_only")}
    big, slim = trained.get("cnn-matlab"), trained.get("cnn-slim")
    if big and slim:
        t = ctx.targets[0]
        m0, m1 = (x.hardware[t]["dense"]["macs"] for x in (big, slim))
        d, text = _delta(slim, big)
        s0, s1 = seeds.COMPRESSION_TABLE_III["cnn-matlab"], seeds.COMPRESSION_TABLE_III["cnn-slim"]
        out.append(Claim(seeds.COMPRESSION, "Slimming costs < 0.5 pp at -70% MACs",
                         f"{100 * s1[1]:.2f}% vs {100 * s0[1]:.2f}%, MACs "
                         f"{100 * (s1[2] / s0[2] - 1):+.1f}% (Table III)",
                         f"MACs {100 * (m1 / m0 - 1):+.1f}%; {text}",
                         d > -0.5 and m1 / m0 <= 0.35,
                         "accuracy drop < 0.5 pp and MACs cut by >= 65%"))
    s = seeds.COMPRESSION_TABLE_III
    for c in ctx.cks:
        if c.kind != "ptq":
            continue
        start = _start(ctx, c)
        d = _pp(c.eval["int_acc"], start.eval["float_acc"])
        out.append(Claim(seeds.COMPRESSION, "INT8 post-training quantization costs < 0.5 pp",
                         f"{100 * s['cnn-slim int8'][1]:.2f}% vs {100 * s['cnn-slim'][1]:.2f}%"
                         " FP32 (Table III)",
                         f"{c.label}: {100 * c.eval['int_acc']:.1f}% vs "
                         f"{100 * start.eval['float_acc']:.1f}% FP32 ({start.label}): "
                         f"{d:+.1f} pp", d > -0.5, "integer accuracy within 0.5 pp of the FP32 "
                                                   "network's"))
    return out


def _early_exit(ctx) -> list[Claim]:
    out = []
    t = ctx.targets[0]
    for c in ctx.cks:
        if c.kind != "early-exit" or not c.early_exit:
            continue
        rows = [r for r in c.early_exit["targets"][t]["rows"]
                if r["snr"] != "all" and r["snr"] >= HIGH_SNR]
        n = sum(r["frames"] for r in rows)
        if not n:
            continue
        acc = sum(r["accuracy"] * r["frames"] for r in rows) / n
        fin = sum(r["final_accuracy"] * r["frames"] for r in rows) / n
        ex = sum(r["exit_fraction"] * r["frames"] for r in rows) / n
        save = sum(r["energy_saving"] * r["frames"] for r in rows) / n
        cpu = c.early_exit.get("cpu_ms")
        timed = "" if not cpu else (f"; measured CPU time per frame at batch 1: exit path "
                                    f"{cpu['exit@1']:.3f} ms vs full {cpu['full@1']:.3f} ms")
        d = _pp(acc, fin)
        out.append(Claim(seeds.EARLY_EXIT, f"{c.label}: early exits save time at high SNR "
                         "without accuracy loss",
                         "inference time cut, accuracy kept, at moderate to high SNR",
                         f">= {HIGH_SNR} dB at threshold {c.early_exit['threshold']:g}: "
                         f"{100 * ex:.0f}% exit, {t} energy {100 * save:.0f}% saved, accuracy "
                         f"{100 * acc:.1f}% vs {100 * fin:.1f}% final-only ({d:+.1f} pp){timed}",
                         save > 0 and d >= -1.0,
                         f"at >= {HIGH_SNR} dB: energy saved and accuracy within 1 pp of the "
                         "final classifier alone"))
    return out


def claims(ctx) -> list[Claim]:
    """Every claim the recipe's checkpoints can judge, in the page's order."""
    out = []
    for f in (_net_trim, _pq, _kd, _combined, _imp, _compression, _early_exit):
        out += f(ctx)
    return out


def section(ctx) -> None:
    cl = claims(ctx)
    if not cl:
        return
    ctx.page.h(2, "Seed claims: do they hold here?")
    ctx.page.p("Each claim a seed makes about a method, judged on this recipe's checkpoints "
               "by the criterion in the last column (integer accuracy over all SNRs of the "
               "test split; s.e. = standard error of the difference). A claim that does not "
               "hold on these networks is reported as not holding; docs/training.md discusses "
               "the likely reasons for the documented run.")
    ctx.page.table(["seed", "claim", "seed's figure", "ours", "holds here", "criterion"],
                   [[c.seed, c.claim, c.seed_figure, c.ours, "yes" if c.holds else "NO",
                     c.criterion] for c in cl])
