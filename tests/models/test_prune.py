"""Magnitude pruning: exact zero counts per layer, N:M groups, the pruned model's IR sees the
zeros (and fits the N:M format), and `amchw prune` writes a checkpoint that verifies and
simulates."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from amchw.cli import main
from amchw.compress import PruneError, magnitude_prune
from amchw.data.synthetic import frames_for
from amchw.ir import Conv, Dense
from amchw.ir.sparse import fits, sparsity
from amchw.lower.brevitas import lower
from amchw.models import build
from amchw.models.calibrate import calibrate


@pytest.mark.parametrize("s", [0.0, 0.37, 0.9, 1.0])
def test_unstructured_counts_are_exact(s):
    m = build("vgg10", seed=1)
    done = magnitude_prune(m, s)
    for name, mod in m.named_modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Linear)):
            zeros = int((mod.weight == 0).sum())
            assert zeros == round(s * mod.weight.numel()), name
            assert done[name] == zeros / mod.weight.numel()
            if 0 < s < 1:  # the survivors are the largest: min |kept| >= max |dropped|
                w0 = build("vgg10", seed=1).get_submodule(name).weight.abs()
                kept = mod.weight != 0
                assert w0[kept].min() >= w0[~kept].max()


def test_nm_pattern_and_the_ir():
    fr = frames_for("vgg10", 16, seed=0)
    m = build("vgg10", seed=0)
    done = magnitude_prune(m, pattern="2:4", layers=["conv2", "fc8", "fc9"])
    assert done == {"conv2": 0.5, "fc8": 0.5, "fc9": 0.5}
    m = calibrate(m, torch.as_tensor(fr), seed=0)
    g = lower(m, torch.as_tensor(fr[:2]), name="vgg10")
    ops = {n.name: n.op for n in g.nodes if isinstance(n.op, (Conv, Dense))}
    for name in ("conv2", "fc8", "fc9"):
        assert fits(ops[name], "2:4") and sparsity(ops[name]) >= 0.5
    assert not fits(ops["conv3"], "2:4")
    fresh = build("vgg10", seed=0)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(PruneError, match="conv1: its reduction of 6 weights"):
        magnitude_prune(fresh, pattern="3:7", layers=["conv1", "conv2"])   # named: an error
    with pytest.raises(PruneError, match="no layer takes the 3:7 pattern"):
        magnitude_prune(fresh, pattern="3:7")        # no reduction of VGG10 is a multiple of 7
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in before.items())  # untouched
    kept: dict = {}
    done = magnitude_prune(build("vgg10", seed=0), pattern="2:4", skipped=kept)
    assert list(kept) == ["conv1"] and "conv1" not in done and done["conv2"] == 0.5
    with pytest.raises(PruneError, match="N:M with 1 <= N < M"):
        magnitude_prune(build("vgg10"), pattern="4:4")
    with pytest.raises(PruneError, match="in \\[0, 1\\]"):
        magnitude_prune(build("vgg10"), 1.5)


def test_prune_command_writes_a_checkpoint_that_verifies_and_simulates(tmp_path):
    out = tmp_path / "p.pt"
    r = CliRunner().invoke(main, ["prune", "vtcnn2", "--sparsity", "0.9", "--layers", "fc3",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    ck = torch.load(out, weights_only=False)
    assert ck["model"] == "vtcnn2" and ck["pruning"]["layers"]["fc3"] == pytest.approx(0.9, 1e-6)
    assert len(ck["classes"]) == 11
    r = CliRunner().invoke(main, ["verify", "--model", str(out), "--frames", "16", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["forbidden"] == 0
    r = CliRunner().invoke(main, ["simulate", "--model", str(out), "--array", "4x4", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["prune", "vtcnn2", "--pattern", "2:4", "--sparsity", "0.5",
                                  "-o", str(tmp_path / "q.pt")])
    assert r.exit_code == 2 and "N:M fixes it" in r.output
    assert not (tmp_path / "q.pt").exists()
    # the IR of the checkpoint sees fc3's zeros
    from amchw.resolve import load_model

    m = load_model(str(out), "po2", 8, 8, None, 0)
    g = lower(m, torch.as_tensor(frames_for("vtcnn2", 2, seed=0)), name="vtcnn2")
    fc3 = next(n.op for n in g.nodes if n.name == "fc3")
    assert sparsity(fc3) >= 0.9 - 1e-6
    assert np.count_nonzero(fc3.weight) <= round(0.1 * fc3.weight.size)
