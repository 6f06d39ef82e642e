"""`amchw compress METHOD`: every method's checkpoint verifies bit-exact through `amchw verify`,
and bad requests end with a message naming the option or file."""

import pytest
import torch
from click.testing import CliRunner

from amchw.cli import main


def _ok(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, (args, r.output)
    return r.output


def _verifies(path):
    out = _ok(["verify", "--model", str(path), "--frames", "16"])
    assert "OK: 0 forbidden" in out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("cc")
    data = d / "b.h5"
    _ok(["data", "synth", "--profile", "rml2016b", "--per-class-snr", "10", "-o", str(data),
         "--snrs", "0,10,18"])
    ck = d / "base.pt"
    _ok(["train", "--model", "ee-baseline", "--data", str(data), "-o", str(ck), "--epochs", "2",
         "--batch-size", "32", "--seed", "1"])
    return d, data, ck


def test_compress_imp_prints_the_table_and_its_stages_verify(base, tmp_path):
    _, _, ck = base
    out = _ok(["compress", "imp", str(ck), "--schedule", "0.5,0.7", "--prune-epochs", "1",
               "--epochs", "2", "--frequency", "2", "--batch-size", "32",
               "-o", str(tmp_path / "imp")])
    lines = out.strip().splitlines()   # (the training log goes to stderr, mixed in here)
    lines = lines[next(i for i, t in enumerate(lines) if t.startswith("stage ")):]
    assert lines[0].split()[:4] == ["stage", "target", "sparsity", "parameters"]
    assert [float(r.split()[1]) for r in lines[1:]] == [0.5, 0.7]
    assert all(float(r.split()[2]) >= float(r.split()[1]) - 1e-3 for r in lines[1:])
    _verifies(tmp_path / "imp" / "stage2-sparsity0.7.pt")


def test_compress_pq_with_retraining_verifies(base, tmp_path):
    _, _, ck = base
    out_ck = tmp_path / "pq.pt"
    out = _ok(["compress", "pq", str(ck), "--layer", "fc1", "--subspaces", "4", "--centroids",
               "16", "--retrain-epochs", "1", "--train-fraction", "0.5", "--batch-size", "32",
               "-o", str(out_ck)])
    assert "P=4 K_s=16" in out and "pq.noretrain.pt" in out
    saved = torch.load(out_ck, weights_only=False)
    assert saved["pq"]["retrain_epochs"] == 1 and saved["method"]["constraints"][0] == {
        "name": "frozen", "layers": ["fc1"]}
    _verifies(out_ck)
    r = CliRunner().invoke(main, ["compress", "pq", str(ck), "--subspaces", "4", "--epochs",
                                  "3", "-o", str(tmp_path / "x.pt")])
    assert r.exit_code == 2 and "--retrain-epochs" in r.output


def test_compress_kd_and_dq_verify(base, tmp_path):
    _, _, ck = base
    kd = tmp_path / "kd.pt"
    out = _ok(["compress", "kd", "--teacher", str(ck), "--student", "ee-baseline", "-T", "4",
               "--alpha", "0.7", "--convention", "hinton", "--epochs", "1", "--batch-size",
               "32", "-o", str(kd)])
    assert "T=4, alpha=0.7, hinton" in out
    _verifies(kd)
    dq = tmp_path / "dq.pt"
    out = _ok(["compress", "dq", "--teacher", str(ck), "--student", "ee-baseline",
               "--subspaces", "2", "--centroids", "16", "--layer", "fc2", "--epochs", "1",
               "--batch-size", "32", "-o", str(dq)])
    assert (tmp_path / "dq.kd.pt").is_file() and "C_Q" in out
    _verifies(dq)
    r = CliRunner().invoke(main, ["compress", "kd", "--teacher", str(ck), "--student",
                                  "vtcnn2", "-o", str(tmp_path / "y.pt")])
    assert r.exit_code == 1 and "differ in input shape" in r.output


def test_compress_early_exit_multi_branch_verifies(base, tmp_path):
    _, data, _ = base
    out_ck = tmp_path / "ee.pt"
    out = _ok(["compress", "early-exit", "--model", "ee-v2", "--data", str(data), "--epochs",
               "1", "--batch-size", "32", "-o", str(out_ck)])
    assert "multi-branch" in out
    _verifies(out_ck)


def test_compress_errors_name_the_option_or_file(base, tmp_path):
    _, _, ck = base
    r = CliRunner().invoke(main, ["compress", "imp", str(ck), "--schedule", "0.7,0.5",
                                  "-o", str(tmp_path / "i")])
    assert r.exit_code == 1 and "must increase" in r.output
    r = CliRunner().invoke(main, ["compress", "imp", str(ck), "--schedule", "a,b",
                                  "-o", str(tmp_path / "i")])
    assert r.exit_code == 2 and "--schedule" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    r = CliRunner().invoke(main, ["compress", "pq", str(bad), "--subspaces", "2",
                                  "-o", str(tmp_path / "z.pt")])
    assert r.exit_code == 1 and "bad.pt" in r.output


def test_compress_net_trim_and_dp_verify(base, tmp_path):
    _, _, ck = base
    nt = tmp_path / "nt.pt"
    out = _ok(["compress", "net-trim", str(ck), "--epsilon", "0.1", "--frames", "64",
               "-o", str(nt)])
    saved = torch.load(nt, weights_only=False)
    info = saved["net_trim"]
    w = saved["state_dict"]["fc1.weight"]      # the first FC layer is the default
    assert info["layer"] == "fc1" and info["n_a"] == int((w != 0).sum())
    assert f"p_e {100 * info['p_e']:.2f}%" in out and info["discrepancy"] <= 0.1
    _verifies(nt)
    dp = tmp_path / "dp.pt"
    _ok(["compress", "dp", "--teacher", str(ck), "--student", "ee-baseline", "--epsilon",
         "0.1", "--frames", "64", "--layer", "fc2", "--epochs", "1", "--batch-size", "32",
         "-o", str(dp)])
    assert (tmp_path / "dp.kd.pt").is_file()
    assert torch.load(dp, weights_only=False)["net_trim"]["layer"] == "fc2"
    _verifies(dp)
