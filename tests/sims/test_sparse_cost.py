"""The sparse cost model (docs/decisions/0004) against direct counts: every figure recomputed
here from the weight matrix by loops over folds, lanes and steps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amchw.ir import Conv, Dense, QType, acc_type
from amchw.sims.sparse import gemm_weights, sparse_gemm
from amchw.sims.timing import gemm_cycles

I8 = QType(8, True, False, (2.0**-6,))
W8 = QType(8, True, True, (2.0**-7,))


def _dense(w, fmt="dense"):
    return Dense(w, None, W8, acc_type(I8, W8), fmt)


def _direct_os(B, M, R, C, timing, fmt):
    """Per column fold j: T_j from a loop over its lanes or steps; folds run one by one."""
    K, N = B.shape
    nz = B != 0
    Ts, slots = [], 0
    for j0 in range(0, N, C):
        lanes = range(j0, min(N, j0 + C))
        if fmt == "csc":
            T = sum(1 for k in range(K) if any(nz[k, n] for n in lanes))
        else:
            T = max(sum(1 for k in range(K) if nz[k, n]) for n in lanes)
        for _ in range(0, M, R):
            Ts.append(T)
        slots += M * len(lanes) * T
    run = [t for t in Ts if t]
    if not run:
        return 0, slots
    if timing == "scalesim":
        return sum(t + R + C - 2 for t in run) - 1, slots
    return sum(run) + R + C - 2, slots


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 20), st.integers(1, 12), st.integers(1, 9),
       st.sampled_from([0.0, 0.2, 0.6, 1.0]), st.sampled_from([(1, 1), (2, 3), (4, 4)]),
       st.sampled_from(["pipelined", "scalesim"]), st.sampled_from(["csr", "csc"]))
def test_compressed_os_against_direct_counts(seed, M, K, N, density, arr, timing, fmt):
    rng = np.random.default_rng(seed)
    w = (rng.integers(1, 128, (N, K)) * rng.choice([-1, 1], (N, K))).astype(np.int32)
    w[rng.random((N, K)) >= density] = 0
    R, C = arr
    sc = sparse_gemm(_dense(w, fmt), M, R, C, "os", timing)
    cycles, slots = _direct_os(w.T, M, R, C, timing, fmt)
    assert (sc.cycles, sc.slots) == (cycles, slots)
    nnz = int(np.count_nonzero(w))
    assert sc.actual_macs == M * nnz and sc.algorithmic_macs == M * K * N
    assert sc.skipped_macs + sc.gated_macs + sc.actual_macs == sc.algorithmic_macs
    assert sc.handling == "skipped"
    if density == 1.0:  # nothing to skip: the dense array's cycles
        assert sc.cycles == gemm_cycles(M, K, N, R, C, "os", timing).cycles
    # metadata: nnz indices + pointers (csr: N + 1 over the outputs, csc: K + 1)
    ptrs = (N + 1) if fmt == "csr" else (K + 1)
    ib = max(1, (K - 1).bit_length()) if fmt == "csr" else max(1, (N - 1).bit_length())
    assert sc.metadata_bits == nnz * ib + ptrs * max(1, nnz.bit_length())
    assert sc.metadata_bits_read == -(-M // R) * sc.metadata_bits  # os: once per row fold
    assert sc.weight_bits == 8 * nnz


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_unstructured_formats_are_only_gated_in_ws_and_is(dataflow):
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (16, 24)).astype(np.int32)
    w[rng.random(w.shape) < 0.9] = 0
    for fmt in ("gated", "csr", "csc"):
        sc = sparse_gemm(_dense(w, fmt), 7, 4, 4, dataflow)
        assert sc.handling == "gated" and sc.skipped_macs == 0
        assert sc.cycles == gemm_cycles(7, 24, 16, 4, 4, dataflow).cycles
        assert sc.gated_macs == 7 * (w.size - np.count_nonzero(w))


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_nm_shrinks_the_reduction_in_every_dataflow(dataflow):
    w = np.zeros((6, 16), np.int32)
    w[:, 0::4] = 3          # one nonzero per group of 4: fits 2:4 with one padding slot
    sc = sparse_gemm(_dense(w, "2:4"), 5, 4, 4, dataflow)
    assert sc.cycles == gemm_cycles(5, 8, 6, 4, 4, dataflow).cycles  # K' = 16 * 2 / 4
    assert sc.slots == 5 * 8 * 6 and sc.skipped_macs == 5 * 8 * 6
    assert sc.gated_macs == 5 * 4 * 6      # the padding slot of each group
    assert sc.metadata_bits == 8 * 6 * 2 and sc.index_bits == 2
    assert sc.slot_efficiency == pytest.approx(0.5)
    # offsets read once per pass over the weights: os per row fold, is per column fold, ws once
    ft = gemm_cycles(5, 8, 6, 4, 4, dataflow)
    passes = {"os": ft.row_folds, "ws": 1, "is": ft.col_folds}[dataflow]
    assert sc.metadata_bits_read == passes * 8 * 6 * 2


def test_dense_format_and_conv_groups():
    w = (np.arange(18).reshape(2, 3, 3) % 5 - 2).astype(np.int32)  # 2 filters, 3 ch, 3 taps
    c = Conv(w, None, W8, (1,), ((0, 0),), (1,), 1, acc_type(I8, W8))
    B = gemm_weights(c)
    assert B.shape == (1, 9, 2) and np.array_equal(B[0], c.weight.reshape(2, -1).T)
    sc = sparse_gemm(c, 10, 4, 4, "ws")
    assert sc.handling == "none" and sc.skipped_macs == sc.gated_macs == 0
    assert sc.cycles == gemm_cycles(10, 9, 2, 4, 4, "ws").cycles
    g2 = Conv(np.ones((4, 2, 3), np.int32), None, W8, (1,), ((0, 0),), (1,), 2,
              acc_type(I8, W8), "csc")
    assert gemm_weights(g2).shape == (2, 6, 2)
    sc2 = sparse_gemm(g2, 3, 2, 2, "os", "scalesim")
    assert sc2.cycles == 2 * gemm_cycles(3, 6, 2, 2, 2, "os", "scalesim").cycles


def test_an_all_zero_layer_costs_no_os_cycles():
    sc = sparse_gemm(_dense(np.zeros((8, 8), np.int32), "csc"), 4, 4, 4, "os")
    assert sc.cycles == 0 and sc.slots == 0 and sc.actual_macs == 0
    assert sc.skipped_macs == sc.algorithmic_macs


def test_simulate_uses_the_sparse_cost_of_stored_layers():
    import torch

    from amchw.compress import magnitude_prune
    from amchw.data.synthetic import frames_for
    from amchw.ir.sparse import set_format
    from amchw.lower.brevitas import lower
    from amchw.models import build
    from amchw.models.calibrate import calibrate
    from amchw.sims import simulate
    from amchw.sims.hardware import get_target
    from amchw.sims.simulate import stepped_check

    fr = frames_for("vgg10", 8, seed=0)
    m = build("vgg10", seed=0)
    magnitude_prune(m, 0.9, layers=["fc8", "fc9"])
    m = calibrate(m, torch.as_tensor(fr), seed=0)
    g = lower(m, torch.as_tensor(fr[:2]), name="vgg10")
    t = get_target("edge-asic-45nm").with_array(4, 4)
    dense = {r.node: r for r in simulate(g, t, "os").layers}
    g2, skipped = set_format(g, "csr", min_sparsity=0.5)
    assert set(skipped) == {f"conv{i}" for i in range(1, 8)} | {"fc10"}
    rep = simulate(g2, t, "os")
    ops = {n.name: n.op for n in g2.nodes}
    for r in rep.layers:
        if r.node in ("fc8", "fc9"):
            sc = sparse_gemm(ops[r.node], r.M, 4, 4, "os")
            assert r.sparse == sc and r.compute_cycles == sc.cycles < dense[r.node].compute_cycles
            assert r.macs == sc.actual_macs
            assert r.weight_bytes == -(-(sc.weight_bits + sc.metadata_bits) // 8)
            assert r.energy.mac < dense[r.node].energy.mac
            assert r.to_dict()["sparse"]["format"] == "csr"
        else:
            assert r.sparse is None and r.cycles == dense[r.node].cycles
    st = stepped_check(rep, g2, fr)
    assert st["outputs_equal"] and st["cycles_equal_closed_form"]
    # CSC on os: the stepped array skips the zero steps and reaches the sparse closed form
    g3, _ = set_format(g, "csc", min_sparsity=0.5)
    rep3 = simulate(g3, t, "os")
    st3 = stepped_check(rep3, g3, fr)
    assert st3["outputs_equal"] and st3["cycles_equal_closed_form"]
    for r in rep3.layers:
        if r.node in ("fc8", "fc9"):
            assert r.stepped_cycles == r.compute_cycles < dense[r.node].compute_cycles


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 11), st.integers(1, 12), st.integers(1, 10),
       st.sampled_from([0.0, 0.15, 0.5, 1.0]), st.sampled_from([(1, 1), (2, 3), (4, 4), (3, 2)]),
       st.sampled_from(["pipelined", "scalesim"]))
def test_stepped_zero_skipping_reaches_the_closed_form(seed, M, K, N, density, arr, timing):
    """CSC on os: the stepped array streams each column fold's nonzero steps only; its cycles
    equal the sparse closed form and its outputs the dense product."""
    from amchw.sims.stepped import stepped_gemm

    rng = np.random.default_rng(seed)
    w = (rng.integers(1, 128, (N, K)) * rng.choice([-1, 1], (N, K))).astype(np.int32)
    w[rng.random((N, K)) >= density] = 0
    if N > 1:
        w[0] = 0  # an output with no weight at all
    a = rng.integers(-128, 128, (M, K)).astype(np.int32)
    bias = rng.integers(-50, 50, N).astype(np.int32)
    R, C = arr
    res = stepped_gemm(a, w.T, bias, R, C, "os", timing, skip_zeros=True)
    sc = sparse_gemm(_dense(w, "csc"), M, R, C, "os", timing)
    assert res.cycles == sc.cycles
    assert np.array_equal(res.out, a.astype(np.int64) @ w.T.astype(np.int64) + bias)
    # a slot per (row, reduction step, column) where the column's fold has a nonzero weight
    slots = sum(1 for m in range(M) for k in range(K) for n in range(N)
                if w[n, k] != 0 or any(w[n2, k] != 0 for n2 in
                                       range((n // C) * C, min(N, (n // C) * C + C))))
    assert res.counts["macs"] == sc.slots == slots
    dense = stepped_gemm(a, w.T, bias, R, C, "os", timing)
    assert dense.cycles == gemm_cycles(M, K, N, R, C, "os", timing).cycles
    assert np.array_equal(dense.out, res.out)
