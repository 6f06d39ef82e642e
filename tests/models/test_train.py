"""QAT training on tiny synthetic files: checkpoints, resume after an interruption, determinism,
early stopping, evaluation float vs integer, and the errors for mismatched data."""

import numpy as np
import pytest
import torch

from amchw.data.radioml import DatasetError, synth_to_h5
from amchw.evaluate import evaluate_checkpoint
from amchw.train import TrainConfig, batches_per_epoch, train


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    p = tmp_path_factory.mktemp("d") / "d16.h5"
    synth_to_h5(p, "rml2016", 4, (0, 10, 18), seed=1)   # 11 x 3 x 4 = 132 frames
    return str(p)


def _cfg(data, out, **kw):
    base = dict(model="vtcnn2", data=data, out=str(out), epochs=2, batch_size=16, lr=1e-3,
                patience=5, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _quiet(*a):
    pass


def test_checkpoint_contents_and_determinism(data16, tmp_path):
    a = train(_cfg(data16, tmp_path / "a.pt"), log=_quiet)
    b = train(_cfg(data16, tmp_path / "b.pt"), log=_quiet)
    assert a["model"] == "vtcnn2" and a["classes"][0] == "8PSK" and len(a["history"]) == 2
    assert a["config"]["weight_bits"] == 8
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert a["history"] == [dict(h, seconds=x["seconds"]) for h, x in
                            zip(b["history"], a["history"])]


def test_resume_after_an_interruption_loses_nothing_done(data16, tmp_path):
    straight = train(_cfg(data16, tmp_path / "s.pt", epochs=3), log=_quiet)
    seen = {"n": 0}

    def interrupt(kind, n):
        seen["n"] += 1
        if seen["n"] == 12:          # in the second epoch (132 * 0.81 / 16 -> 7 batches each)
            raise KeyboardInterrupt

    out = tmp_path / "r.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(data16, out, epochs=3), progress=interrupt, log=_quiet)
    assert len(torch.load(out, weights_only=False)["history"]) == 1   # epoch 1 survived
    logs = []
    resumed = train(_cfg(data16, out, epochs=3), log=logs.append)
    assert logs[0].startswith("resuming") and len(resumed["history"]) == 3
    for k, v in straight["last_state_dict"].items():
        assert torch.equal(v, resumed["last_state_dict"][k]), k


def test_the_kept_epoch_follows_best_by(data16, tmp_path):
    """best_by "loss" keeps the epoch of lowest validation loss, "accuracy" the first epoch of
    highest validation accuracy (the distillation slides' rule), read back from the history."""
    for rule in ("loss", "accuracy"):
        ck = train(_cfg(data16, tmp_path / f"{rule}.pt", epochs=4, lr=3e-3, best_by=rule),
                   log=_quiet)
        h = ck["history"]
        want = (min(range(len(h)), key=lambda i: h[i]["val_loss"]) if rule == "loss"
                else max(range(len(h)), key=lambda i: (h[i]["val_acc"], -i)))
        assert ck["best_epoch"] == want, (rule, h)
    with pytest.raises(ValueError, match="best_by must be one of loss, accuracy"):
        train(_cfg(data16, tmp_path / "x.pt", best_by="f1"), log=_quiet)


def test_early_stopping(data16, tmp_path):
    ck = train(_cfg(data16, tmp_path / "e.pt", epochs=6, lr=0.0, patience=2), log=_quiet)
    # lr 0: the validation loss never improves after epoch 1, so two stale epochs end it
    assert len(ck["history"]) == 3 and ck["best_epoch"] == 0


def test_evaluation_float_and_integer(data16, tmp_path):
    out = tmp_path / "v.pt"
    train(_cfg(data16, out, epochs=1), log=_quiet)
    r = evaluate_checkpoint(str(out), data16, split="all")
    assert r["frames"] == 132 and set(r["float_by_snr"]) == {0, 10, 18}
    # the accuracy, recomputed here from the checkpoint and the file directly
    from amchw.data.radioml import H5Frames
    from amchw.models import QuantConfig, build

    ck = torch.load(out, weights_only=False)
    m = build("vtcnn2", QuantConfig(**ck["config"]))
    m.load_state_dict(ck["state_dict"])
    m.eval()
    with H5Frames(data16) as rd, torch.no_grad():
        x = torch.from_numpy(rd.frames(np.arange(rd.n)).reshape(-1, 1, 2, 128))
        pred = m(x).argmax(1).numpy()
        assert r["float_acc"] == np.mean(pred == rd.labels)
        s18 = rd.snrs == 18
        assert r["float_by_snr"][18] == np.mean(pred[s18] == rd.labels[s18])
        # confusion matrix: counted here frame by frame
        k = len(rd.classes)
        want = np.zeros((k, k), np.int64)
        for t, p in zip(rd.labels, pred):
            want[t, p] += 1
        assert np.array_equal(np.array(r["confusion_float"]), want)
        r2 = evaluate_checkpoint(str(out), data16, split="all", confusion_snrs=(18,))
        want18 = np.zeros((k, k), np.int64)
        for t, p in zip(rd.labels[s18], pred[s18]):
            want18[t, p] += 1
        assert np.array_equal(np.array(r2["confusion_by_snr"][18]["float"]), want18)
    assert r["classes"] == list(rd.classes)
    assert np.trace(np.array(r["confusion_int"])) / 132 == r["int_acc"]
    # power-of-two scales and no BatchNorm: the integer model is the float model, exactly
    assert r["agreement"] == 1.0 and r["float_acc"] == r["int_acc"]
    # per-class precision, recall, F1 and support: scikit-learn's on the same predictions
    from sklearn.metrics import precision_recall_fscore_support

    p, rc, f, n = precision_recall_fscore_support(rd.labels, pred, labels=list(range(k)),
                                                  zero_division=0)
    got = r["per_class_int"]["classes"]
    for i, c in enumerate(rd.classes):
        assert got[c]["support"] == n[i]
        assert got[c]["precision"] == pytest.approx(p[i], abs=1e-12)
        assert got[c]["recall"] == pytest.approx(rc[i], abs=1e-12)
        assert got[c]["f1"] == pytest.approx(f[i], abs=1e-12)
    assert r["per_class_int"]["macro"]["f1"] == pytest.approx(f.mean(), abs=1e-12)
    assert r2["confusion_by_snr"][18]["per_class_int"]["accuracy"] == r["int_by_snr"][18]
    with pytest.raises(ValueError, match="no all frames at SNR 4 dB"):
        evaluate_checkpoint(str(out), data16, split="all", confusion_snrs=(4,))
    # a file with the same number of classes in another order is refused, naming both lists
    from amchw.data.radioml import write_h5

    with H5Frames(data16) as rd:
        x, lab, snr, names = rd.frames(np.arange(rd.n)), rd.labels, rd.snrs, list(rd.classes)
    swapped = names[1:] + names[:1]
    other = tmp_path / "other.h5"
    write_h5(other, x, lab, snr, swapped)
    with pytest.raises(DatasetError, match="are not the checkpoint's") as e:
        evaluate_checkpoint(str(out), str(other), split="all")
    assert str(swapped) in str(e.value) and str(names) in str(e.value)


def test_mismatched_data_and_resume_are_refused(data16, tmp_path):
    with pytest.raises(DatasetError, match="do not fit vgg10"):
        train(_cfg(data16, tmp_path / "x.pt", model="vgg10"), log=_quiet)
    out = tmp_path / "c.pt"
    train(_cfg(data16, out, epochs=1), log=_quiet)
    with pytest.raises(ValueError, match="different model or configuration"):
        train(_cfg(data16, out, epochs=2, quant={"weight_bits": 4}), log=_quiet)
    assert np.isfinite(torch.load(out, weights_only=False)["best_val_loss"])


def test_an_early_exit_model_trains_on_both_exits_and_evaluates_the_final(tmp_path):
    """Two outputs: the training loss is the sum of both exits' cross-entropies (checked
    against a recomputation), and evaluation scores the final classifier, float and integer."""
    data = tmp_path / "b.h5"
    synth_to_h5(data, "rml2016b", 3, (10, 18), seed=2)   # 10 classes x 2 SNRs x 3 = 60
    out = tmp_path / "ee.pt"
    ck = train(_cfg(str(data), out, model="ee-v2", epochs=1, batch_size=20), log=_quiet)
    from amchw.checkpoint import split_indices
    from amchw.data.radioml import H5Frames
    from amchw.models import QuantConfig, build

    m = build("ee-v2", QuantConfig(**ck["config"]))
    m.load_state_dict(ck["state_dict"])
    m.eval()
    with H5Frames(str(data)) as rd, torch.no_grad():
        _, val_i, _ = split_indices(rd, 3, 0.1)
        x = torch.from_numpy(rd.frames(val_i))
        y = torch.from_numpy(rd.labels[val_i])
        a, b = m(x)
        ce = torch.nn.functional.cross_entropy
        want = float(ce(a, y, reduction="sum") + ce(b, y, reduction="sum")) / len(val_i)
        assert ck["history"][-1]["val_loss"] == pytest.approx(want, rel=1e-5)
        assert ck["history"][-1]["val_acc"] == float(np.mean(b.argmax(1).numpy()
                                                             == rd.labels[val_i]))
    r = evaluate_checkpoint(str(out), str(data), split="all")
    assert r["frames"] == 60 and 0.0 <= r["int_acc"] <= 1.0 and r["agreement"] > 0.9


def test_device_auto_on_cpu_and_lazy_reads_train_the_same(data16, tmp_path, monkeypatch):
    """--device auto picks the CPU where torch sees no GPU (made so here, whatever the
    machine) and trains exactly as --device cpu; a split read batch by batch from the file
    (preload off) trains exactly as one held in memory; cuda where torch sees none is a clear
    error."""
    from amchw.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    a = train(_cfg(data16, tmp_path / "a.pt", device="auto"), log=_quiet)
    b = train(_cfg(data16, tmp_path / "b.pt", device="cpu", preload_mb=0), log=_quiet)
    for k, v in a["state_dict"].items():
        assert v.device.type == "cpu" and torch.equal(v, b["state_dict"][k]), k
    with pytest.raises(ValueError, match="--device cuda: torch sees no CUDA GPU"):
        train(_cfg(data16, tmp_path / "c.pt", device="cuda"), log=_quiet)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    # amchw compress --device sets the device of every training its method runs
    from amchw.train import DEVICE

    token = DEVICE.set("cuda")
    try:
        with pytest.raises(ValueError, match="--device cuda"):
            resolve_device(None)
        assert resolve_device("cpu") == torch.device("cpu")   # an explicit choice wins
    finally:
        DEVICE.reset(token)
    assert resolve_device(None) == torch.device("cpu")


def test_in_memory_dataset_holds_the_same_frames(data16):
    from amchw.data.radioml import open_frames
    from amchw.data.torch_dataset import FrameDataset

    with open_frames(data16) as r:
        idx = np.random.default_rng(0).permutation(r.n)[:50]
        lazy = FrameDataset(r, idx, (1, 2, 128))
        mem = lazy.in_memory(chunk=7)
        pos = np.arange(50)[::-1]
        for u, v in zip(lazy.batch(pos), mem.batch(pos)):
            assert torch.equal(u, v)


def test_split_and_snr_subset_are_recorded_and_evaluated(data16, tmp_path):
    from amchw.checkpoint import checkpoint_split
    from amchw.data.radioml import open_frames

    ck = train(_cfg(data16, tmp_path / "s.pt", epochs=1, split="80/10/10", snr_range=(10, 18)),
               log=_quiet)
    assert ck["train_config"]["split"] == "80/10/10"
    assert tuple(ck["train_config"]["snr_range"]) == (10, 18)
    with open_frames(data16) as r:
        train_i, val_i, test_i = checkpoint_split(r, ck)
        assert set(r.snrs[np.concatenate([train_i, val_i, test_i])]) == {10, 18}
    res = evaluate_checkpoint(str(tmp_path / "s.pt"), data16)
    assert res["frames"] == test_i.size and set(res["float_by_snr"]) <= {10, 18}
    only = evaluate_checkpoint(str(tmp_path / "s.pt"), data16, split="all", snr_range=(18, 18))
    assert set(only["float_by_snr"]) == {18} and only["frames"] == 11 * 4


def test_float_warmup_then_qat(data16, tmp_path):
    """--float-epochs 1: epoch 1 trains with every quantizer off (no activation statistics
    gathered), the later epochs quantized; only QAT epochs can be the best; an interruption
    in the float epoch resumes to the same weights."""
    from amchw.models import QuantConfig, build
    from amchw.train import set_quantization

    ck = train(_cfg(data16, tmp_path / "w.pt", epochs=3, float_epochs=1), log=_quiet)
    assert [h["phase"] for h in ck["history"]] == ["float", "qat", "qat"]
    assert ck["best_epoch"] >= 1
    res = evaluate_checkpoint(str(tmp_path / "w.pt"), data16)
    assert res["agreement"] == 1.0          # po2 scales, no BatchNorm: float == integer
    per_epoch = batches_per_epoch(_cfg(data16, tmp_path / "w.pt"))
    # interrupted inside the float epoch (nothing saved yet), and inside the first QAT epoch
    # (the file holds the float epoch: its activation scales never set): both resume to the
    # same weights
    for stop, name in ((4, "r.pt"), (per_epoch + 2, "s.pt")):
        seen = {"n": 0}

        def interrupt(kind, n, stop=stop):
            seen["n"] += 1
            if seen["n"] == stop:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(_cfg(data16, tmp_path / name, epochs=3, float_epochs=1),
                  progress=interrupt, log=_quiet)
        if name == "s.pt":
            saved = torch.load(tmp_path / name, weights_only=False)
            assert [h["phase"] for h in saved["history"]] == ["float"]
            with pytest.raises(ValueError, match="float warm-up"):
                evaluate_checkpoint(str(tmp_path / name), data16)
        resumed = train(_cfg(data16, tmp_path / name, epochs=3, float_epochs=1), log=_quiet)
        for k, v in ck["last_state_dict"].items():
            assert torch.equal(v, resumed["last_state_dict"][k]), (name, k)
    # off: plain tensors out, no statistics; on again: QuantTensors as built
    m = build("vtcnn2", QuantConfig(), seed=0).train()
    set_quantization(m, False)
    x = torch.randn(4, 1, 2, 128)
    assert type(m(x)) is torch.Tensor
    assert all(getattr(q, "counter", 0) == 0 for q in m.modules()
               if isinstance(getattr(q, "counter", None), int))
    set_quantization(m, True)
    m(x)
    assert any(q.counter > 0 for q in m.modules() if isinstance(getattr(q, "counter", None), int))
    with pytest.raises(ValueError, match="float epochs \\(3\\) must be fewer"):
        train(_cfg(data16, tmp_path / "x.pt", epochs=3, float_epochs=3), log=_quiet)


def test_streamed_epochs_are_fresh_and_reproducible(data16, tmp_path):
    """--stream: epoch 1 trains on the file's frames, later epochs on fresh frames of the
    file's recipe (profile, SNRs, channel) drawn in a background thread, seeded so that two
    runs (and a resumed run) are identical; a file without a recipe is refused by name."""
    from amchw.data.radioml import open_frames
    from amchw.data.stream import SyntheticStream

    with open_frames(data16) as r:
        st = SyntheticStream(r, 100, seed=3, last=3)
        try:
            (x1, y1), (x2, _) = st.get(1), st.get(2)
        finally:
            st.close()
        assert x1.shape == (11 * 3 * 4, 2, 128) and np.array_equal(np.bincount(y1), [12] * 11)
        assert not np.array_equal(x1, x2)
        assert not np.isin(x1[:, 0, 0], r.frames(np.arange(r.n))[:, 0, 0]).any()
        assert np.array_equal(st.make(1)[0], x1)
    batches, logs = [0], []

    def count(kind, n):
        batches[-1] += n

    def log(msg):
        logs.append(msg)
        batches.append(0)

    ck = train(_cfg(data16, tmp_path / "a.pt", stream=True), progress=count, log=log)
    # epoch 1: the file's training split (3 of 4 frames per (class, SNR) after the test split,
    # less 10% validation: 89 frames, 6 batches of 16); epoch 2: the stream's, at least as many
    # with an equal count per (class, SNR): 3 each, 99 frames, 7 batches
    assert batches[:2] == [6, 7] and len(ck["history"]) == 2
    assert ck["train_config"]["stream"] is True
    from amchw.data.radioml import write_h5

    with open_frames(data16) as r:   # the same frames, without the generator's recipe
        p = write_h5(tmp_path / "plain.h5", r.frames(np.arange(r.n)), r.labels, r.snrs,
                     r.classes)
    with pytest.raises(DatasetError, match="plain.h5: streaming needs an amchw synthetic file"):
        train(_cfg(str(p), tmp_path / "e.pt", stream=True), log=_quiet)


def test_learning_rate_schedules():
    """step:20:0.1 (the GRU-CNN seed's: 1e-3, times 0.1 every 20 epochs), constant, cosine;
    a malformed schedule is refused naming it, on the command line as a usage error."""
    from click.testing import CliRunner

    from amchw.cli import main
    from amchw.train import lr_schedule

    def rates(text, epochs):
        opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
        sched, out = lr_schedule(opt, text, epochs), []
        for _ in range(epochs):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return np.array(out)

    r = rates("step:20:0.1", 60)
    assert np.allclose(r[:20], 1e-3) and np.allclose(r[20:40], 1e-4) and np.allclose(r[40:], 1e-5)
    assert np.allclose(rates("constant", 5), 1e-3)
    c = rates("cosine", 10)
    assert c[0] == 1e-3 and np.all(np.diff(c) < 0)
    for bad in ("step:0:0.1", "step:5", "linear", "step:5:2"):
        with pytest.raises(ValueError, match="learning-rate schedule"):
            lr_schedule(torch.optim.Adam([torch.zeros(1, requires_grad=True)]), bad, 3)
    res = CliRunner().invoke(main, ["train", "--model", "vtcnn2", "-o", "x.pt", "--schedule",
                                    "step:x:1"])
    assert res.exit_code == 2 and "--schedule" in res.output


def test_an_unwritable_output_is_refused_before_training(data16, tmp_path):
    """A directory as -o, or an output under a file, fails at once naming the path (no epoch
    is spent); a missing folder is made."""
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match="adir: is a directory"):
        train(_cfg(data16, tmp_path / "adir", epochs=1), log=_quiet)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="cannot create the folder"):
        train(_cfg(data16, tmp_path / "f" / "t.pt", epochs=1), log=_quiet)
    ck = train(_cfg(data16, tmp_path / "new" / "deep" / "t.pt", epochs=1, max_train=64),
               log=_quiet)
    assert (tmp_path / "new" / "deep" / "t.pt").is_file() and ck["history"]
