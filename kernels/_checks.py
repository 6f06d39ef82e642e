"""Argument validation shared by the kernel wrappers: every failure is a ValueError naming the
argument; every accepted array leaves here C-contiguous in the dtype the compiled code expects."""

import operator

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_SHIFT = 62


def int32_tensor(x, name, ndim=None, min_ndim=None):
    """An int32 tensor (the only integer tensor type of the kernels), made C-contiguous."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy int32 array, got {type(x).__name__}")
    if x.dtype != np.int32:
        raise ValueError(f"{name} must have dtype int32, got {x.dtype}")
    _check_ndim(x, name, ndim, min_ndim)
    return np.ascontiguousarray(x)


def float_tensor(x, name, min_ndim=None):
    """A float32/float64 tensor, widened to a C-contiguous float64 copy (exact)."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy float32/float64 array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    _check_ndim(x, name, None, min_ndim)
    return np.ascontiguousarray(x, dtype=np.float64)


def _check_ndim(x, name, ndim, min_ndim):
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {x.shape}")


def scalar_int(v, name, lo=INT32_MIN, hi=INT32_MAX):
    """A Python int in [lo, hi]; floats and bools are refused."""
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got a bool")
    try:
        v = operator.index(v)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {v!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return int(v)


def rounding_mode(rounding):
    """One of the ROUND_* constants (0..3)."""
    return scalar_int(rounding, "rounding", 0, 3)


def clamp_range(lo, hi):
    lo = scalar_int(lo, "lo")
    hi = scalar_int(hi, "hi")
    if lo > hi:
        raise ValueError(f"lo must not exceed hi, got lo={lo}, hi={hi}")
    return lo, hi


def channel_param(p, channels, name, kind):
    """A per-channel parameter of length 1 (broadcast) or `channels`, returned with length
    `channels`. kind "int" gives int64 (integer input only), "float" gives float64."""
    a = np.asarray(p)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {a.shape}")
    if a.shape[0] not in (1, channels):
        raise ValueError(f"{name} must have length 1 or {channels} (channels), got {a.shape[0]}")
    if kind == "int":
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
        if a.dtype == np.uint64 and a.size and int(a.max()) > 2**63 - 1:
            raise ValueError(f"{name} does not fit in int64")
        a = a.astype(np.int64)
    else:
        if a.dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
    return np.ascontiguousarray(np.broadcast_to(a, (channels,)))


def pair(v, name, minimum):
    """A pair of ints (a single int is repeated), each >= minimum."""
    if isinstance(v, (int, np.integer)):
        v = (v, v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    out = tuple(scalar_int(e, name, minimum, INT32_MAX) for e in v)
    return out


def pads4(pads):
    """(top, bottom, left, right), each >= 0; an int means the same padding on all sides."""
    if isinstance(pads, (int, np.integer)):
        pads = (pads,) * 4
    pads = tuple(pads)
    if len(pads) != 4:
        raise ValueError(f"pads must be (top, bottom, left, right), got {pads!r}")
    return tuple(scalar_int(p, "pads", 0, INT32_MAX) for p in pads)


def out_size(size, pad_a, pad_b, kernel, stride, dilation, axis):
    """Output length of a strided, dilated window over a padded axis (floor mode)."""
    span = dilation * (kernel - 1) + 1
    n = (size + pad_a + pad_b - span) // stride + 1
    if n < 1:
        raise ValueError(
            f"{axis}: window of span {span} does not fit in the padded size "
            f"{size} + {pad_a} + {pad_b}"
        )
    return n
