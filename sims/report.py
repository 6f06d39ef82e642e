"""A SimReport as a text table, CSV rows or a PNG plot (files are written atomically)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from amchw.fileio import atomic_write

from .simulate import SimReport, dataflow_name

CSV_FIELDS = ("node", "op", "unit", "M", "K", "N", "groups", "folds", "macs", "vector_ops",
              "compute_cycles", "stall_cycles", "cycles", "utilization", "mapping_efficiency",
              "weight_bytes", "sram_bytes", "dram_bytes", "energy_mac_pj", "energy_reg_pj",
              "energy_sram_pj", "energy_dram_pj", "energy_vector_pj", "energy_static_pj",
              "energy_pj", "stepped_cycles", "stepped_outputs_equal")


def _si(v: float) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= f:
            return f"{v / f:.2f}{unit}"
    return f"{v:.0f}"


def format_table(rep: SimReport) -> str:
    t = rep.target
    lines = [f"simulate {rep.model} on {t.name}: {t.rows}x{t.cols} array, "
             f"{dataflow_name(rep.dataflow)} ({rep.dataflow}), {rep.timing} timing, "
             f"{t.freq_mhz:g} MHz, batch {rep.batch}"]
    stepped = rep.stepped is not None
    hdr = (f"{'layer':<10} {'op':<10} {'GEMM MxKxN':<18} {'folds':>7} {'compute':>10} "
           f"{'stall':>8} {'util%':>6} {'map%':>6} {'MACs':>9} {'SRAM B':>9} {'DRAM B':>9} "
           f"{'energy nJ':>10}")
    if stepped:
        hdr += f" {'stepped':>10} {'out=':>4}"
    lines.append(hdr)
    for r in rep.layers:
        if r.unit == "array":
            shape = f"{r.M}x{r.K}x{r.N}" + (f" g{r.groups}" if r.groups > 1 else "")
            folds = str(r.folds)
            util = f"{100 * r.utilization:.1f}"
            mapp = f"{100 * r.mapping_efficiency:.1f}"
            macs = _si(r.macs)
        else:
            shape = f"vector {_si(r.vector_ops)} ops"
            folds = util = mapp = macs = ""
        line = (f"{r.node:<10} {r.op:<10} {shape:<18} {folds:>7} {r.compute_cycles:>10,} "
                f"{r.stall_cycles:>8,} {util:>6} {mapp:>6} {macs:>9} "
                f"{_si(r.traffic.sram_bytes):>9} {_si(r.traffic.dram_bytes):>9} "
                f"{r.energy.total / 1e3:>10.2f}")
        if stepped:
            if r.stepped_cycles is None:
                line += f" {'':>10} {'':>4}"
            else:
                line += (f" {r.stepped_cycles:>10,} "
                         f"{'yes' if r.stepped_outputs_equal else 'NO':>4}")
        lines.append(line)
    tot = rep.totals()
    e = tot["energy_pj"]
    lines.append("")
    lines.append(f"total cycles {tot['cycles']:,} ({tot['stall_cycles']:,} DRAM stall): "
                 f"latency {tot['latency_us']:.2f} us at {t.freq_mhz:g} MHz, "
                 f"{tot['inferences_per_s']:,.0f} inferences/s")
    lines.append(f"MACs {tot['macs']:,} ({tot['macs_per_inference']:,} per inference): "
                 f"{100 * tot['physical_limit_fraction']:.1f}% of the physical limit "
                 f"(MACs / {t.rows * t.cols} PEs = {tot['macs'] / (t.rows * t.cols):,.0f} cycles)")
    lines.append(f"energy per inference {tot['energy_per_inference_uj']:.3f} uJ = "
                 + ", ".join(f"{k} {100 * e[k] / e['total']:.1f}%" if e["total"] else f"{k} 0%"
                             for k in ("mac", "reg", "sram", "dram", "vector", "static")))
    lines.append(f"traffic: SRAM {tot['sram_bytes']:,} B, DRAM {tot['dram_bytes']:,} B; "
                 f"weights {tot['weight_bytes']:,} B")
    for r in rep.layers:
        sp = r.sparse
        if sp is None:
            continue
        alg = sp.algorithmic_macs or 1
        lines.append(
            f"sparse {r.node}: {sp.format} weights on {rep.dataflow} -> zeros {sp.handling}; "
            f"MACs algorithmic {sp.algorithmic_macs:,}, actual {sp.actual_macs:,}, skipped "
            f"{100 * sp.skipped_macs / alg:.1f}%, gated {100 * sp.gated_macs / alg:.1f}%; "
            f"PE-slot efficiency {sp.slot_efficiency:.2f}; weights {sp.weight_bits // 8:,} B "
            f"+ metadata {-(-sp.metadata_bits // 8):,} B")
    ic = rep.integer_check
    if ic is not None:
        verdict = "match" if ic["equal"] else f"DIFFER ({ic['mismatches']} values, first at " \
                                              f"{ic['first_mismatch']})"
        what = f" ({ic['inputs']})" if ic.get("inputs") else ""
        lines.append(f"integer check: Numba kernels vs IR interpreter on {ic['frames']} sample "
                     f"frames{what}, {ic['values']:,} values of {ic['nodes']} nodes: {verdict}"
                     + (" (read from the cache: this graph and these frames matched in an "
                        "earlier run; AMCHW_CACHE=off checks again)" if ic.get("cached")
                        else ""))
    st = rep.stepped
    if st is not None:
        rate = st["pe_cycles_per_s"]
        lines.append(
            f"stepped array on {st['frames']} frame(s): accumulators "
            f"{'equal the kernels' if st['outputs_equal'] else 'DIFFER from the kernels'}, "
            f"cycles {'equal' if st['cycles_equal_closed_form'] else 'DIFFER from'} the closed "
            f"form; {st['pe_cycles']:,} PE-cycles in {st['seconds']:.2f} s"
            + (f" ({rate / 1e6:.1f}M PE-cycles/s)" if rate else ""))
    return "\n".join(lines)


def _rows(rep: SimReport):
    for r in rep.layers:
        d = r.to_dict()
        e = d["energy_pj"]
        yield {
            **{k: d[k] for k in CSV_FIELDS if k in d},
            "sram_bytes": r.traffic.sram_bytes, "dram_bytes": r.traffic.dram_bytes,
            "energy_mac_pj": e["mac"], "energy_reg_pj": e["reg"], "energy_sram_pj": e["sram"],
            "energy_dram_pj": e["dram"], "energy_vector_pj": e["vector"],
            "energy_static_pj": e["static"], "energy_pj": e["total"],
        }


def write_csv(rep: SimReport, path) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in _rows(rep):
        w.writerow(row)
    return atomic_write(path, buf.getvalue().encode())


def write_plot(rep: SimReport, path) -> Path:
    """Cycles (of the whole batch, as the table) and energy per inference (the batch's
    energy divided by the batch, as the totals) per layer, as two bar charts, to a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'amchw[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.node for r in rep.layers]
    x = range(len(names))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(6.0, 0.35 * len(names)), 6.5), sharex=True)
    a1.bar(x, [r.compute_cycles for r in rep.layers], label="compute")
    a1.bar(x, [r.stall_cycles for r in rep.layers],
           bottom=[r.compute_cycles for r in rep.layers], label="DRAM stall")
    a1.set_ylabel(f"cycles (batch of {rep.batch})" if rep.batch > 1 else "cycles")
    a1.set_yscale("log")
    a1.legend(fontsize=8)
    t = rep.target
    a1.set_title(f"{rep.model} on {t.name} {t.rows}x{t.cols} {rep.dataflow} ({rep.timing})")
    bottom = [0.0] * len(names)
    for part in ("mac", "reg", "sram", "dram", "vector", "static"):
        vals = [getattr(r.energy, part) / 1e3 / rep.batch for r in rep.layers]
        a2.bar(x, vals, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, vals)]
    a2.set_ylabel("energy per inference (nJ)")
    a2.legend(fontsize=8, ncol=3)
    a2.set_xticks(list(x))
    a2.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def compare_table(rows: list[dict], target, timing: str) -> str:
    """amchw simulate --compare: one line per model and dataflow; '*' marks each model's
    fastest dataflow and '+' its most frugal (least energy)."""
    w = max([5] + [len(r["model"]) for r in rows])
    out = [f"{target.name} {target.rows}x{target.cols}, {timing} timing",
           f"{'model':<{w}} {'format':<8} {'df':<3} {'cycles':>12} {'energy uJ':>11} "
           f"{'weights B':>11} {'MACs':>13} {'DRAM B':>11}"]
    best_c: dict = {}
    best_e: dict = {}
    for r in rows:
        m = r["model"]
        if m not in best_c or r["cycles"] < best_c[m]["cycles"]:
            best_c[m] = r
        if m not in best_e or r["energy_uj"] < best_e[m]["energy_uj"]:
            best_e[m] = r
    for r in rows:
        mark = ("*" if best_c[r["model"]] is r else " ") + ("+" if best_e[r["model"]] is r
                                                            else " ")
        out.append(f"{r['model']:<{w}} {r['format']:<8} {r['dataflow']:<3} {r['cycles']:>12,} "
                   f"{r['energy_uj']:>11.3f} {r['weight_bytes']:>11,} {r['macs']:>13,} "
                   f"{r['dram_bytes']:>11,} {mark}")
    out.append("* fastest dataflow of the model, + least energy")
    seen = set()
    for r in rows:   # what each version really is: which layers its format reached
        if r["format"] == "dense" or r["model"] in seen:
            continue
        seen.add(r["model"])
        stored = r.get("stored_in_format", [])
        line = (f"{r['model']}: {len(stored)} layer(s) stored as {r['format']}"
                + (f" ({', '.join(stored)})" if stored else " - the numbers are the dense ones"))
        kept = r.get("kept_dense", {})
        if kept:
            line += "; kept dense: " + "; ".join(f"{k} ({v})" for k, v in kept.items())
        out.append(line)
    return "\n".join(out)
