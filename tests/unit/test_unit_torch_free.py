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


def test_what_the_unit_tests_import_loads_no_torch():
    """Not only the test files: the amchw modules they import load no torch either."""
    import subprocess
    import sys

    mods = set()
    for f in Path(__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.startswith("amchw"):
                mods.add(node.module)
    assert "amchw.compress.nettrim" in mods
    code = ("import importlib, sys\n"
            f"for m in {sorted(mods)!r}: importlib.import_module(m)\n"
            "print(sorted(k for k in ('torch', 'brevitas') if k in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out
