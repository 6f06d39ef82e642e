"""The integer early-exit decision in graphs: add_exit_rule on hand-built graphs (bias folded or
refused, validator, printer, save/load, backends), and on ee-v1 / ee-v3 against the float rule
on the Brevitas exit logits: flags bit-equal across backends, equal to the float rule on every
frame whose entropy is farther than the stated bound from the threshold."""

import math
from dataclasses import replace

import numpy as np
import pytest

from amchw.ir import (Dense, Dequantize, EntropyExit, FloatType, GraphBuilder, IRError, QType,
                      Quantize, acc_type, validate)
from amchw.ir.early_exit import (add_exit_rule, decide, entropy10, error_bound, exit_node,
                                 float_exit, run_early_exit, with_threshold)
from amchw.ir.interp import run
from amchw.ir.io import load, save
from amchw.ir.printer import to_text

I8 = QType(8, True, False, (2.0**-6,))
W8 = QType(8, True, True, (2.0**-7,))


def two_head_graph(bias=None, w_scale=W8):
    """x -> Quantize -> (Dense -> Dequantize(bias) = out0, Dense -> Dequantize = out1)."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("twohead")
    b.input("x", (16,), FloatType())
    q = b.add("q", Quantize(I8), ["x"])
    outs = []
    for i, db in enumerate((bias, None)):
        w = rng.integers(-127, 128, (10, 16)).astype(np.int32)
        d = b.add(f"fc{i}", Dense(w, None, w_scale, acc_type(I8, w_scale)), [q.name])
        outs.append(b.add(f"out{i}", Dequantize(db), [d.name]).name)
    return b.build(outs)


def frames(n, seed=0, spread=3.0):
    return (np.random.default_rng(seed).normal(0, spread, (n, 16))).astype(np.float32)


def test_float_rule():
    assert entropy10(np.zeros((1, 10)))[0] == pytest.approx(1.0, abs=1e-15)
    assert entropy10(np.array([[1e3, 0, 0]]))[0] == 0.0
    z = np.array([[0.0, math.log(3.0)]])                 # p = (1/4, 3/4)
    want = -(0.25 * math.log10(0.25) + 0.75 * math.log10(0.75))
    assert entropy10(z)[0] == pytest.approx(want, rel=1e-14)
    assert entropy10(z + 1e6)[0] == pytest.approx(want, rel=1e-9)   # shift-invariant
    assert float_exit(z, want + 1e-9).tolist() == [True]
    assert float_exit(z, want - 1e-9).tolist() == [False]


def test_add_exit_rule_graph_backends_printer_and_io(tmp_path):
    g = two_head_graph()
    g2 = add_exit_rule(g, 0.3)
    assert g2.outputs == ("out0", "out1", "exit")
    node = exit_node(g2)
    assert node.inputs == ("fc0",) and node.output.shape == ()
    assert [n.name for n in g2.nodes].index("exit") == [n.name for n in g2.nodes].index("out0") + 1
    x = frames(200)
    outs = {b: run(g2, x, b) for b in ("ref", "numba", "fast")}
    for b in ("numba", "fast"):
        assert all(np.array_equal(a, c) for a, c in zip(outs["ref"], outs[b]))
    flags = outs["ref"][2]
    assert flags.dtype == np.int32 and set(np.unique(flags)) <= {0, 1}
    # the two heads are as without the rule
    base = run(g, x, "ref")
    assert np.array_equal(base[0], outs["ref"][0]) and np.array_equal(base[1], outs["ref"][1])
    h = entropy10(outs["ref"][0])
    far = np.abs(h - 0.3) > error_bound(g2)
    assert 0 < flags.mean() < 1 and np.array_equal(flags[far] == 1, h[far] <= 0.3)
    # printer, save/load
    line = next(ln for ln in to_text(g2).splitlines() if "= EntropyExit" in ln)
    assert "threshold=0.3" in line and "frac_bits=24" in line and "exp_hi=int64[" in line
    assert line.endswith("-> u8[] scale=2^0 zp=0  # exit rule on out0")
    p = save(g2, tmp_path / "g.npz")
    g3 = load(p)
    assert g3 == g2 and to_text(g3) == to_text(g2)
    # run_early_exit / decide / with_threshold
    r = run_early_exit(g2, x, "fast", batch=64)
    assert np.array_equal(r["flags"], flags) and np.array_equal(r["final_logits"], base[1])
    for T in (0.0, 0.1, 0.9, math.inf):
        want = run(with_threshold(g2, T), x, "ref")[2]
        assert np.array_equal(decide(g2, r["codes"], T), want)
        assert np.array_equal(decide(g2, r["codes"], T, "ref"), want)
    assert run(with_threshold(g2, math.inf), x, "fast")[2].tolist() == [1] * 200
    assert run(with_threshold(g2, -0.01), x, "fast")[2].tolist() == [0] * 200


def test_bias_folded_when_a_multiple_of_the_scale_else_refused():
    s = 2.0**-13                                          # the accumulator scale s_x * s_w
    k = np.arange(-5, 5, dtype=np.int64) * 37
    g = add_exit_rule(two_head_graph(bias=k * s), 0.2)
    node = exit_node(g)
    assert node.op.offset.tolist() == k.tolist()
    x = frames(300)
    flags = run(g, x, "numba")[2]
    assert np.array_equal(flags, run(g, x, "ref")[2])
    h = entropy10(run(g, x, "ref")[0])                    # out0 includes the bias
    far = np.abs(h - 0.2) > error_bound(g)
    assert np.array_equal(flags[far] == 1, h[far] <= 0.2)
    assert exit_node(add_exit_rule(two_head_graph(bias=np.zeros(10)), 0.2)).op.offset is None
    with pytest.raises(IRError, match=r"node 'out0' \(Dequantize\): float bias 0.1 .*logit 3"):
        add_exit_rule(two_head_graph(bias=np.where(np.arange(10) == 3, 0.1, 0.0)), 0.2)


def test_refusals_and_the_validator():
    g = two_head_graph()
    with pytest.raises(IRError, match="no output 'nope'"):
        add_exit_rule(g, 0.05, exit_output="nope")
    g2 = add_exit_rule(g, 0.05)
    with pytest.raises(IRError, match="already has an exit decision"):
        add_exit_rule(g2, 0.05)
    pc = QType(8, True, True, tuple(2.0 ** -np.arange(7, 17)))
    with pytest.raises(IRError, match="per-channel"):
        add_exit_rule(two_head_graph(w_scale=pc), 0.05)
    node = exit_node(g2)
    bad = {"c_fix": node.op.c_fix + 1, "threshold": 0.06,
           "exp_hi": np.concatenate([node.op.exp_hi, [0]]), "g_bits": node.op.g_bits - 1}
    for field, v in bad.items():
        op = replace(node.op, **{field: v})
        g3 = replace(g2, nodes=tuple(replace(n, op=op) if n is node else n for n in g2.nodes))
        with pytest.raises(IRError, match=r"node 'exit' \(EntropyExit\): \w+ is not the one"):
            validate(g3)
    with pytest.raises(IRError, match="NaN"):
        EntropyExit.make(float("nan"), 2.0**-16, 10)
    with pytest.raises(IRError, match="too fine"):
        EntropyExit.make(0.05, 2.0**-24, 10)


# ----------------------------------------------------------------- ee-v* against the float rule

THRESHOLDS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)


def _agreement(name, stretches, n_frames=384):
    """For zoo model `name` with random weights, its exit head's last layer multiplied by
    2^stretch (po2 scales: the logits scale exactly by 2^stretch), for each stretch: the
    float entropies, the error bound and per threshold (T, exit fraction, agreement with the
    float rule, frames within the margin)."""
    import torch

    from amchw.data.synthetic import frames_for
    from amchw.lower.brevitas import lower
    from amchw.models import QuantConfig, build
    from amchw.models.calibrate import calibrate

    x = frames_for(name, n_frames, seed=1)
    m = build(name, QuantConfig(), seed=0)
    calibrate(m, torch.as_tensor(x[:128]), seed=0)
    out = []
    done = 0
    for stretch in stretches:
        with torch.no_grad():
            m.exit.fc3.weight.mul_(2.0 ** (stretch - done))
            m.exit.fc3.bias.mul_(2.0 ** (stretch - done))
            z = m(torch.as_tensor(x))[0].numpy().astype(np.float64)   # the float exit logits
        done = stretch
        g = lower(m, torch.as_tensor(x[:4]), name=name)
        assert all(n.op.bias is None or not np.any(n.op.bias) for n in g.nodes
                   if isinstance(n.op, Dequantize))              # Int32Bias: nothing to fold
        g = add_exit_rule(g, 0.05)
        fast, ref = run_early_exit(g, x, "fast"), run_early_exit(g, x, "ref")
        assert np.array_equal(fast["flags"], ref["flags"])
        assert np.array_equal(fast["codes"], ref["codes"])
        h = entropy10(z)
        # the float rule reads Brevitas' float32 logits; where they differ from the IR's
        # (float32 rounding, or a near-tie code in the trunk) the entropy moves by at most
        # |dz|_max (|dH10| <= sum_j |dH/dz_j| |dz_j| <= 0.65 |dz|_max): added to the margin
        dz = np.abs(fast["exit_logits"] - z).max(axis=1)
        eps = error_bound(g)
        rows = []
        for T in THRESHOLDS:
            flags = decide(g, fast["codes"], T)
            assert np.array_equal(flags, decide(g, ref["codes"], T, "ref"))
            if T == 0.05:
                assert np.array_equal(flags, fast["flags"])
            agree = (flags == 1) == float_exit(z, T)
            far = np.abs(h - T) > eps + dz
            assert agree[far].all(), (name, T, np.flatnonzero(far & ~agree))
            rows.append((T, float(flags.mean()), float(agree.mean()), int((~far).sum())))
        out.append((stretch, h, eps, rows))
    return out


@pytest.mark.parametrize("name,stretches", [("ee-v1", (0, 4)), ("ee-v3", (4,))])
def test_ee_models_agree_with_the_float_rule(name, stretches):
    for stretch, h, eps, rows in _agreement(name, stretches):
        if stretch:  # a realistic spread of entropies over [0, 0.9] (above: unstretched)
            assert np.histogram(h, bins=[0, 0.1, 0.5, 0.9])[0].min() >= 10
        else:        # random weights: nearly uniform softmax
            assert h.min() > 0.9
        print(f"\n{name} x2^{stretch}: error bound {eps:.2e}; entropy quartiles "
              f"{np.percentile(h, [25, 50, 75]).round(3).tolist()}")
        for T, exit_frac, agree, near in rows:
            print(f"  T={T:<5} exit {exit_frac:.3f} agreement with the float rule {agree:.4f} "
                  f"({near} frames within the margin)")


def test_exit_path_computes_the_exit_alone_and_is_timed():
    """exit_path: only the nodes the exit logits and the decision need, giving the same bits
    as the whole graph; path_times measures both paths per frame."""
    from amchw.ir.early_exit import exit_path, path_times

    g = add_exit_rule(two_head_graph(), 0.3)
    ep = exit_path(g, "out0")
    assert {n.name for n in ep.nodes} == {"q", "fc0", "out0", "exit"}
    assert ep.outputs == ("out0", "exit")
    x = frames(50)
    full = dict(zip(g.outputs, run(g, x, "fast")))
    part = dict(zip(ep.outputs, run(ep, x, "fast")))
    for k in ("out0", "exit"):
        assert np.array_equal(part[k], full[k])
    t = path_times(g, x, "out0", (1, 50), min_time=0.0)
    assert set(t) == {"exit@1", "full@1", "exit@50", "full@50"} and min(t.values()) > 0
