#!/usr/bin/env python
"""Training throughput (frames/s) on CPU: quantization-aware training (QAT) of zoo models against
plain PyTorch float training of the same network on the same frames, in one run.

What it measures, per model (default vtcnn2, vgg10, ee-baseline, cnn-slim):

  float        plain float32 training of the model's float twin (below), two epochs: one
               beside each QAT epoch
  QAT stats    one epoch of QAT while Brevitas still initialises the activation scales from
               runtime statistics: every QuantReLU / QuantIdentity with a learned scale computes
               the 99.999th percentile of |x| (torch.kthvalue over the whole activation tensor,
               with a backward that scatters into a zero tensor of the activation's size) on
               each of its first 300 training calls (Brevitas' collect_stats_steps). With
               batch 256 these are the first 76,800 training frames, i.e. the whole first epoch
               (and more) of a default `amchw train` run.
  QAT learned  one epoch of QAT after that phase: the scale is a learned parameter. The script
               gets there without 300 steps by setting each scale module's step counter to
               collect_stats_steps after the stats epoch (what resuming a checkpoint does through
               amchw.train._set_quant_state); the next (warm-up) call folds the statistics into
               the parameter. This is the steady state of a long training run.
  data h5      the data path of `amchw train`: FrameDataset over an H5Frames reader, one HDF5
               read of the batch's (shuffled, re-sorted) rows per batch (FrameDataset.batch)
  data mem     the same batches from a FrameDataset over arrays already in memory

Training step: exactly the inner loop of amchw.train._fit: batches from amchw.train._batches
(shuffled by a seeded torch.Generator), x, y = dataset.batch(pos); opt.zero_grad();
amchw.train.Objective().step(model, x, y) (forward, summed cross-entropy, backward);
opt.step(); the running loss and accuracy sums. Adam (lr 1e-3) as amchw train uses; the same
batch size, frames, batch order and initial float weights for the float twin and QAT. The cosine
schedule steps once per epoch and does not change the per-batch cost; the validation pass and
the checkpoint write at the end of an epoch are not timed. torch.use_deterministic_algorithms
(True, warn_only=True) is set, as amchw train does. The QAT and float epochs read from the
in-memory dataset, so their ratio compares compute only; the data columns say what the HDF5
path would add.

Float twin: a copy.deepcopy of the built Brevitas model in which every Brevitas layer is
replaced, walking named_children() recursively from the top, by its torch.nn counterpart:
QuantConv1d/2d -> nn.Conv1d/2d (same channels, kernel, stride, padding, dilation, groups, bias),
QuantLinear -> nn.Linear, QuantReLU -> nn.ReLU, QuantIdentity (input and inter-layer
quantizers) -> nn.Identity. Conv and linear layers get the QAT model's float (shadow) weights
and biases; BatchNorm, pooling, flatten and dropout modules are the deep copies themselves. Any
other Brevitas module raises.

Frames: synthetic frames of the model's profile written with amchw.data.radioml.synth_to_h5 (the
file `amchw train` writes when no --data is given: every SNR of the profile, chunked X) into a
temporary directory; the training frames are a seeded random subset of --frames of them (as
max_train does). The file was just written, so HDF5 reads come from the page cache: a cold
RadioML 2018 file on disk reads slower.

Timing: the float twin and the QAT model train side by side, interleaved batch by batch (both
step on batch k before either steps on batch k + 1), so that on a shared machine both see the
same load; every step (batch read + training step) is timed on its own with time.perf_counter.
Each epoch starts with one untimed warm-up batch per model (first-call allocations; for "QAT
learned" the fold of the statistics into the parameter). frames/s = frames of the epoch / sum of
its step times. The ratio is QAT frames/s / float frames/s of the epoch they shared (float f/s
in the table is over both epochs). The issue's aim (QAT >= 0.5x float) is printed as met or not for
each model and phase; nothing is asserted. Threads: torch.set_num_threads(--threads, default all
cores); with --threads, OMP/MKL/OPENBLAS_NUM_THREADS are set before torch is imported.

Run (from the repository root):
    .venv/bin/python benchmarks/bench_training.py --quick          # ~40 s on 2 idle cores
    .venv/bin/python benchmarks/bench_training.py                  # ~70 s on 2 idle cores
    .venv/bin/python benchmarks/bench_training.py --models vtcnn2 --frames 4096 --threads 1
    .venv/bin/python benchmarks/bench_training.py --frames vgg10=512 cnn-slim=512 --json out.json
    .venv/bin/python benchmarks/bench_training.py --quick --mallopt     # allocator experiment
    .venv/bin/python benchmarks/bench_training.py --models vtcnn2 ee-baseline --frames 512 \
        --profile 3                                                 # where a QAT step goes

--profile N runs torch.profiler over N more batches of the float twin (after the first epoch)
and of the QAT model in each phase (after each epoch) and prints, in ms per step, the self CPU
time by category (conv/linear, BatchNorm, pooling, dropout RNG, kthvalue, Adam, autograd glue,
other ops on tensors of >= 4096 elements, ops on small tensors, time outside any op), the wall
time of data / forward / backward / optimizer, the op calls per step and the top ops of QAT.
--mallopt (glibc) keeps freed memory in the heap instead of returning each large tensor to the
kernel: what amchw train and compress do (amchw.train.tune_allocator).

What the numbers mean: "ratio" is the price of fake quantization on this CPU, for the same
network, frames and optimizer; >= 0.5 meets the issue's aim. QAT-learn is the cost of most of a
long run; QAT-stats the cost of the first 300 steps (several epochs of a small data file), so
both matter. "h5 share" above a few percent means the per-batch HDF5 reads of amchw train are
worth overlapping or avoiding (loading the split into memory). Numbers from a shared machine
move with its load: the load average is printed before and after; the ratio, from interleaved
steps, moves less than the absolute rates.

This is a benchmark, not a test: it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import os
import sys

MODELS = ("vtcnn2", "vgg10", "ee-baseline", "cnn-slim", "gru-cnn")
#: default training frames per timed epoch (halved by --quick): the slow models get fewer, the
#: fast ones more, so each epoch takes a few seconds on 2 cores
DEFAULT_FRAMES = {"vtcnn2": 2048, "vgg10": 1024, "ee-baseline": 4096, "cnn-slim": 2048,
                  "gru-cnn": 512}
AIM = 0.5  # the aim: QAT frames/s >= 0.5 x float frames/s
#: per-model aims where they differ: the quantized GRU-CNN within 3x of a float nn.GRU network
AIMS = {"gru-cnn": 1 / 3}


def _frames_arg(values: list[str], models, quick: bool, parser) -> dict[str, int]:
    """--frames: one count for every model, and/or NAME=COUNT pairs."""
    out = {m: DEFAULT_FRAMES[m] // (2 if quick else 1) for m in models}
    # a bare N first (whatever its place), then MODEL=N pairs on top of it
    for v in sorted(values or [], key=lambda v: "=" in v):
        name, _, count = v.rpartition("=")
        try:
            n = int(count)
        except ValueError:
            parser.error(f"--frames: {v!r} is neither N nor MODEL=N")
        if n < 2:
            parser.error("--frames: counts must be >= 2")
        if name:
            if name not in MODELS:
                parser.error(f"--frames: unknown model {name!r}")
            out[name] = n
        else:
            out = {m: n for m in out}
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Training throughput: Brevitas QAT vs plain float PyTorch, same network and "
                    "frames; plus the HDF5 vs in-memory data path.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="half the default frames of each model")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--frames", nargs="+", default=None, metavar="N|MODEL=N",
                   help="timed training frames per epoch: one count for all models and/or "
                        "MODEL=N (default vtcnn2 2048, vgg10 1024, ee-baseline 4096, cnn-slim "
                        "2048; half with --quick)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: all cores)")
    p.add_argument("--scales", default="po2", choices=("po2", "float"),
                   help="QuantConfig.scales of the QAT model")
    p.add_argument("--seed", type=int, default=0, help="model, data and batch-order seed")
    p.add_argument("--mallopt", action="store_true",
                   help="glibc only: keep freed memory in the heap (mallopt M_MMAP_MAX=0, "
                        "M_TRIM_THRESHOLD=2 GiB) so large tensors are not mmapped and "
                        "page-faulted in again on every step (what amchw train does)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile N batches of the float twin and of QAT in each phase "
                        "(torch.profiler)")
    p.add_argument("--profile-top", type=int, default=12, help="ops listed per profile")
    p.add_argument("--json", metavar="OUT", default=None, help="also write results as JSON")
    a = p.parse_args(argv)
    if a.batch_size < 2:
        p.error("--batch-size must be >= 2 (train-mode BatchNorm)")
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be >= 1")
    a.frames = _frames_arg(a.frames, a.models, a.quick, p)
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads is not None:
    # before torch / numpy load their thread pools
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)

import copy  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore", message="fast_hadamard_transform")
warnings.filterwarnings("ignore", message="brevitas.fx is deprecated")

import brevitas  # noqa: E402
from float_layers import float_layer  # noqa: E402

from amchw.data.radioml import H5Frames, synth_to_h5  # noqa: E402
from amchw.data.synthetic import PROFILES  # noqa: E402
from amchw.train import tune_allocator  # noqa: E402
from amchw.data.torch_dataset import FrameDataset  # noqa: E402
from amchw.models import ZOO, QuantConfig, QuantGRU, build  # noqa: E402
from amchw.train import Objective, _batches, _heads  # noqa: E402

# ------------------------------------------------------------------------------ models


def _replace_brevitas(module: nn.Module, prefix: str) -> None:
    """Replace, in place and top-down, every Brevitas child (at any depth) by float_layer."""
    for child, m in list(module.named_children()):
        name = f"{prefix}{child}"
        if type(m).__module__.startswith("brevitas") or isinstance(m, QuantGRU):
            setattr(module, child, float_layer(name, m))
        else:
            _replace_brevitas(m, name + ".")


def float_twin(model: nn.Module) -> nn.Module:
    """The same architecture with torch.nn layers in place of Brevitas ones (module docstring):
    a deep copy whose Brevitas modules are replaced in their parents, starting from the QAT
    model's float weights."""
    twin = copy.deepcopy(model)
    _replace_brevitas(twin, "")
    left = [n for n, m in twin.named_modules() if type(m).__module__.startswith("brevitas")]
    if left:
        raise ValueError(f"float twin still holds Brevitas modules: {left}")
    return twin.float().train()


def stats_scalers(model: nn.Module) -> list[nn.Module]:
    """Brevitas' scale modules that initialise from runtime statistics (a step counter, a
    statistics buffer and collect_stats_steps), as amchw.train._quant_state finds them."""
    return [m for m in model.modules()
            if isinstance(getattr(m, "counter", None), int) and hasattr(m, "buffer")
            and isinstance(getattr(m, "collect_stats_steps", None), int)]


def end_stats_phase(model: nn.Module) -> int:
    """Jump every statistics-initialised scale to the end of its collection phase: its next
    training call folds the statistics collected so far into the learned parameter."""
    mods = stats_scalers(model)
    for m in mods:
        m.counter = max(m.counter, m.collect_stats_steps)
    return len(mods)


# ------------------------------------------------------------------------------ data


def write_data(name: str, n: int, directory: Path, seed: int) -> Path:
    """A synthetic file of the model's profile, as `amchw train` writes it (synth_to_h5, every
    SNR of the profile), with at least n frames."""
    prof = PROFILES[ZOO[name].profile]
    per = max(1, math.ceil(n / (len(prof.classes) * len(prof.snrs))))
    path = directory / f"{prof.name}-{per}-seed{seed}.h5"
    if not path.exists():
        synth_to_h5(path, prof.name, per, prof.snrs, seed=seed)
    return path


def datasets(reader: H5Frames, name: str, n: int, seed: int):
    """(HDF5-backed, in-memory) FrameDatasets over the same n seeded rows of the file."""
    rows = np.sort(np.random.default_rng([seed, 2]).permutation(reader.n)[:n])
    shape = tuple(ZOO[name].input_shape)
    h5 = FrameDataset(reader, rows, shape)
    mem = FrameDataset((reader.frames(rows), reader.labels[rows]), None, shape)
    return h5, mem


# ------------------------------------------------------------------------------ timing


def _step(model, opt, objective, x, y, sums):
    """One batch of amchw.train._fit's loop (after the batch read)."""
    opt.zero_grad()
    loss, heads = objective.step(model, x, y)
    opt.step()
    sums[0] += float(loss.detach()) * y.numel()
    sums[1] += int((heads[-1].argmax(1) == y).sum())


def train_epochs(runs, ds: FrameDataset, batch: int, seed: int) -> list[dict]:
    """One epoch over ds for each (model, optimizer) of runs, interleaved batch by batch (every
    model steps on batch k before any steps on batch k + 1) so that all of them see the same
    machine load; each step is timed on its own. One untimed warm-up batch per model first.
    Returns per run: frames, batches, seconds, frames/s, mean loss and accuracy."""
    objective = Objective()
    for model, _ in runs:
        model.train()
    torch.manual_seed(seed)  # dropout masks
    warm = next(_batches(len(ds), batch, torch.Generator().manual_seed(seed + 1)))
    x, y = ds.batch(warm)
    for model, opt in runs:
        _step(model, opt, objective, x, y, [0.0, 0])
    sums = [[0.0, 0] for _ in runs]
    secs = [0.0 for _ in runs]
    seen = steps = 0
    for pos in _batches(len(ds), batch, torch.Generator().manual_seed(seed)):
        for i, (model, opt) in enumerate(runs):
            t0 = time.perf_counter()
            x, y = ds.batch(pos)
            _step(model, opt, objective, x, y, sums[i])
            secs[i] += time.perf_counter() - t0
        seen += y.numel()
        steps += 1
    return [{"frames": seen, "batches": steps, "seconds": dt, "fps": seen / dt,
             "loss": sm[0] / max(seen, 1), "acc": sm[1] / max(seen, 1)}
            for dt, sm in zip(secs, sums)]


def data_epoch(ds: FrameDataset, batch: int, seed: int) -> dict:
    """The batch reads of one epoch alone (one untimed warm-up read first)."""
    ds.batch(next(_batches(len(ds), batch, torch.Generator().manual_seed(seed + 1))))
    gen = torch.Generator().manual_seed(seed)
    seen = 0
    t0 = time.perf_counter()
    for pos in _batches(len(ds), batch, gen):
        x, y = ds.batch(pos)
        seen += y.numel()
    dt = time.perf_counter() - t0
    return {"frames": seen, "seconds": dt, "fps": seen / dt}


#: profile categories: (label, substrings of the op name); the first match wins
CATEGORIES = (
    ("conv / linear", ("convolution", "aten::mm", "aten::addmm", "aten::bmm", "aten::linear",
                       "aten::matmul")),
    ("batchnorm", ("batch_norm",)),
    ("pooling", ("pool",)),
    ("dropout RNG", ("bernoulli",)),
    ("percentile stats (kthvalue)", ("kthvalue",)),
    ("optimizer (Adam)", ("Optimizer.", "_foreach", "aten::addcmul_", "aten::addcdiv_",
                          "aten::lerp_")),
    ("autograd engine glue", ("autograd::engine",)),
)
#: ops whose largest input has fewer elements are "small" (scales, bit widths, thresholds)
SMALL_NUMEL = 4096
BIG_OPS = "other ops on tensors (quantizer arithmetic, ReLU, loss, grads, fills)"
SMALL_OPS = f"ops on small tensors (< {SMALL_NUMEL} elements: scales, bit widths)"


def _category(name: str, shapes) -> str:
    for label, keys in CATEGORIES:
        if any(k in name for k in keys):
            return label
    numel = max((math.prod(s) for s in shapes if isinstance(s, (list, tuple))), default=0)
    return BIG_OPS if numel >= SMALL_NUMEL else SMALL_OPS


def profile_steps(model, opt, ds: FrameDataset, batch: int, steps: int, seed: int,
                  top: int) -> dict:
    """torch.profiler over `steps` training batches of the step of amchw train (forward, summed
    cross-entropy, backward, Adam; written out here to time its parts): the ops with the largest
    self CPU time, the self CPU time per category (CATEGORIES; the rest split by input size),
    the wall time outside any op (Python, module calls) and the split of a step into data,
    forward (+ loss), backward and optimizer time (wall clock, profiler overhead included)."""
    from torch.profiler import ProfilerActivity, profile

    model.train()
    gen = torch.Generator().manual_seed(seed + 7)
    it = iter(_batches(len(ds), batch, gen))
    split = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            pos = next(it, None)
            if pos is None:
                it = iter(_batches(len(ds), batch, gen))
                pos = next(it)
            t0 = time.perf_counter()
            x, y = ds.batch(pos)
            t1 = time.perf_counter()
            opt.zero_grad()
            heads = _heads(model(x))
            loss = sum(nn.functional.cross_entropy(h, y) for h in heads)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            opt.step()
            t4 = time.perf_counter()
            for k, a, b in (("data", t0, t1), ("forward", t1, t2), ("backward", t2, t3),
                            ("optimizer", t3, t4)):
                split[k] += b - a
    by_shape = prof.key_averages(group_by_input_shape=True)
    cats: dict[str, float] = {}
    for e in by_shape:
        c = _category(e.key, e.input_shapes or [])
        cats[c] = cats.get(c, 0.0) + e.self_cpu_time_total / 1e3 / steps
    wall = sum(split.values()) * 1e3 / steps
    cats["outside ops (Python, dispatch)"] = max(0.0, wall - sum(cats.values()))
    avg = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in avg) or 1.0
    rows = sorted(avg, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    ops = [{"op": e.key, "calls_per_step": e.count / steps,
            "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "share": e.self_cpu_time_total / total} for e in rows]
    return {"steps": steps, "split_ms_per_step": {k: v * 1e3 / steps for k, v in split.items()},
            "ms_per_step": wall, "categories_ms_per_step": cats,
            "op_calls_per_step": sum(e.count for e in avg) / steps, "ops": ops}


# ------------------------------------------------------------------------------ main


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def run_model(name: str, n: int, args, tmp: Path) -> dict:
    qcfg = QuantConfig(scales=args.scales)
    path = write_data(name, n, tmp, args.seed)
    with H5Frames(path) as reader:
        ds_h5, ds_mem = datasets(reader, name, n, args.seed)
        res = {"model": name, "frames": len(ds_mem), "file_frames": reader.n,
               "input_shape": list(ZOO[name].input_shape)}
        qat = build(name, qcfg, seed=args.seed)
        twin = float_twin(qat)
        f_opt = torch.optim.Adam([p for p in twin.parameters() if p.requires_grad], lr=1e-3)
        q_opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=1e-3)
        runs = [(twin, f_opt), (qat, q_opt)]
        left = min((m.collect_stats_steps - m.counter for m in stats_scalers(qat)), default=0)
        # epoch 1: QAT while the activation scales collect statistics; epoch 2: learned scales
        res["float_1"], res["qat_stats"] = train_epochs(runs, ds_mem, args.batch_size,
                                                        args.seed)
        res["qat_stats"]["stats_steps_left_before"] = left
        res["qat_stats"]["whole_epoch_in_stats_phase"] = left > res["qat_stats"]["batches"] + 1
        prof = {}
        if args.profile:
            prof["float"] = profile_steps(twin, f_opt, ds_mem, args.batch_size, args.profile,
                                          args.seed, args.profile_top)
            prof["QAT stats"] = profile_steps(qat, q_opt, ds_mem, args.batch_size, args.profile,
                                              args.seed, args.profile_top)
        res["stats_scalers"] = end_stats_phase(qat)
        res["float_2"], res["qat_learned"] = train_epochs(runs, ds_mem, args.batch_size,
                                                          args.seed + 1)
        if args.profile:
            prof["QAT learned"] = profile_steps(qat, q_opt, ds_mem, args.batch_size,
                                                args.profile, args.seed, args.profile_top)
        f1, f2 = res["float_1"], res["float_2"]
        res["float"] = {"frames": f1["frames"] + f2["frames"],
                        "seconds": f1["seconds"] + f2["seconds"],
                        "fps": (f1["frames"] + f2["frames"]) / (f1["seconds"] + f2["seconds"])}
        print(f"  {name}: float {_rate(f1['fps'])} / {_rate(f2['fps'])}, QAT stats "
              f"{_rate(res['qat_stats']['fps'])}, QAT learned "
              f"{_rate(res['qat_learned']['fps'])} frames/s", flush=True)
        res["data_h5"] = data_epoch(ds_h5, args.batch_size, args.seed)
        res["data_mem"] = data_epoch(ds_mem, args.batch_size, args.seed)
        if prof:
            res["profile"] = prof
    for phase, peer in (("qat_stats", "float_1"), ("qat_learned", "float_2")):
        ratio = res[phase]["fps"] / res[peer]["fps"]
        res[phase]["ratio"] = ratio
        res[phase]["aim"] = AIMS.get(name, AIM)
        res[phase]["meets_aim"] = ratio >= AIMS.get(name, AIM)
        # share of a QAT epoch that the HDF5 reads would add (reads are not overlapped)
        t_step = 1.0 / res[phase]["fps"]
        t_read = 1.0 / res["data_h5"]["fps"]
        res[phase]["h5_read_share"] = t_read / (t_read + t_step)
    return res


def print_profile(name: str, prof: dict) -> None:
    phases = list(prof)
    steps = prof[phases[0]]["steps"]
    print(f"\nprofile {name}: ms per training step (mean over {steps} profiled steps; "
          "torch.profiler self CPU time)")
    print(f"  {'':<68}" + "".join(f"{p:>12}" for p in phases))
    labels = [lab for lab, _ in CATEGORIES] + [BIG_OPS, SMALL_OPS, "outside ops (Python, dispatch)"]
    for lab in labels:
        vals = [prof[p]["categories_ms_per_step"].get(lab, 0.0) for p in phases]
        print(f"  {lab:<68}" + "".join(f"{v:>12.1f}" for v in vals))
    print(f"  {'step (wall, profiled)':<68}" + "".join(f"{prof[p]['ms_per_step']:>12.1f}"
                                                       for p in phases))
    for part in ("forward", "backward", "optimizer", "data"):
        print(f"    {part + ' (wall)':<66}" + "".join(
            f"{prof[p]['split_ms_per_step'][part]:>12.1f}" for p in phases))
    print(f"  {'op calls per step':<68}" + "".join(f"{prof[p]['op_calls_per_step']:>12.0f}"
                                                   for p in phases))
    for p in phases[1:]:
        print(f"  top ops, {p}:")
        for o in prof[p]["ops"]:
            print(f"    {o['op'][:44]:<44} {o['calls_per_step']:>7.0f} calls "
                  f"{o['self_ms_per_step']:>8.1f} ms {100 * o['share']:>5.1f}%")


def main(args: argparse.Namespace) -> int:
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as amchw train does
    malloc = "default"
    if args.mallopt:
        malloc = "mallopt (no mmap, no trim)" if tune_allocator() else "default (mallopt failed)"
    load0 = _loadavg()
    print(f"torch {torch.__version__}, brevitas {brevitas.__version__}, {threads} torch "
          f"threads, {os.cpu_count()} cores, batch {args.batch_size}, scales {args.scales}, "
          f"malloc {malloc}, load average {load0}", flush=True)
    results = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        for name in args.models:
            results.append(run_model(name, args.frames[name], args, Path(tmp)))
    wall = time.perf_counter() - t_all
    load1 = _loadavg()

    head = (f"{'model':<12} {'frames':>6} {'float f/s':>10} {'QAT-stats':>10} {'ratio':>6} "
            f"{'QAT-learn':>10} {'ratio':>6} {'h5 f/s':>9} {'mem f/s':>10} {'h5 share':>8}  "
            f"aim QAT >= {AIM}x float (gru-cnn: 1/3x)")
    print("\n" + head)
    print("-" * len(head))
    for r in results:
        st, le = r["qat_stats"], r["qat_learned"]
        verdict = ", ".join(f"{k} {'met' if p['meets_aim'] else 'NOT met'}"
                            for k, p in (("stats", st), ("learned", le)))
        print(f"{r['model']:<12} {r['frames']:>6} {_rate(r['float']['fps']):>10} "
              f"{_rate(st['fps']):>10} {st['ratio']:>5.2f}x {_rate(le['fps']):>10} "
              f"{le['ratio']:>5.2f}x {_rate(r['data_h5']['fps']):>9} "
              f"{_rate(r['data_mem']['fps']):>10} {100 * le['h5_read_share']:>7.1f}%  {verdict}")
    print("\nf/s: training frames per second (warm-up batch excluded); float f/s over both "
          "epochs. ratio: QAT / float\nof the same (interleaved) epoch. QAT-stats: activation "
          "scales still collected from runtime\nstatistics (Brevitas' first 300 steps); "
          "QAT-learn: learned scales (steady state). h5 / mem f/s:\nbatch reads alone "
          "(FrameDataset over the HDF5 file / over arrays in memory). h5 share: the part of\na "
          "QAT-learn epoch that per-batch HDF5 reads would take.")
    for r in results:
        if not r["qat_stats"]["whole_epoch_in_stats_phase"]:
            print(f"note: {r['model']}: the QAT-stats epoch ran past the statistics phase "
                  "(too many batches); its numbers mix both phases")
    print(f"load average {load0} -> {load1}; {wall:.0f} s in all")
    for r in results:
        if "profile" in r:
            print_profile(r["model"], r["profile"])
    if args.json:
        out = {"benchmark": "bench_training", "torch": torch.__version__,
               "brevitas": brevitas.__version__, "python": platform.python_version(),
               "machine": platform.machine(), "cores": os.cpu_count(), "threads": threads,
               "batch_size": args.batch_size, "scales": args.scales, "seed": args.seed,
               "malloc": malloc, "aim_ratio": AIM, "load_before": load0, "load_after": load1,
               "seconds": wall, "results": results}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
