"""FINN itself as the judge: each zoo model FINN builds goes through FINN's own front
end and CPU build steps (ConvertQONNXtoFINN, tidy-up, streamlining, conversion to HW layers,
dataflow partition) in FINN's virtual environment, and FINN's execution after every step
equals amchw's integer run bit for bit (outputs, and every MultiThreshold after
streamlining). A model the export refuses is run through FINN anyway, in the form the export
would have written, to confirm that FINN indeed does not build it: the refusal rules are
FINN's, not ours.

Needs FINN: `bash scripts/finn-venv.sh` (the README's install step). Without it these tests
skip, except under CI (CI=true), where a missing FINN is a failure.
"""

import numpy as np
import pytest
import torch

from amchw.data.synthetic import frames_for
from amchw.models import ZOO
from amchw.verify.finn import EXACT_STEPS, compare_with_finn, run_finn

from finn_helpers import BUILDS, NO_LAYER_VIEW, SLOW_BUILDS, _export, _model
FRAMES = 4


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BUILDS
                                  else n for n in BUILDS])
def test_finn_builds_the_export_and_computes_amchws_integers(finn, tmp_path, name):
    path = tmp_path / f"{name}.qonnx"
    rep, _ = _export(name, path)
    assert rep.form == "finn" and rep.ties == "half_up" and rep.finn_problems == []
    frames = frames_for(name, FRAMES, seed=7)
    r = compare_with_finn(path, frames, python=finn)
    assert [s.step for s in r.steps] == ["qonnx_to_finn", "tidy_up", "streamline",
                                         "convert_to_hw", "dataflow_partition"]
    assert all(s.ok for s in r.steps), [(s.step, s.error) for s in r.steps if not s.ok]
    # only the host-side input transpose (NCHW -> NHWC) stays outside FINN's HW layers
    assert [op for _, op in r.steps[-1].non_hw] == ["Transpose"]
    outputs = 2 if name.startswith("ee-v") else 1      # an early exit: (exit, final)
    assert all(s.outputs_compared == FRAMES * ZOO[name].num_classes * outputs
               for s in r.steps)
    forks = {"resnet": 4, "sbcnn-teacher": 3, "ibcnn-teacher": 4}.get(
        name, 1 if outputs == 2 else 0)
    assert rep.forks == forks and r.streamlining == ("forks" if forks else "standard")
    # from streamlining on FINN computes as its hardware will: equal bits
    exact = [s for s in r.steps if s.step in EXACT_STEPS]
    assert len(exact) == 3 and all(s.output_mismatches == 0 for s in exact)
    assert all(s.argmax_agreement == 1.0 for s in exact)
    # layer by layer: one MultiThreshold per IR quantizer; every code equal where FINN's
    # thresholds are exact; where it folds a BatchNorm in float32, a difference only at a
    # near-tie (1 LSB, |frac - 1/2| <= 1e-3), counted
    if name in NO_LAYER_VIEW:
        assert not r.layers and "MultiThresholds" in r.layer_note
    else:
        assert r.layers and r.layer_note == ""
    assert all(m.forbidden == 0 for m in r.layers)
    assert all(m.mismatches == 0 for m in r.layers if m.exact)
    assert name in NO_LAYER_VIEW or (r.layers[0].exact and r.layers[0].ir_node == "inp")
    assert r.near_ties <= 1e-3 * sum(m.compared for m in r.layers)
    assert r.ok



def test_finn_rounds_ties_up_and_the_ir_follows(finn, tmp_path):
    """The same file compared with the IR under the qonnx/Brevitas rule (half to even)
    differs from FINN: exact ties occur (power-of-two scales), and FINN rounds them up."""
    path = tmp_path / "vtcnn2.qonnx"
    _export("vtcnn2", path)
    frames = frames_for("vtcnn2", FRAMES, seed=7)
    ran = run_finn(path, frames.reshape(FRAMES, 1, 2, 128), python=finn)   # FINN runs once
    even = compare_with_finn(path, frames, ties="qonnx", finn_run=ran)
    assert even.mismatches > 0 and not even.ok
    # VTCNN2's thresholds are all exact (power-of-two scales, integer biases): any
    # difference is forbidden, and under FINN's rule there is none
    assert all(m.exact for m in even.layers) and sum(m.forbidden for m in even.layers) > 0
    up = compare_with_finn(path, frames, finn_run=ran)           # the file's rule: finn
    assert up.mismatches == 0 and up.ok


def test_unit_height_keeps_every_value(tmp_path):
    """The FINN form of a 1-D model is the same computation: the IR pass and the ONNX
    rewrite agree, value for value, with the 1-D graph (no FINN needed)."""
    from amchw.ir.interp import run
    from amchw.ir.passes import unit_height as ir_unit_height
    from amchw.lower.brevitas import lower
    from amchw.sims.hardware import get_target
    from amchw.sims.simulate import simulate

    m, fr = _model("vgg10")
    g = lower(m, torch.as_tensor(fr[:4]), name="vgg10")
    g2 = ir_unit_height(g)
    assert g2.inputs[0].shape == (2, 1, 1024)
    a, b = run(g, fr, "ref", keep=True), run(g2, fr.reshape(16, 2, 1, 1024), "ref", keep=True)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k].ravel(), b[k].ravel()), k
    # and the hardware sees the same GEMMs: cycles and energy are unchanged
    t = get_target("edge-asic-45nm")
    s1, s2 = simulate(g, t), simulate(g2, t)
    assert s1.to_dict()["totals"] == s2.to_dict()["totals"]


def test_average_pool_as_depthwise_keeps_every_value():
    """The FINN form of an average pool: a depthwise convolution with unit weights gives the
    same accumulators and, after its requantizer, the same codes (no FINN needed)."""
    from amchw.ir.interp import run
    from amchw.ir.passes import avgpool_as_depthwise, unit_height
    from amchw.lower.brevitas import lower

    m, fr = _model("cnn-slim")
    g = unit_height(lower(m, torch.as_tensor(fr[:4]), name="cnn-slim"))
    g2 = avgpool_as_depthwise(g)
    pool = [n for n in g.nodes if n.op.kind == "AvgPool"]
    assert len(pool) == 1 and g2.node(pool[0].name).op.kind == "Conv"
    assert g2.node(pool[0].name).op.groups == g2.node(pool[0].name).output.shape[0]
    x = fr.reshape((16,) + g.inputs[0].shape)
    a, b = run(g, x, "ref", keep=True), run(g2, x, "ref", keep=True)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_amchw_verify_against_finn(finn, tmp_path):
    """`amchw verify --reference finn` exports a zoo model for FINN and compares (a file is
    compared as it is: the same function, tested above)."""
    from click.testing import CliRunner

    from amchw.cli import main

    r = CliRunner().invoke(main, ["verify", "--model", "sbcnn-student", "--reference", "finn",
                                  "--frames", "2", "--finn-python", finn])
    assert r.exit_code == 0, r.output
    assert "OK: 0 mismatches" in r.output and "dataflow_partition" in r.output
    assert "inputs: synthetic rml2018 frames, seed 0" in r.output
