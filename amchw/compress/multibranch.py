"""The early-exit seed's multi-branch training: one forward pass gives the exit logits and the
final logits; the exit's cross-entropy updates the shared trunk and the exit branch, the final
classifier's cross-entropy updates only the long branch (the layers after the exit point).
The trunk therefore learns the features the early exit needs, and the long branch adapts to
them. (The default objective instead sums both losses into every parameter.)"""

from __future__ import annotations

import torch
from torch import nn

from amchw.train import Objective, _heads


def branch_parameters(model: nn.Module) -> tuple[list, list]:
    """(trunk and exit-branch parameters, long-branch parameters) of an EarlyExitNet."""
    from amchw.models.early_exit import EarlyExitNet

    if not isinstance(model, EarlyExitNet):
        raise ValueError(f"multi-branch training takes an early-exit network (ee-v0 ... ee-v3), "
                         f"got {type(model).__name__}")
    rest = {id(p) for p in model.rest.parameters()}
    short = [p for p in model.parameters() if id(p) not in rest and p.requires_grad]
    return short, [p for p in model.rest.parameters() if p.requires_grad]


class MultiBranch(Objective):
    """The exit loss -> trunk + exit branch; the final loss -> the long branch only."""

    name = "multi-branch"

    def step(self, model, x, y):
        short, long_ = branch_parameters(model)
        heads = _heads(model(x))
        loss_exit = nn.functional.cross_entropy(heads[0], y)
        loss_final = nn.functional.cross_entropy(heads[1], y)
        g_short = torch.autograd.grad(loss_exit, short, retain_graph=True, allow_unused=True)
        g_long = torch.autograd.grad(loss_final, long_, allow_unused=True)
        for p, g in zip(short + long_, g_short + g_long):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
        return (loss_exit + loss_final).detach(), heads
