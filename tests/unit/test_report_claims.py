"""The report's seed claims: each judged by its stated criterion from the checkpoints' figures
(hand-made checkpoints here; the documented run in docs/results/seeds)."""

from pathlib import Path

from amchw.report import Checkpoint, Page, PageContext
from amchw.report.claims import claims


def _ck(name, kind, model, acc, frames=10000, **info):
    return Checkpoint(name, kind, name, f"{name}.pt", "d.h5", dict(info, model=model),
                      {"int_acc": acc, "float_acc": info.pop("float_acc", acc),
                       "frames": frames},
                      {"t": {"dense": {"macs": info.get("macs", 1)}}})


def _ctx(cks, exps):
    return PageContext(Page(), {}, cks, {e["name"]: e for e in exps},
                       {c.experiment: c for c in cks}, ["t"], Path("."))


def _judged(cks, exps):
    return {c.claim: c for c in claims(_ctx(cks, exps))}


def test_net_trim_pq_kd_and_combined_claims_follow_their_criteria():
    exps = [{"name": "v", "kind": "train"}, {"name": "r", "kind": "train"},
            {"name": "i", "kind": "train"},
            {"name": "v-nt", "kind": "net-trim", "start": "v"},
            {"name": "r-nt", "kind": "net-trim", "start": "r"},
            {"name": "v-pq", "kind": "pq", "start": "v"},
            {"name": "kd1", "kind": "kd", "teacher": "i", "benchmark": "v"},
            {"name": "kd3", "kind": "kd", "teacher": "i", "benchmark": "r"},
            {"name": "dp", "kind": "net-trim", "start": "kd1"}]
    cks = [_ck("v", "train", "vtcnn2", 0.40), _ck("r", "train", "resnet", 0.45),
           _ck("i", "train", "inception", 0.50),
           _ck("v-nt", "net-trim", "vtcnn2", 0.395, epsilon=0.08, p_e=0.97),   # kept
           _ck("r-nt", "net-trim", "resnet", 0.42, epsilon=0.08, p_e=0.99),    # -3 pp
           _ck("v-pq", "pq", "vtcnn2", 0.39, subspaces=2, C_Q_64bit=39.65),   # -1.0 pp
           _ck("kd1", "kd", "vtcnn2", 0.38), _ck("kd3", "kd", "resnet", 0.443),
           _ck("dp", "net-trim", "vtcnn2", 0.41, epsilon=0.08, p_e=0.96)]
    j = _judged(cks, exps)
    assert j["Net-Trim (epsilon 0.08) keeps vtcnn2's accuracy at p_e ~96.5%"].holds
    assert not j["Net-Trim (epsilon 0.08) keeps resnet's accuracy at p_e ~98.1%"].holds
    assert "-3.0 pp" in j["Net-Trim (epsilon 0.08) keeps resnet's accuracy at p_e ~98.1%"].ours
    assert j["Net-Trim reaches p_e >= 90% at every epsilon"].holds
    assert j["PQ (P = 2) keeps vtcnn2's accuracy at C_Q 39.65"].holds    # exactly -1 pp
    assert not j["KD case I (vtcnn2 <- inception): the student is improved"].holds
    assert j["KD case III (resnet <- inception): the student is comparable"].holds  # -0.7
    assert j["DP marginally improves on the benchmark vtcnn2"].holds     # vs v, not kd1
    assert not j["DP reaches a higher p_e than Net-Trim alone"].holds    # 0.96 < 0.97
    # s.e. of a difference of two accuracies on 10,000 frames each
    assert "s.e. 0.7" in j["Net-Trim (epsilon 0.08) keeps vtcnn2's accuracy at p_e ~96.5%"].ours


def test_compression_and_early_exit_claims():
    exps = [{"name": "m", "kind": "train"}, {"name": "s", "kind": "train"},
            {"name": "f", "kind": "train"}, {"name": "p", "kind": "ptq", "start": "f"},
            {"name": "e", "kind": "early-exit"}]
    rows = [{"snr": 0, "frames": 100, "accuracy": 0.2, "final_accuracy": 0.5,
             "exit_fraction": 0.1, "energy_saving": 0.05},
            {"snr": 10, "frames": 100, "accuracy": 0.9, "final_accuracy": 0.9,
             "exit_fraction": 0.8, "energy_saving": 0.52},
            {"snr": 18, "frames": 300, "accuracy": 0.94, "final_accuracy": 0.948,
             "exit_fraction": 0.9, "energy_saving": 0.6},
            {"snr": "all", "frames": 500, "accuracy": 0, "final_accuracy": 0,
             "exit_fraction": 0, "energy_saving": 0}]
    e = _ck("e", "early-exit", "ee-v1", 0.5)
    e.early_exit = {"threshold": 0.8, "targets": {"t": {"rows": rows}},
                    "cpu_ms": {"exit@1": 0.1, "full@1": 0.3}}
    cks = [_ck("m", "train", "cnn-matlab", 0.95, macs=1000),
           _ck("s", "train", "cnn-slim", 0.946, macs=306),
           _ck("f", "train", "cnn-slim", None, float_acc=0.96, float_only=True),
           _ck("p", "ptq", "cnn-slim", 0.952), e]
    j = _judged(cks, exps)
    slim = j["Slimming costs < 0.5 pp at -70% MACs"]
    assert slim.holds and "MACs -69.4%" in slim.ours
    ptq = j["INT8 post-training quantization costs < 0.5 pp"]
    assert not ptq.holds and "-0.8 pp" in ptq.ours
    ee = j["e: early exits save time at high SNR without accuracy loss"]
    # >= 10 dB: accuracy (0.9 + 3 x 0.94) / 4 = 0.93 vs 0.936 final-only: -0.6 pp; saving 0.58
    assert ee.holds and "88% exit" in ee.ours and "58% saved" in ee.ours and "-0.6 pp" in ee.ours
    assert "0.100 ms vs full 0.300 ms" in ee.ours
