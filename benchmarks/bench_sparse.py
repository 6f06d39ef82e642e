#!/usr/bin/env python
"""Throughput of the zero-skipping and product-quantization kernels against the dense kernel, in
one run, on VTCNN2's first FC layer shape (10560 inputs -> 256 outputs) by default.

For each sparsity (unstructured, magnitude-like random zeros) it times, on the same int8 batch:
  dense      kernels.dense_i32        (Numba loop kernel; the reference point, ratio 1)
  csr        kernels.sparse.dense_i32_csr   (each output walks its nonzeros)
  csc        kernels.sparse.dense_i32_csc   (each input scatters into its outputs)
and, on weights made to fit them:
  2:4        kernels.sparse.dense_i32_nm    (50% zeros, two per group of four)
  pq-lookup  kernels.pq.pq_dense_lookup     (P subspaces, K_s centroids)
  pq-bins    kernels.pq.pq_dense_bins
Every result is checked bit for bit against the dense kernel before timing. Format conversion
(CSR/CSC/N:M/codebooks) happens once, outside the timing, as it would at deployment.

Method: one warm-up call (compilation), then repeated calls until --min-time seconds and
--min-iters calls; frames/s = batch * calls / time. The ratio is against dense in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from amchw.kernels import dense_i32
from amchw.kernels.pq import pq_dense_bins, pq_dense_lookup, pq_reconstruct
from amchw.kernels.sparse import (csc_from_dense, csr_from_dense, dense_i32_csc, dense_i32_csr,
                                  dense_i32_nm, nm_from_dense)


def _time(fn, batch, min_time, min_iters):
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time and n >= min_iters:
            return batch * n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=10560)
    ap.add_argument("--outputs", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sparsities", default="0,0.5,0.8,0.9,0.95,0.99")
    ap.add_argument("--pq", default="2:256,16:256", help="P:K_s pairs")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    m, n = a.inputs, a.outputs
    x = rng.integers(-128, 128, (a.batch, m)).astype(np.int32)
    base = (rng.integers(1, 128, (n, m)) * rng.choice([-1, 1], (n, m))).astype(np.int32)
    rows = []

    def row(kind, sparsity, fps, dense_fps):
        rows.append({"kernel": kind, "sparsity": sparsity, "frames_per_s": fps,
                     "ratio_vs_dense": fps / dense_fps})
        print(f"{kind:<10} {sparsity:>8.2%} {fps:>14,.0f} {fps / dense_fps:>8.2f}x", flush=True)

    print(f"{'kernel':<10} {'sparsity':>8} {'frames/s':>14} {'vs dense':>9}   "
          f"({m} -> {n}, batch {a.batch})")
    for s in (float(v) for v in a.sparsities.split(",")):
        w = base.copy()
        w[rng.random(w.shape) < s] = 0
        want = dense_i32(x, w, None, 0, 0)
        dfps = _time(lambda: dense_i32(x, w, None, 0, 0), a.batch, a.min_time, a.min_iters)
        row("dense", s, dfps, dfps)
        ip, ix, v = csr_from_dense(w)
        assert np.array_equal(dense_i32_csr(x, ip, ix, v, None, 0, 0), want)
        row("csr", s, _time(lambda: dense_i32_csr(x, ip, ix, v, None, 0, 0), a.batch,
                            a.min_time, a.min_iters), dfps)
        cp, cr, cv = csc_from_dense(w)
        assert np.array_equal(dense_i32_csc(x, cp, cr, cv, None, 0, 0, n), want)
        row("csc", s, _time(lambda: dense_i32_csc(x, cp, cr, cv, None, 0, 0, n), a.batch,
                            a.min_time, a.min_iters), dfps)
    # 2:4: keep the two largest of every group of four
    g = base.reshape(n, m // 4, 4)
    keep = np.argsort(-np.abs(g), axis=2)[:, :, :2]
    w24 = np.zeros_like(g)
    np.put_along_axis(w24, keep, np.take_along_axis(g, keep, axis=2), axis=2)
    w24 = w24.reshape(n, m)
    want = dense_i32(x, w24, None, 0, 0)
    dfps = _time(lambda: dense_i32(x, w24, None, 0, 0), a.batch, a.min_time, a.min_iters)
    vals, offs = nm_from_dense(w24, 2, 4)
    assert np.array_equal(dense_i32_nm(x, vals, offs, 4, None, 0, 0), want)
    row("dense", 0.5, dfps, dfps)
    row("2:4", 0.5, _time(lambda: dense_i32_nm(x, vals, offs, 4, None, 0, 0), a.batch,
                          a.min_time, a.min_iters), dfps)
    for pk in a.pq.split(","):
        p, k = (int(v) for v in pk.split(":"))
        codes = rng.integers(0, k, (m, p)).astype(np.int32)
        books = rng.integers(-127, 128, (p, k, n // p)).astype(np.int32)
        wq = np.ascontiguousarray(pq_reconstruct(codes, books).T)
        want = dense_i32(x, wq, None, 0, 0)
        dfps = _time(lambda: dense_i32(x, wq, None, 0, 0), a.batch, a.min_time, a.min_iters)
        assert np.array_equal(pq_dense_lookup(x, codes, books, None, 0, 0), want)
        assert np.array_equal(pq_dense_bins(x, codes, books, None, 0, 0), want)
        row("dense", 0.0, dfps, dfps)
        row(f"pq{p}:{k}-lk", 0.0, _time(lambda: pq_dense_lookup(x, codes, books, None, 0, 0),
                                        a.batch, a.min_time, a.min_iters), dfps)
        row(f"pq{p}:{k}-bin", 0.0, _time(lambda: pq_dense_bins(x, codes, books, None, 0, 0),
                                         a.batch, a.min_time, a.min_iters), dfps)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
