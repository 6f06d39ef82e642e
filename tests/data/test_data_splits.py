"""The seeds' splits and SNR subsets (amchw.data.splits): each split is disjoint and covers the
file, has its stated proportions, and the RadioML 2016 notebook's 50/50 is the notebook's own
draw; the default (auto) is what checkpoints recorded before the choice existed."""

import numpy as np
import pytest

from amchw.data.radioml import ArrayFrames, DatasetError
from amchw.data.splits import SPLIT_CHOICES, config_split, parse_snr_range, split_indices


def _reader(n_per=50, classes=3, snrs=(-10, 0, 10, 18), shuffled=False):
    y = np.repeat(np.arange(classes), len(snrs) * n_per)
    snr = np.tile(np.repeat(snrs, n_per), classes)
    if shuffled:   # not stored in (class, SNR) groups: no challenge split
        p = np.random.default_rng(0).permutation(y.size)
        y, snr = y[p], snr[p]
    X = np.zeros((y.size, 2, 8), np.float32)
    return ArrayFrames("f.pkl", X, y, snr, [f"c{i}" for i in range(classes)], "none")


@pytest.mark.parametrize("split, fractions", [
    ("80/20", (0.72, 0.08, 0.2)), ("80/10/10", (0.8, 0.1, 0.1)), ("64/16/20", (0.64, 0.16, 0.2)),
    ("50/50", (0.45, 0.05, 0.5)), ("challenge", (0.81, 0.09, 0.1)), ("auto", (0.81, 0.09, 0.1))])
def test_splits_partition_the_file_in_their_proportions(split, fractions):
    r = _reader()
    parts = split_indices(r, 3, 0.1, split)
    allrows = np.concatenate(parts)
    assert np.array_equal(np.sort(allrows), np.arange(r.n))      # disjoint, covering
    for p, f in zip(parts, fractions):
        assert abs(p.size / r.n - f) <= 0.01, (split, p.size / r.n, f)
        assert np.all(np.diff(p) > 0)                             # sorted rows
    again = split_indices(r, 3, 0.1, split)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = split_indices(r, 4, 0.1, split)
    if split not in ("challenge", "auto", "50/50"):              # seeded by the run's seed
        assert not np.array_equal(parts[2], other[2])
    else:                                                         # fixed (2018, 2016)
        assert np.array_equal(parts[2], other[2])


def test_fifty_fifty_is_the_radioml_notebooks_draw():
    """The RadioML 2016 notebook: np.random.seed(2016); n_train = n * 0.5;
    train_idx = np.random.choice(range(0, n), size=n_train, replace=False); test = the rest."""
    r = _reader(n_per=37)
    state = np.random.get_state()
    try:
        np.random.seed(2016)
        want = np.random.choice(range(0, r.n), size=int(r.n * 0.5), replace=False)
    finally:
        np.random.set_state(state)
    train, val, test = split_indices(r, 0, 0.1, "50/50")
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.sort(want))
    assert np.array_equal(test, np.setdiff1d(np.arange(r.n), want))


def test_auto_falls_back_to_a_seeded_90_10_and_challenge_refuses():
    r = _reader(shuffled=True)
    train, val, test = split_indices(r, 5, 0.1)
    perm = np.random.default_rng(5).permutation(r.n)      # the recorded default's draw
    assert np.array_equal(test, np.sort(perm[:int(np.ceil(0.1 * r.n))]))
    with pytest.raises(DatasetError, match="equal \\(class, SNR\\) groups"):
        split_indices(r, 5, 0.1, "challenge")
    with pytest.raises(ValueError, match="unknown split '70/30'"):
        split_indices(r, 5, 0.1, "70/30")


def test_snr_subsets_apply_to_every_part():
    r = _reader()
    full = split_indices(r, 1, 0.1, "80/10/10")
    sub = split_indices(r, 1, 0.1, "80/10/10", (0, 10))
    for f, s in zip(full, sub):
        assert np.array_equal(s, f[(r.snrs[f] >= 0) & (r.snrs[f] <= 10)])
    assert set(r.snrs[np.concatenate(sub)]) == {0, 10}
    with pytest.raises(DatasetError, match="no frames with SNR in \\[30, 40\\] dB"):
        split_indices(r, 1, 0.1, "auto", (30, 40))
    # a checkpoint's recorded configuration (a dict) and a TrainConfig-like object agree
    cfg = {"seed": 1, "val_fraction": 0.1, "split": "80/10/10", "snr_range": [0, 10]}
    assert all(np.array_equal(a, b) for a, b in zip(config_split(r, cfg), sub))
    assert all(np.array_equal(a, b) for a, b in zip(config_split(r, {}), split_indices(r, 0, 0.1)))


def test_snr_range_text():
    assert parse_snr_range("0:16") == (0, 16)
    assert parse_snr_range("-4:") == (-4, 10**6) and parse_snr_range(":8") == (-10**6, 8)
    assert parse_snr_range(None) is None and parse_snr_range("all") is None
    for bad in ("5", "a:b", "10:0"):
        with pytest.raises(ValueError, match="SNR range"):
            parse_snr_range(bad)
    assert SPLIT_CHOICES[0] == "auto"


def test_undersampling_balances_every_class_and_snr_then_splits():
    """The GRU-CNN seed's random undersampling with a fixed seed: N frames of every
    (class, SNR), the same N whatever the run's seed, then the chosen split of those rows."""
    from amchw.data.splits import undersample_rows

    r = _reader(n_per=50, shuffled=True)
    rows = undersample_rows(r, 20)
    counts = np.unique(np.stack([r.labels[rows], r.snrs[rows]]), axis=1, return_counts=True)[1]
    assert rows.size == 3 * 4 * 20 and np.all(counts == 20)
    assert np.array_equal(rows, undersample_rows(r, 20))
    parts = split_indices(r, 1, 0.1, "80/20", undersample=20)
    assert np.array_equal(np.sort(np.concatenate(parts)), rows)
    assert abs(parts[2].size / rows.size - 0.2) < 0.01
    other = split_indices(r, 2, 0.1, "80/20", undersample=20)
    assert np.array_equal(np.sort(np.concatenate(other)), rows)   # same frames, other split
    assert not np.array_equal(parts[2], other[2])
    assert np.array_equal(undersample_rows(r, 500), np.arange(r.n))   # groups smaller than N
    with pytest.raises(ValueError, match="challenge split takes whole"):
        split_indices(_reader(), 1, 0.1, "challenge", undersample=10)
    with pytest.raises(ValueError, match="at least 1 frame"):
        undersample_rows(r, 0)
