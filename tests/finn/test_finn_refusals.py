"""The export's FINN rules are FINN's: a file breaking one rule (each rewrite of the FINN form
left out in turn, each quantizer rule) is run through FINN's own build steps, and FINN indeed
does not build it whole. Needs FINN (tests/finn/conftest.py)."""

import onnx
import pytest

from amchw.export.finn_form import avgpool_as_depthwise, unit_height, vector_quant_params
from amchw.export.qonnx import finn_problems
from amchw.models import ZOO
from amchw.verify.finn import finn_steps

from finn_helpers import BUILDS, _export


def test_every_zoo_model_is_covered():
    """Every zoo model goes through FINN (the GRU-CNN is refused as recurrent)."""
    assert set(BUILDS) | {"inception"} == {n for n in ZOO if not n.startswith("gru-cnn")}


# (model, rewrites applied, the rule left broken, the FINN step that then fails or None when
# FINN converts it but leaves a node outside its HW layers)
RULES = [
    ("vgg10", (vector_quant_params, avgpool_as_depthwise), "1-D window", "streamline"),
    ("vtcnn2", (unit_height, avgpool_as_depthwise), "0-d scalar", "qonnx_to_finn"),
    ("cnn-slim", (unit_height, vector_quant_params), "average pool", None),
    ("sbcnn-teacher", (unit_height, vector_quant_params, avgpool_as_depthwise),
     "one of them a quantizer", "convert_to_hw"),
]


@pytest.mark.parametrize("name,rewrites,rule,step", RULES, ids=[r[2] for r in RULES])
def test_rules_the_finn_form_fixes_are_finns(finn, tmp_path, name, rewrites, rule, step):
    """Without one rewrite of export.finn_form, FINN does not build the model: 1-D windows
    stop streamlining, 0-d bias quantizer parameters stop ConvertQONNXtoFINN, a (1, k)
    average pool stays outside the HW layers (the dataflow partition refuses it), a max pool
    shared by a residual skip leaves a MultiThreshold the HW conversion refuses (layout
    mismatch)."""
    plain = tmp_path / f"{name}.qonnx"
    _export(name, plain, form="qonnx")
    m = onnx.load(str(plain))
    for fix in rewrites:         # every other rewrite, so that just one rule is broken
        fix(m)
    probs = finn_problems(m)
    assert probs and all(rule in p for p in probs), probs
    onnx.save(m, str(plain))
    r = finn_steps(plain, python=finn)
    failed = [s.step for s in r.steps if not s.ok]
    if step is None:
        assert failed == ["dataflow_partition"], [(s.step, s.error) for s in r.steps]
        hw = next(s for s in r.steps if s.step == "convert_to_hw")
        assert "AveragePool" in [op for _, op in hw.non_hw]
    else:
        assert failed == [step], [(s.step, s.error) for s in r.steps]


@pytest.mark.slow
def test_forked_graphs_need_the_fork_aware_streamlining(finn, tmp_path):
    """An early exit forks: FINN's standard step_streamline leaves the scale multiply at the
    fork and the exit branch outside the HW layers; the export says so and the worker
    streamlines such graphs with step_streamline_forks (test_finn_builds: all HW)."""
    path = tmp_path / "ee.qonnx"
    rep, _ = _export("ee-v0", path)   # ResNet, InceptionNet, SBCNN's teacher: the same step
    assert rep.forks == 1
    assert onnx.load(str(path)).metadata_props and any(
        p.key == "amchw.finn_streamline" and p.value == "forks"
        for p in onnx.load(str(path)).metadata_props)
    r = finn_steps(path, python=finn, standard_streamline=True)
    assert r.streamlining == "standard" and not r.ok
    hw = next(s for s in r.steps if s.step == "convert_to_hw")
    assert {"MatMul", "MaxPool"} <= {op for _, op in hw.non_hw}


def _mlp_file(tmp_path):
    """A small quantized MLP (input quantizer, FC, ReLU quantizer, FC), exported for FINN."""
    import warnings

    import numpy as np
    import torch
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    from amchw.export.qonnx import export_model
    from amchw.models.quant import QuantConfig, input_kwargs, relu_kwargs, weight_kwargs

    cfg = QuantConfig()
    torch.manual_seed(0)
    m = torch.nn.Sequential(QuantIdentity(**input_kwargs(cfg)),
                            QuantLinear(16, 8, bias=True, **weight_kwargs(cfg)),
                            QuantReLU(**relu_kwargs(cfg)),
                            QuantLinear(8, 4, bias=True, **weight_kwargs(cfg)))
    m.train()
    for _ in range(3):
        m(torch.randn(8, 16))
    m.eval()
    x = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_model(m, x, tmp_path / "mlp.qonnx", "mlp")
    return tmp_path / "mlp.qonnx"


def _set(m, which: str):
    """Break one quantizer rule in the MLP's file (in place); which quantizer: 0 input, 1 ReLU."""
    import numpy as np
    from onnx import numpy_helper

    inits = {i.name: i for i in m.graph.initializer}
    acts = [n for n in m.graph.node if n.op_type == "Quant" and n.input[0] not in inits]
    if which == "16-bit":
        t = inits[acts[1].input[3]]
        t.CopyFrom(numpy_helper.from_array(np.array(16.0, np.float32), t.name))
    elif which == "zero point":
        t = inits[acts[1].input[2]]
        t.CopyFrom(numpy_helper.from_array(np.array(3.0, np.float32), t.name))
    elif which == "signed after ReLU":
        next(a for a in acts[1].attribute if a.name == "signed").i = 1
    elif which == "unsigned input":
        next(a for a in acts[0].attribute if a.name == "signed").i = 0
        next(a for a in acts[0].attribute if a.name == "narrow").i = 0


# (rule broken, what finn_problems says, the FINN step that fails; None: FINN builds it)
QUANT_RULES = [("16-bit", "16-bit activation", "dataflow_partition"),
               ("zero point", "is not 0", "qonnx_to_finn"),
               ("signed after ReLU", "unsigned and not narrow", "qonnx_to_finn"),
               ("unsigned input", None, None)]


@pytest.mark.parametrize("which,says,step", QUANT_RULES, ids=[r[0] for r in QUANT_RULES])
def test_quantizer_rules_are_finns(finn, tmp_path, which, says, step):
    """Each quantizer rule of finn_problems holds in FINN (and an unsigned input quantizer,
    which FINN builds, is not a rule)."""
    path = _mlp_file(tmp_path)
    m = onnx.load(str(path))
    assert finn_problems(m) == []
    _set(m, which)
    probs = finn_problems(m)
    onnx.save(m, str(path))
    r = finn_steps(path, python=finn)
    if says is None:
        assert probs == [] and r.ok
    else:
        assert len(probs) == 1 and says in probs[0]
        assert [s.step for s in r.steps if not s.ok] == [step]
