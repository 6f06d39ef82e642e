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
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amchw import seeds

KINDS = ("train", "net-trim", "pq", "kd", "imp", "early-exit")
_COMMON = {"name", "kind", "label"}
_KEYS = {
    "train": {"model", "data", "epochs", "batch_size", "lr", "patience", "max_train", "seed",
              "weight_bits", "act_bits", "scales"},
    "net-trim": {"start", "layer", "epsilon", "frames", "rho", "max_iter"},
    "pq": {"start", "layer", "subspaces", "centroids", "retrain_epochs", "train_fraction",
           "batch_size", "lr"},
    "kd": {"teacher", "student", "temperature", "alpha", "convention", "epochs", "batch_size",
           "lr", "patience", "max_train", "benchmark"},
    "imp": {"start", "schedule", "prune_epochs", "epochs", "initial_sparsity", "frequency",
            "power", "batch_size", "lr", "patience", "max_train", "layers"},
    "early-exit": {"model", "data", "epochs", "batch_size", "lr", "patience", "max_train",
                   "seed", "joint", "threshold", "sweep"},
}
_TOP = {"title", "targets", "array", "eval_frames", "sparse_format", "min_sparsity", "data",
        "experiment", "notes", "gru_cells", "gru_sparsities"}


class RecipeError(ValueError):
    """A recipe that cannot run (names the file and the entry at fault)."""


def load_recipe(path) -> dict:
    """Parse and check a recipe; RecipeError naming the file and entry otherwise."""
    from amchw.data.synthetic import PROFILES
    from amchw.models import ZOO

    path = Path(path)
    try:
        r = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e})") from None
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
        for ref in ("start", "teacher", "benchmark"):
            if ref in _KEYS[kind] and ref in e and e[ref] not in names:
                raise RecipeError(f"{where}: {ref} = {e[ref]!r} is not an earlier experiment")
        if kind == "imp" and names.get(e.get("start"), {}).get("kind") == "imp":
            raise RecipeError(f"{where}: start an imp from a trained model, not from an imp")
        for ref in ("start", "teacher"):
            if ref in _KEYS[kind] and ref not in e:
                raise RecipeError(f"{where}: needs {ref} = <an earlier experiment>")
        for key in ("model", "student"):
            if key in _KEYS[kind] and e.get(key) not in ZOO:
                raise RecipeError(f"{where}: {key} must be a zoo model, got {e.get(key)!r}")
        if kind in ("train", "early-exit") and e.get("data") not in data:
            raise RecipeError(f"{where}: data = {e.get('data')!r} is not a [data.NAME] entry")
        if kind == "pq" and "subspaces" not in e:
            raise RecipeError(f"{where}: needs subspaces = P")
        names[e["name"]] = e
    return r


# ------------------------------------------------------------------------------ running

@dataclass
class Checkpoint:
    """One model the report measures."""
    experiment: str
    kind: str
    label: str
    path: str
    data: str
    info: dict = field(default_factory=dict)
    eval: dict | None = None
    hardware: dict = field(default_factory=dict)
    early_exit: dict | None = None


def _data_files(recipe: dict, out: Path, log) -> dict[str, str]:
    from amchw.data.radioml import synth_to_h5
    from amchw.data.synthetic import PROFILES

    files = {}
    for name, d in recipe["data"].items():
        if "path" in d:
            files[name] = str(d["path"])
            continue
        # the file name carries a digest of its settings: an edited entry gets a new file
        tag = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
        f = out / "data" / f"{name}-{tag}.h5"
        if not f.exists():
            prof = PROFILES[d["profile"]]
            snrs = tuple(d.get("snrs", prof.snrs))
            log(f"[data] {name}: synthetic {d['profile']}, {d.get('per_class_snr', 20)} frames "
                f"per class and SNR, SNRs {snrs[0]}..{snrs[-1]} dB")
            f.parent.mkdir(parents=True, exist_ok=True)
            synth_to_h5(f, d["profile"], int(d.get("per_class_snr", 20)), snrs,
                        seed=int(d.get("seed", 0)), channel=d.get("channel", "radioml"))
        files[name] = str(f)
    return files


def _train_kw(e: dict) -> dict:
    return {k: e[k] for k in ("epochs", "batch_size", "lr", "patience", "max_train")
            if k in e}


def _ck_info(path: str, key: str) -> dict:
    from amchw.checkpoint import load

    return dict(load(path).get(key) or {})


def run_experiments(recipe: dict, out: Path, log=print) -> list[Checkpoint]:
    """Run (or reuse) every experiment's checkpoints; no evaluation yet."""
    from amchw.checkpoint import model_from_checkpoint
    from amchw.compress import defaults, pipeline
    from amchw.compress.imp import imp_schedule
    from amchw.compress.multibranch import MultiBranch
    from amchw.train import TrainConfig, train

    files = _data_files(recipe, out, log)
    ckdir = out / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    done: dict[str, Checkpoint] = {}
    result: list[Checkpoint] = []

    def quiet(msg):
        log(f"    {msg}")

    for e in recipe["experiment"]:
        name, kind = e["name"], e["kind"]
        path = str(ckdir / f"{name}.pt")
        label = e.get("label", name)
        t0 = time.perf_counter()
        exists = Path(path).exists()
        log(f"[{kind}] {name}" + (" (reused)" if exists and kind != "imp" else ""))
        if kind in ("train", "early-exit"):
            cfg = TrainConfig(model=e["model"], data=files[e["data"]], out=path,
                              seed=int(e.get("seed", 0)),
                              quant={k: e[k] for k in ("weight_bits", "act_bits", "scales")
                                     if k in e}, **_train_kw(e))
            obj = MultiBranch() if kind == "early-exit" and not e.get("joint") else None
            train(cfg, log=quiet, objective=obj)    # resumes, or returns a finished run
            ck = Checkpoint(name, kind, label, path, files[e["data"]])
            ck.info = {"model": e["model"]}
        elif kind == "net-trim":
            src = done[e["start"]]
            if not exists:
                pipeline.net_trim(src.path, path, e.get("layer"),
                                  e.get("epsilon", defaults.NET_TRIM_EPSILON),
                                  e.get("frames", defaults.NET_TRIM_FRAMES), src.data,
                                  **{k: e[k] for k in ("rho", "max_iter") if k in e})
            ck = Checkpoint(name, kind, label, path, src.data, _ck_info(path, "net_trim"))
        elif kind == "pq":
            src = done[e["start"]]
            if not exists:
                pipeline.product_quantization(
                    src.path, path, e.get("layer"), e["subspaces"], e.get("centroids", 256),
                    e.get("retrain_epochs", 0), e.get("train_fraction", 0.1), src.data,
                    log=quiet, **{k: e[k] for k in ("batch_size", "lr") if k in e})
            ck = Checkpoint(name, kind, label, path, src.data, _ck_info(path, "pq"))
            if ck.info.get("no_retrain"):   # the one-shot result is measured too
                result.append(Checkpoint(name, kind, f"{label} (no retraining)",
                                         ck.info["no_retrain"], src.data,
                                         dict(ck.info, retrain_epochs=0)))
        elif kind == "kd":
            teacher = done[e["teacher"]]
            if not exists:
                pipeline.distill(teacher.path, e["student"], path, teacher.data,
                                 e.get("temperature", 10.0), e.get("alpha", 0.5),
                                 e.get("convention", "edge"), log=quiet, **_train_kw(e))
            ck = Checkpoint(name, kind, label, path, teacher.data, _ck_info(path, "method"))
        else:  # imp
            src = done[e["start"]]
            _, sck = model_from_checkpoint(src.path)
            prune_epochs = e.get("prune_epochs", defaults.IMP_PRUNE_EPOCHS)
            kw = defaults.imp_training(prune_epochs)
            kw.update(_train_kw(e))
            base = pipeline._config(sck, src.data, "unused", **kw)
            stages = imp_schedule(base, src.path, e.get("schedule", list(defaults.IMP_SCHEDULE)),
                                  str(ckdir / name), prune_epochs,
                                  e.get("initial_sparsity", defaults.IMP_INITIAL_SPARSITY),
                                  e.get("frequency", defaults.IMP_FREQUENCY),
                                  e.get("power", defaults.IMP_POWER), e.get("layers"), log=quiet)
            prev = src.label
            for st in stages:
                c = Checkpoint(name, kind, f"{label} s={st.target:g}", st.checkpoint, src.data,
                               {"target": st.target, "sparsity": st.sparsity,
                                "parameters": st.parameters,
                                "total_parameters": st.total_parameters,
                                "footprint_bytes": st.footprint_bytes, "original": prev})
                prev = c.label
                result.append(c)
            done[name] = result[-1]
            log(f"    {time.perf_counter() - t0:.0f} s")
            continue
        ck.info.setdefault("seconds", round(time.perf_counter() - t0, 1))
        done[name] = ck
        result.append(ck)
    return result


# --------------------------------------------------------------------------- measuring

def _compressed_graph(graph, ck: Checkpoint, fmt: str, min_sparsity: float):
    """The graph with the checkpoint's compressed storage: PQ -> pqP:K on its layer, pruning
    -> `fmt` on layers at least min_sparsity zero; None if nothing is compressed."""
    from amchw.ir.sparse import set_format

    if ck.kind == "pq":
        names = [n.name for n in graph.nodes if n.source == ck.info["layer"]]
        g, _ = set_format(graph, f"pq{ck.info['subspaces']}:{ck.info['centroids']}", 0.0,
                          layers=names)
    elif ck.kind in ("net-trim", "imp"):
        g, _ = set_format(graph, fmt, min_sparsity)
    else:
        return None
    return g if any(getattr(n.op, "w_format", "dense") != "dense" for n in g.nodes) else None


def _sim_summary(rep) -> dict:
    t = rep.totals()
    return {"cycles": t["cycles"], "energy_uj": t["energy_per_inference_uj"],
            "weight_bytes": t["weight_bytes"], "macs": t["macs_per_inference"],
            "latency_us": t["latency_us"]}


def measure(cks: list[Checkpoint], recipe: dict, log=print) -> None:
    """Evaluate and simulate every checkpoint (in place)."""
    import torch

    from amchw.checkpoint import model_from_checkpoint, split_frames
    from amchw.compress.imp import footprint
    from amchw.evaluate import evaluate_checkpoint
    from amchw.ir.early_exit import add_exit_rule, decide, error_bound, run_early_exit
    from amchw.lower.brevitas import lower
    from amchw.sims.early_exit import early_exit, split_layers, sweep
    from amchw.sims.simulate import simulate

    targets = _targets(recipe)
    fmt = recipe.get("sparse_format", "csr")
    min_sp = float(recipe.get("min_sparsity", 0.5))
    n_eval = int(recipe.get("eval_frames", 2000))
    exps = {e["name"]: e for e in recipe["experiment"]}
    for ck in cks:
        log(f"[measure] {ck.label}")
        ck.eval = evaluate_checkpoint(ck.path, ck.data, max_frames=n_eval)
        model, saved = model_from_checkpoint(ck.path)
        fp = footprint(model, int(saved["config"].get("weight_bits", 8)))
        ck.info.update({"model": saved["model"], "parameters": fp["parameters"],
                        "total_parameters": fp["total_parameters"]})
        x, y, snr, _, which = split_frames(ck.data, model_input(saved["model"]), saved, "test",
                                           n_eval)
        graph = lower(model, torch.as_tensor(x[:8]), name=saved["model"])
        comp = _compressed_graph(graph, ck, fmt, min_sp)
        for t in targets:
            hw = {"dense": _sim_summary(simulate(graph, t))}
            if comp is not None:
                hw["compressed"] = _sim_summary(simulate(comp, t))
                hw["format"] = sorted({n.op.w_format for n in comp.nodes
                                       if getattr(n.op, "w_format", "dense") != "dense"})
            ck.hardware[t.name] = hw
        if ck.kind == "early-exit":
            e = exps[ck.experiment]
            thr = float(e.get("threshold", 0.05))
            g = add_exit_rule(graph, thr, exit_output=graph.outputs[0])
            r = run_early_exit(g, x, "fast", exit_output=graph.outputs[0])
            pe, pf = r["exit_logits"].argmax(1), r["final_logits"].argmax(1)
            ck.early_exit = {"threshold": thr, "frames": int(x.shape[0]), "which": which,
                             "error_bound": error_bound(g), "targets": {}}
            ts = [float(v) for v in e.get("sweep", [0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0])]
            for t in targets:
                split = split_layers(g, simulate(g, t), exit_output=graph.outputs[0])
                rep = early_exit(split, r["flags"], snr, y, pe, pf, threshold=thr)
                rep.sweep = sweep(split, {v: decide(g, r["codes"], v) for v in ts}, y, pe, pf)
                ck.early_exit["targets"][t.name] = rep.to_dict()


def _targets(recipe: dict) -> list:
    from amchw.sims.hardware import get_target, parse_array

    out = []
    for name in recipe.get("targets", ["edge-asic-45nm"]):
        t = get_target(name)
        if recipe.get("array"):
            t = t.with_array(*parse_array(recipe["array"]))
        out.append(t)
    return out


def gru_architecture(recipe: dict, log=print) -> dict:
    """The GRU-CNN seed's network on the hardware without training (its training steps the
    1024-step recurrence through Brevitas op by op, minutes per batch on a CPU): per cell
    count (Table 2) the parameters, footprint and cycles/latency/energy per frame; per
    sparsity (Table 3) the 80-cell model magnitude-pruned once, its non-zero parameters,
    footprint and cycles/energy with its compressed storage. Weights are random and
    calibrated on synthetic frames: the cycles of a dense layer do not depend on them, and a
    pruned layer's depend only on where its zeros are."""
    import torch

    from amchw.compress.imp import footprint
    from amchw.compress.prune import magnitude_prune
    from amchw.data.synthetic import frames_for
    from amchw.ir.sparse import set_format
    from amchw.lower.brevitas import lower
    from amchw.models import QuantConfig
    from amchw.models.calibrate import calibrate
    from amchw.models.gru import CELLS, gru_cnn
    from amchw.sims.simulate import simulate

    targets = _targets(recipe)
    x = torch.as_tensor(frames_for("gru-cnn", 8, seed=0))

    def measure_one(model, fmt=None):
        model = calibrate(model, x, seed=0).eval()
        g = lower(model, x[:2], name="gru-cnn")
        if fmt:
            g, _ = set_format(g, fmt, float(recipe.get("min_sparsity", 0.5)))
        hw = {}
        for t in targets:
            tot = simulate(g, t).totals()
            hw[t.name] = {"cycles": tot["cycles"], "latency_us": tot["latency_us"],
                          "energy_uj": tot["energy_per_inference_uj"],
                          "macs": tot["macs_per_inference"]}
        return hw

    cells_rows, sparse_rows = [], []
    for c in recipe.get("gru_cells", []):
        log(f"[gru-cnn] {c} cells")
        m = gru_cnn(QuantConfig(), cells=int(c))
        fp = footprint(m, 8)
        cells_rows.append({"cells": int(c), "parameters": fp["total_parameters"],
                           "float32_kb": fp["total_parameters"] * 4 / 1000,
                           "int8_kb": fp["total_parameters"] / 1000,
                           "hardware": measure_one(m)})
    for sp in recipe.get("gru_sparsities", []):
        log(f"[gru-cnn] {CELLS} cells pruned to {sp:g}")
        torch.manual_seed(0)
        m = gru_cnn(QuantConfig(), cells=CELLS)
        magnitude_prune(m, float(sp))
        fp = footprint(m, 8)
        sparse_rows.append({"sparsity": float(sp), "parameters": fp["parameters"],
                            "layer_sparsity": fp["sparsity"],
                            "footprint_kb": fp["footprint_bytes"] / 1000,
                            "hardware": measure_one(m, recipe.get("sparse_format", "csr"))})
    return {"cells": cells_rows, "pruned": sparse_rows}


def model_input(model: str) -> tuple:
    from amchw.models import ZOO

    return tuple(ZOO[model].input_shape)


# --------------------------------------------------------------------------- the page

def _pct(v, nd: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{nd}f}"


def _acc(ck: Checkpoint, kind: str = "int") -> float:
    return ck.eval[f"{kind}_acc"]


def _best_snr(ck: Checkpoint, kind: str = "int") -> float:
    return max(ck.eval[f"{kind}_by_snr"].values())


class Page:
    """Blocks rendered to Markdown and to HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, [[str(c) for c in r] for r in rows]))

    def img(self, src: str, alt: str):
        self.blocks.append(("img", src, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "table":
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in b[1]) + " |")
                out.append("|" + "|".join(" --- " for _ in b[1]) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
                        for r in b[2]]
            else:
                out.append(f"![{b[2]}]({b[1]})")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
               f"<title>{e(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
               "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
               "padding:3px 8px;text-align:right}th{background:#eee}"
               "td:first-child{text-align:left}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in b[1]) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                        for r in b[2]]
                out.append("</table>")
            else:
                out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}' width='700'></p>")
        out.append("</body></html>")
        return "\n".join(out)


def _hw_cols(targets: list[str]) -> list[str]:
    return [c for t in targets for c in (f"{t} cycles/frame", f"{t} uJ/frame")]


def _hw_vals(ck: Checkpoint, targets: list[str]) -> list[str]:
    vals = []
    for t in targets:
        hw = ck.hardware[t]
        best = hw.get("compressed", hw["dense"])
        tag = f" ({'/'.join(hw['format'])})" if "compressed" in hw else ""
        vals += [f"{best['cycles']:,}{tag}", f"{best['energy_uj']:.2f}"]
    return vals


def _benchmark(c: Checkpoint, cks: list[Checkpoint], exps: dict, final: dict):
    """The trained network a checkpoint is compared with: a kd experiment's `benchmark` (for
    DP/DQ, their kd's), else the first train experiment of the same model on the same data."""
    e = exps[c.experiment]
    while True:
        if "benchmark" in e:
            return final[e["benchmark"]]
        if "start" in e and exps[e["start"]]["kind"] == "kd":
            e = exps[e["start"]]
            continue
        break
    same = [b for b in cks if b.kind == "train" and b.info["model"] == c.info["model"]
            and b.data == c.data]
    return same[0] if same else None


def build_page(recipe: dict, cks: list[Checkpoint], out: Path, seconds: float,
               gru: dict | None = None) -> Page:
    from amchw import plots

    pg = Page()
    title = recipe.get("title", "amchw report")
    targets = [t.name for t in _targets(recipe)]
    exps = {e["name"]: e for e in recipe["experiment"]}
    by_exp: dict[str, list[Checkpoint]] = {}
    for c in cks:
        by_exp.setdefault(c.experiment, []).append(c)
    final = {k: v[-1] for k, v in by_exp.items()}
    pg.h(1, title)
    if recipe.get("notes"):
        pg.p(recipe["notes"])
    pg.p(f"{len(cks)} checkpoints from {len(exps)} experiments, measured on "
         f"{', '.join(targets)}; the run took {seconds / 60:.1f} min. Accuracies are on each "
         "checkpoint's test split (integer IR = what the hardware computes; float = Brevitas). "
         "Seed columns are the papers' published figures on the real datasets; ours are on "
         "the data named below, so compare trends, not digits.")
    rows = []
    for name, d in recipe["data"].items():
        rows.append([name, d.get("path", f"synthetic {d.get('profile')}"),
                     d.get("per_class_snr", "-"),
                     ", ".join(map(str, d["snrs"])) if "snrs" in d else "profile grid"])
    pg.table(["data", "source", "frames per class and SNR", "SNRs (dB)"], rows)

    pg.h(2, "All checkpoints")
    rows = []
    for c in cks:
        rows.append([c.label, c.kind, c.info.get("model", ""), f"{c.info['parameters']:,}",
                     _pct(_acc(c, "float")), _pct(_acc(c)), _pct(_best_snr(c))]
                    + _hw_vals(c, targets))
    pg.table(["checkpoint", "method", "model", "non-zero parameters", "float acc %",
              "int acc %", "best-SNR int acc %"] + _hw_cols(targets), rows)
    pg.p("Cycles and energy per frame at batch 1; a compressed checkpoint is simulated with "
         "its compressed storage (format in brackets; zero weights skipped or PQ look-ups).")

    groups: dict[str, list[Checkpoint]] = {}
    for c in cks:
        groups.setdefault(c.data, []).append(c)
    pg.h(2, "Accuracy vs SNR")
    for i, (data, members) in enumerate(groups.items()):
        png = out / f"accuracy_{i}.png"
        res = [dict(c.eval, label=c.label) for c in members]
        plots.accuracy_vs_snr(res, png)
        pg.img(png.name, f"accuracy vs SNR on {Path(data).name}")

    nt = [c for c in cks if c.kind == "net-trim"]
    if nt:
        pg.h(2, "Net-Trim: the edge-efficient seed's Table I")
        rows = []
        for c in nt:
            i, s = c.info, seeds.EDGE_TABLE_I.get(c.info["model"], {})
            start = final[exps[c.experiment]["start"]]
            rows.append([c.label, c.info["model"], i["layer"], f"{i['epsilon']:g}",
                         f"{i['n_T']:,}", f"{i['n_b']:,}", f"{i['n_a']:,}", _pct(i["p_e"], 2),
                         f"{i['discrepancy']:.4f}", _pct(_acc(c)),
                         f"{100 * (_acc(c) - _acc(start)):+.1f}",
                         s.get("n_T", "-"), s.get("n_a", "-"), _pct(s.get("p_e"), 2)]
                        + _hw_vals(c, targets))
        pg.table(["checkpoint", "network", "layer", "epsilon", "n_T", "n_b", "n_a", "p_e %",
                  "output discrepancy", "int acc %", "vs start (pp)", "seed n_T", "seed n_a",
                  f"seed p_e % (eps {seeds.EDGE_TABLE_I_EPSILON})"] + _hw_cols(targets), rows)

    pq = [c for c in cks if c.kind == "pq"]
    if pq:
        pg.h(2, "Product quantization: the edge-efficient seed's Table II")
        rows = []
        for c in pq:
            i = c.info
            s = seeds.EDGE_TABLE_II.get(i.get("model", ""), {}).get(i["subspaces"])
            rows.append([c.label, i.get("model", ""), i["layer"], i["subspaces"],
                         i["centroids"], f"{i['C_Q_64bit']:.2f}",
                         "-" if s is None else f"{s:.2f}", f"{i.get('C_Q_8bit', 0):.2f}",
                         i.get("retrain_epochs", 0), _pct(_acc(c))] + _hw_vals(c, targets))
        pg.table(["checkpoint", "network", "layer", "P", "K_s", "C_Q (64-bit)", "seed C_Q",
                  "C_Q (8-bit)", "retrain epochs", "int acc %"] + _hw_cols(targets), rows)
        pg.p("C_Q = b M N / (b K_s N + log2(K_s) M P) (the seed's eq. 2) with b = 64 as the "
             "seed's float originals, and with b = 8 against our int8 weights.")

    kd = [c for c in cks if c.kind == "kd"]
    if kd:
        pg.h(2, "Knowledge distillation: the edge-efficient seed's Table III")
        rows = []
        for c in kd:
            e = exps[c.experiment]
            teacher = final[e["teacher"]]
            bench = _benchmark(c, cks, exps, final)
            ratio = c.info["total_parameters"] / teacher.info["total_parameters"]
            s = seeds.EDGE_TABLE_III.get((e["student"], teacher.info["model"]))
            m = c.info
            rows.append([c.label, e["student"], teacher.info["model"], f"{ratio:.2f}",
                         "-" if s is None else f"{s[1]:.2f} (case {s[0]})",
                         f"T={m.get('temperature', 10):g} alpha={m.get('alpha', 0.5):g} "
                         f"{m.get('convention', 'edge')}",
                         _pct(_acc(c)), _pct(_acc(bench)) if bench else "-",
                         _pct(_acc(teacher)), "-" if s is None else s[2]])
        pg.table(["checkpoint", "student", "teacher", "reduction ratio", "seed ratio",
                  "T, alpha, loss", "distilled int acc %", "benchmark student %",
                  "teacher %", "seed: vs benchmark"], rows)

    t4 = [c for c in cks if c.kind in ("net-trim", "pq", "kd")]
    if t4:
        pg.h(2, "Individual and combined methods: the edge-efficient seed's Table IV")
        rows = []
        for c in t4:
            e = exps[c.experiment]
            start_kind = exps[e["start"]]["kind"] if "start" in e else None
            method = {"net-trim": "NT", "pq": "PQ", "kd": "KD"}[c.kind]
            if start_kind == "kd":
                method = {"NT": "DP", "PQ": "DQ"}[method]
            bench = _benchmark(c, cks, exps, final)
            s = seeds.EDGE_TABLE_IV[method]
            rows.append([c.label, method, c.info["model"],
                         _pct(c.info.get("p_e"), 1) if c.kind == "net-trim" else "-",
                         f"{c.info['C_Q_64bit']:.2f}" if c.kind == "pq" else "-",
                         f"{100 * (_acc(c) - _acc(bench)):+.1f} ({bench.label})"
                         if bench else "-",
                         _pct(s[0]), "-" if s[1] is None else f"{s[1]:.2f}", s[2]]
                        + _hw_vals(c, targets))
        pg.table(["checkpoint", "method", "network", "p_e %", "C_Q", "acc vs benchmark (pp)",
                  "seed p_e %", "seed C_Q", "seed accuracy"] + _hw_cols(targets), rows)

    imp = [c for c in cks if c.kind == "imp"]
    if imp:
        pg.h(2, "Iterative magnitude pruning with QAT: the GRU-CNN seed's Table 3")
        rows = []
        for c in imp:
            i = c.info
            s = seeds.GRU_TABLE_3.get(i["target"])
            by = c.eval["int_by_snr"]
            rows.append([c.label, i["original"], f"{i['target']:g}", f"{i['sparsity']:.4f}",
                         f"{i['parameters']:,}", _pct(_acc(c), 2), _pct(max(by.values()), 2),
                         f"{i['footprint_bytes'] / 1000:.1f}",
                         "-" if s is None else f"{s[1]:,}", "-" if s is None else f"{s[2]}",
                         "-" if s is None else f"{s[3]}", "-" if s is None else f"{s[4]}"]
                        + _hw_vals(c, targets))
        pg.table(["pruned model", "original model", "target sparsity", "sparsity",
                  "parameters", "average acc %", "highest acc %", "footprint kB",
                  "seed parameters", "seed avg %", "seed highest %", "seed kB"]
                 + _hw_cols(targets), rows)
        pg.p("Parameters: non-zero weights, biases and BatchNorm scales and shifts; footprint: "
             "one byte per parameter at 8 bits (the seed's count). The cycles and energy use "
             "the compressed storage (indices included), which the footprint leaves out.")

    if gru and (gru["cells"] or gru["pruned"]):
        pg.h(2, "The GRU-CNN seed's network on the hardware (Tables 2-4, untrained)")
        pg.p("Not trained here: Brevitas steps the GRU's 1024-step recurrence op by op (minutes "
             "per batch on a CPU), so the accuracy columns are the seed's only. Parameters and "
             "footprints are counted on the zoo's model, cycles and energy simulated on it.")
        hw_cols = [c for t in targets for c in (f"{t} cycles/frame", f"{t} latency ms",
                                                 f"{t} uJ/frame")]
        rows = []
        for r in gru["cells"]:
            s2 = seeds.GRU_TABLE_2.get(r["cells"])
            rows.append([r["cells"], f"{r['parameters']:,}", f"{r['float32_kb']:.1f}",
                         f"{r['int8_kb']:.1f}", "-" if s2 is None else f"{s2[2]:,}",
                         "-" if s2 is None else s2[3], "-" if s2 is None else s2[0],
                         "-" if s2 is None else s2[1]]
                        + [v for t in targets for v in (
                            f"{r['hardware'][t]['cycles']:,}",
                            f"{r['hardware'][t]['latency_us'] / 1000:.3f}",
                            f"{r['hardware'][t]['energy_uj']:.2f}")])
        if rows:
            pg.table(["GRU cells", "parameters", "float32 kB", "int8 kB", "seed parameters",
                      "seed kB", "seed avg %", "seed highest %"] + hw_cols, rows)
        rows = []
        for r in gru["pruned"]:
            s3 = seeds.GRU_TABLE_3.get(r["sparsity"])
            rows.append([f"{r['sparsity']:g}", f"{r['layer_sparsity']:.4f}",
                         f"{r['parameters']:,}", f"{r['footprint_kb']:.1f}",
                         "-" if s3 is None else f"{s3[1]:,}", "-" if s3 is None else s3[4]]
                        + [v for t in targets for v in (
                            f"{r['hardware'][t]['cycles']:,}",
                            f"{r['hardware'][t]['latency_us'] / 1000:.3f}",
                            f"{r['hardware'][t]['energy_uj']:.2f}")])
        if rows:
            pg.table(["target sparsity", "sparsity", "parameters", "footprint kB (int8)",
                      "seed parameters", "seed kB"] + hw_cols, rows)
            s4 = seeds.GRU_TABLE_4_OURS
            pg.p(f"The seed's Table 4 row for this model (sparsity 0.7): {s4[0]}% average, "
                 f"{s4[1]}% highest, {s4[2]:,} parameters, {s4[3]} kB, {s4[4]} ms per sample "
                 "measured on the authors' machine; the latency columns above are the "
                 "simulated targets' (batch 1, compressed storage).")

    slim = [c for c in cks if c.kind == "train" and c.info["model"] in ("cnn-matlab", "cnn-slim")]
    if slim:
        pg.h(2, "Architecture slimming: the compression seed's Table III")
        rows = []
        for c in slim:
            s = seeds.COMPRESSION_TABLE_III.get(c.info["model"])
            sq = seeds.COMPRESSION_TABLE_III.get(c.info["model"] + " int8")
            macs = next(iter(c.hardware.values()))["dense"]["macs"]
            p = c.info["total_parameters"]
            rows.append([c.label, c.info["model"], _pct(_acc(c, "float"), 2), _pct(_acc(c), 2),
                         f"{macs:,}", f"{p * 4 / 1e6:.4f}", f"{p / 1e6:.4f}",
                         "-" if s is None else f"{s[0]}: {100 * s[1]:.2f}%",
                         "-" if s is None else f"{s[2]:,}",
                         "-" if s is None else f"{s[3]:.4f}",
                         "-" if sq is None else f"{sq[3]:.4f}"] + _hw_vals(c, targets))
        pg.table(["checkpoint", "model", "float acc %", "int8 acc %", "MACs",
                  "param memory float32 MB", "param memory int8 MB", "seed accuracy",
                  "seed MACs", "seed MB", "seed int8 MB"] + _hw_cols(targets), rows)

    ee = [c for c in cks if c.early_exit]
    if ee:
        pg.h(2, "Early exits: the early-exit seed's trade-off on the simulated hardware")
        t0 = targets[0]
        rows = []
        for c in ee:
            for r in c.early_exit["targets"][t0]["sweep"]:
                rows.append([c.label, f"{r['threshold']:g}", _pct(r["exit_fraction"]),
                             _pct(r["accuracy"]), f"{r['expected_cycles']:,.0f}",
                             f"{r['expected_energy_uj']:.3f}", _pct(r["cycles_saving"])])
        pg.table(["network", "entropy threshold", "exit %", "int acc %",
                  f"{t0} cycles/frame", f"{t0} uJ/frame", "cycles saved %"], rows)
        for c in ee:
            d = c.early_exit
            pg.h(3, f"{c.label}: per SNR at threshold {d['threshold']:g}")
            rows = []
            for t in targets:
                for r in d["targets"][t]["rows"]:
                    rows.append([t, r["snr"], r["frames"], _pct(r["exit_fraction"]),
                                 _pct(r["accuracy"]), _pct(r["final_accuracy"]),
                                 f"{r['expected_cycles']:,.0f}",
                                 f"{r['expected_energy_uj']:.3f}", _pct(r["energy_saving"])])
            pg.table(["target", "SNR dB", "frames", "exit %", "int acc %", "final-only acc %",
                      "cycles/frame", "uJ/frame", "energy saved %"], rows)
            pg.p(f"The integer exit decision equals the float entropy rule wherever the "
                 f"entropy is more than {d['error_bound']:.1e} from the threshold "
                 f"({d['frames']} frames, {d['which']}).")
        png = out / "early_exit.png"
        _exit_plot(ee, targets[0], png)
        pg.img(png.name, "exit fraction vs SNR")
    return pg


def _exit_plot(ee: list[Checkpoint], target: str, path) -> None:
    from amchw.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for i, c in enumerate(ee):
        rows = [r for r in c.early_exit["targets"][target]["rows"] if r["snr"] != "all"]
        ax.plot([r["snr"] for r in rows], [100 * r["exit_fraction"] for r in rows], "-o",
                ms=3, color=f"C{i % 10}", label=c.label)
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("frames leaving at the exit (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, plt, path)


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
