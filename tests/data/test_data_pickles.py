"""Real-file shapes in every command: a RadioML 2016-style pickle (frames L1-normalised, as
DeepSig stores them) trains and evaluates directly; each frame is scaled as it is read, the
choice is recorded in the checkpoint and eval applies it."""

import pickle

import numpy as np
import pytest

from amchw.data.radioml import (NORMALIZATIONS, DatasetError, file_kind, normalize_frames,
                                open_frames, resolve_normalize)
from amchw.data.synthetic import CLASSES_2016, synthesize


def _pickle(path, per=6, snrs=(10, 18), seed=0):
    """Generator frames of every RML2016.10A class, stored as DeepSig stores them: a dict
    (modulation, snr) -> (n, 2, 128) float32, each frame L1-normalised (sum |x| = 1)."""
    d = {}
    for s in snrs:
        x, y, _ = synthesize("rml2016", per, [s], seed=seed + s)
        for c, m in enumerate(CLASSES_2016):
            f = x[y == c].astype(np.float64)
            d[(m, s)] = (f / np.abs(f).sum(axis=(1, 2), keepdims=True)).astype(np.float32)
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    return d


def test_normalisations_meet_their_definitions():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((5, 2, 64)) * rng.uniform(0.01, 9, (5, 1, 1))).astype(np.float32)
    x[2] = 0
    u = normalize_frames(x, "unit-power").astype(np.float64)
    power = np.mean(np.sum(u ** 2, axis=1), axis=1)  # mean over time of I^2 + Q^2
    assert np.allclose(power[[0, 1, 3, 4]], 1, rtol=1e-6) and power[2] == 0
    l1 = np.abs(normalize_frames(x, "l1").astype(np.float64)).sum(axis=(1, 2))
    assert np.allclose(l1[[0, 1, 3, 4]], 1, rtol=1e-6) and l1[2] == 0
    pk = np.sqrt(np.max(np.sum(normalize_frames(x, "peak").astype(np.float64) ** 2, axis=1),
                        axis=1))
    assert np.allclose(pk[[0, 1, 3, 4]], 1, rtol=1e-6)
    assert np.array_equal(normalize_frames(x, "none"), x)
    assert resolve_normalize("auto", "pickle") == "unit-power"
    assert resolve_normalize("auto", "hdf5") == "none"
    assert set(NORMALIZATIONS) == {"auto", "unit-power", "l1", "peak", "none"}
    with pytest.raises(DatasetError, match="normalisation must be one of"):
        resolve_normalize("zscore", "hdf5")


def test_a_pickle_reads_like_an_hdf5_file(tmp_path):
    p = tmp_path / "rml.pkl"
    d = _pickle(p)
    assert file_kind(p) == "pickle"
    with open_frames(p, "none") as r:
        assert r.kind == "pickle" and r.classes == tuple(sorted(CLASSES_2016))
        assert r.n == 11 * 2 * 6 and r.group_size() == 6
        # frames by class, then SNR: row 0 is the first frame of (8PSK, 10)
        assert np.array_equal(r.frames([0]), d[("8PSK", 10)][:1])
        assert np.allclose(np.abs(r.frames(np.arange(r.n))).sum(axis=(1, 2)), 1, rtol=1e-5)
    with open_frames(p) as r:   # auto: unit power, the generator's (and the model's) scale
        x = r.frames(np.arange(r.n)).astype(np.float64)
        assert r.normalize == "unit-power"
        assert np.allclose(np.mean(np.sum(x ** 2, axis=1), axis=1), 1, rtol=1e-5)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="junk.pkl: not a readable RadioML 2016 pickle"):
        open_frames(tmp_path / "junk.pkl")


def test_train_and_eval_on_a_pickle_record_and_apply_the_scaling(tmp_path):
    from amchw.evaluate import evaluate_checkpoint
    from amchw.train import TrainConfig, train

    p = tmp_path / "rml.pkl"
    _pickle(p, per=6, snrs=(18,))
    out = tmp_path / "v.pt"
    ck = train(TrainConfig(model="vtcnn2", data=str(p), out=str(out), epochs=1, batch_size=16),
               log=lambda *a: None)
    assert ck["normalize"] == "unit-power" and ck["data_kind"] == "pickle"
    r = evaluate_checkpoint(str(out), str(p), split="all")
    assert r["normalize"] == "unit-power" and r["frames"] == 66
    r_l1 = evaluate_checkpoint(str(out), str(p), split="all", normalize="l1")
    assert r_l1["normalize"] == "l1"
    # L1 frames (sum |x| = 1) sit far below half an input LSB: the model sees almost nothing
    assert r_l1["agreement"] <= 1.0 and r_l1["float_acc"] <= r["float_acc"] + 0.2


def _rml22(path, per=4, snrs=(-20, 0, 20), seed=0):
    """An RML22-style pickle: RadioML 2016.10B's ten classes, SNRs up to +20 dB, frames NOT
    L1-normalised (per-rail RMS ~2.9, as the early-exit seed's statistics give), numpy scalars
    as keys (the file is read by np.load(allow_pickle=True) in the seed's code)."""
    from amchw.data.synthetic import PROFILES

    d = {}
    for s in snrs:
        x, y, _ = synthesize("rml2016b", per, [s], seed=seed + 40 + s)
        for c, m in enumerate(PROFILES["rml2016b"].classes):
            d[(np.str_(m), np.int64(s))] = (x[y == c] * 4.1).astype(np.float32)
    with open(path, "wb") as fh:
        pickle.dump(d, fh)
    return d


def test_rml22_reads_as_a_pickle_of_its_own(tmp_path):
    p = tmp_path / "RML22.01A"   # (no suffix: the file kind is read from its bytes)
    d = _rml22(p)
    with open_frames(p) as r:
        assert r.kind == "pickle" and r.dataset == "RML22" and len(r.classes) == 10
        assert "AM-SSB" not in r.classes and set(r.snrs) == {-20, 0, 20}
        assert r.normalize == "unit-power"   # the generator's scale, as for 2016.10A
        x = r.frames(np.arange(r.n)).astype(np.float64)
        assert np.allclose(np.mean(np.sum(x ** 2, axis=1), axis=1), 1, rtol=1e-5)
    with open_frames(p, "none") as r:
        assert np.array_equal(r.frames([0]), d[("8PSK", -20)][:1])
    q = tmp_path / "rml10b.pkl"
    _pickle(q)
    with open_frames(q) as r:
        assert r.dataset == "RadioML 2016.10A"


def test_convert_writes_what_the_readers_read(tmp_path):
    """amchw data convert: a pickle (2016.10A, RML22) or an HDF5 file -> amchw's HDF5, frames
    normalised as asked and recorded, SNR subsets; the result reads back with the same frames,
    labels and SNRs (bit for bit) and is what training reads by default (auto on HDF5: none)."""
    from click.testing import CliRunner

    from amchw.cli import main

    for src, make in (("a.pkl", _pickle), ("RML22.01A", _rml22)):
        p = tmp_path / src
        make(p)
        out = tmp_path / "conv" / (src + ".h5")
        res = CliRunner().invoke(main, ["data", "convert", str(p), "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert "scaled unit-power" in res.output
        with open_frames(p) as a, open_frames(out) as b:
            assert b.kind == "hdf5" and b.normalize == "none"
            assert b.dataset.startswith("converted ") and b.classes == a.classes
            assert np.array_equal(a.frames(np.arange(a.n)), b.frames(np.arange(b.n)))
            assert np.array_equal(a.labels, b.labels) and np.array_equal(a.snrs, b.snrs)
    out = tmp_path / "sub.h5"
    res = CliRunner().invoke(main, ["data", "convert", str(tmp_path / "RML22.01A"), "-o",
                                    str(out), "--snr-range", "0:", "--normalize", "none"])
    assert res.exit_code == 0, res.output
    with open_frames(out) as b:
        assert set(b.snrs) == {0, 20} and b.n == 10 * 2 * 4
    info = CliRunner().invoke(main, ["data", "info", str(tmp_path / "RML22.01A")])
    assert info.exit_code == 0 and "RML22, 120 frames of 2 x 128, 10 classes" in info.output
    bad = CliRunner().invoke(main, ["data", "convert", str(tmp_path / "nope.pkl"), "-o",
                                    str(tmp_path / "x.h5")])
    assert bad.exit_code == 2 and "nope.pkl: no such file" in bad.output   # a usage error
    assert not (tmp_path / "x.h5").exists()
    bad = CliRunner().invoke(main, ["data", "convert", str(tmp_path / "a.pkl"), "-o",
                                    str(tmp_path / "x.h5"), "--snr-range", "5"])
    assert bad.exit_code == 2 and "--snr-range" in bad.output
