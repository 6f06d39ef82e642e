"""qonnx + onnxruntime on one machine: onnx stamps new models with its own IR version (14 for
onnx 1.23), which onnxruntime 1.31 refuses (it reads up to 13). qonnx builds a one-node model
for every node it executes or folds, so capping the file's IR version is not enough: while
qonnx runs, every model onnx.helper.make_model creates is capped too."""

from __future__ import annotations

import contextlib

ORT_MAX_IR = 10  # IR 10 carries every opset these models use; onnxruntime >= 1.17 reads it


@contextlib.contextmanager
def capped_ir_version(max_ir: int = ORT_MAX_IR):
    import onnx.helper as oh

    orig = oh.make_model

    def make_model(graph, **kwargs):
        m = orig(graph, **kwargs)
        if m.ir_version > max_ir:
            m.ir_version = max_ir
        return m

    oh.make_model = make_model
    try:
        yield
    finally:
        oh.make_model = orig


def cap_model(model, max_ir: int = ORT_MAX_IR):
    """The ModelProto with its IR version lowered to what onnxruntime reads (in place)."""
    if model.ir_version > max_ir:
        model.ir_version = max_ir
    return model
