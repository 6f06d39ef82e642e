"""Checks of a Net-Trim result shared by the torch-free solver tests (tests/unit) and the
model tests (tests/models): the constraint and the counts, recomputed from the arrays."""

import numpy as np
import pytest

from amchw.compress.nettrim import NetTrimResult


def gap(X, U, b, W0):
    """||relu(X U^T + b) - Y||_F / ||Y||_F, Y from the original weights, all float64."""
    X, U, W0 = (np.asarray(a, dtype=np.float64) for a in (X, U, W0))
    b = np.zeros(U.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
    Y = np.maximum(X @ W0.T + b, 0.0)
    return np.linalg.norm(np.maximum(X @ U.T + b, 0.0) - Y) / np.linalg.norm(Y)


def check_result(res, X, W, b, eps):
    """The result's constraint (relative gap <= eps) and its counts, from the arrays."""
    assert isinstance(res, NetTrimResult)
    assert res.weight.shape == W.shape and res.weight.dtype == np.float64
    g = gap(X, res.weight, b, W)
    assert g <= eps
    assert res.discrepancy == pytest.approx(g, rel=1e-9, abs=1e-15)
    assert res.n_total == W.size
    assert res.n_before == np.count_nonzero(W)
    assert res.n_after == np.count_nonzero(res.weight)
    assert res.p_e == pytest.approx(1.0 - np.count_nonzero(res.weight) / W.size, abs=1e-15)
    assert res.epsilon == eps and res.frames == X.shape[0]
    assert np.abs(res.weight).sum() <= np.abs(W).sum()  # an L1 problem started from W
