"""Knowledge-distillation losses, in the two conventions of the seeds (both selectable):

"edge" (edge-efficient seed, Algorithm 3, lines 5-9): with Softmax_T the softmax of logits / T,
    L = alpha * KL(Softmax_T(teacher) || Softmax_T(student))
        + (1 - alpha) * CE(Softmax_T(student), labels)
    alpha weighs the distillation term; the cross-entropy is taken on the softened student
    output, as the algorithm writes it; no T^2 factor.
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

CONVENTIONS = ("edge", "hinton")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float, alpha: float, convention: str = "edge") -> torch.Tensor:
    """The distillation loss of a batch (see the module docstring)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    T = float(temperature)
    log_ps = F.log_softmax(student_logits / T, dim=1)
    log_pt = F.log_softmax(teacher_logits.detach() / T, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).mean()
    if convention == "edge":
        ce_soft = F.nll_loss(log_ps, labels)
        return alpha * kl + (1.0 - alpha) * ce_soft
    ce = F.cross_entropy(student_logits, labels)
    return alpha * ce + (1.0 - alpha) * T * T * kl
