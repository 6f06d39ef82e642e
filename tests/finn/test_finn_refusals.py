"""The export's FINN rules are FINN's: each zoo model the export refuses (and each rule the FINN
form fixes) is run through FINN's own build steps in the form the export would have written,
and FINN indeed does not build it whole. Needs FINN (tests/finn/conftest.py)."""

import onnx
import pytest

from amchw.data.synthetic import frames_for
from amchw.export.finn_form import unit_height, vector_quant_params
from amchw.export.qonnx import ExportError, finn_problems
from amchw.models import ZOO
from amchw.verify.finn import finn_steps

from finn_helpers import BUILDS, REFUSED, _export
#: the early exits share one structure: FINN confirms the rule on V0
CONFIRM = sorted(set(REFUSED) - {"ee-v1", "ee-v2", "ee-v3"})


def test_every_zoo_model_is_covered():
    assert set(BUILDS) | set(REFUSED) | {"gru-cnn"} == set(ZOO)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_export_refuses_naming_the_node(tmp_path, name):
    with pytest.raises(ExportError, match=REFUSED[name]):
        _export(name, tmp_path / "refused.qonnx")
    assert not (tmp_path / "refused.qonnx").exists()


@pytest.mark.parametrize("name", CONFIRM)
def test_finn_does_not_build_what_the_export_refuses(finn, tmp_path, name):
    plain = tmp_path / "plain.qonnx"
    _export(name, plain, form="qonnx")
    m = onnx.load(str(plain))
    unit_height(m)
    vector_quant_params(m)
    assert any(REFUSED[name] in p for p in finn_problems(m))
    forced = tmp_path / "forced.qonnx"
    onnx.save(m, str(forced))
    r = finn_steps(forced, python=finn)
    assert not r.ok
    assert (not all(s.ok for s in r.steps) or len(r.steps) < 5
            or r.unexpected_non_hw), r.to_dict()


def test_rules_the_finn_form_fixes_are_finns(finn, tmp_path):
    """Without the rewrites of export.finn_form, FINN fails: 1-D windows (VGG10 stops in
    streamlining) and 0-d bias quantizer parameters (VTCNN2 stops in ConvertQONNXtoFINN)."""
    for name, fix, step in (("vgg10", vector_quant_params, "streamline"),
                            ("vtcnn2", unit_height, "qonnx_to_finn")):
        plain = tmp_path / f"{name}.qonnx"
        _export(name, plain, form="qonnx")
        m = onnx.load(str(plain))
        fix(m)          # the other rewrite only, so just one rule is broken
        probs = finn_problems(m)
        assert probs and all(("1-D window" in p) if name == "vgg10" else ("0-d scalar" in p)
                             for p in probs)
        onnx.save(m, str(plain))
        r = finn_steps(plain, python=finn)
        failed = [s.step for s in r.steps if not s.ok]
        assert failed == [step], [(s.step, s.error) for s in r.steps]


