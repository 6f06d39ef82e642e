"""`amchw report RECIPE.toml`: run a declared set of experiments and write one page (Markdown
and HTML, with PNG plots and a JSON of every figure) comparing them with the seeds' tables.

A recipe (docs/report.md has the full reference):

    title = "..."
    targets = ["edge-asic-45nm", "zynq7020"]    # hardware targets (names or TOML files)
    eval_frames = 2000                          # test frames per evaluation (at most)

    [data.rml2016]                              # a synthetic file (or path = "file.h5")
    profile = "rml2016"
    per_class_snr = 30

    [[experiment]]
    name = "vtcnn2"                              # a unique name; later entries refer to it
    kind = "train"                               # train | net-trim | pq | kd | imp | early-exit
    model = "vtcnn2"
    data = "rml2016"
    epochs = 4

Experiments run in order; each writes its checkpoints under OUT/checkpoints/ and is skipped
when they already exist (a report can be re-run after an interruption or a recipe edit).
DP and DQ are a net-trim or pq experiment whose `start` is a kd experiment. Every checkpoint
is then evaluated (float and integer accuracy per SNR on its test split) and simulated on each
target, dense and, for a compressed one, with its compressed storage; early-exit experiments
also get the per-SNR exit table and a threshold sweep.

The package: `recipe` (the schema and load_recipe; the kinds and their keys come from the
compression registry, amchw.compress.registry, plus "train"), `runner` (run_experiments, each
method through its registry entry), `measure` (accuracy, cycles and energy; the GRU-CNN
network untrained), `page` (the Markdown/HTML page; each method's section from its entry).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from .measure import gru_architecture, measure, model_input
from .page import Page, PageContext, build_page
from .recipe import KINDS, RecipeError, load_recipe
from .runner import Checkpoint, run_experiments

__all__ = ["KINDS", "Checkpoint", "Page", "PageContext", "RecipeError", "build_page",
           "gru_architecture", "load_recipe", "measure", "model_input", "run_experiments",
           "run_report"]


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return o


def run_report(recipe_path, out_dir, log=print) -> dict:
    """Run the recipe and write OUT/report.md, report.html, report.json and the plots."""
    from amchw.fileio import atomic_write

    recipe = load_recipe(recipe_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cks = run_experiments(recipe, out, log)
    measure(cks, recipe, log)
    gru = gru_architecture(recipe, log)
    seconds = time.perf_counter() - t0
    pg = build_page(recipe, cks, out, seconds, gru)
    title = recipe.get("title", "amchw report")
    data = {"schema": "amchw.report/1", "title": title, "seconds": seconds,
            "recipe": recipe, "checkpoints": [c.__dict__ for c in cks], "gru_cnn": gru}
    atomic_write(out / "report.json", json.dumps(_jsonable(data), indent=1).encode())
    atomic_write(out / "report.md", pg.markdown().encode())
    atomic_write(out / "report.html", pg.html(title).encode())
    return data
