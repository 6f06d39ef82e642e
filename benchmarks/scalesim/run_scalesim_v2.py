#!/usr/bin/env python
"""Runs SCALE-Sim v2 (installed in its own virtual environment, never in amchw's) on GEMM
layers and writes the cycle counts it reports as JSON, for amchw's tests and benchmarks.

Set-up, outside the project (SCALE-Sim is not a dependency and none of its code is vendored):
    git clone https://github.com/scalesim-project/scale-sim-v2 /tmp/scalesim-src
    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install numpy absl-py tqdm pandas configparser
    /tmp/scalesim-venv/bin/pip install --no-deps -e /tmp/scalesim-src

Usage (with that environment's python; the repository root as working directory):
    /tmp/scalesim-venv/bin/python benchmarks/scalesim/run_scalesim_v2.py --cases small \\
        --out tests/sims/data/scalesim_v2_cycles.json
    /tmp/scalesim-venv/bin/python benchmarks/scalesim/run_scalesim_v2.py --cases zoo \\
        --time --out /tmp/scalesim_zoo.json

Each case is one GEMM in SCALE-Sim's "M, N, K" topology format (M output pixels, N filters,
K reduction: layer h=M, w=K, a 1xK filter, one channel, N filters, stride 1) on an R x C array
with one dataflow. SRAMs are made large and the bandwidth high so that no memory stall occurs
and the reported total equals the compute cycles. The script records, per case, the "Total
Cycles", "Stall Cycles", "Overall Util %", "Mapping Efficiency %" and "Compute Util %" of
COMPUTE_REPORT.csv, plus the configuration, the SCALE-Sim version and git commit if known.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

# (name, M, N, K): ragged folds on every small array, and edge cases (one row, one column)
SMALL_GEMMS = [("g1", 7, 5, 3), ("g2", 10, 3, 9), ("g3", 1, 1, 1), ("g4", 16, 8, 8),
               ("g5", 5, 11, 2), ("g6", 13, 1, 6), ("g7", 1, 9, 17), ("g8", 9, 9, 9)]
SMALL_ARRAYS = [(1, 1), (2, 2), (3, 2), (4, 4), (2, 5), (8, 8)]

CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   {sram}
FilterSramSzkB:  {sram}
OfmapSramSzkB:   {sram}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : {bw}
Dataflow : {df}
MemoryBanks:   1

[run_presets]
InterfaceBandwidth: USER
"""


def zoo_gemms(batch: int = 1):
    """The conv/dense layers of amchw's VGG10 and VTCNN2 as (name, M, N, K) for one frame:
    M = output pixels, N = filters, K = kernel x input channels (im2col view)."""
    out = []
    length, cin = 1024, 2
    for i in range(7):  # VGG10: conv k=3 pad 1, 64 filters, then max-pool 2
        out.append((f"vgg10.conv{i + 1}", batch * length, 64, 3 * cin))
        length //= 2
        cin = 64
    out += [("vgg10.fc8", batch, 128, 512), ("vgg10.fc9", batch, 128, 128),
            ("vgg10.fc10", batch, 24, 128)]
    out += [("vtcnn2.conv1", batch * 2 * 130, 256, 3), ("vtcnn2.conv2", batch * 132, 80, 1536),
            ("vtcnn2.fc3", batch, 256, 10560), ("vtcnn2.fc4", batch, 11, 256)]
    return out


def run_case(name, m, n, k, rows, cols, df, workdir):
    from scalesim.scale_sim import scalesim

    tag = f"{name}_{rows}x{cols}_{df}"
    cfg = os.path.join(workdir, f"{tag}.cfg")
    topo = os.path.join(workdir, f"{tag}.csv")
    with open(cfg, "w") as f:
        f.write(CFG.format(name=tag, rows=rows, cols=cols, sram=1 << 20, bw=1 << 12, df=df))
    with open(topo, "w") as f:
        f.write("Layer name, M, N, K,\n")
        f.write(f"{name}, {m}, {n}, {k},\n")
    logdir = os.path.join(workdir, "logs")
    t0 = time.perf_counter()
    sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                   input_type_gemm=True)
    sim.run_scale(top_path=logdir)
    seconds = time.perf_counter() - t0
    with open(os.path.join(logdir, tag, "COMPUTE_REPORT.csv")) as f:
        rows_ = list(csv.reader(f))
    head = [h.strip() for h in rows_[0]]
    vals = [v.strip() for v in rows_[1]]
    rec = dict(zip(head, vals))
    return {
        "name": name, "M": m, "N": n, "K": k, "rows": rows, "cols": cols, "dataflow": df,
        "total_cycles": int(float(rec["Total Cycles"])),
        "stall_cycles": int(float(rec["Stall Cycles"])),
        "overall_util_pct": float(rec["Overall Util %"]),
        "mapping_efficiency_pct": float(rec["Mapping Efficiency %"]),
        "compute_util_pct": float(rec["Compute Util %"]),
        "seconds": seconds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", choices=("small", "zoo"), default="small")
    p.add_argument("--cases-json", default=None,
                   help="a JSON list of {name, M, N, K, rows, cols, dataflow} to run instead")
    p.add_argument("--arrays", nargs="*", default=None, help="RxC arrays (zoo default: 4x4 16x16)")
    p.add_argument("--dataflows", nargs="*", default=["os", "ws", "is"])
    p.add_argument("--time", action="store_true", help="record wall seconds per case")
    p.add_argument("--commit", default=None,
                   help="SCALE-Sim git commit to record when its source is not a git checkout")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.cases == "small":
        gemms = SMALL_GEMMS
        arrays = SMALL_ARRAYS
    else:
        gemms = zoo_gemms()
        arrays = [(4, 4), (16, 16)]
    if a.arrays:
        arrays = [tuple(int(v) for v in s.lower().split("x")) for s in a.arrays]
    import scalesim

    src = os.path.dirname(os.path.dirname(os.path.abspath(scalesim.__file__)))
    try:
        commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or None
    except OSError:
        commit = None
    commit = commit or a.commit
    if a.cases_json:
        with open(a.cases_json) as f:
            todo = [(c["name"], c["M"], c["N"], c["K"], c["rows"], c["cols"], c["dataflow"])
                    for c in json.load(f)]
    else:
        todo = [(name, m, n, k, rows, cols, df) for name, m, n, k in gemms
                for rows, cols in arrays for df in a.dataflows]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name, m, n, k, rows, cols, df in todo:
            try:
                r = run_case(name, m, n, k, rows, cols, df, work)
            except Exception as e:  # SCALE-Sim itself fails (e.g. a 0-cycle layer)
                r = {"name": name, "M": m, "N": n, "K": k, "rows": rows, "cols": cols,
                     "dataflow": df, "error": f"{type(e).__name__}: {e}"}
                print(f"{name:>14} {rows}x{cols} {df}: SCALE-Sim failed: {r['error']}")
                results.append(r)
                continue
            if not a.time:
                r.pop("seconds")
            results.append(r)
            print(f"{name:>14} M={m:<5} N={n:<4} K={k:<6} {rows}x{cols} {df}: "
                  f"{r['total_cycles']} cycles, {r['stall_cycles']} stalls", flush=True)
    meta = {
        "tool": "SCALE-Sim v2 (scalesim-project/scale-sim-v2)",
        "setup_py_version": "2.0.2",
        "commit": commit,
        "config": {"sram_kib_each": 1 << 20, "bandwidth_words_per_cycle": 1 << 12,
                   "interface_bandwidth": "USER", "memory_banks": 1,
                   "topology_format": "GEMM M,N,K (input_type_gemm=True)"},
        "python": sys.version.split()[0],
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "cases": results}, f, indent=1)
    os.replace(tmp, a.out)
    print(f"wrote {len(results)} cases to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
