"""amchw compress pq on a zoo model: k-means product quantization of one FC layer; the written
checkpoint's layer is stored pqP:K in the IR (its codes decompose exactly), verifies and
simulates; bad requests name the option."""

import json

import numpy as np
import torch
from click.testing import CliRunner

from amchw.cli import main
from amchw.compress import product_quantize
from amchw.data.synthetic import frames_for
from amchw.ir.sparse import fits, pq_codebooks, set_format
from amchw.kernels.pq import compression_rate, pq_reconstruct
from amchw.lower.brevitas import lower
from amchw.models import build
from amchw.resolve import load_model


def test_product_quantize_rewrites_the_layer_exactly():
    m = build("vgg10", seed=0).eval()
    info = product_quantize(m.fc9, "fc9", 4, 8, seed=0)   # 128 x 128, d = 32
    assert info["codes"].shape == (128, 4) and info["codebooks"].shape == (4, 8, 32)
    q = m.fc9.quant_weight().int().numpy()
    assert np.array_equal(q, pq_reconstruct(info["codes"], info["codebooks"]).T)
    assert info["C_Q_64bit"] == compression_rate(128, 128, 4, 8, 64)


def test_pq_command_end_to_end(tmp_path):
    out = tmp_path / "pq.pt"
    r = CliRunner().invoke(main, ["compress", "pq", "vgg10", "--layer", "fc8", "--subspaces",
                                  "2", "--centroids", "16", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "PQ fc8: 512 x 128, P=2 K_s=16" in r.output and "fc8 stored pq2:16" in r.output
    m = load_model(str(out), "po2", 8, 8, None, 0)
    fr = frames_for("vgg10", 8, seed=0)
    g = lower(m, torch.as_tensor(fr[:2]), name="vgg10")
    fc8 = next(n.op for n in g.nodes if n.name == "fc8")
    assert fits(fc8, "pq2:16") and not fits(fc8, "pq2:8")
    g2, skipped = set_format(g, "pq2:16", layers=["fc8"])
    from amchw.ir.interp import run

    assert np.array_equal(run(g2, fr, "numba"), run(g, fr, "ref"))
    codes, books = pq_codebooks(next(n.op for n in g2.nodes if n.name == "fc8"))
    assert codes.shape == (512, 2) and books.shape == (2, 16, 64)
    r = CliRunner().invoke(main, ["verify", "--model", str(out), "--frames", "8", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["forbidden"] == 0
    r = CliRunner().invoke(main, ["simulate", "--model", str(out), "--array", "4x4",
                                  "--sparse-format", "pq2:16", "--json"])
    assert r.exit_code == 0, r.output
    fc = {x["node"]: x for x in json.loads(r.output)["layers"]}["fc8"]
    assert fc["sparse"]["handling"] == "bins"  # 512 inputs > 16 centroids
    for bad, msg in ((["--layer", "conv1"], "takes a QuantLinear"),
                     (["--layer", "fc99"], "no layer 'fc99'"),
                     (["--layer", "fc10", "--centroids", "256"], "more inputs")):
        args = ["compress", "pq", "vgg10", "--subspaces", "2", "-o", str(tmp_path / "x.pt")] + bad
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and msg in r.output, r.output
