"""The amchw command line: verify's exit codes, JSON output and option errors."""

import json
import subprocess
import sys

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


def test_simulate_zoo_model_on_4x4_prints_the_report():
    r = CliRunner().invoke(main, ["simulate", "--model", "vgg10", "--array", "4x4"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "4x4 array, weight-stationary (ws), pipelined timing" in out
    assert "conv1" in out and "fc10" in out and "total cycles" in out
    assert "of the physical limit" in out and "energy per inference" in out
    assert "integer check: Numba kernels vs IR interpreter on 16 sample frames" in out
    assert out.rstrip().splitlines()[-1].endswith(": match")


def test_simulate_json_on_16x16_is_consistent():
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "--array", "16x16", "--dataflow", "os",
                                  "--batch", "2", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["schema"] == "amchw.simulate/1" and d["array"] == {"rows": 16, "cols": 16}
    assert d["batch"] == 2 and d["dataflow"] == "os"
    assert d["totals"]["cycles"] == sum(la["cycles"] for la in d["layers"])
    assert d["totals"]["macs"] == 2 * d["totals"]["macs_per_inference"]
    assert d["integer_check"]["equal"] and d["stepped"] is None


def test_simulate_stepped_agrees_and_writes_files(tmp_path):
    csv_p, png_p = tmp_path / "l.csv", tmp_path / "l.png"
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "--array", "4x4", "--stepped",
                                  "--timing", "scalesim", "--dataflow", "is",
                                  "--csv", str(csv_p), "--plot", str(png_p)])
    assert r.exit_code == 0, r.output
    assert "accumulators equal the kernels, cycles equal the closed form" in r.output
    assert csv_p.read_text().startswith("node,op,unit")
    assert png_p.read_bytes()[:4] == b"\x89PNG"


def test_simulate_refuses_bad_options(tmp_path):
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "--array", "0x4"])
    assert r.exit_code == 1 and "--array" in r.output
    q = tmp_path / "m.qonnx"
    q.write_bytes(b"x")
    r = CliRunner().invoke(main, ["simulate", str(q)])
    assert r.exit_code == 1 and "m.qonnx" in r.output and "not a readable ONNX model" in r.output
    r = CliRunner().invoke(main, ["simulate"])
    assert r.exit_code == 2 and "missing MODEL" in r.output
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "--target", "nope"])
    assert r.exit_code == 1 and "unknown target 'nope'" in r.output


def test_simulate_a_saved_ir_graph(tmp_path):
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.ir.io import save
    from amchw.lower.brevitas import lower
    from amchw.models import build
    from amchw.models.calibrate import calibrate

    fr = frames_for("vtcnn2", 16, seed=0)
    g = lower(calibrate(build("vtcnn2", seed=0), torch.as_tensor(fr), seed=0),
              torch.as_tensor(fr[:2]), name="vtcnn2")
    p = save(g, tmp_path / "g.npz")
    r = CliRunner().invoke(main, ["simulate", str(p), "--target", "zcu104", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["target"] == "zcu104" and d["array"] == {"rows": 48, "cols": 64}
    assert d["integer_check"]["equal"]
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "missing.npz")])
    assert r.exit_code == 2 and "missing.npz: no such file" in r.output   # as any MODEL


def test_export_cost_and_simulate_a_qonnx_file(tmp_path):
    from amchw.export.cost import qonnx_inference_cost

    q = tmp_path / "vtcnn2.qonnx"
    r = CliRunner().invoke(main, ["export", "vtcnn2", "-o", str(q)])
    assert r.exit_code == 0, r.output
    assert "FINN rules all met" in r.output and "identical IR text" in r.output
    r = CliRunner().invoke(main, ["cost", str(q), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    ref = qonnx_inference_cost(q)["total_cost"]
    assert d["totals"]["macs"] == ref["total_macs"] and d["totals"]["bops"] == ref["total_bops"]
    assert d["totals"]["weight_bits"] == ref["total_mem_w_bits"]
    r = CliRunner().invoke(main, ["cost", "vtcnn2"])
    assert r.exit_code == 0 and "AMC challenge score" in r.output
    r = CliRunner().invoke(main, ["simulate", str(q), "--array", "4x4", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["model"] == "vtcnn2" and d["integer_check"]["equal"]
    # a QONNX file is simulated without importing torch or Brevitas (seconds of start-up)
    code = ("import sys; from amchw.cli import main\n"
            "try:\n    main(['simulate', sys.argv[1], '--array', '4x4'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules and 'brevitas' not in sys.modules\n")
    p = subprocess.run([sys.executable, "-c", code, str(q)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]


def test_export_makes_missing_folders_and_refuses_an_unwritable_path(tmp_path):
    r = CliRunner().invoke(main, ["export", "vtcnn2", "-o", str(tmp_path / "a" / "b" / "x.qonnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "b" / "x.qonnx").stat().st_size > 0
    (tmp_path / "f").write_text("")
    r = CliRunner().invoke(main, ["export", "vtcnn2", "-o", str(tmp_path / "f" / "x.qonnx")])
    assert r.exit_code == 1 and "a file of that name is in the way" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "f").is_dir()


def test_first_example_end_to_end(tmp_path):
    """The README's first example, at test size: synthesize, train briefly, evaluate (with
    confusion matrices and both plots), export QONNX, simulate the exported file."""
    d, ck, q = tmp_path / "d.h5", tmp_path / "m.pt", tmp_path / "m.qonnx"
    run = CliRunner().invoke
    r = run(main, ["data", "synth", "--profile", "rml2016b", "--per-class-snr", "3",
                   "--snrs", "0,18", "-o", str(d)])
    assert r.exit_code == 0, r.output
    r = run(main, ["train", "--model", "ee-baseline", "--data", str(d), "--epochs", "1",
                   "--batch-size", "32", "-o", str(ck)])
    assert r.exit_code == 0, r.output
    acc, cm = tmp_path / "acc.png", tmp_path / "cm.png"
    r = run(main, ["eval", str(ck), "--data", str(d), "--split", "all", "--confusion",
                   "--confusion-snr", "18", "--plot-accuracy", str(acc),
                   "--plot-confusion", str(cm), "--per-class"])
    assert r.exit_code == 0, r.output
    assert "confusion matrix, integer model, SNR 18 dB" in r.output
    assert "per class, integer model, SNR 18 dB" in r.output and "macro avg" in r.output
    for p in (acc, cm, tmp_path / "cm.snr18.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
    r = run(main, ["eval", str(ck), str(ck), "--data", str(d), "--split", "all", "--json"])
    assert r.exit_code == 0, r.output
    both = json.loads(r.output)
    assert len(both) == 2 and both[0]["int_acc"] == both[1]["int_acc"]
    m = both[0]["confusion_int"]
    assert len(m) == 10 and sum(map(sum, m)) == both[0]["frames"] == 60
    r = run(main, ["eval", str(ck), "--data", str(d), "--confusion-snr", "7"])
    assert r.exit_code == 1 and "SNR 7 dB" in r.output
    r = run(main, ["export", str(ck), "-o", str(q)])
    assert r.exit_code == 0, r.output
    r = run(main, ["simulate", "--model", str(q), "--array", "4x4"])
    assert r.exit_code == 0, r.output
    assert "total cycles" in r.output and "integer check" in r.output


def test_simulate_with_a_sparse_format(tmp_path):
    ck = tmp_path / "p.pt"
    r = CliRunner().invoke(main, ["prune", "vgg10", "--sparsity", "0.8", "--layers", "fc8",
                                  "-o", str(ck)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["simulate", "--model", str(ck), "--array", "4x4", "--dataflow",
                                  "os", "--sparse-format", "csc", "--min-sparsity", "0.5"])
    assert r.exit_code == 0, r.output
    assert "sparse fc8: csc weights on os -> zeros skipped" in r.output
    assert "conv1: kept dense (sparsity" in r.output
    r = CliRunner().invoke(main, ["simulate", "--model", str(ck), "--array", "4x4",
                                  "--sparse-format", "csc", "--json"])
    layers = {x["node"]: x for x in json.loads(r.output)["layers"]}
    assert layers["fc8"]["sparse"]["handling"] == "gated"  # ws: the target's default
    assert layers["conv1"]["sparse"]["format"] == "csc"   # no threshold: every layer
    r = CliRunner().invoke(main, ["simulate", "--model", str(ck), "--sparse-format", "bcsr"])
    assert r.exit_code == 2 and "--sparse-format" in r.output


def test_simulate_compare_puts_versions_side_by_side(tmp_path):
    ck = tmp_path / "p.pt"
    r = CliRunner().invoke(main, ["prune", "vtcnn2", "--sparsity", "0.9", "--layers", "fc3",
                                  "-o", str(ck)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["simulate", "--compare", "vtcnn2", f"{ck}@csc",
                                  "--min-sparsity", "0.5", "--array", "16x16", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["rows"]
    assert [(x["format"], x["dataflow"]) for x in rows] == [
        (f, d) for f in ("dense", "csc") for d in ("os", "ws", "is")]
    dense = {x["dataflow"]: x for x in rows[:3]}
    sparse = {x["dataflow"]: x for x in rows[3:]}
    # fc3 at 90%: stored smaller, fewer MACs multiplied, and on os fewer cycles too
    assert all(sparse[d]["weight_bytes"] < dense[d]["weight_bytes"] for d in dense)
    assert all(sparse[d]["macs"] < dense[d]["macs"] for d in dense)
    assert sparse["os"]["cycles"] < dense["os"]["cycles"]
    assert sparse["os"]["stored_in_format"] == ["fc3"] and "fc4" in sparse["os"]["kept_dense"]
    r = CliRunner().invoke(main, ["simulate", "--compare", "vtcnn2", f"{ck}@csc",
                                  "--min-sparsity", "0.5", "--array", "4x4"])
    assert r.exit_code == 0 and "* fastest dataflow" in r.output
    assert "1 layer(s) stored as csc (fc3); kept dense: " in r.output
    r = CliRunner().invoke(main, ["simulate", "--compare", "vtcnn2@csc", "--array", "4x4",
                                  "--min-sparsity", "0.5"])
    assert "0 layer(s) stored as csc - the numbers are the dense ones" in r.output
    r = CliRunner().invoke(main, ["simulate", "vtcnn2", "vgg10"])
    assert r.exit_code == 2 and "--compare" in r.output


def test_a_bad_checkpoint_is_a_one_line_error_naming_it(tmp_path):
    """Truncated, random, empty, a QONNX file, a dict without a model: eval ends with exit 1
    and `error: FILE: ...`, never a traceback; a directory or no file: exit 2 naming it."""
    import torch

    good = tmp_path / "good.pt"
    torch.save({"model": "x", "state_dict": {}}, good)
    cases = {"trunc.pt": good.read_bytes()[:40], "random.pt": bytes(range(256)) * 8,
             "empty.pt": b"", "model.qonnx": b"\x08\x07\x12\x04onnx", "wrongdict.pt": None}
    for name, data in cases.items():
        p = tmp_path / name
        if data is None:
            torch.save({"weights": [1, 2]}, p)
        else:
            p.write_bytes(data)
    (tmp_path / "adir.pt").mkdir()
    for name in list(cases):
        r = CliRunner().invoke(main, ["eval", str(tmp_path / name), "--data", str(good)])
        assert r.exit_code == 1, (name, r.output)
        assert r.output.startswith("error: ") and name in r.output, (name, r.output)
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert isinstance(r.exception, SystemExit), (name, r.exception)
    for name in ("adir.pt", "missing.pt"):  # nothing to read there: a usage error, exit 2
        r = CliRunner().invoke(main, ["eval", str(tmp_path / name), "--data", str(good)])
        assert r.exit_code == 2 and name in r.output and "Traceback" not in r.output, r.output


def test_bit_widths_out_of_range_are_usage_errors():
    for cmd in (["simulate", "vtcnn2"], ["verify", "--model", "vtcnn2"],
                ["prune", "vtcnn2", "--sparsity", "0.5", "-o", "x.pt"]):
        for opt, v in (("--weight-bits", "0"), ("--act-bits", "64")):
            r = CliRunner().invoke(main, cmd + [opt, v])
            assert r.exit_code == 2 and f"Invalid value for '{opt}'" in r.output, (cmd, r.output)


def test_prune_without_a_sparsity_says_what_it_needs(tmp_path):
    r = CliRunner().invoke(main, ["prune", "vtcnn2", "-o", str(tmp_path / "p.pt")])
    assert r.exit_code == 2 and "unstructured pruning needs --sparsity" in r.output
    r = CliRunner().invoke(main, ["prune", "vtcnn2", "--sparsity", "1.5", "-o", "p.pt"])
    assert r.exit_code == 2 and "--sparsity" in r.output


def test_a_missing_model_file_or_a_directory_is_the_same_usage_error(tmp_path):
    (tmp_path / "d.qonnx").mkdir()
    for args, want in ((["simulate", "nosuch.qonnx"], "nosuch.qonnx: no such file"),
                       (["simulate", "nosuch.npz"], "nosuch.npz: no such file"),
                       (["simulate", "nosuch.pt"], "'nosuch.pt' is neither a zoo model"),
                       (["simulate", str(tmp_path / "d.qonnx")], "is a directory"),
                       (["cost", str(tmp_path)], "is a directory")):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and want in r.output and "--model" not in r.output, r.output


def test_nm_pruning_keeps_a_layer_it_cannot_take_dense_and_says_so(tmp_path):
    """README: `prune vgg10 --pattern 2:4`: conv1 (a reduction of 6) stays dense, every other
    layer is exactly half zeros in each group of 4; naming conv1 is a usage error."""
    import torch

    out = tmp_path / "p.pt"
    r = CliRunner().invoke(main, ["prune", "vgg10", "--pattern", "2:4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "conv1: kept dense (its reduction of 6 weights per output is not a multiple of M=4)" \
        in r.output
    ck = torch.load(out, weights_only=False)
    assert ck["pruning"]["kept_dense"].keys() == {"conv1"}
    assert set(ck["pruning"]["layers"]) == {f"conv{i}" for i in range(2, 8)} | {"fc8", "fc9",
                                                                                  "fc10"}
    w = ck["state_dict"]["conv2.weight"].reshape(64, -1, 4)
    assert torch.all((w == 0).sum(dim=2) >= 2)
    r = CliRunner().invoke(main, ["prune", "vgg10", "--pattern", "2:4", "--layers", "conv1",
                                  "-o", str(tmp_path / "q.pt")])
    assert r.exit_code == 2 and "not a multiple of M=4" in r.output


def test_every_option_of_every_command_has_help():
    import click as _click

    def walk(cmd, path):
        if isinstance(cmd, _click.Group):
            for n, c in cmd.commands.items():
                yield from walk(c, path + [n])
        else:
            yield path, cmd

    bare = [(" ".join(p), o.opts) for p, cmd in walk(main, []) for o in cmd.params
            if isinstance(o, _click.Option) and not o.help and o.name != "help"]
    assert not bare, bare


def test_verify_takes_model_as_argument_or_option_and_train_takes_output():
    r = CliRunner().invoke(main, ["verify", "vtcnn2", "--frames", "4", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["verify", "vtcnn2", "--model", "vgg10"])
    assert r.exit_code == 2 and "not two different models" in r.output
    r = CliRunner().invoke(main, ["verify"])
    assert r.exit_code == 2 and "missing MODEL" in r.output
    h = CliRunner().invoke(main, ["train", "--help"]).output
    assert "-o, --output, --out" in h


def test_a_missing_data_file_is_a_usage_error_everywhere_and_named_once(tmp_path):
    """Exit 2 for a data file or checkpoint that is not there or is a directory, in every
    command that reads one; a checkpoint's error names the file once."""
    for args in (["data", "info", str(tmp_path / "no.h5")], ["data", "info", str(tmp_path)],
                 ["eval", "vtcnn2.pt", "--data", str(tmp_path / "no.h5")],
                 ["train", "--model", "vtcnn2", "--data", str(tmp_path / "no.h5"), "-o",
                  str(tmp_path / "t.pt")],
                 ["simulate", "ee-v1", "--data", str(tmp_path / "no.h5")]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert "no such file" in r.output or "is a directory" in r.output
    empty = tmp_path / "e.pt"
    empty.write_bytes(b"")
    r = CliRunner().invoke(main, ["eval", str(empty), "--data", str(tmp_path / "no.h5")])
    assert r.exit_code == 1 and r.output.count(str(empty)) == 1, r.output


def test_train_refuses_an_unreadable_checkpoint_to_resume_before_writing_data(tmp_path):
    bad = tmp_path / "t.pt"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    r = CliRunner().invoke(main, ["train", "--model", "vtcnn2", "--per-class-snr", "2",
                                  "--epochs", "1", "-o", str(bad)])
    assert r.exit_code == 1 and "t.pt: not an amchw checkpoint" in r.output, r.output
    assert list(tmp_path.iterdir()) == [bad]      # no synthetic data file written beside it
