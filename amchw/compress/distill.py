"""Knowledge-distillation losses, in the two conventions of the seeds (both selectable):

"edge" (edge-efficient seed, Algorithm 3, lines 5-9): with Softmax_T the softmax of logits / T,
    L = alpha * KL(Softmax_T(teacher) || Softmax_T(student))
        + (1 - alpha) * CE(Softmax_T(student), labels)
    alpha weighs the distillation term; the cross-entropy is taken on the softened student
    output, as the algorithm writes it (line 8: Cross-entropy(Y^s_B, Y_B) with
    Y^s_B = Softmax_T(f^s(X_B)), line 6); no T^2 factor. Both terms' gradients with respect
    to the student's logits are then 1/T of their T = 1 values, (alpha (p_s - p_t) +
    (1 - alpha) (p_s - y)) / T; Adam, the optimiser amchw trains with, takes steps that do
    not depend on a constant loss scale (up to its epsilon), so this reading does not act as
    a T-fold smaller learning rate (tests/models/test_distill.py checks the gradient).
"hinton" (the distillation slides, after Hinton et al. and Keras' distiller):
    L = alpha * CE(softmax(student), labels)
        + (1 - alpha) * T^2 * KL(Softmax_T(teacher) || Softmax_T(student))
    alpha weighs the cross-entropy; T^2 keeps the soft term's gradients at the hard term's
    scale. (The slides use T = 1, where the two readings of their q() coincide.)
KL(p || q) = sum_k p_k log(p_k / q_k); every term is a mean over the batch. The teacher's
logits are detached: no gradient reaches the teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amchw.train import Objective, _heads

from .defaults import KD_ALPHA, KD_CONVENTION, KD_CONVENTIONS, KD_TEMPERATURE

CONVENTIONS = KD_CONVENTIONS


def _check(temperature, alpha, convention) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float, alpha: float, convention: str = KD_CONVENTION) -> torch.Tensor:
    """The distillation loss of a batch (see the module docstring)."""
    _check(temperature, alpha, convention)
    T = float(temperature)
    log_ps = F.log_softmax(student_logits / T, dim=1)
    log_pt = F.log_softmax(teacher_logits.detach() / T, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).mean()
    if convention == "edge":
        ce_soft = F.nll_loss(log_ps, labels)
        return alpha * kl + (1.0 - alpha) * ce_soft
    ce = F.cross_entropy(student_logits, labels)
    return alpha * ce + (1.0 - alpha) * T * T * kl


class Distillation(Objective):
    """Algorithm 3's training step: the teacher (frozen, eval mode) and the student see the
    same batch; the student's gradients come from kd_loss. A student with several exits is
    refused (the seeds distil single-output classifiers)."""

    name = "knowledge-distillation"

    def __init__(self, teacher: torch.nn.Module, temperature: float = KD_TEMPERATURE,
                 alpha: float = KD_ALPHA, convention: str = KD_CONVENTION,
                 teacher_path: str | None = None):
        _check(temperature, alpha, convention)
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.T, self.alpha, self.convention = float(temperature), float(alpha), convention
        self.teacher_path = teacher_path

    def step(self, model, x, y):
        heads = _heads(model(x))
        if len(heads) != 1:
            raise ValueError("distillation takes a student with one output")
        with torch.no_grad():
            t = _heads(self.teacher(x))[-1]
        if t.shape != heads[0].shape:
            raise ValueError(f"teacher logits {tuple(t.shape)} do not match the student's "
                             f"{tuple(heads[0].shape)}")
        loss = kd_loss(heads[0], t, y, self.T, self.alpha, self.convention)
        loss.backward()
        return loss.detach(), heads

    def describe(self):
        return {"name": self.name, "temperature": self.T, "alpha": self.alpha,
                "convention": self.convention, "teacher": self.teacher_path}
