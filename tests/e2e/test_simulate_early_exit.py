"""amchw simulate MODEL --data FILE.h5: the early-exit table of an ee-v* model on a synthetic
file (zoo name: all frames; checkpoint: its test split), the JSON "early_exit" key against the
per-layer figures, the sweep, and the usage errors."""

import dataclasses
import json

import pytest
from click.testing import CliRunner

from amchw.cli import main


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    p = tmp_path_factory.mktemp("ee") / "f.h5"
    r = CliRunner().invoke(main, ["data", "synth", "--profile", "rml2016b", "--per-class-snr",
                                  "2", "--snrs", "-10,0,10", "-o", str(p)])
    assert r.exit_code == 0, r.output
    return p


def test_zoo_model_json_rows_sweep_and_costs(h5):
    r = CliRunner().invoke(main, ["simulate", "ee-v1", "--data", str(h5), "--json",
                                  "--exit-sweep", "-1,0.05,1,inf", "--array", "8x8"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    ee = d["early_exit"]
    assert ee["threshold"] == 0.05 and ee["frames"] == 60 and ee["data_split"] == "all frames"
    assert 0 < ee["error_bound"] < 1e-4
    assert [row["snr"] for row in ee["rows"]] == [-10, 0, 10, "all"]
    assert [row["frames"] for row in ee["rows"]] == [20, 20, 20, 60]
    layers = {x["node"]: x for x in d["layers"]}
    assert layers["exit"]["op"] == "EntropyExit" and layers["exit"]["vector_ops"] == 12 * 10 + 16
    sp = ee["split"]
    assert "exit" in sp["common"] and "rest_fc3" in sp["rest"] and "trunk_conv2" in sp["common"]
    assert sp["common_cycles"] == sum(layers[n]["cycles"] for n in sp["common"])
    assert sp["rest_cycles"] == sum(layers[n]["cycles"] for n in sp["rest"])
    assert sp["full_cycles"] == d["totals"]["cycles"]
    for row in ee["rows"]:
        f = row["exits"] / row["frames"]
        assert row["exit_fraction"] == f
        assert row["expected_cycles"] == pytest.approx(sp["common_cycles"]
                                                       + (1 - f) * sp["rest_cycles"])
    sw = {s["threshold"]: s for s in ee["sweep"]}
    assert sw[-1.0]["exit_fraction"] == 0 and sw[-1.0]["expected_cycles"] == sp["full_cycles"]
    for t in (1.0, float("inf")):   # base-10 entropy of 10 classes is at most 1: all exit
        assert sw[t]["exit_fraction"] == 1 and sw[t]["expected_cycles"] == sp["common_cycles"]
        assert sw[t]["expected_energy_uj"] == pytest.approx(sp["exit_energy_uj"])
    assert sw[0.05]["exit_fraction"] == ee["rows"][-1]["exit_fraction"]


def test_checkpoint_uses_its_test_split_and_prints_both_tables(h5, tmp_path):
    import torch

    from amchw.checkpoint import split_indices
    from amchw.data.radioml import H5Frames
    from amchw.data.synthetic import frames_for
    from amchw.models import QuantConfig, build
    from amchw.models.calibrate import calibrate

    cfg = QuantConfig()
    m = calibrate(build("ee-v3", cfg, seed=0), torch.as_tensor(frames_for("ee-v3", 64)), seed=0)
    ck = tmp_path / "ee3.pt"
    torch.save({"model": "ee-v3", "config": dataclasses.asdict(cfg),
                "state_dict": m.state_dict(), "train_config": {"seed": 3, "val_fraction": 0.1}},
               ck)
    r = CliRunner().invoke(main, ["simulate", str(ck), "--data", str(h5), "--exit-threshold",
                                  "0.9"])
    assert r.exit_code == 0, r.output
    with H5Frames(h5) as rd:
        n_test = split_indices(rd, 3, 0.1)[2].size
    assert f"{n_test} frames (test split)" in r.output
    assert "layer      op" in r.output and "integer check" in r.output   # the per-layer table
    assert "early exit at threshold 0.9" in r.output
    assert r.output.count("\n    all ") == 1 and "no exit" in r.output
    lines = r.output.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.lstrip().startswith("SNR dB"))
    snrs = [ln.split()[0] for ln in lines[i + 1:i + 6]]
    assert snrs[-2:] == ["all", "no"] and set(snrs[:-2]) <= {"-10", "0", "10"}


def test_usage_errors(h5):
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "--data", str(h5)])
    assert r.exit_code == 2 and "early-exit model" in r.output and "1 output" in r.output
    r = CliRunner().invoke(main, ["simulate", "ee-v1", "--exit-sweep", "0.1"])
    assert r.exit_code == 2 and "--exit-sweep needs --data" in r.output
    r = CliRunner().invoke(main, ["simulate", "ee-v1", "--data", str(h5), "--compare"])
    assert r.exit_code == 2 and "--compare" in r.output
    r = CliRunner().invoke(main, ["simulate", "ee-v1", "--data", str(h5), "--exit-sweep", "a,b"])
    assert r.exit_code == 2 and "comma-separated" in r.output


def test_data_of_another_frame_length_says_so(tmp_path):
    from amchw.data.radioml import synth_to_h5

    d = tmp_path / "r18.h5"
    synth_to_h5(d, "rml2018", 1, (0,), seed=0)
    r = CliRunner().invoke(main, ["simulate", "ee-v1", "--data", str(d)])
    assert r.exit_code == 1, r.output
    assert r.output.count("r18.h5") == 1 and "frames are 2 x 1024 samples; the model takes " \
        "2 x 128" in r.output
