"""Net-Trim on a Brevitas model: net_trim_layer changes only the chosen layer (its weights in
place, in their dtype, so its quantized weights are 0 where the result is), restores the
modules' train/eval modes, and names the layer in every error. The solver itself, on arrays:
tests/unit/test_nettrim.py."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from amchw.compress import PruneError, net_trim_layer
from amchw.compress.nettrim import collect_activations, first_fc
from amchw.models import build
from amchw.models.quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs
from nettrim_checks import check_result, gap




def _tiny_model():
    torch.manual_seed(0)
    cfg = QuantConfig()
    return nn.Sequential(OrderedDict([
        ("inp", QuantIdentity(**input_kwargs(cfg))),
        ("fc1", QuantLinear(16, 12, bias=True, **weight_kwargs(cfg))),
        ("act", QuantReLU(**relu_kwargs(cfg))),
        ("fc2", QuantLinear(12, 4, bias=True, **weight_kwargs(cfg))),
    ]))


def test_net_trim_layer_on_a_brevitas_model():
    model = _tiny_model()
    frames = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    assert first_fc(model) == "fc1" and first_fc(build("vtcnn2")) == "fc3"
    X = collect_activations(model, "fc1", frames, batch_size=64)
    with torch.no_grad():
        model.eval()
        assert np.array_equal(X, model.inp(frames).value.double().numpy())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    W0 = model.fc1.weight.detach().double().numpy().copy()
    b = model.fc1.bias.detach().double().numpy()
    model.train()
    model.act.eval()
    res = net_trim_layer(model, "fc1", frames, 0.1)
    assert model.training and model.fc1.training and not model.act.training  # modes restored
    check_result(res, X, W0, b, 0.1)
    after = model.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == ["fc1.weight"]
    w = model.fc1.weight.detach()
    assert w.dtype == torch.float32 and np.array_equal(w.double().numpy(), res.weight)
    assert int((w == 0).sum()) == res.n_total - res.n_after > 0
    with torch.no_grad():
        assert torch.all(model.fc1.quant_weight().value[w == 0] == 0)
    X2 = collect_activations(model, "fc1", frames)
    assert np.array_equal(X2, X)
    assert gap(X2, w.double().numpy(), b, W0) <= 0.1


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x):
        return self.used(x)


def test_errors_name_the_layer():
    model = _tiny_model()
    frames = torch.randn(10, 16)
    with pytest.raises(PruneError, match="'fc9'.*fc1, fc2"):
        net_trim_layer(model, "fc9", frames, 0.05)
    with pytest.raises(PruneError, match="act: Net-Trim needs a Linear layer, got QuantReLU"):
        net_trim_layer(model, "act", frames, 0.05)
    with pytest.raises(PruneError, match="fc2: Net-Trim needs at least 2 frames, got 1"):
        net_trim_layer(model, "fc2", frames[:1], 0.05)
    with pytest.raises(PruneError, match="unused: the forward pass never reached"):
        net_trim_layer(_Skip(), "unused", torch.randn(4, 3), 0.05)
    with pytest.raises(PruneError, match="no Linear layer"):
        first_fc(nn.Sequential(nn.ReLU()))


def test_on_a_trained_layer_sparsity_rises_with_epsilon_and_accuracy_holds():
    """The seed's promise on a layer that has learned: a small quantized MLP trained on four
    Gaussian classes; Net-Trim of its first layer (N = 600 >= P = 16 frames) converges, meets
    ||relu(X U^T + b) - Y||_F <= epsilon ||Y||_F on the collected activations, prunes more
    at each larger epsilon, and keeps the accuracy at a small epsilon."""
    g = torch.Generator().manual_seed(3)
    centers = 1.5 * torch.randn(4, 16, generator=g)
    y = torch.arange(600) % 4
    x = centers[y] + torch.randn(600, 16, generator=g)
    model = _tiny_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()

    def acc(m):
        with torch.no_grad():
            return float((m(x).argmax(1) == y).float().mean())

    base = acc(model)
    assert base > 0.9                                   # it has learned
    X = collect_activations(model, "fc1", x)
    W0 = model.fc1.weight.detach().double().numpy().copy()
    b = model.fc1.bias.detach().double().numpy()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pes = []
    for eps in (0.02, 0.1, 0.3):
        model.load_state_dict(state)
        res = net_trim_layer(model, "fc1", x, eps)
        assert res.converged and res.frames == 600
        assert gap(X, model.fc1.weight.detach().double().numpy(), b, W0) <= eps
        pes.append(res.p_e)
        if eps == 0.02:
            assert acc(model) >= base - 0.02
    assert pes[0] < pes[1] < pes[2], pes
