"""Accuracy of a trained checkpoint on a data file, float (Brevitas fake-quant) and integer
(the lowered IR run by the fused executor), on the split training used (amchw.checkpoint)."""

from __future__ import annotations

import time

import numpy as np

from amchw.checkpoint import load, model_of, open_data, split_rows
from amchw.data.radioml import DatasetError


def accuracy_by_snr(pred: np.ndarray, y: np.ndarray, snr: np.ndarray) -> dict:
    return {int(s): float(np.mean(pred[snr == s] == y[snr == s])) for s in np.unique(snr)}


def confusion(pred: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """k x k counts: row = true class, column = predicted class."""
    return np.bincount(np.asarray(y, np.int64) * k + np.asarray(pred, np.int64),
                       minlength=k * k).reshape(k, k)


def per_class(conf, classes) -> dict:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows true,
    columns predicted), and their macro averages (unweighted mean over the classes) and the
    accuracy. A class never predicted has precision 0, one never present recall 0 (and F1 0
    where both are 0), as scikit-learn reports them with zero_division=0."""
    m = np.asarray(conf, dtype=np.float64)
    tp = np.diag(m)
    pred, true = m.sum(axis=0), m.sum(axis=1)
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    s = prec + rec
    f1 = np.divide(2 * prec * rec, s, out=np.zeros_like(tp), where=s > 0)
    rows = {c: {"precision": float(p), "recall": float(r), "f1": float(f),
                "support": int(n)} for c, p, r, f, n in zip(classes, prec, rec, f1, true)}
    total = float(m.sum())
    return {"classes": rows,
            "macro": {"precision": float(prec.mean()), "recall": float(rec.mean()),
                      "f1": float(f1.mean()), "support": int(total)},
            "accuracy": float(tp.sum() / total) if total else 0.0}


def check_classes(ck: dict, classes, data) -> None:
    """DatasetError naming both lists when a file's classes are not, in order, the ones the
    checkpoint was trained on (a model's output k means the checkpoint's class k)."""
    want = list(ck.get("classes") or [])
    if want and list(classes) != want:
        raise DatasetError(f"{data}: its classes {list(classes)} are not the checkpoint's "
                           f"{want} (in this order)")


def evaluate_checkpoint(path: str, data: str, split: str = "test", max_frames: int | None = None,
                        seed: int = 0, confusion_snrs=(), normalize: str | None = None,
                        device: str | None = "cpu", snr_range=None,
                        float_only_ok: bool = False) -> dict:
    """Accuracy of a checkpoint on a data file: the float (Brevitas fake-quant) model and the
    integer IR (lowered, run by the fused executor), overall and per SNR, with confusion
    matrices (lists of rows: true class, predicted class) overall and at `confusion_snrs`.
    The frames: the checkpoint's `split` (amchw.checkpoint.split_rows; at most max_frames,
    drawn with `seed`), normalised as `normalize` says (default: as training normalised them,
    amchw.checkpoint.open_data), only those with SNR in `snr_range` (lo, hi) dB when given.
    The float model runs on `device` (amchw.train.resolve_device);
    the integer model on the CPU. A float-only training (amchw train --float-only) is a
    ValueError unless float_only_ok: then only the float model (quantizers off) is evaluated,
    and the integer figures are None (int_by_snr empty)."""
    from amchw.data.torch_dataset import FrameDataset
    from amchw.ir.interp import run
    from amchw.lower.brevitas import lower
    from amchw.models import ZOO
    from amchw.train import _batches, evaluate_float, resolve_device

    from amchw.train import set_quantization

    ck = load(path)
    float_only = bool(ck.get("float_only"))
    model = model_of(ck, float_only_ok).to(resolve_device(device))
    if float_only:
        set_quantization(model, False)
    with open_data(data, ck, normalize) as reader:
        check_classes(ck, reader.classes, data)
        idx, _ = split_rows(reader, ck, split, max_frames, seed)
        if snr_range is not None:
            idx = idx[(reader.snrs[idx] >= snr_range[0]) & (reader.snrs[idx] <= snr_range[1])]
            if idx.size == 0:
                raise ValueError(f"{data}: no {split} frames with SNR in "
                                 f"[{snr_range[0]}, {snr_range[1]}] dB")
        shape = tuple(ZOO[ck["model"]].input_shape)
        ds = FrameDataset(reader, idx, shape)
        t0 = time.perf_counter()
        _, pf = evaluate_float(model, ds)
        t_float = time.perf_counter() - t0
        pi = []
        t0 = time.perf_counter()
        if not float_only:
            x = ds.batch(np.arange(min(len(ds), 8)))[0]
            graph = lower(model.cpu(), x, name=ck["model"])
        for pos in _batches(len(ds), 512, None) if not float_only else ():
            xb = ds.batch(pos)[0].numpy()
            out = run(graph, xb, "fast")
            out = out[-1] if isinstance(out, tuple) else out  # the final classifier
            pi.append(np.asarray(out).argmax(1))
        t_int = time.perf_counter() - t0
        pi = np.concatenate(pi) if pi else None
        y, snr = reader.labels[idx], reader.snrs[idx]
        classes = list(ck.get("classes") or reader.classes)
        norm = reader.normalize
    k = len(classes)
    missing = sorted(set(confusion_snrs) - set(np.unique(snr).tolist()))
    if missing:
        raise ValueError(f"{data}: no {split} frames at SNR {', '.join(map(str, missing))} dB")
    common = {
        "classes": classes, "model": ck["model"], "config": ck["config"],
        "frames": int(idx.size), "split": split, "normalize": norm,
        "float_acc": float(np.mean(pf == y)), "float_by_snr": accuracy_by_snr(pf, y, snr),
        "confusion_float": confusion(pf, y, k).tolist(), "float_seconds": t_float,
        "train_seconds": float(sum(h["seconds"] for h in ck.get("history", []))),
        "epochs": len(ck.get("history", [])), "best_epoch": ck.get("best_epoch", -1) + 1,
    }
    if pi is None:   # a float-only training: no integer model yet
        return dict(common, float_only=True, int_acc=None, int_by_snr={}, agreement=None,
                    confusion_int=None, per_class_int=None, confusion_by_snr={},
                    int_seconds=0.0)
    by = {int(s): {"float": confusion(pf[snr == s], y[snr == s], k).tolist(),
                   "int": confusion(pi[snr == s], y[snr == s], k).tolist()}
          for s in sorted(set(confusion_snrs))}
    for m in by.values():
        m["per_class_int"] = per_class(m["int"], classes)
    conf_int = confusion(pi, y, k)
    return dict(common, int_acc=float(np.mean(pi == y)), agreement=float(np.mean(pf == pi)),
                int_by_snr=accuracy_by_snr(pi, y, snr), confusion_int=conf_int.tolist(),
                per_class_int=per_class(conf_int, classes), confusion_by_snr=by,
                int_seconds=t_int)
