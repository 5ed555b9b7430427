"""Fixtures shared by every test; helpers are in tests/helpers.py."""

from __future__ import annotations

import os
import sys

import pytest
from loguru import logger

from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True, scope="session")
def _quiet_loguru() -> None:
    """Keep loguru's lines out of the test output unless they are warnings or worse."""
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("V6_TEST_LOG_LEVEL", "WARNING"))
