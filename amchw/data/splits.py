"""How a data file is split into train, validation and test rows: the seeds' splits (the AMC
challenge's, the RadioML 2016 notebook's random 50/50, seeded 80/20, 80/10/10 and 64/16/20) and
SNR subsets. numpy only: the command line reads the choices without loading torch."""

from __future__ import annotations

import math

import numpy as np

from .radioml import DatasetError, H5Frames, challenge_split

#: the training seed and validation fraction of a checkpoint that records none
#: (amchw.train.TrainConfig's defaults)
DEFAULT_SEED = 0
DEFAULT_VAL_FRACTION = 0.1

#: how a data file is split (train / val / test): "auto" is the challenge split when frames are
#: stored in equal (class, SNR) groups, else a seeded random 90/10; "50/50" is the RadioML 2016
#: notebook's (numpy seed 2016, half the frames to train); the others are seeded random splits
#: (cfg seed); a split without its own val part holds out val_fraction of train
SPLIT_CHOICES = ("auto", "challenge", "50/50", "80/20", "80/10/10", "64/16/20")
NOTEBOOK_SEED = 2016


def parse_snr_range(text: str | None) -> tuple[int, int] | None:
    """"LO:HI" (dB, inclusive; either side may be empty) -> (lo, hi); None/"" -> None."""
    if text is None or text in ("", "all"):
        return None
    lo, sep, hi = str(text).partition(":")
    try:
        if not sep:
            raise ValueError
        rng = (int(lo) if lo.strip() else -10**6, int(hi) if hi.strip() else 10**6)
    except ValueError:
        raise ValueError(f"SNR range {text!r}: write LO:HI in dB, e.g. 0:16 or 10:") from None
    if rng[0] > rng[1]:
        raise ValueError(f"SNR range {text!r}: LO is above HI")
    return rng


def _random_parts(n: int, fractions, rng: np.random.Generator):
    perm = rng.permutation(n)
    cuts = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
    return [np.sort(p) for p in np.split(perm, cuts)]


UNDERSAMPLE_SEED = 5


class _Rows:
    """Some rows of a reader, seen as a reader for splitting (not stored in groups: auto is
    then a seeded random 90/10)."""

    def __init__(self, reader, rows: np.ndarray):
        self.path, self.n = getattr(reader, "path", "?"), rows.size
        self.labels, self.snrs = reader.labels[rows], reader.snrs[rows]

    def group_size(self) -> int:
        return 0


def undersample_rows(reader: H5Frames, per_group: int) -> np.ndarray:
    """Random undersampling with a fixed seed (the GRU-CNN seed's balanced sets): at most
    `per_group` rows of every (class, SNR) group, drawn with default_rng(UNDERSAMPLE_SEED)
    group by group; sorted row indices."""
    if per_group < 1:
        raise ValueError(f"undersampling keeps at least 1 frame per (class, SNR), got "
                         f"{per_group}")
    rng = np.random.default_rng(UNDERSAMPLE_SEED)
    key = reader.labels.astype(np.int64) * 100_000 + (reader.snrs - reader.snrs.min())
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    keep = [g if g.size <= per_group else rng.choice(g, per_group, replace=False)
            for g in np.split(order, bounds)]
    return np.sort(np.concatenate(keep))


def split_indices(reader: H5Frames, seed: int, val_fraction: float, split: str = "auto",
                  snr_range=None, undersample: int | None = None):
    """(train, val, test) row indices of a data file, per `split` (SPLIT_CHOICES); a split
    without a val part holds out a seeded `val_fraction` of train. `snr_range` (lo, hi) keeps
    only the rows whose SNR lies in [lo, hi] dB, in all three parts (an SNR subset).
    `undersample` N first keeps N rows per (class, SNR) (undersample_rows), then splits them
    at random (the challenge split, defined on whole groups, is refused with it; auto is a
    seeded 90/10)."""
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}")
    if undersample is not None:
        if split == "challenge":
            raise ValueError("the challenge split takes whole (class, SNR) groups: choose "
                             "another split to undersample")
        rows = undersample_rows(reader, undersample)
        sub = _Rows(reader, rows)
        parts = split_indices(sub, seed, val_fraction, split, snr_range)
        return tuple(rows[p] for p in parts)
    val = None
    if split in ("auto", "challenge"):
        try:
            train, test = challenge_split(reader)
        except DatasetError:
            if split == "challenge":
                raise
            perm = np.random.default_rng(seed).permutation(reader.n)
            k = int(math.ceil(0.1 * reader.n))
            test, train = np.sort(perm[:k]), np.sort(perm[k:])
    elif split == "50/50":
        # the RadioML 2016 notebook: np.random.seed(2016); train = choice(n, n // 2)
        train = np.random.RandomState(NOTEBOOK_SEED).choice(reader.n, size=reader.n // 2,
                                                            replace=False)
        test = np.setdiff1d(np.arange(reader.n), train)
        train = np.sort(train)
    else:
        fr = [float(f) / 100 for f in split.split("/")]
        parts = _random_parts(reader.n, fr, np.random.default_rng([seed, 4]))
        train, test = parts[0], parts[-1]
        val = parts[1] if len(parts) == 3 else None
    if val is None:
        rng = np.random.default_rng([seed, 1])
        perm = rng.permutation(train.size)
        k = int(math.ceil(val_fraction * train.size))
        train, val = train[perm[k:]], train[perm[:k]]
    parts = [np.sort(train), np.sort(val), np.sort(test)]
    if snr_range is not None:
        lo, hi = snr_range
        keep = (reader.snrs >= lo) & (reader.snrs <= hi)
        parts = [p[keep[p]] for p in parts]
        if parts[0].size == 0:
            raise DatasetError(f"{reader.path}: no frames with SNR in [{lo}, {hi}] dB")
    return tuple(parts)


def config_split(reader: H5Frames, tcfg) -> tuple:
    """split_indices of a training configuration (a TrainConfig or its dict; a checkpoint
    recording none of these fields gets the defaults)."""
    get = tcfg.get if isinstance(tcfg, dict) else (lambda k, d=None: getattr(tcfg, k, d))
    snr = get("snr_range")
    return split_indices(reader, get("seed", DEFAULT_SEED),
                         get("val_fraction", DEFAULT_VAL_FRACTION), get("split", "auto") or "auto",
                         tuple(snr) if snr is not None else None, get("undersample"))
