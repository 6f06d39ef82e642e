"""The machine: hardware targets, the GEMM mapping of IR layers, closed-form cycle models
(SCALE-Sim v2 accounting and a double-buffered pipelined array). Installed as amchw.sims;
imports no torch."""

from .hardware import DATAFLOWS, PRESETS, Target, TargetError, get_target, parse_array
from .mapping import GemmView, VectorOp, layers
from .timing import TIMINGS, gemm_cycles

__all__ = ["DATAFLOWS", "PRESETS", "Target", "TargetError", "get_target", "parse_array",
           "GemmView", "VectorOp", "layers", "TIMINGS", "gemm_cycles"]
