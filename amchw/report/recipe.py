"""The report recipe's schema: its top-level keys, its experiment kinds ("train" and every
compression method of the registry that report recipes take) with their keys, and
load_recipe, which parses and checks a recipe (docs/report.md is the reference)."""

from __future__ import annotations

from pathlib import Path

from amchw.compress.methods import METHODS

#: a recipe's own kind: a zoo model trained (the start of the compression experiments)
TRAIN_KEYS = frozenset({"model", "data", "epochs", "batch_size", "lr", "patience", "max_train",
                        "seed", "weight_bits", "act_bits", "scales", "float_epochs", "schedule",
                        "split", "undersample", "float_only", "best_by"})
#: the kinds of experiment: train, then the registered methods that recipes take
KINDS = ("train",) + tuple(n for n, m in METHODS.items() if m.report is not None)
_COMMON = {"name", "kind", "label"}
_KEYS = {"train": TRAIN_KEYS} | {k: METHODS[k].recipe_keys for k in KINDS[1:]}
_TOP = {"title", "targets", "array", "eval_frames", "sparse_format", "min_sparsity", "data",
        "experiment", "notes", "gru_cells", "gru_sparsities"}


class RecipeError(ValueError):
    """A recipe that cannot run (names the file and the entry at fault)."""


def _check_train(e: dict) -> str | None:
    """What is wrong with a train experiment's training options, or None."""
    from amchw.data.splits import SPLIT_CHOICES
    from amchw.train import parse_schedule

    if "schedule" in e:
        try:
            parse_schedule(str(e["schedule"]))
        except ValueError as err:
            return f"schedule: {err}"
    if "split" in e and e["split"] not in SPLIT_CHOICES:
        return f"split must be one of {', '.join(SPLIT_CHOICES)}, got {e['split']!r}"
    if "best_by" in e and e["best_by"] not in ("loss", "accuracy"):
        return f"best_by must be loss or accuracy, got {e['best_by']!r}"
    if "float_only" in e and not isinstance(e["float_only"], bool):
        return f"float_only must be true or false, got {e['float_only']!r}"
    for key, low in (("float_epochs", 0), ("undersample", 1)):
        if key in e and not (isinstance(e[key], int) and e[key] >= low):
            return f"{key} must be an integer >= {low}, got {e[key]!r}"
    return None


def _typed(kind: str, type_: str) -> list[str]:
    """The recipe keys of `kind` of one option type ("ref", "model", "data")."""
    if kind == "train":
        return {"model": ["model"], "data": ["data"]}.get(type_, [])
    return [o.name for o in METHODS[kind].options if o.recipe and o.type == type_]


def load_recipe(path) -> dict:
    """Parse and check a recipe; RecipeError naming the file and entry otherwise."""
    from amchw.data.synthetic import PROFILES
    from amchw.models import ZOO

    from amchw.fileio import read_toml

    path = Path(path)
    r = read_toml(path, RecipeError)
    bad = set(r) - _TOP
    if bad:
        raise RecipeError(f"{path}: unknown key(s) {', '.join(sorted(bad))}")
    data = r.setdefault("data", {})
    for name, d in data.items():
        if "path" not in d and d.get("profile") not in PROFILES:
            raise RecipeError(f"{path}: [data.{name}] needs path = ... or profile = one of "
                              f"{', '.join(PROFILES)}")
    for key in ("gru_cells", "gru_sparsities"):
        v = r.get(key, [])
        if not isinstance(v, list) or not all(isinstance(c, (int, float)) for c in v):
            raise RecipeError(f"{path}: {key} must be a list of numbers")
    if any(not (isinstance(c, int) and c >= 1) for c in r.get("gru_cells", [])):
        raise RecipeError(f"{path}: gru_cells must be positive integers")
    if any(not 0 <= s < 1 for s in r.get("gru_sparsities", [])):
        raise RecipeError(f"{path}: gru_sparsities must be in [0, 1)")
    exps = r.setdefault("experiment", [])
    if not exps:
        raise RecipeError(f"{path}: no [[experiment]] entries")
    names: dict[str, dict] = {}
    for i, e in enumerate(exps, 1):
        where = f"{path}: experiment {i} ({e.get('name', '?')})"
        if "name" not in e or not str(e["name"]).replace("-", "").replace("_", "").replace(
                ".", "").isalnum():
            raise RecipeError(f"{where}: needs a name of letters, digits, '-', '_' or '.'")
        if e["name"] in names:
            raise RecipeError(f"{where}: the name {e['name']!r} is used twice")
        kind = e.get("kind")
        if kind not in KINDS:
            raise RecipeError(f"{where}: kind must be one of {', '.join(KINDS)}")
        extra = set(e) - _COMMON - _KEYS[kind]
        if extra:
            raise RecipeError(f"{where}: unknown key(s) for {kind}: {', '.join(sorted(extra))}")
        method = METHODS.get(kind)
        refs = _typed(kind, "ref")
        for ref in refs:
            if ref in e and e[ref] not in names:
                raise RecipeError(f"{where}: {ref} = {e[ref]!r} is not an earlier experiment")
        for ref in method.inputs if method else ():
            if ref not in e:
                raise RecipeError(f"{where}: needs {ref} = <an earlier experiment>")
        for key in _typed(kind, "model"):
            if e.get(key) not in ZOO:
                raise RecipeError(f"{where}: {key} must be a zoo model, got {e.get(key)!r}")
        for key in _typed(kind, "data"):
            if e.get(key) not in data:
                raise RecipeError(f"{where}: {key} = {e.get(key)!r} is not a [data.NAME] entry")
        for o in method.options if method else ():
            if o.recipe and o.required and o.type not in ("ref", "model", "data") and \
                    o.name not in e:
                raise RecipeError(f"{where}: needs {o.name} = {o.hint or '...'}")
        msg = method.check_recipe(e, names) if method and method.check_recipe else \
            _check_train(e) if kind == "train" else None
        if msg:
            raise RecipeError(f"{where}: {msg}")
        names[e["name"]] = e
    return r
