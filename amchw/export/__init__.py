"""Export and reports: FINN-ready QONNX (export.qonnx, needs torch/brevitas), the qonnx
toolchain's quirks on this machine (export.compat) and cost figures (export.cost)."""
