"""tests/unit needs no torch: no file here imports torch or brevitas (the design's rule for
unit tests; tests that need a model live in tests/models)."""

import ast
from pathlib import Path

FORBIDDEN = ("torch", "brevitas")


def _imports(path: Path) -> set[str]:
    """The top-level package of every import statement in the file, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_unit_test_imports_torch_or_brevitas():
    files = sorted(Path(__file__).parent.rglob("*.py"))
    assert Path(__file__) in files
    bad = {f.name: sorted(_imports(f) & set(FORBIDDEN)) for f in files}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_the_check_sees_imports(tmp_path):
    p = tmp_path / "t.py"
    p.write_text("import os\ndef f():\n    from torch import nn\n    import brevitas.nn\n")
    assert _imports(p) & set(FORBIDDEN) == {"torch", "brevitas"}
