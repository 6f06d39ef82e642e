"""What the kernel tests draw from: every rounding mode, the hypothesis profile conftest.py
registers, and a seed strategy."""

from hypothesis import settings
from hypothesis import strategies as st

from amchw.kernels import ROUND_FLOOR, ROUND_HALF_AWAY, ROUND_HALF_EVEN, ROUND_HALF_UP

MODES = [ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_HALF_AWAY, ROUND_FLOOR]
PROFILE = settings.get_profile("amchw-kernels")
SEED = st.integers(0, 2**32 - 1)
