"""The zoo: exact parameter counts, modules the lowering handles, quantizer wiring, registry."""
from dataclasses import replace

import pytest
import torch
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant_tensor import QuantTensor

from amchw.data.model_inputs import MODEL_INPUTS, add_model_input
from amchw.data.synthetic import frames_for
from amchw.lower.brevitas import supported_modules
from amchw.models import ZOO, QuantConfig, UnknownModelError, build, count_params, register

# VGG10: conv 2*64*3 + 6 * 64*64*3, 7 BN x 128, FC 512*128 + 128*128 + 128*24 + 24, 2 BN x 256.
VGG10_PARAMS = (
    2 * 64 * 3 + 6 * 64 * 64 * 3 + 7 * 2 * 64
    + 512 * 128 + 128 * 128 + 128 * 24 + 24 + 2 * 2 * 128
)
# VTCNN2: conv (1*3+1)*256, conv (256*2*3+1)*80, FC (10560+1)*256, FC (256+1)*11.
VTCNN2_PARAMS = 4 * 256 + (256 * 6 + 1) * 80 + 10561 * 256 + 257 * 11

CONFIGS = [
    QuantConfig(),
    QuantConfig(scales="float"),
    QuantConfig(weight_bits=4, act_bits=4, input_bits=8, scales="po2", per_channel=True),
    QuantConfig(weight_bits=2, act_bits=3, input_bits=4, scales="float", per_channel=True),
]


def test_expected_counts_match_reference():
    assert VGG10_PARAMS == 160_536
    assert VTCNN2_PARAMS == 2_830_427


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_param_counts_exact(config):
    vgg = build("vgg10", config)
    vt = build("vtcnn2", config)
    assert count_params(vgg) == 160_536
    assert count_params(vt) == 2_830_427
    # Quantizer parameters (learned scales) exist in float mode but are not counted.
    if config.scales == "float":
        assert sum(p.numel() for p in vgg.parameters()) > 160_536


@pytest.mark.parametrize("name", sorted(ZOO))
def test_built_only_from_lowerable_modules(name):
    """Every leaf module is one the Brevitas lowering handles (supported_modules raises
    naming any other), and the model starts with its input quantizer `inp`."""
    model = build(name)
    found = supported_modules(model)
    assert list(found)[0] == "inp" and isinstance(model.inp, QuantIdentity)
    leaves = {n for n, m in model.named_modules() if n and not list(m.children())}
    covered = {n for n in leaves if any(n == p or n.startswith(p + ".") for p in found)}
    assert covered == leaves


def test_vgg10_layout():
    m = build("vgg10")
    names = [n for n, _ in m.named_children()]
    expected = ["inp"]
    for i in range(1, 8):
        expected += [f"conv{i}", f"bn{i}", f"relu{i}", f"pool{i}"]
    expected += ["flatten", "fc8", "bn8", "relu8", "fc9", "bn9", "relu9", "fc10"]
    assert names == expected
    convs = [m.get_submodule(f"conv{i}") for i in range(1, 8)]
    assert all(c.kernel_size == (3,) and c.padding == (1,) and c.bias is None for c in convs)
    assert (m.fc8.in_features, m.fc8.out_features, m.fc8.bias) == (512, 128, None)
    assert m.fc10.bias is not None and m.fc10.out_features == 24


def test_vtcnn2_layout():
    m = build("vtcnn2")
    assert [n for n, _ in m.named_children()] == [
        "inp", "conv1", "relu1", "drop1", "conv2", "relu2", "drop2",
        "flatten", "fc3", "relu3", "drop3", "fc4",
    ]
    assert (m.conv1.kernel_size, m.conv1.padding, m.conv1.out_channels) == ((1, 3), (0, 2), 256)
    assert (m.conv2.kernel_size, m.conv2.padding, m.conv2.out_channels) == ((2, 3), (0, 2), 80)
    assert m.fc3.in_features == 80 * 132  # width 128 -> 130 -> 132, height 2 -> 1
    assert all(d.p == 0.5 for d in (m.drop1, m.drop2, m.drop3))


@pytest.mark.parametrize("name", sorted(n for n in ZOO if not n.startswith("gru-cnn-")))
@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_forward_and_quant_wiring(name, config):
    """Biased quant layers get QuantTensor inputs; every quant layer emits a plain tensor;
    activation quantizers carry the configured bit widths."""
    model = build(name, config, seed=0).eval()
    seen = {}

    def hook(mod, inputs, output, n=None):
        seen[n] = (inputs[0], output)

    mods = supported_modules(model)
    for n, m in mods.items():
        m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
    entry = ZOO[name]
    x = torch.randn(3, *entry.input_shape).clamp(-2, 2)
    with torch.no_grad():
        y = model(x)
    for out in (y if name.startswith("ee-v") else (y,)):  # early exits: (exit, final)
        out = out.value if isinstance(out, QuantTensor) else out  # quantized logits
        assert type(out) is torch.Tensor and out.shape == (3, entry.num_classes)
        assert torch.isfinite(out).all()
    for n, m in mods.items():
        inp, out = seen[n]
        if isinstance(m, (QuantConv1d, QuantConv2d, QuantLinear)):
            assert type(out) is torch.Tensor, n
            assert m.quant_weight().bit_width.item() == config.weight_bits
            if m.bias is not None:
                assert isinstance(inp, QuantTensor), n
        if isinstance(m, QuantReLU):
            assert isinstance(out, QuantTensor) and not out.signed
            assert out.bit_width.item() == config.act_bits
        if n == "inp":
            assert isinstance(out, QuantTensor) and out.signed
            assert out.bit_width.item() == config.input_bits


def test_registry_entries():
    assert ZOO["vgg10"].input_shape == (2, 1024) and ZOO["vgg10"].num_classes == 24
    assert ZOO["vgg10"].profile == "rml2018"
    assert ZOO["vtcnn2"].input_shape == (1, 2, 128) and ZOO["vtcnn2"].num_classes == 11
    assert ZOO["vtcnn2"].profile == "rml2016"
    assert all(e.description for e in ZOO.values())
    # every model's input is the one the data side lists (frames_for reads that list)
    assert {n: (e.profile, e.input_shape) for n, e in ZOO.items()} == \
        {n: (i.profile, i.input_shape) for n, i in MODEL_INPUTS.items()}


def test_a_registered_model_gets_frames_from_the_data_side():
    entry = replace(ZOO["vtcnn2"], name="vtcnn2-copy")
    try:
        register(entry)
        assert frames_for("vtcnn2-copy", 2, seed=0).shape == (2, 1, 2, 128)
        with pytest.raises(ValueError, match="vtcnn2-copy"):
            add_model_input("vtcnn2-copy", "rml2018", (2, 1024))
    finally:
        ZOO.pop("vtcnn2-copy", None)
        MODEL_INPUTS.pop("vtcnn2-copy", None)


def test_unknown_name_lists_known():
    with pytest.raises(KeyError):
        build("resnet1000")
    with pytest.raises(ValueError) as err:
        build("resnet1000")
    assert isinstance(err.value, UnknownModelError)
    assert "vgg10" in str(err.value) and "vtcnn2" in str(err.value)


def test_meta_and_overrides():
    m = build("vgg10", QuantConfig(scales="float"), weight_bits=4, num_classes=10)
    meta = m.amchw_meta
    assert meta["name"] == "vgg10" and meta["num_classes"] == 10
    assert meta["input_shape"] == (2, 1024)
    assert meta["config"] == {
        "weight_bits": 4, "act_bits": 8, "input_bits": 8, "scales": "float", "per_channel": False,
    }
    assert m.fc10.out_features == 10
    assert m.conv1.quant_weight().bit_width.item() == 4
    with pytest.raises(ValueError, match="weight_bits"):
        build("vgg10", weight_bits=12)
    with pytest.raises(TypeError):
        build("vgg10", no_such_option=1)


def test_seed_is_deterministic_and_leaves_global_rng():
    state = torch.get_rng_state()
    a = build("vtcnn2", seed=5)
    b = build("vtcnn2", seed=5)
    c = build("vtcnn2", seed=6)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.fc3.weight, b.fc3.weight)
    assert not torch.equal(a.fc3.weight, c.fc3.weight)


def test_zoo_macs_agree_with_the_simulator_mapping():
    """count_macs (torch hooks) against the IR's GEMM views (sims.mapping), two independent
    counts; and the VGG10 formula."""
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.lower.brevitas import lower
    from amchw.models import ZOO, build, count_macs, weight_count
    from amchw.models.calibrate import calibrate
    from amchw.sims.mapping import GemmView, layers

    for name, e in ZOO.items():
        if name.startswith("gru-cnn-"):   # the 80-cell GRU-CNN's code at other widths
            continue
        fr = frames_for(name, 8, seed=0)
        m = calibrate(build(name, seed=0), torch.as_tensor(fr), seed=0)
        g = lower(m, torch.as_tensor(fr[:2]), name=name)
        views = [v for v in layers(g, 1) if isinstance(v, GemmView)]
        assert count_macs(m, e.input_shape) == sum(v.macs for v in views), name
        assert weight_count(m) * 8 // 8 == sum(v.w_bytes for v in views), name
    vgg = build("vgg10", seed=0)
    assert count_macs(vgg, (2, 1024)) == 1024 * 3 * 2 * 64 + 1008 * 3 * 64 * 64 + 84_992


@pytest.mark.parametrize("config", [QuantConfig(), QuantConfig(weight_bits=4, act_bits=4,
                                                               scales="float")])
def test_compression_seed_cnns_match_table_one(config):
    """The seed's Table I: per-layer learnable parameters of both models (conv weights and
    bias); in total with BN and the FC layer 97,395 (docs/sources.md, Architectures) and
    51,155; MACs fall by ~70% as the seed reports."""
    want = {"cnn-matlab": [272, 3096, 6176, 12336, 24640, 49248],
            "cnn-slim": [144, 792, 1568, 3120, 6208, 12384, 24704]}
    for name, per_layer in want.items():
        m = build(name, config, seed=0)
        convs = [c for n, c in m.named_children() if n.startswith("conv")]
        assert [c.weight.numel() + c.bias.numel() for c in convs] == per_layer
    assert count_params(build("cnn-matlab", config, seed=0)) == 97_395
    assert count_params(build("cnn-slim", config, seed=0)) == 51_155
    from amchw.models import count_macs

    a = count_macs(build("cnn-matlab", seed=0), (2, 1024))
    b = count_macs(build("cnn-slim", seed=0), (2, 1024))
    assert 0.65 < 1 - b / a < 0.75


def _c_q(M, N, P, K=256, b=64):
    """The edge-efficient seed's PQ compression rate C_Q = bMN / (b K N + log2(K) M P)."""
    return b * M * N / (b * K * N + (K.bit_length() - 1) * M * P)


@pytest.mark.parametrize("config", [QuantConfig(), QuantConfig(scales="float", per_channel=True)])
def test_west_oshea_resnet_and_inception_sizes(config):
    """Totals ~3.45M / ~10.14M and FC1 ~3.37M / ~10.06M (the seed's text); FC1's shape is the
    one the seed's Table II compression rates imply (C_Q formula, to its printed digits)."""
    res, inc = build("resnet", config, seed=0), build("inception", config, seed=0)
    assert count_params(res) == 3_450_933 and round(count_params(res) / 1e6, 2) == 3.45
    assert count_params(inc) == 10_136_821 and round(count_params(inc) / 1e6, 2) == 10.14
    for m, (M, total) in ((res, (13_200, 3_379_456)), (inc, (39_200, 10_035_456))):
        assert (m.fc1.in_features, m.fc1.out_features) == (M, 256)
        assert m.fc1.weight.numel() + m.fc1.bias.numel() == total
    assert 3.37e6 < 3_379_456 < 3.385e6 and abs(10_035_456 - 10.06e6) / 10.06e6 < 0.003
    # Table II: ResNet 42.92 (P=8), 36.76 (P=16); InceptionNet 133.20 (P=2), 95.8 (P=8)
    assert (round(_c_q(13_200, 256, 8), 2), round(_c_q(13_200, 256, 16), 2)) == (42.92, 36.76)
    assert abs(_c_q(39_200, 256, 2) - 133.20) < 0.01 and round(_c_q(39_200, 256, 8), 1) == 95.8
    # and the seed's VTCNN2 figure from its 10560 x 256 layer
    assert round(_c_q(10_560, 256, 2), 2) == 39.65
    # residual units add, Inception modules concatenate four 50-channel branches
    kinds = {type(m).__name__ for m in res.modules()} | {type(m).__name__ for m in inc.modules()}
    assert {"QuantEltwiseAdd", "Cat", "MaxPool2d"} <= kinds
    x = torch.randn(2, 1, 2, 128).clamp(-2, 2)
    seen = {}
    inc.incep1.cat.register_forward_hook(lambda mod, a, o: seen.update(shape=tuple(o.shape)))
    with torch.no_grad():
        inc.eval()(x)
    assert seen["shape"] == (2, 200, 2, 98)


def test_early_exit_networks_match_the_seed():
    """Baseline 119,418, exit branch 68,010, every version 187,428 (docs/sources.md, Architectures);
    the exit branch reads 1024 features at conv1 / conv2 / conv3 / conv5."""
    from amchw.models.early_exit import EXITS

    assert count_params(build("ee-baseline")) == 119_418
    at = {"v0": ("trunk.pool1", (64, 64)), "v1": ("trunk.relu2", (64, 64)),
          "v2": ("trunk.relu3", (64, 32)), "v3": ("trunk.relu5", (32, 32))}
    for v in EXITS:
        m = build(f"ee-{v}", seed=0).eval()
        assert count_params(m) == 187_428 and count_params(m.exit) == 68_010
        assert count_params(m.trunk) + count_params(m.rest) == 119_418
        seen = {}
        m.get_submodule(at[v][0]).register_forward_hook(
            lambda mod, a, o: seen.update(trunk=tuple(o.shape[1:])))
        m.exit.fc1.register_forward_hook(lambda mod, a, o: seen.update(fc=a[0].shape[1]))
        with torch.no_grad():
            ex, fin = m(torch.randn(2, 2, 128).clamp(-2, 2))
        assert seen == {"trunk": at[v][1], "fc": 1024}, v
        assert ex.shape == fin.shape == (2, 10)
    with pytest.raises(ValueError, match="v0"):
        from amchw.models.early_exit import EarlyExitNet

        EarlyExitNet("v9", QuantConfig(), 10, 0.5)


def test_sbcnn_teacher_and_student_layout():
    """Teacher [A, B, C, C, GAP, dense], student [A, GAP, dense] (the seed's block lists)."""
    t, s = build("sbcnn-teacher", seed=0), build("sbcnn-student", seed=0)
    assert [n for n, _ in t.named_children()] == ["inp", "a", "b", "c1", "c2", "gap", "qgap",
                                                   "flatten", "fc"]
    assert [n for n, _ in s.named_children()] == ["inp", "a", "gap", "qgap", "flatten", "fc"]
    assert count_params(t) == 62_936 and count_params(s) == 4_184
    assert count_params(s.a) == count_params(t.a) == 3_392
    assert t.fc.in_features == 64 and s.fc.in_features == 32
