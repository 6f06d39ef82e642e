"""Stable text form of a graph: one line per node, arrays summarised by shape and a content
digest, scales spelled exactly. Equal text means equal graphs (up to digest collisions)."""

from __future__ import annotations

import hashlib

import numpy as np

from .graph import Graph
from .ops import Conv, Op
from .types import FloatType, QType, Value, format_scale


def digest(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.dtype).encode() + str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def fmt_array(a: np.ndarray) -> str:
    if a.size <= 4:
        return "[" + ",".join(str(v) for v in a.ravel().tolist()) + "]"
    return f"{a.dtype.name}[{','.join(map(str, a.shape))}]#{digest(a)}"


def fmt_type(t: QType | FloatType, shape=None) -> str:
    dims = "" if shape is None else "[" + ",".join(map(str, shape)) + "]"
    if isinstance(t, FloatType):
        return f"{t.short()}{dims}"
    if t.per_channel:
        sc = f"scale=f64[{len(t.scale)}]#{digest(t.scale_array())}@axis{t.axis}"
    else:
        sc = f"scale={format_scale(t.scale[0])}"
    return f"{t.short()}{dims} {sc} zp={t.zero_point}"


def fmt_value(v: Value) -> str:
    return fmt_type(v.dtype, v.shape)


def _fmt_param(v) -> str:
    if isinstance(v, QType):
        return "<" + fmt_type(v) + ">"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ",".join(_fmt_param(e) for e in v) + ")"
    return str(v)


def fmt_op(op: Op) -> str:
    parts = []
    for k, v in op.params().items():
        if k == "out" or isinstance(v, Graph):  # a nested graph is printed below the node
            continue
        if (k, v) in (("w_format", "dense"), ("index_bits", 0)):  # the defaults: not shown
            continue
        parts.append(f"{k}={_fmt_param(v)}")
    for k, v in op.arrays().items():
        parts.append(f"{k}={fmt_array(v)}")
    name = op.kind + (f"{op.ndim}d" if isinstance(op, Conv) else "")
    return f"{name} " + " ".join(parts) if parts else name


def to_text(g: Graph) -> str:
    lines = [f"graph {g.name}"]
    for v in g.inputs:
        lines.append(f"  input %{v.name}: {fmt_value(v)}")
    for n in g.nodes:
        ins = ", ".join("%" + i for i in n.inputs)
        src = f"  # {n.source}" if n.source else ""
        lines.append(f"  %{n.output.name} = {fmt_op(n.op)} ({ins}) -> {fmt_value(n.output)}{src}")
        for v in n.op.params().values():
            if isinstance(v, Graph):  # e.g. a GRU's cell, indented under its node
                lines += ["    " + ln for ln in to_text(v).splitlines()]
    lines.append("  output " + ", ".join("%" + o for o in g.outputs))
    return "\n".join(lines) + "\n"
