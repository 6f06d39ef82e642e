"""The wheel must contain every subpackage (kernels/ and sims/ install as amchw.kernels and
amchw.sims through package-dir; a package missing from pyproject imports in an editable install
yet vanishes from the wheel)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_packages() -> set[str]:
    pkgs = set()
    for top, name in (("amchw", "amchw"), ("kernels", "amchw.kernels"), ("sims", "amchw.sims")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            pkgs.add(".".join([name, *rel.parts]) if rel.parts else name)
    return pkgs


def test_wheel_contains_every_subpackage(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("amchw-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in sorted(source_packages())
               if p.replace(".", "/") + "/__init__.py" not in names]
    assert not missing, f"subpackages missing from the wheel: {missing}"
    assert "amchw/kernels/conv.py" in names and "amchw/sims/__init__.py" in names
