"""A torch Dataset over frames held in memory or read lazily from an HDF5 file."""

from __future__ import annotations

import numpy as np
import torch

from .radioml import FrameReader


class FrameDataset(torch.utils.data.Dataset):
    """(frame, label) pairs; frames reshaped to `input_shape` (a model's input, e.g. (1, 2, 128)
    for VTCNN2). `source` is a reader (amchw.data.radioml: H5Frames reads lazily by index,
    ArrayFrames holds a pickle's frames) or arrays (X, y)."""

    def __init__(self, source, indices=None, input_shape=None):
        if isinstance(source, FrameReader):
            self.reader, self.X, self.y = source, None, source.labels
            n = source.n
        else:
            X, y = source
            self.reader, self.X, self.y = None, np.asarray(X, np.float32), np.asarray(y)
            n = self.X.shape[0]
            if self.y.shape[0] != n:
                raise ValueError(f"{n} frames but {self.y.shape[0]} labels")
        self.indices = np.arange(n) if indices is None else np.asarray(indices, np.int64)
        self.input_shape = None if input_shape is None else tuple(input_shape)

    def in_memory(self, chunk: int = 65536) -> "FrameDataset":
        """The same (frame, label) pairs held in memory (read in sorted chunks of rows, the
        fast order for an HDF5 file), so batches cost no file reads."""
        if self.reader is None:
            return self
        X = np.empty((self.indices.size, 2, self.reader.length), np.float32)
        order = np.argsort(self.indices, kind="stable")
        for a in range(0, order.size, chunk):
            pos = order[a:a + chunk]
            X[pos] = self.reader.frames(self.indices[pos])
        return FrameDataset((X, self.y[self.indices]), None, self.input_shape)

    def __len__(self) -> int:
        return self.indices.size

    def _frames(self, rows: np.ndarray) -> np.ndarray:
        x = self.reader.frames(rows) if self.reader is not None else self.X[rows]
        return x if self.input_shape is None else x.reshape((rows.size, *self.input_shape))

    def batch(self, positions) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one read (the fast path for training loops)."""
        rows = self.indices[np.asarray(positions, np.int64)]
        return (torch.from_numpy(np.ascontiguousarray(self._frames(rows))),
                torch.from_numpy(self.y[rows].astype(np.int64)))

    def __getitem__(self, i):
        x, y = self.batch([i])
        return x[0], y[0]

    def __getitems__(self, positions):
        x, y = self.batch(positions)
        return list(zip(x, y))
