"""onnxruntime as a peer of amchw's fused executor: the same network as ONNX, run by
onnxruntime's CPU provider in two forms, both built here from what amchw itself exports.

- int8 QDQ: amchw's QONNX export of the model (amchw.export.qonnx.export_model), converted by
  qonnx's QuantToQCDQ (each 8-bit Quant becomes QuantizeLinear -> DequantizeLinear, with a
  Clip for narrow ranges); the 32-bit bias quantizers, which QCDQ cannot express, become int32
  DequantizeLinear of the bias codes (round half to even of bias / scale, as the Quant node
  computes it). onnxruntime's graph optimizer then fuses the QDQ groups into its int8 kernels.
- float32: the float mirror of the model (dequantized weights, float activations) exported by
  torch.onnx.

The batch axis is made dynamic in both. Neither file is written by the project for users:
they exist only to give the benchmark a fair, strong peer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _dynamic_batch(model) -> None:
    del model.graph.value_info[:]
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "n"


def qdq_model(qonnx_path: Path, out_path: Path) -> Path:
    """amchw's QONNX file -> an int8 QDQ ONNX file onnxruntime runs."""
    import onnx
    from onnx import helper
    from onnx import numpy_helper as nh
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ

    from amchw.export.compat import cap_model

    m = cap_model(ModelWrapper(str(qonnx_path)).transform(QuantToQCDQ()).model)
    inits = {t.name: t for t in m.graph.initializer}
    nodes = []
    for n in m.graph.node:
        if n.op_type == "Quant" and all(i in inits for i in n.input):
            x, sc, zp, bits = (nh.to_array(inits[i]) for i in n.input)
            if float(bits) > 32 or np.any(zp != 0) or sc.size != 1:
                raise ValueError(f"{n.name}: constant Quant that is not a per-tensor bias")
            q = np.round(x.astype(np.float64) / float(sc.ravel()[0]))
            lim = 2.0 ** (float(bits) - 1)
            q = np.clip(q, -lim, lim - 1).astype(np.int32)
            names = (n.name + "_codes", n.name + "_scale", n.name + "_zero")
            m.graph.initializer.extend([nh.from_array(q, names[0]),
                                        nh.from_array(np.float32(sc.ravel()[0]), names[1]),
                                        nh.from_array(np.int32(0), names[2])])
            nodes.append(helper.make_node("DequantizeLinear", list(names), [n.output[0]],
                                          name=n.name))
        else:
            nodes.append(n)
    left = [n.name for n in nodes if n.op_type in ("Quant", "Trunc", "BipolarQuant")]
    if left:
        raise ValueError(f"QCDQ left quantizers onnxruntime cannot run: {left}")
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    _dynamic_batch(m)
    onnx.save(m, str(out_path))
    return out_path


def float_model(mirror, example: np.ndarray, out_path: Path) -> Path:
    """The float32 mirror (a torch module) -> ONNX with a dynamic batch axis."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(mirror, torch.from_numpy(example[:1]), str(out_path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return out_path


def session(path: Path, threads: int):
    """An onnxruntime CPU session with every graph optimization, `threads` intra-op threads
    and one inter-op thread; a function x -> first output (x reshaped to the file's input
    rank when it differs, e.g. (N, 2, 1024) -> (N, 2, 1, 1024))."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    rest = tuple(int(d) for d in inp.shape[1:])   # amchw's FINN-form export of a 1-D network
    name = inp.name                                # takes (N, C, 1, L): the same values

    def run(x):
        if x.shape[1:] != rest:
            x = x.reshape((x.shape[0], *rest))
        return s.run(None, {name: x})[0]

    return run
