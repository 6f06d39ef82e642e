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


def test_the_edge_convention_scales_both_gradients_by_one_over_T():
    """Algorithm 3 as written (both terms on Softmax_T of the student): d L / d logits =
    (alpha (p_s - p_t) + (1 - alpha) (p_s - onehot)) / T, T times smaller than Hinton's
    T^2-weighted soft term; Adam's steps do not depend on that scale (up to its epsilon), so
    with Adam the convention is not a learning-rate cut."""
    g = torch.Generator().manual_seed(2)
    s = (torch.randn(6, 5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    t = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (6,), generator=g)
    T, a = 10.0, 0.5
    kd_loss(s, t, y, T, a, "edge").backward()
    ps, pt = _softmax(s.detach().numpy(), T), _softmax(t.numpy(), T)
    onehot = np.eye(5)[y.numpy()]
    want = (a * (ps - pt) + (1 - a) * (ps - onehot)) / T / len(y)
    np.testing.assert_allclose(s.grad.numpy(), want, rtol=1e-10, atol=1e-14)


def test_distillation_improves_a_student_trained_on_few_frames():
    """The seeds' promise on models that have learned: a wide teacher trained on 4,000
    frames of 8 Gaussian classes, a narrow student on 120; distilled in either convention
    (edge T = 10, alpha 0.5; hinton T = 4, alpha 0.35) the student beats the same student
    trained on the labels alone, on 4,000 held-out frames, for each of three seeds."""
    import torch.nn.functional as F
    from torch import nn

    g = torch.Generator().manual_seed(1)
    centers = torch.randn(8, 16, generator=g)

    def frames(n):
        y = torch.randint(0, 8, (n,), generator=g)
        return centers[y] + 1.6 * torch.randn(n, 16, generator=g), y

    (xt, yt), (xs, ys), (xv, yv) = frames(4000), frames(120), frames(4000)

    def mlp(h, seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(16, h), nn.ReLU(), nn.Linear(h, 8))

    def fit(m, x, y, loss, steps):
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            loss(m(x), y).backward()
            opt.step()
        with torch.no_grad():
            return float((m(xv).argmax(1) == yv).float().mean())

    with torch.random.fork_rng():
        teacher = mlp(128, 0)
        assert fit(teacher, xt, yt, F.cross_entropy, 500) > 0.68
        with torch.no_grad():
            tl = teacher(xs)
        for seed in range(3):
            alone = fit(mlp(32, seed), xs, ys, F.cross_entropy, 300)
            for T, a, conv in ((10.0, 0.5, "edge"), (4.0, 0.35, "hinton")):
                kd = fit(mlp(32, seed), xs, ys,
                         lambda o, y, T=T, a=a, c=conv: kd_loss(o, tl, y, T, a, c), 300)
                assert kd > alone + 0.02, (seed, conv, kd, alone)
