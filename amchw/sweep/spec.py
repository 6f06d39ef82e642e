"""A sweep's spec (TOML): the grid of models, weight formats, targets and their overrides,
dataflows, timing modes and batch sizes, and the answers asked of it. docs/sweep.md is the
reference; load_spec parses and checks one, naming the file and key at fault."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: every list key of the grid, in the order the points enumerate them (the last varies fastest)
GRID_KEYS = ("models", "formats", "targets", "arrays", "freq_mhz", "dram_bytes_per_cycle",
             "sram_kib", "dataflows", "timings", "batches", "exit_thresholds")
_TOP = set(GRID_KEYS) | {"title", "data", "eval_frames", "chunk", "scales", "weight_bits",
                         "act_bits", "seed", "best", "pareto"}
_FORMAT = re.compile(r"(dense)|(gated|csr|csc)@(0?\.\d+|1(?:\.0*)?|0)|(\d+):(\d+)|pq(\d+):(\d+)")
_COND = re.compile(r"\s*(<=|>=|<|>|==)\s*(\S+)\s*")
#: the columns a best-point objective or a Pareto front may use (lower is better; a leading
#: "-" maximises)
FIGURES = ("cycles", "latency_us", "inferences_per_s", "energy_uj", "macs", "dram_bytes",
           "sram_bytes", "weight_bytes", "utilisation", "accuracy")


class SpecError(ValueError):
    """A sweep spec that cannot run (names the file and the key at fault)."""


@dataclass(frozen=True)
class Best:
    """One question: the point that minimises `objective` (maximises it with a leading "-")
    among the points meeting every condition of `where` (column -> value, or "<= x" etc.)."""
    name: str
    objective: str
    where: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    path: str
    title: str
    models: tuple                         # (model, its data file or None) pairs
    formats: tuple = ("dense",)
    targets: tuple = ("edge-asic-45nm",)
    arrays: tuple = (None,)               # None: each target's own array
    freq_mhz: tuple = (None,)
    dram_bytes_per_cycle: tuple = (None,)
    sram_kib: tuple = (None,)             # each of the ifmap, filter and ofmap buffers
    dataflows: tuple = (None,)            # None: each target's own dataflow
    timings: tuple = ("pipelined",)
    batches: tuple = (1,)
    exit_thresholds: tuple = (None,)      # early-exit models with data: the exit rule's T
    data: str | None = None               # accuracy of each (model, format) on its test split
    eval_frames: int = 2000
    chunk: int = 0                        # points per task; 0: chosen from the grid's size
    scales: str = "po2"
    weight_bits: int = 8
    act_bits: int = 8
    seed: int = 0
    best: tuple = ()
    pareto: tuple = (("latency_us", "energy_uj"),)

    def grid(self) -> dict[str, tuple]:
        return {k: getattr(self, k) for k in GRID_KEYS}

    def size(self) -> int:
        n = 1
        for v in self.grid().values():
            n *= len(v)
        return n

    def digest(self) -> str:
        """What identifies the sweep's points (not its answers): a resumed sweep must match."""
        d = {k: v for k, v in asdict(self).items()
             if k not in ("path", "title", "best", "pareto", "chunk")}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def parse_format(text: str) -> tuple[str, float | None]:
    """'dense' -> ('dense', None); 'csc@0.9' -> ('csc', 0.9); '2:4' -> ('2:4', None);
    'pq2:256' -> ('pq2:256', None). SpecError otherwise."""
    m = _FORMAT.fullmatch(str(text).strip())
    if m is None:
        raise SpecError(f"format {text!r}: expected dense, gated@S, csr@S, csc@S (S the "
                        "sparsity to prune to, 0..1), N:M (e.g. 2:4) or pqP:K (e.g. pq2:256)")
    if m.group(2):
        return m.group(2), float(m.group(3))
    if m.group(4):
        n, mm = int(m.group(4)), int(m.group(5))
        if not 1 <= n <= mm <= 64:
            raise SpecError(f"format {text!r}: N:M needs 1 <= N <= M <= 64")
        return f"{n}:{mm}", None
    if m.group(6):
        p, k = int(m.group(6)), int(m.group(7))
        if p < 1 or k < 2 or k & (k - 1):
            raise SpecError(f"format {text!r}: pqP:K needs P >= 1 and K a power of two >= 2")
        return f"pq{p}:{k}", None
    return "dense", None


def parse_condition(v):
    """A `where` value: a number or text compared for equality, or "<= x" / ">= x" / "< x" /
    "> x" / "== x" -> (operator, value)."""
    if isinstance(v, str):
        m = _COND.fullmatch(v)
        if m:
            try:
                return m.group(1), float(m.group(2))
            except ValueError:
                return m.group(1), m.group(2)
    return "==", v


def _list(r: dict, key: str, kind, where: str, default):
    if key not in r:
        return default
    v = r[key]
    if not isinstance(v, list) or not v:
        raise SpecError(f"{where}: {key} must be a non-empty list")
    for x in v:
        if not isinstance(x, kind) or isinstance(x, bool):
            raise SpecError(f"{where}: {key} holds {x!r}, not a {getattr(kind, '__name__', kind)}")
    return tuple(v)


def load_spec(path) -> Spec:
    """Parse and check a sweep spec; SpecError naming the file and key otherwise."""
    from amchw.sims.hardware import TargetError, parse_array

    path = Path(path)
    where = str(path)
    from amchw.fileio import read_toml

    r = read_toml(path, SpecError)
    bad = set(r) - _TOP
    if bad:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; known: "
                        f"{', '.join(sorted(_TOP))}")
    if "models" not in r:
        raise SpecError(f"{where}: needs models = [...] (zoo names, checkpoints, QONNX files)")
    kw: dict = {"path": where, "title": str(r.get("title", path.stem)),
                "models": _models(r, where, path)}
    kw["formats"] = _list(r, "formats", str, where, ("dense",))
    for f in kw["formats"]:
        try:
            parse_format(f)
        except SpecError as e:
            raise SpecError(f"{where}: formats: {e}") from None
    kw["targets"] = _list(r, "targets", str, where, ("edge-asic-45nm",))
    arrays = _list(r, "arrays", str, where, (None,))
    for a in arrays:
        if a is not None:
            try:
                parse_array(a)
            except TargetError as e:
                raise SpecError(f"{where}: arrays: {str(e).replace('--array', 'array')}") \
                    from None
    kw["arrays"] = arrays
    for key in ("freq_mhz", "dram_bytes_per_cycle", "sram_kib"):
        v = _list(r, key, (int, float), where, (None,))
        if v != (None,) and any(not x > 0 for x in v):
            raise SpecError(f"{where}: {key} must hold positive numbers")
        kw[key] = v
    kw["dataflows"] = _list(r, "dataflows", str, where, (None,))
    for d in kw["dataflows"]:
        if d not in (None, "os", "ws", "is"):
            raise SpecError(f"{where}: dataflows must be os, ws or is, got {d!r}")
    kw["timings"] = _list(r, "timings", str, where, ("pipelined",))
    for t in kw["timings"]:
        if t not in ("pipelined", "scalesim"):
            raise SpecError(f"{where}: timings must be pipelined or scalesim, got {t!r}")
    kw["exit_thresholds"] = _list(r, "exit_thresholds", (int, float), where, (None,))
    if kw["exit_thresholds"] != (None,) and any(not t >= 0 for t in kw["exit_thresholds"]):
        raise SpecError(f"{where}: exit_thresholds must be numbers >= 0 (base-10 entropy)")
    kw["batches"] = _list(r, "batches", int, where, (1,))
    if any(b < 1 for b in kw["batches"]):
        raise SpecError(f"{where}: batches must be positive integers")
    for key, low in (("eval_frames", 1), ("chunk", 0), ("weight_bits", 2), ("act_bits", 2),
                     ("seed", 0)):
        if key in r:
            if not isinstance(r[key], int) or isinstance(r[key], bool) or r[key] < low:
                raise SpecError(f"{where}: {key} must be an integer >= {low}")
            kw[key] = r[key]
    if "scales" in r:
        if r["scales"] not in ("po2", "float"):
            raise SpecError(f"{where}: scales must be po2 or float")
        kw["scales"] = r["scales"]
    if "data" in r:
        kw["data"] = _data(r["data"], f"{where}: data", path)
    kw["best"] = tuple(_best(b, i, where) for i, b in enumerate(r.get("best", []), 1))
    if "pareto" in r:
        p = r["pareto"]
        if not isinstance(p, list) or not all(
                isinstance(x, list) and len(x) >= 2 and all(c.lstrip("-") in FIGURES for c in x)
                for x in p):
            raise SpecError(f"{where}: pareto must be a list of lists of two or more of "
                            f"{', '.join(FIGURES)} (a leading '-' maximises)")
        kw["pareto"] = tuple(tuple(x) for x in p)
    return Spec(**kw)


def _data(v, where: str, spec_path: Path) -> str:
    """A data file path (relative: to the spec's folder when it exists there)."""
    if not isinstance(v, str):
        raise SpecError(f"{where} must be the path of a RadioML-layout HDF5 file")
    data = Path(v)
    if not data.is_absolute() and (spec_path.parent / data).exists():
        data = spec_path.parent / data
    return str(data)


def _models(r: dict, where: str, spec_path: Path) -> tuple:
    """models: names or paths, or tables {model = ..., data = ...} (that model's accuracy on
    its own data file); returned as (model, data or None) pairs."""
    v = r["models"]
    if not isinstance(v, list) or not v:
        raise SpecError(f"{where}: models must be a non-empty list")
    out = []
    for m in v:
        if isinstance(m, str):
            out.append((m, None))
        elif isinstance(m, dict) and isinstance(m.get("model"), str) and set(m) <= {
                "model", "data"}:
            out.append((m["model"], _data(m["data"], f"{where}: models: {m['model']}: data",
                                          spec_path) if "data" in m else None))
        else:
            raise SpecError(f"{where}: models holds {m!r}: give a zoo name or file, or a "
                            "table {model = ..., data = ...}")
    return tuple(out)


def _best(b, i: int, where: str) -> Best:
    at = f"{where}: [[best]] {i}"
    if not isinstance(b, dict):
        raise SpecError(f"{at}: must be a table")
    extra = set(b) - {"name", "objective", "where"}
    if extra:
        raise SpecError(f"{at}: unknown key(s) {', '.join(sorted(extra))}")
    obj = b.get("objective")
    if not isinstance(obj, str) or obj.lstrip("-") not in FIGURES:
        raise SpecError(f"{at}: objective must be one of {', '.join(FIGURES)} (a leading '-' "
                        "maximises)")
    cond = b.get("where", {})
    if not isinstance(cond, dict):
        raise SpecError(f"{at}: where must be a table of column = value or \"<= x\"")
    return Best(str(b.get("name", f"best {i}")), obj, dict(cond))
