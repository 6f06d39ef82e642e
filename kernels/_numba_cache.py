"""A Numba cache folder per version of the kernel sources (see the package docstring); set
when this module is imported, which the package does before any kernel."""

import hashlib
import os
from pathlib import Path

import numba

from ._isa import ISA


def kernels_digest() -> str:
    """SHA-256 (first 16 hex digits) of every .py file of this package, in name order."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def use_versioned_cache() -> None:
    """Point Numba's cache at <base>/amchw-kernels-<digest>, base = $NUMBA_CACHE_DIR or
    $XDG_CACHE_HOME/amchw-numba or ~/.cache/amchw-numba. Where that folder cannot be made,
    Numba keeps its own choice (beside the sources). The chosen dot-product ISA (_isa.ISA)
    is part of the name: the VNNI kernels compiled for one are not the other's."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = str(Path(xdg) / "amchw-numba") if xdg else str(Path.home() / ".cache" /
                                                              "amchw-numba")
    target = Path(base) / f"amchw-kernels-{kernels_digest()}-{ISA or 'float'}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    numba.config.CACHE_DIR = str(target)


use_versioned_cache()
