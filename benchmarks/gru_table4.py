#!/usr/bin/env python
"""The GRU-CNN seed's Table 4 re-made on amchw's hardware models: latency per frame of the
GRU-CNN (dense and magnitude-pruned to the seed's 0.7) against the zoo's other networks for
2x1024 frames, simulated on every target preset (batch 1) and measured on this CPU (the integer
kernels, amchw.ir.interp.run(graph, x, "fast")), beside the seed's own figures.

Per model: build(name, seed) -> (for NAME@S) magnitude_prune to sparsity S, weights of the
GRU's cell included -> calibrate on synthetic frames -> lower -> (pruned) weights stored in
--format on every layer at least --min-sparsity sparse. Parameters and footprint are counted
as the seed counts them (amchw.compress.imp.footprint: every trainable tensor minus pruned
zeros, one byte each at 8 bits). Cycles, latency and energy per frame come from
sims.simulate.simulate(graph, target) on each preset. CPU time: the fast integer executor at
batch 1 and --batch, after checking its output against the reference interpreter bit for bit
on the same frames (exit 1 if they differ); median of the timed calls, per frame.

Weights are random (calibrated): a dense layer's cycles do not depend on them, a pruned one's
only on where its zeros are. Accuracy is not measured here (docs/recipes/gru-cnn.toml trains).

    python benchmarks/gru_table4.py                 # all presets, default models
    python benchmarks/gru_table4.py --models gru-cnn@0.7 vgg10 --json t4.json

This is a benchmark, not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = ("gru-cnn@0.7", "gru-cnn", "gru-cnn-50", "vgg10", "sbcnn-student", "sbcnn-teacher",
          "cnn-slim", "cnn-matlab")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME[@SPARSITY]")
    p.add_argument("--targets", nargs="+", default=None, help="presets (default: all)")
    p.add_argument("--format", default="csr", help="sparse weight format of pruned layers")
    p.add_argument("--min-sparsity", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=64, help="the second measured batch size")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds timed per case")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", default=None)
    return p.parse_args(argv)


def measure(spec: str, args, targets) -> dict:
    import numpy as np
    import torch

    from amchw.compress.imp import footprint
    from amchw.compress.prune import magnitude_prune
    from amchw.ir.interp import run
    from amchw.ir.sparse import set_format
    from amchw.lower.brevitas import lower
    from amchw.models import build
    from amchw.data.synthetic import frames_for
    from amchw.models.calibrate import calibrate
    from sims.simulate import simulate

    name, _, sp = spec.partition("@")
    model = build(name, seed=args.seed)
    if sp:
        magnitude_prune(model, float(sp))
    calib = frames_for(name, 32, seed=args.seed + 1000)
    model = calibrate(model, calib, seed=args.seed).eval()
    fp = footprint(model, 8)
    g = lower(model, torch.from_numpy(calib[:2]), name=name)
    if sp:
        g, _ = set_format(g, args.format, args.min_sparsity)
    row = {"model": spec, "parameters": fp["parameters"],
           "footprint_kb": fp["footprint_bytes"] / 1000, "targets": {}}
    for t in targets:
        tot = simulate(g, t).totals()
        row["targets"][t.name] = {"cycles": tot["cycles"],
                                  "latency_ms": tot["latency_us"] / 1000,
                                  "energy_uj": tot["energy_per_inference_uj"]}
    X = frames_for(name, args.batch, seed=args.seed + 2000)
    row["cpu_ms"] = {}
    for b in (1, args.batch):
        x = np.ascontiguousarray(X[:b])
        ref = run(g, x, "ref")
        out = run(g, x, "fast")                 # warm-up (compiles), and the check
        row.setdefault("exact", True)
        row["exact"] &= bool(np.array_equal(out, ref))
        times, start = [], time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < args.min_time:
            t1 = time.perf_counter()
            out = run(g, x, "fast")
            times.append(time.perf_counter() - t1)
        row["exact"] &= bool(np.array_equal(out, ref))
        row["cpu_ms"][b] = statistics.median(times) / b * 1000
    return row


def main(args) -> int:
    import numba

    from amchw import seeds
    from sims.hardware import PRESETS, get_target

    if args.threads:
        numba.set_num_threads(args.threads)
    targets = [get_target(n) for n in (args.targets or list(PRESETS))]
    t0 = time.perf_counter()
    rows = []
    for spec in args.models:
        rows.append(measure(spec, args, targets))
        r = rows[-1]
        print(f"# {spec}: {time.perf_counter() - t0:.0f} s, integer kernels "
              f"{'bit-exact' if r['exact'] else 'DIFFER from the reference'}", flush=True)
    b = args.batch
    head = ["model", "parameters", "footprint kB"] + [
        f"{t.name} {c}" for t in targets for c in ("latency ms", "uJ/frame")] + [
        "CPU ms/frame (batch 1)", f"CPU ms/frame (batch {b})"]
    print(f"\nnumba threads {numba.get_num_threads()}, load average {os.getloadavg()}\n")
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for r in rows:
        cells = [r["model"], f"{r['parameters']:,}", f"{r['footprint_kb']:.1f}"]
        for t in targets:
            v = r["targets"][t.name]
            cells += [f"{v['latency_ms']:.3f}", f"{v['energy_uj']:.2f}"]
        cells += [f"{r['cpu_ms'][1]:.3f}", f"{r['cpu_ms'][b]:.3f}"]
        print("| " + " | ".join(cells) + " |")
    print("\nThe seed's Table 4 (its authors' machine, float models, ms per sample):\n")
    print("| model | structure | avg % | highest % | parameters | kB | ms/sample |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for name, v in list(seeds.GRU_TABLE_4.items()) + [
            ("Our Model (sparsity 0.7)", ("CNN+GRU",) + seeds.GRU_TABLE_4_OURS)]:
        print(f"| {name} | " + " | ".join(f"{x:,}" if isinstance(x, int) else str(x)
                                           for x in v) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "numba_threads": numba.get_num_threads()}, f, indent=1)
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(parse_args()))
