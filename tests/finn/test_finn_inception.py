"""InceptionNet through FINN (slow: FINN's fork-aware streamlining copies its 10M-weight model
for every transformation, about 2.5 minutes on 2 cores). Four branches per module fork from
one tensor and join in a concatenation; FINN builds it whole with step_streamline_forks, and
its execution equals amchw's integers. Runs in CI (`pytest -q -m slow`), not in the default
suite."""

import pytest

from amchw.data.synthetic import frames_for
from amchw.verify.finn import EXACT_STEPS, compare_with_finn

from finn_helpers import _export


@pytest.mark.slow
def test_finn_builds_inception_and_computes_amchws_integers(finn, tmp_path):
    path = tmp_path / "inception.qonnx"
    rep, _ = _export("inception", path)
    assert rep.forks > 0 and rep.finn_problems == []
    r = compare_with_finn(path, frames_for("inception", 1, seed=7), python=finn)
    assert r.streamlining == "forks"
    assert all(s.ok for s in r.steps) and len(r.steps) == 5
    assert [op for _, op in r.steps[-1].non_hw] == ["Transpose"]
    assert all(s.output_mismatches == 0 for s in r.steps if s.step in EXACT_STEPS)
    assert r.layers and all(m.forbidden == 0 for m in r.layers)
    assert r.ok
