"""Net-Trim on arrays: the returned weights always meet ||relu(X U^T + b) - Y||_F <= epsilon
||Y||_F (recomputed here in float64 from the returned arrays), the counts are the arrays'
counts, sparsity grows with epsilon, and the N x N and P x P solves agree. On a Brevitas model:
tests/models/test_nettrim_model.py."""

import numpy as np
import pytest

from amchw.compress import net_trim
from amchw.compress.nettrim import NotConverged, _Solver
from nettrim_checks import check_result


def _layer(seed=0, n=200, p=30, m=8, noise=0.02, density=0.3, dead=0):
    """Inputs (ReLU-like, `dead` all-zero columns), weights = sparse truth + dense noise."""
    rng = np.random.default_rng(seed)
    X = np.maximum(rng.standard_normal((n, p)), 0.0)
    X[:, p - dead:] = 0.0
    truth = rng.standard_normal((m, p)) * (rng.random((m, p)) < density)
    W = truth + noise * rng.standard_normal((m, p))
    b = 0.1 * rng.standard_normal(m)
    return X, W, b




@pytest.mark.parametrize("eps", [0.005, 0.02, 0.08, 0.3])
def test_constraint_holds_and_counts_are_the_arrays(eps):
    X, W, b = _layer()
    res = net_trim(X, W, b, eps)
    check_result(res, X, W, b, eps)
    assert res.p_e > 0


def test_sparsity_grows_with_epsilon_and_a_tiny_epsilon_keeps_the_output():
    X, W, b = _layer(seed=1)
    pes = []
    for eps in [0.002, 0.01, 0.03, 0.08, 0.2, 0.5]:
        res = net_trim(X, W, b, eps)
        check_result(res, X, W, b, eps)
        pes.append(res.p_e)
    assert all(b_ >= a_ - 0.02 for a_, b_ in zip(pes, pes[1:])), pes
    assert pes[-1] > pes[0] + 0.3, pes
    res = net_trim(X, W, b, 1e-7)
    check_result(res, X, W, b, 1e-7)
    Y = np.maximum(X @ W.T + b, 0.0)
    assert np.allclose(np.maximum(X @ res.weight.T + b, 0.0), Y, rtol=0, atol=1e-6 * Y.max())
    zero = net_trim(X, W, b, 0.0)
    assert np.array_equal(zero.weight, W) and zero.discrepancy == 0.0 and zero.p_e == 0.0


def test_redundant_inputs_are_pruned():
    X, W, b = _layer(seed=2, n=300, p=40, m=8, noise=0.01, density=0.25, dead=10)
    res = net_trim(X, W, b, 0.05)
    check_result(res, X, W, b, 0.05)
    assert np.all(res.weight[:, 30:] == 0)  # inputs that are always 0 carry no weight
    assert res.p_e > 0.5 and res.repair in ("admm", "polished")
    assert res.n_before == W.size  # the noisy weights were dense


@pytest.mark.parametrize("drop_dead", [True, False])
def test_mostly_dead_inputs_still_converge_and_follow_epsilon(drop_dead):
    """More than half the inputs all-zero (a ReLU layer early in training). Kept in the ADMM
    (drop_dead=False), the L1 weights are scaled to the live inputs, so the ADMM converges and
    epsilon still sets the sparsity (with the median over all inputs, the live weights' L1
    terms weighed ~1e-6: never converged, the same support at every epsilon); left out
    (the default), the same holds of the smaller problem."""
    X, W, b = _layer(seed=7, n=300, p=40, m=8, noise=0.02, density=0.5, dead=28)
    pes = []
    for eps in (0.02, 0.1, 0.3):
        res = net_trim(X, W, b, eps, max_iter=3000, drop_dead=drop_dead)
        check_result(res, X, W, b, eps)
        assert res.converged and np.all(res.weight[:, 12:] == 0)
        pes.append(res.p_e)
    assert pes[0] < pes[1] < pes[2], pes


def test_dead_inputs_left_out_give_the_same_minimiser():
    """Solving on the live inputs only (the default) and with the dead ones in the ADMM reach
    the same L1 minimum: the dead inputs' weights are 0 either way, the L1 norms agree to the
    ADMM's tolerance, and the counts are over all P inputs."""
    X, W, b = _layer(seed=8, n=400, p=60, m=8, noise=0.02, density=0.4, dead=35)
    fast = net_trim(X, W, b, 0.05)
    full = net_trim(X, W, b, 0.05, drop_dead=False)
    for r in (fast, full):
        check_result(r, X, W, b, 0.05)
        assert r.converged and np.all(r.weight[:, 25:] == 0) and r.n_total == W.size
    assert fast.dead_inputs == 35 and full.dead_inputs == 0
    l1f, l1s = np.abs(full.weight).sum(), np.abs(fast.weight).sum()
    assert abs(l1f - l1s) <= 0.01 * l1s, (l1f, l1s)
    assert abs(fast.n_after - full.n_after) <= 0.05 * full.n_after


def test_no_bias_and_float32_rounding():
    X, W, b = _layer(seed=3)
    res = net_trim(X.astype(np.float32), W, None, 0.04, weight_dtype=np.float32)
    check_result(res, X.astype(np.float32), W, None, 0.04)
    assert np.array_equal(res.weight, res.weight.astype(np.float32).astype(np.float64))


@pytest.mark.parametrize("iters,how", [(1, "original"), (10, "grown("), (30, "polished"),
                                       (60, "admm")])
def test_an_unconverged_admm_is_repaired_to_a_feasible_result(iters, how):
    """Cut short (and asked to keep the iterate), the sparse iterate is infeasible; each
    fallback of the repair is reached."""
    X, W, b = _layer(seed=4)
    res = net_trim(X, W, b, 0.03, max_iter=iters, polish_iter=iters, keep_unconverged=True)
    check_result(res, X, W, b, 0.03)
    assert not res.converged and res.repair.startswith(how), res.repair
    if how == "original":
        assert np.array_equal(res.weight, W) and res.discrepancy == 0.0
    if how == "grown(":
        assert res.n_after <= int(res.repair[6:-1]) < W.size


def test_an_unconverged_admm_is_an_error_unless_kept():
    """Stopping at max_iter before the tolerance is refused by default, with the residuals."""
    X, W, b = _layer(seed=4)
    with pytest.raises(NotConverged, match=r"did not converge in 10 iterations \(primal") as e:
        net_trim(X, W, b, 0.03, max_iter=10)
    assert e.value.residuals["primal"] > e.value.residuals["eps_pri"] or \
        e.value.residuals["dual"] > e.value.residuals["eps_dual"]
    res = net_trim(X, W, b, 0.03)
    assert res.converged and res.residuals["primal"] <= res.residuals["eps_pri"]


@pytest.mark.parametrize("n,p", [(50, 30), (30, 50)])
def test_the_n_by_n_and_p_by_p_solves_agree(n, p):
    rng = np.random.default_rng(5)
    X = np.maximum(rng.standard_normal((n, p)), 0.0)
    a, c = _Solver(X, "nxn"), _Solver(X, "pxp")
    np.testing.assert_array_equal(a.col, c.col)
    Rw, Rz = rng.standard_normal((p, 6)), rng.standard_normal((n, 6))
    (Va, XVa), (Vc, XVc) = a.solve(Rw, Rz), c.solve(Rw, Rz)
    Xs = X / c.col
    want = np.linalg.solve(np.eye(p) + Xs.T @ Xs, Rw + Xs.T @ Rz)
    for V, XV in ((Va, XVa), (Vc, XVc)):
        np.testing.assert_allclose(V, want, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(XV, Xs @ want, rtol=1e-9, atol=1e-10)
    X, W, b = _layer(seed=6, n=n, p=p, m=6)
    ra, rc = net_trim(X, W, b, 0.05, system="nxn"), net_trim(X, W, b, 0.05, system="pxp")
    check_result(ra, X, W, b, 0.05)
    check_result(rc, X, W, b, 0.05)
    np.testing.assert_allclose(ra.weight, rc.weight, rtol=0, atol=1e-6 * np.abs(W).max())
    assert ra.iterations == rc.iterations and abs(ra.n_after - rc.n_after) <= 1


def test_a_negative_epsilon_is_refused():
    with pytest.raises(ValueError, match="epsilon"):
        net_trim(np.ones((3, 2)), np.ones((1, 2)), None, -0.1)
