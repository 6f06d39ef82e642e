"""The export self-check: a QONNX file must reproduce the model it was exported from. The
file (a ModelProto, before it is written) is re-imported by lower.qonnx and run next to the
IR of the model: every integer value equal and the IR text identical, or the export fails."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class RoundTrip:
    frames: int
    input_shape: tuple
    values_compared: int
    mismatches: int
    ir_text_equal: bool
    seconds: float      # re-import and comparison

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.ir_text_equal


def check_roundtrip(proto, graph, frames: np.ndarray, name: str, where: str) -> RoundTrip:
    """Re-import `proto` (named `name`, to be written at `where`) and run `frames` (reshaped to
    its input) through it and through `graph`, the model's IR put through the same layout and
    tie passes, with the reference executor; every node output is compared."""
    from amchw.ir.interp import run
    from amchw.ir.printer import to_text
    from amchw.lower.qonnx import load_qonnx

    t0 = time.perf_counter()
    g_file = load_qonnx(proto, name=name, where=where)
    in_shape = tuple(g_file.inputs[0].shape)
    x = np.asarray(frames, np.float32)
    x = x.reshape((len(x),) + in_shape)
    a = run(graph, x, "ref", keep=True)
    b = run(g_file, x, "ref", keep=True)
    compared = mism = 0
    for k, v in a.items():
        if k not in b or b[k].shape != v.shape:
            mism += v.size
            compared += v.size
            continue
        compared += v.size
        mism += int(np.count_nonzero(v != b[k]))
    text_eq = to_text(graph) == to_text(g_file)
    return RoundTrip(int(x.shape[0]), in_shape, compared, mism, text_eq,
                     time.perf_counter() - t0)
