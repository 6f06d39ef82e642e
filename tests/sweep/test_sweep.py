"""amchw sweep: the spec's checks, the weight formats applied to integer graphs, the Pareto front
against a brute-force one, each point's figures against a direct simulation of that
configuration, and the sweep on a real Dask LocalCluster: the same table with 1 and 2 workers,
after a resume, and when a worker is killed mid-sweep (every point exactly once)."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from amchw.ir.sparse import check_format, pq_codebooks, sparsity
from amchw.sweep import SpecError, load_spec, pareto_front, run_sweep
from amchw.sweep.variants import apply_format, prune_codes, prune_nm, pq_codes

SPEC = """
title = "test"
models = ["ee-baseline"]
formats = ["dense", "csc@0.8", "2:4", "pq2:4096"]
targets = ["edge-asic-45nm", "zynq7020"]
arrays = ["4x4", "8x8", "16x16"]
dataflows = ["os", "ws", "is"]
chunk = 6

[[best]]
name = "least energy under 0.5 ms on zynq7020"
objective = "energy_uj"
where = { target = "zynq7020", latency_us = "<= 500" }
"""


def _spec(tmp_path, text=SPEC, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("extra,msg", [
    ("formats = ['csc@2']", "formats: format 'csc@2'"),
    ("arrays = ['0x4']", "arrays: array '0x4'"),
    ("dataflows = ['xs']", "dataflows must be os, ws or is"),
    ("batches = [0]", "batches must be positive"),
    ("colour = 1", "unknown key(s) colour"),
    ("[[best]]\nobjective = 'speed'", "objective must be one of"),
])
def test_a_bad_spec_names_its_key(tmp_path, extra, msg):
    text = 'models = ["vtcnn2"]\n' + extra
    with pytest.raises(SpecError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        load_spec(_spec(tmp_path, text))
    assert "s.toml" in str(e.value)


def test_the_pareto_front_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        v = rng.integers(0, 12, (300, k)).astype(float)   # many ties
        want = [i for i in range(len(v)) if not any(
            np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in range(len(v)))]
        assert sorted(pareto_front(v).tolist()) == want


def test_formats_on_integer_weights():
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (16, 8, 3)).astype(np.int8)
    p = prune_codes(w, 0, 0.75)
    assert (p == 0).sum() == round(0.75 * w.size) and np.all((p == w) | (p == 0))
    kept = np.abs(w[p != 0]).min()
    assert np.abs(w[(p == 0) & (w != 0)]).max() <= kept          # the smallest went
    nm = prune_nm(w, 0, 2, 4)
    g = nm.reshape(16, -1, 4)
    assert ((g != 0).sum(axis=2) <= 2).all()
    wd = rng.integers(-127, 128, (8, 600)).astype(np.int8)       # 8 outputs, 600 inputs
    q = pq_codes(wd, 2, 16, -127, 127, seed=0)
    for s in range(2):
        assert len(np.unique(q[s * 4:(s + 1) * 4].T, axis=0)) <= 16


def test_formats_on_a_zoo_graph_are_valid_ir():
    from amchw.resolve import graph_and_frames

    g, _, _ = graph_and_frames("ee-baseline", "po2", 8, 8, 2, 0)
    for fmt in ("csc@0.9", "2:4", "pq2:64"):
        g2, skipped = apply_format(g, fmt)
        stored = [n for n in g2.nodes if getattr(n.op, "w_format", "dense") != "dense"]
        assert stored, fmt
        for n in stored:
            check_format(n.name, n.op)
            if fmt == "csc@0.9":
                assert sparsity(n.op) >= 0.9 - 1e-3
        if fmt == "pq2:64":
            assert len(stored) == 1
            codes, books = pq_codebooks(stored[0].op)
            assert books.shape[:2] == (2, 64)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The test spec swept on a LocalCluster with 2 workers."""
    d = tmp_path_factory.mktemp("sweep")
    spec = load_spec(_spec(d))
    summary = run_sweep(spec, d / "two", workers=2, log=lambda m: None)
    import pyarrow.parquet as pq

    return spec, d, summary, pq.read_table(d / "two" / "points.parquet")


def test_each_point_is_its_configuration_simulated(swept):
    from amchw.resolve import graph_and_frames
    from amchw.sims.hardware import get_target, parse_array
    from amchw.sims.simulate import simulate

    spec, _, summary, table = swept
    assert table.num_rows == 1 * 4 * 2 * 3 * 3 == summary["points"]
    # a format that fits no layer: its points are rows with the error, the sweep goes on
    errs = [r for r in table.to_pylist() if r["format"] == "pq2:4096"]
    assert len(errs) == 18 == summary["errors"]
    assert all("no Dense layer with at least 4096 inputs" in r["error"] and r["cycles"] is None
               for r in errs)
    assert table.column("point").to_pylist() == list(range(table.num_rows))
    g, _, _ = graph_and_frames("ee-baseline", "po2", 8, 8, 2, 0)
    rows = table.to_pylist()
    for r in (rows[0], rows[29], rows[53]):
        graph, _ = apply_format(g, r["format"])
        t = get_target(r["target"]).with_array(*parse_array(r["array"]))
        rep = simulate(graph, t, r["dataflow"], "pipelined", 1)
        assert r["cycles"] == rep.cycles and r["macs"] == rep.macs
        assert r["energy_uj"] == rep.energy.total * 1e-6
        assert r["error"] is None
    best = summary["best"][0]["point"]
    ok = [r for r in rows if r["target"] == "zynq7020" and r["error"] is None
          and r["latency_us"] <= 500]
    assert best["point"] == min(ok, key=lambda r: (r["energy_uj"], r["point"]))["point"]


def test_one_worker_a_resume_and_a_killed_worker_give_the_same_table(swept):
    import pyarrow.parquet as pq

    spec, d, _, table = swept
    run_sweep(spec, d / "one", workers=1, log=lambda m: None)
    assert pq.read_table(d / "one" / "points.parquet").equals(table)
    # resume: parts removed as a killed sweep leaves them
    parts = sorted((d / "one" / "parts").iterdir())
    for p in parts[::2]:
        p.unlink()
    (d / "one" / "points.parquet").unlink()
    seen = []
    run_sweep(spec, d / "one", workers=1, log=seen.append)
    assert any(f"{len(parts) - len(parts[::2])} already written" in m for m in seen)
    assert pq.read_table(d / "one" / "points.parquet").equals(table)

    killed = []

    def kill_one(i, done, client):
        if not killed:
            pids = client.run(os.getpid)
            pid = sorted(pids.values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    run_sweep(spec, d / "killed", workers=2, log=lambda m: None, on_part=kill_one)
    assert killed
    got = pq.read_table(d / "killed" / "points.parquet")
    assert got.column("point").to_pylist() == list(range(table.num_rows))   # once each
    assert got.equals(table)


def test_a_folder_holding_another_sweep_is_refused(swept, tmp_path):
    from amchw.sweep import SweepError

    spec, d, _, _ = swept
    other = load_spec(_spec(tmp_path, SPEC.replace('"2:4"', '"gated@0.5"'), "o.toml"))
    with pytest.raises(SweepError, match="holds another sweep's points"):
        run_sweep(other, d / "two", workers=1, log=lambda m: None)


def test_accuracy_of_each_variant_is_its_integer_graph_on_the_data(tmp_path):
    """A model with a data file: each (model, format) variant's accuracy, overall and per SNR,
    is its integer graph's on those frames (recomputed here with the reference interpreter)."""
    import pyarrow.parquet as pq

    from amchw.data.radioml import synth_to_h5
    from amchw.ir.interp import run
    from amchw.resolve import graph_and_frames
    from amchw.runs import early_exit_frames

    data = tmp_path / "d.h5"
    synth_to_h5(data, "rml2016b", 3, (0, 10), seed=1)
    spec = load_spec(_spec(tmp_path, f'models = [{{model = "ee-baseline", data = "{data}"}}]\n'
                                     'formats = ["dense", "csc@0.6"]\neval_frames = 50\n'))
    run_sweep(spec, tmp_path / "o", workers=1, log=lambda m: None)
    t = pq.read_table(tmp_path / "o" / "points.parquet").to_pylist()
    g, _, _ = graph_and_frames("ee-baseline", "po2", 8, 8, 2, 0)
    x, y, snr, _, _ = early_exit_frames("ee-baseline", g.inputs[0].shape, str(data), 50, 0)
    for r in t:
        pred = run(apply_format(g, r["format"])[0], x, "ref").argmax(axis=1)
        assert r["accuracy"] == float((pred == y).mean())
        for s in (0, 10):
            assert r[f"acc_{s}dB"] == float((pred == y)[snr == s].mean())


def test_exit_thresholds_give_the_expected_cost_of_the_exit_rule(tmp_path):
    """An early-exit model with data: at each threshold, the exit fraction of its integer exit
    rule on the frames, and cycles and energy per frame that interpolate between the whole
    network (nothing exits) and the exit path (everything does) by that fraction."""
    import pyarrow.parquet as pq

    from amchw.data.radioml import synth_to_h5
    from amchw.ir.early_exit import add_exit_rule
    from amchw.resolve import graph_and_frames
    from amchw.sims.early_exit import split_layers
    from amchw.sims.hardware import get_target
    from amchw.sims.simulate import simulate

    data = tmp_path / "d.h5"
    synth_to_h5(data, "rml2016b", 3, (0, 10), seed=1)
    spec = load_spec(_spec(tmp_path, f'models = [{{model = "ee-v1", data = "{data}"}}, '
                                     '"ee-baseline"]\nexit_thresholds = [0.0, 0.99, 1.0]\n'
                                     'eval_frames = 60\n'))
    run_sweep(spec, tmp_path / "o", workers=1, log=lambda m: None)
    rows = pq.read_table(tmp_path / "o" / "points.parquet").to_pylist()
    ee = {r["exit_threshold"]: r for r in rows if r["model"] == "ee-v1"}
    g, _, _ = graph_and_frames("ee-v1", "po2", 8, 8, 2, 0)
    g = add_exit_rule(g, 0.5, exit_output=g.outputs[0])
    split = split_layers(g, simulate(g, get_target("edge-asic-45nm")), g.outputs[0])
    assert ee[0.0]["exit_fraction"] == 0.0 and ee[1.0]["exit_fraction"] == 1.0  # H10 <= 1
    assert ee[0.0]["cycles"] == split.full_cycles and ee[1.0]["cycles"] == split.cycles(1.0)
    f = ee[0.99]["exit_fraction"]
    assert ee[0.99]["cycles"] == round(split.cycles(f))
    assert ee[0.99]["energy_uj"] == split.energy_uj(f)
    # a model without an exit ignores the threshold: the same figures at each
    base = [r for r in rows if r["model"] == "ee-baseline"]
    assert len({r["cycles"] for r in base}) == 1 and all(r["exit_fraction"] is None
                                                          for r in base)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "docs" / "sweeps")
                                        .glob("*.toml")), ids=str)
def test_the_documented_sweeps_load(path):
    assert load_spec(path).size() > 0
