"""The fused quantized GRU (amchw.models.gru_fused): its forward is the per-module Brevitas
path's, bit for bit (train mode with learned scales, eval mode; both scale kinds), and so the
lowered IR's integers; its hand-written backward gives autograd's gradients (to float rounding),
including the learned scales'; and a few steps of training on it lower the loss."""

import numpy as np
import pytest
import torch

from amchw.data.synthetic import synthesize
from amchw.ir.interp import run
from amchw.lower.brevitas import lower
from amchw.models import QuantConfig
from amchw.models.gru import _statistics_done, gru_cnn


def _model(scales, cells=8, steps=101, seed=0):
    X, y, _ = synthesize("rml2018", 1, [10, 20], seed=seed)
    X = torch.as_tensor(np.ascontiguousarray(X[::3, :, :steps]))    # 16 frames
    y = torch.as_tensor(y[::3])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = gru_cnn(QuantConfig(scales=scales), cells=cells).train()
        for _ in range(3):            # 3 x 101 steps: every cell quantizer past its 300 calls
            m(X)
    assert _statistics_done(m.gru)
    return m, X, y


def _run(m, X, fused):
    m.gru.zero_grad()
    m.gru.fused = fused
    out = m.gru(m.inp(X))
    (out.square().sum() + out.sum()).backward()
    grads = {n: p.grad.clone() for n, p in m.gru.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("scales", ["po2", "float"])
def test_fused_equals_the_per_module_path(scales):
    m, X, _ = _model(scales)
    (a, _), (b, _) = _run(m, X, True), _run(m, X, False)
    assert torch.equal(a, b)                      # float32, train mode: the same bits
    m.eval()
    with torch.no_grad():
        m.gru.fused = True
        e1 = m.gru(m.inp(X))
        m.gru.fused = False
        e2 = m.gru(m.inp(X))
    assert torch.equal(e1, e2)
    # the backward: in float64 (where float32's order-of-addition noise, amplified by the
    # recurrence, disappears) the hand-written gradients are autograd's
    m.train().double()
    (a, ga), (b, gb) = _run(m, X.double(), True), _run(m, X.double(), False)
    assert torch.equal(a, b)
    assert set(ga) == set(gb) and len(ga) >= 6    # weights, biases, learned scales
    assert any("scaling_impl" in k for k in ga)   # the learned activation scales get gradients
    for k in gb:
        err = float((ga[k] - gb[k]).norm() / gb[k].norm().clamp_min(1e-300))
        assert err < 1e-9, (k, err)


def test_fused_forward_is_the_lowered_irs_integers():
    m, X, _ = _model("po2")
    m.eval()
    m.gru.fused = True
    g = lower(m, X[:4])
    gru = next(n for n in g.nodes if n.op.kind == "GRU")
    codes = run(g, X.numpy(), "ref", keep=True)[gru.name]
    with torch.no_grad():
        h = m.gru(m.inp(X)).numpy()
    scale = 2.0 ** -7                                     # the hidden state's type
    assert np.array_equal(codes.astype(np.float64) * scale, h.astype(np.float64))


def test_training_on_the_fused_path_lowers_the_loss():
    m, X, y = _model("po2", seed=1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        out = m(X)
        loss = torch.nn.functional.cross_entropy(out.value if hasattr(out, "value") else out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_float_warmup_runs_torchs_gru_on_the_same_weights():
    """Quantization off (train --float-epochs): the GRU is torch's nn.GRU kernels on the
    module's own weights, the per-module float path's values up to float rounding (the same
    cell), with gradients reaching the module's parameters."""
    from amchw.train import set_quantization

    m = gru_cnn(QuantConfig(), cells=8).train()
    set_quantization(m, False)
    X = torch.randn(4, 2, 50)
    m.gru.fused = True
    a = m.gru(X)
    a.square().sum().backward()
    assert m.gru.w_hz.weight.grad is not None and m.gru.w_in.bias.grad.abs().sum() > 0
    m.gru.fused = False
    b = m.gru(X)
    assert type(a) is torch.Tensor and torch.allclose(a, b, rtol=0, atol=1e-5)
    set_quantization(m, True)
    m.gru.fused = True
    assert _statistics_done(m.gru) is False       # back on: the quantized path gathers stats
