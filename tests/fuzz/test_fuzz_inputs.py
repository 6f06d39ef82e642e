"""Fuzzing of every reader of user files: RadioML HDF5 files, RadioML 2016 / RML22 pickles and
amchw checkpoints, damaged by truncation, byte flips, wrong keys, wrong shapes and wrong types.
Each case must end in a success or in the reader's typed error (DatasetError, CheckpointError
or RequestError) whose message names the file; any other exception is an untyped failure and
fails the test.

The default suite runs a bounded number of examples per reader (AMCHW_FUZZ_EXAMPLES, default
60). A longer run, with the counts printed at the end:

    AMCHW_FUZZ_EXAMPLES=2000 pytest tests/fuzz -n 0 -s -p no:randomly

(docs/verification.md, "Bad input", gives the counts of the last long run.)
"""

import os
import pickle
from collections import Counter
from functools import lru_cache

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amchw.checkpoint import CheckpointError
from amchw.data.radioml import DatasetError, open_frames, write_h5
from amchw.data.synthetic import CLASSES_2016, synthesize
from amchw.resolve import RequestError, checkpoint_model

EXAMPLES = int(os.environ.get("AMCHW_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if COUNTS:
        rows = sorted({k[0] for k in COUNTS})
        print("\nfuzz counts (reader: cases, typed errors, successes, untyped):")
        for r in rows:
            c = {k[1]: v for k, v in COUNTS.items() if k[0] == r}
            print(f"  {r}: {sum(c.values())} cases, {c.get('typed', 0)} typed errors, "
                  f"{c.get('ok', 0)} successes, {c.get('untyped', 0)} untyped")


def _outcome(reader: str, path, fn):
    """Run fn(); count it; an exception that is not typed or does not name the file fails."""
    try:
        fn()
    except (DatasetError, CheckpointError, RequestError) as e:
        COUNTS[(reader, "typed")] += 1
        assert str(path) in str(e) and "\n" not in str(e).strip(), str(e)
        return "typed"
    except BaseException as e:  # noqa: BLE001 - that is what is being counted
        COUNTS[(reader, "untyped")] += 1
        raise AssertionError(f"{reader}: untyped {type(e).__name__}: {e}") from e
    COUNTS[(reader, "ok")] += 1
    return "ok"


def _damage(data: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data if cut is None else data[:cut])
    for pos, val in flips:
        if b:
            b[pos % len(b)] ^= val or 1
    return bytes(b)


DAMAGE = st.tuples(st.one_of(st.none(), st.integers(0, 1 << 16)),
                   st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)),
                            max_size=8))


# ------------------------------------------------------------------------------ HDF5


@lru_cache(maxsize=None)
def h5_bytes() -> bytes:
    """A valid amchw HDF5 file's bytes (module-level, not a fixture: hypothesis would print a
    fixture's value with every failing case)."""
    import tempfile

    x, y, snr = synthesize("rml2016", 2, [0, 10], seed=1)
    with tempfile.TemporaryDirectory() as d:
        return write_h5(os.path.join(d, "ok.h5"), x, y, snr, CLASSES_2016).read_bytes()


def _read_all(path):
    with open_frames(path) as r:
        r.frames(np.arange(len(r)))
        assert r.labels.shape == r.snrs.shape == (len(r),)


_H5_EDITS = st.sampled_from(["drop X", "drop Y", "drop Z", "X 2-d", "X I/Q first",
                             "Y not one-hot", "Y short", "Z wide", "X strings", "classes short",
                             "classes ints", "no classes", "Y float noise", "empty"])


@FUZZ
@given(edit=_H5_EDITS, n=st.integers(0, 12), length=st.integers(1, 40))
def test_hdf5_wrong_structure(tmp_path, edit, n, length):
    p = tmp_path / "s.h5"
    rng = np.random.default_rng(n)
    k = len(CLASSES_2016)
    X = rng.standard_normal((n, length, 2)).astype(np.float32)
    Y = np.eye(k)[rng.integers(0, k, n)] if n else np.zeros((0, k))
    Z = rng.integers(-20, 20, (n, 1))
    with h5py.File(p, "w") as f:
        data = {"X": X, "Y": Y, "Z": Z}
        if edit.startswith("drop"):
            data.pop(edit[-1])
        if edit == "X 2-d":
            data["X"] = X.reshape(n, 2 * length)
        if edit == "X I/Q first":
            data["X"] = np.transpose(X, (0, 2, 1))
        if edit == "Y not one-hot":
            data["Y"] = Y * 2
        if edit == "Y short":
            data["Y"] = Y[: max(n - 1, 0)]
        if edit == "Z wide":
            data["Z"] = np.repeat(Z, 2, axis=1)
        if edit == "X strings":
            data["X"] = np.array([b"abc"] * max(n, 1))
        if edit == "Y float noise":
            data["Y"] = Y + rng.uniform(0, 1e-3, Y.shape)
        for key, v in data.items():
            f[key] = v
        if edit == "classes short":
            f.attrs["classes"] = list(CLASSES_2016[:3])
        elif edit == "classes ints":
            f.attrs["classes"] = list(range(k))
        elif edit != "no classes":
            f.attrs["classes"] = list(CLASSES_2016)
    _outcome("hdf5 structure", p, lambda: _read_all(p))


# ------------------------------------------------------------------------------ pickles


def _rml_dict(per=2):
    x, y, _ = synthesize("rml2016", per, [0], seed=2)
    return {(m, 0): x[y == c] for c, m in enumerate(CLASSES_2016)}


@lru_cache(maxsize=None)
def pickle_bytes() -> bytes:
    return pickle.dumps(_rml_dict(), protocol=2)


_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(),
                    st.lists(st.integers(), max_size=3),
                    st.builds(lambda s: np.zeros(s, np.float32),
                              st.lists(st.integers(0, 4), max_size=4)))


@FUZZ
@given(drop=st.integers(0, 10), key=st.one_of(_VALUES, st.tuples(_VALUES, _VALUES)),
       value=_VALUES, whole=st.one_of(st.none(), _VALUES), proto=st.integers(0, 5))
def test_pickle_wrong_structure(tmp_path, drop, key, value, whole, proto):
    d = _rml_dict(1)
    del d[sorted(d)[drop]]
    try:
        d[key] = value
    except TypeError:  # an unhashable key: the dict cannot hold it
        pass
    p = tmp_path / "s.pkl"
    p.write_bytes(pickle.dumps(d if whole is None else whole, protocol=proto))
    _outcome("pickle structure", p, lambda: _read_all(p))


def test_a_pickle_that_would_call_a_function_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({("BPSK", 0): Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="refuses to load posix.system|refuses to load os"):
        open_frames(p)


# ------------------------------------------------------------------------------ checkpoints


@lru_cache(maxsize=None)
def checkpoint_bytes() -> bytes:
    """A real amchw checkpoint of VTCNN2 (calibrated, not trained: what matters is the file)."""
    import tempfile
    from dataclasses import asdict

    from amchw.checkpoint import save_checkpoint
    from amchw.data.synthetic import frames_for
    from amchw.models import QuantConfig, build
    from amchw.models.calibrate import calibrate

    cfg = QuantConfig()
    model = calibrate(build("vtcnn2", cfg, seed=0), torch.as_tensor(frames_for("vtcnn2", 16)))
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "ok.pt")
        save_checkpoint(p, {"model": "vtcnn2", "config": asdict(cfg), "best_epoch": 0,
                            "classes": list(CLASSES_2016)}, model)
        with open(p, "rb") as f:
            return f.read()


@FUZZ
@given(edit=st.sampled_from(["drop model", "drop config", "drop state_dict", "model name",
                             "config key", "config value", "tensor shape", "tensor dtype",
                             "drop tensor", "extra tensor", "not a dict", "state not dict",
                             "history garbage"]),
       value=_VALUES)
def test_checkpoint_wrong_structure(tmp_path, edit, value):
    import io

    ck = torch.load(io.BytesIO(checkpoint_bytes()), weights_only=False)
    sd = ck["state_dict"]
    first = next(k for k, v in sd.items() if v.ndim > 1)
    if edit.startswith("drop ") and edit[5:] in ck:
        del ck[edit[5:]]
    elif edit == "model name":
        ck["model"] = value
    elif edit == "config key":
        ck["config"] = {**ck["config"], "nonsense": value}
    elif edit == "config value":
        ck["config"] = {**ck["config"], "weight_bits": value}
    elif edit == "tensor shape":
        sd[first] = sd[first].flatten()[:-1]
    elif edit == "tensor dtype":
        sd[first] = sd[first].to(torch.int8)
    elif edit == "drop tensor":
        del sd[first]
    elif edit == "extra tensor":
        sd["bogus.weight"] = torch.zeros(3)
    elif edit == "not a dict":
        ck = value
    elif edit == "state not dict":
        ck["state_dict"] = value
    elif edit == "history garbage":
        ck["history"] = value
    p = tmp_path / "s.pt"
    torch.save(ck, p)
    _outcome("checkpoint structure", p, lambda: checkpoint_model(str(p)))


# ------------------------------------------------------------------------------ damaged bytes

BYTES = {  # reader: (a valid file's bytes, its name, how it is read in full)
    "hdf5": (h5_bytes, "f.h5", _read_all),
    "pickle": (pickle_bytes, "f.pkl", _read_all),
    "checkpoint": (checkpoint_bytes, "f.pt", lambda p: checkpoint_model(str(p))),
}


@pytest.mark.parametrize("reader", list(BYTES))
@FUZZ
@given(damage=DAMAGE)
def test_damaged_bytes(tmp_path, reader, damage):
    """A valid file truncated at a random length and with up to 8 bytes flipped."""
    valid, name, read = BYTES[reader]
    p = tmp_path / name
    p.write_bytes(_damage(valid(), *damage))
    _outcome(f"{reader} bytes", p, lambda: read(p))


def test_a_damaged_hdf5_signature_is_called_so_not_a_bad_pickle(tmp_path):
    p = tmp_path / "f.h5"
    p.write_bytes(b"\x00" + h5_bytes()[1:])
    with pytest.raises(DatasetError, match="f.h5: not an HDF5 file"):
        open_frames(p)
