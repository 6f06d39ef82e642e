"""Comparisons of the IR with independent references: Brevitas (verify.brevitas, needs torch),
qonnx's executor (verify.qonnx), FINN (verify.finn), and an exported QONNX file re-imported
(verify.roundtrip, the export self-check)."""

TIE_TOL = 1e-3  # |fraction - 0.5| below which a float32 disagreement is a near-tie
