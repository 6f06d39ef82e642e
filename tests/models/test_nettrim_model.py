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
