"""amchw checkpoints: the only module that reads or writes them (torch.load / torch.save), and
a checkpoint's train/val/test split of a data file (amchw.data.splits, as training recorded
it), so training, evaluation, compression and the early-exit run all see the frames training
saw.

A checkpoint is a dict: model (zoo name), config (QuantConfig fields), state_dict, and what
training or compression adds (classes, train_config, history, method keys...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from amchw.data.radioml import H5Frames, file_kind, open_frames
from amchw.fileio import MissingFile
from amchw.data.splits import (DEFAULT_SEED, DEFAULT_VAL_FRACTION,  # noqa: F401 (re-exported)
                               config_split, split_indices)

SPLITS = ("train", "val", "test", "all")


class CheckpointError(ValueError):
    """A file that is not a readable amchw checkpoint (the message names it and says why)."""


class CheckpointMissing(CheckpointError, MissingFile):
    """No file at the checkpoint's path, or a directory."""


def load(path) -> dict:
    """The raw checkpoint dict of `path` (torch.load on the CPU). CheckpointError naming the
    file for a directory, a missing file, or one torch cannot read (truncated, random bytes,
    a QONNX or other non-checkpoint file: the unpickling error's type is given) or that is not
    an amchw checkpoint dict."""
    p = Path(path)
    if p.is_dir():
        raise CheckpointMissing(f"{path}: is a directory, not a checkpoint file")
    if not p.exists():
        raise CheckpointMissing(f"{path}: no such file")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises on a bad file
        raise CheckpointError(f"{path}: not an amchw checkpoint (unreadable: "
                              f"{type(e).__name__})") from None
    if not isinstance(ck, dict) or "model" not in ck:
        raise CheckpointError(f"{path}: not an amchw checkpoint (a {type(ck).__name__} "
                              "without a 'model' entry)")
    return ck


def atomic_save(obj, path) -> None:
    """torch.save `obj` to `path` atomically (a reader never sees a partial file)."""
    from amchw.fileio import atomic_open

    with atomic_open(str(path)) as f:
        torch.save(obj, f)


def model_from_checkpoint(path, float_only_ok: bool = False) -> tuple[nn.Module, dict]:
    """(model in eval mode, checkpoint dict) of an amchw checkpoint; ValueError naming the file
    when it is not one. Loading a trained state marks Brevitas' statistics-initialised scales
    as initialised, so training it further continues from the learned scales."""
    try:
        ck = load(path)
    except CheckpointError:
        raise
    except Exception as e:  # any unreadable file (unpickling errors included) names the file
        raise ValueError(f"{path}: not an amchw checkpoint ({type(e).__name__}: "
                         f"{_one_line(e)})") from None
    try:
        model = model_of(ck, float_only_ok)
    except NotReady as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # a damaged entry, weights that do not fit: name the file
        raise ValueError(f"{path}: not an amchw checkpoint ({type(e).__name__}: "
                         f"{_one_line(e)})") from None
    return model, ck


def _one_line(e: BaseException, limit: int = 400) -> str:
    """An exception's message on one line (torch's state-dict errors span several), cut to
    `limit` characters."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NotReady(ValueError):
    """A checkpoint whose quantized model does not exist yet (float-only, or mid warm-up)."""


_FLOAT_ONLY = ("a float-only training: its quantizers were never set; quantize it with "
               "`amchw compress ptq` (post-training) or train on from it with `amchw train "
               "--init` (QAT)")


def model_of(ck: dict, float_only_ok: bool = False) -> nn.Module:
    """The model of a checkpoint dict, in eval mode (exceptions as building and loading raise).
    A float-only training (no quantizer ever ran) is a ValueError saying how to quantize it,
    unless float_only_ok (post-training quantization reads it so)."""
    from amchw.models import QuantConfig, build

    if not isinstance(ck, dict):
        raise ValueError(f"not a checkpoint dict but a {type(ck).__name__}")
    if ck.get("float_only") and not float_only_ok:
        raise NotReady(_FLOAT_ONLY)
    if not ck.get("float_only") and ck.get("best_epoch", 0) == -1 and in_float_phase(ck):
        raise NotReady("still in its float warm-up: no quantized epoch yet; train on to "
                         "finish it (amchw train resumes it)")
    model = build(ck["model"], QuantConfig(**ck["config"]))
    load_state(model, ck["state_dict"], bool(ck.get("float_only")))
    return model.eval()


def in_float_phase(ck: dict) -> bool:
    """Whether a checkpoint's last epoch trained with the quantizers off (a float-only run or
    a float warm-up not yet over): its activation scales were never set."""
    hist = ck.get("history") or []
    return bool(ck.get("float_only")) or bool(hist and hist[-1].get("phase") == "float")


def load_state(model: nn.Module, state: dict, float_only: bool = False) -> None:
    """model.load_state_dict(state); for a float-only training's state, whose activation
    scales were never initialised (saved as their statistics buffer, without the value a
    loaded model expects), those values may be missing and every other key must match."""
    if not float_only:
        model.load_state_dict(state)
        return
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.endswith("scaling_impl.value")] + list(unexpected)
    if bad:
        raise ValueError(f"state_dict does not fit the model: {', '.join(bad[:5])}")


def save_checkpoint(path, ck: dict, model: nn.Module, **extra) -> None:
    """Write `ck` with `model`'s state and `extra` entries to `path` atomically."""
    atomic_save(dict(ck, state_dict=model.state_dict(), **extra), path)


def open_data(data, ck: dict | None = None, normalize: str | None = None):
    """A reader of `data` for checkpoint `ck`: frames normalised as `normalize` says or, by
    default, as training normalised them when `data` is of the kind training read (a pickle
    or HDF5), else as "auto" resolves for this file (amchw.data.radioml.NORMALIZATIONS)."""
    if normalize is None:
        normalize = "auto"
        if ck is not None and ck.get("normalize") and \
                file_kind(data) == ck.get("data_kind", "hdf5"):
            normalize = ck["normalize"]
    return open_frames(data, normalize)


def checkpoint_split(reader: H5Frames, ck: dict):
    """(train, val, test) row indices of `reader` as training split them for checkpoint `ck`:
    its recorded seed, validation fraction, split and SNR range (defaults when it records
    none)."""
    return config_split(reader, ck.get("train_config", {}))


def split_rows(reader: H5Frames, ck: dict | None, split: str = "test",
               max_frames: int | None = None, seed=0):
    """(row indices, which) of a data file: checkpoint `ck`'s `split` (train, val, test or
    all) or, without a checkpoint, every frame; at most max_frames, a random subset (sorted)
    drawn with numpy's default_rng(seed) (an int or a sequence of ints)."""
    if ck is None:
        idx, which = np.arange(reader.n), "all frames"
    else:
        if split not in SPLITS:
            raise KeyError(split)
        idx = np.arange(reader.n) if split == "all" else \
            checkpoint_split(reader, ck)[SPLITS.index(split)]
        which = f"{split} split" if split != "all" else "all frames"
    if max_frames is not None and idx.size > max_frames:
        idx = np.sort(np.random.default_rng(seed).permutation(idx)[:max_frames])
        which += f", {max_frames} drawn at random"
    return idx, which


def split_frames(data: str, input_shape, ck: dict | None = None, split: str = "test",
                 max_frames: int | None = None, seed=0):
    """(frames (N, *input_shape) float32, labels, SNRs, class names, which) of a data file's
    rows per split_rows."""
    from amchw.data.torch_dataset import FrameDataset

    with open_data(data, ck) as reader:
        need = int(np.prod(input_shape))
        if 2 * reader.length != need:
            raise ValueError(f"{data}: its frames are 2 x {reader.length} samples; the model "
                             f"takes {' x '.join(map(str, input_shape))} ({need // 2} samples "
                             "per channel)")
        idx, which = split_rows(reader, ck, split, max_frames, seed)
        x = FrameDataset(reader, idx, tuple(input_shape)).batch(np.arange(idx.size))[0]
        return x.numpy(), reader.labels[idx], reader.snrs[idx], list(reader.classes), which
