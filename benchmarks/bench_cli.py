#!/usr/bin/env python
"""Start-up to answer: `amchw simulate` run as a whole process, the way a user runs it, cold
(empty cache) and warm (second and later runs), on a QONNX file and on a zoo name.

Peers in the same run:
- the same command with the cache turned off (AMCHW_CACHE=off: torch or onnx imported, the
  model lowered, the integer check run, every time), which is what every run cost before the
  cache;
- `python -c "import numpy"`: the floor of any Python command that does numerical work.

Before timing, the script checks that cold, warm and cache-off runs print the same report
(the JSON report with the integer check's "cached" flag removed) and exits 1 if they differ.

    python benchmarks/bench_cli.py              # 5 warm runs per case, ~1 min
    python benchmarks/bench_cli.py --json out.json

Aims (issue 20): `amchw simulate model.qonnx --array 4x4` under 1 s warm, a zoo name under 2 s
warm, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AMCHW = [sys.executable, "-m", "amchw.cli"]


def run(args, env, capture=True):
    t0 = time.perf_counter()
    p = subprocess.run(args, env=env, capture_output=capture, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt, p.stdout


def report(out: str) -> dict:
    d = json.loads(out)
    d["integer_check"].pop("cached", None)
    d.pop("stepped", None)
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="warm runs per case (median reported)")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="amchw-bench-cli-"))
    cache = work / "cache"
    env = {**os.environ, "AMCHW_CACHE_DIR": str(cache)}
    off = {**env, "AMCHW_CACHE": "off"}
    rows, ok = [], True
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
        qonnx = work / "vtcnn2.qonnx"
        run(AMCHW + ["export", "vtcnn2", "-o", str(qonnx)], off)
        floor = statistics.median(run([sys.executable, "-c", "import numpy"], env)[0]
                                  for _ in range(a.reps))
        print(f"python -c 'import numpy': {floor:.3f} s")
        for label, spec in (("qonnx file", str(qonnx)), ("zoo name", "vtcnn2")):
            cmd = AMCHW + ["simulate", spec, "--array", "4x4"]
            shutil.rmtree(cache, ignore_errors=True)
            cold, out_cold = run(cmd + ["--json"], env)
            warm_t, outs = [], []
            for _ in range(a.reps):
                t, o = run(cmd + ["--json"], env)
                warm_t.append(t)
                outs.append(o)
            off_t, out_off = run(cmd + ["--json"], off)
            same = all(report(o) == report(out_cold) for o in outs + [out_off])
            cached = all(json.loads(o)["integer_check"]["cached"] for o in outs)
            ok &= same and cached
            # the plain text form, as the README shows it
            text_t = statistics.median(run(cmd, env)[0] for _ in range(a.reps))
            warm = statistics.median(warm_t)
            print(f"simulate {label} --array 4x4: cold {cold:.2f} s, warm {warm:.3f} s "
                  f"(text {text_t:.3f} s), cache off {off_t:.2f} s -> {off_t / warm:.1f}x "
                  f"faster warm; {warm / floor:.1f}x the import-numpy floor; same report: "
                  f"{same}, check read from the cache: {cached}")
            rows.append(dict(case=label, cold_s=cold, warm_s=warm, warm_text_s=text_t,
                             cache_off_s=off_t, floor_s=floor, same_report=same,
                             check_cached=cached))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
