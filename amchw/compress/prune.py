"""Magnitude pruning without training: the smallest weights of each chosen Conv/Linear layer
set to exactly 0 (so their quantized codes are the zero point, zero in the IR), either a
fraction of each layer (unstructured) or all but the N largest of every M consecutive weights
along each filter's reduction (N:M; the (c, i, j) order of amchw.ir.sparse)."""

from __future__ import annotations

import re

import torch
from torch import nn

from .errors import PruneError

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """None for "unstructured", (N, M) for "N:M"; PruneError otherwise."""
    if pattern == "unstructured":
        return None
    m = re.fullmatch(r"(\d+):(\d+)", pattern)
    if not m or not 1 <= int(m.group(1)) < int(m.group(2)) <= 64:
        raise PruneError(f"--pattern must be unstructured or N:M with 1 <= N < M <= 64, "
                         f"got {pattern!r}")
    return int(m.group(1)), int(m.group(2))


def prunable(model: nn.Module) -> dict[str, nn.Module]:
    """The weight layers pruning may touch, by path (a QuantGRU's recurrent layers included)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, _LAYERS)}


@torch.no_grad()
def magnitude_prune(model: nn.Module, sparsity: float | None = None,
                    pattern: str = "unstructured", layers=None,
                    skipped: dict | None = None) -> dict[str, float]:
    """Prune `model` in place; returns {layer: fraction of its weights now exactly 0}.

    unstructured: in each layer the round(sparsity * size) weights of smallest magnitude become
    0 (ties broken by position, so the count is exact). N:M: in each group of M consecutive
    weights of a filter's flattened reduction, all but the N largest become 0 (`sparsity` is
    then implied, 1 - N/M, and must not be given). A layer whose reduction is not a multiple
    of M cannot take the pattern: named in `layers`, it is an error; when every layer is
    pruned (layers None) it stays dense, as N:M tools leave such a first layer, and `skipped`
    (a dict) gets {layer: why}."""
    nm = parse_pattern(pattern)
    if nm is None and (sparsity is None or not 0.0 <= sparsity <= 1.0):
        raise PruneError(f"--sparsity must be in [0, 1], got {sparsity!r}")
    if nm is not None and sparsity is not None:
        raise PruneError("give --sparsity for unstructured pruning only; N:M fixes it")
    found = prunable(model)
    chosen = found if layers is None else {}
    for name in layers or ():
        if name not in found:
            raise PruneError(f"no Conv/Linear layer named {name!r}; layers: "
                             f"{', '.join(found)}")
        chosen[name] = found[name]
    if nm is not None:  # every layer checked before any is changed
        for name, mod in list(chosen.items()):
            r = mod.weight[0].numel()
            if r % nm[1]:
                why = f"its reduction of {r} weights per output is not a multiple of M={nm[1]}"
                if layers is not None:
                    raise PruneError(f"{name}: {why}")
                del chosen[name]
                if skipped is not None:
                    skipped[name] = why
        if not chosen:
            raise PruneError(f"no layer takes the {pattern} pattern: every reduction is not a "
                             f"multiple of M={nm[1]}")
    out = {}
    for name, mod in chosen.items():
        w = mod.weight
        flat = w.reshape(w.shape[0], -1)
        if nm is None:
            k = round(sparsity * w.numel())
            if k:
                order = torch.argsort(w.abs().flatten(), stable=True)
                w.view(-1)[order[:k]] = 0
        else:
            n, m = nm
            groups = flat.reshape(flat.shape[0], -1, m)
            drop = torch.argsort(groups.abs(), dim=2, stable=True)[:, :, : m - n]
            groups.scatter_(2, drop, 0.0)
            w.copy_(groups.reshape(w.shape))
        out[name] = float((w == 0).double().mean())
    return out
