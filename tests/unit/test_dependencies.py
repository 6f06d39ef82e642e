"""The package's import structure (docs/extending.md, "Where things live"): no import cycles,
and dependencies point one way, kernels <- ir <- sims <- lower / verify / export <- the rest
<- cli; data never imports the models; torch only where a model is built or run.
Read from the source with ast (no import is executed), so a lazy import inside a function
counts as much as one at the top of a module, except for the torch rule, which is about
what importing a module loads."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"amchw": ROOT / "amchw", "amchw.kernels": ROOT / "kernels",
            "amchw.sims": ROOT / "sims"}

# a module of one rank imports only modules of its rank or below. The core is ranked
# kernels <- ir <- sims <- lower <- export / verify (one tier: verification compares what
# export writes, and export refuses a file that fails verify.roundtrip);
# data (generator, readers, what each model reads) imports no other part, and models (the
# torch zoo) only data;
# everything else (training, compression, model resolution, the report) sits above the core
# and below the CLI.
RANK = {"kernels": 0, "ir": 1, "sims": 2, "lower": 3, "export": 4, "verify": 4, "cli": 9}
LEAVES = ("models", "data")
REST = 6
BASE = {"amchw", "amchw.fileio"}  # the package root and the atomic-write helper: any layer
# modules that may import torch or brevitas when they are imported (the rest import it inside
# the function that needs it, so that e.g. `amchw simulate x.qonnx` never loads torch)
TORCH_AT_IMPORT = ("amchw.models", "amchw.compress", "amchw.train", "amchw.lower.brevitas",
                   "amchw.data.torch_dataset", "amchw.export.qonnx", "amchw.verify.brevitas",
                   "amchw.checkpoint")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, root in PACKAGES.items():
        for p in root.rglob("*.py"):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg] + parts)] = p
    return mods


MODS = _modules()


def _imports(name: str, top_level_only: bool = False) -> list[tuple[str, int]]:
    """(module, line) of every amchw module `name` imports (or, for other packages, the
    top-level package name)."""
    path = MODS[name]
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODS]
            # `from pkg import sub` loads the submodule; `from pkg import name` the package
            out += [(s, node.lineno) for s in subs]
            if len(subs) < len(node.names):
                out.append((mod, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {i for i, _ in _imports(m) if i in MODS and i != m} for m in MODS}


def _where(mod: str) -> str:
    p = MODS[mod]
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def _rank(layer: str) -> int:
    return RANK.get(layer, 2.5 if layer in LEAVES else REST)


def test_dependencies_point_one_way():
    wrong = []
    for m in MODS:
        a = _layer(m)
        for imp, line in _imports(m):
            if imp not in MODS or imp in BASE or _layer(imp) == a:
                continue
            b = _layer(imp)
            if a in LEAVES:
                ok = (a, b) == ("models", "data")  # data never imports the models
            elif b in LEAVES:
                ok = _rank(a) >= RANK["lower"]  # the core below lower never sees torch models
            else:
                ok = _rank(b) <= _rank(a)
            if not ok:
                wrong.append(f"{_where(m)}:{line} ({a}) imports {imp} ({b})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_kernels_import_only_numpy_and_numba():
    # llvmlite is numba's own code generator (the VNNI intrinsics); os/hashlib/pathlib name
    # the versioned Numba cache folder and read AMCHW_VNNI; warnings refuses a bad AMCHW_VNNI
    allowed = {"numpy", "numba", "llvmlite", "math", "operator", "__future__", "typing",
               "functools", "os", "hashlib", "pathlib", "warnings"}
    bad = []
    for m in MODS:
        if _layer(m) != "kernels":
            continue
        for imp, line in _imports(m):
            if not imp.startswith("amchw.kernels") and imp.split(".")[0] not in allowed:
                bad.append(f"{_where(m)}:{line} imports {imp}")
    assert not bad, "\n".join(bad)


def test_torch_only_where_models_live():
    bad = []
    for m in MODS:
        if m.startswith(TORCH_AT_IMPORT):
            continue
        for imp, line in _imports(m, top_level_only=True):
            if imp.split(".")[0] in ("torch", "brevitas"):
                bad.append(f"{_where(m)}:{line} imports {imp} at import time")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_cycle_and_a_wrong_way_import(tmp_path, monkeypatch):
    """The checks above can fail: a made-up pair of modules that import each other, and an
    IR module that imports the simulator."""
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("from amchw.ir import b_mod\n")
    b.write_text("import amchw.ir.a_mod\nfrom amchw.sims import simulate\n")
    monkeypatch.setitem(MODS, "amchw.ir.a_mod", a)
    monkeypatch.setitem(MODS, "amchw.ir.b_mod", b)
    for check, culprit in ((test_no_import_cycles, "amchw.ir.a_mod"),
                           (test_dependencies_point_one_way, "amchw.sims.simulate")):
        try:
            check()
        except AssertionError as e:
            assert culprit in str(e)
        else:
            raise AssertionError(f"{check.__name__} missed {culprit}")
