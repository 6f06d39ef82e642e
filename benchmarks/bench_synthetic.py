#!/usr/bin/env python
"""Speed of the synthetic RadioML generator (frames per second), with the full RML2016 channel
(sample-rate offset, Rician multipath, carrier offset, AWGN) and with AWGN only, for both
profiles. Two peers run in the same process:

- the generator's own numpy twin (`synthesize(..., compiled=False)`: the same frames from
  whole-array numpy steps instead of the Numba kernels), which must give the same bits; the
  script checks that before it times anything and exits 1 if they differ;
- a plain numpy baseline that only draws the frames' white noise (the least any generator of
  these frames must do), so the ratio says how far from that floor the modulators and the
  channel are.

    python benchmarks/bench_synthetic.py            # best of 3 per case, ~30 s
    python benchmarks/bench_synthetic.py --json out.json

The aim (issue 20) is 50,000 full-channel 2x128 frames/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
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


def same_bits(prof: str, ch: str) -> bool:
    a = synthesize(prof, 3, seed=11, channel=ch, return_components=True, compiled=True)
    b = synthesize(prof, 3, seed=11, channel=ch, return_components=True, compiled=False)
    pairs = list(zip(a[:3], b[:3])) + [(a[3].signal, b[3].signal), (a[3].noise, b[3].noise)]
    return all(np.array_equal(u, v) for u, v in pairs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="write the figures to this file")
    a = p.parse_args()
    import numba

    print(f"load average {os.getloadavg()[0]:.2f}; numba threads: {numba.get_num_threads()}")
    rows, ok = [], True
    for prof, per in (("rml2016", 200), ("rml2018", 20)):
        P = PROFILES[prof]
        n = len(P.classes) * len(P.snrs) * per
        synthesize(prof, 1, seed=0, compiled=True)  # warm-up: Numba compilation or cache load
        rng = np.random.default_rng(0)
        floor = best_of(lambda: rng.standard_normal((n, 2, P.length), dtype=np.float32), a.reps)
        for ch in ("radioml", "awgn"):
            exact = same_bits(prof, ch)
            ok &= exact
            if not exact:
                print(f"{prof} channel={ch}: the compiled generator differs from its numpy twin")
                continue
            t = best_of(lambda: synthesize(prof, per, seed=0, channel=ch, compiled=True), a.reps)
            tw = best_of(lambda: synthesize(prof, per, seed=0, channel=ch, compiled=False),
                         a.reps)
            print(f"{prof} ({P.length} samples) channel={ch:<8} {n:>7,} frames in {t:.3f} s: "
                  f"{n / t:>9,.0f} frames/s; {tw / t:.2f}x the numpy twin ({n / tw:,.0f} "
                  f"frames/s, same bits); {t / floor:.1f}x the noise-only floor "
                  f"({n / floor:,.0f} frames/s)")
            rows.append(dict(profile=prof, channel=ch, frames=n, seconds=t,
                             frames_per_s=n / t, twin_frames_per_s=n / tw,
                             floor_frames_per_s=n / floor, same_bits=exact))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
