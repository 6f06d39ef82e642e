#!/usr/bin/env python
"""VTCNN2's first FC layer (fc3, 10560 -> 256) stored dense, 90% unstructured (csr, csc,
gated), 2:4, and product-quantized (P = 2 and 16, K_s = 256), simulated on 4x4 and 16x16 arrays
in every dataflow: fc3's cycles, energy, stored weight bytes and MACs multiplied.

Every version starts from the same seeded VTCNN2 (random weights calibrated on synthetic
frames, as `amchw simulate vtcnn2` does): magnitude pruning (amchw.compress.magnitude_prune) or
k-means product quantization (amchw.compress.product_quantize) of fc3 only, then lowering and
amchw.ir.sparse.set_format on fc3. Run: python benchmarks/compare_fc1_formats.py [--json F]
"""

from __future__ import annotations

import argparse
import json

import torch

from amchw.compress import magnitude_prune, product_quantize
from amchw.data.synthetic import frames_for
from amchw.ir.sparse import set_format
from amchw.lower.brevitas import lower
from amchw.models import build
from amchw.models.calibrate import calibrate
from amchw.sims import simulate
from amchw.sims.hardware import get_target


def _model(seed):
    return build("vtcnn2", seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="edge-asic-45nm")
    ap.add_argument("--arrays", default="4x4,16x16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    fr = torch.as_tensor(frames_for("vtcnn2", 256, seed=a.seed))
    versions = {}

    def finish(label, m, fmt):
        m = calibrate(m, fr, seed=a.seed)
        g = lower(m, fr[:2], name="vtcnn2")
        versions[label] = set_format(g, fmt, layers=["fc3"])[0] if fmt else g

    finish("dense", _model(a.seed), None)
    m = _model(a.seed)
    magnitude_prune(m, 0.9, layers=["fc3"])
    for fmt in ("csr", "csc", "gated"):
        finish(f"90% {fmt}", m, fmt)
    m = _model(a.seed)
    magnitude_prune(m, pattern="2:4", layers=["fc3"])
    finish("2:4", m, "2:4")
    for p in (2, 16):
        m = calibrate(_model(a.seed), fr, seed=a.seed)
        info = product_quantize(m.fc3, "fc3", p, 256, seed=a.seed)
        print(f"PQ P={p}: C_Q {info['C_Q_64bit']:.2f} (64-bit), {info['C_Q_8bit']:.2f} (8-bit)")
        finish(f"PQ P={p}", m, f"pq{p}:256")
    rows = []
    for arr in a.arrays.split(","):
        r_, c_ = (int(v) for v in arr.lower().split("x"))
        t = get_target(a.target).with_array(r_, c_)
        print(f"\n{arr} {a.target}, pipelined; fc3 only")
        print(f"{'version':<10} {'df':<3} {'cycles':>10} {'stall':>8} {'energy uJ':>10} "
              f"{'weights B':>11} {'MACs':>11}")
        for label, g in versions.items():
            for df in ("os", "ws", "is"):
                r = next(x for x in simulate(g, t, df).layers if x.node == "fc3")
                e = r.energy.total * 1e-6
                rows.append({"array": arr, "version": label, "dataflow": df, "cycles": r.cycles,
                             "stall": r.stall_cycles, "energy_uj": e,
                             "weight_bytes": r.weight_bytes, "macs": r.macs})
                print(f"{label:<10} {df:<3} {r.cycles:>10,} {r.stall_cycles:>8,} {e:>10.2f} "
                      f"{r.weight_bytes:>11,} {r.macs:>11,}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
