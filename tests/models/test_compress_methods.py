"""The compression methods that train (issue 7), on tiny synthetic rml2016b files: the IMP
schedule reaches its targets and holds its zeros, PQ retraining leaves the codebook's weights
untouched, distillation's gradients are the loss formula's, multi-branch training sends each
loss only where the early-exit seed says, and what they write verifies bit-exact."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from amchw.checkpoint import model_from_checkpoint
from amchw.compress.distill import Distillation, kd_loss
from amchw.compress.imp import (GradualPruning, footprint, imp_schedule,
                                polynomial_sparsity)
from amchw.compress.multibranch import MultiBranch, branch_parameters
from amchw.compress.pipeline import distill, product_quantization
from amchw.compress.prune import PruneError, prunable
from amchw.data.radioml import synth_to_h5
from amchw.models import QuantConfig, build
from amchw.train import Frozen, TrainConfig, train


def _quiet(*a):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp("d") / "b.h5"
    synth_to_h5(p, "rml2016b", 12, (0, 10, 18), seed=2)   # 10 x 3 x 12 = 360 frames
    return str(p)


@pytest.fixture(scope="module")
def base_ck(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "base.pt"
    train(TrainConfig(model="ee-baseline", data=data, out=str(out), epochs=2, batch_size=32,
                      seed=1), log=_quiet)
    return str(out)


def _verify(path):
    from amchw.data.synthetic import frames_for
    from amchw.verify.brevitas import verify_model

    model, ck = model_from_checkpoint(path)
    rep = verify_model(model, np.asarray(frames_for(ck["model"], 32, seed=0)),
                       reference="float32", name=ck["model"])
    assert rep.ok, path


def test_polynomial_schedule_is_the_formula():
    for t, want in ((0, 0.2), (10, 0.85), (20, 0.85), (5, 0.85 + (0.2 - 0.85) * 0.5 ** 3)):
        assert polynomial_sparsity(t, 0.2, 0.85, 10) == pytest.approx(want, abs=1e-15)
    s = [polynomial_sparsity(t, 0.2, 0.85, 10) for t in range(11)]
    assert all(b >= a for a, b in zip(s, s[1:]))


def test_gradual_pruning_reaches_the_target_and_holds_its_zeros(data, base_ck, tmp_path):
    out = tmp_path / "p.pt"
    cfg = TrainConfig(model="ee-baseline", data=data, out=str(out), epochs=3, batch_size=32,
                      seed=1, init=base_ck)
    gp = GradualPruning(0.6, end_step=5, initial=0.2, frequency=2)
    seen = []

    class Watch(GradualPruning):   # records each step's sparsity of conv2
        def after_step(self, model, step):
            super().after_step(model, step)
            seen.append(float((dict(model.named_modules())["conv2"].weight == 0)
                              .double().mean()))

    w = Watch(0.6, end_step=5, initial=0.2, frequency=2)
    ck = train(cfg, log=_quiet, constraints=[w])
    del gp
    assert seen[4] == pytest.approx(round(0.6 * 64 * 64 * 3) / (64 * 64 * 3))
    assert all(b >= a for a, b in zip(seen, seen[1:]))           # masks only grow
    assert seen[-1] == seen[4]                                   # held during retraining
    model, _ = model_from_checkpoint(out)
    for name, m in prunable(model).items():
        n = m.weight.numel()
        assert int((m.weight == 0).sum()) >= round(0.6 * n), name
    assert ck["best_epoch"] >= 0 and ck["method"]["constraints"][0]["final"] == 0.6
    assert ck["init"]["path"] == base_ck


def test_imp_schedule_stages_chain_and_report_the_footprint(data, base_ck, tmp_path):
    base = TrainConfig(model="ee-baseline", data=data, out="unused", epochs=2, batch_size=32,
                       seed=1)
    res = imp_schedule(base, base_ck, [0.5, 0.8], str(tmp_path / "imp"), prune_epochs=1,
                       frequency=3, log=_quiet)
    assert [r.target for r in res] == [0.5, 0.8]
    prev_zero = None
    for r in res:
        model, ck = model_from_checkpoint(r.checkpoint)
        layers = prunable(model)
        zeros = {n: (m.weight == 0) for n, m in layers.items()}
        assert all(int(z.sum()) >= round(r.target * z.numel()) for z in zeros.values())
        if prev_zero is not None:   # the previous stage's zeros stayed zero
            assert all(bool(zeros[n][prev_zero[n]].all()) for n in zeros)
        prev_zero = zeros
        # the footprint counted independently: every weight and bias tensor's non-zeros
        nz = sum(int((p != 0).sum()) for n, p in model.named_parameters()
                 if n.split(".")[-1] in ("weight", "bias"))
        assert r.parameters == nz and r.footprint_bytes == nz    # 8-bit: one byte each
        assert r.sparsity == pytest.approx(
            sum(int(z.sum()) for z in zeros.values()) / sum(z.numel() for z in zeros.values()))
    assert res[1].parameters < res[0].parameters < res[0].total_parameters
    _verify(res[-1].checkpoint)
    with pytest.raises(PruneError, match="must increase"):
        imp_schedule(base, base_ck, [0.8, 0.5], str(tmp_path / "x"), log=_quiet)


def test_pq_retraining_keeps_the_codebook_and_trains_the_rest(data, base_ck, tmp_path):
    out = tmp_path / "pq.pt"
    info = product_quantization(base_ck, str(out), "fc1", 4, 16, retrain_epochs=2,
                                train_fraction=0.5, log=_quiet, batch_size=32)
    assert info["subspaces"] == 4 and info["retrain_epochs"] == 2
    one, _ = model_from_checkpoint(info["no_retrain"])
    two, ck = model_from_checkpoint(out)
    w1 = dict(one.named_modules())["fc1"].quant_weight().int()
    w2 = dict(two.named_modules())["fc1"].quant_weight().int()
    assert torch.equal(w1, w2)
    # every row's sub-vectors are among K=16 distinct centroids per subspace
    w = w2.numpy().T   # (inputs, outputs)
    for p in range(4):
        assert len({tuple(r) for r in w[:, p * 64:(p + 1) * 64]}) <= 16
    assert not torch.equal(dict(one.named_modules())["fc2"].weight,
                           dict(two.named_modules())["fc2"].weight)
    assert ck["train_config"]["train_fraction"] == 0.5 and ck["pq"]["C_Q_8bit"] > 1
    _verify(str(out))


def test_frozen_layers_get_no_gradient(data, base_ck, tmp_path):
    model, _ = model_from_checkpoint(base_ck)
    Frozen(["fc1"]).prepare(model)
    assert not any(p.requires_grad for p in model.fc1.parameters())
    assert all(p.requires_grad for p in model.fc2.parameters())
    with pytest.raises(ValueError, match="no layer 'nope'"):
        Frozen(["nope"]).prepare(model)


def test_distillation_gradients_are_the_formula(base_ck):
    teacher, _ = model_from_checkpoint(base_ck)
    student = build("ee-baseline", QuantConfig(), seed=5).train()
    twin = copy.deepcopy(student)
    x = torch.randn(16, 2, 128)
    y = torch.randint(0, 10, (16,))
    obj = Distillation(teacher, temperature=4.0, alpha=0.3, convention="hinton")
    torch.manual_seed(7)     # the same dropout masks in both students
    loss, _ = obj.step(student, x, y)
    with torch.no_grad():
        t = teacher(x)
    torch.manual_seed(7)
    ref = kd_loss(twin(x), t, y, 4.0, 0.3, "hinton")
    ref.backward()
    assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-6)
    for (n, p), q in zip(student.named_parameters(), twin.parameters()):
        if q.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7, msg=n)
    assert all(p.grad is None for p in teacher.parameters())
    assert obj.describe()["convention"] == "hinton"


def test_distill_run_writes_a_student_that_verifies(data, base_ck, tmp_path):
    """A distillation with a float warm-up epoch (as a benchmark student trained with
    --float-epochs) then QAT writes a student that verifies."""
    out = tmp_path / "kd.pt"
    info = distill(base_ck, "ee-baseline", str(out), temperature=10, alpha=0.5, epochs=2,
                   float_epochs=1, batch_size=32, max_train=256, log=_quiet)
    _, ck = model_from_checkpoint(out)
    assert info["teacher_model"] == "ee-baseline" and ck["method"]["objective"]["alpha"] == 0.5
    assert [h["phase"] for h in ck["history"]] == ["float", "qat"]
    _verify(str(out))
    with pytest.raises(PruneError, match="differ in input shape"):
        distill(base_ck, "vtcnn2", str(tmp_path / "x.pt"), epochs=1, log=_quiet)


def test_multi_branch_sends_each_loss_where_the_seed_says():
    torch.manual_seed(0)
    model = build("ee-v1", QuantConfig(), seed=3).train()
    x = torch.randn(8, 2, 128)
    y = torch.randint(0, 10, (8,))
    twins = [copy.deepcopy(model), copy.deepcopy(model)]
    torch.manual_seed(11)   # the same dropout masks in every run
    MultiBranch().step(model, x, y)
    got = {n: (p.grad.clone() if p.grad is not None else None)
           for n, p in model.named_parameters()}
    # independently: the exit loss alone, and the final loss alone, through every parameter
    ref = {}
    for which, m in enumerate(twins):
        torch.manual_seed(11)
        out = m(x)
        nn.functional.cross_entropy(out[which].value if hasattr(out[which], "value")
                                    else out[which], y).backward()
        ref[which] = {n: p.grad for n, p in m.named_parameters()}
    short, long_ = branch_parameters(model)
    assert {id(p) for p in short}.isdisjoint({id(p) for p in long_})
    for n, _ in model.named_parameters():
        want = ref[1][n] if n.startswith("rest.") else ref[0][n]
        if want is None:
            assert got[n] is None or not got[n].any(), n
        else:
            torch.testing.assert_close(got[n], want, rtol=1e-5, atol=1e-8, msg=n)
    # the final loss does reach the trunk in joint training, but not here
    trunk = [n for n in got if n.startswith("trunk.") and ref[1][n] is not None]
    assert trunk and any(ref[1][n].abs().sum() > 0 for n in trunk)
    with pytest.raises(ValueError, match="early-exit network"):
        MultiBranch().step(build("ee-baseline", QuantConfig()), x, y)


def test_footprint_counts_bits():
    model = build("ee-baseline", QuantConfig(), seed=0)
    a = footprint(model, 8)
    b = footprint(model, 4)
    assert b["footprint_bytes"] == -(-a["parameters"] * 4 // 8)
    assert a["total_parameters"] == 119_418          # the early-exit seed's baseline
    assert footprint(build("gru-cnn", QuantConfig()), 8)["total_parameters"] == 25_480


@pytest.mark.parametrize("sparsity,params,kb", [(0.5, 13_144, 13.1), (0.7, 8_210, 8.2),
                                                (0.8, 5_742, 5.7), (0.85, 4_509, 4.5)])
def test_gru_cnn_pruned_counts_are_the_seeds_table_three(sparsity, params, kb):
    """Magnitude pruning of every GRU and conv kernel (24,672 weights) of the 80-cell GRU-CNN
    to the seed's sparsities leaves exactly Table 3's parameter counts and footprints: the seed
    counts all trainable parameters less the pruned weights (BatchNorm shifts included, zero or
    not)."""
    from amchw.compress.prune import magnitude_prune, prunable

    m = build("gru-cnn", QuantConfig(), seed=0)
    assert sum(layer.weight.numel() for layer in prunable(m).values()) == 24_672
    magnitude_prune(m, sparsity)
    fp = footprint(m, 8)
    assert fp["parameters"] == params and round(fp["footprint_bytes"] / 1000, 1) == kb
    assert abs(fp["sparsity"] - sparsity) < 1e-4


def test_pq_codes_rebuild_the_stated_codebook_on_a_trained_layer(base_ck):
    """The trained layer's range shrinks under PQ, so its statistics scale moves: the codebook
    returned must be the one the layer stores."""
    from amchw.compress.pq import product_quantize
    from amchw.kernels.pq import pq_reconstruct

    model, _ = model_from_checkpoint(base_ck)
    info = product_quantize(model.fc1, "fc1", 4, 16, seed=0)
    stored = model.fc1.quant_weight().int().numpy().T
    assert np.array_equal(pq_reconstruct(info["codes"], info["codebooks"]), stored)
    assert info["codebooks"].shape == (4, 16, 64) and info["codes"].shape == (256, 4)


def test_imp_reaches_its_exact_sparsities_on_the_gru_while_training():
    """The GRU-CNN seed's IMP chain 0.5 -> 0.7 -> 0.8 -> 0.85 (initial 0.2, polynomial
    schedule) on the GRU-CNN itself, trained by Adam through the fused GRU between pruning
    steps: at each stage's end every pruned tensor (the GRU's input and recurrent kernels,
    both convolutions) holds exactly round(s x size) zeros, earlier zeros stay zero, and the
    trained, pruned model still lowers with its sparsity intact."""
    import numpy as np

    from amchw.compress.imp import GradualPruning
    from amchw.compress.prune import prunable
    from amchw.data.synthetic import synthesize
    from amchw.lower.brevitas import lower
    from amchw.models.gru import _statistics_done

    X, y, _ = synthesize("rml2018", 1, [20], seed=3)
    X, y = torch.as_tensor(np.ascontiguousarray(X[::3, :, :64])), torch.as_tensor(y[::3])
    torch.manual_seed(0)
    m = build("gru-cnn-50", QuantConfig(), seed=0).train()
    for _ in range(5):                       # 5 x 64 steps: the cell's scales are learned
        m(X)
    assert _statistics_done(m.gru)
    layers = prunable(m)
    assert {"gru.w_ir", "gru.w_hr", "gru.w_hn", "conv1", "conv2"} <= set(layers)
    held = {n: torch.zeros_like(layer.weight, dtype=torch.bool) for n, layer in layers.items()}
    step = 0
    for target in (0.5, 0.7, 0.8, 0.85):
        c = GradualPruning(target, end_step=4, initial=0.2, frequency=1)
        c.prepare(m)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        for k in range(1, 5):
            out = m(X)
            loss = torch.nn.functional.cross_entropy(out.value if hasattr(out, "value") else out,
                                                     y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            c.after_step(m, k)
            step += 1
        assert c.ready(4)
        for n, layer in layers.items():
            zero = layer.weight == 0
            assert int(zero.sum()) == round(target * layer.weight.numel()), (n, target)
            assert bool(zero[held[n]].all()), (n, target)    # once pruned, pruned for good
            held[n] = zero
    m.eval()
    g = lower(m, X[:2])
    gru = next(node for node in g.nodes if node.op.kind == "GRU")
    dense = [node for node in gru.op.cell.nodes if node.op.kind == "Dense"]
    zeros = sum(int((node.op.weight == 0).sum()) for node in dense)
    assert zeros == sum(round(0.85 * layers[f"gru.w_h{k}"].weight.numel()) for k in "rzn")


def test_a_continued_training_does_not_inherit_the_starts_warm_up(tmp_path):
    """A method that trains on from a checkpoint (IMP, PQ retraining, ...) takes the start's
    training settings, but not its float warm-up or float-only mode: those were the start's
    way to its weights (an IMP stage of 2 epochs after a 6-epoch warm-up was refused)."""
    from amchw.compress.pipeline import _config

    start = {"train_config": {"model": "vtcnn2", "data": "d.h5", "out": "a.pt", "epochs": 7,
                              "float_epochs": 6, "float_only": False, "batch_size": 32,
                              "device": "cuda", "init": "x.pt"}}
    cfg = _config(start, "d.h5", tmp_path / "b.pt", epochs=2)
    assert (cfg.epochs, cfg.float_epochs, cfg.float_only, cfg.batch_size) == (2, 0, False, 32)
    assert cfg.device is None and cfg.init is None
