"""The machine: hardware targets, the GEMM mapping of IR layers, closed-form cycle models
(SCALE-Sim v2 accounting and a double-buffered pipelined array). Installed as amchw.sims;
imports no torch."""

from .hardware import DATAFLOWS, PRESETS, Target, TargetError, get_target, parse_array  # noqa: F401
from .mapping import GemmView, VectorOp, layers  # noqa: F401
from .timing import TIMINGS, gemm_cycles  # noqa: F401
