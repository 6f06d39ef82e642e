"""Running a recipe's experiments: every experiment's checkpoints made (or reused), each method
through its registry entry (amchw.compress.registry); "train" is the recipe's own kind."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from amchw.compress.methods import METHODS


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


def _train(e: dict, path: str, data: str, log) -> dict:
    """A train experiment: QAT of a zoo model (resumes, or returns a finished run)."""
    from amchw.train import TrainConfig, train

    cfg = TrainConfig(model=e["model"], data=data, out=path, seed=int(e.get("seed", 0)),
                      quant={k: e[k] for k in ("weight_bits", "act_bits", "scales") if k in e},
                      **{k: e[k] for k in ("epochs", "batch_size", "lr", "patience",
                                           "max_train", "float_epochs", "schedule", "split",
                                           "undersample", "float_only", "best_by") if k in e})
    train(cfg, log=log)
    return {"model": e["model"]}


def run_experiments(recipe: dict, out: Path, log=print) -> list[Checkpoint]:
    """Run (or reuse) every experiment's checkpoints; no evaluation yet."""
    files = _data_files(recipe, out, log)
    ckdir = out / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    done: dict[str, Checkpoint] = {}
    result: list[Checkpoint] = []

    def quiet(msg):
        log(f"    {msg}")

    for e in recipe["experiment"]:
        name, kind = e["name"], e["kind"]
        label = e.get("label", name)
        t0 = time.perf_counter()
        method = METHODS.get(kind)
        report = method.report if method else None
        path = str(ckdir / f"{name}.pt")
        exists = Path(path).exists()
        log(f"[{kind}] {name}" + (" (reused)" if exists and not (report and report.stages)
                                  else ""))
        if method is None:   # train
            made = [("", path, _train(e, path, files[e["data"]], quiet))]
            data = files[e["data"]]
        else:
            inputs = {r: done[e[r]] for r in method.inputs}
            src = next(iter(inputs.values()), None)   # the start (or teacher)
            opts = method.settings(e)
            data = src.data if src else None
            for o in method.options:   # its data file: the recipe's entry, else the start's
                if o.type == "data":
                    data = opts[o.name] = files[e[o.name]] if o.recipe else data
            if report.stages:
                path = str(ckdir / name)
            run = None
            if report.reruns or not exists:
                run = method.run({r: c.path for r, c in inputs.items()}, path, opts, quiet)
            made = report.checkpoints(method, path, run, opts, label, src and src.label)
        cks = [Checkpoint(name, kind, label + suffix, p, data, info) for suffix, p, info in made]
        if report and report.stages:
            log(f"    {time.perf_counter() - t0:.0f} s")
        else:
            cks[-1].info.setdefault("seconds", round(time.perf_counter() - t0, 1))
        done[name] = cks[-1]
        result += cks
    return result
