"""RadioML readers on small files written here in both real formats, the challenge split
against the published procedure, malformed files, and amchw's own synthetic files."""

import pickle

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from amchw.data.radioml import (CLASSES_2016B, DatasetError, H5Frames, challenge_split,
                                read_rml2016, write_h5)
from amchw.data.synthetic import CLASSES_2016, CLASSES_2018


def _rml2018_file(path, per=8, snrs=(-20, 30), L=32, onehot=True):
    """A miniature GOLD_XYZ_OSC file: by modulation, then SNR ascending, I/Q last, no class
    names (the real file has none we can trust)."""
    rng = np.random.default_rng(0)
    n = 24 * len(snrs) * per
    X = rng.standard_normal((n, L, 2)).astype(np.float32)
    y = np.repeat(np.arange(24), len(snrs) * per)
    Y = np.zeros((n, 24), np.int64)
    Y[np.arange(n), y] = 1
    if not onehot:
        Y[5, 3] = 1
    Z = np.tile(np.repeat(snrs, per), 24).reshape(-1, 1)
    with h5py.File(path, "w") as f:
        f["X"], f["Y"], f["Z"] = X, Y, Z
    return X, y, Z.ravel()


def test_rml2018_reader_is_lazy_and_in_argmax_order(tmp_path):
    p = tmp_path / "gold.hdf5"
    X, y, z = _rml2018_file(p)
    with H5Frames(p) as r:
        assert r.classes == CLASSES_2018 and r.n == X.shape[0] and r.length == 32
        assert np.array_equal(r.labels, y) and np.array_equal(r.snrs, z)
        idx = np.array([17, 3, 17, 200])             # any order, repeats
        got = r.frames(idx)
        assert got.shape == (4, 2, 32)
        assert np.array_equal(got, np.transpose(X[idx], (0, 2, 1)))  # I/Q to rows
        assert r.group_size() == 8
        with pytest.raises(DatasetError, match="out of range"):
            r.frames([X.shape[0]])


def test_challenge_split_follows_the_published_procedure(tmp_path):
    p = tmp_path / "gold.hdf5"
    _rml2018_file(p, per=20)
    with H5Frames(p) as r:
        train, test = challenge_split(r)
    # the challenge's loop, written out: one RandomState(2018), groups in file order
    rs = np.random.RandomState(2018)
    want_tr, want_te = [], []
    for mod in range(24):
        for s in range(2):
            ids = list(range((mod * 2 + s) * 20, (mod * 2 + s + 1) * 20))
            rs.shuffle(ids)
            want_te += ids[:2]       # ceil(0.1 * 20)
            want_tr += ids[2:]
    assert list(test) == want_te and list(train) == want_tr
    assert len(set(train) | set(test)) == 24 * 2 * 20


@pytest.mark.parametrize("break_it, match", [
    (lambda f: f.__delitem__("Z"), "missing dataset"),
    (lambda f: (f.__delitem__("X"), f.create_dataset("X", data=np.zeros((48 * 8, 2, 32)))),
     "I/Q last"),
    (lambda f: (f.__delitem__("Y"), f.create_dataset("Y", data=np.zeros((48 * 8, 7)))),
     "names none"),
])
def test_malformed_rml2018_files_are_named(tmp_path, break_it, match):
    p = tmp_path / "bad.hdf5"
    _rml2018_file(p)
    with h5py.File(p, "a") as f:
        break_it(f)
    with pytest.raises(DatasetError, match=match) as e:
        H5Frames(p)
    assert "bad.hdf5" in str(e.value)


def test_labels_must_be_one_hot_and_files_must_be_hdf5(tmp_path):
    p = tmp_path / "nothot.hdf5"
    _rml2018_file(p, onehot=False)
    with pytest.raises(DatasetError, match="not one-hot"):
        H5Frames(p)
    q = tmp_path / "junk.hdf5"
    q.write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="junk.hdf5: not a readable HDF5"):
        H5Frames(q)
    with pytest.raises(DatasetError, match="no such file"):
        H5Frames(tmp_path / "none.hdf5")


def test_a_file_that_fails_to_open_is_closed(tmp_path, monkeypatch):
    """Every error while checking the layout closes the HDF5 file: a DatasetError, and an
    error the checks do not anticipate (SNRs stored as text); a good file stays open until
    the with-block ends."""
    bad, text, good = tmp_path / "bad.hdf5", tmp_path / "text.hdf5", tmp_path / "good.hdf5"
    for p in (bad, text, good):
        _rml2018_file(p)
    with h5py.File(bad, "a") as f:
        del f["Z"]
    with h5py.File(text, "a") as f:
        n = f["Z"].shape[0]
        del f["Z"]
        f["Z"] = np.array([[b"high"]] * n)
    opened = []
    real = h5py.File

    def recording(*a, **k):
        opened.append(real(*a, **k))
        return opened[-1]

    monkeypatch.setattr(h5py, "File", recording)
    with pytest.raises(DatasetError, match="missing dataset"):
        H5Frames(bad)
    with pytest.raises(ValueError):
        H5Frames(text)
    assert len(opened) == 2 and not any(opened)   # an h5py File is false once closed
    with H5Frames(good):
        assert opened[-1]
    assert not opened[-1]


def _rml2016_dict(mods, per=5, keys="str"):
    rng = np.random.default_rng(1)
    d = {}
    for m in mods:
        for s in range(-20, 20, 2):
            k = m.encode() if keys == "bytes" else m
            d[(k, s)] = rng.standard_normal((per, 2, 128)).astype(np.float32)
    return d


@pytest.mark.parametrize("mods, keys", [(CLASSES_2016, "str"), (CLASSES_2016, "bytes"),
                                        (CLASSES_2016B, "str")])
def test_rml2016_pickles(tmp_path, mods, keys):
    p = tmp_path / "RML2016.pkl"
    d = _rml2016_dict(mods, keys=keys)
    with open(p, "wb") as f:
        pickle.dump(d, f, protocol=2)   # what Python 2 wrote
    X, y, snr, classes = read_rml2016(p)
    assert classes == tuple(sorted(mods)) and X.shape == (len(mods) * 20 * 5, 2, 128)
    k = mods[0].encode() if keys == "bytes" else mods[0]
    c = classes.index(mods[0])
    assert np.array_equal(X[(y == c) & (snr == -20)], d[(k, -20)])


@pytest.mark.parametrize("content, match", [
    ({("BPSK", 0): np.zeros((3, 128, 2))}, "shape"),
    ({("FOO", 0): np.zeros((3, 2, 128))}, "neither RadioML 2016.10A"),
    ([1, 2, 3], "expected a dict"),
    ({"BPSK": np.zeros((3, 2, 128))}, "not a \\(modulation, snr\\) pair"),
])
def test_malformed_rml2016_pickles(tmp_path, content, match):
    p = tmp_path / "bad.pkl"
    with open(p, "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(DatasetError, match=match):
        read_rml2016(p)
    p.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match="bad.pkl: not a readable"):
        read_rml2016(p)


def test_synth_command_writes_the_2018_layout(tmp_path):
    from amchw.cli import main

    p = tmp_path / "s.h5"
    r = CliRunner().invoke(main, ["data", "synth", "--profile", "rml2016", "--per-class-snr",
                                  "3", "--snrs", "0,10", "-o", str(p), "--seed", "5"])
    assert r.exit_code == 0, r.output
    with h5py.File(p) as f:
        assert f["X"].shape == (11 * 2 * 3, 128, 2) and f["Y"].shape == (66, 11)
        assert f.attrs["profile"] == "rml2016" and f.attrs["channel"] == "radioml"
    with H5Frames(p) as rd:
        assert rd.classes == CLASSES_2016
        assert np.array_equal(rd.labels, np.repeat(np.arange(11), 6))
        assert np.array_equal(rd.snrs[:6], [0, 0, 0, 10, 10, 10])
        x1 = rd.frames(np.arange(66))
    q = tmp_path / "t.h5"
    CliRunner().invoke(main, ["data", "synth", "--per-class-snr", "3", "--snrs", "0,10", "-o",
                              str(q), "--seed", "5"])
    with H5Frames(q) as rd:
        assert np.array_equal(rd.frames(np.arange(66)), x1)      # same seed, same frames
    r = CliRunner().invoke(main, ["data", "synth", "--per-class-snr", "3", "--snrs", "a,b",
                                  "-o", str(q)])
    assert r.exit_code == 2 and "--snrs" in r.output
    r = CliRunner().invoke(main, ["data", "synth", "--per-class-snr", "3", "--snrs",
                                  "1000,-1000", "-o", str(tmp_path / "n.h5")])
    assert r.exit_code == 2 and "SNR 1000 dB is outside +-100 dB" in r.output
    assert not (tmp_path / "n.h5").exists()
    from amchw.data.radioml import synth_to_h5

    with pytest.raises(ValueError, match="within"):
        synth_to_h5(tmp_path / "n.h5", "rml2016", 1, (0, -200))
    r = CliRunner().invoke(main, ["data", "info", str(p)])
    assert r.exit_code == 0 and "66 frames" in r.output


def test_write_h5_and_torch_dataset(tmp_path):
    from amchw.data.torch_dataset import FrameDataset

    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 2, 16)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    p = write_h5(tmp_path / "w.h5", X, y, np.zeros(10), ("a", "b", "c"))
    with H5Frames(p) as r:
        ds = FrameDataset(r, indices=[4, 1, 7], input_shape=(1, 2, 16))
        x0, y0 = ds[0]
        assert x0.shape == (1, 2, 16) and np.array_equal(x0.numpy()[0], X[4]) and y0 == y[4]
        xb, yb = ds.batch([0, 1, 2])
        assert np.array_equal(xb.numpy()[:, 0], X[[4, 1, 7]])
        assert np.array_equal(yb.numpy(), y[[4, 1, 7]])
    mem = FrameDataset((X, y))
    assert len(mem) == 10 and np.array_equal(mem[3][0].numpy(), X[3])


def test_a_directory_as_data_is_called_a_directory(tmp_path):
    from click.testing import CliRunner

    from amchw.cli import main

    r = CliRunner().invoke(main, ["data", "info", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory, not a data file" in r.output
    with pytest.raises(DatasetError, match="is a directory"):
        H5Frames(tmp_path)
