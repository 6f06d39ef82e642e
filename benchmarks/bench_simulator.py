#!/usr/bin/env python
"""Speed of the simulator, in one run: the closed-form model, the stepped array and (if it is
installed in its own virtual environment) SCALE-Sim v2, on the same GEMM layers of VGG10 and
VTCNN2 (batch 1), for the three dataflows, in SCALE-Sim mode (sequential folds) so that all
three count the same cycles.

    python benchmarks/bench_simulator.py                              # closed form + stepped
    python benchmarks/bench_simulator.py --scalesim-python PATH \\
        --scalesim-max-cycles 1200000 --json bench_sim.json

PATH is the python of a separate virtual environment holding SCALE-Sim v2; the docstring of
benchmarks/scalesim/run_scalesim_v2.py says how to build it.

Per case it checks that the stepped array and SCALE-Sim report the closed form's cycle count
(a mismatch is printed and makes the exit status 1), and reports wall seconds. The closed form
is timed over many repetitions (it takes microseconds); the stepped array after a warm-up
compile, as the median of --stepped-reps runs (3; every run's outputs checked); SCALE-Sim
once per case (it takes seconds to minutes). Ratios are SCALE-Sim seconds /
our seconds over the cases SCALE-Sim ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def zoo_layers(models):
    """(model.layer, M, K, N) of every Conv/Dense of the zoo models (batch 1, groups 1)."""
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.lower.brevitas import lower
    from amchw.models import build
    from amchw.models.calibrate import calibrate
    from amchw.sims.mapping import GemmView, layers

    out = []
    for name in models:
        fr = frames_for(name, 16, seed=0)
        m = calibrate(build(name, seed=0), torch.as_tensor(fr), seed=0)
        g = lower(m, torch.as_tensor(fr[:2]), name=name)
        for lay in layers(g, 1):
            if isinstance(lay, GemmView):
                if lay.groups != 1:
                    raise SystemExit(f"{name}.{lay.node}: grouped layers are not benchmarked")
                out.append((f"{name}.{lay.node}", lay.M, lay.K, lay.N))
    return out


def time_closed_form(M, K, N, R, C, df, reps):
    from amchw.sims.timing import gemm_cycles

    t0 = time.perf_counter()
    for _ in range(reps):
        ft = gemm_cycles(M, K, N, R, C, df, "scalesim")
    return ft.cycles, (time.perf_counter() - t0) / reps


def time_stepped(M, K, N, R, C, df, rng, reps=3):
    from amchw.sims.stepped import stepped_gemm

    A = rng.integers(-128, 128, (M, K))
    B = rng.integers(-128, 128, (K, N))
    bias = rng.integers(-1000, 1000, N)
    ok = True
    secs = []
    for _ in range(reps):   # the median of `reps` runs (a run of a small layer takes ~1 ms)
        t0 = time.perf_counter()
        r = stepped_gemm(A, B, bias, R, C, df, "scalesim")
        secs.append(time.perf_counter() - t0)
        ok = ok and bool(np.array_equal(r.out, A @ B + bias))
    return r.cycles, float(np.median(secs)), r.counts["pe_cycles"], ok


def run_scalesim(python, cases, out_json, commit=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"name": n, "M": M, "N": N, "K": K, "rows": R, "cols": C, "dataflow": df}
                   for n, M, K, N, R, C, df in cases], f)
        lst = f.name
    try:
        cmd = [python, str(HERE / "scalesim" / "run_scalesim_v2.py"), "--cases-json", lst,
               "--time", "--out", out_json]
        if commit:
            cmd += ["--commit", commit]
        subprocess.run(cmd, check=True)
    finally:
        os.unlink(lst)
    with open(out_json) as f:
        return json.load(f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=["vgg10", "vtcnn2"])
    p.add_argument("--arrays", nargs="*", default=["4x4", "16x16", "32x32"])
    p.add_argument("--dataflows", nargs="*", default=["os", "ws", "is"])
    p.add_argument("--reps", type=int, default=2000, help="closed-form repetitions per case")
    p.add_argument("--stepped-reps", type=int, default=3,
                   help="stepped-array runs per case (its median is reported)")
    p.add_argument("--scalesim-python", default=None,
                   help="python of a virtual environment where SCALE-Sim v2 is installed")
    p.add_argument("--scalesim-max-cycles", type=int, default=1_200_000,
                   help="skip SCALE-Sim on cases longer than this (it runs ~3-10k cycles/s)")
    p.add_argument("--scalesim-commit", default=None,
                   help="SCALE-Sim commit to record when its source is not a git checkout")
    p.add_argument("--json", default=None, help="write every figure to this file")
    a = p.parse_args()

    from amchw.sims.hardware import parse_array

    arrays = [parse_array(s) for s in a.arrays]
    gemms = zoo_layers(a.models)
    cases = [(n, M, K, N, R, C, df) for n, M, K, N in gemms for R, C in arrays
             for df in a.dataflows]
    rng = np.random.default_rng(0)
    from amchw.sims.stepped import stepped_gemm

    # compile outside the timing
    stepped_gemm(np.ones((2, 2), int), np.ones((2, 2), int), 0, 2, 2, "os")
    stepped_gemm(np.ones((2, 2), int), np.ones((2, 2), int), 0, 2, 2, "ws")
    rows, bad = [], 0
    t_all = time.perf_counter()
    for n, M, K, N, R, C, df in cases:
        cyc, cf_s = time_closed_form(M, K, N, R, C, df, a.reps)
        s_cyc, s_s, pe, ok = time_stepped(M, K, N, R, C, df, rng, a.stepped_reps)
        if s_cyc != cyc or not ok:
            bad += 1
            print(f"MISMATCH {n} {R}x{C} {df}: stepped {s_cyc} vs closed form {cyc}, "
                  f"outputs {'ok' if ok else 'differ'}")
        rows.append({"case": n, "M": M, "K": K, "N": N, "rows": R, "cols": C, "dataflow": df,
                     "cycles": cyc, "closed_form_s": cf_s, "stepped_s": s_s,
                     "stepped_pe_cycles": pe})
    ours_s = time.perf_counter() - t_all
    cf_total = sum(r["closed_form_s"] for r in rows)
    st_total = sum(r["stepped_s"] for r in rows)
    pe_total = sum(r["stepped_pe_cycles"] for r in rows)
    print(f"{len(rows)} cases ({len(gemms)} layers x {len(arrays)} arrays x "
          f"{len(a.dataflows)} dataflows), {sum(r['cycles'] for r in rows):,} cycles in all")
    print(f"closed form: {cf_total * 1e3:.3f} ms for all cases "
          f"({cf_total / len(rows) * 1e6:.2f} us per case)")
    print(f"stepped:     {st_total:.2f} s for all cases, {pe_total:,} PE-cycles, "
          f"{pe_total / st_total / 1e6:.1f}M PE-cycles/s, "
          f"{sum(r['cycles'] for r in rows) / st_total / 1e6:.2f}M array cycles/s")
    result = {"cases": rows, "closed_form_total_s": cf_total, "stepped_total_s": st_total,
              "stepped_pe_cycles_per_s": pe_total / st_total, "ours_wall_s": ours_s,
              "mismatches": bad}
    if a.scalesim_python:
        todo = [c for c, r in zip(cases, rows) if r["cycles"] <= a.scalesim_max_cycles]
        print(f"SCALE-Sim v2 on {len(todo)} of {len(cases)} cases "
              f"(those up to {a.scalesim_max_cycles:,} cycles) ...", flush=True)
        with tempfile.TemporaryDirectory() as work:
            ss = run_scalesim(a.scalesim_python, todo, os.path.join(work, "ss.json"),
                              a.scalesim_commit)
        by = {(r["case"], r["rows"], r["cols"], r["dataflow"]): r for r in rows}
        ss_s = cf_s = st_s = 0.0
        ss_cycles = 0
        for c in ss["cases"]:
            r = by[(c["name"], c["rows"], c["cols"], c["dataflow"])]
            if "error" in c:
                print(f"SCALE-Sim failed on {c['name']} {c['rows']}x{c['cols']} "
                      f"{c['dataflow']}: {c['error']}")
                continue
            r["scalesim_cycles"] = c["total_cycles"]
            r["scalesim_s"] = c["seconds"]
            if c["total_cycles"] != r["cycles"]:
                bad += 1
                print(f"MISMATCH {c['name']} {c['rows']}x{c['cols']} {c['dataflow']}: SCALE-Sim "
                      f"{c['total_cycles']} vs closed form {r['cycles']}")
            ss_s += c["seconds"]
            cf_s += r["closed_form_s"]
            st_s += r["stepped_s"]
            ss_cycles += c["total_cycles"]
        print(f"SCALE-Sim v2: {ss_s:.1f} s for {ss_cycles:,} cycles "
              f"({ss_cycles / ss_s:,.0f} cycles/s)")
        print(f"on the same cases: closed form {ss_s / cf_s:,.0f}x faster than SCALE-Sim v2, "
              f"stepped array {ss_s / st_s:,.0f}x faster")
        result.update({"scalesim_meta": ss["meta"], "scalesim_total_s": ss_s,
                       "closed_form_speedup": ss_s / cf_s, "stepped_speedup": ss_s / st_s,
                       "mismatches": bad})
    if a.json:
        from amchw.fileio import atomic_write

        atomic_write(a.json, json.dumps(result, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
