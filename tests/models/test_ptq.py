"""Post-training quantization (amchw.compress.ptq): a model trained in float, then quantized
with calibration frames, keeps its accuracy (the compression seed's promise: INT8 within about
half a point of FP32) and lowers to the integer IR bit-exactly; a float-only checkpoint is
refused by name until it is quantized; the command runs end to end."""

from collections import OrderedDict

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from click.testing import CliRunner
from torch import nn

from amchw.compress.ptq import post_training_quantize, reset_runtime_scales
from amchw.models.quant import QuantConfig, act_kwargs, input_kwargs, relu_kwargs, \
    weight_kwargs
from amchw.train import set_quantization


def _mlp():
    cfg = QuantConfig()
    return nn.Sequential(OrderedDict([
        ("inp", QuantIdentity(**input_kwargs(cfg))),
        ("fc1", QuantLinear(16, 48, bias=True, **weight_kwargs(cfg))),
        ("act", QuantReLU(**relu_kwargs(cfg))),
        ("fc2", QuantLinear(48, 8, bias=True, **weight_kwargs(cfg))),
        ("out", QuantIdentity(**act_kwargs(cfg))),
    ]))


def test_a_float_trained_model_keeps_its_accuracy_after_ptq():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(8, 16, generator=g)

    def frames(n):
        y = torch.randint(0, 8, (n,), generator=g)
        return centers[y] + 0.9 * torch.randn(n, 16, generator=g), y

    (xt, yt), (xc, _), (xv, yv) = frames(3000), frames(500), frames(3000)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = _mlp()
    set_quantization(m, False)                   # trained in float, as FP32
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(m(xt), yt).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        float_acc = float((m(xv).argmax(1) == yv).float().mean())
    assert float_acc > 0.8                        # it has learned
    post_training_quantize(m, xc)                 # calibration frames held out
    with torch.no_grad():
        q = m(xv)
    q = q.value if hasattr(q, "value") else q
    int_acc = float((q.argmax(1) == yv).float().mean())
    assert abs(int_acc - float_acc) <= 0.01, (float_acc, int_acc)
    # quantized for real: the activation scales come from the calibration frames
    scale = float(m.act.act_quant.scale().detach())
    with torch.no_grad():
        set_quantization(m, False)
        h = m.act(m.fc1(xc))
        set_quantization(m, True)
    assert 0.1 * float(h.max()) / 255 < scale < 10 * float(h.max()) / 255
    # and the integer IR computes the same logits, bit for bit
    from amchw.ir.interp import run
    from amchw.lower.brevitas import lower

    graph = lower(m, xv[:4])
    codes = run(graph, xv.numpy(), "ref")
    assert np.array_equal(np.argmax(codes, 1), q.argmax(1).numpy())
    assert reset_runtime_scales(m) == 2     # act and out (the input quantizer is constant)


def test_float_only_checkpoint_is_refused_until_quantized(tmp_path):
    from amchw.cli import main

    run = CliRunner().invoke
    d, f, q = tmp_path / "d.h5", tmp_path / "f.pt", tmp_path / "q.pt"
    r = run(main, ["data", "synth", "--profile", "rml2016b", "--per-class-snr", "6",
                   "--snrs", "18", "-o", str(d)])
    assert r.exit_code == 0, r.output
    r = run(main, ["train", "--model", "ee-baseline", "--data", str(d), "--epochs", "1",
                   "--float-only", "--batch-size", "16", "-o", str(f)])
    assert r.exit_code == 0, r.output
    r = run(main, ["eval", str(f), "--data", str(d)])
    assert r.exit_code == 1 and "f.pt: a float-only training" in r.output
    assert "amchw compress ptq" in r.output
    r = run(main, ["compress", "ptq", str(f), "--frames", "4", "-o", str(q)])
    assert r.exit_code == 0, r.output
    assert "calibrated on 4 val frames" in r.output
    ck = torch.load(q, weights_only=False)
    assert ck["ptq"]["calibration_frames"] == 4 and "float_only" not in ck
    r = run(main, ["eval", str(q), "--data", str(d), "--json"])
    assert r.exit_code == 0, r.output
    r = run(main, ["train", "--model", "ee-baseline", "--data", str(d), "--epochs", "2",
                   "--float-only", "--float-epochs", "1", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code != 0 and "float-only training has no separate float warm-up" in r.output
