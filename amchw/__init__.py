"""amchw: integer IR, kernels and hardware models for quantized AMC networks."""
__version__ = "0.1.0"
