"""Save/load a graph as one .npz: a JSON description plus the arrays, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from amchw.fileio import atomic_open

from .graph import Graph, Node
from .ops import OPS
from .types import FloatType, IRError, QType, Value
from .validate import validate

FORMAT = "amchw-ir/1"


def _enc(v):
    if isinstance(v, QType):
        return {"__qtype__": [v.bits, v.signed, v.narrow, list(v.scale), v.zero_point, v.axis]}
    if isinstance(v, FloatType):
        return {"__float__": v.bits}
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(e) for e in v]}
    return v


def _dec(v):
    if isinstance(v, dict):
        if "__qtype__" in v:
            b, s, n, sc, zp, ax = v["__qtype__"]
            return QType(b, s, n, tuple(sc), zp, ax)
        if "__float__" in v:
            return FloatType(v["__float__"])
        if "__tuple__" in v:
            return tuple(_dec(e) for e in v["__tuple__"])
    return v


def _value(v: Value) -> dict:
    return {"name": v.name, "shape": list(v.shape), "dtype": _enc(v.dtype)}


def _encode(graph: Graph, arrays: dict[str, np.ndarray], prefix: str) -> dict:
    nodes = []
    for i, n in enumerate(graph.nodes):
        params, arr_names = {}, {}
        for f in n.op.fields():
            val = getattr(n.op, f.name)
            if isinstance(val, np.ndarray):
                key = f"{prefix}a{i}_{f.name}"
                arrays[key] = val
                arr_names[f.name] = key
            elif isinstance(val, Graph):  # a nested graph (a GRU's cell)
                params[f.name] = {"__graph__": _encode(val, arrays, f"{prefix}g{i}_")}
            else:
                params[f.name] = _enc(val)
        nodes.append({"name": n.name, "kind": n.op.kind, "inputs": list(n.inputs),
                      "output": _value(n.output), "source": n.source, "params": params,
                      "arrays": arr_names})
    return {"format": FORMAT, "name": graph.name, "inputs": [_value(v) for v in graph.inputs],
            "outputs": list(graph.outputs), "nodes": nodes, "meta": graph.meta}


def save(graph: Graph, path: str | os.PathLike) -> Path:
    """Write `graph` to `path` (.npz) atomically: a temporary file renamed into place."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    doc = _encode(graph, arrays, "")
    arrays["__graph__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    return path


def _decode(doc: dict, z, path) -> Graph:
    nodes = []
    for nd in doc["nodes"]:
        cls = OPS.get(nd["kind"])
        if cls is None:
            raise IRError(f"{path}: node {nd['name']!r} has unknown op {nd['kind']!r}")
        kw = {k: (_decode(v["__graph__"], z, path) if isinstance(v, dict) and "__graph__" in v
                  else _dec(v)) for k, v in nd["params"].items()}
        kw.update({k: z[key] for k, key in nd["arrays"].items()})
        out = nd["output"]
        nodes.append(Node(nd["name"], cls(**kw), tuple(nd["inputs"]),
                          Value(out["name"], tuple(out["shape"]), _dec(out["dtype"])),
                          nd.get("source", "")))
    inputs = tuple(Value(v["name"], tuple(v["shape"]), _dec(v["dtype"])) for v in doc["inputs"])
    return Graph(doc["name"], inputs, tuple(nodes), tuple(doc["outputs"]), doc.get("meta", {}))


def load(path: str | os.PathLike) -> Graph:
    """Read a graph written by save(); IRError naming the file if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(bytes(z["__graph__"]).decode())
            if doc.get("format") != FORMAT:
                raise IRError(f"{path}: not an amchw IR file (format {doc.get('format')!r})")
            g = _decode(doc, z, path)
    except IRError:
        raise
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise IRError(f"{path}: cannot read an amchw IR graph ({type(e).__name__}: {e})") from e
    return validate(g)
