"""Integer kernels: numpy + numba only, arrays and scalars in, arrays out.

Every kernel `<op>_<dtype>[_variant]` has a `<op>_<dtype>_ref` twin written differently
(vectorised int64 numpy, wrap once at the end); the two are equal bit for bit.
This package never imports the IR, torch or brevitas.
"""

# Rounding modes (an explicit field of every rounding op in the IR).
ROUND_HALF_EVEN = 0  # ties to the even neighbour (torch.round, np.round, Brevitas, QONNX ROUND)
ROUND_HALF_UP = 1    # ties toward +infinity ("add half then floor", FINN thresholds)
ROUND_HALF_AWAY = 2  # ties away from zero (C round(), gemmlowp's rounding half)
ROUND_FLOOR = 3      # toward -infinity (arithmetic shift right, QONNX Trunc FLOOR)

ROUNDING_NAMES = {
    "half_even": ROUND_HALF_EVEN,
    "half_up": ROUND_HALF_UP,
    "half_away": ROUND_HALF_AWAY,
    "floor": ROUND_FLOOR,
}

# Public kernels (imported after the constants above, which the submodules use).
from .conv import conv2d_i32, conv2d_i32_gemm, conv2d_i32_ref  # noqa: E402
from .dense import dense_i32, dense_i32_gemm, dense_i32_ref  # noqa: E402
from .eltwise import (  # noqa: E402
    add_i32,
    add_i32_ref,
    gatemix_i32,
    gatemix_i32_ref,
    lut_i32,
    lut_i32_ref,
    mul_i32,
    mul_i32_ref,
)
from .exit import entropy_exit_i32, entropy_exit_i32_ref  # noqa: E402
from .pool import (  # noqa: E402
    avgpool2d_i32,
    avgpool2d_i32_ref,
    maxpool2d_i32,
    maxpool2d_i32_ref,
    sumpool2d_i32,
    sumpool2d_i32_ref,
)
from .quantize import (  # noqa: E402
    dequantize_f64,
    dequantize_f64_ref,
    quantize_f64,
    quantize_f64_ref,
)
from .requant import requant_i32, requant_i32_ref  # noqa: E402
from .rounding import (  # noqa: E402
    round_div,
    round_div_ref,
    round_shift,
    round_shift_ref,
    wrap_i32,
    wrap_i32_ref,
)

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
