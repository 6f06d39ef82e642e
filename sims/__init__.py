"""The machine: hardware targets, the GEMM mapping of IR layers, closed-form cycle models
(SCALE-Sim v2 accounting and a double-buffered pipelined array), the stepped array, memory
traffic, energy, and simulate(). Installed as amchw.sims; imports no torch."""

from .energy import Energy, energy
from .hardware import DATAFLOWS, PRESETS, Target, TargetError, get_target, parse_array
from .mapping import GemmView, VectorOp, layers
from .memory import Traffic, gemm_accesses, gemm_traffic
from .simulate import SimReport, SimulationError, integer_check, simulate, stepped_check
from .stepped import SteppedResult, stepped_gemm
from .timing import TIMINGS, gemm_cycles

__all__ = ["DATAFLOWS", "PRESETS", "Target", "TargetError", "get_target", "parse_array",
           "GemmView", "VectorOp", "layers", "TIMINGS", "gemm_cycles", "Energy", "energy",
           "Traffic", "gemm_accesses", "gemm_traffic", "SimReport", "SimulationError",
           "integer_check", "simulate", "stepped_check", "SteppedResult", "stepped_gemm"]
