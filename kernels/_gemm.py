"""Choice of an exact float type for integer matrix products done by BLAS.

A float with a p-bit significand holds every integer of magnitude <= 2^p. If every product and
every partial sum of a dot product is an integer below 2^p in magnitude, no addition or
multiplication rounds, whatever the summation order, blocking or FMA use of the BLAS. Every
partial sum is bounded by the sum of the absolute values of all its terms, hence by
max|x - zx| * max_k sum |w_k - zw| (+ max|bias| when the bias joins the sum)."""

import numpy as np

# Budget for one im2col / centred-input buffer in the gemm paths.
CHUNK_BYTES = 64 * 2**20


def exact_float_dtype(bound):
    """float32 if bound < 2^24, float64 if bound < 2^53, else None (no exact float type)."""
    if bound < 2**24:
        return np.float32
    if bound < 2**53:
        return np.float64
    return None


def accumulation_bound(x, zx, w_rows, zw, bias):
    """max|x - zx| * max over rows of sum|w_row - zw| + max|bias| as a Python int.

    w_rows: int32 weights shaped (K, reduction); x: int32 inputs of any shape."""
    if x.size == 0 or w_rows.size == 0:
        x_max = 0
    else:
        x_max = max(abs(int(x.max()) - zx), abs(int(x.min()) - zx))
    if w_rows.size == 0:
        w_max = 0
    else:
        w_max = int(np.abs(w_rows.astype(np.int64) - zw).sum(axis=1).max())
    b_max = int(np.abs(bias.astype(np.int64)).max()) if bias.size else 0
    return x_max * w_max + b_max
