"""The amchw command line: verify's exit codes, JSON output and option errors."""

import json

from click.testing import CliRunner

from amchw.cli import main


def test_verify_json_ok():
    r = CliRunner().invoke(main, ["verify", "--model", "vtcnn2", "--frames", "16", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["ok"] and rep["forbidden"] == 0 and rep["frames"] == 16
    assert rep["reference"] == "float32"  # auto: po2 scales compare with float32
    assert [layer["layer"] for layer in rep["layers"]][:3] == ["inp", "conv1", "relu1"]


def test_verify_table_and_float_reference():
    r = CliRunner().invoke(main, ["verify", "--model", "vtcnn2", "--scales", "float",
                                  "--frames", "8"])
    assert r.exit_code == 0, r.output
    assert "Brevitas (float64)" in r.output and "OK: 0 forbidden" in r.output


def test_verify_unknown_model_is_a_usage_error():
    r = CliRunner().invoke(main, ["verify", "--model", "no-such-model"])
    assert r.exit_code == 2 and "neither a zoo model" in r.output


def test_verify_corrupt_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    r = CliRunner().invoke(main, ["verify", "--model", str(bad)])
    assert r.exit_code == 1 and "bad.pt" in r.output


def test_zoo_lists_models():
    r = CliRunner().invoke(main, ["zoo", "--json"])
    assert r.exit_code == 0
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["vgg10"]["params"] == 160_536 and rows["vtcnn2"]["params"] == 2_830_427


def test_targets_lists_presets_and_names_a_bad_file(tmp_path):
    from click.testing import CliRunner

    from amchw.cli import main

    r = CliRunner().invoke(main, ["targets", "--json"])
    assert r.exit_code == 0, r.output
    names = [t["name"] for t in json.loads(r.output)]
    assert names == ["edge-asic-45nm", "zynq7020", "zcu104"]
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "zcu104"\nrows = 0\n')
    r = CliRunner().invoke(main, ["targets", "--file", str(bad)])
    assert r.exit_code != 0
    assert "bad.toml" in r.output and "rows must be a positive integer" in r.output
