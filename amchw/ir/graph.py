"""The graph: immutable, topologically ordered nodes over named values.

Invariant: every node's inputs are graph inputs or outputs of earlier nodes; names are unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ops import Op
from .types import IRError, Value


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

    __hash__ = None


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

    __hash__ = None


class GraphBuilder:
    """Appends nodes in order, inferring each output shape; used by the lowerings."""

    def __init__(self, name: str):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self._values: dict[str, Value] = {}
        self._names: set[str] = set()
        self._bounds: dict[str, int | None] = {}

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
        return b if b is not None else self._values[name].dtype.max_abs_centered()

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._names or name in self._values:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def add(self, name: str, op: Op, inputs, source: str = "") -> Value:
        from .validate import _bounds, infer, out_bound

        name = self.unique(name)
        ins = [self._values[i] for i in inputs]
        in_b = [self._bounds.get(i) for i in inputs]
        shape, dtype = infer(name, op, ins, in_b)
        self._bounds[name] = out_bound(op, ins, _bounds(ins, in_b))
        out = Value(name, shape, dtype)
        self.nodes.append(Node(name, op, tuple(inputs), out, source))
        self._values[name] = out
        return out

    def build(self, outputs, meta: dict | None = None) -> Graph:
        return Graph(self.name, tuple(self.inputs), tuple(self.nodes), tuple(outputs), meta or {})
