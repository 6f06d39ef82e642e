"""Readers for DeepSig RadioML files and for amchw's own synthetic HDF5 files.

- RadioML 2018.01A (GOLD_XYZ_OSC.0001_1024.hdf5, ~20 GiB): datasets X (N, 1024, 2) float32,
  Y (N, 24) one-hot, Z (N, 1) SNR; read lazily by index, never whole. Classes in argmax(Y)
  order (the shipped classes.txt is wrong). amchw's own files use the same layout plus a
  `classes` attribute (and `profile`, `seed`, ...).
- RadioML 2016.10A / 10B pickles: {(mod, snr): (n, 2, 128)}, Python-2 pickles read with
  latin1 (str keys) or bytes keys; small enough to hold in memory. RML22 (RML22.01A, the
  early-exit seed's data) is the same kind of dict with 10B's ten classes, SNRs -20..20 dB
  and frames that are not L1-normalised (per-rail RMS ~2.9); it reads the same way.
Malformed files raise DatasetError naming the file and the problem. open_frames(path) reads
either kind behind one interface (frames(idx), labels, snrs, classes), with a recorded
normalisation of every frame (NORMALIZATIONS).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
import pickle
from pathlib import Path

import numpy as np

from amchw.fileio import MissingFile

from .synthetic import CLASSES_2016, CLASSES_2018

CLASSES_2016B = tuple(c for c in CLASSES_2016 if c != "AM-SSB")


class DatasetError(ValueError):
    """A data file that is missing, malformed or inconsistent; names the file."""


#: how frames are scaled as they are read: "unit-power" mean(I^2 + Q^2) = 1 per frame (what
#: amchw's RML2016-style synthetic frames are); "l1" sum(|I| + |Q|) = 1 per frame (how the
#: RadioML 2016 pickles are stored); "peak" max sqrt(I^2 + Q^2) = 1; "none" as stored; "auto"
#: resolves to unit-power for a pickle (whose L1-normalised frames would fall below half an
#: input LSB) and none for HDF5 (amchw's files and RadioML 2018.01A have the generator's power)
NORMALIZATIONS = ("auto", "unit-power", "l1", "peak", "none")


def resolve_normalize(how: str, kind: str) -> str:
    """The concrete normalisation "auto" means for a file of `kind` ("hdf5" or "pickle")."""
    if how not in NORMALIZATIONS:
        raise DatasetError(f"normalisation must be one of {', '.join(NORMALIZATIONS)}, got "
                           f"{how!r}")
    if how != "auto":
        return how
    return "unit-power" if kind == "pickle" else "none"


def normalize_frames(x: np.ndarray, how: str) -> np.ndarray:
    """Frames x (k, 2, L) scaled one by one per `how` (a concrete normalisation); an all-zero
    frame stays zero. float32 out."""
    x = np.asarray(x, np.float32)
    if how == "none":
        return x
    x64 = x.astype(np.float64)
    if how == "unit-power":
        size = np.sqrt(np.mean(np.sum(x64 ** 2, axis=1), axis=1))
    elif how == "l1":
        size = np.sum(np.abs(x64), axis=(1, 2))
    elif how == "peak":
        size = np.sqrt(np.max(np.sum(x64 ** 2, axis=1), axis=1))
    else:
        raise DatasetError(f"unknown normalisation {how!r}")
    size[size == 0] = 1.0
    return (x64 / size[:, None, None]).astype(np.float32)


class FrameReader:
    """What every reader shares: the (class, SNR) grouping, len, and use as a context."""

    n: int
    labels: np.ndarray
    snrs: np.ndarray
    attrs: dict = {}      # the file's attributes (HDF5), e.g. an amchw synthetic file's recipe

    def __len__(self) -> int:
        return self.n

    def group_size(self) -> int:
        """Frames per (class, SNR) group when the file is stored group by group, else 0."""
        key = self.labels * 1000 + (self.snrs - self.snrs.min())
        change = np.flatnonzero(np.diff(key)) + 1
        sizes = np.diff(np.concatenate([[0], change, [self.n]]))
        return int(sizes[0]) if np.all(sizes == sizes[0]) else 0

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# What h5py raises on a damaged file's structure or data (HDF5 library errors surface as
# OSError, RuntimeError, KeyError or ValueError; unexpected dtypes as TypeError).
_H5_DAMAGE = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


def _damaged(path, e) -> str:
    return f"{path}: damaged or unreadable HDF5 file ({type(e).__name__}: {e})"


class H5Frames(FrameReader):
    """Lazy frames of an HDF5 file in the RadioML 2018.01A layout (real or amchw-written).

    frames(idx) -> float32 (k, 2, L) for any index array (read in sorted order, returned in
    the order asked); labels and SNRs are read once (small: N int64 each). A context manager
    (or call close()); a file that fails to open as a RadioML file is closed before the error.
    """

    kind = "hdf5"

    def __init__(self, path, validate: str = "sample", normalize: str = "none"):
        import h5py

        self.path = str(path)
        self.normalize = resolve_normalize(normalize, self.kind)
        if not os.path.isfile(self.path):
            raise DataFileMissing(_not_a_file(self.path))
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({e})") from None
        try:
            self._open(validate)
        except DatasetError:
            self.close()
            raise
        except _H5_DAMAGE as e:  # h5py/HDF5 on a damaged file (a broken B-tree, a bad header)
            self.close()
            raise DatasetError(_damaged(self.path, e)) from None
        except BaseException:  # anything else: never leave it open
            self.close()
            raise

    def _open(self, validate: str) -> None:
        """Check the layout and read the labels and SNRs (the file is open)."""
        f = self._f
        missing = [k for k in ("X", "Y", "Z") if k not in f]
        if missing:
            raise DatasetError(f"{self.path}: missing dataset(s) {missing}; a RadioML 2018 "
                               "file has X (N, L, 2), Y (N, classes) one-hot and Z (N, 1)")
        X, Y, Z = f["X"], f["Y"], f["Z"]
        n = X.shape[0]
        if X.ndim != 3 or X.shape[2] != 2:
            self._bad(f"X has shape {X.shape}; expected (N, L, 2) with I/Q last")
        if Y.ndim != 2 or Y.shape[0] != n:
            self._bad(f"Y has shape {Y.shape}; expected ({n}, classes)")
        if Z.shape[0] != n or Z.ndim not in (1, 2) or (Z.ndim == 2 and Z.shape[1] != 1):
            self._bad(f"Z has shape {Z.shape}; expected ({n}, 1)")
        names = f.attrs.get("classes")
        if names is not None:
            names = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in names)
        elif Y.shape[1] == len(CLASSES_2018):
            names = CLASSES_2018
        else:
            self._bad(f"Y has {Y.shape[1]} classes and the file names none (attribute "
                      "'classes'); RadioML 2018.01A has 24")
        if len(names) != Y.shape[1]:
            self._bad(f"{len(names)} class names for {Y.shape[1]} label columns")
        self.classes = names
        self.length = X.shape[1]
        self.n = n
        self.labels = self._read_labels(Y, validate)
        self.snrs = np.asarray(Z[...], dtype=np.int64).reshape(-1)
        self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()
                      if k != "classes"}
        gen = f.attrs.get("generator")
        if gen is not None:
            self.dataset = f"amchw synthetic ({f.attrs.get('profile', '?')})"
        elif "converted_from" in f.attrs:
            self.dataset = f"converted {f.attrs['converted_from']}"
        elif names == CLASSES_2018 and self.length == 1024:
            self.dataset = "RadioML 2018.01A"
        else:
            self.dataset = "HDF5 (RadioML 2018 layout)"

    def _bad(self, msg):
        raise DatasetError(f"{self.path}: {msg}")

    def _read_labels(self, Y, validate: str) -> np.ndarray:
        """argmax of Y, checking that rows are one-hot: every row ("full"), the first chunk
        and every 64th row after it ("sample"), or none ("none")."""
        n = Y.shape[0]
        out = np.empty(n, dtype=np.int64)
        step = 1 << 16
        for a in range(0, n, step):
            y = np.asarray(Y[a:a + step])
            out[a:a + step] = np.argmax(y, axis=1)
            if validate == "none":
                continue
            every = 1 if validate == "full" or a == 0 else 64
            rows = y[::every]
            ok = (np.sum(rows == 1, axis=1) == 1) & (np.sum(rows != 0, axis=1) == 1)
            if not ok.all():
                bad = a + int(np.argmin(ok)) * every
                self._bad(f"Y is not one-hot (row {bad}: {np.asarray(Y[bad]).tolist()})")
        return out

    def frames(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise DatasetError(f"{self.path}: index out of range [0, {self.n})")
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        uniq, inv = np.unique(srt, return_inverse=True)
        try:
            x = np.asarray(self._f["X"][uniq], dtype=np.float32)  # h5py wants increasing indices
        except _H5_DAMAGE as e:
            raise DatasetError(_damaged(self.path, e)) from None
        out = np.empty((idx.size, 2, self.length), dtype=np.float32)
        out[order] = np.transpose(x[inv], (0, 2, 1))
        return normalize_frames(out, self.normalize)

    def close(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()
            self._f = None


def pickle_dataset(classes, snrs) -> str:
    """Which published dataset a RadioML-2016-style pickle is, from its classes and SNRs."""
    if tuple(classes) == CLASSES_2016:
        return "RadioML 2016.10A"
    return "RML22" if int(np.max(snrs)) >= 20 else "RadioML 2016.10B"


class ArrayFrames(FrameReader):
    """Frames held in memory (a RadioML 2016 or RML22 pickle), behind H5Frames' interface;
    .dataset names which."""

    kind = "pickle"

    def __init__(self, path, X, y, snr, classes, normalize: str = "auto"):
        self.path = str(path)
        self.normalize = resolve_normalize(normalize, self.kind)
        self._x = np.asarray(X, np.float32)
        self.n, self.length = self._x.shape[0], self._x.shape[2]
        self.labels = np.asarray(y, np.int64)
        self.snrs = np.asarray(snr, np.int64)
        self.classes = tuple(classes)
        self.dataset = pickle_dataset(self.classes, self.snrs) if self.n else "pickle"

    def frames(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise DatasetError(f"{self.path}: index out of range [0, {self.n})")
        return normalize_frames(self._x[idx], self.normalize)


class DataFileMissing(DatasetError, MissingFile):
    """The data file named is not there, or is a directory."""


def _not_a_file(path) -> str:
    """Why `path` cannot be read as a data file: a directory, or nothing there."""
    if os.path.isdir(path):
        return f"{path}: is a directory, not a data file (give the .h5 or .pkl file in it)"
    return f"{path}: no such file"


def file_kind(path) -> str:
    """"hdf5" for an HDF5 file (by its signature), else "pickle"; DatasetError if missing."""
    p = Path(path)
    if not p.is_file():
        raise DataFileMissing(_not_a_file(p))
    with open(p, "rb") as f:
        return "hdf5" if f.read(8) == b"\x89HDF\r\n\x1a\n" else "pickle"


def open_frames(path, normalize: str = "auto"):
    """A reader of any data file amchw takes: HDF5 (amchw's, RadioML 2018.01A) or a RadioML
    2016.10A/10B or RML22 pickle, its frames normalised per `normalize` (NORMALIZATIONS; the
    resolved choice is the reader's .normalize, its file kind .kind, which dataset .dataset)."""
    p = Path(path)
    if file_kind(p) == "hdf5":
        return H5Frames(p, normalize=normalize)
    if p.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        raise DatasetError(f"{path}: not an HDF5 file (it does not start with the HDF5 "
                           "signature: damaged, or another kind of file named .h5)")
    X, y, snr, classes = read_rml2016(p)
    return ArrayFrames(p, X, y, snr, classes, normalize)


def challenge_split(reader: H5Frames, test_fraction: float = 0.1, seed: int = 2018):
    """The hardware-efficient AMC challenge's split of RadioML 2018.01A: for each (class, SNR)
    group of frames, in file order, shuffle its indices with np.random.RandomState(2018) and
    put the first ceil(0.1 * group) in test (410 of 4096), the rest in train."""
    g = reader.group_size()
    if g == 0:
        raise DatasetError(f"{reader.path}: frames are not stored in equal (class, SNR) groups; "
                           "the challenge split needs the RadioML 2018 order")
    rs = np.random.RandomState(seed)
    k = int(math.ceil(test_fraction * g))
    train, test = [], []
    for start in range(0, reader.n, g):
        ids = np.arange(start, start + g)
        rs.shuffle(ids)
        test.append(ids[:k])
        train.append(ids[k:])
    return np.concatenate(train), np.concatenate(test)


# What a RadioML pickle may name: numpy's array and scalar reconstruction (Python 2 and 3
# spellings) and nothing else, so a damaged or hostile file cannot make the reader call
# anything (pickle's usual warning about untrusted data does not apply to these files).
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in a protocol-2 pickle
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refuses to load {module}.{name}: a RadioML pickle "
                                         "holds only numpy arrays")
        return super().find_class(module, name)


def read_rml2016(path):
    """A RadioML 2016.10A/10B or RML22 pickle -> (X float32 (N, 2, 128), y int64, snr int64,
    classes).
    Classes sorted (the order everyone uses); frames by class, then SNR, then file order."""
    path = Path(path)
    if not path.is_file():
        raise DataFileMissing(_not_a_file(path))
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as e:  # unpickling garbage raises many types
        why = " ".join(str(e).split())[:300]
        raise DatasetError(f"{path}: not a readable RadioML 2016 pickle "
                           f"({type(e).__name__}: {why})") from None
    if not isinstance(d, dict) or not d:
        raise DatasetError(f"{path}: expected a dict {{(modulation, snr): frames}}")
    items = {}
    for k, v in d.items():
        if not (isinstance(k, tuple) and len(k) == 2):
            raise DatasetError(f"{path}: key {k!r} is not a (modulation, snr) pair")
        mod, snr = k
        mod = mod.decode("latin1") if isinstance(mod, bytes) else str(mod)
        a = np.asarray(v)
        if a.ndim != 3 or a.shape[1:] != (2, 128):
            raise DatasetError(f"{path}: frames of ({mod}, {snr}) have shape {a.shape}; "
                               "expected (n, 2, 128)")
        items[(mod, int(snr))] = a.astype(np.float32, copy=False)
    mods = sorted({m for m, _ in items})
    for ref in (CLASSES_2016, CLASSES_2016B):
        if tuple(mods) == ref:
            break
    else:
        raise DatasetError(f"{path}: modulations {mods} are neither RadioML 2016.10A's "
                           f"{list(CLASSES_2016)} nor 10B's (and RML22's)")
    X, y, s = [], [], []
    for c, m in enumerate(mods):
        for snr in sorted(sn for mm, sn in items if mm == m):
            a = items[(m, snr)]
            X.append(a)
            y.append(np.full(a.shape[0], c, np.int64))
            s.append(np.full(a.shape[0], snr, np.int64))
    return np.concatenate(X), np.concatenate(y), np.concatenate(s), tuple(mods)


@contextmanager
def h5_writer(path, n: int, length: int, classes, attrs: dict | None = None):
    """amchw's HDF5 layout (RadioML 2018.01A's: X (N, L, 2) float32 with I/Q last, Y one-hot
    (N, classes) int64, Z (N, 1) int64 SNR; the class names and `attrs` as attributes),
    written atomically. Yields put(start, X (k, 2, L), labels (k,), snrs (k,)), which fills
    rows start..start+k; the file appears at `path` only when the block ends without error."""
    import h5py

    from amchw.fileio import atomic_path

    k = len(classes)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            X = f.create_dataset("X", (n, length, 2), np.float32,
                                 chunks=(max(1, min(n, 1024)), length, 2))
            Y = f.create_dataset("Y", (n, k), np.int64)
            Z = f.create_dataset("Z", (n, 1), np.int64)

            def put(start: int, x, labels, snrs) -> None:
                m = len(labels)
                X[start:start + m] = np.transpose(np.asarray(x, np.float32), (0, 2, 1))
                onehot = np.zeros((m, k), np.int64)
                onehot[np.arange(m), np.asarray(labels)] = 1
                Y[start:start + m] = onehot
                Z[start:start + m] = np.asarray(snrs, np.int64).reshape(-1, 1)

            yield put
            f.attrs["classes"] = np.array([c.encode() for c in classes])
            for key, v in (attrs or {}).items():
                f.attrs[key] = v


def write_h5(path, X, y, snr, classes, attrs: dict | None = None) -> Path:
    """Write frames (X (N, 2, L)) in amchw's HDF5 layout (h5_writer), atomically."""
    X = np.asarray(X, np.float32)
    with h5_writer(path, X.shape[0], X.shape[2], classes, attrs) as put:
        put(0, X, y, snr)
    return Path(path)


def convert_to_h5(src, out, normalize: str = "auto", snr_range=None, chunk: int = 16384,
                  progress=None) -> dict:
    """Any data file amchw reads (a RadioML 2016.10A/10B or RML22 pickle, RadioML 2018.01A or
    another RadioML-2018-layout HDF5) -> amchw's HDF5 layout (X (N, L, 2), Y one-hot, Z, class
    names), frames in file order, normalised per `normalize` (auto: unit-power for a pickle,
    none for HDF5) and, with snr_range (lo, hi), only SNRs in [lo, hi] dB. Written in chunks
    (bounded memory for the 20 GiB RadioML 2018 file), atomically. The output records its
    source and normalisation (attributes converted_from, normalize), and reads back with
    normalize "none" by default (auto on HDF5)."""
    import time

    t0 = time.perf_counter()
    with open_frames(src, normalize) as r:
        rows = np.arange(r.n)
        if snr_range is not None:
            rows = rows[(r.snrs >= snr_range[0]) & (r.snrs <= snr_range[1])]
            if rows.size == 0:
                raise DatasetError(f"{src}: no frames with SNR in [{snr_range[0]}, "
                                   f"{snr_range[1]}] dB")
        n, k = rows.size, len(r.classes)
        attrs = {"converted_from": getattr(r, "dataset", r.kind),
                 "source_file": Path(src).name, "normalize": r.normalize}
        with h5_writer(out, n, r.length, r.classes, attrs) as put:
            for a in range(0, n, chunk):
                sel = rows[a:a + chunk]
                put(a, r.frames(sel), r.labels[sel], r.snrs[sel])
                if progress is not None:
                    progress(sel.size)
        return {"frames": n, "length": r.length, "classes": k, "dataset": r.dataset,
                "normalize": r.normalize, "seconds": time.perf_counter() - t0}


def synth_to_h5(path, profile: str, per_class_snr: int, snrs, seed: int = 0,
                channel: str = "radioml", progress=None) -> dict:
    """Generate a synthetic file class by class (bounded memory) in the RadioML 2018 layout.
    Class c uses the generator seeded by (seed, c), so a file is reproducible and any class
    can be regenerated alone."""
    import time
    from dataclasses import replace

    from .synthetic import MAX_SNR_DB, PROFILES, synthesize

    prof = PROFILES[profile]
    snrs = tuple(int(s) for s in snrs)
    if any(abs(s) > MAX_SNR_DB for s in snrs):
        raise ValueError(f"SNRs must lie within +-{MAX_SNR_DB} dB, got {snrs}")
    n_cls = len(prof.classes)
    per_class = len(snrs) * per_class_snr
    n = n_cls * per_class
    t0 = time.perf_counter()
    attrs = {"profile": profile, "seed": seed, "channel": channel,
             "snr_definition": ("true full-band SNR: mean signal power over the frame / "
                                "complex white noise power"),
             "generator": "amchw.data.synthetic"}
    with h5_writer(path, n, prof.length, prof.classes, attrs) as put:
        for c in range(n_cls):
            one = replace(prof, classes=(prof.classes[c],))   # class c alone
            x, _, snr = synthesize(one, per_class_snr, snrs,
                                   seed=np.random.default_rng([seed, c]), channel=channel)
            put(c * per_class, x, np.full(per_class, c), snr)
            if progress is not None:
                progress(1)
    return {"frames": n, "length": prof.length, "classes": n_cls,
            "seconds": time.perf_counter() - t0}

