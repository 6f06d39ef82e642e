"""Fresh synthetic training frames every epoch: the generator is fast enough (amchw.data.synthetic,
benchmarks/bench_synthetic.py) to draw a new training set per epoch in a background thread
while the previous epoch trains, so a model never sees the same noise twice (the seeds'
remedy for a small real dataset is more data; here it is free). The frames follow the data
file's recipe (profile, SNRs, channel), recorded by amchw data synth / amchw train."""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .radioml import DatasetError, FrameReader, normalize_frames
from .synthetic import PROFILES, synthesize

GENERATOR = "amchw.data.synthetic"


class SyntheticStream:
    """Epoch e's training frames (e >= 1), as arrays (X float32 (N, 2, L), y int64): the file's
    profile, SNRs and channel, at least `n` frames (an equal count per (class, SNR)), seeded by
    (file seed, run seed, e) so a run, and its resumption, is reproducible. get(e) also starts
    generating epoch e + 1 in the background (up to `last`)."""

    def __init__(self, reader: FrameReader, n: int, seed: int, last: int):
        a = reader.attrs
        if a.get("generator") != GENERATOR or a.get("profile") not in PROFILES:
            raise DatasetError(f"{getattr(reader, 'path', '?')}: streaming needs an amchw "
                               "synthetic file (its profile, SNRs and channel); this is "
                               f"{getattr(reader, 'dataset', 'another kind of file')}")
        self.profile = PROFILES[str(a["profile"])]
        if tuple(reader.classes) != self.profile.classes:
            raise DatasetError(f"{reader.path}: classes differ from profile "
                               f"{self.profile.name}'s")
        self.snrs = tuple(int(s) for s in np.unique(reader.snrs))
        self.channel = str(a.get("channel", "radioml"))
        self.per = max(1, math.ceil(n / (len(self.profile.classes) * len(self.snrs))))
        self.normalize = reader.normalize
        self.seeds = (int(a.get("seed", 0)), int(seed))
        self.last = last
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="amchw-stream")
        self._jobs: dict[int, Future] = {}

    def make(self, epoch: int):
        """(X, y) of `epoch` (in the calling thread)."""
        rng = np.random.default_rng([*self.seeds, 7, epoch])
        X, y, _ = synthesize(self.profile, self.per, self.snrs, rng, channel=self.channel)
        return normalize_frames(X, self.normalize), y

    def prefetch(self, epoch: int) -> None:
        """Start generating `epoch`'s frames in the background."""
        if epoch <= self.last and epoch not in self._jobs:
            self._jobs[epoch] = self._pool.submit(self.make, epoch)

    def get(self, epoch: int):
        self.prefetch(epoch)
        out = self._jobs.pop(epoch).result()
        self.prefetch(epoch + 1)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._jobs.clear()
