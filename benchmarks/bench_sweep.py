#!/usr/bin/env python
"""Design points per minute of `amchw sweep` against the shell loop it replaces.

The grid: VGG10 and VTCNN2 (random weights, calibrated), dense, 90% csc and PQ (P = 2, K =
256) weights, three targets, square and rectangular arrays from 4 to 64 PEs a side, three
dataflows, two batch sizes, two DRAM bandwidths, three clocks and three SRAM sizes (--small: a
ninth of it). The sweep runs on a Dask LocalCluster of --workers processes, from a fresh
folder; its time is split into the preparation (models lowered, formats applied) and the
points (cluster start, simulation, Parquet parts, merge, answers), and the rate is points per
minute of the points phase and of the whole run.

The peer: what a user does without the sweep, one `amchw simulate MODEL --target T --array
RxC --dataflow D --batch B [--sparse-format csc --min-sparsity 0.5]` process per point. A
sample of --peer-calls such calls (spread over the grid) is timed and the mean per call
extrapolated to the grid. (A PQ point has no such call: `amchw simulate` cannot apply PQ to a
zoo model, so those points are counted at the mean of the others.)

    python benchmarks/bench_sweep.py                 # ~48,600 points
    python benchmarks/bench_sweep.py --small --json out.json

A benchmark, not a test: it asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIDES = (4, 8, 16, 32, 64)


def spec_text(small: bool) -> str:
    arrays = [f"{r}x{c}" for r in SIDES for c in SIDES]
    return "\n".join([
        'title = "bench_sweep"',
        'models = ["vgg10", "vtcnn2"]',
        'formats = ["dense", "csc@0.9", "pq2:256"]',
        'targets = ["edge-asic-45nm", "zynq7020", "zcu104"]',
        f"arrays = {json.dumps(arrays)}",
        'dataflows = ["os", "ws", "is"]',
        "batches = [1, 16]",
        "dram_bytes_per_cycle = [4, 16]",
        "freq_mhz = [100, 200, 400]" if not small else "",
        "sram_kib = [32, 64, 256]" if not small else "",
    ]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--small", action="store_true")
    p.add_argument("--peer-calls", type=int, default=6)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    from amchw.sweep import load_spec, run_sweep

    amchw = str(Path(sys.executable).with_name("amchw"))
    with tempfile.TemporaryDirectory() as tmp:
        sp = Path(tmp) / "grid.toml"
        sp.write_text(spec_text(a.small))
        spec = load_spec(sp)
        marks = {}

        def log(msg):
            if msg.startswith("[sweep]"):
                marks["prepared"] = time.perf_counter()

        t0 = time.perf_counter()
        summary = run_sweep(spec, Path(tmp) / "out", workers=a.workers, log=log)
        t1 = time.perf_counter()
        n = summary["points"]
        prep, points = marks["prepared"] - t0, t1 - marks["prepared"]
        # the peer: one amchw simulate process per point, on a sample spread over the grid
        calls = []
        combos = [(m, f, t, ar, df, b) for m, _ in spec.models for f in ("dense", "csc@0.9")
                  for t in spec.targets for ar in spec.arrays for df in spec.dataflows
                  for b in spec.batches]
        step = max(1, len(combos) // a.peer_calls)
        for m, f, t, ar, df, b in combos[::step][:a.peer_calls]:
            cmd = [amchw, "simulate", m, "--target", t, "--array", ar, "--dataflow", df,
                   "--batch", str(b), "--json"]
            if f != "dense":
                # the zoo model's random weights have no zeros: the shell user would prune
                # first; the per-call cost is what is measured here
                cmd += ["--sparse-format", "csc", "--min-sparsity", "0.5"]
            s = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            calls.append(time.perf_counter() - s)
            if r.returncode not in (0, 1):
                print(r.stderr[-2000:], file=sys.stderr)
                return 2
    per_call = sum(calls) / len(calls)
    peer_total = per_call * n
    res = {"points": n, "workers": a.workers, "cpus": os.cpu_count(),
           "prepare_s": prep, "points_s": points, "total_s": t1 - t0,
           "points_per_min_points_phase": n / points * 60,
           "points_per_min_total": n / (t1 - t0) * 60,
           "peer_s_per_call": per_call, "peer_calls_timed": len(calls),
           "peer_total_s_extrapolated": peer_total,
           "speedup_vs_peer": peer_total / (t1 - t0), "errors": summary["errors"],
           "load_average": os.getloadavg()}
    print(f"{n:,} points on {a.workers} workers: prepare {prep:.1f} s, points {points:.1f} s "
          f"-> {res['points_per_min_points_phase']:,.0f} points/min (points phase), "
          f"{res['points_per_min_total']:,.0f} points/min (whole run)")
    print(f"shell loop of amchw simulate: {per_call:.2f} s per call ({len(calls)} timed) -> "
          f"{peer_total / 3600:.1f} h for the grid; the sweep is {res['speedup_vs_peer']:,.0f}x "
          f"faster (load average {res['load_average'][0]:.2f})")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
