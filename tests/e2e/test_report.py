"""`amchw report`: a tiny recipe runs every kind of experiment, and the figures it writes are
checked against independent computations (the checkpoints recounted, C_Q's formula, the
simulator called directly, the early-exit expectation recomputed); recipe errors name the file
and the entry."""

import json
import math
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from amchw.cli import main

RECIPE = """
title = "tiny"
targets = ["edge-asic-45nm"]
eval_frames = 60

[data.b]
profile = "rml2016b"
per_class_snr = 5
snrs = [0, 18]

[[experiment]]
name = "base"
kind = "train"
model = "ee-baseline"
data = "b"
epochs = 1
batch_size = 32

[[experiment]]
name = "nt"
kind = "net-trim"
start = "base"
layer = "fc1"
epsilon = 0.1
frames = 64

[[experiment]]
name = "kd"
kind = "kd"
teacher = "base"
student = "ee-baseline"
temperature = 4.0
alpha = 0.3
epochs = 1
batch_size = 32

[[experiment]]
name = "dq"
kind = "pq"
start = "kd"
layer = "fc1"
subspaces = 2
centroids = 16

[[experiment]]
name = "imp"
kind = "imp"
start = "base"
schedule = [0.6]
prune_epochs = 1
epochs = 2
frequency = 1
batch_size = 32

[[experiment]]
name = "f32"
kind = "train"
model = "ee-baseline"
data = "b"
epochs = 1
batch_size = 32
float_only = true

[[experiment]]
name = "int8"
kind = "ptq"
start = "f32"
frames = 16

[[experiment]]
name = "ee"
kind = "early-exit"
model = "ee-v3"
data = "b"
epochs = 1
batch_size = 32
threshold = 0.5
sweep = [0.0, 0.5, 1.0]
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    (d / "r.toml").write_text(RECIPE)
    r = CliRunner().invoke(main, ["report", str(d / "r.toml"), "-o", str(d / "out")])
    assert r.exit_code == 0, r.output
    return d / "out", json.loads((d / "out" / "report.json").read_text())


def _ck(rep, label):
    return next(c for c in rep["checkpoints"] if c["label"] == label)


def test_report_files_and_sections(report):
    out, rep = report
    md = (out / "report.md").read_text()
    for title in ("All checkpoints", "Table I", "Table II", "Table III", "Table IV",
                  "Table 3", "trade-off"):
        assert title in md, title
    html = (out / "report.html").read_text()
    tables = sum(1 for line in md.splitlines() if line.startswith("| --- |"))
    assert html.startswith("<!DOCTYPE html>") and html.count("<table>") == tables
    assert (out / "accuracy_0.png").stat().st_size > 1000 and (out / "early_exit.png").exists()
    assert [c["label"] for c in rep["checkpoints"]] == ["base", "nt", "kd", "dq",
                                                        "imp s=0.6", "f32", "int8", "ee"]
    # the float-only training has no integer model (nor hardware); its PTQ has both
    assert "Post-training INT8 quantization" in md
    f32 = next(line for line in md.splitlines() if line.startswith("| f32 | train |"))
    assert f32.split(" | ")[5] == "-" and f32.rstrip(" |").endswith("| - | -")
    assert _ck(rep, "int8")["eval"]["int_acc"] is not None
    # every quantized checkpoint passed amchw verify (layer by layer, 0 forbidden mismatches)
    assert all(c["info"]["verify"]["forbidden"] == 0 and c["info"]["verify"]["frames"] > 0
               for c in rep["checkpoints"] if c["label"] != "f32")
    assert re.search(r"\| OK \(\d+\) \|", md)
    assert "| DQ |" in md and "| NT |" in md and "| KD |" in md
    assert "T=4 alpha=0.3 edge" in md  # Table III shows the settings the recipe ran with
    # every row of a Markdown table has its header's number of cells (pipes in text escaped)
    blocks, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    assert len(blocks) == tables
    for block in blocks:
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in block}
        assert len(widths) == 1, block[0]


def test_report_figures_match_independent_computations(report):
    from amchw.checkpoint import model_from_checkpoint
    from amchw.ir.sparse import set_format
    from amchw.kernels.pq import compression_rate
    from amchw.lower.brevitas import lower
    from amchw.sims.hardware import get_target
    from amchw.sims.simulate import simulate

    _, rep = report
    nt = _ck(rep, "nt")
    model, _ = model_from_checkpoint(nt["path"])
    w = model.fc1.weight.detach()
    assert nt["info"]["n_T"] == w.numel() and nt["info"]["n_a"] == int((w != 0).sum())
    assert nt["info"]["p_e"] == pytest.approx(1 - nt["info"]["n_a"] / nt["info"]["n_T"])
    dq = _ck(rep, "dq")
    assert dq["info"]["C_Q_64bit"] == pytest.approx(
        64 * 256 * 256 / (64 * 16 * 256 + math.log2(16) * 256 * 2))
    assert dq["info"]["C_Q_64bit"] == pytest.approx(compression_rate(256, 256, 2, 16, 64))
    # the simulator called directly on the lowered checkpoint gives the report's figures
    target = get_target("edge-asic-45nm")
    model, _ = model_from_checkpoint(_ck(rep, "base")["path"])
    g = lower(model, torch.randn(4, 2, 128), name="ee-baseline")
    t = simulate(g, target).totals()
    hw = _ck(rep, "base")["hardware"]["edge-asic-45nm"]["dense"]
    assert hw["cycles"] == t["cycles"] and hw["energy_uj"] == pytest.approx(
        t["energy_per_inference_uj"], rel=1e-12)
    imp = _ck(rep, "imp s=0.6")
    model, _ = model_from_checkpoint(imp["path"])
    g = lower(model, torch.randn(4, 2, 128), name="ee-baseline")
    gs, _ = set_format(g, "csr", 0.5)
    assert imp["hardware"]["edge-asic-45nm"]["compressed"]["cycles"] == \
        simulate(gs, target).totals()["cycles"]
    nz = sum(int((p != 0).sum()) for n, p in model.named_parameters()
             if n.split(".")[-1] in ("weight", "bias"))
    assert imp["info"]["parameters"] == nz and imp["info"]["footprint_bytes"] == nz
    assert imp["info"]["sparsity"] >= 0.6 - 1e-3
    kd = _ck(rep, "kd")
    assert kd["info"]["total_parameters"] == 119_418


def test_report_early_exit_expectation(report):
    _, rep = report
    ee = _ck(rep, "ee")["early_exit"]
    t = ee["targets"]["edge-asic-45nm"]
    sp = t["split"]
    common, rest = sp["common_cycles"] / sp["batch"], sp["rest_cycles"] / sp["batch"]
    for row in t["rows"]:
        assert row["expected_cycles"] == pytest.approx(
            common + (1 - row["exit_fraction"]) * rest, rel=1e-12)
        assert row["exit_fraction"] == pytest.approx(row["exits"] / row["frames"])
    sweep = {r["threshold"]: r for r in t["sweep"]}
    assert sweep[0.0]["exit_fraction"] <= sweep[0.5]["exit_fraction"] <= \
        sweep[1.0]["exit_fraction"] == 1.0       # base-10 entropy of 10 classes <= 1
    all_row = next(r for r in t["rows"] if r["snr"] == "all")
    assert all_row["exit_fraction"] == sweep[0.5]["exit_fraction"]
    assert np.isclose(sweep[1.0]["expected_cycles"], common)


def test_rerun_reuses_the_checkpoints(report, tmp_path):
    out, rep = report
    stamp = {c["path"]: (torch.load(c["path"], weights_only=False).get("history") or [None])
             for c in rep["checkpoints"]}
    r = CliRunner().invoke(main, ["report", str(out.parent / "r.toml"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "(reused)" in r.output
    for c in json.loads((out / "report.json").read_text())["checkpoints"]:
        assert (torch.load(c["path"], weights_only=False).get("history") or [None]) == \
            stamp[c["path"]]


_TRAIN = "[data.d]\nprofile='rml2018'\n[[experiment]]\nname='a'\nkind='train'\n" \
         "model='gru-cnn-50'\ndata='d'\n"


@pytest.mark.parametrize("text, msg", [
    ("title = 'x'\n", "no [[experiment]]"),
    ("[[experiment]]\nname='a'\nkind='bake'\n", "kind must be one of"),
    ("[[experiment]]\nname='a'\nkind='pq'\nstart='zz'\nsubspaces=2\n", "not an earlier"),
    ("[[experiment]]\nname='a'\nkind='train'\nmodel='vgg10'\ndata='d'\nepoch=3\n",
     "unknown key(s) for train: epoch"),
    ("[[experiment]]\nname='a'\nkind='train'\nmodel='nope'\ndata='d'\n", "zoo model"),
    ("title = \n", "not valid TOML"),
    ("gru_sparsities = [1.5]\n[[experiment]]\nname='a'\nkind='train'\nmodel='vgg10'\n"
     "data='d'\n", "gru_sparsities must be in [0, 1)"),
    (_TRAIN + "schedule='step:0:0.1'\n", "schedule: learning-rate schedule 'step:0:0.1'"),
    (_TRAIN + "split='1/2'\n", "split must be one of auto"),
    (_TRAIN + "float_epochs=-1\n", "float_epochs must be an integer >= 0, got -1"),
    (_TRAIN + "[[experiment]]\nname='i'\nkind='imp'\nstart='a'\nprune_epochs=2\nepochs=2\n",
     "epochs (2) must exceed prune_epochs (2)"),
])
def test_recipe_errors_name_the_file_and_entry(tmp_path, text, msg):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = CliRunner().invoke(main, ["report", str(p), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and msg in r.output and "bad.toml" in r.output, r.output


def test_the_gru_tables_carry_the_trained_models_accuracy():
    """Table 2's accuracy columns are the trained GRU-CNN's (by its cell count): average and
    best-SNR integer accuracy; a cell count without a trained model shows '-'."""
    from types import SimpleNamespace

    from amchw.report.page import Page, _gru_cells, _gru_cnn

    assert [_gru_cells(m) for m in ("gru-cnn", "gru-cnn-50", "vgg10", "gru-cnn-x")] == \
        [80, 50, None, None]
    hw = {"t": {"cycles": 7, "latency_us": 1.0, "energy_uj": 2.0}}
    row = {"parameters": 1, "float32_kb": 0.0, "int8_kb": 0.0, "hardware": hw}
    ck = SimpleNamespace(kind="train", info={"model": "gru-cnn-50"},
                         eval={"int_acc": 0.4321, "int_by_snr": {0: 0.2, 10: 0.8765}})
    ctx = SimpleNamespace(gru={"cells": [dict(row, cells=50), dict(row, cells=60)],
                               "pruned": []}, targets=["t"], page=Page(), cks=[ck])
    _gru_cnn(ctx)
    lines = [ln for ln in ctx.page.markdown().splitlines() if ln.startswith("| 5")
             or ln.startswith("| 6")]
    assert lines[0].split(" | ")[4:6] == ["43.21", "87.65"]
    assert lines[1].split(" | ")[4:6] == ["-", "-"]


def test_slimming_memory_is_counted_as_the_seed_counts_it():
    """Table III's parameter memory: conv and dense weights and biases, no BatchNorm, in MiB:
    cnn-matlab's 96,835 parameters give the seed's 0.3694 MiB in float32."""
    from types import SimpleNamespace

    from amchw.models import build
    from amchw.report.measure import _weights_and_biases
    from amchw.report.page import Page, _slimming

    info = dict(model="cnn-matlab", **_weights_and_biases(build("cnn-matlab")))
    assert info["weights"] + info["biases"] == 96835
    ck = SimpleNamespace(kind="train", label="m", info=info, hardware={"t": None},
                         eval={"int_acc": 0.5, "float_acc": 0.5})
    ctx = SimpleNamespace(cks=[ck], page=Page(), hw_vals=lambda c: [], hw_cols=lambda: [])
    _slimming(ctx)
    row = next(ln for ln in ctx.page.markdown().splitlines() if ln.startswith("| m |"))
    cells = row.split(" | ")
    assert cells[5:7] == ["96,835", "0.3694"] and cells[10] == "0.3694"   # ours, the seed's


@pytest.mark.parametrize("path", sorted(
    str(p) for p in __import__("pathlib").Path(__file__).parents[2].glob("docs/recipes/*.toml")))
def test_the_documented_recipes_load(path):
    """Every recipe docs/ documents passes the recipe checks (a run would start)."""
    from amchw.report import load_recipe

    assert load_recipe(path)["experiment"]
