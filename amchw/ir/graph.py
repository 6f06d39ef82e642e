"""The graph: immutable, topologically ordered nodes over named values.

Invariant: every node's inputs are graph inputs or outputs of earlier nodes; names are unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ops import Op, infer, type_bounds
from .types import IRError, QType, Value


@dataclass(frozen=True, eq=False)
class Node:
    """One op application. `source` names what it was lowered from (a module path or ONNX node)."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    output: Value
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))

    def __eq__(self, other) -> bool:
        return (isinstance(other, Node) and self.name == other.name and self.op == other.op
                and self.inputs == other.inputs and self.output == other.output
                and self.source == other.source)

    __hash__ = None  # type: ignore[assignment]  # equal by value, so unhashable


@dataclass(frozen=True, eq=False)
class Graph:
    name: str
    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        seen = {v.name for v in self.inputs}
        if len(seen) != len(self.inputs):
            raise IRError(f"graph {self.name!r}: duplicate input names")
        for n in self.nodes:
            for i in n.inputs:
                if i not in seen:
                    raise IRError(f"node {n.name!r}: input {i!r} is not defined before it "
                                  "(graph must be topologically ordered)")
            if n.output.name in seen:
                raise IRError(f"node {n.name!r}: value name {n.output.name!r} defined twice")
            seen.add(n.output.name)
        for o in self.outputs:
            if o not in seen:
                raise IRError(f"graph {self.name!r}: output {o!r} is never produced")

    def values(self) -> dict[str, Value]:
        vals = {v.name: v for v in self.inputs}
        vals.update({n.output.name: n.output for n in self.nodes})
        return vals

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r} in graph {self.name!r}")

    def __eq__(self, other) -> bool:
        return (isinstance(other, Graph) and self.name == other.name
                and self.inputs == other.inputs and self.outputs == other.outputs
                and len(self.nodes) == len(other.nodes)
                and all(a == b for a, b in zip(self.nodes, other.nodes)))

    __hash__ = None  # type: ignore[assignment]  # equal by value, so unhashable

    def __getstate__(self) -> dict:
        """Pickled without the caches the executors attach (a compiled plan holds locks and
        threads): a graph that has run still goes to another process (Dask, multiprocessing)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class GraphBuilder:
    """Appends nodes in order, inferring each output shape; used by the lowerings."""

    def __init__(self, name: str):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self._values: dict[str, Value] = {}
        self._names: set[str] = set()
        self._bounds: dict[str, int | None] = {}
        self.renamed: dict[str, str] = {}

    def input(self, name: str, shape, dtype) -> Value:
        v = Value(name, tuple(shape), dtype)
        self.inputs.append(v)
        self._values[name] = v
        return v

    def value(self, name: str) -> Value:
        return self._values[name]

    def bound(self, name: str) -> int:
        """Largest |int - zero point| value `name` can hold (validator's worst case)."""
        b = self._bounds.get(name)
        if b is not None:
            return b
        t = self._values[name].dtype
        if not isinstance(t, QType):
            raise IRError(f"value {name!r} is {t.short()}: it has no code bound")
        return t.max_abs_centered()

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._names or name in self._values:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def add(self, name: str, op: Op, inputs, source: str = "") -> Value:
        name = self.unique(name)
        ins = [self._values[i] for i in inputs]
        in_b = [self._bounds.get(i) for i in inputs]
        shape, dtype = infer(name, op, ins, in_b)
        self._bounds[name] = op.out_bound(ins, type_bounds(ins, in_b))
        out = Value(name, shape, dtype)
        self.nodes.append(Node(name, op, tuple(inputs), out, source))
        self._values[name] = out
        return out

    def build(self, outputs, meta: dict | None = None) -> Graph:
        """The graph in canonical form: repeated calls of one module named by what they read
        (canonical_names; `self.renamed` maps old value names to new), nodes in canonical
        order (canonical_order)."""
        nodes, self.renamed = canonical_names(self.nodes)
        outs = tuple(self.renamed.get(o, o) for o in outputs)
        return Graph(self.name, tuple(self.inputs), tuple(canonical_order(nodes)), outs,
                     meta or {})


def canonical_names(nodes) -> tuple[list[Node], dict[str, str]]:
    """Rename the nodes of a module called several times (one `source`, names base, base_2,
    base_3, ... handed out in call order) so that the k-th name goes to the call whose input
    names sort k-th. Lowerings see the calls of a shared quantizer in different orders
    (Brevitas' hooks, either exporter's node order); this makes the names agree."""
    import re
    from dataclasses import replace

    by_source: dict[str, list[Node]] = {}
    for n in nodes:
        by_source.setdefault(n.source, []).append(n)
    groups: list[tuple[str, list[str]]] = []  # (base, member names in emission order)
    for members in by_source.values():
        if len(members) < 2:
            continue
        names = {m.name for m in members}
        for base in sorted(names):
            pat = re.compile(re.escape(base) + r"_(\d+)")
            sub = [m.name for m in members if m.name == base
                   or ((mm := pat.fullmatch(m.name)) and int(mm.group(1)) >= 2)]
            if len(sub) >= 2:
                groups.append((base, sub))
                break
    if not groups:
        return list(nodes), {}
    inputs_of = {n.name: n.inputs for n in nodes}
    rename: dict[str, str] = {}
    for _ in range(len(nodes) + 1):  # a fixed point: inputs may themselves be renamed
        new: dict[str, str] = {}
        for base, sub in groups:
            key = sorted(sub, key=lambda m: tuple(rename.get(i, i) for i in inputs_of[m]))
            for k, m in enumerate(key):
                new[m] = base if k == 0 else f"{base}_{k + 1}"
        new = {a: b for a, b in new.items() if a != b}
        if new == rename:
            break
        rename = new
    if not rename:
        return list(nodes), {}
    out = []
    for n in nodes:
        name = rename.get(n.name, n.name)
        out.append(replace(n, name=name, inputs=tuple(rename.get(i, i) for i in n.inputs),
                           output=replace(n.output, name=name)))
    return out, rename


def canonical_order(nodes) -> list[Node]:
    """The topological order that, among the nodes ready at each step, takes the one with the
    smallest name. Two lowerings of one model (Brevitas hooks, a QONNX file from either
    exporter) emit branches in different but valid orders; this makes their graphs, and so
    their text, identical. A chain keeps its order."""
    import heapq

    produced = {n.output.name: n for n in nodes}
    waiting = {n.name: sum(1 for i in set(n.inputs) if i in produced) for n in nodes}
    users: dict[str, list[Node]] = {}
    for n in nodes:
        for i in set(n.inputs):
            if i in produced:
                users.setdefault(i, []).append(n)
    ready = [(n.name, n) for n in nodes if waiting[n.name] == 0]
    heapq.heapify(ready)
    out: list[Node] = []
    while ready:
        _, n = heapq.heappop(ready)
        out.append(n)
        for u in users.get(n.output.name, ()):
            waiting[u.name] -= 1
            if waiting[u.name] == 0:
                heapq.heappush(ready, (u.name, u))
    if len(out) != len(nodes):
        raise IRError("graph has a cycle or a node reading a value produced later")
    return out


def needed_by(graph: Graph, outputs) -> set[str]:
    """Names of the nodes that computing `outputs` needs (they and all their producers)."""
    producer = {n.output.name: n for n in graph.nodes}
    todo = [o for o in outputs if o in producer]
    seen: set[str] = set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        todo += [i for i in producer[v].inputs if i in producer]
    return {producer[v].name for v in seen}
