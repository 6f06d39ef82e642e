"""calibrate(): deterministic, leaves global RNGs alone, gives finite non-degenerate activations."""
import math

import numpy as np
import pytest
import torch
from brevitas.nn import QuantReLU
from torch import nn

from amchw.data.synthetic import frames_for
from amchw.models import build
from amchw.models.calibrate import as_model_input, calibrate
from amchw.models.quant import QuantConfig, input_scale


def _relu_outputs(model, x):
    acts = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: acts.__setitem__(n, o))
        for n, m in model.named_children()
        if isinstance(m, QuantReLU) or n == "inp"
    ]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return y, acts


@pytest.mark.parametrize("name", ["vgg10", "vtcnn2"])
@pytest.mark.parametrize("scales", ["po2", "float"])
def test_calibrated_model_is_meaningful(name, scales):
    frames = frames_for(name, 128, seed=1)
    model = calibrate(build(name, scales=scales, seed=0), frames, batch_size=64, seed=2)
    assert not model.training and not any(m.training for m in model.modules())
    y, acts = _relu_outputs(model, as_model_input(model, frames[:64]))
    assert torch.isfinite(y).all() and y.std() > 0
    # The input scale is a constant: calibration leaves it at its configured value.
    assert acts["inp"].scale.item() == pytest.approx(input_scale(QuantConfig(scales=scales)))
    for n, qt in acts.items():
        codes = torch.round(qt.value / qt.scale)
        nonzero = (codes != 0).float().mean().item()
        top = 2 ** qt.bit_width.item() - 1 if not qt.signed else 2 ** (qt.bit_width.item() - 1) - 1
        saturated = (codes >= top).float().mean().item()
        assert 0.1 < nonzero, f"{n}: only {nonzero:.1%} nonzero codes"
        assert saturated < 0.01, f"{n}: {saturated:.1%} saturated codes"
        assert len(torch.unique(codes)) > 8, f"{n}: too few distinct codes"
        if scales == "po2":
            assert math.log2(qt.scale.item()).is_integer(), n
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert m.num_batches_tracked > 0
            assert torch.all((m.weight >= 0.5) & (m.weight <= 1.5))
            assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))


def test_calibration_is_deterministic_and_seeded():
    frames = frames_for("rml2018", 32, seed=3)
    x = as_model_input(build("vgg10"), frames)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    outs = []
    for seed in (7, 7, 8):
        model = calibrate(build("vgg10", scales="float", seed=0), frames, batch_size=16, seed=seed)
        with torch.no_grad():
            outs.append((model(x), model.state_dict()))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    (y1, s1), (y2, s2), (y3, s3) = outs
    assert torch.equal(y1, y2)
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1["bn1.weight"], s3["bn1.weight"])


def test_calibration_accepts_generator_and_torch_frames():
    frames = torch.from_numpy(frames_for("vtcnn2", 32, seed=0))
    a = calibrate(build("vtcnn2", seed=1), frames, seed=torch.Generator().manual_seed(4))
    b = calibrate(build("vtcnn2", seed=1), frames.numpy(), seed=4)
    with torch.no_grad():
        assert torch.equal(a(frames), b(frames))


def test_calibration_rejects_bad_input():
    model = build("vtcnn2", seed=0)
    frames = frames_for("vtcnn2", 4, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        calibrate(model, frames, batch_size=0)
    with pytest.raises(ValueError, match="two frames"):
        calibrate(model, frames[:1])
