"""The opt-in part of the pytest plugin: a reset around every test, and the fixtures.

Loaded by ``pytest -p hypergen_ws.testing``, ``addopts = ["-p", "hypergen_ws.testing"]`` in the pytest
configuration, or ``pytest_plugins = ["hypergen_ws.testing"]`` in the top-level conftest.py (docs/testing.rst).
"""
from __future__ import annotations

import pytest

__all__ = ["hgws_isolation"]

pytest_plugins = ["hypergen_ws.testing.fixtures"]


@pytest.fixture(autouse=True)
def hgws_isolation(hgws_reset: None) -> None:
    """Every test starts without the groups, history, presence, counters and channel layer of the tests before
    it (:func:`hypergen_ws.testing.reset`)."""
