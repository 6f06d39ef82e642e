#!/usr/bin/env python
"""Functional inference throughput (frames/s) of the zoo models on CPU, in one run.

For each model (VGG10, VTCNN2) and batch size (default 1 and 256) it times:

  fast          amchw.ir.interp.run(graph, x, "fast")   fused executor (amchw.ir.fast): on a
                CPU with AVX-512 VNNI, AVX-VNNI or AVX2, u8 x s8 -> int32 kernels
                (kernels/vnni.py; AMCHW_VNNI=avx256 or avx2 picks a narrower form for a
                comparison); elsewhere Numba im2col + exact float BLAS product + Numba
                requant/pool epilogue
  fast-float    the same executor with the VNNI kernels switched off (the portable path every
                CPU runs)
  numba         amchw.ir.interp.run(graph, x, "numba")  Numba loop kernels
  ref           amchw.ir.interp.run(graph, x, "ref")    numpy reference interpreter
  torch-f32     plain float32 torch.nn.Sequential mirror of the model (nn.Conv/nn.Linear/BN/
                ReLU/MaxPool with the zoo model's dequantized weights, float biases), eager
  brevitas-fq   the Brevitas zoo model itself (fake quantization), eval(), torch.no_grad()
  ort-f32       onnxruntime (CPU provider, all graph optimizations) on the torch-f32 mirror
                exported to ONNX
  ort-int8      onnxruntime on amchw's own QONNX export converted to int8 QDQ (qonnx's
                QuantToQCDQ; bias quantizers as int32 DequantizeLinear: ort_peer.py); its output
                is compared with ref bit for bit and the result printed (it is the peer, so a
                difference is reported, not a failure)

Setup per model: build(name, seed, scales) -> calibrate on synthetic frames -> lower to the IR
(the lowering sample is the calibration frames). Benchmark frames are separate synthetic frames
(other seed) of the model's profile.

Method: every path is warmed up first (Numba JIT compile / cache load is outside the timing),
then called repeatedly on the same input batch, each call timed with time.perf_counter, until
both --min-time seconds and --min-iters calls are reached (or --max-iters). frames/s is
batch * calls / total time of the timed calls. The reference interpreter gets at most
--ref-max-iters timed calls when one call takes longer than --ref-slow seconds (it is slow at
large batches), after a single warm-up call (it has nothing to compile). The ratio columns are
frames/s divided by the torch-f32 frames/s, and by the better of ort-f32 and ort-int8, of the
same model and batch (issue 20's aim: fast >= 1.0x the better onnxruntime run).

Threads: Numba uses numba.get_num_threads() threads (all cores by default, or --threads) and
torch.set_num_threads is set to the same number. With --threads, OPENBLAS/OMP/MKL_NUM_THREADS
are set to it as well before numpy is imported (the "fast" path's float GEMMs run in numpy's
BLAS); without it BLAS keeps its default (usually all cores). --blas-threads sets numpy's BLAS
threads alone. The "fast" executor holds BLAS to one thread while it runs and splits the batch
over its own threads (benchmarks/README.md: thread-pool contention).

Exactness: while benchmarking, the outputs of "fast", "fast-float" and "numba" (warm-up call and
last timed call) are compared with the "ref" output on the same batch with np.array_equal; the
result is printed per model/batch and in --json. The script exits with status 1 if any check fails.

Examples (from the repository root, with the python where amchw is installed):
    python benchmarks/bench_inference.py --quick
    python benchmarks/bench_inference.py --json bench.json
    python benchmarks/bench_inference.py --models vtcnn2 --batches 1 64 256 \\
        --threads 1 --paths fast torch-f32
    python benchmarks/bench_inference.py --quick --profile   # per-node times

This is a benchmark, not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import os
import sys

PATHS = ("fast", "fast-float", "numba", "ref", "torch-f32", "brevitas-fq", "ort-f32",
         "ort-int8")
ORT_PATHS = ("ort-f32", "ort-int8")
IR_PATHS = ("fast", "fast-float", "numba", "ref")
MODELS = ("vgg10", "vtcnn2")
PEER = "torch-f32"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Inference throughput of the IR backends vs PyTorch float32, Brevitas and "
                    "onnxruntime (float32 and int8 QDQ).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="short run: --min-time 0.3, --min-iters 2, --ref-max-iters 1, "
                        "1 warm-up call (explicit options still win)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS,
                   help="paths to time (ref is always run once per batch for the exactness "
                        "check when fast or numba is timed)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for Numba, torch and BLAS (default: Numba's default, all cores)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="threads of numpy's BLAS (OPENBLAS/MKL_NUM_THREADS, set before numpy is "
                        "imported); default: --threads if given, else BLAS's own default")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds of timed calls per path (default 2.0; 0.3 with --quick)")
    p.add_argument("--min-iters", type=int, default=None,
                   help="minimum timed calls per path (default 5; 2 with --quick)")
    p.add_argument("--max-iters", type=int, default=100000, help="maximum timed calls per path")
    p.add_argument("--ref-max-iters", type=int, default=None,
                   help="maximum timed calls of the ref interpreter when one call takes longer "
                        "than --ref-slow seconds (default 3; 1 with --quick)")
    p.add_argument("--ref-slow", type=float, default=0.2,
                   help="seconds per ref call above which --ref-max-iters applies")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed warm-up calls per path (default 2; 1 with --quick)")
    p.add_argument("--scales", default="po2", choices=("po2", "float"),
                   help="zoo quantization scales")
    p.add_argument("--seed", type=int, default=0, help="model / calibration seed")
    p.add_argument("--calib-frames", type=int, default=256,
                   help="synthetic frames for calibration and lowering")
    p.add_argument("--json", metavar="FILE", default=None, help="also write results as JSON")
    p.add_argument("--profile", action="store_true",
                   help="after the benchmark, print per-node times of the 'fast' backend "
                        "(and numba for comparison) for each model and batch")
    p.add_argument("--profile-iters", type=int, default=5,
                   help="calls per node-level profile")
    a = p.parse_args(argv)
    q = a.quick
    a.min_time = a.min_time if a.min_time is not None else (0.3 if q else 2.0)
    a.min_iters = a.min_iters if a.min_iters is not None else (2 if q else 5)
    a.ref_max_iters = a.ref_max_iters if a.ref_max_iters is not None else (1 if q else 3)
    a.warmup = a.warmup if a.warmup is not None else (1 if q else 2)
    if a.warmup < 1:
        p.error("--warmup must be >= 1 (the first call compiles / loads Numba kernels)")
    if any(b < 1 for b in a.batches):
        p.error("batch sizes must be >= 1")
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be >= 1")
    if a.blas_threads is not None and a.blas_threads < 1:
        p.error("--blas-threads must be >= 1")
    if a.min_iters < 1 or a.max_iters < 1 or a.ref_max_iters < 1:
        p.error("iteration counts must be >= 1")
    return a


ARGS = parse_args()
# Before numpy / torch / numba are imported: BLAS and OpenMP pools read these at load time.
if ARGS.threads is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    if ARGS.threads > (os.cpu_count() or 1):
        os.environ.setdefault("NUMBA_NUM_THREADS", str(ARGS.threads))
if ARGS.blas_threads is not None:
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.blas_threads)

import contextlib  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import OrderedDict  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore", message="fast_hadamard_transform")
warnings.filterwarnings("ignore", message="brevitas.fx is deprecated")


from float_layers import float_layer  # noqa: E402
from amchw.data.synthetic import PROFILES, synthesize  # noqa: E402
from amchw.ir.fast import FastPlan, plan_for  # noqa: E402
from amchw.kernels import vnni  # noqa: E402
from amchw.ir.interp import eval_node, kernels_for, run  # noqa: E402
from amchw.lower.brevitas import lower  # noqa: E402
from amchw.models import ZOO, build  # noqa: E402
from amchw.models.calibrate import calibrate  # noqa: E402


# ------------------------------------------------------------------------------ setup


def frames(name: str, n: int, seed: int) -> np.ndarray:
    """n synthetic float32 frames of the model's profile, shaped (n, *input shape): every class,
    SNRs every 4 dB from -10 dB up, shuffled."""
    entry = ZOO[name]
    prof = PROFILES[entry.profile]
    snrs = [s for s in prof.snrs if s >= -10 and (s + 10) % 4 == 0] or list(prof.snrs)
    per = -(-n // (len(prof.classes) * len(snrs)))
    X, _, _ = synthesize(entry.profile, per, snrs, seed)
    X = X[np.random.default_rng(seed).permutation(X.shape[0])[:n]]
    return np.ascontiguousarray(X.reshape((n,) + tuple(entry.input_shape)))


def float_mirror(model: nn.Module) -> nn.Sequential:
    """A plain float32 nn.Sequential with the zoo model's architecture: Quant conv/linear become
    nn.Conv/nn.Linear holding the dequantized weights and the float biases, QuantReLU becomes
    nn.ReLU, the input quantizer becomes nn.Identity, BN / pools / flatten / dropout are copied."""
    layers = []
    for name, m in model.named_children():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.MaxPool1d, nn.MaxPool2d,
                          nn.Flatten, nn.Dropout)):
            f = copy.deepcopy(m)
        else:
            f = float_layer(name, m, dequantized=True)
        layers.append((name, f))
    return nn.Sequential(OrderedDict(layers)).float().eval()


# ------------------------------------------------------------------------------ timing


def bench(fn, warmup: int, min_time: float, min_iters: int, max_iters: int,
          slow_cap: tuple[float, int] | None = None):
    """Warm up, then time calls of fn until min_time and min_iters (or max_iters) are reached.
    slow_cap=(seconds, n): if the first warm-up call took longer than `seconds`, at most n timed
    calls. Returns (per-call seconds, output of the first warm-up call, output of the last)."""
    t0 = time.perf_counter()
    first = fn()
    if slow_cap is not None and time.perf_counter() - t0 > slow_cap[0]:
        max_iters = min(max_iters, slow_cap[1])
    for _ in range(warmup - 1):
        fn()
    times = []
    out = None
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if len(times) >= max_iters or (len(times) >= min_iters and t1 - start >= min_time):
            break
    return times, first, out


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


# ------------------------------------------------------------------------------ profile


def profile_nodes(graph, x: np.ndarray, backend: str, iters: int):
    """Seconds per node (mean over iters) of one interp.run-equivalent pass, in node order."""
    impl = kernels_for(backend)
    types = graph.values()
    inp = graph.inputs[0]
    acc = {n.name: 0.0 for n in graph.nodes}
    for it in range(iters + 1):  # the first pass is a warm-up
        env = {inp.name: x}
        for node in graph.nodes:
            args = [env[i] for i in node.inputs]
            in_types = [types[i].dtype for i in node.inputs]
            t0 = time.perf_counter()
            env[node.output.name] = eval_node(node, args, in_types, impl)
            if it:
                acc[node.name] += time.perf_counter() - t0
    return {n.name: acc[n.name] / iters for n in graph.nodes}


def profile_fast(graph, x: np.ndarray, iters: int):
    """[(step label, seconds per call, description)] of the fused executor's steps."""
    plan = plan_for(graph)
    plan(x)  # warm-up
    t: dict[str, float] = {}
    for _ in range(iters):
        plan(x, timings=t)
    return [(lab, t.get(lab, 0.0) / iters, desc.split(": ", 1)[1])
            for lab, desc in zip(plan.step_names(), plan.describe())]


def torch_layer_times(model: nn.Module, x: torch.Tensor, iters: int):
    """Seconds per top-level child (mean over iters) of an eager torch forward."""
    acc = OrderedDict((name, 0.0) for name, _ in model.named_children())
    with torch.no_grad():
        for it in range(iters + 1):
            h = x
            for name, m in model.named_children():
                t0 = time.perf_counter()
                h = m(h)
                dt = time.perf_counter() - t0
                if it:
                    acc[name] += dt
    return [(k, v / iters) for k, v in acc.items()]


# ------------------------------------------------------------------------------ main


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _fmt_load(v) -> str:
    return "n/a" if v is None else " / ".join(f"{x:.2f}" for x in v)


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:,.1f}"
    return f"{v:.3g}"


@contextlib.contextmanager
def _vnni_off():
    """Plans built inside take the portable float path (as on a CPU without VNNI)."""
    saved = vnni.HAVE_VNNI
    vnni.HAVE_VNNI = False
    try:
        yield
    finally:
        vnni.HAVE_VNNI = saved


def main(args: argparse.Namespace) -> int:
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    torch.set_num_threads(threads)
    timed = [p for p in PATHS if p in args.paths]
    need_ref = any(p in timed for p in ("fast", "fast-float", "numba", "ort-int8"))

    meta = {
        "cpu_count": os.cpu_count(),
        "numba_threads": threads,
        "torch_threads": torch.get_num_threads(),
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS", "(default)"),
        "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__,
        "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
        "args": {k: v for k, v in vars(args).items()},
        "loadavg_start": _loadavg(),
    }
    print(f"# cores (os.cpu_count): {meta['cpu_count']}; Numba threads: {threads}; "
          f"torch.set_num_threads({threads}) -> torch threads: {meta['torch_threads']}; "
          f"BLAS threads: {meta['blas_threads_env']}")
    print(f"# numpy {np.__version__}, numba {numba.__version__}, torch {torch.__version__}; "
          f"scales={args.scales}; min_time={args.min_time}s min_iters={args.min_iters} "
          f"warmup={args.warmup} ref_max_iters={args.ref_max_iters}"
          f"{' (quick)' if args.quick else ''}")
    print(f"# load average at start (1/5/15 min): {_fmt_load(meta['loadavg_start'])} "
          f"(other processes on the machine distort the timings, multi-threaded ones most)")
    sys.stdout.flush()

    rows: list[dict] = []
    checks: list[dict] = []
    peer_eq: list[dict] = []
    sanity: list[dict] = []
    graphs = {}
    t_all = time.perf_counter()
    for name in args.models:
        t0 = time.perf_counter()
        calib = frames(name, args.calib_frames, seed=args.seed + 1000)
        model = calibrate(build(name, seed=args.seed, scales=args.scales), calib,
                          seed=args.seed).eval()
        graph = lower(model, torch.from_numpy(calib))
        mirror = float_mirror(model)
        graphs[name] = (graph, model, mirror)
        ort_fns = {}
        if any(p in timed for p in ORT_PATHS):
            import tempfile
            from pathlib import Path

            from ort_peer import float_model, qdq_model, session

            from amchw.export.qonnx import export_model

            tmp = Path(tempfile.mkdtemp(prefix="amchw-bench-ort-"))
            export_model(model, calib[:4], tmp / f"{name}.qonnx", name)
            ort_fns["ort-int8"] = session(qdq_model(tmp / f"{name}.qonnx",
                                                    tmp / f"{name}.qdq.onnx"), threads)
            ort_fns["ort-f32"] = session(float_model(mirror, calib, tmp / f"{name}.f32.onnx"),
                                         threads)
        X = frames(name, max(args.batches), seed=args.seed + 2000)
        with torch.no_grad():
            xt = torch.from_numpy(X)
            y_fq = model(xt).numpy()
            y_f32 = mirror(xt).numpy()
        y_ir = run(graph, X, "ref")
        plan = plan_for(graph)
        with _vnni_off():
            float_plan = FastPlan(graph)
        isa = (f"integer kernels: {vnni.KERNEL}" if vnni.HAVE_VNNI
               else "no integer kernels for this CPU, or AMCHW_VNNI=off")
        print(f"# {name}: fast plan ({isa}): "
              + "; ".join(plan.describe()))
        s = {"model": name, "frames": int(X.shape[0]),
             "top1_torch_f32_vs_brevitas": top1_agreement(y_f32, y_fq),
             "top1_ir_ref_vs_brevitas": top1_agreement(y_ir, y_fq),
             "setup_s": time.perf_counter() - t0}
        sanity.append(s)
        print(f"# {name}: input {tuple(X.shape[1:])}, {len(graph.nodes)} IR nodes; setup "
              f"{s['setup_s']:.1f}s; top-1 agreement with brevitas-fq on {X.shape[0]} frames: "
              f"torch-f32 {s['top1_torch_f32_vs_brevitas']:.1%}, "
              f"IR ref {s['top1_ir_ref_vs_brevitas']:.1%}")
        sys.stdout.flush()

        for batch in args.batches:
            xb = np.ascontiguousarray(X[:batch])
            xbt = torch.from_numpy(xb)
            fns = {
                "fast": lambda: run(graph, xb, "fast"),
                "fast-float": (lambda fp: lambda: fp(xb))(float_plan),
                "numba": lambda: run(graph, xb, "numba"),
                "ref": lambda: run(graph, xb, "ref"),
            }

            def torch_fn(m):
                def f():
                    with torch.no_grad():
                        return m(xbt)
                return f

            fns["torch-f32"] = torch_fn(mirror)
            fns["brevitas-fq"] = torch_fn(model)
            for p_, f_ in ort_fns.items():
                fns[p_] = (lambda f: lambda: f(xb))(f_)

            ref_out = run(graph, xb, "ref") if need_ref and "ref" not in timed else None
            outs = {}
            for path in timed:
                # ref has no JIT to warm up: one untimed call (its output is the reference).
                warmup = 1 if path == "ref" else args.warmup
                cap = (args.ref_slow, args.ref_max_iters) if path == "ref" else None
                times, first, last = bench(fns[path], warmup, args.min_time,
                                           args.min_iters, args.max_iters, cap)
                tot = sum(times)
                rows.append({
                    "model": name, "batch": batch, "path": path, "iters": len(times),
                    "total_s": tot, "frames_per_s": batch * len(times) / tot,
                    "best_frames_per_s": batch / min(times),
                    "median_call_s": float(np.median(times)),
                })
                outs[path] = (first, last)
                print(f"#   {name} b={batch:<4} {path:<12} {rows[-1]['frames_per_s']:>12,.1f} "
                      f"frames/s ({len(times)} calls, {tot:.2f}s)")
                sys.stdout.flush()
            if ref_out is None and "ref" in outs:
                ref_out = outs["ref"][1]
            for path in ("fast", "fast-float", "numba"):
                if path in outs:
                    first, last = outs[path]
                    ok = bool(np.array_equal(first, ref_out) and np.array_equal(last, ref_out))
                    checks.append({"model": name, "batch": batch, "path": path,
                                   "equal_to_ref": ok})
            if "ort-int8" in outs:  # the peer: reported, not required
                first, last = outs["ort-int8"]
                peer_eq.append({"model": name, "batch": batch, "equal_to_ref": bool(
                    np.array_equal(first.astype(np.float64), ref_out)
                    and np.array_equal(last.astype(np.float64), ref_out))})

    # ratios vs the float32 peer, and vs the better of onnxruntime's two runs
    peer = {(r["model"], r["batch"]): r["frames_per_s"] for r in rows if r["path"] == PEER}
    best_ort: dict = {}
    for r in rows:
        if r["path"] in ORT_PATHS:
            k = (r["model"], r["batch"])
            best_ort[k] = max(best_ort.get(k, 0.0), r["frames_per_s"])
    for r in rows:
        p = peer.get((r["model"], r["batch"]))
        r["ratio_vs_torch_f32"] = r["frames_per_s"] / p if p else None
        o = best_ort.get((r["model"], r["batch"]))
        r["ratio_vs_best_ort"] = r["frames_per_s"] / o if o else None

    print()
    print(f"Inference throughput ({meta['cpu_count']} cores; Numba threads = torch threads = "
          f"{threads}; ratio = frames/s / {PEER} frames/s)")
    hdr = f"{'model':<8} {'batch':>5}  {'path':<12} {'frames/s':>14} {'vs torch-f32':>13}  " \
          f"{'vs best ort':>12}  {'calls':>6}"
    print(hdr)
    print("-" * len(hdr))
    prev = None
    for r in rows:
        key = (r["model"], r["batch"])
        if prev is not None and key != prev:
            print()
        prev = key
        ratio = "-" if r["ratio_vs_torch_f32"] is None else f"{r['ratio_vs_torch_f32']:.3f}x"
        vo = "-" if r["ratio_vs_best_ort"] is None else f"{r['ratio_vs_best_ort']:.3f}x"
        print(f"{r['model']:<8} {r['batch']:>5}  {r['path']:<12} "
              f"{fmt_rate(r['frames_per_s']):>14} {ratio:>13}  {vo:>12}  {r['iters']:>6}")
    print()
    if checks:
        all_ok = all(c["equal_to_ref"] for c in checks)
        print("Bit-exactness vs ref (np.array_equal on the dequantized outputs, warm-up and last "
              "timed call):")
        for c in checks:
            print(f"  {c['model']:<8} batch {c['batch']:>4}  {c['path']:<6} "
                  f"{'EQUAL' if c['equal_to_ref'] else 'DIFFERENT'}")
        print(f"  => {'all equal' if all_ok else 'MISMATCH'}")
    else:
        all_ok = True
    for c in peer_eq:
        print(f"  onnxruntime int8 QDQ vs ref: {c['model']:<8} batch {c['batch']:>4}  "
              f"{'EQUAL' if c['equal_to_ref'] else 'DIFFERENT'} (the peer; not required)")
    try:
        meta["numba_threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel ran
        meta["numba_threading_layer"] = None
    meta["loadavg_end"] = _loadavg()
    print(f"Numba threading layer: {meta['numba_threading_layer']}; load average at end: "
          f"{_fmt_load(meta['loadavg_end'])}; total wall time "
          f"{time.perf_counter() - t_all:.1f}s")

    prof_out = []
    if args.profile:
        for name in args.models:
            graph, model, mirror = graphs[name]
            X = frames(name, max(args.batches), seed=args.seed + 2000)
            for batch in args.batches:
                xb = np.ascontiguousarray(X[:batch])
                print(f"\nPer-node profile: {name} batch {batch} "
                      f"(mean of {args.profile_iters} calls, ms)")
                fast = profile_fast(graph, xb, args.profile_iters)
                loop = profile_nodes(graph, xb, "numba", args.profile_iters)
                tl = dict(torch_layer_times(mirror, torch.from_numpy(xb), args.profile_iters))
                tot_f = sum(t for _, t, _ in fast)
                print(f"  {'step (fused nodes)':<24} {'fast ms':>9} {'share':>6} "
                      f"{'numba ms':>9} {'torch-f32 ms':>13}  fast kernel")
                steps = []
                for lab, tf, desc in fast:
                    names = lab.split("+")
                    tn = sum(loop.get(nm, 0.0) for nm in names)
                    tts = [tl[nm] for nm in names if nm in tl]
                    tt = sum(tts) if tts else None
                    print(f"  {lab:<24} {tf * 1e3:>9.3f} {tf / tot_f:>6.1%} {tn * 1e3:>9.3f} "
                          f"{'' if tt is None else f'{tt * 1e3:.3f}':>13}  {desc}")
                    steps.append({"step": lab, "fast_s": tf, "numba_s": tn, "torch_f32_s": tt,
                                  "kernel": desc})
                print(f"  {'total':<24} {tot_f * 1e3:>9.3f} {'':>6} "
                      f"{sum(loop.values()) * 1e3:>9.3f} {sum(tl.values()) * 1e3:>13.3f}")
                prof_out.append({"model": name, "batch": batch, "steps": steps})

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows, "exactness": checks,
                       "ort_int8_exactness": peer_eq, "sanity": sanity,
                       "profile": prof_out}, f, indent=2, default=str)
        print(f"wrote {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(ARGS))
