#!/usr/bin/env python
"""Measured CPU time of each early-exit path beside its simulated cycles, as the early-exit
seed measures wall-clock inference time per exit.

For each early-exit zoo model (ee-v0..ee-v3, random weights calibrated on synthetic frames:
the time of a path does not depend on the weights) and the ee-baseline without exits:

  exit path   the nodes the early exit's logits and its decision need (trunk, exit head,
              EntropyExit): what a frame that leaves at the exit costs
  full path   the whole graph (trunk, exit head and decision, long branch): a frame that
              goes on to the final classifier

Both are run by the fused integer executor (amchw.ir.interp.run(graph, x, "fast")) at batch 1
and --batch; before timing, each path's outputs are checked bit for bit against the reference
interpreter on the same frames (exit status 1 if any differs). Time: median of the timed
calls (at least --min-time seconds and 5 calls), per frame. Simulated: sims.early_exit's split
of simulate(graph, target) into the exit path's layers and the rest, cycles and latency per
frame at batch 1, on each --targets preset. The ratio columns (exit / full) compare the
measured saving with the simulated one.

    python benchmarks/bench_early_exit.py
    python benchmarks/bench_early_exit.py --models ee-v1 --batch 256 --json ee.json

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

MODELS = ("ee-v0", "ee-v1", "ee-v2", "ee-v3")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--targets", nargs="+", default=["edge-asic-45nm", "zynq7020"])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", default=None)
    return p.parse_args(argv)


def timed(fn, min_time):
    out = fn()
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def measure(name, args, targets):
    import numpy as np
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.ir.early_exit import add_exit_rule, exit_path
    from amchw.ir.interp import run
    from amchw.lower.brevitas import lower
    from amchw.models import build
    from amchw.models.calibrate import calibrate
    from sims.early_exit import split_layers
    from sims.simulate import simulate

    calib = frames_for(name, 64, seed=args.seed + 1000)
    model = calibrate(build(name, seed=args.seed), calib, seed=args.seed).eval()
    g = lower(model, torch.from_numpy(calib[:2]), name=name)
    g = add_exit_rule(g)
    exit_g = exit_path(g, "out0")
    X = frames_for(name, args.batch, seed=args.seed + 2000)
    row = {"model": name, "exact": True, "cpu_ms": {}, "targets": {}}
    for path, graph in (("exit", exit_g), ("full", g)):
        for b in (1, args.batch):
            x = np.ascontiguousarray(X[:b])
            ref = run(graph, x, "ref")
            sec, out = timed(lambda: run(graph, x, "fast"), args.min_time)
            same = all(np.array_equal(a, r) for a, r in zip(out, ref))
            row["exact"] &= bool(same)
            row["cpu_ms"][f"{path}@{b}"] = sec / b * 1000
    for t in targets:
        split = split_layers(g, simulate(g, t))
        mhz = t.freq_mhz
        row["targets"][t.name] = {"exit_cycles": split.cycles(1.0),
                                  "full_cycles": split.full_cycles,
                                  "exit_ms": split.cycles(1.0) / mhz / 1000,
                                  "full_ms": split.full_cycles / mhz / 1000}
    return row


def main(args):
    import numba

    from sims.hardware import get_target

    if args.threads:
        numba.set_num_threads(args.threads)
    targets = [get_target(n) for n in args.targets]
    rows = []
    t0 = time.perf_counter()
    for name in args.models:
        rows.append(measure(name, args, targets))
        print(f"# {name}: {time.perf_counter() - t0:.0f} s, "
              f"{'bit-exact' if rows[-1]['exact'] else 'DIFFERS from the reference'}",
              flush=True)
    b = args.batch
    head = ["model", "CPU exit ms (b1)", "CPU full ms (b1)", "exit/full", f"CPU exit ms (b{b})",
            f"CPU full ms (b{b})", "exit/full"]
    for t in targets:
        head += [f"{t.name} exit ms", f"{t.name} full ms", "exit/full"]
    print(f"\nnumba threads {numba.get_num_threads()}, load average {os.getloadavg()}; "
          "times per frame\n")
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for r in rows:
        c = r["cpu_ms"]
        cells = [r["model"]]
        for bb in (1, b):
            e, f = c[f"exit@{bb}"], c[f"full@{bb}"]
            cells += [f"{e:.4f}", f"{f:.4f}", f"{e / f:.2f}"]
        for t in targets:
            v = r["targets"][t.name]
            cells += [f"{v['exit_ms']:.4f}", f"{v['full_ms']:.4f}",
                      f"{v['exit_cycles'] / v['full_cycles']:.2f}"]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(parse_args()))
