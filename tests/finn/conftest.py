"""FINN's python for the FINN suite: skip without it, fail under CI (CI=true)."""

import os

import pytest

from amchw.verify.finn import FinnUnavailable, finn_python


@pytest.fixture(scope="session")
def finn():
    try:
        return finn_python()
    except FinnUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the FINN suite: {e}")
        pytest.skip(str(e))
