"""The report page: blocks rendered to Markdown and HTML. The page opens with the run, the data
and every checkpoint with its accuracy and hardware figures; then come the sections, each at
its place in ORDER: every compression method's own (its registry entry's Report.sections,
given its checkpoints) and the report's (the edge-efficient seed's Table IV across methods,
the GRU-CNN network on the hardware, architecture slimming)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from amchw import seeds
from amchw.compress.methods import METHODS

from .measure import hardware_targets
from .runner import Checkpoint

#: where the sections go: the methods' (net-trim 10, pq 20, kd 30, imp 40, early-exit 70) and
#: the report's own below
ORDER = {"table-iv": 35, "gru-cnn": 50, "slimming": 60, "claims": 90}


def _pct(v, nd: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{nd}f}"


def _acc(ck: Checkpoint, kind: str = "int") -> float | None:
    """A checkpoint's accuracy (None: a float-only training has no integer model)."""
    return ck.eval[f"{kind}_acc"]


def _best_snr(ck: Checkpoint, kind: str = "int") -> float | None:
    by = ck.eval[f"{kind}_by_snr"]
    return max(by.values()) if by else None


class Page:
    """Blocks rendered to Markdown and to HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows]))

    def img(self, src: str, alt: str):
        self.blocks.append(("img", src, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in b[1]) + " |")
                out.append("|" + "|".join(" --- " for _ in b[1]) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
                        for r in b[2]]
            else:
                out.append(f"![{b[2]}]({b[1]})")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
               f"<title>{e(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
               "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
               "padding:3px 8px;text-align:right}th{background:#eee}"
               "td:first-child{text-align:left}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in b[1]) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                        for r in b[2]]
                out.append("</table>")
            else:
                out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}' width='700'></p>")
        out.append("</body></html>")
        return "\n".join(out)


def _hw_cols(targets: list[str]) -> list[str]:
    return [c for t in targets for c in (f"{t} cycles/frame", f"{t} uJ/frame")]


def _hw_vals(ck: Checkpoint, targets: list[str]) -> list[str]:
    vals = []
    for t in targets:
        hw = ck.hardware[t]
        if hw is None:            # a float-only training: nothing to simulate
            vals += ["-", "-"]
            continue
        best = hw.get("compressed", hw["dense"])
        tag = f" ({'/'.join(hw['format'])})" if "compressed" in hw else ""
        vals += [f"{best['cycles']:,}{tag}", f"{best['energy_uj']:.2f}"]
    return vals


def _distilled(e: dict, exps: dict) -> bool:
    """Whether an experiment starts from a distilled student (DP and DQ: a kd start)."""
    return "start" in e and exps[e["start"]]["kind"] == "kd"


def _benchmark(c: Checkpoint, cks: list[Checkpoint], exps: dict, final: dict):
    """The trained network a checkpoint is compared with: a kd experiment's `benchmark` (for
    DP/DQ, their kd's), else the first train experiment of the same model on the same data."""
    e = exps[c.experiment]
    while True:
        if "benchmark" in e:
            return final[e["benchmark"]]
        if _distilled(e, exps):
            e = exps[e["start"]]
            continue
        break
    same = [b for b in cks if b.kind == "train" and b.info["model"] == c.info["model"]
            and not b.info.get("float_only")
            and b.data == c.data]
    return same[0] if same else None


@dataclass
class PageContext:
    """What a section renders from: the page, the recipe's experiments by name, every
    checkpoint and each experiment's last (`final`), the target names and the output
    directory (for plots); and the page's figure formats."""
    page: Page
    recipe: dict
    cks: list[Checkpoint]
    exps: dict
    final: dict
    targets: list[str]
    out: Path
    gru: dict | None = None

    pct = staticmethod(_pct)
    acc = staticmethod(_acc)
    best_snr = staticmethod(_best_snr)

    def hw_cols(self) -> list[str]:
        """The hardware columns' headers (cycles and energy per frame on each target)."""
        return _hw_cols(self.targets)

    def hw_vals(self, c: Checkpoint) -> list[str]:
        """A checkpoint's hardware columns (its compressed storage where it has one)."""
        return _hw_vals(c, self.targets)

    def benchmark(self, c: Checkpoint):
        return _benchmark(c, self.cks, self.exps, self.final)

    def distilled(self, c: Checkpoint) -> bool:
        """Whether a checkpoint starts from a distilled student (DP and DQ)."""
        return _distilled(self.exps[c.experiment], self.exps)


def _table_iv(ctx: PageContext) -> None:
    """The edge-efficient seed's Table IV: every method with a SeedRow, DP and DQ included."""
    rows_of = {k: m.report.seed_row for k, m in METHODS.items()
               if m.report is not None and m.report.seed_row is not None}
    t4 = [c for c in ctx.cks if c.kind in rows_of]
    if not t4:
        return
    pct, acc = _pct, _acc
    ctx.page.h(2, "Individual and combined methods: the edge-efficient seed's Table IV")
    rows = []
    for c in t4:
        e = ctx.exps[c.experiment]
        sr = rows_of[c.kind]
        method = sr.distilled if _distilled(e, ctx.exps) else sr.code
        bench = ctx.benchmark(c)
        s = seeds.EDGE_TABLE_IV[method] if _table_iv_setting(c, method) else (None, None, "-")
        rows.append([c.label, method, c.info["model"],
                     pct(c.info.get("p_e"), 1) if sr.p_e else "-",
                     f"{c.info['C_Q_64bit']:.2f}" if sr.c_q else "-",
                     f"{100 * (acc(c) - acc(bench)):+.1f} ({bench.label})" if bench else "-",
                     pct(s[0]), "-" if s[1] is None else f"{s[1]:.2f}", s[2]]
                    + ctx.hw_vals(c))
    ctx.page.table(["checkpoint", "method", "network", "p_e %", "C_Q", "acc vs benchmark (pp)",
                    "seed p_e %", "seed C_Q", "seed accuracy"] + ctx.hw_cols(), rows)
    ctx.page.p("The seed's Table IV is VTCNN2's, with Net-Trim at epsilon 0.08 and PQ at P = 2; "
               "its columns stay '-' on rows of another network or setting.")


def _table_iv_setting(c: Checkpoint, method: str) -> bool:
    """Whether a checkpoint is in the setting of the seed's Table IV (VTCNN2; NT and DP at
    epsilon 0.08; PQ and DQ at P = 2), so that the seed's row compares with it."""
    if c.info.get("model") != "vtcnn2":
        return False
    if method in ("NT", "DP"):
        return abs(float(c.info.get("epsilon", -1)) - 0.08) < 1e-12
    if method in ("PQ", "DQ"):
        return c.info.get("subspaces") == 2
    return True


def _gru_cells(model: str) -> int | None:
    """The cell count of a zoo GRU-CNN ("gru-cnn" 80, "gru-cnn-50" 50), else None."""
    from amchw.models.gru import CELLS

    if model == "gru-cnn":
        return CELLS
    head, _, tail = model.rpartition("-")
    return int(tail) if head == "gru-cnn" and tail.isdigit() else None


def _gru_cnn(ctx: PageContext) -> None:
    """The GRU-CNN seed's network on the hardware (recipe keys gru_cells, gru_sparsities),
    with the accuracies of the recipe's trained GRU-CNNs (train experiments of gru-cnn-C)."""
    gru, targets, pg = ctx.gru, ctx.targets, ctx.page
    if not (gru and (gru["cells"] or gru["pruned"])):
        return
    trained = {}
    for c in ctx.cks:
        cells = _gru_cells(c.info.get("model", "")) if c.kind == "train" else None
        if cells is not None:
            trained[cells] = c
    if trained:
        pg.h(2, "The GRU-CNN seed's network on the hardware (Tables 2-4)")
        pg.p("Accuracies are the recipe's trained GRU-CNNs (integer model: average over all "
             "SNRs, and at the SNR where it is highest); rows without a trained model show "
             "'-'. Parameters and footprints are counted on the zoo's model, cycles and "
             "energy simulated on it (dense; the weights do not change a dense layer's "
             "cycles).")
    else:
        pg.h(2, "The GRU-CNN seed's network on the hardware (Tables 2-4, untrained)")
        pg.p("No GRU-CNN is trained in this recipe, so the accuracy columns are the seed's "
             "only. Parameters and footprints are counted on the zoo's model, cycles and "
             "energy simulated on it.")
    hw_cols = [c for t in targets for c in (f"{t} cycles/frame", f"{t} latency ms",
                                             f"{t} uJ/frame")]
    rows = []
    for r in gru["cells"]:
        s2 = seeds.GRU_TABLE_2.get(r["cells"])
        ck = trained.get(r["cells"])
        rows.append([r["cells"], f"{r['parameters']:,}", f"{r['float32_kb']:.1f}",
                     f"{r['int8_kb']:.1f}",
                     "-" if ck is None else _pct(_acc(ck), 2),
                     "-" if ck is None else _pct(_best_snr(ck), 2),
                     "-" if s2 is None else f"{s2[2]:,}",
                     "-" if s2 is None else s2[3], "-" if s2 is None else s2[0],
                     "-" if s2 is None else s2[1]]
                    + [v for t in targets for v in (
                        f"{r['hardware'][t]['cycles']:,}",
                        f"{r['hardware'][t]['latency_us'] / 1000:.3f}",
                        f"{r['hardware'][t]['energy_uj']:.2f}")])
    if rows:
        pg.table(["GRU cells", "parameters", "float32 kB", "int8 kB", "avg acc %",
                  "highest acc %", "seed parameters", "seed kB", "seed avg %",
                  "seed highest %"] + hw_cols, rows)
    rows = []
    for r in gru["pruned"]:
        s3 = seeds.GRU_TABLE_3.get(r["sparsity"])
        rows.append([f"{r['sparsity']:g}", f"{r['layer_sparsity']:.4f}",
                     f"{r['parameters']:,}", f"{r['footprint_kb']:.1f}",
                     "-" if s3 is None else f"{s3[1]:,}", "-" if s3 is None else s3[4]]
                    + [v for t in targets for v in (
                        f"{r['hardware'][t]['cycles']:,}",
                        f"{r['hardware'][t]['latency_us'] / 1000:.3f}",
                        f"{r['hardware'][t]['energy_uj']:.2f}")])
    if rows:
        pg.table(["target sparsity", "sparsity", "parameters", "footprint kB (int8)",
                  "seed parameters", "seed kB"] + hw_cols, rows)
        s4 = seeds.GRU_TABLE_4_OURS
        pg.p(f"The seed's Table 4 row for this model (sparsity 0.7): {s4[0]}% average, "
             f"{s4[1]}% highest, {s4[2]:,} parameters, {s4[3]} kB, {s4[4]} ms per sample "
             "measured on the authors' machine; the latency columns above are the "
             "simulated targets' (batch 1, compressed storage).")


def _slimming(ctx: PageContext) -> None:
    """The compression seed's Table III: cnn-matlab and cnn-slim trained (train experiments)."""
    slim = [c for c in ctx.cks if c.kind == "train"
            and c.info["model"] in ("cnn-matlab", "cnn-slim")]
    if not slim:
        return
    ctx.page.h(2, "Architecture slimming: the compression seed's Table III")
    rows = []
    for c in slim:
        s = seeds.COMPRESSION_TABLE_III.get(c.info["model"])
        sq = seeds.COMPRESSION_TABLE_III.get(c.info["model"] + " int8")
        hw = next(iter(c.hardware.values()))
        macs = f"{hw['dense']['macs']:,}" if hw else "-"
        w, b = c.info["weights"], c.info["biases"]
        rows.append([c.label, c.info["model"], _pct(_acc(c, "float"), 2), _pct(_acc(c), 2),
                     macs, f"{w + b:,}", f"{(w + b) * 4 / 2**20:.4f}",
                     f"{(w + 4 * b) / 2**20:.4f}",
                     "-" if s is None else f"{s[0]}: {100 * s[1]:.2f}%",
                     "-" if s is None else f"{s[2]:,}",
                     "-" if s is None else f"{s[3]:.4f}",
                     "-" if sq is None else f"{sq[3]:.4f}"] + ctx.hw_vals(c))
    ctx.page.table(["checkpoint", "model", "float acc %", "int8 acc %", "MACs",
                    "weights and biases", "param memory float32 MiB",
                    "param memory int8 MiB", "seed accuracy", "seed MACs", "seed MiB",
                    "seed int8 MiB"] + ctx.hw_cols(), rows)
    ctx.page.p("Parameter memory as the seed counts it: the convolution and dense layers' "
               "weights and biases (BatchNorm not included) in MiB (2^20 bytes), 4 bytes each "
               "in float32 (cnn-matlab: 96,835 x 4 / 2^20 = 0.3694, the seed's figure); int8: "
               "1 byte per weight and 4 per (int32) bias. The seed's int8 figure (0.0521 MiB "
               "for cnn-slim) follows neither this nor any other simple count we found.")


def _claims(ctx: PageContext) -> None:
    from .claims import section

    section(ctx)


_OWN = {"table-iv": _table_iv, "gru-cnn": _gru_cnn, "slimming": _slimming, "claims": _claims}


def sections() -> list[tuple[int, str, object]]:
    """(order, kind or "", render(ctx, checkpoints)) of every section, in page order."""
    out = [(ORDER[k], "", lambda ctx, cks, f=f: f(ctx)) for k, f in _OWN.items()]
    for kind, m in METHODS.items():
        if m.report is not None:
            out += [(s.order, kind, s.render) for s in m.report.sections]
    return sorted(out, key=lambda s: s[0])


def build_page(recipe: dict, cks: list[Checkpoint], out: Path, seconds: float,
               gru: dict | None = None) -> Page:
    from amchw import plots

    pg = Page()
    title = recipe.get("title", "amchw report")
    targets = [t.name for t in hardware_targets(recipe)]
    exps = {e["name"]: e for e in recipe["experiment"]}
    by_exp: dict[str, list[Checkpoint]] = {}
    for c in cks:
        by_exp.setdefault(c.experiment, []).append(c)
    final = {k: v[-1] for k, v in by_exp.items()}
    pg.h(1, title)
    if recipe.get("notes"):
        pg.p(recipe["notes"])
    trained = sum(float(c.eval.get("train_seconds", 0.0)) for c in cks)
    pg.p(f"{len(cks)} checkpoints from {len(exps)} experiments, measured on "
         f"{', '.join(targets)}; their training took {trained / 60:.1f} min in all (the "
         f"epochs' recorded times), and this invocation of the report {seconds / 60:.1f} min "
         "(less when it reused checkpoints). Accuracies are on each "
         "checkpoint's test split (integer IR = what the hardware computes; float = Brevitas). "
         "Seed columns are the papers' published figures on the real datasets; ours are on "
         "the data named below, so compare trends, not digits.")
    rows = []
    for name, d in recipe["data"].items():
        rows.append([name, d.get("path", f"synthetic {d.get('profile')}"),
                     d.get("per_class_snr", "-"),
                     ", ".join(map(str, d["snrs"])) if "snrs" in d else "profile grid"])
    pg.table(["data", "source", "frames per class and SNR", "SNRs (dB)"], rows)

    pg.h(2, "All checkpoints")
    rows = []
    for c in cks:
        v = c.info.get("verify")
        ver = "-" if v is None else ("OK" if v["forbidden"] == 0 else
                                     f"{v['forbidden']} forbidden") + f" ({v['frames']})"
        rows.append([c.label, c.kind, c.info.get("model", ""), f"{c.info['parameters']:,}",
                     _pct(_acc(c, "float")), _pct(_acc(c)), _pct(_best_snr(c)), ver]
                    + _hw_vals(c, targets))
    pg.table(["checkpoint", "method", "model", "non-zero parameters", "float acc %",
              "int acc %", "best-SNR int acc %", "amchw verify (frames)"] + _hw_cols(targets),
             rows)
    pg.p("Cycles and energy per frame at batch 1; a compressed checkpoint is simulated with "
         "its compressed storage (format in brackets; zero weights skipped or PQ look-ups).")

    groups: dict[str, list[Checkpoint]] = {}
    for c in cks:
        groups.setdefault(c.data, []).append(c)
    pg.h(2, "Accuracy vs SNR")
    for i, (data, members) in enumerate(groups.items()):
        png = out / f"accuracy_{i}.png"
        res = [dict(c.eval, label=c.label) for c in members]
        plots.accuracy_vs_snr(res, png)
        pg.img(png.name, f"accuracy vs SNR on {Path(data).name}")

    ctx = PageContext(pg, recipe, cks, exps, final, targets, out, gru)
    for _, kind, render in sections():
        mine = [c for c in cks if c.kind == kind] if kind else cks
        if mine:
            render(ctx, mine)
    return pg
