"""A sweep's design points: the grid enumerated in a fixed order (point id = position), the
targets each point runs on, and evaluate_chunk, the task a Dask worker runs on a range of
point ids (one closed-form simulation per point, amchw.sims.simulate). This module imports
no torch, so workers start fast."""

from __future__ import annotations

import itertools
from dataclasses import replace

from .spec import Spec

#: the input columns of a row, then the figures (energies per inference, in uJ)
INPUTS = ("point", "model", "format", "target", "array", "rows", "cols", "freq_mhz",
          "dram_bytes_per_cycle", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib",
          "dataflow", "timing", "batch", "exit_threshold")
ENERGY_PARTS = ("mac", "reg", "sram", "dram", "vector", "static")
FIGURES = ("cycles", "stall_cycles", "latency_us", "inferences_per_s", "macs", "utilisation",
           "sram_bytes", "dram_bytes", "weight_bytes", "energy_uj") + tuple(
    f"energy_{p}_uj" for p in ENERGY_PARTS) + ("exit_fraction",)


def columns(snrs) -> list[tuple[str, str]]:
    """(name, type) of every column: "int", "float" or "str"; accuracy per SNR as acc_<s>dB."""
    types = {"point": "int", "rows": "int", "cols": "int", "batch": "int", "cycles": "int",
             "stall_cycles": "int", "macs": "int", "sram_bytes": "int", "dram_bytes": "int",
             "weight_bytes": "int", "freq_mhz": "float", "dram_bytes_per_cycle": "float",
             "ifmap_sram_kib": "float", "filter_sram_kib": "float", "ofmap_sram_kib": "float",
             "exit_threshold": "float"}
    cols = [(c, types.get(c, "str")) for c in INPUTS]
    cols += [(c, types.get(c, "float")) for c in FIGURES]
    cols += [("accuracy", "float")] + [(f"acc_{s}dB", "float") for s in snrs]
    cols += [("error", "str")]
    return cols


def target_variants(spec: Spec) -> list:
    """The spec's targets with each override combination (arrays, clock, DRAM bandwidth,
    SRAM sizes), in grid order: a Target, or the text of why that combination is impossible."""
    from amchw.sims.hardware import TargetError, get_target, parse_array

    out: list = []
    for name, arr, f, bw, kib in itertools.product(spec.targets, spec.arrays, spec.freq_mhz,
                                                   spec.dram_bytes_per_cycle, spec.sram_kib):
        try:
            t = get_target(name)
            over: dict = {}
            if arr is not None:
                over["rows"], over["cols"] = parse_array(arr)
            if f is not None:
                over["freq_mhz"] = float(f)
            if bw is not None:
                over["dram_bytes_per_cycle"] = float(bw)
            if kib is not None:
                over.update(ifmap_sram_kib=float(kib), filter_sram_kib=float(kib),
                            ofmap_sram_kib=float(kib))
            out.append(replace(t, **over) if over else t)
        except TargetError as e:
            out.append(f"target {name}" + (f" {arr}" if arr else "") + f": {e}")
    return out


def shape(spec: Spec, n_targets: int) -> tuple[int, ...]:
    """(variants, target variants, dataflows, timings, batches, exit thresholds): the grid's
    axes."""
    return (len(spec.models) * len(spec.formats), n_targets, len(spec.dataflows),
            len(spec.timings), len(spec.batches), len(spec.exit_thresholds))


def evaluate_chunk(variants: list, targets: list, spec: Spec, snrs, start: int,
                   stop: int) -> list[dict]:
    """The rows of points start .. stop - 1. `variants`: (model, format, graph or None, error
    or None, accuracy, acc_by_snr, exits, exit output) per variant (variants.Variant's
    fields); `targets`: target_variants(spec). A point that cannot be simulated is a row with
    its error and no figures. At an exit threshold, an early-exit variant's figures are the
    expected ones per frame (sims.early_exit: the exit path always, the rest for the frames
    that do not exit) and its accuracy the combined decision's; a model without an exit
    ignores the threshold."""
    import numpy as np

    from amchw.sims.early_exit import split_layers
    from amchw.sims.hardware import TargetError
    from amchw.sims.simulate import SimulationError, simulate

    dims = shape(spec, len(targets))
    rows = []
    for pid in range(start, stop):
        vi, ti, di, mi, bi, xi = (int(i) for i in np.unravel_index(pid, dims))
        model, fmt, graph, verr, acc, by_snr, exits, exit_out = variants[vi]
        t = targets[ti]
        df, timing, batch = spec.dataflows[di], spec.timings[mi], spec.batches[bi]
        thr = spec.exit_thresholds[xi]
        frac = None
        if thr is not None and verr is None and exits is not None:
            frac, acc, by_snr = exits[float(thr)]
        elif thr is not None and verr is None and len(graph.outputs) == 2:
            verr = (f"{model}: exit thresholds need the model's data (an early-exit model's "
                    "exit fraction is measured on frames)")
        row: dict = {"point": pid, "model": model, "format": fmt, "timing": timing,
                     "batch": batch, "accuracy": acc, "exit_threshold": thr}
        row.update({f"acc_{s}dB": by_snr.get(s) for s in snrs})
        ai = (ti // (len(spec.freq_mhz) * len(spec.dram_bytes_per_cycle) * len(spec.sram_kib))
              ) % len(spec.arrays)
        row["target"] = spec.targets[ti // (len(targets) // len(spec.targets))]
        if isinstance(t, str):
            row.update(array=spec.arrays[ai], dataflow=df, error=t)
            rows.append(row)
            continue
        row.update(array=f"{t.rows}x{t.cols}", rows=t.rows, cols=t.cols, freq_mhz=t.freq_mhz,
                   dram_bytes_per_cycle=t.dram_bytes_per_cycle,
                   ifmap_sram_kib=t.ifmap_sram_kib, filter_sram_kib=t.filter_sram_kib,
                   ofmap_sram_kib=t.ofmap_sram_kib, dataflow=df or t.dataflow)
        if verr is not None:
            row["error"] = verr
            rows.append(row)
            continue
        try:
            rep = simulate(graph, t, df, timing, batch)
        except (SimulationError, TargetError) as e:
            row["error"] = str(e)
            rows.append(row)
            continue
        e = rep.energy
        if frac is not None:   # expected per frame at this threshold
            split = split_layers(graph, rep, exit_out)
            cyc = split.cycles(frac) * batch
            lat = cyc / (t.freq_mhz * 1e6)
            row.update(cycles=int(round(cyc)), latency_us=lat * 1e6,
                       inferences_per_s=batch / lat, macs=rep.macs // batch,
                       utilisation=rep.macs / t.pes / cyc, weight_bytes=sum(
                           r.weight_bytes for r in rep.layers),
                       energy_uj=split.energy_uj(frac), exit_fraction=frac)
            rows.append(row)
            continue
        row.update(cycles=rep.cycles,
                   stall_cycles=sum(r.stall_cycles for r in rep.layers),
                   latency_us=rep.latency_s * 1e6, inferences_per_s=rep.inferences_per_s,
                   macs=rep.macs // batch, utilisation=rep.physical_limit_fraction,
                   sram_bytes=sum(r.traffic.sram_bytes for r in rep.layers),
                   dram_bytes=sum(r.traffic.dram_bytes for r in rep.layers),
                   weight_bytes=sum(r.weight_bytes for r in rep.layers),
                   energy_uj=e.total / batch * 1e-6)
        row.update({f"energy_{p}_uj": getattr(e, p) / batch * 1e-6 for p in
                    ("mac", "reg", "sram", "dram", "vector", "static")})
        rows.append(row)
    return rows
