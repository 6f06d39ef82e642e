"""The compression methods as runs that read and write checkpoints (the Python API behind
`amchw compress` and `amchw report`). Every run writes an amchw checkpoint (atomically) that
lowers, verifies and simulates like a trained one, carrying what was done under its method key
("net_trim", "pq", "pruning", "method", "init"), and returns a summary dict (imp: one
result per stage).

Data: a run that needs frames reads the data file the start checkpoint was trained on unless
another is given, and uses that checkpoint's split, so the test frames stay unseen."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from amchw.checkpoint import model_from_checkpoint, save_checkpoint, split_frames
from amchw.train import Frozen, TrainConfig, train

from .defaults import (EARLY_EXIT_BATCH_SIZE, EARLY_EXIT_EPOCHS, EARLY_EXIT_LR,
                       EARLY_EXIT_PATIENCE, IMP_FREQUENCY, IMP_INITIAL_SPARSITY, IMP_POWER,
                       IMP_PRUNE_EPOCHS, KD_ALPHA, KD_CONVENTION, KD_TEMPERATURE,
                       NET_TRIM_EPSILON, NET_TRIM_FRAMES, PQ_CENTROIDS, PQ_RETRAIN_EPOCHS,
                       PTQ_CALIBRATION_FRAMES,
                       PQ_TRAIN_FRACTION, imp_training)
from .prune import PruneError


def _data(ck: dict, data) -> str:
    data = data or ck.get("data")
    if not data or not Path(data).is_file():
        raise PruneError(f"no data file: give one (the checkpoint names {ck.get('data')!r})")
    return str(data)


def training_frames(ck: dict, data: str, n: int, seed: int = 0) -> torch.Tensor:
    """Up to n seeded random frames of the checkpoint's training split of `data`."""
    from amchw.models import ZOO

    x = split_frames(data, ZOO[ck["model"]].input_shape, ck, "train", n, seed=[seed, 3])[0]
    return torch.as_tensor(x)


def _config(ck_or_model, data, out, **kw) -> TrainConfig:
    """A TrainConfig continuing a checkpoint (its seed and split) with `kw` overrides."""
    base = dict(ck_or_model.get("train_config", {})) if isinstance(ck_or_model, dict) else {}
    fields = set(TrainConfig.__dataclass_fields__)
    # (the device is where this run trains, not where the checkpoint was trained; a float
    # warm-up or float-only training was the start's way to its weights, not this run's)
    base = {k: v for k, v in base.items()
            if k in fields and k not in ("init", "device", "float_epochs", "float_only")}
    base.update(model=kw.pop("model", base.get("model")), data=data, out=str(out))
    base.update({k: v for k, v in kw.items() if v is not None})
    base.setdefault("quant", {})
    return TrainConfig(**base)


def net_trim(start: str, out: str, layer: str | None = None, epsilon: float = NET_TRIM_EPSILON,
             frames: int | None = None, data: str | None = None, seed: int = 0,
             **admm) -> dict:
    """The edge-efficient seed's Algorithm 1 on one FC layer (default: the first) of a trained
    checkpoint, with activations of `frames` training frames (default: the seed's 20,000, or
    the layer's input width P if larger); no retraining (as the seed). A sparse ADMM phase
    that does not converge is a PruneError naming the layer unless admm has
    keep_unconverged=True."""
    from .nettrim import NotConverged, _linear, first_fc, net_trim_layer

    model, ck = model_from_checkpoint(start)
    layer = layer or first_fc(model)
    p = _linear(model, layer).in_features
    x = training_frames(ck, _data(ck, data), frames or max(NET_TRIM_FRAMES, p), seed)
    try:
        res = net_trim_layer(model, layer, x, epsilon, **admm)
    except NotConverged as e:
        raise PruneError(f"{layer} (epsilon {epsilon:g}, {x.shape[0]:,} frames): {e}; raise "
                         "--max-iter, or pass --keep-unconverged to keep the iterate") from e
    info = {"layer": layer, "epsilon": epsilon, "frames": res.frames, "P": p,
            "n_T": res.n_total, "n_b": res.n_before, "n_a": res.n_after, "p_e": res.p_e,
            "discrepancy": res.discrepancy, "iterations": res.iterations,
            "converged": res.converged, "repair": res.repair, "residuals": res.residuals,
            "dead_inputs": res.dead_inputs,
            "start": str(start)}
    save_checkpoint(out, ck, model, net_trim=info)
    return info


def prune(start: str, out: str, sparsity: float | None = None, pattern: str = "unstructured",
          layers=None, quant: dict | None = None, seed: int = 0) -> dict:
    """Magnitude pruning without training (amchw.compress.prune) of a checkpoint, which keeps
    its trained scales, or of a zoo name (built with `quant`, QuantConfig's scales,
    weight_bits and act_bits, pruned, then calibrated on synthetic frames); writes `out`."""
    from amchw.resolve import compression_source

    from .prune import magnitude_prune

    skipped: dict = {}
    model, ck, done = compression_source(
        start, seed=seed, **(quant or {}),
        prepare=lambda m: magnitude_prune(m, sparsity, pattern, layers, skipped))
    info = {"pattern": pattern, "sparsity": sparsity, "layers": done, "kept_dense": skipped}
    save_checkpoint(out, ck, model, pruning=info)
    return dict(info, model=ck["model"])


def product_quantization(start: str, out: str, layer: str | None, subspaces: int,
                         centroids: int = PQ_CENTROIDS,
                         retrain_epochs: int = PQ_RETRAIN_EPOCHS,
                         train_fraction: float = PQ_TRAIN_FRACTION, data: str | None = None,
                         seed: int = 0, log=print, quant: dict | None = None, **train_kw) -> dict:
    """Algorithm 2 on one FC layer, then (retrain_epochs > 0) the seed's retraining: the rest
    of the network trained on a fraction of the training frames with the PQ layer frozen, so
    its weights stay the codebook's. Without retraining `out` is the quantized checkpoint;
    with it, the one-shot result is kept beside it as <out stem>.noretrain.pt. `start`: a
    checkpoint, or a zoo name (built with `quant`, QuantConfig's scales, weight_bits and
    act_bits, and calibrated on synthetic frames; retraining it needs `data`)."""
    from amchw.models import ZOO
    from amchw.resolve import compression_source

    from .nettrim import first_fc
    from .pq import product_quantize

    if start in ZOO or not Path(start).exists():   # (neither: resolve's RequestError)
        model, ck, _ = compression_source(start, seed=seed, **(quant or {}))
    else:
        model, ck = model_from_checkpoint(start)
    layer = layer or first_fc(model)
    mods = dict(model.named_modules())
    if layer not in mods:
        raise PruneError(f"no layer {layer!r} in {ck['model']}", option="--layer")
    info = product_quantize(mods[layer], layer, subspaces, centroids, seed)
    codes, books = info.pop("codes"), info.pop("codebooks")
    info["start"] = str(start)
    one_shot = out if retrain_epochs <= 0 else str(Path(out).with_suffix("")) + ".noretrain.pt"
    save_checkpoint(one_shot, ck, model, pq=info)
    if retrain_epochs > 0:
        if Path(out).exists():
            raise PruneError(f"{out} exists: remove it or choose another output")
        cfg = _config(ck, _data(ck, data), out, model=ck["model"], epochs=retrain_epochs,
                      train_fraction=train_fraction, init=one_shot, **train_kw)
        train(cfg, log=log, constraints=[Frozen([layer])])
        m2, ck2 = model_from_checkpoint(out)
        w = dict(m2.named_modules())[layer].quant_weight().int().numpy().astype(np.int64)
        from amchw.kernels.pq import pq_reconstruct

        if not np.array_equal(w.T, pq_reconstruct(codes, books)):
            raise RuntimeError(f"{layer}: retraining changed the product-quantized weights")
        info = dict(info, retrain_epochs=retrain_epochs, train_fraction=train_fraction,
                    no_retrain=one_shot)
        save_checkpoint(out, ck2, m2, pq=info)
    return info


def distill(teacher: str, student: str, out: str, data: str | None = None,
            temperature: float = KD_TEMPERATURE, alpha: float = KD_ALPHA,
            convention: str = KD_CONVENTION, log=print, **train_kw) -> dict:
    """Algorithm 3: a zoo student trained from scratch against a trained teacher checkpoint on
    the teacher's data and split."""
    from amchw.models import ZOO

    from .distill import Distillation

    tmodel, tck = model_from_checkpoint(teacher)
    if student not in ZOO:
        raise PruneError(f"unknown student {student!r}; choose from {', '.join(sorted(ZOO))}")
    if ZOO[student].input_shape != ZOO[tck["model"]].input_shape or \
            ZOO[student].num_classes != ZOO[tck["model"]].num_classes:
        raise PruneError(f"student {student} and teacher {tck['model']} differ in input shape "
                         "or classes")
    obj = Distillation(tmodel, temperature, alpha, convention, str(teacher))
    tcfg = dict(tck.get("train_config", {}))
    cfg = _config(tck, _data(tck, data), out, model=student, quant=tcfg.get("quant", {}),
                  **train_kw)
    ck = train(cfg, log=log, objective=obj)
    return {"teacher": str(teacher), "teacher_model": tck["model"], "student": student,
            **obj.describe(), "epochs": len(ck["history"]), "out": str(out)}


def fine_tune(cfg: TrainConfig, objective=None, constraints=(), log=print) -> dict:
    """Plain training run (a baseline, a slimmed architecture, a multi-branch early-exit
    network) through the same trainer."""
    ck = train(cfg, log=log, objective=objective, constraints=constraints)
    return {"model": cfg.model, "out": cfg.out, "epochs": len(ck["history"]),
            "method": ck.get("method")}


def early_exit(model: str, data: str, out: str, epochs: int = EARLY_EXIT_EPOCHS,
               batch_size: int = EARLY_EXIT_BATCH_SIZE, lr: float = EARLY_EXIT_LR,
               patience: int = EARLY_EXIT_PATIENCE, max_train: int | None = None,
               joint: bool = False, seed: int = 0, log=print) -> dict:
    """Train an early-exit network (ee-v*) with the early-exit seed's multi-branch rule (the
    exit loss updates the trunk and the exit branch, the final loss only the long branch), or
    with both losses summed into every parameter (`joint`)."""
    from .multibranch import MultiBranch

    cfg = TrainConfig(model=model, data=data, out=out, epochs=epochs, batch_size=batch_size,
                      lr=lr, patience=patience, seed=seed, max_train=max_train)
    return fine_tune(cfg, None if joint else MultiBranch(), log=log)


def imp(start: str, targets, out_dir: str, prune_epochs: int = IMP_PRUNE_EPOCHS,
        initial: float = IMP_INITIAL_SPARSITY, frequency: int = IMP_FREQUENCY,
        power: float = IMP_POWER, layers=None, data: str | None = None, log=print,
        **train_kw) -> list:
    """IMP with QAT (GRU-CNN seed) from a trained checkpoint: imp.imp_schedule's stages, each
    trained as the seed did (defaults.imp_training, overridden by `train_kw`) on the
    checkpoint's data (or `data`) and split; one imp.StageResult per stage."""
    from .imp import imp_schedule

    _, ck = model_from_checkpoint(start)
    kw = imp_training(prune_epochs)
    kw.update(train_kw)
    base = replace(_config(ck, _data(ck, data), "unused", **kw), quant={})
    return imp_schedule(base, start, targets, out_dir, prune_epochs, initial, frequency, power,
                        layers, log=log)


def post_training_quantization(start: str, out: str, frames: int = PTQ_CALIBRATION_FRAMES,
                               data: str | None = None, seed: int = 0) -> dict:
    """The compression seed's INT8 post-training quantization of a float-trained checkpoint
    (`amchw train --float-only`; any checkpoint's float weights will do): calibrated on up to
    `frames` frames of its validation split (held out from training); writes `out`."""
    from amchw.models import ZOO

    from .ptq import post_training_quantize

    model, ck = model_from_checkpoint(start, float_only_ok=True)
    float_only = bool(ck.get("float_only"))
    x, *_ = split_frames(_data(ck, data), ZOO[ck["model"]].input_shape, ck, "val", frames,
                         seed=[seed, 5])
    if x.shape[0] == 0:
        raise PruneError(f"{start}: its validation split is empty: no calibration frames")
    post_training_quantize(model, torch.as_tensor(x))
    ck = {k: v for k, v in ck.items() if k != "float_only"}
    info = {"calibration_frames": int(x.shape[0]), "split": "val",
            "float_only_start": float_only, "start": str(start)}
    save_checkpoint(out, ck, model, ptq=info)
    return dict(info, model=ck["model"])
