#!/usr/bin/env python
"""Speed of the synthetic RadioML generator (frames per second), with the full RML2016 channel
(sample-rate offset, Rician multipath, carrier offset, AWGN) and with AWGN only, for both
profiles. The peer in the same run is a plain numpy baseline that only draws the frames' white
noise (the least any generator of these frames must do), so the ratio says how far from that
floor the modulators and the channel are.

    python benchmarks/bench_synthetic.py            # best of 3 per case
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from amchw.data.synthetic import PROFILES, synthesize


def best_of(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    for prof, per in (("rml2016", 200), ("rml2018", 20)):
        P = PROFILES[prof]
        n = len(P.classes) * len(P.snrs) * per
        synthesize(prof, 1, seed=0)  # warm-up
        rng = np.random.default_rng(0)
        floor = best_of(lambda: rng.standard_normal((n, 2, P.length), dtype=np.float32), a.reps)
        for ch in ("radioml", "awgn"):
            t = best_of(lambda: synthesize(prof, per, seed=0, channel=ch), a.reps)
            print(f"{prof} ({P.length} samples) channel={ch:<8} {n:>7,} frames in {t:.3f} s: "
                  f"{n / t:>9,.0f} frames/s ({t / floor:.1f}x the noise-only floor, "
                  f"{n / floor:,.0f} frames/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
