"""The on-disk cache of lowered IR graphs and of integer-check results.

Building, calibrating and lowering a zoo model or a checkpoint needs torch and Brevitas
(seconds); reading a QONNX file needs onnx. The result, an IR graph, is a pure function of
its inputs, so `amchw simulate` and the other commands that take a MODEL store it and read it
back on the next run. Likewise the integer check (Numba kernels against the IR interpreter on
sample frames) is a pure function of the graph and the frames: once it has matched for a graph
and frames, running it again adds no information, so its result is stored too and the report
says that it was.

A key is the SHA-256 of everything the result depends on:

- the code: a digest of every Python source file of amchw, amchw.kernels and amchw.sims
  (so any change to amchw, released or not, starts a fresh cache) and amchw's version;
- zoo models: name, weight and activation bits, scale kind and seed, and the versions of
  torch, Brevitas and numpy (calibration runs in them);
- files (checkpoints, QONNX, IR graphs): the SHA-256 of the file's bytes, not its name or time;
- integer checks: the graph's key, the frames (count, seed, what they are) and whatever was
  done to the graph after loading (sparse format, exit rule).

Entries are written atomically (a reader never sees half a file) and an entry that cannot be
read (truncated, corrupt, from another layout) is ignored and rewritten, never trusted.

Where: $AMCHW_CACHE_DIR, else $XDG_CACHE_HOME/amchw, else ~/.cache/amchw. AMCHW_CACHE=off
(or 0, no, false) turns the cache off; `amchw cache clear` empties it and `amchw cache info`
says where it is and what it holds. Stored graphs are kept to $AMCHW_CACHE_MAX_MB (default
2048 MB): past it, the least recently used go first.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

LAYOUT = 1  # bump when what an entry holds changes
_PACKAGES = ("amchw", "amchw.kernels", "amchw.sims")


def enabled() -> bool:
    return os.environ.get("AMCHW_CACHE", "on").strip().lower() not in ("off", "0", "no",
                                                                         "false")


def cache_dir() -> Path:
    env = os.environ.get("AMCHW_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "amchw"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over the path and bytes of every .py file of amchw's packages, and the
    version."""
    import importlib.util

    from amchw import __version__

    h = hashlib.sha256(f"amchw {__version__} layout {LAYOUT}".encode())
    for pkg in _PACKAGES:
        spec = importlib.util.find_spec(pkg)
        for root in (spec.submodule_search_locations or ()) if spec else ():
            base = Path(root)
            for p in sorted(base.rglob("*.py")):
                if pkg == "amchw" and p.relative_to(base).parts[0] in ("kernels", "sims"):
                    continue  # an installed copy nests them; they are hashed as their own
                h.update(f"{pkg}/{p.relative_to(base).as_posix()}\0".encode())
                h.update(p.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def framework_versions() -> dict:
    """Versions of the libraries a zoo model's build and calibration run in."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "brevitas", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_key(kind: str, **fields) -> str:
    """The key of an entry: SHA-256 of its kind, its fields and the code digest."""
    doc = json.dumps({"kind": kind, "code": code_digest(), **fields}, sort_keys=True,
                     default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def _entry(kind: str, key: str, suffix: str) -> Path:
    return cache_dir() / kind / f"{key}{suffix}"


def load_graph(key: str):
    """(graph, meta dict) stored under `key`, or None (absent, disabled or unreadable)."""
    if not enabled():
        return None
    npz, meta = _entry("graphs", key, ".npz"), _entry("graphs", key, ".json")
    if not (npz.is_file() and meta.is_file()):
        return None
    from amchw.ir.io import load

    try:
        info = json.loads(meta.read_text())
        if info.get("key") != key:
            return None
        graph = load(npz)
        os.utime(npz)  # recently used: kept longest when the cache is trimmed
        return graph, info
    except Exception:  # a damaged entry is a miss; it is rewritten after the next lowering
        return None


def store_graph(key: str, graph, meta: dict) -> None:
    """Store a graph and what to say about it; a cache that cannot be written is skipped
    (the command's own result does not depend on it)."""
    if not enabled():
        return
    from amchw.ir.io import save

    try:
        save(graph, _entry("graphs", key, ".npz"))  # atomic
        _write_json(_entry("graphs", key, ".json"), {**meta, "key": key})
        _trim(cache_dir() / "graphs", max_bytes())
    except OSError:
        pass


def max_bytes() -> int:
    try:
        return int(float(os.environ.get("AMCHW_CACHE_MAX_MB", "2048")) * 2**20)
    except ValueError:
        return 2048 * 2**20


def _trim(folder: Path, limit: int) -> None:
    """Remove the least recently used graphs (by access, else modification time) until the
    folder holds at most `limit` bytes."""
    entries = []
    for npz in folder.glob("*.npz"):
        st = npz.stat()
        entries.append((max(st.st_atime, st.st_mtime), st.st_size, npz))
    total = sum(e[1] for e in entries)
    for _, size, npz in sorted(entries):
        if total <= limit:
            break
        for p in (npz, npz.with_suffix(".json")):
            p.unlink(missing_ok=True)
        total -= size


def load_result(kind: str, key: str) -> dict | None:
    if not enabled():
        return None
    p = _entry(kind, key, ".json")
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("result") if isinstance(doc, dict) and doc.get("key") == key else None


def store_result(kind: str, key: str, result: dict) -> None:
    if not enabled():
        return
    try:
        _write_json(_entry(kind, key, ".json"), {"key": key, "result": result})
    except OSError:
        pass


def _write_json(path: Path, doc: dict) -> None:
    from amchw.fileio import atomic_open

    with atomic_open(path, "w") as f:
        json.dump(doc, f)


def info() -> dict:
    """Where the cache is, whether it is on, and its entries and bytes per kind."""
    root = cache_dir()
    kinds = {}
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            files = [p for p in sub.iterdir() if p.is_file()]
            kinds[sub.name] = {"files": len(files),
                               "bytes": sum(p.stat().st_size for p in files)}
    return {"dir": str(root), "enabled": enabled(), "kinds": kinds}


def clear() -> int:
    """Remove every entry; the number of files removed."""
    root = cache_dir()
    n = 0
    if not root.is_dir():
        return 0
    for sub in root.iterdir():
        if sub.is_dir():
            for p in sub.iterdir():
                if p.is_file():
                    p.unlink()
                    n += 1
    return n
