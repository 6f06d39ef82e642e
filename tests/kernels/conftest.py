"""Shared pieces of the kernel tests: a hypothesis profile whose example count comes from
AMCHW_KERNEL_EXAMPLES (smaller in the NUMBA_DISABLE_JIT subprocess), and random-code helpers."""

import os
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "amchw-kernels",
    max_examples=int(os.environ.get("AMCHW_KERNEL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Code ranges a tensor may use: int8, uint8, narrow int8, int16, int4.
CODE_RANGES = [(-128, 127), (0, 255), (-127, 127), (-32768, 32767), (-8, 7)]


def codes(rng, shape, lo, hi):
    """int32 codes in [lo, hi], a quarter of them forced to the range ends."""
    v = rng.integers(lo, hi, size=shape, endpoint=True)
    ends = rng.random(shape) < 0.25
    v[ends] = rng.choice(np.array([lo, hi]), size=int(ends.sum()))
    return v.astype(np.int32)


def code_tensor(rng, shape, range_index):
    """Codes of one of CODE_RANGES and a zero point inside the range."""
    lo, hi = CODE_RANGES[range_index]
    return codes(rng, shape, lo, hi), int(rng.integers(lo, hi, endpoint=True))


def assert_same(got, want):
    """Bit-for-bit equality: same dtype, same shape, same values."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.array_equal(got, want), np.argwhere(got != want)[:5]


@pytest.fixture(scope="session")
def kgen():
    return SimpleNamespace(
        codes=codes, code_tensor=code_tensor, same=assert_same, ranges=CODE_RANGES
    )
