"""The knowledge-distillation loss equals the seeds' formulas, computed here in float64 numpy,
in both conventions, and sends no gradient to the teacher."""

import numpy as np
import pytest
import torch

from amchw.compress import kd_loss


def _softmax(z, T):
    e = np.exp((z - z.max(axis=1, keepdims=True)) / T)
    return e / e.sum(axis=1, keepdims=True)


def _formula(s, t, y, T, a, convention):
    ps, pt = _softmax(s, T), _softmax(t, T)
    kl = np.mean(np.sum(pt * np.log(pt / ps), axis=1))
    n = np.arange(len(y))
    if convention == "edge":
        return a * kl + (1 - a) * np.mean(-np.log(ps[n, y]))
    p1 = _softmax(s, 1.0)
    return a * np.mean(-np.log(p1[n, y])) + (1 - a) * T * T * kl


@pytest.mark.parametrize("convention", ["edge", "hinton"])
@pytest.mark.parametrize("T,alpha", [(1.0, 0.35), (10.0, 0.5), (4.0, 0.0), (2.0, 1.0)])
def test_kd_loss_is_the_formula(convention, T, alpha):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(7, 11, generator=g, dtype=torch.float64) * 3
    t = torch.randn(7, 11, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 11, (7,), generator=g)
    got = kd_loss(s, t, y, T, alpha, convention).item()
    want = _formula(s.numpy(), t.numpy(), y.numpy(), T, alpha, convention)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_no_gradient_reaches_the_teacher_and_identical_logits_leave_only_the_hard_term():
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    kd_loss(s, t, y, 3.0, 0.5, "hinton").backward()
    assert s.grad is not None and t.grad is None
    same = s.detach().clone()
    hard = torch.nn.functional.cross_entropy(same, y)
    assert kd_loss(same, same, y, 3.0, 0.4, "hinton").item() == pytest.approx(0.4 * hard.item())
    with pytest.raises(ValueError, match="convention"):
        kd_loss(s, t, y, 1.0, 0.5, "other")
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(s, t, y, 1.0, 1.5)
