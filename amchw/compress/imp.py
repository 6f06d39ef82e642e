"""Iterative magnitude pruning with quantization-aware training (the GRU-CNN seed, section on
pruning; its Table 3).

One stage takes a trained checkpoint and a target sparsity s_f. During the first
`prune_epochs` epochs the prunable weights (every Conv/Linear weight, the GRU's input and
recurrent matrices included; biases and BatchNorm are not pruned, as TensorFlow's
prune_low_magnitude does) are pruned gradually on the polynomial schedule of the seed's tool,

    s(t) = s_f + (s_i - s_f) * (1 - (t - t_0) / (t_1 - t_0)) ** power,   t_0 <= t <= t_1,

re-applied every `frequency` optimizer steps and at t_1 (t_0 = 0, t_1 the last step of the
pruning epochs); each layer is cut to s(t) of its weights by magnitude. Between and after the
pruning steps the zeroed weights are held at zero after every optimizer step (the mask), so the
model then retrains ("until convergence": early stopping on the validation loss) at the target
sparsity; only epochs after t_1 may become the stage's best checkpoint. The network is trained
with its quantizers in the loop throughout (QAT).

`imp_schedule` chains stages, each starting from the previous stage's checkpoint (the seed's
"the pruned model is selected as the new original model"): 0.5 -> 0.7 -> 0.8 -> 0.85. The seed
starts its schedule at s_i = 0.2; a later stage starts at the sparsity its start model already
has (weights already zero stay zero: the masks only grow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from amchw.train import Constraint, TrainConfig

from .defaults import IMP_FREQUENCY, IMP_INITIAL_SPARSITY, IMP_POWER, IMP_PRUNE_EPOCHS
from .prune import PruneError, magnitude_prune, prunable


def polynomial_sparsity(step: int, initial: float, final: float, end_step: int,
                        power: float = 3.0) -> float:
    """s(step) of the schedule above, with t_0 = 0 and t_1 = end_step (>= 1)."""
    t = min(max(step, 0), end_step) / end_step
    return final + (initial - final) * (1.0 - t) ** power


class GradualPruning(Constraint):
    """Prune `layers` (default: all prunable) toward `final` on the polynomial schedule."""

    name = "gradual-magnitude-pruning"

    def __init__(self, final: float, end_step: int, initial: float = 0.2, frequency: int = 100,
                 power: float = 3.0, layers=None):
        if not 0.0 <= final < 1.0:
            raise PruneError(f"target sparsity must be in [0, 1), got {final}")
        if end_step < 1 or frequency < 1:
            raise PruneError("the pruning schedule needs at least one step")
        self.final, self.end_step, self.initial = final, int(end_step), initial
        self.frequency, self.power = int(frequency), power
        self.layers = list(layers) if layers is not None else None
        self.masks: dict[str, torch.Tensor] = {}

    def _layers(self, model) -> dict[str, nn.Module]:
        found = prunable(model)
        if self.layers is None:
            return found
        missing = [n for n in self.layers if n not in found]
        if missing:
            raise PruneError(f"no Conv/Linear layer named {missing[0]!r}; layers: "
                             f"{', '.join(found)}")
        return {n: found[n] for n in self.layers}

    def prepare(self, model):
        chosen = self.chosen = self._layers(model)
        self.names = list(chosen)
        # a start model's zeros stay zero: the schedule starts at what it has
        have = min(float((m.weight == 0).double().mean()) for m in chosen.values())
        self.initial = max(self.initial, min(have, self.final))
        self.masks = {n: (m.weight != 0) for n, m in chosen.items()}

    @torch.no_grad()
    def after_step(self, model, step):
        chosen = self.chosen
        if step <= self.end_step and (step % self.frequency == 0 or step == self.end_step):
            for n, m in chosen.items():  # the held zeros first: they are the smallest
                m.weight.mul_(self.masks[n])
            s = polynomial_sparsity(step, self.initial, self.final, self.end_step, self.power)
            magnitude_prune(model, s, "unstructured", self.names)
            self.masks = {n: (m.weight != 0) for n, m in chosen.items()}
        for n, m in chosen.items():
            m.weight.mul_(self.masks[n])

    def ready(self, step: int) -> bool:
        return step >= self.end_step

    def describe(self):
        return {"name": self.name, "final": self.final, "initial": self.initial,
                "end_step": self.end_step, "frequency": self.frequency, "power": self.power,
                "layers": self.layers}


@dataclass
class StageResult:
    target: float
    checkpoint: str
    sparsity: float              # zero fraction of the pruned weights
    parameters: int              # parameters less the pruned weights (footprint())
    total_parameters: int
    footprint_bytes: int         # parameters x weight bits / 8 (the seed's memory footprint)


def footprint(model: nn.Module, weight_bits: int, layers=None) -> dict:
    """Parameters, the pruned layers' sparsity, and the memory footprint at `weight_bits` per
    parameter, as the GRU-CNN seed's Table 3 counts them: every trainable tensor (weights,
    biases, BatchNorm's scale and shift; not quantizer scales) minus the pruned weights (the
    zeros of the pruned layers' weights), one byte per parameter at 8 bits. A parameter that
    merely happens to be 0 (an untrained BatchNorm shift) still counts: counting non-zeros
    instead gives 144 fewer for the GRU-CNN, its 144 BatchNorm channels' zero shifts."""
    found = prunable(model)
    chosen = found if layers is None else {n: found[n] for n in layers}
    total = sum(p.numel() for name, p in model.named_parameters()
                if name.endswith(".weight") or name.endswith(".bias"))   # not quantizer scales
    zeros = sum(int((m.weight == 0).sum()) for m in chosen.values())
    size = sum(m.weight.numel() for m in chosen.values())
    kept = total - zeros
    return {"parameters": kept, "total_parameters": total, "sparsity": zeros / max(size, 1),
            "footprint_bytes": math.ceil(kept * weight_bits / 8)}


def imp_schedule(base: TrainConfig, start: str, targets, out_dir: str,
                 prune_epochs: int = IMP_PRUNE_EPOCHS, initial: float = IMP_INITIAL_SPARSITY,
                 frequency: int = IMP_FREQUENCY, power: float = IMP_POWER, layers=None,
                 log=print, progress=None) -> list[StageResult]:
    """Run the stages; stage k trains `base` (epochs = prune_epochs + retraining epochs,
    patience for the retraining) from the previous checkpoint (the first from `start`), writing
    out_dir/stage{k}-sparsity{s}.pt. Returns one StageResult per stage."""
    from amchw.checkpoint import config_split, model_from_checkpoint
    from amchw.data.radioml import open_frames
    from amchw.train import train

    targets = [float(t) for t in targets]
    if any(b <= a for a, b in zip(targets, targets[1:])):
        raise PruneError(f"the sparsity schedule must increase, got {targets}")
    if base.epochs <= prune_epochs:
        raise PruneError(f"{base.epochs} epochs leave no retraining after {prune_epochs} "
                         "pruning epochs")
    with open_frames(base.data, base.normalize) as reader:
        train_i = config_split(reader, base)[0]
    n_train = math.ceil(base.train_fraction * train_i.size)
    if base.max_train is not None:
        n_train = min(n_train, base.max_train)
    per_epoch = sum(1 for a in range(0, n_train, base.batch_size) if n_train - a >= 2)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    prev, results = start, []
    for k, s in enumerate(targets, start=1):
        out = str(Path(out_dir) / f"stage{k}-sparsity{s:g}.pt")
        log(f"IMP stage {k}: {prev} -> sparsity {s:g} ({out})")
        cfg = replace(base, init=prev, out=out, quant={})
        gp = GradualPruning(s, prune_epochs * per_epoch, initial, frequency, power, layers)
        train(cfg, progress=progress, log=log, constraints=[gp])
        model, ck = model_from_checkpoint(out)
        fp = footprint(model, int(ck["config"].get("weight_bits", 8)), gp.names)
        results.append(StageResult(s, out, fp["sparsity"], fp["parameters"],
                                   fp["total_parameters"], fp["footprint_bytes"]))
        prev = out
    return results
