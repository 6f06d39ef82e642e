"""The cache of lowered graphs and integer checks (amchw.cache): a cached graph is the lowered
graph bit for bit, a key follows what the graph depends on (file bytes, options), a damaged
entry is recomputed, AMCHW_CACHE=off writes nothing, and a warm `simulate` of a QONNX file or a
zoo name imports neither torch nor onnx."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantIdentity, QuantLinear
from click.testing import CliRunner
from torch import nn

from amchw import cache
from amchw.cli import main
from amchw.ir.io import save
from amchw.ir.printer import to_text
from amchw.models.quant import QuantConfig, input_kwargs, weight_kwargs
from amchw.resolve import resolve_graph


def _arrays(g):
    return [(n.name, k, v) for n in g.nodes for k, v in sorted(vars(n.op).items())
            if isinstance(v, np.ndarray)]


def _same_graph(a, b):
    assert to_text(a) == to_text(b)
    pa, pb = _arrays(a), _arrays(b)
    assert [p[:2] for p in pa] == [p[:2] for p in pb] and pa
    for (_, _, u), (_, _, v) in zip(pa, pb):
        assert u.dtype == v.dtype and np.array_equal(u, v)


def test_a_zoo_graph_is_lowered_once_and_read_back_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("AMCHW_CACHE_DIR", str(tmp_path))
    first = resolve_graph("vtcnn2", "po2", 8, 8, 0)
    again = resolve_graph("vtcnn2", "po2", 8, 8, 0)
    assert not first.cached and again.cached and first.key == again.key
    _same_graph(first.graph, again.graph)
    # every option the lowering depends on is in the key
    other = resolve_graph("vtcnn2", "po2", 6, 8, 0)
    assert other.key != first.key and not other.cached
    # a damaged entry is a miss, recomputed and rewritten
    (tmp_path / "graphs" / f"{first.key}.npz").write_bytes(b"not a zip")
    fixed = resolve_graph("vtcnn2", "po2", 8, 8, 0)
    assert not fixed.cached
    _same_graph(first.graph, fixed.graph)
    assert resolve_graph("vtcnn2", "po2", 8, 8, 0).cached
    # off: nothing read or written
    monkeypatch.setenv("AMCHW_CACHE", "off")
    off = resolve_graph("vtcnn2", "po2", 8, 8, 0)
    assert off.key is None and not off.cached
    monkeypatch.delenv("AMCHW_CACHE")
    assert cache.clear() == 4 and cache.info()["kinds"]["graphs"]["files"] == 0


def test_a_file_key_follows_its_bytes_not_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("AMCHW_CACHE_DIR", str(tmp_path / "c"))
    g0 = resolve_graph("vtcnn2", "po2", 8, 8, 0).graph
    g1 = resolve_graph("vtcnn2", "po2", 8, 8, 1).graph
    a, b = save(g0, tmp_path / "a.npz"), save(g0, tmp_path / "b.npz")
    ra, rb = (resolve_graph(str(p), "po2", 8, 8, 0) for p in (a, b))
    assert ra.key == rb.key
    save(g1, a)
    assert resolve_graph(str(a), "po2", 8, 8, 0).key != rb.key


def _qonnx(path):
    cfg = QuantConfig()
    torch.manual_seed(0)
    model = nn.Sequential(QuantIdentity(**input_kwargs(cfg)),
                          QuantLinear(256, 11, bias=True, **weight_kwargs(cfg))).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.randn(1, 256), export_path=str(path), dynamo=False)
    return path


def test_warm_simulate_imports_neither_torch_nor_onnx_and_says_the_check_was_cached(tmp_path):
    path = _qonnx(tmp_path / "m.qonnx")
    env = {**os.environ, "AMCHW_CACHE_DIR": str(tmp_path / "c")}
    code = ("import sys, json\n"
            "from click.testing import CliRunner\n"
            "from amchw.cli import main\n"
            "r = CliRunner().invoke(main, ['simulate', sys.argv[1], '--array', '4x4', '--json'])\n"
            "d = json.loads(r.output)\n"
            "mods = sorted(m for m in ('torch', 'onnx', 'brevitas') if m in sys.modules)\n"
            "print(json.dumps([r.exit_code, d['integer_check'], d['totals']['cycles'], mods]))\n")
    runs = []
    for spec in (str(path), str(path), "vtcnn2", "vtcnn2"):
        p = subprocess.run([sys.executable, "-c", code, spec], capture_output=True, text=True,
                           env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    (c1, ic1, cyc1, mods1), (c2, ic2, cyc2, mods2) = runs[:2]
    assert c1 == c2 == 0 and cyc1 == cyc2
    assert ic1["equal"] and not ic1["cached"] and ic2["equal"] and ic2["cached"]
    assert "onnx" in mods1 and mods2 == []
    (z1, zi1, zc1, zm1), (z2, zi2, zc2, zm2) = runs[2:]
    assert z1 == z2 == 0 and zc1 == zc2 and zi2["cached"] and not zi1["cached"]
    assert "torch" in zm1 and zm2 == []


def test_cache_command_says_where_and_clears(tmp_path, monkeypatch):
    monkeypatch.setenv("AMCHW_CACHE_DIR", str(tmp_path))
    resolve_graph("vtcnn2", "po2", 8, 8, 0)
    r = CliRunner().invoke(main, ["cache", "info", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["kinds"]["graphs"]["files"] == 2
    r = CliRunner().invoke(main, ["cache", "clear"])
    assert r.exit_code == 0 and "removed 2 files" in r.output
    assert "empty" in CliRunner().invoke(main, ["cache"]).output


def test_the_zoo_table_is_counted_once_and_read_back_the_same(tmp_path, monkeypatch):
    from amchw.runs import zoo_summary

    monkeypatch.setenv("AMCHW_CACHE_DIR", str(tmp_path))
    first = zoo_summary()
    assert cache.info()["kinds"]["tables"]["files"] == 1
    assert zoo_summary() == first and any(r["name"] == "vtcnn2" for r in first)
