"""Quantization-aware training of zoo models on RadioML-layout data (evaluation of a trained
checkpoint, float and integer: amchw.evaluate).

train(): the data file is split as the configuration says (amchw.data.splits: by default the
AMC challenge's split when frames are stored in equal (class, SNR) groups, else a seeded random
10% test split, with a seeded 10% of the training frames held out for validation). The
activation quantizers initialise their scales from the statistics of the first training
steps (Brevitas' runtime statistics); the model is trained with Adam and a learning-rate
schedule (cosine by default); each epoch ends with a validation pass. The checkpoint (model
name, quant config, class names, weights, optimizer, schedule, RNG state, history) is
written atomically after every epoch, so an interrupted run resumed with the same output loses
at most the epoch in progress; the best epoch (lowest validation loss) is kept in the same
file; training stops early after `patience` epochs without improvement. Deterministic under a
seed on CPU.
"""

from __future__ import annotations

import contextvars
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from amchw.checkpoint import (DEFAULT_SEED, DEFAULT_VAL_FRACTION, atomic_save, config_split,
                              in_float_phase, load, load_state, model_from_checkpoint)
from amchw.data.radioml import DatasetError, H5Frames, open_frames
from amchw.data.torch_dataset import FrameDataset


@dataclass
class TrainConfig:
    model: str
    data: str
    out: str
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 3
    seed: int = DEFAULT_SEED
    val_fraction: float = DEFAULT_VAL_FRACTION
    max_train: int | None = None        # cap on training frames (quick runs)
    train_fraction: float = 1.0         # a seeded fraction of the training frames
    quant: dict = field(default_factory=dict)   # QuantConfig fields
    init: str | None = None             # start from this checkpoint's weights (fine-tuning)
    normalize: str = "auto"             # how frames are scaled (amchw.data.radioml)
    device: str | None = None           # cpu | cuda | auto; None: DEVICE's (default auto)
    preload_mb: int = 4096              # train/val splits up to this size are read into memory
    schedule: str = "cosine"            # learning rate: cosine | constant | step:EVERY:GAMMA
    float_epochs: int = 0               # float warm-up: the first epochs train unquantized
    best_by: str = "loss"               # the kept epoch: lowest validation loss, or highest
                                        # validation accuracy ("accuracy", the slides')
    float_only: bool = False            # every epoch float (for post-training quantization:
                                        # amchw compress ptq); the best epoch by float val loss
    stream: bool = False                # fresh synthetic training frames every epoch after the
                                        # first (amchw.data.stream; an amchw synthetic file)
    split: str = "auto"                 # amchw.checkpoint.SPLIT_CHOICES
    snr_range: tuple[int, int] | None = None   # train/val/test only on SNRs in [lo, hi] dB
    undersample: int | None = None      # at most this many frames per (class, SNR), seeded


#: what picks the kept epoch (TrainConfig.best_by)
BEST_BY = ("loss", "accuracy")


@dataclass
class EpochLog:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float
    phase: str = "qat"      # "float" (warm-up, quantizers off) or "qat"


def _batches(n: int, size: int, gen: torch.Generator | None):
    """Shuffled batches (gen) or in order; a shuffled last batch of one frame is dropped
    (a train-mode BatchNorm cannot normalise one frame)."""
    order = torch.randperm(n, generator=gen).numpy() if gen is not None else np.arange(n)
    for a in range(0, n, size):
        b = order[a:a + size]
        if gen is not None and b.size < 2:
            return
        yield b


def _heads(out) -> list[torch.Tensor]:
    """A model's output as a list of logit tensors: one, or each exit of an early-exit network
    (the last is the final classifier)."""
    # (a Brevitas QuantTensor is itself a tuple: one output)
    outs = out if isinstance(out, (tuple, list)) and not hasattr(out, "value") else (out,)
    return [o.value if hasattr(o, "value") else o for o in outs]


DEVICES = ("auto", "cpu", "cuda")
#: the device of a TrainConfig that names none (`amchw compress --device` sets it for a run)
DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("amchw_device", default="auto")


def resolve_device(device: str | None) -> torch.device:
    """cpu, cuda (refused when torch sees no GPU) or auto (cuda when available, else cpu);
    None is DEVICE's value."""
    device = DEVICE.get() if device is None else device
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    return torch.device(device)


def to_cpu(obj):
    """obj with every tensor inside (dicts, lists, tuples) moved to the CPU: what a checkpoint
    stores, so that it loads on a machine without the training device."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def tune_allocator() -> bool:
    """glibc: serve large tensors from the heap instead of a fresh mmap each (whose pages are
    zeroed and faulted in on every training step) and never trim it, as MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=2147483647 would; the process keeps its peak memory. QAT steps of
    vtcnn2 and vgg10 (64 MiB activations at batch 256) run ~2x faster (benchmarks/README.md,
    bench_training.py --mallopt). Returns whether glibc accepted both settings; elsewhere a
    no-op returning False."""
    import ctypes
    import ctypes.util
    import platform

    name = ctypes.util.find_library("c")
    if not name or platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(
            libc.mallopt(m_trim_threshold, ctypes.c_int(2**31 - 1)))
    except (OSError, AttributeError):
        return False


def evaluate_float(model: nn.Module, ds: FrameDataset, batch_size: int = 512):
    """(mean loss, predictions) of the (fake-quantized) float model; for a model with several
    exits the loss is summed over them and the predictions are the final classifier's."""
    model.eval()
    device = next(model.parameters()).device
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    preds, total = [], 0.0
    with torch.no_grad():
        for pos in _batches(len(ds), batch_size, None):
            x, y = (t.to(device) for t in ds.batch(pos))
            heads = _heads(model(x))
            total += float(sum(loss_fn(h, y) for h in heads))
            preds.append(heads[-1].argmax(1).cpu().numpy())
    return total / max(len(ds), 1), np.concatenate(preds) if preds else np.zeros(0, np.int64)


class Objective:
    """How one batch becomes gradients. The default: the cross-entropy of every exit, summed
    (one exit: plain cross-entropy; an early-exit network: BranchyNet-style joint training)."""

    name = "cross-entropy"

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        """Forward, loss, backward (gradients into .grad); returns (loss, logits heads)."""
        heads = _heads(model(x))
        loss = sum(nn.functional.cross_entropy(h, y) for h in heads)
        loss.backward()
        return loss.detach(), heads

    def to(self, device: torch.device) -> None:
        """Move what the objective holds (e.g. a teacher model) to the training device."""

    def describe(self) -> dict:
        return {"name": self.name}


class Constraint:
    """A rule the weights keep while training (pruning masks, frozen layers)."""

    name = "constraint"

    def prepare(self, model: nn.Module) -> None:
        """Called once on the starting model, before the optimizer is built."""

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after every optimizer step (step counts from 1 over the whole run)."""

    def ready(self, step: int) -> bool:
        """Whether the model after `step` steps may be kept as the best (e.g. a pruning
        schedule has reached its target); early stopping counts only ready epochs."""
        return True

    def describe(self) -> dict:
        return {"name": self.name}


class Frozen(Constraint):
    """The named layers' parameters (weights, bias, weight-quantizer scales) are not trained."""

    name = "frozen"

    def __init__(self, layers):
        self.layers = list(layers)

    def prepare(self, model):
        mods = dict(model.named_modules())
        for name in self.layers:
            if name not in mods:
                raise ValueError(f"no layer {name!r} to freeze")
            for p in mods[name].parameters():
                p.requires_grad_(False)

    def describe(self):
        return {"name": self.name, "layers": self.layers}


def _quant_state(model: nn.Module) -> dict:
    """What Brevitas' runtime-statistics scale initialisation keeps outside state_dict: per
    module its step counter, its statistics buffer and the raw scale parameter (state_dict
    reports the buffer in place of the parameter until the statistics are folded in)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(getattr(m, "counter", None), int) and hasattr(m, "buffer"):
            out[name] = {"counter": m.counter, "buffer": m.buffer.detach().clone(),
                         "value": m.value.detach().clone() if hasattr(m, "value") else None}
    return out


def _set_quant_state(model: nn.Module, state: dict) -> None:
    mods = dict(model.named_modules())
    with torch.no_grad():
        for name, st in state.items():
            m = mods[name]
            m.counter = st["counter"]
            m.buffer.copy_(st["buffer"])
            if st["value"] is not None:
                m.value.copy_(st["value"])


def parse_schedule(text: str) -> tuple:
    """"cosine" | "constant" | "step:EVERY:GAMMA" (the rate times GAMMA every EVERY epochs,
    e.g. step:20:0.1, the GRU-CNN seed's) -> ("cosine",) | ("constant",) | ("step", every,
    gamma); ValueError naming the text otherwise."""
    if text in ("cosine", "constant"):
        return (text,)
    parts = str(text).split(":")
    try:
        if parts[0] != "step" or len(parts) != 3:
            raise ValueError
        every, gamma = int(parts[1]), float(parts[2])
        if every < 1 or not 0.0 < gamma <= 1.0:
            raise ValueError
    except ValueError:
        raise ValueError(f"learning-rate schedule {text!r}: choose cosine, constant or "
                         "step:EVERY:GAMMA (EVERY >= 1 epochs, 0 < GAMMA <= 1)") from None
    return ("step", every, gamma)


def lr_schedule(opt, text: str, epochs: int):
    """The epoch-wise scheduler of `text` (parse_schedule): cosine annealing over the run,
    a constant rate, or a step decay."""
    kind = parse_schedule(text)
    if kind[0] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    if kind[0] == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    return torch.optim.lr_scheduler.StepLR(opt, step_size=kind[1], gamma=kind[2])


def set_quantization(model: nn.Module, enabled: bool) -> None:
    """Turn every Brevitas quantizer of `model` (weights, biases, activations) off or back on.
    Off, the model is its float twin: layers pass plain tensors (return_quant_tensor is
    cleared, its value kept in `_amchw_rqt` to restore), and activation quantizers gather
    no statistics, so their scales are initialised from the first quantized steps."""
    for m in model.modules():
        if hasattr(m, "disable_quant"):
            m.disable_quant = not enabled
        if hasattr(m, "return_quant_tensor"):
            if not enabled:
                if not hasattr(m, "_amchw_rqt"):
                    m._amchw_rqt = m.return_quant_tensor
                m.return_quant_tensor = False
            elif hasattr(m, "_amchw_rqt"):
                m.return_quant_tensor = m._amchw_rqt
                del m._amchw_rqt


#: what a fine-tuned checkpoint carries over from the checkpoint it started from
_LINEAGE = ("method", "pruning", "pq", "net_trim", "init")


def train(cfg: TrainConfig, progress=None, log=print, objective: Objective | None = None,
          constraints=()) -> dict:
    """Train per `cfg`; returns the final checkpoint dict. progress(kind, n) is called with
    ("batches", k) during an epoch; log(str) gets one line per epoch. `objective` turns a batch
    into gradients (default: cross-entropy); `constraints` keep rules on the weights (masks,
    frozen layers). torch's global RNG (dropout) is seeded inside and restored on exit."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _train(cfg, progress, log, objective or Objective(), list(constraints))


def _train(cfg: TrainConfig, progress, log, objective: Objective, constraints: list) -> dict:
    from amchw.fileio import check_writable
    from amchw.models import ZOO

    check_writable(cfg.out)   # before an epoch is spent: a directory, an unwritable folder
    init_model = start_ck = None
    if cfg.init is not None:
        init_model, start_ck = model_from_checkpoint(cfg.init)
        if cfg.model != start_ck["model"]:
            raise ValueError(f"{cfg.init} holds {start_ck['model']}, not {cfg.model}")
        cfg.quant = dict(start_ck["config"])
    if cfg.model not in ZOO:
        raise ValueError(f"unknown zoo model {cfg.model!r}; choose from {sorted(ZOO)}")
    with open_frames(cfg.data, cfg.normalize) as reader:
        _fit(cfg, reader, ZOO[cfg.model], init_model, start_ck, progress, log, objective,
             constraints)
    return load(cfg.out)


def _fit(cfg: TrainConfig, reader: H5Frames, entry, init_model, start_ck, progress, log,
         objective: Objective, constraints: list) -> None:
    """_train's epochs on the open data file; the checkpoint is written after each."""
    from amchw.models import QuantConfig, build

    if reader.length * 2 != int(np.prod(entry.input_shape)):
        raise DatasetError(f"{cfg.data}: frames of 2 x {reader.length} do not fit {cfg.model}'s "
                           f"input {entry.input_shape}")
    if len(reader.classes) != entry.num_classes:
        raise DatasetError(f"{cfg.data}: {len(reader.classes)} classes, {cfg.model} has "
                           f"{entry.num_classes}")
    torch.use_deterministic_algorithms(True, warn_only=True)
    train_i, val_i, test_i = config_split(reader, cfg)
    if not 0.0 < cfg.train_fraction <= 1.0:
        raise ValueError(f"train fraction must be in (0, 1], got {cfg.train_fraction}")
    keep = math.ceil(cfg.train_fraction * train_i.size)
    if cfg.max_train is not None:
        keep = min(keep, cfg.max_train)
    if keep < train_i.size:
        train_i = np.sort(np.random.default_rng([cfg.seed, 2]).permutation(train_i)[:keep])
    shape = tuple(entry.input_shape)
    tr = FrameDataset(reader, train_i, shape)
    va = FrameDataset(reader, val_i, shape)
    if (train_i.size + val_i.size) * reader.length * 8 <= cfg.preload_mb * 2**20:
        tr, va = tr.in_memory(), va.in_memory()   # no per-batch file reads
    device = resolve_device(cfg.device)
    qcfg = QuantConfig(**cfg.quant)
    out = Path(cfg.out)
    resume = out.is_file()
    model = init_model.train() if start_ck is not None else build(cfg.model, qcfg, seed=cfg.seed)
    model.to(device)
    objective.to(device)
    method = {"objective": objective.describe(),
              "constraints": [c.describe() for c in constraints]}
    ck = None
    if resume:
        ck = load(out)
        if ck.get("model") != cfg.model or ck.get("config") != asdict(qcfg):
            raise ValueError(f"{out}: holds a different model or configuration; remove it or "
                             "choose another --output")
        if ck.get("method", method) != method:
            raise ValueError(f"{out}: was trained by another method ({ck['method']}); remove it "
                             "or choose another --output")
        load_state(model, ck["last_state_dict"], in_float_phase(ck))
        _set_quant_state(model, ck["quant_state"])
        model.to(device)
    for c in constraints:
        c.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = lr_schedule(opt, cfg.schedule, cfg.epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    if cfg.best_by not in BEST_BY:
        raise ValueError(f"best_by must be one of {', '.join(BEST_BY)}, got {cfg.best_by!r}")
    best = {"val_loss": math.inf, "val_acc": -math.inf, "epoch": -1, "state_dict": None}
    start = 0
    if resume:
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        history = ck["history"]
        best = {"val_loss": ck["best_val_loss"], "epoch": ck["best_epoch"],
                "val_acc": ck.get("best_val_acc", -math.inf), "state_dict": ck["state_dict"]}
        start = ck["epoch"] + 1
        log(f"resuming {out} at epoch {start + 1}")
    # no calibration pass: Brevitas initialises each learned activation scale from the
    # statistics of the first training steps, then learns it (a scale calibrated on the random
    # initial activations saturates once the weights grow, and its log-domain parameter moves
    # too slowly to follow, which stalls training)
    if cfg.float_only and cfg.float_epochs:
        raise ValueError("float-only training has no separate float warm-up: give one of "
                         "them")
    if cfg.float_epochs < 0 or (cfg.float_epochs and cfg.float_epochs >= cfg.epochs):
        raise ValueError(f"float epochs ({cfg.float_epochs}) must be fewer than the epochs "
                         f"({cfg.epochs}): the last epochs train quantized")
    stale = 0   # candidate epochs since the best
    if resume:
        stale = ck.get("stale", len(history) - best["epoch"] - 1 if history else 0)
    step = ck.get("step", 0) if resume else 0     # optimizer steps so far
    stream = None
    if cfg.stream:
        from amchw.data.stream import SyntheticStream

        stream = SyntheticStream(reader, len(tr), cfg.seed, cfg.epochs - 1)
        stream.prefetch(max(start, 1))   # generated while the first epoch trains
    try:
        for epoch in range(start, cfg.epochs):
            if stale >= cfg.patience:
                log(f"early stop: no validation improvement for {cfg.patience} epochs")
                break
            t0 = time.perf_counter()
            warmup = epoch < cfg.float_epochs or cfg.float_only
            set_quantization(model, not warmup)
            model.train()
            seen = correct = 0
            total = 0.0
            data = tr if stream is None or epoch == 0 else FrameDataset(stream.get(epoch), None,
                                                                        shape)
            for pos in _batches(len(data), cfg.batch_size, gen):
                x, y = (t.to(device, non_blocking=True) for t in data.batch(pos))
                opt.zero_grad()
                loss, heads = objective.step(model, x, y)
                opt.step()
                step += 1
                for c in constraints:
                    c.after_step(model, step)
                total += float(loss.detach()) * y.numel()
                correct += int((heads[-1].argmax(1) == y).sum())
                seen += y.numel()
                if progress is not None:
                    progress("batches", 1)
            lr = opt.param_groups[0]["lr"]
            sched.step()
            val_loss, val_pred = evaluate_float(model, va)
            val_acc = float(np.mean(val_pred == va.y[va.indices])) if len(va) else 0.0
            h = EpochLog(epoch + 1, lr, total / max(seen, 1), correct / max(seen, 1), val_loss,
                         val_acc, time.perf_counter() - t0, "float" if warmup else "qat")
            history.append(asdict(h))
            # (a running schedule, or a float warm-up epoch, is no candidate)
            if (cfg.float_only or not warmup) and all(c.ready(step) for c in constraints):
                if (val_loss < best["val_loss"] if cfg.best_by == "loss"
                        else val_acc > best["val_acc"]):
                    best = {"val_loss": val_loss, "val_acc": val_acc, "epoch": epoch,
                            "state_dict": to_cpu({k: v.clone() for k, v in
                                                  model.state_dict().items()})}
                    stale = 0
                else:
                    stale += 1
            log(f"epoch {h.epoch}/{cfg.epochs}{' (float)' if warmup else ''}: lr {lr:.2e} train "
                f"loss {h.train_loss:.4f} acc {h.train_acc:.4f} | val loss {h.val_loss:.4f} acc "
                f"{h.val_acc:.4f} ({h.seconds:.1f} s)")
            ck = {"model": cfg.model, "config": asdict(qcfg), "classes": list(reader.classes),
                  "normalize": reader.normalize, "data_kind": reader.kind,
                  "state_dict": (best["state_dict"] if best["state_dict"] is not None
                                 else model.state_dict()), "best_epoch": best["epoch"],
                  "best_val_loss": best["val_loss"], "best_val_acc": best["val_acc"],
                  "last_state_dict": model.state_dict(),
                  "quant_state": _quant_state(model),
                  "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                  "epoch": epoch, "history": history,
                  "train_config": asdict(cfg), "data": str(cfg.data), "method": method,
                  "step": step, "stale": stale}
            if cfg.float_only:
                ck["float_only"] = True
            if start_ck is not None:
                ck["init"] = {"path": str(cfg.init),
                              **{k: start_ck[k] for k in start_ck if k in _LINEAGE}}
            atomic_save(to_cpu(ck), out)

    finally:
        if stream is not None:
            stream.close()

def batches_per_epoch(cfg: TrainConfig) -> int:
    """Batches in one epoch of `cfg` as a progress bar counts them: the data file's training
    split, at most max_train frames, in batches of batch_size."""
    with open_frames(cfg.data, cfg.normalize) as reader:
        n_train = config_split(reader, cfg)[0].size
    return math.ceil(min(n_train, cfg.max_train or n_train) / cfg.batch_size)
