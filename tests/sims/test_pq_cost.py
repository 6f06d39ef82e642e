"""Product quantization as a weight format: a Dense layer whose inputs' sub-vectors take at most
K values per subspace is stored "pqP:K"; the numba backend runs the PQ kernels and equals the
reference; the cost model counts the two kernels' work as the seed describes."""

import numpy as np
import pytest

from amchw.ir import Dense, FloatType, GraphBuilder, IRError, QType, Quantize, acc_type
from amchw.ir.interp import run
from amchw.ir.sparse import index_bits, pq_codebooks
from amchw.kernels.pq import compression_rate, pq_reconstruct
from amchw.sims import simulate
from amchw.sims.hardware import get_target
from amchw.sims.sparse import pq_gemm
from amchw.sims.timing import gemm_cycles

I8 = QType(8, True, False, (2.0**-6,))
W8 = QType(8, True, True, (2.0**-7,))


def _pq_weight(m_in=96, n_out=8, P=2, K=4, seed=0):
    rng = np.random.default_rng(seed)
    books = rng.integers(-127, 128, (P, K, n_out // P)).astype(np.int32)
    codes = rng.integers(0, K, (m_in, P)).astype(np.int32)
    return pq_reconstruct(codes, books).T.copy(), codes, books  # (N outputs, M inputs)


def _graph(w, fmt):
    b = GraphBuilder("pq")
    b.input("x", (w.shape[1],), FloatType())
    q = b.add("q", Quantize(I8), ["x"])
    d = b.add("fc", Dense(w, np.arange(w.shape[0], dtype=np.int32), W8, acc_type(I8, W8), fmt),
              [q.name])
    return b.build([d.name])


def test_pq_format_runs_the_pq_kernels_exactly():
    w, codes, books = _pq_weight()
    x = np.random.default_rng(1).uniform(-2, 2, (5, w.shape[1])).astype(np.float32)
    for fmt in ("pq2:4", "pq2:128"):  # bins (96 inputs > 4) and lookup (96 < 128)
        g = _graph(w, fmt)
        assert np.array_equal(run(g, x, "numba"), run(_graph(w, "dense"), x, "ref"))
    op = _graph(w, "pq2:4").node("fc").op
    c2, b2 = pq_codebooks(op)
    assert np.array_equal(pq_reconstruct(c2, b2), w.T)  # the recovered codebook stores W
    assert index_bits(op) == 2
    with pytest.raises(IRError, match="subspace 0 has .* distinct sub-vectors, more than the 2"):
        _graph(w, "pq2:2")
    with pytest.raises(IRError, match="8 outputs do not split into 3 subspaces"):
        _graph(w, "pq3:4")


def test_pq_cost_counts_both_kernels():
    w, _, _ = _pq_weight(m_in=96, n_out=8, P=2, K=4)
    op = _graph(w, "pq2:4").node("fc").op
    M, K_red, N, P, K, d = 3, 96, 8, 2, 4, 4
    look = pq_gemm(op, M, 4, 4, "ws", kernel="lookup")
    assert look.table_reads == M * K_red * P and look.slots == M * K_red * N
    assert look.cycles == gemm_cycles(M, K_red, N, 4, 4, "ws").cycles
    bins = pq_gemm(op, M, 4, 4, "ws", kernel="bins")
    assert bins.vector_adds == M * K_red * P and bins.slots == M * K * N
    assert bins.cycles == P * gemm_cycles(M, K, d, 4, 4, "ws").cycles
    assert bins.weight_bits == P * K * d * 8 and bins.metadata_bits == K_red * P * 2
    assert bins.metadata_bits_read == look.metadata_bits_read == M * K_red * P * 2
    # the seed's C_Q in these terms (b = 8-bit originals here)
    assert 8 * K_red * N / (bins.weight_bits + bins.metadata_bits) == \
        pytest.approx(compression_rate(K_red, N, P, K, b=8))
    rep = simulate(_graph(w, "pq2:4"), get_target("edge-asic-45nm").with_array(4, 4), "ws")
    r = next(r for r in rep.layers if r.node == "fc")
    one = pq_gemm(op, 1, 4, 4, "ws", kernel="bins")  # batch 1
    assert r.sparse == one and r.macs == one.slots == 1 * K * N
    assert r.compute_cycles == one.cycles + -(-one.vector_adds // rep.target.vector_lanes)
    assert bins.skipped_macs == M * (K_red - K) * N and bins.slot_efficiency == 1.0
