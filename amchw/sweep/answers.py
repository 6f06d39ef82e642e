"""A sweep's answers: the Pareto fronts (by default latency vs energy per frame, and with
accuracy where the points have it), the best point of each [[best]] question of the spec under
its conditions, and the plot of the front; written to summary.json and pareto.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .spec import Spec, parse_condition


def _col(table, name: str) -> np.ndarray:
    vals = table.column(name).to_pylist()
    try:
        return np.array([np.nan if v is None else v for v in vals], dtype=float)
    except (TypeError, ValueError):
        return np.array(vals, dtype=object)


def _signed(table, objective: str) -> np.ndarray:
    """The objective as a quantity to minimise (a leading '-' maximises the column)."""
    v = _col(table, objective.lstrip("-"))
    return -v if objective.startswith("-") else v


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Indices of the rows of `values` (n points x k objectives, all minimised, no NaN) that no
    other row dominates (<= in every objective and < in one), in the order of the first
    objective (ties: the next ones, then the index)."""
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort(tuple(values[:, j] for j in range(values.shape[1] - 1, -1, -1)))
    front: list[int] = []
    for i in order:
        v = values[i]
        if front:
            f = values[front]
            if np.any(np.all(f <= v, axis=1) & np.any(f < v, axis=1)):
                continue
        front.append(int(i))
    return np.array(front, dtype=int)


def _mask(table, where: dict) -> np.ndarray:
    ok = np.ones(table.num_rows, dtype=bool)
    for col, cond in where.items():
        if col not in table.column_names:
            raise KeyError(col)
        op, val = parse_condition(cond)
        v = _col(table, col)
        if op == "==":
            ok &= np.array([x == val for x in v.tolist()], dtype=bool)
            continue
        with np.errstate(invalid="ignore"):
            v = v.astype(float)
            ok &= {"<=": v <= val, ">=": v >= val, "<": v < val, ">": v > val}[op]
    return ok


def _row(table, i: int) -> dict:
    return {c: table.column(c)[int(i)].as_py() for c in table.column_names}


def summarise(spec: Spec, table, out: Path, log=print) -> dict:
    """Fronts and best points of the merged table; writes summary.json and pareto.png."""
    err = _col(table, "error")
    ok = np.array([e is None or (isinstance(e, float) and np.isnan(e)) for e in err.tolist()])
    fronts = list(spec.pareto)
    acc = _col(table, "accuracy")
    if np.isfinite(acc[ok]).any() and not any("-accuracy" in f for f in fronts):
        fronts.append(("latency_us", "energy_uj", "-accuracy"))
    summary: dict = {"schema": "amchw.sweep-summary/1", "title": spec.title,
                     "points": table.num_rows, "errors": int((~ok).sum()), "pareto": [],
                     "best": []}
    models = _col(table, "model")
    groups = [("all models", ok)] + [(m, ok & (models == m)) for m in
                                     sorted({str(x) for x in models[ok].tolist()})]
    if len(groups) == 2:
        groups = groups[:1]
    for objs in fronts:
        vals = np.stack([_signed(table, o) for o in objs], axis=1)
        for label, sel in groups:   # the front over all points, then each model's own
            good = sel & np.all(np.isfinite(vals), axis=1)
            idx = np.flatnonzero(good)
            front = idx[pareto_front(vals[good])]
            summary["pareto"].append({"objectives": list(objs), "models": label,
                                      "points": [_row(table, i) for i in front]})
            log(f"[pareto] {' vs '.join(objs)} ({label}): {len(front)} of {len(idx):,} points")
    for b in spec.best:
        try:
            m = ok & _mask(table, b.where)
        except KeyError as e:
            raise ValueError(f"{spec.path}: [[best]] {b.name!r}: no column {e}; columns: "
                             f"{', '.join(table.column_names)}") from None
        v = _signed(table, b.objective)
        m &= np.isfinite(v)
        pick = None
        if m.any():
            idx = np.flatnonzero(m)
            pick = _row(table, idx[np.lexsort((idx, v[idx]))[0]])
        summary["best"].append({"name": b.name, "objective": b.objective, "where": b.where,
                                "candidates": int(m.sum()), "point": pick})
        log(f"[best] {b.name}: " + ("no point meets the conditions" if pick is None else
                                    f"point {pick['point']} ({pick['model']} {pick['format']} "
                                    f"on {pick['target']} {pick['array']} {pick['dataflow']}, "
                                    f"{b.objective.lstrip('-')} "
                                    f"{pick[b.objective.lstrip('-')]:.4g})"))
    _plot(table, ok, [f for f in summary["pareto"] if f["objectives"][:2] == ["latency_us",
                                                                           "energy_uj"]
                      and len(f["objectives"]) == 2], out / "pareto.png")
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(tmp, out / "summary.json")
    return summary


def _plot(table, ok, fronts, path: Path) -> None:
    """Every point (latency vs energy per frame, log-log, one colour per model) and the
    latency-energy fronts: each model's in its colour, the overall one in black."""
    try:
        from amchw.plots import _pyplot, _save

        plt = _pyplot()
    except (ImportError, RuntimeError):
        return
    lat, en = _col(table, "latency_us"), _col(table, "energy_uj")
    models = _col(table, "model")
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    colour = {}
    for i, m in enumerate(sorted({str(x) for x in models[ok].tolist()})):
        sel = ok & (models == m)
        colour[m] = f"C{i % 10}"
        ax.scatter(lat[sel] / 1000, en[sel], s=6, alpha=0.35, color=colour[m], label=m)
    for f in fronts:
        fl = np.array([p["latency_us"] for p in f["points"]]) / 1000
        fe = np.array([p["energy_uj"] for p in f["points"]])
        c = colour.get(f["models"], "k")
        ax.plot(fl, fe, "-o", color=c, ms=3, lw=1.2 if c == "k" else 0.9,
                label=f"Pareto front ({f['models']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per batch (ms)")
    ax.set_ylabel("energy per frame (uJ)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, plt, path)
