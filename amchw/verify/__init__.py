"""Comparisons of the IR with independent references: Brevitas (verify.brevitas, needs torch)
and qonnx's executor (verify.qonnx)."""

TIE_TOL = 1e-3  # |fraction - 0.5| below which a float32 disagreement is a near-tie
