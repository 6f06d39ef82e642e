"""Brevitas -> QONNX, checked before it is written; by default in the form FINN builds.

export_model():
 1. refuses a model FINN cannot take (a recurrent layer, or any layer amchw cannot lower);
 2. exports with Brevitas' export_qonnx (TorchScript path by default, dynamo on request);
 3. cleans the graph with qonnx (cleanup_model: shapes inferred, constants folded, unique
    names), infers qonnx datatypes, caps the IR version to what onnxruntime reads, records
    the model name in the metadata;
 4. form "finn" (the default): rewrites the graph into the form FINN's front end maps
    (export.finn_form: 1-D layers as unit-height 2-D, bias quantizer parameters as vectors,
    average pools as depthwise convolutions with unit weights),
    records FINN's tie rule (`amchw.ties` = finn: thresholds round exact halves up), and
    refuses with the list of what FINN would not build (finn_problems, every rule confirmed
    by running FINN in tests/finn); form "qonnx" writes the plain cleaned QONNX and only
    reports those problems;
 5. re-imports the file (lower.qonnx) and runs sample frames through it and through the
    Brevitas lowering (put through the same layout and tie passes, ir.passes): every integer
    value must be equal, and the IR text identical (the self-check, verify.roundtrip);
 6. only then writes the file, atomically.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

FINN_OPS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "Conv", "MatMul", "Gemm", "Add",
            "Mul", "Div", "Sub", "BatchNormalization", "Relu", "MaxPool", "AveragePool",
            "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Concat", "Identity",
            "Squeeze", "Unsqueeze"}
RECURRENT = ("RNN", "LSTM", "GRU", "QuantRNN", "QuantLSTM", "QuantGRU")
FORMS = ("finn", "qonnx")


class ExportError(ValueError):
    """A model or file that cannot be exported FINN-ready; says why."""


@dataclass
class ExportReport:
    path: str
    model: str
    exporter: str
    export_seconds: float
    check_seconds: float
    ir_version: int
    opsets: dict
    ops: dict
    frames: int
    values_compared: int
    mismatches: int
    ir_text_equal: bool
    form: str = "finn"
    input_shape: tuple = ()
    ties: str = "half_even"
    finn_problems: list = None
    forks: int = 0               # tensors read by several branches (FINN: step_streamline_forks)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.ir_text_equal

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def _inits(model) -> dict:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def finn_problems(model) -> list[str]:
    """What keeps a QONNX ModelProto from being FINN-ready (empty when it is)."""
    g = model.graph
    inits = _inits(model)
    producer = {o: n for n in g.node for o in n.output}
    out = []
    readers: dict = {}
    kind = {n.name: n.op_type for n in g.node}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.name)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in list(g.value_info)
             + list(g.output) + list(g.input) if v.type.tensor_type.HasField("shape")}
    for n in g.node:
        where = f"node {n.name!r} ({n.op_type})"
        if n.op_type not in FINN_OPS:
            out.append(f"{where}: op type not handled by FINN's QONNX conversion")
        pool_readers = readers.get(n.output[0], ()) if n.op_type == "MaxPool" else ()
        if len(pool_readers) > 1 and any(kind[r] in ("Quant", "IntQuant") for r in pool_readers):
            out.append(f"{where}: its output is read by {len(pool_readers)} branches, one of "
                       "them a quantizer (a residual skip); FINN's streamlining moves the pool "
                       "past that branch's MultiThreshold only, and its HW conversion refuses "
                       "the MultiThreshold left with NHWC input and NCHW output (export with "
                       "form 'finn' writes one pool per branch)")
        if n.op_type in ("Conv", "MaxPool", "AveragePool") and ranks.get(n.input[0]) == 3:
            out.append(f"{where}: a 1-D window; FINN lowers only 2-D windows (export with "
                       "form 'finn' writes 1-D layers with unit height)")
        elif n.op_type == "AveragePool":
            out.append(f"{where}: FINN maps an average pool only as a square Trunc-quantized "
                       "pool; this one stays outside its HW layers (export with form 'finn' "
                       "writes it as a depthwise convolution)")
        if n.op_type == "Conv" and len(n.input) > 2 and n.input[2] in producer:
            q = producer[n.input[2]]
            if q.op_type in ("Quant", "IntQuant") and any(
                    p in inits and inits[p].ndim == 0 for p in q.input[1:3]):
                out.append(f"{where}: its bias quantizer's scale or zero point is a 0-d "
                           "scalar, which FINN's bias extraction cannot reshape")
        if n.op_type not in ("Quant", "IntQuant"):
            continue
        params = n.input[1:4]
        if any(p not in inits for p in params):
            out.append(f"{where}: scale, zero point and bit width must be static initializers")
            continue
        scale, zp, bits = (inits[p] for p in params)
        attrs = {a.name: a.i for a in n.attribute if a.name in ("signed", "narrow")}
        if np.any(zp != 0):
            out.append(f"{where}: zero point {zp.ravel()[:4].tolist()} is not 0")
        src = n.input[0]
        if src in inits:  # a weight (or bias) quantizer
            w = inits[src]
            if scale.size > 1:
                axes = [i for i, d in enumerate(scale.shape) if d > 1]
                if len(axes) != 1 or scale.size not in (w.shape[0], w.shape[-1]):
                    out.append(f"{where}: weight scale of shape {scale.shape} is neither per "
                               f"tensor nor per output channel of {w.shape}")
            continue
        b = float(bits.ravel()[0])
        if b > 8:
            out.append(f"{where}: {b:g}-bit activation quantizer (FINN takes at most 8)")
        prev = producer.get(src)
        if prev is not None and prev.op_type == "Relu":
            if attrs.get("signed", 1) or attrs.get("narrow", 0):
                out.append(f"{where}: the quantizer after a ReLU must be unsigned and not narrow")
    if model.ir_version > 10:
        out.append(f"IR version {model.ir_version} is newer than onnxruntime reads")
    return out


def forked_tensors(model) -> dict:
    """{tensor: readers} for every computed tensor read by two or more nodes (a fork: an
    early exit, a residual or Inception block). FINN's standard streamlining leaves the
    scale multiply at a fork; `step_streamline_forks` (verify/finn_worker.py) moves it."""
    inits = {i.name for i in model.graph.initializer}
    readers: dict = {}
    for n in model.graph.node:
        for i in n.input:
            if i and i not in inits:
                readers.setdefault(i, []).append(n.name)
    return {t: who for t, who in readers.items() if len(who) > 1}


def _record_module_paths(model) -> None:
    """Keep each node's torch module path (lower.qonnx reads it to name IR nodes as the
    Brevitas lowering does) under the key amchw.module: qonnx's cleanup renames nodes."""
    from onnx import StringStringEntryProto

    from amchw.lower.qonnx import is_input_quant, module_path

    for n in model.graph.node:
        p = module_path(n)
        if p:
            n.metadata_props.append(StringStringEntryProto(key="amchw.module", value=p))
        if is_input_quant(n):
            n.metadata_props.append(StringStringEntryProto(key="amchw.role", value="input_quant"))


def refuse_unexportable(model) -> None:
    """ExportError for models FINN cannot take, before any export work."""
    for path, m in model.named_modules():
        if type(m).__name__ in RECURRENT:
            raise ExportError(f"{path}: {type(m).__name__} is a recurrent layer; FINN has no "
                              "recurrent layers, so this model cannot be exported FINN-ready")


def export_model(model, frames: np.ndarray, path, name: str, dynamo: bool = False,
                 check_frames: int = 16, form: str = "finn") -> ExportReport:
    """Export a Brevitas model (eval mode) to QONNX at `path`, in FINN's form (`form="finn"`)
    or as plain cleaned QONNX (`form="qonnx"`); see the module doc."""
    import onnx
    import torch
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.cleanup import cleanup_model

    from amchw.fileio import atomic_open
    from amchw.ir.passes import TIES, unit_height, with_ties
    from amchw.ir.passes import avgpool_as_depthwise as ir_avgpool_as_depthwise
    from amchw.ir.passes import pools_per_branch as ir_pools_per_branch
    from amchw.lower.brevitas import lower
    from amchw.verify.roundtrip import check_roundtrip

    from .compat import cap_model, capped_ir_version
    from .finn_form import (FinnFormError, avgpool_as_depthwise, pools_per_branch,
                            vector_quant_params)
    from .finn_form import unit_height as onnx_unit_height

    if form not in FORMS:
        raise ExportError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    refuse_unexportable(model)
    model = model.eval()
    sample = torch.as_tensor(np.asarray(frames[:4], np.float32))
    g_brev = lower(model, sample, name=name)     # LoweringError if amchw cannot lower it
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        try:
            export_qonnx(model, sample[:1], export_path=raw, dynamo=dynamo)
        except Exception as e:  # the exporters raise many types; report the path that failed
            raise ExportError(f"{name}: Brevitas export_qonnx (dynamo={dynamo}) failed: "
                              f"{type(e).__name__}: {e}") from None
        export_s = time.perf_counter() - t0
        raw_model = onnx.load(raw)
        _record_module_paths(raw_model)
        with capped_ir_version():
            mw = cleanup_model(ModelWrapper(raw_model))
            mw = mw.transform(InferDataTypes())
    mw.set_tensor_datatype(mw.graph.input[0].name, DataType["FLOAT32"])
    proto = cap_model(mw.model)
    del proto.metadata_props[:]
    props = {"amchw.model": name, "amchw.exporter": "dynamo" if dynamo else "torchscript",
             "amchw.form": form}
    forks = forked_tensors(proto)
    if form == "finn":
        try:
            onnx_unit_height(proto)
            vector_quant_params(proto)
            avgpool_as_depthwise(proto)
            pools_per_branch(proto)
        except FinnFormError as e:
            raise ExportError(f"{name}: {e}") from None
        props["amchw.ties"] = "finn"
        if forks:  # FINN builds it with the fork-aware streamlining step (docs/qonnx.md)
            props["amchw.finn_streamline"] = "forks"
        g_brev = with_ties(ir_pools_per_branch(ir_avgpool_as_depthwise(unit_height(g_brev))),
                           TIES["finn"])
    onnx.helper.set_model_props(proto, props)
    problems = finn_problems(proto)
    if problems and form == "finn":
        raise ExportError(f"{name}: FINN would not build this graph (nothing was written; "
                          "form 'qonnx' writes it as plain QONNX):\n  " + "\n  ".join(problems))
    chk = check_roundtrip(proto, g_brev, frames[:check_frames], name, str(path))
    if not chk.ok:
        raise ExportError(f"{name}: the exported file does not reproduce the model: "
                          f"{chk.mismatches} of {chk.values_compared} integer values differ, "
                          f"IR text {'equal' if chk.ir_text_equal else 'differs'}; nothing "
                          "was written")
    with atomic_open(path) as f:
        f.write(proto.SerializeToString())
    ops: dict = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ExportReport(str(path), name, "dynamo" if dynamo else "torchscript", export_s,
                        chk.seconds, proto.ir_version,
                        {o.domain or "ai.onnx": o.version for o in proto.opset_import}, ops,
                        chk.frames, chk.values_compared, chk.mismatches, chk.ir_text_equal,
                        form, chk.input_shape, TIES[form], problems, len(forks))
