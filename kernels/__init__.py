"""Integer kernels: numpy + numba only, arrays and scalars in, arrays out.

Every kernel `<op>_<dtype>[_variant]` has a `<op>_<dtype>_ref` twin written differently
(vectorised int64 numpy, wrap once at the end); the two are equal bit for bit.
This package never imports the IR, torch or brevitas.

Numba's on-disk cache checks only the source file of each cached function, not the files of the
kernels it calls (fused.py calls conv.py and pool.py, vnni.py calls fused.py, and their code is
compiled into the caller). So the cache of these kernels lives in a folder named after a digest
of every source file here: an edit to any of them starts a fresh cache instead of leaving stale
machine code behind. The folder is under $NUMBA_CACHE_DIR if set, else the user cache folder.
"""

from . import _numba_cache  # noqa: F401  (first: it points Numba's cache before any kernel)

from .modes import (ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP,
                    ROUNDING_NAMES)

# Public kernels
from .conv import conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref
from .dense import dense_i32, dense_i32_gemm, dense_i32_ref
from .eltwise import (add_i32, add_i32_ref, gatemix_i32, gatemix_i32_ref, lut_i32, lut_i32_ref,
                      mul_i32, mul_i32_ref)
from .exit import entropy_exit_i32, entropy_exit_i32_ref
from .pool import (avgpool2d_i32, avgpool2d_i32_ref, maxpool2d_i32, maxpool2d_i32_ref,
                   sumpool2d_i32, sumpool2d_i32_ref)
from .quantize import dequantize_f64, dequantize_f64_ref, quantize_f64, quantize_f64_ref
from .requant import requant_i32, requant_i32_ref
from .rounding import round_div, round_div_ref, round_shift, round_shift_ref, wrap_i32, wrap_i32_ref

__all__ = [
    "ROUND_HALF_EVEN", "ROUND_HALF_UP", "ROUND_HALF_AWAY", "ROUND_FLOOR", "ROUNDING_NAMES",
    "conv2d_i32", "conv2d_i32_gemm", "conv2d_i32_ref",
    "dense_i32", "dense_i32_gemm", "dense_i32_ref",
    "maxpool2d_i32", "maxpool2d_i32_ref", "sumpool2d_i32", "sumpool2d_i32_ref",
    "avgpool2d_i32", "avgpool2d_i32_ref",
    "add_i32", "add_i32_ref", "lut_i32", "lut_i32_ref", "mul_i32", "mul_i32_ref",
    "gatemix_i32", "gatemix_i32_ref", "entropy_exit_i32", "entropy_exit_i32_ref",
    "requant_i32", "requant_i32_ref",
    "quantize_f64", "quantize_f64_ref", "dequantize_f64", "dequantize_f64_ref",
    "round_shift", "round_shift_ref", "round_div", "round_div_ref", "wrap_i32", "wrap_i32_ref",
]
