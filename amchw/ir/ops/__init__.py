"""The IR's ops: one frozen dataclass per op, each docstring its semantics in integers, each
class the one home of everything about it (ops/base.py lists the roles). OPS maps a kind to
its class.

Codes are held in int32 arrays; accumulation is modulo 2^32 (the validator proves it never
wraps for a graph it accepts); requantization is exact int64 arithmetic with a stated tie rule.
Shapes exclude the batch; channel axis is 1 counting the batch.
"""

from ..fixedpoint import fixed_multiplier, fixed_offset
from ..formats import WEIGHT_FORMATS, WeightFormat, format_error
from .base import (BACKENDS, INT32_MAX, INT64_MAX, OPS, ROUNDINGS, Free, Gemm, Op, Recur,
                   Vector, acc_type, check_nodes, defines, eval_node, infer, register, ties_at,
                   type_bounds, window_out)
from .eltwise import Add, Concat, GateMix, Lut, Mul, Reshape
from .exit import (EXIT_FLAG, EXIT_MAX_FRAC_BITS, EXIT_MAX_G_BITS, EXIT_MAX_SHIFT,
                   EXIT_MAX_TABLE, EXIT_MIN_FRAC_BITS, EntropyExit, exit_c_fix,
                   exit_error_bound, exit_exp_tables, exit_g_bits, exit_int64_bounds,
                   exit_k_mult, exit_ln_table, exit_params, exit_shift)
from .linear import F32_EXACT, Conv, Dense
from .pool import AvgPool, MaxPool
from .quant import Dequantize, Quantize, Requant
from .recurrent import GRU

__all__ = [
    "OPS", "Op", "register", "defines", "infer", "check_nodes", "type_bounds", "acc_type",
    "window_out", "BACKENDS", "ROUNDINGS", "INT32_MAX", "INT64_MAX", "Gemm", "Vector", "Free",
    "Recur", "F32_EXACT", "eval_node", "ties_at",
    "Quantize", "Requant", "Dequantize", "Conv", "Dense", "MaxPool", "AvgPool", "Add", "Concat",
    "Reshape", "Lut", "Mul", "GateMix", "GRU", "EntropyExit", "EXIT_FLAG",
    "WEIGHT_FORMATS", "WeightFormat", "format_error",
    "fixed_multiplier", "fixed_offset",
    "EXIT_MAX_TABLE", "EXIT_MAX_SHIFT", "EXIT_MAX_FRAC_BITS", "EXIT_MIN_FRAC_BITS",
    "EXIT_MAX_G_BITS", "exit_shift", "exit_exp_tables", "exit_ln_table", "exit_c_fix",
    "exit_k_mult", "exit_params", "exit_int64_bounds", "exit_g_bits", "exit_error_bound",
]
