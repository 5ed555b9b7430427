"""Shared test helpers. Socket tests scale every interval by TIME_UNIT (one constant)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

#: One scaled time unit in seconds for socket tests; raise it on a slow machine.
TIME_UNIT = float(os.environ.get("V6_TEST_TIME_UNIT", "0.05"))


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def wait_until(
    condition: Callable[[], bool], timeout: float = 100 * TIME_UNIT, step: float = 0.005
) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout:.2f}s")
        await asyncio.sleep(step)


@pytest.fixture(autouse=True, scope="session")
def _quiet_loguru() -> None:
    """Keep loguru's lines out of the test output unless they are warnings or worse."""
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("V6_TEST_LOG_LEVEL", "WARNING"))
