"""Comparisons of the IR with independent references: Brevitas (verify.brevitas, needs torch),
qonnx's executor (verify.qonnx), FINN (verify.finn), and an exported QONNX file re-imported
(verify.roundtrip, the export self-check)."""

from dataclasses import asdict

TIE_TOL = 1e-3  # |fraction - 0.5| below which a float32 disagreement is a near-tie


class Verdict:
    """What every comparison report says at the top: `forbidden` (its rows' forbidden
    differences, summed by the report) and `ok` (none); to_dict adds both to the fields."""

    forbidden: int

    @property
    def ok(self) -> bool:
        return self.forbidden == 0

    def to_dict(self) -> dict:
        d = asdict(self)  # type: ignore[call-overload]  # every report is a dataclass
        d["forbidden"] = self.forbidden
        d["ok"] = self.ok
        return d
